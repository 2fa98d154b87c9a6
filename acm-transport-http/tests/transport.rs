//! `HttpsPartnerTransport` against real partner servers on loopback, over mutual TLS: what
//! each kind of answer (or its absence) becomes for the relay.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acm_core::{
    AcmRequest, AcmRequestBody, AcmResponse, AcmServer, AcmStore, DomainError, EventStore,
    McServiceId, MessageId, Outcome, PartnerAck, PartnerMessage, PartnerProblem, PartnerTransport,
    Ports, RequestId, Responder, ServerConfig, SystemId, Target, TransportError,
};
use acm_store_memory::fixture::{TwoSystems, alice, bob, provision};
use acm_transport_http::pki::SystemPki;
use acm_transport_http::wire::{
    ForwardedRequest, ForwardedResponse, ForwardedWithdrawal, PartnerAckBody, partner_routes,
};
use acm_transport_http::{
    Api, ApiConfig, AuthFailure, Authenticator, HttpsPartnerTransport, HttpsServer, PROBLEM_JSON,
    PartnerEndpoint, PartnerTrust, Problem, TlsIdentity, TlsListener, TransportOptions,
    client_api_server_config, partner_api_server_config,
};
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Extension, Json, Router};
use axum_server::Handle;
use axum_server::tls::TlsInfo;
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::CertificateDer;
use uuid::Uuid;

/// Long enough never to be reached by a server that answers.
const ANSWERED: Duration = Duration::from_secs(10);
/// Short, for servers that never answer.
const SHORT: Duration = Duration::from_millis(300);

fn sys(s: &str) -> SystemId {
    s.parse().unwrap()
}

/// What the partner's server saw of one call.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    sender: Option<SystemId>,
    peer: SocketAddr,
    alpn: Option<Vec<u8>>,
    body: Body,
}

#[derive(Debug, Clone, PartialEq)]
enum Body {
    Request(ForwardedRequest),
    Response(ForwardedResponse),
    Withdrawal(ForwardedWithdrawal),
}

#[derive(Clone)]
struct Partner {
    trust: Arc<PartnerTrust>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Partner {
    fn record(&self, peer: SocketAddr, info: &TlsInfo, body: Body) {
        let chain: Vec<CertificateDer<'_>> = info
            .peer_certificates
            .iter()
            .map(|der| CertificateDer::from(der.as_slice()))
            .collect();
        self.seen.lock().unwrap().push(Seen {
            sender: self.trust.identify(&chain),
            peer,
            alpn: info.alpn_protocol.clone(),
            body,
        });
    }
}

async fn on_request(
    State(partner): State<Partner>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(info): Extension<Arc<TlsInfo>>,
    Json(body): Json<ForwardedRequest>,
) -> Json<PartnerAckBody> {
    partner.record(peer, &info, Body::Request(body));
    Json(PartnerAckBody {
        ack: PartnerAck::Stored,
    })
}

async fn on_response(
    State(partner): State<Partner>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(info): Extension<Arc<TlsInfo>>,
    Json(body): Json<ForwardedResponse>,
) -> Json<PartnerAckBody> {
    partner.record(peer, &info, Body::Response(body));
    Json(PartnerAckBody {
        ack: PartnerAck::Stored,
    })
}

async fn on_withdrawal(
    State(partner): State<Partner>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(info): Extension<Arc<TlsInfo>>,
    Json(body): Json<ForwardedWithdrawal>,
) -> Json<PartnerAckBody> {
    partner.record(peer, &info, Body::Withdrawal(body));
    Json(PartnerAckBody {
        ack: PartnerAck::Withdrawn,
    })
}

/// A served partner API; shut down when dropped.
struct Server {
    base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    handle: Handle<SocketAddr>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

impl Server {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Serves `routes` (given the partner state) with `identity`, trusting `trust`'s partners.
async fn serve(
    identity: &TlsIdentity,
    trust: PartnerTrust,
    routes: impl FnOnce(Router<Partner>) -> Router<Partner>,
) -> Server {
    let trust = Arc::new(trust);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = routes(Router::new()).with_state(Partner {
        trust: trust.clone(),
        seen: seen.clone(),
    });
    let config = partner_api_server_config(identity, trust).unwrap();
    let handle = Handle::new();
    let server = axum_server::bind_rustls(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        RustlsConfig::from_config(config),
    )
    .handle(handle.clone());
    tokio::spawn(server.serve(app.into_make_service_with_connect_info::<SocketAddr>()));
    let addr = handle.listening().await.unwrap();
    Server {
        base_url: format!("https://{addr}"),
        seen,
        handle,
    }
}

fn acks(router: Router<Partner>) -> Router<Partner> {
    router
        .route(partner_routes::PROVISION_REQUESTS, post(on_request))
        .route(partner_routes::PROVISION_RESPONSES, post(on_response))
        .route(partner_routes::WITHDRAWALS, post(on_withdrawal))
}

/// Every call answered with `answer`, after recording it.
fn always<R: IntoResponse + Clone + Send + Sync + 'static>(
    answer: R,
) -> impl FnOnce(Router<Partner>) -> Router<Partner> {
    move |router| {
        router.fallback(
            move |State(partner): State<Partner>,
                  ConnectInfo(peer): ConnectInfo<SocketAddr>,
                  Extension(info): Extension<Arc<TlsInfo>>,
                  Json(body): Json<ForwardedWithdrawal>| async move {
                partner.record(peer, &info, Body::Withdrawal(body));
                answer
            },
        )
    }
}

/// System A (the sender) and its partner B.
struct Systems {
    a: SystemPki,
    b: SystemPki,
}

fn systems() -> Systems {
    Systems {
        a: SystemPki::generate(&sys("mc-a.example")).unwrap(),
        b: SystemPki::generate(&sys("mc-b.example")).unwrap(),
    }
}

impl Systems {
    /// B's trust: A is its partner.
    fn b_trusts_a(&self) -> PartnerTrust {
        PartnerTrust::new()
            .with_partner(self.a.system().clone(), self.a.ca_pem().as_bytes())
            .unwrap()
    }

