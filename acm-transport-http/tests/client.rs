//! `AcmClient` against a real HTTPS server: a small axum router with canned answers that
//! checks what the client sends (the bearer token, the idempotency key, the bodies) and
//! answers each kind of failure the client must tell apart.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use acm_core::{
    AcmRequest, AcmRequestBody, DownloadedItem, IdempotencyKey, McServiceId, PendingAcmData,
    PendingAcmDataNotification, PendingItem, RequestId, SystemId, Target,
};
use acm_transport_http::wire::{
    self, Acknowledgement, DecisionKind, ProvisionSubmission, ResponseSubmission, client_routes,
};
use acm_transport_http::{AcmClient, ClientError, PROBLEM_JSON, Problem, Submitted};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use futures_util::StreamExt;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::sync::Notify;

const TOKEN: &str = "alice-token";
const QUEUED: &str = "0190a3e5-8f6b-7cc2-9d41-3c1f1f2b9a10";
const REFUSED: &str = "0190a3e5-8f6b-7cc2-9d41-3c1f1f2b9a11";
/// A request whose withdrawal meets an overloaded front end (503, not a problem).
const BUSY: &str = "0190a3e5-8f6b-7cc2-9d41-3c1f1f2b9a12";
const REFUSED_KEY: &str = "key-refused";
const INVALID_KEY: &str = "key-invalid";

fn id(text: &str) -> RequestId {
    text.parse().unwrap()
}

fn alice() -> McServiceId {
    "sip:alice@mc-a.example".parse().unwrap()
}

fn submission() -> ProvisionSubmission {
    ProvisionSubmission {
        partner: "mc-b.example".parse().unwrap(),
        target: Target::User("sip:bob@mc-b.example".parse().unwrap()),
        groups: vec!["sip:fire-ops@mc-a.example".parse().unwrap()],
        requester_alias: None,
        requester: Some(alice()),
    }
}

fn reply() -> ResponseSubmission {
    ResponseSubmission {
        decision: DecisionKind::Reject,
        reason: Some("not today".to_owned()),
        responder_alias: None,
    }
}

fn pending_data() -> PendingAcmData {
    let request = |n: &str| {
        Arc::new(AcmRequest {
            request_id: id(n),
            requester: "sip:carol@mc-b.example".parse().unwrap(),
            requester_alias: None,
            partner: "mc-a.example".parse().unwrap(),
            target: Target::User(alice()),
            body: AcmRequestBody::provision(["sip:rescue@mc-b.example".parse().unwrap()]),
        })
    };
    let from: SystemId = "mc-b.example".parse().unwrap();
    PendingAcmData {
        mc_service_id: alice(),
        items: vec![
            PendingItem::Request {
                request: request("0190a3e5-8f6b-7cc2-9d41-3c1f1f2b9a20"),
                from,
                stored_at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            },
            PendingItem::Undeliverable {
                request: request("0190a3e5-8f6b-7cc2-9d41-3c1f1f2b9a21"),
            },
            PendingItem::WithdrawalOutcome {
                request: request("0190a3e5-8f6b-7cc2-9d41-3c1f1f2b9a22"),
                withdrawn: true,
            },
        ],
    }
}

// --- the test PKI --------------------------------------------------------------------------

/// A CA and a server certificate for `localhost` and 127.0.0.1 that it issued.
struct Pki {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

impl Pki {
    fn new(name: &str) -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .unwrap();
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Self {
            ca_pem: ca.pem(),
            server: Arc::new(server),
        }
    }
}

// --- the test server -----------------------------------------------------------------------

/// What the test server does beyond its canned answers.
#[derive(Clone, Default)]
struct Behaviour {
    /// The download never answers.
    hang_pending: bool,
    /// The notification stream sends one notice, then waits for this before the second.
    gate: Option<Arc<Notify>>,
}

struct TestServer {
    base: String,
    ca_pem: String,
    handle: axum_server::Handle<std::net::SocketAddr>,
}

