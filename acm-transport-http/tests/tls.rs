//! The partner API's handshake over real TLS on loopback: which client certificates reach a
//! handler, and as which partner.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use acm_core::SystemId;
use acm_transport_http::pki::SystemPki;
use acm_transport_http::{
    PartnerTrust, TlsIdentity, client_api_client_config, client_api_server_config,
    partner_api_server_config, partner_client_config,
};
use axum::extract::State;
use axum::routing::get;
use axum::{Extension, Router};
use axum_server::Handle;
use axum_server::tls::TlsInfo;
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::CertificateDer;

fn sys(s: &str) -> SystemId {
    s.parse().unwrap()
}

/// A served router; shut down when dropped.
struct Server {
    url: String,
    /// Requests that reached the handler.
    reached: Arc<AtomicUsize>,
    handle: Handle<SocketAddr>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

#[derive(Clone)]
struct Seen {
    trust: Arc<PartnerTrust>,
    reached: Arc<AtomicUsize>,
}

/// Answers `<partner> <alpn>`: the partner the verified chain names, or `nobody`.
async fn whoami(State(seen): State<Seen>, Extension(info): Extension<Arc<TlsInfo>>) -> String {
    seen.reached.fetch_add(1, Ordering::SeqCst);
    let chain: Vec<CertificateDer<'_>> = info
        .peer_certificates
        .iter()
        .map(|der| CertificateDer::from(der.as_slice()))
        .collect();
    let partner = seen
        .trust
        .identify(&chain)
        .map_or_else(|| "nobody".to_owned(), |system| system.to_string());
    let alpn = String::from_utf8_lossy(info.alpn_protocol.as_deref().unwrap_or_default());
    format!("{partner} {alpn}")
}

async fn serve(config: Arc<rustls::ServerConfig>, trust: Arc<PartnerTrust>) -> Server {
    let reached = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route("/whoami", get(whoami))
        .with_state(Seen {
            trust,
            reached: reached.clone(),
        });
    let handle = Handle::new();
    let server = axum_server::bind_rustls(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        RustlsConfig::from_config(config),
    )
    .handle(handle.clone());
    tokio::spawn(server.serve(app.into_make_service()));
    let addr = handle.listening().await.unwrap();
    Server {
        url: format!("https://{addr}/whoami"),
        reached,
        handle,
    }
}

/// System A's partner API, with partners B and C, each certified by its own CA.
struct World {
    a: SystemPki,
    b: SystemPki,
    c: SystemPki,
    server: Server,
}

async fn world() -> World {
    let a = SystemPki::generate(&sys("mc-a.example")).unwrap();
    let b = SystemPki::generate(&sys("mc-b.example")).unwrap();
    let c = SystemPki::generate(&sys("mc-c.example")).unwrap();
    let trust = Arc::new(
        PartnerTrust::new()
            .with_partner(b.system().clone(), b.ca_pem().as_bytes())
            .unwrap()
            .with_partner(c.system().clone(), c.ca_pem().as_bytes())
            .unwrap(),
    );
    let config = partner_api_server_config(&a.identity(), trust.clone()).unwrap();
    let server = serve(config, trust).await;
    World { a, b, c, server }
}

fn client(tls: rustls::ClientConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .build()
        .unwrap()
}

/// A call to A's partner API presenting `identity`.
async fn call_as(
    a: &SystemPki,
    server: &Server,
    identity: &TlsIdentity,
) -> Result<String, reqwest::Error> {
    let tls = partner_client_config(identity, a.system(), a.ca_pem().as_bytes()).unwrap();
    client(tls)
        .get(&server.url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await
}

/// The call fails and the handler never ran: the handshake refused the certificate.
async fn assert_refused(world: &World, identity: &TlsIdentity) {
    let outcome = call_as(&world.a, &world.server, identity).await;
    assert!(outcome.is_err(), "answered: {outcome:?}");
    assert_eq!(world.server.reached.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_partners_certificate_is_identified_as_that_partner() {
    let w = world().await;
    assert_eq!(
        call_as(&w.a, &w.server, &w.b.identity()).await.unwrap(),
        "mc-b.example h2"
    );
    assert_eq!(
        call_as(&w.a, &w.server, &w.c.identity()).await.unwrap(),
        "mc-c.example h2"
    );
}

#[tokio::test]
async fn no_client_certificate_is_refused_at_the_handshake() {
    let w = world().await;
    let tls = client_api_client_config(w.a.ca_pem().as_bytes()).unwrap();
    let outcome = client(tls).get(&w.server.url).send().await;
    assert!(outcome.is_err(), "answered: {outcome:?}");
    assert_eq!(w.server.reached.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_certificate_of_an_unknown_ca_is_refused() {
    let w = world().await;
    // B's system ID, from a CA that no partner is configured with.
    let impostor = SystemPki::generate(w.b.system()).unwrap();
    assert_refused(&w, &impostor.identity()).await;
}

#[tokio::test]
async fn a_known_cas_certificate_for_a_system_that_is_not_a_partner_is_refused() {
    let w = world().await;
    let stranger = w.b.generate_leaf_for(&sys("mc-x.example")).unwrap();
    assert_refused(&w, &stranger.identity()).await;
}

#[tokio::test]
async fn a_partners_ca_cannot_vouch_for_another_partner() {
    let w = world().await;
    let forged_c = w.b.generate_leaf_for(w.c.system()).unwrap();
    assert_refused(&w, &forged_c.identity()).await;
}

#[tokio::test]
async fn partners_sharing_a_ca_are_told_apart() {
    let a = SystemPki::generate(&sys("mc-a.example")).unwrap();
    let shared = SystemPki::generate(&sys("mc-b.example")).unwrap();
    let trust = Arc::new(
        PartnerTrust::new()
            .with_partner(sys("mc-b.example"), shared.ca_pem().as_bytes())
            .unwrap()
            .with_partner(sys("mc-c.example"), shared.ca_pem().as_bytes())
            .unwrap(),
    );
    let server = serve(
        partner_api_server_config(&a.identity(), trust.clone()).unwrap(),
        trust,
    )
    .await;
    let c = shared.generate_leaf_for(&sys("mc-c.example")).unwrap();
    assert_eq!(
        call_as(&a, &server, &c.identity()).await.unwrap(),
        "mc-c.example h2"
    );
    assert_eq!(
        call_as(&a, &server, &shared.identity()).await.unwrap(),
        "mc-b.example h2"
    );
}

#[tokio::test]
async fn the_client_api_asks_for_no_certificate() {
    let a = SystemPki::generate(&sys("mc-a.example")).unwrap();
    let server = serve(
        client_api_server_config(&a.identity()).unwrap(),
        Arc::new(PartnerTrust::new()),
    )
    .await;
    let tls = client_api_client_config(a.ca_pem().as_bytes()).unwrap();
    let answer = client(tls)
        .get(&server.url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(answer, "nobody h2");
}

#[tokio::test]
async fn a_client_refuses_a_server_of_another_ca() {
    let w = world().await;
    // B calls A but is configured with C's CA for A.
    let tls =
        partner_client_config(&w.b.identity(), w.a.system(), w.c.ca_pem().as_bytes()).unwrap();
    let outcome = client(tls).get(&w.server.url).send().await;
    assert!(outcome.is_err(), "answered: {outcome:?}");
    assert_eq!(w.server.reached.load(Ordering::SeqCst), 0);
}
