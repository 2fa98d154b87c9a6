//! `acm serve`: one MC system's ACM server over HTTPS, on its SQLite store, from a
//! configuration file; and the same wiring for the demo's two servers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use acm_core::{AcmServer, AcmStore, Ports};
use acm_store_sqlite::SqliteAcmStore;
use acm_transport_http::{
    Api, ApiConfig, HttpsPartnerTransport, HttpsServer, PartnerEndpoint, PartnerTrust, Runner,
    TlsIdentity, TlsListener, TokenKeys, TokenPolicy, TokenVerifier, TransportOptions,
    client_api_server_config, partner_api_server_config,
};

use crate::Failure;
use crate::config::{Config, TokenKeys as KeyFiles};

/// How long calls in flight get to finish at shutdown.
const GRACE: Duration = Duration::from_secs(10);

/// One running ACM server: its HTTPS listeners, its duties and its store.
pub struct Running {
    https: HttpsServer,
    runner: Runner,
    store: Arc<SqliteAcmStore>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("client", &self.https.client_addr())
            .field("partner", &self.https.partner_addr())
            .finish_non_exhaustive()
    }
}

fn bad(what: &str) -> impl Fn(&dyn std::fmt::Display) -> Failure + '_ {
    move |e| Failure::Usage(format!("{what}: {e}"))
}

/// Starts the server `config` describes, on the current tokio runtime.
pub async fn start(config: &Config) -> Result<Running, Failure> {
    let identity =
        TlsIdentity::from_files(&config.tls.cert, &config.tls.key).map_err(|e| bad("tls")(&e))?;
    let mut trust = PartnerTrust::new();
    let mut endpoints = Vec::with_capacity(config.partners.len());
    for (i, partner) in config.partners.iter().enumerate() {
        let ca = std::fs::read(&partner.ca).map_err(|e| {
            Failure::Open(format!("partners[{i}].ca {}: {e}", partner.ca.display()))
        })?;
        trust = trust
            .with_partner(partner.system.clone(), &ca)
            .map_err(|e| bad(&format!("partners[{i}].ca"))(&e))?;
        endpoints.push(PartnerEndpoint {
            system: partner.system.clone(),
            base_url: partner.url.clone(),
            ca_pem: ca,
        });
    }
    let trust = Arc::new(trust);
    let transport = HttpsPartnerTransport::new(&identity, endpoints, TransportOptions::default())
        .map_err(|e| bad("partners")(&e))?;
    let tokens = verifier(config)?;

    if let Some(dir) = config.store.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::Open(format!("store.path {}: {e}", dir.display())))?;
    }
    let store = Arc::new(
        SqliteAcmStore::open(&config.store)
            .map_err(|e| Failure::Open(format!("store.path {}: {e}", config.store.display())))?,
    );
    let ports = Ports::builder(Arc::new(config.directory()), Arc::new(transport)).build();
    let dyn_store: Arc<dyn AcmStore> = store.clone();
    let server = Arc::new(
        AcmServer::open(config.server.clone(), ports, dyn_store)
            .await
            .map_err(|e| bad("server")(&e))?,
    );
    let api = Api::new(
        server.clone(),
        Arc::new(tokens),
        trust.clone(),
        ApiConfig {
            body_limit: config.limits.body_bytes,
            body_timeout: config.limits.body_timeout,
            request_timeout: config.limits.request_timeout,
            concurrency: config.limits.concurrency,
            keep_alive: config.timing.sse_keepalive,
            ..ApiConfig::default()
        },
    );
    let client_tls = client_api_server_config(&identity).map_err(|e| bad("tls")(&e))?;
    let partner_tls = partner_api_server_config(&identity, trust).map_err(|e| bad("tls")(&e))?;
    let listen = |addr, tls, key: &str| {
        let bound = TlsListener::bind(addr, tls)
            .map_err(|e| Failure::Open(format!("listen.{key} {addr}: {e}")))?;
        // Accepted connections inherit TCP_NODELAY from the listener (Linux). Without it
        // Nagle holds an answer's last small TLS record until the client's delayed ACK,
        // about 40 ms later (measured with `acm load`: p99 of every call ≈ 45 ms).
        socket2::SockRef::from(&bound.listener)
            .set_tcp_nodelay(true)
            .map_err(|e| Failure::Open(format!("listen.{key} {addr}: TCP_NODELAY: {e}")))?;
        Ok::<_, Failure>(bound)
    };
    let https = HttpsServer::start(
        api,
        listen(config.listen.client, client_tls, "client")?,
        listen(config.listen.partner, partner_tls, "partner")?,
    )
    .map_err(|e| Failure::Open(format!("listen: {e}")))?;
    let runner = Runner::start(server, config.timing.tick);
    Ok(Running {
        https,
        runner,
        store,
    })
}