impl TestServer {
    async fn start(behaviour: Behaviour) -> Self {
        let pki = Pki::new("server");
        let router = Router::new()
            .route(client_routes::PROVISION_REQUESTS, post(submit))
            .route(client_routes::REQUEST, get(status))
            .route(client_routes::WITHDRAWAL, post(withdraw))
            .route(client_routes::RESPONSE, post(respond))
            .route(client_routes::PENDING, get(pending))
            .route(client_routes::ACKNOWLEDGEMENT, post(acknowledge))
            .route(client_routes::NOTIFICATIONS, get(notifications))
            .with_state(behaviour);
        let handle = axum_server::Handle::<std::net::SocketAddr>::new();
        let config = axum_server::tls_rustls::RustlsConfig::from_config(pki.server);
        let server = axum_server::tls_rustls::bind_rustls("127.0.0.1:0".parse().unwrap(), config)
            .handle(handle.clone())
            .serve(router.into_make_service());
        tokio::spawn(server);
        let addr = handle.listening().await.unwrap();
        Self {
            base: format!("https://127.0.0.1:{}", addr.port()),
            ca_pem: pki.ca_pem,
            handle,
        }
    }

    fn client(&self) -> AcmClient {
        AcmClient::new(&self.base, self.ca_pem.as_bytes(), TOKEN).unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

fn problem(status: StatusCode, problem: &Problem) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, PROBLEM_JSON)
        .body(Body::from(serde_json::to_vec(problem).unwrap()))
        .unwrap()
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

fn bad_request(what: &str) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        &Problem::new("test_unexpected", 400, "Not what the test expects").with_detail(what),
    )
}

/// The refusal of any token but alice's, as the real server would answer it.
fn unauthorized(headers: &HeaderMap) -> Option<Response> {
    let expected = format!("Bearer {TOKEN}");
    match headers.get(header::AUTHORIZATION) {
        Some(value) if value.as_bytes() == expected.as_bytes() => None,
        Some(_) => Some(problem(
            StatusCode::UNAUTHORIZED,
            &Problem::new("token_bad_signature", 401, "Token refused"),
        )),
        None => Some(problem(
            StatusCode::UNAUTHORIZED,
            &Problem::new("token_missing", 401, "Token refused"),
        )),
    }
}

async fn submit(headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    let Some(key) = headers.get(wire::IDEMPOTENCY_KEY) else {
        return problem(
            StatusCode::BAD_REQUEST,
            &Problem::new("idempotency_key_missing", 400, "Idempotency-Key required"),
        );
    };
    match serde_json::from_slice::<ProvisionSubmission>(&body) {
        Ok(got) if got == submission() => {}
        _ => return bad_request("the submission"),
    }
    match key.to_str().unwrap_or_default() {
        REFUSED_KEY => problem(
            StatusCode::FORBIDDEN,
            &Problem::new("authorization_refused", 403, "Refused at step 2")
                .with_detail("alice may not provide this ACM request to mc-b.example")
                .with("request_id", REFUSED)
                .with("refusal", "not_authorized"),
        ),
        INVALID_KEY => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            &Problem::new("group_not_homed", 422, "Invalid request")
                .with_detail("sip:fire-ops@mc-a.example is not homed here"),
        ),
        _ => json(
            StatusCode::ACCEPTED,
            &serde_json::json!({"request_id": QUEUED, "status": "queued"}),
        ),
    }
}

async fn status(headers: HeaderMap, Path(request_id): Path<String>) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    if request_id == QUEUED {
        json(
            StatusCode::OK,
            &serde_json::json!({
                "request_id": QUEUED,
                "kind": "interconnection_group_identity_provision",
                "stage": "queued",
                "partner": "mc-b.example",
                "target": {"kind": "user", "id": "sip:bob@mc-b.example"},
                "groups": ["sip:fire@mc-a.example"],
                "submitted_at": "2026-12-01T12:00:00Z",
                "withdrawal": "none",
                "delivered": false,
            }),
        )
    } else {
        problem(
            StatusCode::NOT_FOUND,
            &Problem::new("unknown_request", 404, "Unknown request"),
        )
    }
}

