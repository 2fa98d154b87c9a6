//! Serving the two APIs of one ACM server over TLS: the client API on one listener, the
//! partner API on another (mutual TLS), with a graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use tokio::task::JoinHandle;

use crate::api::Api;

/// A listener and the TLS configuration it serves with.
#[derive(Debug)]
pub struct TlsListener {
    /// Bound already, so its address is known before serving (port 0 picks one).
    pub listener: std::net::TcpListener,
    /// The server's TLS configuration (for the partner API: one that requires and verifies
    /// client certificates).
    pub tls: Arc<rustls::ServerConfig>,
}

impl TlsListener {
    /// Binds `addr` for `tls`.
    pub fn bind(addr: SocketAddr, tls: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(Self { listener, tls })
    }
}

/// The client and partner APIs of one ACM server, served.
#[derive(Debug)]
pub struct HttpsServer {
    api: Arc<Api>,
    client_addr: SocketAddr,
    partner_addr: SocketAddr,
    handles: [Handle<SocketAddr>; 2],
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

impl HttpsServer {
    /// Serves `api`'s client API on `client` and its partner API on `partner`, on the
    /// current tokio runtime.
    pub fn start(api: Api, client: TlsListener, partner: TlsListener) -> std::io::Result<Self> {
        let api = Arc::new(api);
        let client_addr = client.listener.local_addr()?;
        let partner_addr = partner.listener.local_addr()?;
        let handles = [Handle::new(), Handle::new()];
        let mut tasks = Vec::with_capacity(2);
        for (listener, router, handle) in [
            (client, api.client_router(), handles[0].clone()),
            (partner, api.partner_router(), handles[1].clone()),
        ] {
            let server = axum_server::from_tcp_rustls(
                listener.listener,
                RustlsConfig::from_config(listener.tls),
            )?
            .handle(handle);
            tasks.push(tokio::spawn(async move {
                server.serve(router.into_make_service()).await
            }));
        }
        tracing::info!(%client_addr, %partner_addr, "serving");
        Ok(Self {
            api,
            client_addr,
            partner_addr,
            handles,
            tasks,
        })
    }

    /// Where the client API listens.
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// Where the partner API listens.
    pub fn partner_addr(&self) -> SocketAddr {
        self.partner_addr
    }

    /// The APIs served.
    pub fn api(&self) -> &Arc<Api> {
        &self.api
    }

    /// Stops accepting connections, ends the notification streams, and waits up to `grace`
    /// for the calls in flight to finish (then closes what is left). The server's store is
    /// the caller's to close afterwards.
    pub async fn shutdown(self, grace: Duration) {
        self.api.begin_shutdown();
        for handle in &self.handles {
            handle.graceful_shutdown(Some(grace));
        }
        for task in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "listener ended with an error"),
                Err(error) => tracing::warn!(%error, "listener task failed"),
            }
        }
        tracing::info!("stopped serving");
    }
}
