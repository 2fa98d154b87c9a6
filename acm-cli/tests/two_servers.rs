//! Two `acm serve` processes — MC systems A and B on loopback, mutual TLS between them,
//! access tokens for their clients — checked from outside, as a deployment is: through the
//! client API, the partner API, the processes' exit codes and the stores they leave.
// A scenario reads best as one function.
#![allow(clippy::too_many_lines)]

mod common;

use std::time::Duration;

use acm_core::{DownloadedItem, Event, IdempotencyKey, PendingItem, RequestId, Responder, Target};
use acm_transport_http::wire::{
    DecisionKind, ForwardedRequest, RequestStatus, ResponseSubmission, partner_routes,
};
use acm_transport_http::{AcmClient, ClientError, Notifications, Problem, Submitted, TlsIdentity};
use common::{A, ALICE, B, BOB, POLL, Server, Systems, id, provision, types, within};
use futures_util::TryStreamExt;

fn key(text: &str) -> IdempotencyKey {
    id(text)
}

const ACCEPT: ResponseSubmission = ResponseSubmission {
    decision: DecisionKind::Accept,
    reason: None,
    responder_alias: None,
};

/// Submits and expects the submission queued; its request id.
async fn submit(alice: &AcmClient, groups: &[&str], idempotency_key: &str) -> RequestId {
    match alice
        .submit(&provision(groups), &key(idempotency_key))
        .await
    {
        Ok(Submitted::Queued(accepted)) => {
            assert_eq!(accepted.status, "queued");
            accepted.request_id
        }
        other => panic!("submission not queued: {other:?}"),
    }
}

/// Polls the request's status until its stage is `stage`; appends each stage seen (once per
/// change) to `seen`.
async fn until_stage(
    alice: &AcmClient,
    request: RequestId,
    stage: &str,
    seen: &mut Vec<String>,
) -> RequestStatus {
    within(&format!("request {request} at stage {stage}"), async {
        loop {
            let status = alice
                .status(request)
                .await
                .unwrap_or_else(|e| panic!("status of {request}: {e}"));
            if seen.last() != Some(&status.stage) {
                seen.push(status.stage.clone());
            }
            if status.stage == stage {
                return status;
            }
            tokio::time::sleep(POLL).await;
        }
    })
    .await
}

/// The next notice on `stream`; it must be for `user`.
async fn notice(stream: &mut Notifications, user: &str) {
    let notice = within(&format!("a notice for {user}"), stream.next())
        .await
        .unwrap_or_else(|| panic!("the notification stream of {user} ended"))
        .unwrap_or_else(|e| panic!("the notification stream of {user} failed: {e}"));
    assert_eq!(notice.notification.mc_service_id.as_str(), user);
}

/// Polls `server`'s log until `done` holds for it.
async fn until_log(server: &Server, what: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    within(what, async {
        loop {
            let types = server.event_types();
            if done(&types) {
                return types;
            }
            tokio::time::sleep(POLL).await;
        }
    })
    .await
}

fn count(types: &[String], event_type: &str) -> usize {
    types.iter().filter(|t| *t == event_type).count()
}

fn problem(result: Result<impl std::fmt::Debug, ClientError>) -> Problem {
    match result {
        Err(ClientError::Problem(problem)) => problem,
        other => panic!("expected a problem, got {other:?}"),
    }
}

