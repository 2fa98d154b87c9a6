//! Two ACM servers on loopback — MC systems A (`mc-a.example`) and B (`mc-b.example`) —
//! with test certificates, a token signing key and temporary SQLite stores: what `acm demo`
//! and `acm load` start. Each server is configured through the same file format and checks
//! as `acm serve`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use acm_core::{McServiceId, Processing, SystemId};
use acm_transport_http::{AcmClient, TokenIssuer};

use crate::Failure;
use crate::config::Config;
use crate::material;
use crate::serve::{self, Running};

/// The two systems.
pub const A: &str = "mc-a.example";
/// The partner system.
pub const B: &str = "mc-b.example";

/// How the pair is set up.
#[derive(Debug, Clone)]
pub struct PairOptions {
    /// Users per system: `sip:alice@mc-a.example` and `sip:bob@mc-b.example` for 1, else
    /// `alice-<i>` and `bob-<i>`.
    pub users: usize,
    /// How B processes interconnection group identity provision requests.
    pub processing: Processing,
    /// How often each server's duties run.
    pub tick: Duration,
    /// Most sends in flight to the partner at once (`[limits] sends_per_partner`); `None`
    /// keeps the server's default.
    pub sends_per_partner: Option<usize>,
    /// The relay's longest back-off between attempts (`[timing] max_backoff_seconds`);
    /// `None` keeps the server's default.
    pub max_backoff_seconds: Option<u64>,
}

impl Default for PairOptions {
    fn default() -> Self {
        Self {
            users: 1,
            processing: Processing::Manual,
            tick: Duration::from_millis(20),
            sends_per_partner: None,
            max_backoff_seconds: None,
        }
    }
}

/// The `i`-th user of system A (the requesters).
pub fn requester(options: &PairOptions, i: usize) -> McServiceId {
    user("alice", A, options, i)
}

/// The `i`-th user of system B (the recipients).
pub fn recipient(options: &PairOptions, i: usize) -> McServiceId {
    user("bob", B, options, i)
}

fn user(name: &str, system: &str, options: &PairOptions, i: usize) -> McServiceId {
    let text = if options.users == 1 {
        format!("sip:{name}@{system}")
    } else {
        format!("sip:{name}-{i}@{system}")
    };
    text.parse()
        .unwrap_or_else(|e| unreachable!("{text} is a valid MC service ID: {e}"))
}

/// Two running servers and what a client needs to reach them.
#[derive(Debug)]
pub struct Pair {
    /// System A's server.
    pub a: Running,
    /// System B's server.
    pub b: Running,
    /// Each system's CA certificate (PEM), which its clients trust.
    pub ca: [Vec<u8>; 2],
    /// Token issuers for A's and B's clients.
    pub issuers: [TokenIssuer; 2],
    /// The options it was started with.
    pub options: PairOptions,
    /// B's configuration, to start it again.
    b_config: Config,
}

/// How many times a restart tries to start B again (100 ms apart).
const RESTART_TRIES: u32 = 50;

fn free_port() -> Result<u16, Failure> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Failure::Open(format!("no free loopback port: {e}")))
}

/// Starts A and B with their files (certificates, configurations, stores) under `dir`.
pub async fn start(dir: &Path, options: PairOptions) -> Result<Pair, Failure> {
    let systems: Vec<SystemId> = [A, B]
        .iter()
        .map(|s| s.parse().unwrap_or_else(|e| unreachable!("{s}: {e}")))
        .collect();
    let certs = dir.join("certs");
    material::certs(&certs, &systems)?;
    let ports = [free_port()?, free_port()?, free_port()?, free_port()?];
    let mut configs = Vec::new();
    for (i, (me, other)) in [(A, B), (B, A)].into_iter().enumerate() {
        let text = config_text(
            me,
            other,
            [ports[2 * i], ports[2 * i + 1]],
            ports[2 * (1 - i) + 1],
            &options,
        );
        let path = dir.join(format!("{me}.toml"));
        std::fs::write(&path, text)
            .map_err(|e| Failure::Open(format!("{}: {e}", path.display())))?;
        configs.push(Config::load(&path).map_err(|e| Failure::Usage(e.to_string()))?);
    }
    let token_key = std::fs::read(certs.join(material::TOKENS_DIR).join(material::TOKEN_KEY))
        .map_err(|e| Failure::Open(e.to_string()))?;
    let issuer = |config: &Config| {
        TokenIssuer::from_pem(
            &token_key,
            jsonwebtoken::Algorithm::ES256,
            &config.tokens.issuer,
            &config.tokens.audience,
            &config.tokens.claim,
        )
        .map_err(|e| Failure::Usage(e.to_string()))
    };
    let issuers = [issuer(&configs[0])?, issuer(&configs[1])?];
    let read_ca = |system: &str| -> Result<Vec<u8>, Failure> {
        let path: PathBuf = certs.join(system).join("ca.pem");
        std::fs::read(&path).map_err(|e| Failure::Open(format!("{}: {e}", path.display())))
    };
    let ca = [read_ca(A)?, read_ca(B)?];
    let b = serve::start(&configs[1]).await?;
    let a = serve::start(&configs[0]).await?;
    let b_config = configs.swap_remove(1);
    Ok(Pair {
        a,
        b,
        ca,
        issuers,
        options,
        b_config,
    })
}