    /// A's transport, with B at `base_url` certified by B's CA.
    fn transport_to_b(&self, base_url: &str) -> HttpsPartnerTransport {
        HttpsPartnerTransport::new(
            &self.a.identity(),
            vec![PartnerEndpoint {
                system: self.b.system().clone(),
                base_url: base_url.to_owned(),
                ca_pem: self.b.ca_pem().into_bytes(),
            }],
            TransportOptions::default(),
        )
        .unwrap()
    }

    /// B's partner API answering the three routes.
    async fn b_acking(&self) -> Server {
        serve(&self.b.identity(), self.b_trusts_a(), acks).await
    }
}

fn message_id() -> MessageId {
    MessageId::from_uuid(Uuid::now_v7()).unwrap()
}

fn request_id() -> RequestId {
    RequestId::from_uuid(Uuid::now_v7()).unwrap()
}

fn withdrawal() -> (PartnerMessage, ForwardedWithdrawal) {
    let (message_id, request_id) = (message_id(), request_id());
    (
        PartnerMessage::Withdrawal {
            message_id,
            request_id,
        },
        ForwardedWithdrawal {
            message_id,
            request_id,
        },
    )
}

fn detail(outcome: Result<PartnerAck, TransportError>) -> String {
    match outcome {
        Err(TransportError::Unreachable { system, detail }) => {
            assert_eq!(system, sys("mc-b.example"));
            detail
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn the_three_messages_reach_the_partner_and_return_its_acks() {
    let s = systems();
    let server = s.b_acking().await;
    let transport = s.transport_to_b(&server.base_url);
    let to = s.b.system();

    let request = AcmRequest {
        request_id: request_id(),
        requester: "sip:alice@mc-a.example".parse().unwrap(),
        requester_alias: None,
        partner: to.clone(),
        target: Target::User("sip:bob@mc-b.example".parse().unwrap()),
        body: AcmRequestBody::provision(["sip:fire-ops@mc-a.example".parse().unwrap()]),
    };
    let (request_message, response_message) = (message_id(), message_id());
    let response = AcmResponse {
        responder: Responder::User {
            id: "sip:bob@mc-b.example".parse().unwrap(),
            alias: None,
        },
        outcome: Outcome::Accepted,
        user_results: Arc::default(),
    };
    let (withdraw, forwarded_withdrawal) = withdrawal();

    let sent = [
        PartnerMessage::Request {
            message_id: request_message,
            request: Arc::new(request.clone()),
        },
        PartnerMessage::Response {
            message_id: response_message,
            request_id: request.request_id,
            response: response.clone(),
        },
        withdraw,
    ];
    let mut answers = Vec::new();
    for message in &sent {
        answers.push(transport.send(to, message, ANSWERED).await);
    }
    assert_eq!(
        answers,
        vec![
            Ok(PartnerAck::Stored),
            Ok(PartnerAck::Stored),
            Ok(PartnerAck::Withdrawn)
        ]
    );

    let seen = server.seen();
    let bodies: Vec<Body> = seen.iter().map(|s| s.body.clone()).collect();
    assert_eq!(
        bodies,
        vec![
            Body::Request(ForwardedRequest {
                message_id: request_message,
                request: request.clone(),
            }),
            Body::Response(ForwardedResponse {
                message_id: response_message,
                request_id: request.request_id,
                response,
            }),
            Body::Withdrawal(forwarded_withdrawal),
        ]
    );
    for call in &seen {
        assert_eq!(call.sender.as_ref(), Some(s.a.system()), "A's certificate");
        assert_eq!(call.alpn.as_deref(), Some(&b"h2"[..]), "HTTP/2");
        assert_eq!(
            call.peer, seen[0].peer,
            "one pooled connection for all three"
        );
    }
}

#[tokio::test]
async fn a_domain_problem_is_a_domain_refusal() {
    let s = systems();
    let error = DomainError::NotInterconnected {
        system: s.a.system().clone(),
    };
    let problem =
        Problem::new(error.code(), 403, "Not an interconnected partner").with("error", &error);
    let answer = (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, PROBLEM_JSON)],
        serde_json::to_string(&problem).unwrap(),
    );
    let server = serve(&s.b.identity(), s.b_trusts_a(), always(answer)).await;
    let transport = s.transport_to_b(&server.base_url);
    let outcome = transport
        .send(s.b.system(), &withdrawal().0, ANSWERED)
        .await;
    assert_eq!(
        outcome,
        Err(TransportError::Refused {
            system: s.b.system().clone(),
            problem: PartnerProblem::Domain(error),
        })
    );
}

#[tokio::test]
async fn another_4xx_problem_is_refused_by_its_type() {
    let s = systems();
    let problem = Problem::new("malformed_body", 400, "Malformed body");
    let answer = (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, PROBLEM_JSON)],
        serde_json::to_string(&problem).unwrap(),
    );
    let server = serve(&s.b.identity(), s.b_trusts_a(), always(answer)).await;
    let transport = s.transport_to_b(&server.base_url);
    let outcome = transport
        .send(s.b.system(), &withdrawal().0, ANSWERED)
        .await;
    assert_eq!(
        outcome,
        Err(TransportError::Refused {
            system: s.b.system().clone(),
            problem: PartnerProblem::Other {
                problem_type: "urn:acm:problem:malformed_body".into(),
            },
        })
    );
}

#[tokio::test]
async fn a_503_is_unreachable() {
    let s = systems();
    let problem = Problem::new("overloaded", 503, "Busy").with_detail("call limit reached");
    let answer = (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, PROBLEM_JSON)],
        serde_json::to_string(&problem).unwrap(),
    );
    let server = serve(&s.b.identity(), s.b_trusts_a(), always(answer)).await;
    let transport = s.transport_to_b(&server.base_url);
    let detail = detail(
        transport
            .send(s.b.system(), &withdrawal().0, ANSWERED)
            .await,
    );
    assert!(detail.contains("503"), "{detail}");
    assert_eq!(
        server.seen().len(),
        1,
        "it was answered, not lost on the way"
    );
}