fn verifier(config: &Config) -> Result<TokenVerifier, Failure> {
    let t = &config.tokens;
    let mut algorithms = Vec::with_capacity(t.algorithms.len());
    for name in &t.algorithms {
        algorithms.push(
            name.parse::<jsonwebtoken::Algorithm>()
                .map_err(|e| bad("tokens.algorithms")(&e))?,
        );
    }
    let keys = match &t.keys {
        KeyFiles::Jwks(path) => {
            TokenKeys::from_jwks_file(path).map_err(|e| bad("tokens.jwks")(&e))?
        }
        KeyFiles::PublicKeys(paths) => {
            let mut keys: Option<TokenKeys> = None;
            for path in paths {
                let key =
                    TokenKeys::from_pem_file(path).map_err(|e| bad("tokens.public_keys")(&e))?;
                keys = Some(match keys {
                    None => key,
                    Some(keys) => keys.merge(key).map_err(|e| bad("tokens.public_keys")(&e))?,
                });
            }
            keys.ok_or_else(|| Failure::Usage("tokens.public_keys: no key".into()))?
        }
    };
    let policy = TokenPolicy::new(&t.issuer, &t.audience)
        .with_algorithms(algorithms)
        .with_leeway(Duration::from_secs(t.leeway_seconds))
        .with_claim(&t.claim);
    TokenVerifier::new(policy, keys).map_err(|e| bad("tokens")(&e))
}

impl Running {
    /// Where the client API listens.
    pub fn client_addr(&self) -> std::net::SocketAddr {
        self.https.client_addr()
    }

    /// Where the partner API listens.
    pub fn partner_addr(&self) -> std::net::SocketAddr {
        self.https.partner_addr()
    }

    /// The store, for reading what the server recorded.
    pub fn store(&self) -> &Arc<SqliteAcmStore> {
        &self.store
    }

    /// Stops gracefully: no new connections, calls in flight finish, the duties stop after
    /// their pass, and the store closes (everything acknowledged is on disk already).
    pub async fn stop(self) -> Result<(), Failure> {
        self.https.shutdown(GRACE).await;
        self.runner.shutdown().await;
        match Arc::try_unwrap(self.store) {
            Ok(store) => store
                .close()
                .await
                .map_err(|e| Failure::Open(format!("closing the store: {e}"))),
            // Something still holds it (a stream cut short); dropping it closes it too.
            Err(_) => Ok(()),
        }
    }
}

/// `acm serve --config FILE`: runs until SIGTERM or Ctrl-C, then stops gracefully.
pub async fn run(path: &Path) -> Result<(), Failure> {
    let config = Config::load(path).map_err(|e| {
        tracing::error!(key = %e.key, code = e.code(), "configuration refused");
        Failure::Usage(e.to_string())
    })?;
    let running = start(&config).await?;
    tracing::info!(
        system = %config.server.system,
        client = %running.client_addr(),
        partner = %running.partner_addr(),
        "acm serve: ready"
    );
    eprintln!(
        "acm serve: {} ready (client API https://{}, partner API https://{})",
        config.server.system,
        running.client_addr(),
        running.partner_addr()
    );
    signal().await;
    eprintln!("acm serve: stopping");
    running.stop().await
}

async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