impl Pair {
    /// An ACM client of `user` on system A (`0`) or B (`1`).
    pub fn client(&self, system: usize, user: &McServiceId) -> Result<AcmClient, Failure> {
        let running = if system == 0 { &self.a } else { &self.b };
        let token = self.issuers[system]
            .issue(user, Duration::from_hours(1))
            .map_err(|e| Failure::Usage(e.to_string()))?;
        AcmClient::new(
            &format!("https://localhost:{}", running.client_addr().port()),
            &self.ca[system],
            token,
        )
        .map_err(|e| Failure::Usage(e.to_string()))
    }

    /// Stops B gracefully and starts it again on the same configuration and store (a
    /// partner restart, as an operator's upgrade does it); the pair, and how long B was away.
    pub async fn restart_b(self) -> Result<(Self, Duration), Failure> {
        let Self {
            a,
            b,
            ca,
            issuers,
            options,
            b_config,
        } = self;
        let stopped = Instant::now();
        b.stop().await?;
        // A stream cut short may hold the store a moment after the stop; the open then finds
        // it locked, and is tried again.
        let mut tries = 0_u32;
        let b = loop {
            match serve::start(&b_config).await {
                Ok(b) => break b,
                Err(e) if tries < RESTART_TRIES => {
                    tracing::debug!(error = ?e, "B not started yet");
                    tries = tries.saturating_add(1);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let away = stopped.elapsed();
        Ok((
            Self {
                a,
                b,
                ca,
                issuers,
                options,
                b_config,
            },
            away,
        ))
    }

    /// Stops both servers gracefully.
    pub async fn stop(self) -> Result<(), Failure> {
        let a = self.a.stop().await;
        let b = self.b.stop().await;
        a.and(b)
    }
}

fn config_text(
    me: &str,
    other: &str,
    [client, partner]: [u16; 2],
    other_partner: u16,
    options: &PairOptions,
) -> String {
    let mut text = format!(
        r#"[system]
id = "{me}"

[listen]
client = "127.0.0.1:{client}"
partner = "127.0.0.1:{partner}"

[tls]
cert = "certs/{me}/cert.pem"
key = "certs/{me}/key.pem"

[[partners]]
system = "{other}"
url = "https://localhost:{other_partner}"
ca = "certs/{other}/ca.pem"

[processing]
interconnection_group_identity_provision = "{processing}"

[store]
path = "stores/{me}.db"

[tokens]
issuer = "https://idms.{me}"
audience = "acm.{me}"
public_keys = ["certs/tokens/token-pub.pem"]

[limits]
concurrency = 1024
{sends}

[timing]
tick_ms = {tick}
{backoff}"#,
        processing = match options.processing {
            Processing::Manual => "manual",
            Processing::AutoAccept => "auto_accept",
            Processing::AutoReject => "auto_reject",
            Processing::NotAccepted => "not_accepted",
        },
        tick = options.tick.as_millis().max(1),
        backoff = options
            .max_backoff_seconds
            .map(|n| format!("max_backoff_seconds = {n}\n"))
            .unwrap_or_default(),
        sends = options
            .sends_per_partner
            .map(|n| format!("sends_per_partner = {n}\n"))
            .unwrap_or_default(),
    );
    for i in 0..options.users {
        let (id, provides) = if me == A {
            (
                requester(options, i),
                format!("provides_to = [\"{other}\"]\nmay_receive = false\n"),
            )
        } else {
            (recipient(options, i), String::new())
        };
        let _ = write!(text, "\n[[users]]\nid = \"{id}\"\n{provides}");
    }
    text
}