async fn withdraw(headers: HeaderMap, Path(request_id): Path<String>) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    match request_id.as_str() {
        QUEUED => json(
            StatusCode::ACCEPTED,
            &serde_json::json!({"request_id": QUEUED, "status": "withdrawal_requested"}),
        ),
        BUSY => Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from("upstream overloaded"))
            .unwrap(),
        _ => problem(
            StatusCode::NOT_FOUND,
            &Problem::new("unknown_request", 404, "Unknown request"),
        ),
    }
}

async fn respond(headers: HeaderMap, Path(request_id): Path<String>, body: Bytes) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    match serde_json::from_slice::<ResponseSubmission>(&body) {
        Ok(got) if got == reply() && request_id == QUEUED => Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Body::empty())
            .unwrap(),
        _ => bad_request("the response"),
    }
}

async fn pending(State(behaviour): State<Behaviour>, headers: HeaderMap) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    if behaviour.hang_pending {
        std::future::pending::<()>().await;
    }
    json(StatusCode::OK, &pending_data())
}

async fn acknowledge(headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    let expected: Vec<DownloadedItem> = pending_data()
        .items
        .iter()
        .map(PendingItem::receipt)
        .collect();
    match serde_json::from_slice::<Acknowledgement>(&body) {
        Ok(got) if got.items == expected => json(
            StatusCode::OK,
            &serde_json::json!({"recorded": got.items.len()}),
        ),
        _ => bad_request("the acknowledgement"),
    }
}

fn notice(id: u32) -> String {
    format!(
        "id: {id}\nevent: {}\ndata: {}\n\n",
        client_routes::NOTIFICATION_EVENT,
        serde_json::json!({"mc_service_id": alice()})
    )
}

async fn notifications(State(behaviour): State<Behaviour>, headers: HeaderMap) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    if headers.get(header::ACCEPT).map(HeaderValue::as_bytes) != Some(b"text/event-stream") {
        return bad_request("Accept: text/event-stream");
    }
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let chunks: Vec<String> = match (last.as_deref(), behaviour.gate) {
        (_, Some(gate)) => {
            let first = futures_util::stream::iter([Ok::<_, Infallible>(notice(1))]);
            let second = futures_util::stream::once(async move {
                gate.notified().await;
                Ok(notice(2))
            });
            return event_stream(Body::from_stream(first.chain(second)));
        }
        (None, None) => vec![
            ": keep-alive\n\n".to_owned(),
            // A notice split mid-line, across two chunks.
            notice(1)[..9].to_owned(),
            notice(1)[9..].to_owned(),
            format!("id: 2\nevent: something-else\ndata: {{}}\n\n: keep-alive\n\n"),
            notice(3).replace('\n', "\r\n"),
        ],
        // An event without `id:` keeps the one the client resumed from.
        (Some("3"), None) => vec![notice(0).replace("id: 0\n", ""), notice(4)],
        (Some("garbled"), None) => vec![
            format!(
                "id: 9\nevent: {}\ndata: not json\n\n",
                client_routes::NOTIFICATION_EVENT
            ),
            notice(10),
        ],
        (Some(_), None) => return bad_request("the last event id"),
    };
    event_stream(Body::from_stream(futures_util::stream::iter(
        chunks.into_iter().map(Ok::<_, Infallible>),
    )))
}

fn event_stream(body: Body) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(body)
        .unwrap()
}

// --- the tests -----------------------------------------------------------------------------

/// In a module so that the tests' names start with `client::`, as the unit tests' do: one
/// filter (`cargo test client`) runs them all.
mod client {
    use super::*;

    fn key(text: &str) -> IdempotencyKey {
        text.parse().unwrap()
    }

    fn code(result: Result<impl std::fmt::Debug, ClientError>) -> String {
        result.unwrap_err().code().to_owned()
    }