#[tokio::test]
async fn a_429_is_unreachable_not_a_refusal() {
    let s = systems();
    let server = serve(
        &s.b.identity(),
        s.b_trusts_a(),
        always(StatusCode::TOO_MANY_REQUESTS),
    )
    .await;
    let transport = s.transport_to_b(&server.base_url);
    let detail = detail(
        transport
            .send(s.b.system(), &withdrawal().0, ANSWERED)
            .await,
    );
    assert!(detail.contains("429"), "{detail}");
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let s = systems();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let transport = s.transport_to_b(&format!("https://127.0.0.1:{port}"));
    detail(
        transport
            .send(s.b.system(), &withdrawal().0, ANSWERED)
            .await,
    );
}

#[tokio::test]
async fn a_server_that_accepts_and_never_answers_is_unreachable() {
    let s = systems();
    let never = |router: Router<Partner>| router.fallback(std::future::pending::<StatusCode>);
    let server = serve(&s.b.identity(), s.b_trusts_a(), never).await;
    let transport = s.transport_to_b(&server.base_url);
    detail(transport.send(s.b.system(), &withdrawal().0, SHORT).await);
}

#[tokio::test]
async fn a_listener_that_never_completes_the_handshake_is_unreachable() {
    let s = systems();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and holds every connection without a word.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let transport = s.transport_to_b(&format!("https://{addr}"));
    detail(transport.send(s.b.system(), &withdrawal().0, SHORT).await);
    holder.abort();
}

