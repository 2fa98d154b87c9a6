//! The network between two `acm serve` processes, owned by the test: a switchable TCP relay
//! that a server's partner URL points at (forwarding, refusing, or accepting and never
//! answering), a partner that completes TLS and reads the call but never answers, and the
//! partner API called directly with a system's own certificate, with the very messages a
//! server's relay sends, read back from its store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use acm_core::{Envelope, Event, RequestId};
use acm_transport_http::wire::{ForwardedRequest, ForwardedResponse, ForwardedWithdrawal};
use acm_transport_http::{PartnerTrust, TlsIdentity};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Server, Systems, https, system};

/// What a [`Switch`] does with each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Closes it at once: the partner is down.
    Refuse,
    /// Accepts it and never writes a byte: a partner that hangs.
    Hole,
    /// Relays it to this address.
    Forward(SocketAddr),
}

/// A TCP relay on a loopback port of its own, between a server and its partner. Changing
/// the route also ends the connections opened under the old one, so a pooled connection
/// cannot carry on past a switch.
#[derive(Debug)]
pub struct Switch {
    port: u16,
    route: watch::Sender<Route>,
    held: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Switch {
    /// Listening, with `route`.
    pub async fn start(route: Route) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("switch: no loopback port: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("switch: no local address: {e}"))
            .port();
        let (sender, routes) = watch::channel(route);
        let held = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(accept(listener, routes, held.clone()));
        Self {
            port,
            route: sender,
            held,
            task,
        }
    }

    /// The URL to give a server as its partner's (`localhost` is in every certificate
    /// `acm gen-certs` makes).
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// From now on, `route`.
    pub fn set(&self, route: Route) {
        self.route.send_replace(route);
    }

    /// How many connections were accepted and held without an answer so far.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, routes: watch::Receiver<Route>, held: Arc<AtomicUsize>) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let mut routes = routes.clone();
        let route = *routes.borrow_and_update();
        let held = held.clone();
        tokio::spawn(async move {
            let changed = routes.changed();
            match route {
                Route::Refuse => drop(socket),
                Route::Hole => {
                    held.fetch_add(1, Ordering::SeqCst);
                    tokio::select! {
                        () = swallow(socket) => {}
                        _ = changed => {}
                    }
                }
                Route::Forward(to) => {
                    tokio::select! {
                        () = relay(socket, to) => {}
                        _ = changed => {}
                    }
                }
            }
        });
    }
}

/// Reads and drops everything until the peer closes: the caller's bytes are taken, and no
/// answer ever comes.
async fn swallow(mut socket: TcpStream) {
    let mut buffer = [0_u8; 4096];
    while matches!(socket.read(&mut buffer).await, Ok(n) if n > 0) {}
}

async fn relay(mut socket: TcpStream, to: SocketAddr) {
    if let Ok(mut upstream) = TcpStream::connect(to).await {
        let _ = tokio::io::copy_bidirectional(&mut socket, &mut upstream).await;
    }
}

/// `server`'s partner API as a socket address for [`Route::Forward`].
pub fn partner_addr(server: &Server) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], server.partner_port))
}

/// A partner API that completes the mutual TLS handshake as `system`'s server would (its
/// certificate, trusting `caller`'s CA for `caller`), reads each call, and never answers it.
#[derive(Debug)]
pub struct Stall {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    handle: axum_server::Handle<SocketAddr>,
}