    #[tokio::test]
    async fn a_submission_is_queued_with_the_token_and_the_idempotency_key() {
        let server = TestServer::start(Behaviour::default()).await;
        let submitted = server
            .client()
            .submit(&submission(), &key("key-1"))
            .await
            .unwrap();
        assert_eq!(
            submitted,
            Submitted::Queued(wire::SubmissionAccepted {
                request_id: id(QUEUED),
                status: "queued".to_owned()
            })
        );
    }

    #[tokio::test]
    async fn a_refusal_at_step_2_is_a_refused_submission_with_its_request_id() {
        let server = TestServer::start(Behaviour::default()).await;
        let submitted = server
            .client()
            .submit(&submission(), &key(REFUSED_KEY))
            .await
            .unwrap();
        assert_eq!(
            submitted,
            Submitted::Refused {
                request_id: id(REFUSED),
                refusal: "not_authorized".to_owned(),
                detail: Some("alice may not provide this ACM request to mc-b.example".to_owned()),
            }
        );
    }

    #[tokio::test]
    async fn an_invalid_submission_is_a_422_problem() {
        let server = TestServer::start(Behaviour::default()).await;
        let err = server
            .client()
            .submit(&submission(), &key(INVALID_KEY))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "group_not_homed");
        assert_eq!(err.status(), Some(422));
        let problem = err.problem().unwrap();
        assert_eq!(
            problem.detail.as_deref(),
            Some("sip:fire-ops@mc-a.example is not homed here")
        );
    }

    #[tokio::test]
    async fn another_token_on_the_same_pool_is_sent_instead() {
        let server = TestServer::start(Behaviour::default()).await;
        let alice = server.client();
        let mallory = alice.with_token("mallory-token");
        assert_eq!(code(mallory.pending().await), "token_bad_signature");
        // Alice's own client is unchanged.
        assert_eq!(alice.pending().await.unwrap(), pending_data());
    }

    #[tokio::test]
    async fn a_token_that_is_no_header_value_is_a_configuration_error() {
        let server = TestServer::start(Behaviour::default()).await;
        let client = server.client().with_token("two\nlines");
        assert_eq!(code(client.pending().await), "config");
    }

    #[tokio::test]
    async fn the_status_of_ones_request_is_its_json_and_another_is_unknown() {
        let server = TestServer::start(Behaviour::default()).await;
        let client = server.client();
        let status = client.status(id(QUEUED)).await.unwrap();
        assert_eq!(status.stage, "queued");
        assert_eq!(status.request_id, id(QUEUED));
        assert_eq!(code(client.status(id(REFUSED)).await), "unknown_request");
    }

    #[tokio::test]
    async fn a_withdrawal_is_accepted() {
        let server = TestServer::start(Behaviour::default()).await;
        let accepted = server.client().withdraw(id(QUEUED)).await.unwrap();
        assert_eq!(accepted.request_id, id(QUEUED));
        assert_eq!(accepted.status, "withdrawal_requested");
    }

    #[tokio::test]
    async fn a_503_without_problem_details_is_a_status_error_with_its_body() {
        let server = TestServer::start(Behaviour::default()).await;
        match server.client().withdraw(id(BUSY)).await {
            Err(ClientError::Status { status, body }) => {
                assert_eq!(status, 503);
                assert_eq!(body, "upstream overloaded");
            }
            other => panic!("expected a status error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_response_is_answered_204() {
        let server = TestServer::start(Behaviour::default()).await;
        server.client().respond(id(QUEUED), &reply()).await.unwrap();
        assert_eq!(
            code(server.client().respond(id(REFUSED), &reply()).await),
            "test_unexpected"
        );
    }

    #[tokio::test]
    async fn the_pending_data_is_downloaded_and_all_of_it_acknowledged() {
        let server = TestServer::start(Behaviour::default()).await;
        let client = server.client();
        let pending = client.pending().await.unwrap();
        assert_eq!(pending, pending_data());
        let recorded = client.acknowledge_all(&pending).await.unwrap();
        assert_eq!(recorded.recorded, 3);
    }

    #[tokio::test]
    async fn the_notification_stream_yields_the_notices_and_remembers_the_last_id() {
        let server = TestServer::start(Behaviour::default()).await;
        let mut notices = server.client().notifications(None).await.unwrap();
        let expected = PendingAcmDataNotification {
            mc_service_id: alice(),
        };
        let first = notices.next().await.unwrap().unwrap();
        assert_eq!(first.id.as_deref(), Some("1"));
        assert_eq!(first.notification, expected);
        assert_eq!(notices.last_event_id(), Some("1"));
        // Keep-alives and the other event are skipped.
        let second = notices.next().await.unwrap().unwrap();
        assert_eq!(second.id.as_deref(), Some("3"));
        assert_eq!(second.notification, expected);
        assert_eq!(notices.last_event_id(), Some("3"));
        assert!(
            notices.next().await.is_none(),
            "the server ended the stream"
        );
    }

    #[tokio::test]
    async fn a_reopened_stream_sends_the_last_event_id_and_keeps_it_for_events_without_one() {
        let server = TestServer::start(Behaviour::default()).await;
        let mut notices = server.client().notifications(Some("3")).await.unwrap();
        assert_eq!(notices.last_event_id(), Some("3"));
        let without_id = notices.next().await.unwrap().unwrap();
        assert_eq!(without_id.id.as_deref(), Some("3"));
        assert_eq!(notices.last_event_id(), Some("3"));
        let notice = notices.next().await.unwrap().unwrap();
        assert_eq!(notice.id.as_deref(), Some("4"));
    }

    #[tokio::test]
    async fn a_notice_that_is_not_a_notification_is_an_error_and_the_stream_goes_on() {
        let server = TestServer::start(Behaviour::default()).await;
        let mut notices = server
            .client()
            .notifications(Some("garbled"))
            .await
            .unwrap();
        assert_eq!(code(notices.next().await.unwrap()), "decode");
        let notice = notices.next().await.unwrap().unwrap();
        assert_eq!(notice.id.as_deref(), Some("10"));
    }

    #[tokio::test]
    async fn the_notification_stream_outlives_the_call_timeout() {
        let gate = Arc::new(Notify::new());
        let server = TestServer::start(Behaviour {
            gate: Some(gate.clone()),
            ..Behaviour::default()
        })
        .await;
        let client = server.client().with_timeout(Duration::from_millis(100));
        let mut notices = client.notifications(None).await.unwrap();
        assert_eq!(
            notices.next().await.unwrap().unwrap().id.as_deref(),
            Some("1")
        );
        // Quiet for longer than a call may take: a logged-on user is not cut off.
        tokio::time::sleep(Duration::from_millis(400)).await;
        gate.notify_one();
        assert_eq!(
            notices.next().await.unwrap().unwrap().id.as_deref(),
            Some("2")
        );
    }

    #[tokio::test]
    async fn a_slow_answer_is_a_transport_error() {
        let server = TestServer::start(Behaviour {
            hang_pending: true,
            ..Behaviour::default()
        })
        .await;
        let client = server.client().with_timeout(Duration::from_millis(200));
        // The guard only keeps a broken client from hanging the test run.
        let answer = tokio::time::timeout(Duration::from_secs(30), client.pending())
            .await
            .expect("the client's own time-out ends the call first");
        assert_eq!(code(answer), "transport");
    }

    #[tokio::test]
    async fn a_server_certified_by_another_ca_is_a_transport_error() {
        let server = TestServer::start(Behaviour::default()).await;
        let other = Pki::new("other");
        let client = AcmClient::new(&server.base, other.ca_pem.as_bytes(), TOKEN).unwrap();
        let err = client.pending().await.unwrap_err();
        assert!(matches!(err, ClientError::Transport(_)), "{err:?}");
        assert_eq!(code(client.notifications(None).await), "transport");
    }
}