#[tokio::test]
async fn a_server_with_a_certificate_of_another_ca_is_unreachable() {
    let s = systems();
    // B's system ID and address, but a certificate from a CA that A does not trust for B.
    let impostor = SystemPki::generate(s.b.system()).unwrap();
    let server = serve(&impostor.identity(), s.b_trusts_a(), acks).await;
    let transport = s.transport_to_b(&server.base_url);
    let detail = detail(
        transport
            .send(s.b.system(), &withdrawal().0, ANSWERED)
            .await,
    );
    assert!(detail.to_lowercase().contains("certificate"), "{detail}");
    assert!(server.seen().is_empty(), "nothing was sent to it");
}

#[tokio::test]
async fn a_server_certified_by_the_partners_ca_for_another_system_is_unreachable() {
    let s = systems();
    // B's CA, valid for the address (127.0.0.1), but for system mc-x: not B.
    let other = s.b.generate_leaf_for(&sys("mc-x.example")).unwrap();
    let server = serve(&other.identity(), s.b_trusts_a(), acks).await;
    let transport = s.transport_to_b(&server.base_url);
    detail(
        transport
            .send(s.b.system(), &withdrawal().0, ANSWERED)
            .await,
    );
    assert!(server.seen().is_empty(), "nothing was sent to it");
}

