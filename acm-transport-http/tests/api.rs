//! The client API of one ACM server over real TLS, with real access tokens: each bad input
//! gets its documented status and problem type and records nothing; the limits answer 503
//! with `Retry-After`; the operations routes answer.
//!
//! The partner is configured but not running, so what is submitted stays in the outbox.

use std::sync::Arc;
use std::time::Duration;

use acm_core::{
    AcmRequest, AcmServer, Authorizer, EventStore, GlobalPosition, Interconnections, Lookup,
    McServiceId, Ports, ProcessingPolicy, Recipients, ServerConfig, StaticDirectory, SystemId,
    Target,
};
use acm_store_memory::MemoryAcmStore;
use acm_transport_http::pki::SystemPki;
use acm_transport_http::{
    Api, ApiConfig, HttpsPartnerTransport, HttpsServer, PartnerEndpoint, PartnerTrust, TlsListener,
    TokenIssuer, TokenKeys, TokenPolicy, TokenVerifier, TransportOptions, client_api_client_config,
    client_api_server_config, openapi_document, partner_api_server_config,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Display,
{
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn alice() -> McServiceId {
    id("sip:alice@mc-a.example")
}

/// A directory whose authorisation waits for a permit: a vendor's directory that is slow.
struct Gated {
    inner: StaticDirectory,
    gate: Arc<Semaphore>,
}

#[acm_core::async_trait]
impl Authorizer for Gated {
    async fn authorize(&self, request: &AcmRequest) -> Lookup<(), acm_core::AuthorizationRefusal> {
        let _permit = self.gate.acquire().await;
        self.inner.authorize(request).await
    }
}

#[acm_core::async_trait]
impl Interconnections for Gated {
    async fn partner_home_domains(
        &self,
        partner: &SystemId,
    ) -> Result<Option<Vec<SystemId>>, acm_core::DirectoryError> {
        self.inner.partner_home_domains(partner).await
    }

    async fn is_interconnection_group(
        &self,
        group: &acm_core::GroupId,
        from: &SystemId,
    ) -> Result<bool, acm_core::DirectoryError> {
        self.inner.is_interconnection_group(group, from).await
    }
}

#[acm_core::async_trait]
impl Recipients for Gated {
    async fn resolve(
        &self,
        target: &Target,
        kind: acm_core::AcmRequestKind,
    ) -> Lookup<Vec<McServiceId>, acm_core::VerificationFailure> {
        self.inner.resolve(target, kind).await
    }
}

#[acm_core::async_trait]
impl ProcessingPolicy for Gated {
    async fn processing(
        &self,
        kind: acm_core::AcmRequestKind,
        from: &SystemId,
    ) -> Result<acm_core::Processing, acm_core::DirectoryError> {
        self.inner.processing(kind, from).await
    }
}

/// Permits of an open gate; a test that takes them all closes it.
const GATE: u32 = 1_000_000;

struct One {
    https: Option<HttpsServer>,
    store: Arc<MemoryAcmStore>,
    gated: Arc<Gated>,
    http: reqwest::Client,
    base: String,
    issuer: TokenIssuer,
    token: String,
}

impl One {
    async fn start(config: ApiConfig) -> Self {
        let a: SystemId = id("mc-a.example");
        let b: SystemId = id("mc-b.example");
        let pki_a = SystemPki::generate(&a).unwrap_or_else(|e| panic!("{e}"));
        let pki_b = SystemPki::generate(&b).unwrap_or_else(|e| panic!("{e}"));
        let directory = StaticDirectory::new(a.clone())
            .with_partner(b.clone(), vec![b.clone()])
            .with_user(alice(), false)
            .with_provider(alice(), b.clone())
            .with_user(id("sip:carol@mc-a.example"), false);
        let gated = Arc::new(Gated {
            inner: directory,
            gate: Arc::new(Semaphore::new(GATE as usize)),
        });
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| panic!("{e}"));
        let transport = HttpsPartnerTransport::new(
            &pki_a.identity(),
            vec![PartnerEndpoint {
                system: b.clone(),
                base_url: format!("https://localhost:{}", closed.port()),
                ca_pem: pki_b.ca_pem().into_bytes(),
            }],
            TransportOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let store = Arc::new(MemoryAcmStore::new());
        let ports = Ports::builder(gated.clone(), Arc::new(transport)).build();
        let server = Arc::new(
            AcmServer::open(ServerConfig::new(a.clone()), ports, store.clone())
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let (private, public) =
            acm_transport_http::pki::token_keypair().unwrap_or_else(|e| panic!("{e}"));
        let verifier = TokenVerifier::new(
            TokenPolicy::new("https://idms.mc-a.example", "acm.mc-a.example"),
            TokenKeys::from_pem(public.as_bytes()).unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let issuer = TokenIssuer::from_pem(
            private.as_bytes(),
            jsonwebtoken::Algorithm::ES256,
            "https://idms.mc-a.example",
            "acm.mc-a.example",
            "mcptt_id",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let trust = Arc::new(
            PartnerTrust::new()
                .with_partner(b, pki_b.ca_pem().as_bytes())
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let api = Api::new(server, Arc::new(verifier), trust.clone(), config);
        let identity = pki_a.identity();
        let listen =
            |tls| TlsListener::bind(id("127.0.0.1:0"), tls).unwrap_or_else(|e| panic!("{e}"));
        let https = HttpsServer::start(
            api,
            listen(client_api_server_config(&identity).unwrap_or_else(|e| panic!("{e}"))),
            listen(partner_api_server_config(&identity, trust).unwrap_or_else(|e| panic!("{e}"))),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let tls =
            client_api_client_config(pki_a.ca_pem().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let token = issuer
            .issue(&alice(), Duration::from_mins(10))
            .unwrap_or_else(|e| panic!("{e}"));
        Self {
            base: format!("https://localhost:{}", https.client_addr().port()),
            https: Some(https),
            store,
            gated,
            http,
            issuer,
            token,
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    async fn head(&self) -> GlobalPosition {
        self.store.head().await.unwrap_or_else(|e| panic!("{e}"))
    }

    async fn stop(mut self) {
        if let Some(https) = self.https.take() {
            https.shutdown(Duration::from_secs(1)).await;
        }
    }
}

const SUBMIT: &str = "/acm/v1/interconnection-group-identity-provision/requests";

fn submission(groups: &[&str]) -> Value {
    json!({
        "partner": "mc-b.example",
        "target": {"kind": "user", "id": "sip:bob@mc-b.example"},
        "groups": groups,
    })
}

/// The answer's status and problem code (`None` when the body is not a problem).
async fn answer(
    response: reqwest::Response,
) -> (StatusCode, Option<String>, reqwest::header::HeaderMap) {
    let status = response.status();
    let headers = response.headers().clone();
    let problem = headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes() == b"application/problem+json");
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let code = problem.then(|| {
        body["type"]
            .as_str()
            .and_then(|t| t.strip_prefix("urn:acm:problem:"))
            .unwrap_or("?")
            .to_owned()
    });
    (status, code, headers)
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one table of cases
async fn each_bad_submission_gets_its_problem_and_records_nothing() {
    let one = One::start(ApiConfig::default()).await;
    let many: Vec<String> = (0..65).map(|i| format!("sip:g{i}@mc-a.example")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let huge = "x".repeat(70 * 1024);
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            "malformed JSON",
            one.request(Method::POST, SUBMIT)
                .header("idempotency-key", "k1")
                .header("content-type", "application/json")
                .body("{\"partner\": "),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "wrong type",
            one.request(Method::POST, SUBMIT)
                .header("idempotency-key", "k1")
                .json(&json!({"partner": 7, "target": {"kind": "partner_server"}, "groups": []})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "unknown field",
            one.request(Method::POST, SUBMIT)
                .header("idempotency-key", "k1")
                .json(&{
                    let mut s = submission(&["sip:fire@mc-a.example"]);
                    s["sender"] = json!("mc-x.example");
                    s
                }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "not JSON",
            one.request(Method::POST, SUBMIT)
                .header("idempotency-key", "k1")
                .header("content-type", "text/plain")
                .body("hello"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "oversized body",
            one.request(Method::POST, SUBMIT)
                .header("idempotency-key", "k1")
                .json(&json!({"partner": huge})),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            "no idempotency key",
            one.request(Method::POST, SUBMIT)
                .json(&submission(&["sip:fire@mc-a.example"])),
            StatusCode::BAD_REQUEST,
            "idempotency_key_missing",
        ),
        (
            "invalid idempotency key",
            one.request(Method::POST, SUBMIT)
                .header("idempotency-key", "with space")
                .json(&submission(&["sip:fire@mc-a.example"])),
            StatusCode::BAD_REQUEST,
            "idempotency_key_invalid",
        ),
        (
            "another requester in the body",
            one.request(Method::POST, SUBMIT)
                .header("idempotency-key", "k1")
                .json(&{
                    let mut s = submission(&["sip:fire@mc-a.example"]);
                    s["requester"] = json!("sip:carol@mc-a.example");
                    s
                }),
            StatusCode::FORBIDDEN,
            "requester_mismatch",
        ),
        (
            "no groups",
            one.request(Method::POST, SUBMIT)
                .header("idempotency-key", "k1")
                .json(&submission(&[])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_group_list",
        ),
        (
            "a group twice",
            one.request(Method::POST, SUBMIT)
                .header("idempotency-key", "k1")
                .json(&submission(&[
                    "sip:fire@mc-a.example",
                    "sip:fire@mc-a.example",
                ])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "duplicate_group",
        ),
        (
            "more groups than the cap",
            one.request(Method::POST, SUBMIT)
                .header("idempotency-key", "k1")
                .json(&submission(&many)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_groups",
        ),
        (
            "a look-alike group id",
            one.request(Method::POST, SUBMIT)
                .header("idempotency-key", "k1")
                .json(&submission(&["sip:fire@mc-а.example"])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "no token",
            one.http
                .post(format!("{}{SUBMIT}", one.base))
                .header("idempotency-key", "k1")
                .json(&submission(&["sip:fire@mc-a.example"])),
            StatusCode::UNAUTHORIZED,
            "token_missing",
        ),
        (
            "an expired token",
            one.http
                .post(format!("{}{SUBMIT}", one.base))
                .bearer_auth(
                    one.issuer
                        .issue_claims(&json!({
                            "iss": "https://idms.mc-a.example",
                            "aud": "acm.mc-a.example",
                            "exp": chrono::Utc::now().timestamp() - 300,
                            "mcptt_id": "sip:alice@mc-a.example",
                        }))
                        .unwrap_or_else(|e| panic!("{e}")),
                )
                .header("idempotency-key", "k1")
                .json(&submission(&["sip:fire@mc-a.example"])),
            StatusCode::UNAUTHORIZED,
            "token_expired",
        ),
        (
            "an unknown route",
            one.request(Method::GET, "/acm/v1/nothing-here"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "a method the route does not take",
            one.request(Method::DELETE, SUBMIT),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            "a request id that is not one",
            one.request(Method::GET, "/acm/v1/requests/not-an-id"),
            StatusCode::BAD_REQUEST,
            "invalid_request_id",
        ),
        (
            "an unknown request",
            one.request(
                Method::GET,
                "/acm/v1/requests/018f0000-0000-7000-8000-000000000001",
            ),
            StatusCode::NOT_FOUND,
            "unknown_request",
        ),
        (
            "a reason with an acceptance",
            one.request(
                Method::POST,
                "/acm/v1/requests/018f0000-0000-7000-8000-000000000001/response",
            )
            .json(&json!({"decision": "accept", "reason": "why not"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "a response to an unknown request",
            one.request(
                Method::POST,
                "/acm/v1/requests/018f0000-0000-7000-8000-000000000001/response",
            )
            .json(&json!({"decision": "accept"})),
            StatusCode::NOT_FOUND,
            "not_stored",
        ),
        (
            "a notice id that is not one",
            one.request(Method::GET, "/acm/v1/pending-acm-data/notifications")
                .header("last-event-id", "yesterday"),
            StatusCode::BAD_REQUEST,
            "invalid_last_event_id",
        ),
    ];
    for (what, request, status, code) in cases {
        let (got, problem, headers) = answer(
            request
                .send()
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}")),
        )
        .await;
        assert_eq!((got, problem.as_deref()), (status, Some(code)), "{what}");
        if status == StatusCode::UNAUTHORIZED {
            assert!(headers.contains_key("www-authenticate"), "{what}");
        }
        assert_eq!(
            one.head().await,
            GlobalPosition::START,
            "{what} recorded something"
        );
    }
    one.stop().await;
}

#[tokio::test]
async fn a_refusal_at_step_2_is_recorded_and_answered_the_same_on_retry() {
    let one = One::start(ApiConfig::default()).await;
    let body = submission(&["sip:fire@mc-x.example"]);
    let mut answers = Vec::new();
    for _ in 0..2 {
        let response = one
            .request(Method::POST, SUBMIT)
            .header("idempotency-key", "refused-1")
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let problem: Value = response.json().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(problem["type"], "urn:acm:problem:authorization_refused");
        assert_eq!(problem["refusal"], "group_not_homed_here");
        answers.push(problem["request_id"].clone());
    }
    assert_eq!(answers[0], answers[1], "the retry names the first request");
    let recorded = one.head().await;
    assert!(recorded > GlobalPosition::START, "the refusal is recorded");
    // A queued submission, retried with its key, is the same request too.
    let mut ids = Vec::new();
    for _ in 0..2 {
        let response = one
            .request(Method::POST, SUBMIT)
            .header("idempotency-key", "queued-1")
            .json(&submission(&["sip:fire@mc-a.example"]))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let body: Value = response.json().await.unwrap_or_else(|e| panic!("{e}"));
        ids.push(body["request_id"].clone());
    }
    assert_eq!(ids[0], ids[1]);
    let (status, code, _) = answer(
        one.request(Method::POST, SUBMIT)
            .header("idempotency-key", "queued-1")
            .json(&submission(&["sip:other@mc-a.example"]))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await;
    assert_eq!(
        (status, code.as_deref()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("idempotency_key_reused")
        )
    );
    one.stop().await;
}

#[tokio::test]
async fn a_directory_outage_is_a_503_and_never_a_recorded_refusal() {
    let one = One::start(ApiConfig::default()).await;
    one.gated.inner.set_available(false);
    let (status, code, headers) = answer(
        one.request(Method::POST, SUBMIT)
            .header("idempotency-key", "k-outage")
            .json(&submission(&["sip:fire@mc-a.example"]))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await;
    assert_eq!(
        (status, code.as_deref()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("directory_unavailable")
        )
    );
    assert!(headers.contains_key("retry-after"));
    assert_eq!(one.head().await, GlobalPosition::START);
    one.gated.inner.set_available(true);
    let retried = one
        .request(Method::POST, SUBMIT)
        .header("idempotency-key", "k-outage")
        .json(&submission(&["sip:fire@mc-a.example"]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        retried.status(),
        StatusCode::ACCEPTED,
        "the retry after the outage is queued"
    );
    one.stop().await;
}

#[tokio::test]
async fn calls_beyond_the_limit_are_answered_overloaded_with_retry_after() {
    let one = One::start(ApiConfig {
        concurrency: 1,
        ..ApiConfig::default()
    })
    .await;
    // The one place is held by a submission waiting on the directory.
    let gate = one.gated.gate.clone();
    let held = gate
        .acquire_many(GATE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let first = tokio::spawn(
        one.request(Method::POST, SUBMIT)
            .header("idempotency-key", "k-held")
            .json(&submission(&["sip:fire@mc-a.example"]))
            .send(),
    );
    // Wait until the first call holds the place: the second is then refused.
    let mut refused = None;
    for _ in 0..200 {
        let (status, code, headers) = answer(
            one.request(Method::GET, "/acm/v1/pending-acm-data")
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            refused = Some((code, headers));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (code, headers) = refused.unwrap_or_else(|| panic!("the limit never refused a call"));
    assert_eq!(code.as_deref(), Some("overloaded"));
    assert_eq!(
        headers
            .get("retry-after")
            .map(reqwest::header::HeaderValue::as_bytes),
        Some(&b"1"[..])
    );
    drop(held);
    let first = first
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        first.status(),
        StatusCode::ACCEPTED,
        "the held call finishes"
    );
    one.stop().await;
}

#[tokio::test]
async fn a_slow_body_is_cut_off_with_body_timeout() {
    let one = One::start(ApiConfig {
        body_timeout: Duration::from_millis(300),
        ..ApiConfig::default()
    })
    .await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let sending = tokio::spawn(
        one.request(Method::POST, SUBMIT)
            .header("idempotency-key", "k-slow")
            .header("content-type", "application/json")
            .header("content-length", "100")
            .body(body)
            .send(),
    );
    tx.send(Ok(b"{\"partner\":".to_vec()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The rest never comes while the test holds the sender.
    let response = sending
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, code, _) = answer(response).await;
    assert_eq!(
        (status, code.as_deref()),
        (StatusCode::REQUEST_TIMEOUT, Some("body_timeout"))
    );
    drop(tx);
    assert_eq!(one.head().await, GlobalPosition::START);
    one.stop().await;
}

#[tokio::test]
async fn operations_routes_answer() {
    let one = One::start(ApiConfig::default()).await;
    for (path, want) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let response = one
            .http
            .get(format!("{}{path}", one.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.text().await.unwrap_or_default(), want);
    }
    let queued = one
        .request(Method::POST, SUBMIT)
        .header("idempotency-key", "k-metrics")
        .json(&submission(&["sip:fire@mc-a.example"]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(queued.status(), StatusCode::ACCEPTED);
    let metrics = one
        .http
        .get(format!("{}/metrics", one.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
        .await
        .unwrap_or_default();
    for name in [
        "acm_http_requests_total",
        "acm_outbox_depth",
        "acm_pending_items",
        "acm_outbox_oldest_age_seconds",
    ] {
        assert!(
            metrics.contains(name),
            "{name} missing from /metrics:\n{metrics}"
        );
    }
    // The submission waits in the outbox (the partner is down): depth 1 at least (the
    // recorder is the process's, shared by the tests of this file).
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("acm_outbox_depth ") && l != "acm_outbox_depth 0"),
        "{metrics}"
    );
    let served: Value = one
        .http
        .get(format!("{}/openapi.json", one.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        served,
        serde_json::to_value(openapi_document()).unwrap_or_default()
    );
    one.stop().await;
}