impl Stall {
    /// Listening on a loopback port of its own.
    pub fn start(systems: &Systems, system: &str, caller: &str) -> Self {
        let identity = identity(systems, system);
        let trust = PartnerTrust::new()
            .with_partner(
                super::system(caller),
                &super::read(&systems.certs(caller).join("ca.pem")),
            )
            .unwrap_or_else(|e| panic!("trust of {caller}: {e}"));
        let tls = acm_transport_http::partner_api_server_config(&identity, Arc::new(trust))
            .unwrap_or_else(|e| panic!("stall TLS: {e}"));
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("stall: no loopback port: {e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("stall: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("stall: no local address: {e}"));
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let app = axum::Router::new().fallback(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
            }
        });
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(
            listener,
            axum_server::tls_rustls::RustlsConfig::from_config(tls),
        )
        .unwrap_or_else(|e| panic!("stall listener: {e}"))
        .handle(handle.clone());
        tokio::spawn(async move {
            let _ = server.serve(app.into_make_service()).await;
        });
        Self {
            addr,
            calls,
            handle,
        }
    }

    /// Its address, for [`Route::Forward`].
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many calls reached its handler (each left unanswered).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Drop for Stall {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// The identity `acm gen-certs` wrote for `system`.
pub fn identity(systems: &Systems, system: &str) -> TlsIdentity {
    let dir = systems.certs(system);
    TlsIdentity::from_files(dir.join("cert.pem"), dir.join("key.pem"))
        .unwrap_or_else(|e| panic!("identity of {system}: {e}"))
}

/// `from`'s server calling `to`'s partner API directly, with `from`'s certificate.
#[derive(Debug)]
pub struct PartnerLink {
    http: reqwest::Client,
    base: String,
}

impl PartnerLink {
    /// The link from `from` to `to` (one of [`Systems`]'s two servers).
    pub fn new(systems: &Systems, from: &str, to: &Server) -> Self {
        let tls = acm_transport_http::partner_client_config(
            &identity(systems, from),
            &system(to.system),
            to.ca_pem(),
        )
        .unwrap_or_else(|e| panic!("partner TLS of {from}: {e}"));
        Self {
            http: https(tls),
            base: to.partner_url(),
        }
    }

    /// POSTs `body` to `route`: the status and the body as JSON.
    pub async fn post(
        &self,
        route: &str,
        body: &impl serde::Serialize,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let answer = self
            .http
            .post(format!("{}{route}", self.base))
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {route}: {e}"));
        let status = answer.status();
        let text = answer
            .text()
            .await
            .unwrap_or_else(|e| panic!("POST {route}: body: {e}"));
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("POST {route}: {status} {text:?} is not JSON: {e}"));
        (status, json)
    }
}

/// The events of `request` in `events`.
pub fn of(events: &[Envelope<Event>], request: RequestId) -> Vec<&Envelope<Event>> {
    events
        .iter()
        .filter(|e| e.correlation_id == request)
        .collect()
}

/// The event types of `request` in `events`, in log order.
pub fn types_of(events: &[Envelope<Event>], request: RequestId) -> Vec<String> {
    of(events, request)
        .iter()
        .map(|e| e.event_type.to_string())
        .collect()
}

/// Polls `server`'s log until the event types of `request` satisfy `done`; `what` names
/// the wait if it gives up.
pub async fn until_events(
    server: &Server,
    request: RequestId,
    what: &str,
    done: impl Fn(&[String]) -> bool,
) {
    super::within(what, async {
        loop {
            if done(&types_of(&server.events(), request)) {
                return;
            }
            tokio::time::sleep(super::POLL).await;
        }
    })
    .await;
}

/// The step-3 message `primary` sends for `request`, as its relay builds it: the request it
/// recorded at step 1 and the message id of its outbox entry.
pub fn forwarded_request(primary: &Server, request: RequestId) -> ForwardedRequest {
    let events = primary.events();
    let mut sent = None;
    let mut message_id = None;
    for e in of(&events, request) {
        match &e.payload {
            Event::Submitted { request, .. } => sent = Some(acm_core::AcmRequest::clone(request)),
            Event::Forwarded { message_id: m, .. } => message_id = Some(*m),
            _ => {}
        }
    }
    match (sent, message_id) {
        (Some(request), Some(message_id)) => ForwardedRequest {
            message_id,
            request,
        },
        _ => panic!("{} has not forwarded {request}", primary.system),
    }
}

/// The withdrawal `primary` owes its partner for `request`.
pub fn forwarded_withdrawal(primary: &Server, request: RequestId) -> ForwardedWithdrawal {
    let events = primary.events();
    of(&events, request)
        .into_iter()
        .find_map(|e| match &e.payload {
            Event::WithdrawalRequested { message_id, .. } => Some(ForwardedWithdrawal {
                message_id: *message_id,
                request_id: request,
            }),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{} has no withdrawal of {request}", primary.system))
}

/// The step-10 message `partner` sends for `request`: its recorded response.
pub fn forwarded_response(partner: &Server, request: RequestId) -> ForwardedResponse {
    let events = partner.events();
    of(&events, request)
        .into_iter()
        .find_map(|e| match &e.payload {
            Event::Responded {
                message_id,
                response,
            } => Some(ForwardedResponse {
                message_id: *message_id,
                request_id: request,
                response: response.clone(),
            }),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{} has not responded to {request}", partner.system))
}

/// The value of the sample `name` (with its labels, as Prometheus writes them:
/// `acm_relay_sends_total{outcome="unreachable"}`) in a `/metrics` text; `None` when absent.
pub fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

/// [`sample`], 0 when the metric was never recorded (a counter not yet incremented).
pub fn sample_or_zero(metrics: &str, name: &str) -> f64 {
    sample(metrics, name).unwrap_or(0.0)
}