/// Steps 1–14 between two processes: alice at A provides group IDs to bob at B, bob is
/// notified, downloads and accepts, alice is notified and downloads the response; each
/// server records its six events, stops cleanly on SIGTERM and leaves a log that
/// `acm audit verify` accepts.
#[tokio::test]
async fn fourteen_steps_between_two_processes() {
    let mut systems = Systems::start().await;
    let alice = systems.a.client(ALICE);
    let bob = systems.b.client(BOB);

    // Step 6: bob logs on before anything is pending, so the notice is pushed on arrival.
    let mut bob_stream = bob
        .notifications(None)
        .await
        .unwrap_or_else(|e| panic!("bob's stream: {e}"));

    // Steps 1–3.
    let request = submit(&alice, &["tac-1", "tac-2"], "fourteen-steps-1").await;
    let mut stages = vec!["queued".to_owned()];
    // Steps 4a–4b: B stores and verifies it, and acknowledges it to A.
    until_stage(&alice, request, "stored_at_partner", &mut stages).await;

    // Step 7a, then 7b–8: the download delivers the request to bob.
    notice(&mut bob_stream, BOB).await;
    let pending = bob
        .pending()
        .await
        .unwrap_or_else(|e| panic!("bob's download: {e}"));
    assert_eq!(pending.mc_service_id.as_str(), BOB);
    match pending.items.as_slice() {
        [
            PendingItem::Request {
                request: r, from, ..
            },
        ] => {
            assert_eq!(r.request_id, request);
            assert_eq!(from.as_str(), A);
            assert_eq!(r.requester.as_str(), ALICE);
            assert_eq!(r.target, Target::User(id(BOB)));
            let groups: Vec<&str> = r
                .body
                .groups()
                .iter()
                .map(acm_core::GroupId::as_str)
                .collect();
            assert_eq!(groups, ["sip:tac-1@mc-a.example", "sip:tac-2@mc-a.example"]);
        }
        other => panic!("bob's download is not the one request: {other:?}"),
    }

    // Step 9, then 10–11: B forwards the response to A.
    bob.respond(request, &ACCEPT)
        .await
        .unwrap_or_else(|e| panic!("bob's response: {e}"));

    // Step 12 and 13a: alice logs on; the response is pending already or arrives later.
    let mut alice_stream = alice
        .notifications(None)
        .await
        .unwrap_or_else(|e| panic!("alice's stream: {e}"));
    notice(&mut alice_stream, ALICE).await;
    let answered = until_stage(&alice, request, "answered", &mut stages).await;
    assert!(!answered.delivered, "delivered before alice downloaded it");
    assert_eq!(stages, ["queued", "stored_at_partner", "answered"]);

    // Steps 13b–14.
    let pending = alice
        .pending()
        .await
        .unwrap_or_else(|e| panic!("alice's download: {e}"));
    match pending.items.as_slice() {
        [
            PendingItem::Response {
                request: r,
                response,
            },
        ] => {
            assert_eq!(r.request_id, request);
            assert!(response.outcome.is_accepted(), "{response:?}");
            assert_eq!(
                response.responder,
                Responder::User {
                    id: id(BOB),
                    alias: None
                }
            );
        }
        other => panic!("alice's download is not the one response: {other:?}"),
    }
    let recorded = alice
        .acknowledge_all(&pending)
        .await
        .unwrap_or_else(|e| panic!("alice's acknowledgement: {e}"));
    assert_eq!(recorded.recorded, 1);
    let done = alice
        .status(request)
        .await
        .unwrap_or_else(|e| panic!("status: {e}"));
    assert_eq!(done.stage, "answered");
    assert!(done.delivered);

    // B records the response's acknowledgement by A after A answered it: wait for it, and
    // for the acceptance hook, before stopping B.
    until_log(&systems.b, "B's last two events", |t| {
        t.iter().any(|t| t == "response_forwarded") && t.iter().any(|t| t == "acceptance_applied")
    })
    .await;

    // A graceful stop ends the notification streams and exits 0.
    let a_exit = systems.a.terminate().await;
    let b_exit = systems.b.terminate().await;
    assert_eq!(
        a_exit.code(),
        Some(0),
        "A: {a_exit}\n{}",
        systems.a.stderr()
    );
    assert_eq!(
        b_exit.code(),
        Some(0),
        "B: {b_exit}\n{}",
        systems.b.stderr()
    );
    for (who, stream) in [(ALICE, &mut alice_stream), (BOB, &mut bob_stream)] {
        within(&format!("{who}'s stream to end"), async {
            loop {
                match stream.next().await {
                    // A notice still buffered from before the stop.
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return,
                }
            }
        })
        .await;
    }

    // What each store holds, opened as the store it is now that its server has stopped.
    let mut logs = Vec::new();
    for server in [&systems.a, &systems.b] {
        let store = acm_store_sqlite::SqliteAcmStore::open(&server.store)
            .unwrap_or_else(|e| panic!("{}: {e}", server.store.display()));
        let events: Vec<acm_core::Envelope<Event>> =
            acm_core::EventStore::read_all(&store, acm_core::GlobalPosition::START)
                .try_collect()
                .await
                .unwrap_or_else(|e| panic!("reading {}: {e}", server.store.display()));
        store
            .close()
            .await
            .unwrap_or_else(|e| panic!("closing {}: {e}", server.store.display()));
        assert!(
            events.iter().all(|e| e.correlation_id == request),
            "{}: an event of another request",
            server.system
        );
        logs.push(types(&events));
    }
    assert_eq!(
        logs[0],
        [
            "submitted",
            "authorized",
            "forwarded",
            "partner_stored",
            "response_received",
            "response_delivered"
        ]
    );
    // The acceptance hook and the relay are separate duties: after `responded`, either may
    // record first.
    assert_eq!(
        logs[1][..4],
        ["stored", "verified", "delivered", "responded"]
    );
    let mut last = logs[1][4..].to_vec();
    last.sort();
    assert_eq!(last, ["acceptance_applied", "response_forwarded"]);

    for server in [&systems.a, &systems.b] {
        let store = server.store.to_string_lossy().into_owned();
        let (status, out, err) = common::acm(&["audit", "verify", &store]);
        assert_eq!(status.code(), Some(0), "audit verify {store}: {out}{err}");
    }
}