#[tokio::test]
async fn a_partner_that_refuses_our_certificate_is_unreachable() {
    let s = systems();
    // B's server trusts only C: A's handshake is refused, which a configuration change at
    // B can mend, so the relay keeps the message.
    let c = SystemPki::generate(&sys("mc-c.example")).unwrap();
    let trusts_c = PartnerTrust::new()
        .with_partner(c.system().clone(), c.ca_pem().as_bytes())
        .unwrap();
    let server = serve(&s.b.identity(), trusts_c, acks).await;
    let transport = s.transport_to_b(&server.base_url);
    detail(
        transport
            .send(s.b.system(), &withdrawal().0, ANSWERED)
            .await,
    );
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn an_unconfigured_partner_is_unreachable() {
    let s = systems();
    let server = s.b_acking().await;
    let transport = s.transport_to_b(&server.base_url);
    let outcome = transport
        .send(&sys("mc-z.example"), &withdrawal().0, ANSWERED)
        .await;
    let Err(TransportError::Unreachable { system, detail }) = outcome else {
        panic!("expected Unreachable, got {outcome:?}");
    };
    assert_eq!(system, sys("mc-z.example"));
    assert!(detail.contains("not a configured partner"), "{detail}");
    assert!(server.seen().is_empty());
}

/// The client API is not exercised here: every token is refused.
struct NoClients;

impl Authenticator for NoClients {
    fn authenticate(&self, _: Option<&str>) -> Result<McServiceId, AuthFailure> {
        Err(AuthFailure {
            code: "token_missing",
            detail: "no client API in this test".into(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one end-to-end story
async fn a_relay_over_https_reaches_the_partners_api_and_its_refusals_come_back() {
    let two = TwoSystems::new().await.unwrap();
    let (a_id, b_id) = (two.a.id.clone(), two.b.id.clone());
    let a = SystemPki::generate(&a_id).unwrap();
    let b = SystemPki::generate(&b_id).unwrap();
    let c = SystemPki::generate(&sys("mc-c.example")).unwrap();
    // B's listener lets C's certificate through, but B's directory does not interconnect C.
    let trust = Arc::new(
        PartnerTrust::new()
            .with_partner(a_id.clone(), a.ca_pem().as_bytes())
            .unwrap()
            .with_partner(c.system().clone(), c.ca_pem().as_bytes())
            .unwrap(),
    );
    let api = Api::new(
        two.b.server.clone(),
        Arc::new(NoClients),
        trust.clone(),
        ApiConfig::default(),
    );
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = HttpsServer::start(
        api,
        TlsListener::bind(loopback, client_api_server_config(&b.identity()).unwrap()).unwrap(),
        TlsListener::bind(
            loopback,
            partner_api_server_config(&b.identity(), trust).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let to_b = |from: &SystemPki| {
        HttpsPartnerTransport::new(
            &from.identity(),
            vec![PartnerEndpoint {
                system: b_id.clone(),
                base_url: format!("https://{}", server.partner_addr()),
                ca_pem: b.ca_pem().into_bytes(),
            }],
            TransportOptions::default(),
        )
        .unwrap()
    };

    // A node of A whose relay sends over HTTPS.
    let ports = Ports::builder(two.a.directory.clone(), Arc::new(to_b(&a)))
        .clock(two.clock.clone())
        .build();
    let store: Arc<dyn AcmStore> = two.a.store.clone();
    let a_node = AcmServer::open(ServerConfig::new(a_id.clone()), ports, store)
        .await
        .unwrap();
    let id = a_node
        .submit(&alice(), provision(Target::User(bob()), 1))
        .await
        .unwrap();
    let report = a_node.relay().await.unwrap();
    assert_eq!(report.acknowledged, 1, "{report:?}");
    assert_eq!(two.b.server.pending_for(&bob()).await.unwrap(), vec![id]);

    // From C: through the handshake, refused by B's lifecycle, and the refusal comes back
    // as the domain error.
    let request = AcmRequest {
        request_id: request_id(),
        requester: "sip:carol@mc-c.example".parse().unwrap(),
        requester_alias: None,
        partner: b_id.clone(),
        target: Target::User(bob()),
        body: AcmRequestBody::provision(["sip:ops@mc-c.example".parse().unwrap()]),
    };
    let message = PartnerMessage::Request {
        message_id: message_id(),
        request: Arc::new(request),
    };
    let outcome = to_b(&c).send(&b_id, &message, ANSWERED).await;
    assert_eq!(
        outcome,
        Err(TransportError::Refused {
            system: b_id.clone(),
            problem: PartnerProblem::Domain(DomainError::NotInterconnected {
                system: c.system().clone(),
            }),
        })
    );

    // A replay from A is acknowledged again and stored once.
    let replayed = PartnerMessage::Request {
        message_id: message_id(),
        request: Arc::new(AcmRequest {
            request_id: request_id(),
            requester: alice(),
            requester_alias: None,
            partner: b_id.clone(),
            target: Target::User(bob()),
            body: AcmRequestBody::provision(["sip:ops-2@mc-a.example".parse().unwrap()]),
        }),
    };
    let before = two.b.store.head().await.unwrap();
    let first = to_b(&a).send(&b_id, &replayed, ANSWERED).await;
    let stored = two.b.store.head().await.unwrap();
    let again = to_b(&a).send(&b_id, &replayed, ANSWERED).await;
    assert_eq!(
        (first, again),
        (Ok(PartnerAck::Stored), Ok(PartnerAck::Stored))
    );
    assert!(stored > before, "the first is stored");
    assert_eq!(
        two.b.store.head().await.unwrap(),
        stored,
        "the replay stores nothing"
    );
    server.shutdown(Duration::from_secs(1)).await;
}