/// A leaf certificate for `system` issued by the CA whose certificate and key `acm gen-certs`
/// wrote in `dir`: the CA is rebuilt with the same name and key as acm's test PKI gives it, so
/// that its signatures chain to `dir/ca.pem`.
fn leaf_from(dir: &std::path::Path, system: &str) -> TlsIdentity {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    };
    let ca_system = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ca_key_pem = String::from_utf8_lossy(&common::read(&dir.join("ca-key.pem"))).into_owned();
    let ca_key = KeyPair::from_pem(&ca_key_pem).unwrap_or_else(|e| panic!("CA key: {e}"));
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, format!("acm test CA of {ca_system}"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap_or_else(|e| panic!("{e}"));
    let mut params = CertificateParams::new(vec![
        system.to_owned(),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    params.distinguished_name.push(DnType::CommonName, system);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&key, &issuer)
        .unwrap_or_else(|e| panic!("leaf for {system}: {e}"));
    TlsIdentity::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
        .unwrap_or_else(|e| panic!("identity of {system}: {e}"))
}

/// A well-formed step-3 message from A for bob: what B would store from a partner it
/// recognised.
fn forwarded_request() -> ForwardedRequest {
    ForwardedRequest {
        message_id: acm_core::MessageId::from_uuid(uuid::Uuid::now_v7())
            .unwrap_or_else(|e| panic!("{e}")),
        request: acm_core::AcmRequest {
            request_id: RequestId::from_uuid(uuid::Uuid::now_v7())
                .unwrap_or_else(|e| panic!("{e}")),
            requester: id(ALICE),
            requester_alias: None,
            partner: id(B),
            target: Target::User(id(BOB)),
            body: acm_core::AcmRequestBody::provision([id(&format!("sip:tac-9@{A}"))]),
        },
    }
}

/// B's partner API lets in only a client certificate that a partner's CA issued for that
/// partner: no certificate, a stranger's CA, and A's CA vouching for another system all fail
/// at the handshake, and nothing is recorded; A's certificate gets as far as a handler.
#[tokio::test]
async fn tls_refusals() {
    let systems = Systems::start().await;
    let b_ca = systems.b.ca_pem().to_vec();
    let url = format!(
        "{}{}",
        systems.b.partner_url(),
        partner_routes::PROVISION_REQUESTS
    );
    let mc_a = common::system(A);
    let mc_b = common::system(B);
    let before = systems.b.events().len();

    let stranger = acm_transport_http::pki::SystemPki::generate(&mc_a)
        .unwrap_or_else(|e| panic!("stranger PKI: {e}"));
    let refused = [
        (
            "no client certificate",
            acm_transport_http::client_api_client_config(&b_ca),
        ),
        (
            "a certificate for mc-a.example from an unknown CA",
            acm_transport_http::partner_client_config(&stranger.identity(), &mc_b, &b_ca),
        ),
        (
            "a certificate for mc-x.example from A's CA",
            acm_transport_http::partner_client_config(
                &leaf_from(&systems.certs(A), "mc-x.example"),
                &mc_b,
                &b_ca,
            ),
        ),
    ];
    for (what, tls) in refused {
        let http = common::https(tls.unwrap_or_else(|e| panic!("{what}: {e}")));
        match http.post(&url).json(&forwarded_request()).send().await {
            Err(e) => assert!(!e.is_timeout(), "{what}: timed out instead of refused: {e}"),
            Ok(answer) => panic!("{what}: answered {}", answer.status()),
        }
    }

    // A's own certificate: the connection works, and a malformed body is refused by the API.
    let a_identity = TlsIdentity::from_files(
        systems.certs(A).join("cert.pem"),
        systems.certs(A).join("key.pem"),
    )
    .unwrap_or_else(|e| panic!("A's identity: {e}"));
    let http = common::https(
        acm_transport_http::partner_client_config(&a_identity, &mc_b, &b_ca)
            .unwrap_or_else(|e| panic!("A's TLS: {e}")),
    );
    let answer = http
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body("{\"message_id\": ")
        .send()
        .await
        .unwrap_or_else(|e| panic!("A's certificate refused: {e}"));
    assert_eq!(answer.status(), reqwest::StatusCode::BAD_REQUEST);
    let body: Problem = answer
        .json()
        .await
        .unwrap_or_else(|e| panic!("not a problem: {e}"));
    assert_eq!(body.code(), "malformed_json");
    assert_eq!(
        systems.b.events().len(),
        before,
        "B recorded a refused call"
    );

    // The control: a certificate for A minted the same way as mc-x's is let in and its
    // message stored, so mc-x was refused for its name, and the count above can move.
    let http = common::https(
        acm_transport_http::partner_client_config(&leaf_from(&systems.certs(A), A), &mc_b, &b_ca)
            .unwrap_or_else(|e| panic!("control TLS: {e}")),
    );
    let answer = http
        .post(&url)
        .json(&forwarded_request())
        .send()
        .await
        .unwrap_or_else(|e| panic!("the control certificate was refused: {e}"));
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    assert_eq!(
        answer.text().await.unwrap_or_default(),
        "{\"ack\":\"stored\"}"
    );
    assert!(systems.b.events().len() > before);
}

fn base64url(json: &serde_json::Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Every kind of bad access token is refused with 401, its own problem type and
/// `WWW-Authenticate`, and nothing is recorded; a good token on the same call records.
#[tokio::test]
async fn token_refusals() {
    let systems = Systems::start().await;
    let a = &systems.a;
    let claims = |exp: i64, nbf: i64| {
        serde_json::json!({
            "iss": "https://idms.mc-a.example",
            "aud": "acm.mc-a.example",
            "iat": now(),
            "nbf": nbf,
            "exp": exp,
            "mcptt_id": ALICE,
        })
    };
    let issue = |issuer: &acm_transport_http::TokenIssuer, claims: serde_json::Value| {
        issuer
            .issue_claims(&claims)
            .unwrap_or_else(|e| panic!("token: {e}"))
    };
    let (fresh_key, _) =
        acm_transport_http::pki::token_keypair().unwrap_or_else(|e| panic!("key: {e}"));
    let stranger = acm_transport_http::TokenIssuer::from_pem(
        fresh_key.as_bytes(),
        jsonwebtoken::Algorithm::ES256,
        "https://idms.mc-a.example",
        "acm.mc-a.example",
        "mcptt_id",
    )
    .unwrap_or_else(|e| panic!("stranger: {e}"));
    // Signed with the right key; what is wrong is in the claims.
    let ours = a.issuer();
    let mut no_user = claims(now() + 3600, now());
    if let Some(claims) = no_user.as_object_mut() {
        claims.remove("mcptt_id");
    }
    let unsecured = format!(
        "{}.{}.",
        base64url(&serde_json::json!({"alg": "none", "typ": "JWT"})),
        base64url(&claims(now() + 3600, now()))
    );
    let refused = [
        (
            "token_bad_signature",
            issue(&stranger, claims(now() + 3600, now())),
        ),
        ("token_algorithm_not_allowed", unsecured),
        (
            "token_expired",
            issue(ours, claims(now() - 300, now() - 600)),
        ),
        (
            "token_not_yet_valid",
            issue(ours, claims(now() + 3600, now() + 300)),
        ),
        (
            "token_wrong_audience",
            issue(ours, {
                let mut c = claims(now() + 3600, now());
                c["aud"] = "acm.mc-b.example".into();
                c
            }),
        ),
        (
            "token_wrong_issuer",
            issue(ours, {
                let mut c = claims(now() + 3600, now());
                c["iss"] = "https://idms.mc-b.example".into();
                c
            }),
        ),
        ("token_missing_claim", issue(ours, no_user)),
    ];
    let http = common::https(
        acm_transport_http::client_api_client_config(a.ca_pem())
            .unwrap_or_else(|e| panic!("client TLS: {e}")),
    );
    let url = format!(
        "{}{}",
        a.client_url(),
        acm_transport_http::wire::client_routes::PROVISION_REQUESTS
    );
    let call = |token: &str, idempotency_key: &str| {
        http.post(&url)
            .bearer_auth(token)
            .header(acm_transport_http::wire::IDEMPOTENCY_KEY, idempotency_key)
            .json(&provision(&["tac-1"]))
            .send()
    };
    for (i, (code, token)) in refused.iter().enumerate() {
        let answer = call(token, &format!("token-refusal-{i}"))
            .await
            .unwrap_or_else(|e| panic!("{code}: {e}"));
        assert_eq!(answer.status(), reqwest::StatusCode::UNAUTHORIZED, "{code}");
        let challenge = answer
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        assert_eq!(
            challenge.as_deref(),
            Some("Bearer error=\"invalid_token\""),
            "{code}"
        );
        let problem: Problem = answer
            .json()
            .await
            .unwrap_or_else(|e| panic!("{code}: not a problem: {e}"));
        assert_eq!(problem.problem_type, format!("urn:acm:problem:{code}"));
        assert_eq!(problem.status, 401);
    }
    assert_eq!(
        a.event_types(),
        Vec::<String>::new(),
        "A recorded a refused call"
    );

    // The control: the same call with a good token is recorded.
    let answer = call(&a.token(ALICE), "token-refusal-control")
        .await
        .unwrap_or_else(|e| panic!("control: {e}"));
    assert_eq!(answer.status(), reqwest::StatusCode::ACCEPTED);
    assert!(a.event_types().iter().any(|t| t == "submitted"));
}

/// Every retry a client may make after a lost answer gets the first answer and records
/// nothing twice: the submission, the download, the response, the acknowledgement.
#[tokio::test]
async fn idempotent_retries() {
    let systems = Systems::start().await;
    let alice = systems.a.client(ALICE);
    let bob = systems.b.client(BOB);

    let first = submit(&alice, &["tac-1"], "retry-1").await;
    let again = submit(&alice, &["tac-1"], "retry-1").await;
    assert_eq!(again, first);
    let reused = problem(alice.submit(&provision(&["tac-2"]), &key("retry-1")).await);
    assert_eq!(reused.code(), "idempotency_key_reused");
    assert_eq!(reused.status, 422);
    let a_types = systems.a.event_types();
    assert_eq!(count(&a_types, "submitted"), 1, "{a_types:?}");

    until_stage(&alice, first, "stored_at_partner", &mut Vec::new()).await;
    let download = bob
        .pending()
        .await
        .unwrap_or_else(|e| panic!("download: {e}"));
    let repeat = bob
        .pending()
        .await
        .unwrap_or_else(|e| panic!("second download: {e}"));
    assert_eq!(download.items.len(), 1);
    assert_eq!(repeat, download);
    let b_types = systems.b.event_types();
    assert_eq!(count(&b_types, "delivered"), 1, "{b_types:?}");

    for _ in 0..2 {
        bob.respond(first, &ACCEPT)
            .await
            .unwrap_or_else(|e| panic!("response: {e}"));
    }
    let b_types = systems.b.event_types();
    assert_eq!(count(&b_types, "responded"), 1, "{b_types:?}");
    let reject = ResponseSubmission {
        decision: DecisionKind::Reject,
        reason: Some("changed my mind".into()),
        responder_alias: None,
    };
    let changed = problem(bob.respond(first, &reject).await);
    assert_eq!(changed.code(), "closed");
    assert_eq!(changed.status, 409);
    assert_eq!(
        changed.extensions.get("error"),
        Some(&serde_json::json!({"error": "closed", "closure": "answered"})),
        "{changed:?}"
    );

    until_stage(&alice, first, "answered", &mut Vec::new()).await;
    let pending = alice
        .pending()
        .await
        .unwrap_or_else(|e| panic!("alice's download: {e}"));
    let items: Vec<DownloadedItem> = pending.items.iter().map(PendingItem::receipt).collect();
    assert_eq!(items, [DownloadedItem::Response(first)]);
    let recorded = |n| {
        let alice = &alice;
        let items = &items;
        async move {
            let got = alice
                .acknowledge(items)
                .await
                .unwrap_or_else(|e| panic!("acknowledgement {n}: {e}"));
            got.recorded
        }
    };
    assert_eq!(recorded(1).await, 1);
    assert_eq!(recorded(2).await, 0);
    let a_types = systems.a.event_types();
    assert_eq!(count(&a_types, "response_delivered"), 1, "{a_types:?}");
}

/// The `acm_sessions` gauge of `server`.
async fn sessions(server: &Server) -> Option<f64> {
    server
        .metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("acm_sessions "))
        .and_then(|v| v.trim().parse().ok())
}

/// One user logged on from two clients: each session gets the notice; closing one leaves the
/// other logged on, and it still gets the next notice.
#[tokio::test]
async fn two_sessions_of_one_user() {
    let systems = Systems::start().await;
    let alice = systems.a.client(ALICE);
    // Two clients, each its own connection: two devices of bob's.
    let phone = systems.b.client(BOB);
    let desk = systems.b.client(BOB);
    let mut phone_stream = phone
        .notifications(None)
        .await
        .unwrap_or_else(|e| panic!("phone: {e}"));
    let mut desk_stream = desk
        .notifications(None)
        .await
        .unwrap_or_else(|e| panic!("desk: {e}"));
    assert_eq!(sessions(&systems.b).await, Some(2.0));

    let first = submit(&alice, &["tac-1"], "sessions-1").await;
    notice(&mut phone_stream, BOB).await;
    notice(&mut desk_stream, BOB).await;
    let pending = desk
        .pending()
        .await
        .unwrap_or_else(|e| panic!("download: {e}"));
    assert!(
        pending
            .items
            .iter()
            .any(|i| i.receipt() == DownloadedItem::Request(first))
    );

    // The first request may raise the desk's session once more (the server also learns of
    // it by following its log); take that notice now, so that the one awaited below cannot
    // be it. Not an assertion: a quiet moment only makes the check below sharper.
    let _ = tokio::time::timeout(Duration::from_millis(500), desk_stream.next()).await;

    drop(phone_stream);
    within("the phone's session to close", async {
        while sessions(&systems.b).await != Some(1.0) {
            tokio::time::sleep(POLL).await;
        }
    })
    .await;

    let second = submit(&alice, &["tac-2"], "sessions-2").await;
    within("a notice of the second request on the desk", async {
        loop {
            notice(&mut desk_stream, BOB).await;
            let pending = desk
                .pending()
                .await
                .unwrap_or_else(|e| panic!("download: {e}"));
            if pending
                .items
                .iter()
                .any(|i| i.receipt() == DownloadedItem::Request(second))
            {
                return;
            }
        }
    })
    .await;
}

/// A request submitted while B is down waits at A, and reaches B once B is back on the same
/// configuration and store.
#[tokio::test]
async fn a_partner_down_for_a_while() {
    let mut systems = Systems::start().await;
    let alice = systems.a.client(ALICE);
    let killed = systems.b.kill().await;
    assert!(!killed.success(), "{killed}");

    let request = submit(&alice, &["tac-1"], "partner-down-1").await;
    for _ in 0..2 {
        let status = alice
            .status(request)
            .await
            .unwrap_or_else(|e| panic!("status: {e}"));
        assert_eq!(status.stage, "queued");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let a_types = systems.a.event_types();
    assert_eq!(count(&a_types, "partner_stored"), 0, "{a_types:?}");

    systems.b.restart().await;
    until_stage(&alice, request, "stored_at_partner", &mut Vec::new()).await;
    let bob = systems.b.client(BOB);
    let pending = bob
        .pending()
        .await
        .unwrap_or_else(|e| panic!("bob's download: {e}"));
    let ids: Vec<RequestId> = pending
        .items
        .iter()
        .map(|i| match i {
            PendingItem::Request { request, .. } => request.request_id,
            other => panic!("not a request: {other:?}"),
        })
        .collect();
    assert_eq!(ids, [request]);
}

/// `acm serve` refuses a configuration with an unknown key, naming it, before it opens the
/// store; and refuses a configuration file that is not there.
#[tokio::test]
async fn a_bad_configuration_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let text =
        common::config_text(A, B, [1, 2], 3).replace("[system]\n", "[system]\ncolour = \"blue\"\n");
    let config = dir.path().join("mc-a.example.toml");
    std::fs::write(&config, text).unwrap_or_else(|e| panic!("{e}"));
    let missing = dir.path().join("nowhere.toml");

    for (path, names) in [(&config, "system.colour"), (&missing, "nowhere.toml")] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_acm"))
            .arg("serve")
            .arg("--config")
            .arg(path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("acm serve: {e}"));
        let Some(status) = common::wait_exit(&mut child).await else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("acm serve started on {}", path.display());
        };
        let mut err = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
        }
        assert_eq!(
            status.code(),
            Some(2),
            "{}: {status}: {err}",
            path.display()
        );
        assert!(err.contains(names), "{}: {err}", path.display());
    }
    assert!(
        !dir.path().join("stores").exists(),
        "the refused configuration opened its store"
    );
}
