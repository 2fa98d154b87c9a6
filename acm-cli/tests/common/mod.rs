//! Two `acm serve` processes on loopback, as an operator would run them: certificates made by
//! `acm gen-certs` (a process), one configuration file per MC system, each server a child
//! process with its standard error in a file, ready once `/readyz` answers 200 over HTTPS.
//! Clients are `AcmClient`s with tokens signed by the key `gen-certs` wrote; what a server
//! recorded is read from its store file, read-only while it runs.
#![allow(dead_code)]

pub mod chaos;

use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use acm_core::audit::scan_export;
use acm_core::{Envelope, Event, GroupId, McServiceId, RequestId, SystemId, Target};
use acm_transport_http::wire::{ProvisionSubmission, RequestStatus};
use acm_transport_http::{AcmClient, TokenIssuer};

/// System A, the primary: alice provides group IDs to B.
pub const A: &str = "mc-a.example";
/// System B, the partner: bob receives them.
pub const B: &str = "mc-b.example";
/// A's requester.
pub const ALICE: &str = "sip:alice@mc-a.example";
/// B's recipient.
pub const BOB: &str = "sip:bob@mc-b.example";

/// The longest wait for anything one server or the other does. Only a bound, so that a
/// broken product fails the test instead of hanging it; nothing is asserted about durations.
pub const PATIENCE: Duration = Duration::from_secs(30);
/// The pause between two polls.
pub const POLL: Duration = Duration::from_millis(20);

/// `text` parsed as an identifier; the tests' own literals always parse.
pub fn id<T: std::str::FromStr>(text: &str) -> T
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .unwrap_or_else(|e| panic!("{text} does not parse: {e}"))
}

/// `fut`, or a panic naming `what` once [`PATIENCE`] has passed.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .unwrap_or_else(|_| panic!("gave up after {PATIENCE:?} waiting for {what}"))
}

/// Polls the requester's view of `request` until its stage is `stage`; that view.
pub async fn until_stage(client: &AcmClient, request: RequestId, stage: &str) -> RequestStatus {
    within(&format!("{request} at stage {stage}"), async {
        loop {
            let status = client
                .status(request)
                .await
                .unwrap_or_else(|e| panic!("status of {request}: {e}"));
            if status.stage == stage {
                return status;
            }
            tokio::time::sleep(POLL).await;
        }
    })
    .await
}

/// Alice's provision of `groups` (user parts of group IDs homed at A) to bob.
pub fn provision(groups: &[&str]) -> ProvisionSubmission {
    ProvisionSubmission {
        partner: id(B),
        target: Target::User(id(BOB)),
        groups: groups
            .iter()
            .map(|g| id::<GroupId>(&format!("sip:{g}@{A}")))
            .collect(),
        requester_alias: None,
        requester: None,
    }
}

/// A port nobody listens on now; `listeners` keeps it taken until every port is chosen, so
/// one harness never picks the same port twice.
fn free_port(listeners: &mut Vec<std::net::TcpListener>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("no local address: {e}"))
        .port();
    listeners.push(listener);
    port
}

/// The configuration of `me`, as docs/configuration.md describes it: short duty ticks and a
/// one-second longest back-off, so that the relay tries again soon after a partner returns.
pub fn config_text(
    me: &str,
    other: &str,
    [client, partner]: [u16; 2],
    other_partner: u16,
) -> String {
    let users = if me == A {
        format!(
            "[[users]]\nid = \"{ALICE}\"\nmay_receive = false\nprovides_to = [\"{other}\"]\n\
             group_membership_update_to = [\"{other}\"]\nuser_migration_management_to = [\"{other}\"]\n"
        )
    } else {
        format!("[[users]]\nid = \"{BOB}\"\n")
    };
    // B knows A's tac-1 as an interconnection group (a membership update may name it).
    let groups = if me == B {
        format!("interconnection_groups = [\"sip:tac-1@{other}\"]\n")
    } else {
        String::new()
    };
    format!(
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
{groups}
{users}
[processing]
interconnection_group_identity_provision = "manual"
group_membership_update = "manual"
user_migration_management = "manual"

[store]
path = "stores/{me}.db"

[tokens]
issuer = "https://idms.{me}"
audience = "acm.{me}"
public_keys = ["certs/tokens/token-pub.pem"]

[timing]
tick_ms = 20
max_backoff_seconds = 1
"#
    )
}

/// What a test changes in one server's configuration and process; the default is what
/// [`config_text`] writes.
#[derive(Debug, Clone, Default)]
pub struct Tweaks {
    /// `key = value` lines added to `[timing]` (e.g. `send_deadline_seconds = 3`).
    pub timing: Vec<String>,
    /// The processing policy instead of `manual`.
    pub processing: Option<&'static str>,
    /// The processing policy of other kinds than provision: (`[processing]` key, policy).
    pub kind_processing: Vec<(&'static str, &'static str)>,
    /// The partner's URL instead of the other server's partner API (a listener that never
    /// answers, say).
    pub partner_url: Option<String>,
    /// The store file instead of `stores/<system>.db` (on a small file system, say).
    pub store: Option<PathBuf>,
    /// TOML tables appended at the end (more `[[users]]`, say).
    pub extra: String,
    /// Environment variables of the process.
    pub env: Vec<(String, String)>,
}

/// [`config_text`] with `tweaks` applied.
pub fn tweaked_config(
    me: &str,
    other: &str,
    ports: [u16; 2],
    other_partner: u16,
    tweaks: &Tweaks,
) -> String {
    let mut text = config_text(me, other, ports, other_partner);
    if let Some(url) = &tweaks.partner_url {
        text = text.replace(&format!("https://localhost:{other_partner}"), url);
    }
    if let Some(policy) = tweaks.processing {
        text = text.replace(
            "interconnection_group_identity_provision = \"manual\"",
            &format!("interconnection_group_identity_provision = \"{policy}\""),
        );
    }
    for (kind, policy) in &tweaks.kind_processing {
        text = text.replace(
            &format!("{kind} = \"manual\""),
            &format!("{kind} = \"{policy}\""),
        );
    }
    if let Some(store) = &tweaks.store {
        text = text.replace(
            &format!("path = \"stores/{me}.db\""),
            &format!("path = {:?}", store.to_string_lossy()),
        );
    }
    // [timing] is the last table, so its keys go at the end, before any appended table.
    for line in &tweaks.timing {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&tweaks.extra);
    text
}

/// Runs `acm` with `args` to its end; its exit status, standard output and standard error.
pub fn acm(args: &[&str]) -> (ExitStatus, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_acm"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run acm {args:?}: {e}"));
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An HTTP client on `tls`, with a bound on every call.
pub fn https(tls: rustls::ClientConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_else(|e| panic!("HTTP client: {e}"))
}

/// Waits for `child` to end, polling; `None` if it is still running after [`PATIENCE`].
pub async fn wait_exit(child: &mut Child) -> Option<ExitStatus> {
    let waited = tokio::time::timeout(PATIENCE, async {
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) => tokio::time::sleep(POLL).await,
                Err(e) => panic!("cannot wait for a child: {e}"),
            }
        }
    })
    .await;
    waited.ok()
}

/// One MC system's `acm serve` process.
#[derive(Debug)]
pub struct Server {
    /// The MC system.
    pub system: &'static str,
    /// Its configuration file.
    pub config: PathBuf,
    /// Its store.
    pub store: PathBuf,
    /// The client API's port.
    pub client_port: u16,
    /// The partner API's port.
    pub partner_port: u16,
    dir: PathBuf,
    /// Environment variables given to each start (`LD_PRELOAD` of libfaketime, say).
    pub env: Vec<(String, String)>,
    child: Option<Child>,
    /// How many times it was started (each start writes its own standard error file).
    starts: usize,
    ca_pem: Vec<u8>,
    issuer: TokenIssuer,
}

impl Server {
    fn spawn(&mut self) {
        self.starts += 1;
        let log = self.stderr_path();
        let stderr = File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let child = Command::new(env!("CARGO_BIN_EXE_acm"))
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .env_remove("ACM_LOG_FORMAT")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start acm serve for {}: {e}", self.system));
        self.child = Some(child);
    }

    /// The standard error file of the latest start.
    pub fn stderr_path(&self) -> PathBuf {
        self.dir
            .join("logs")
            .join(format!("{}.{}.stderr", self.system, self.starts))
    }

    /// What the latest start wrote on standard error so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    /// Waits until `/readyz` answers 200; panics with the server's standard error if it
    /// exits first.
    pub async fn wait_ready(&mut self) {
        if let Err(why) = self.ready().await {
            panic!("{why}");
        }
    }

    /// Waits until `/readyz` answers 200; why not, with the server's standard error, if it
    /// exits first or takes too long.
    async fn ready(&mut self) -> Result<(), String> {
        let http = https(
            acm_transport_http::client_api_client_config(&self.ca_pem)
                .unwrap_or_else(|e| panic!("client TLS: {e}")),
        );
        let url = format!("{}/readyz", self.client_url());
        let system = self.system;
        let ready = tokio::time::timeout(PATIENCE, async {
            loop {
                if let Some(status) = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten())
                {
                    return Err(status);
                }
                if let Ok(answer) = http.get(&url).send().await
                    && answer.status() == reqwest::StatusCode::OK
                {
                    return Ok(());
                }
                tokio::time::sleep(POLL).await;
            }
        })
        .await;
        match ready {
            Ok(Ok(())) => Ok(()),
            Ok(Err(status)) => Err(format!(
                "acm serve for {system} exited ({status}) before it was ready:\n{}",
                self.stderr()
            )),
            Err(elapsed) => Err(format!(
                "acm serve for {system} not ready ({elapsed}):\n{}",
                self.stderr()
            )),
        }
    }

    /// Kills the process, if one runs, and waits for it.
    fn discard(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The running process's id.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .unwrap_or_else(|| panic!("{} is not running", self.system))
            .id()
    }

    /// Sends `signal` (`TERM`, `KILL`) with kill(1), and waits for the process to end.
    pub async fn signal(&mut self, signal: &str) -> ExitStatus {
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), pid.as_str()])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(sent.success(), "kill -{signal} {pid} failed: {sent}");
        let mut child = self
            .child
            .take()
            .unwrap_or_else(|| panic!("{} is not running", self.system));
        let Some(status) = wait_exit(&mut child).await else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} still running {PATIENCE:?} after SIG{signal}:\n{}",
                self.system,
                self.stderr()
            );
        };
        status
    }

    /// Stops it gracefully (SIGTERM); how it exited.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM").await
    }

    /// Kills it (SIGKILL), as a crash would.
    pub async fn kill(&mut self) -> ExitStatus {
        self.signal("KILL").await
    }

    /// Starts it again on the same configuration and store, and waits until it is ready.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is running already", self.system);
        self.spawn();
        self.wait_ready().await;
    }

    /// `https://127.0.0.1:<client port>` (the certificates name 127.0.0.1).
    pub fn client_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.client_port)
    }

    /// `https://127.0.0.1:<partner port>`.
    pub fn partner_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.partner_port)
    }

    /// The CA certificate of this system (PEM), which its clients and partners trust.
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    /// The token issuer of this system's identity management server.
    pub fn issuer(&self) -> &TokenIssuer {
        &self.issuer
    }

    /// A valid access token for `user`.
    pub fn token(&self, user: &str) -> String {
        self.issuer
            .issue(&id::<McServiceId>(user), Duration::from_hours(1))
            .unwrap_or_else(|e| panic!("token for {user}: {e}"))
    }

    /// An ACM client of `user`, on a connection pool of its own.
    pub fn client(&self, user: &str) -> AcmClient {
        AcmClient::new(&self.client_url(), &self.ca_pem, self.token(user))
            .unwrap_or_else(|e| panic!("client of {user}: {e}"))
    }

    /// Everything the store holds, read without writing to it (safe while the server runs,
    /// and after it stopped), through the audit export, whose chain is checked on the way.
    pub fn events(&self) -> Vec<Envelope<Event>> {
        let mut export = Vec::new();
        acm_store_sqlite::export_file(&self.store, &mut export)
            .unwrap_or_else(|e| panic!("export of {}: {e}", self.store.display()));
        let mut events = Vec::new();
        let report = scan_export(export.as_slice(), |e| events.push(e))
            .unwrap_or_else(|e| panic!("reading the export of {}: {e}", self.store.display()));
        assert!(
            report.is_intact(),
            "the log of {} does not verify: {report:?}",
            self.system
        );
        events
    }

    /// The event types of [`Server::events`], in order.
    pub fn event_types(&self) -> Vec<String> {
        types(&self.events())
    }

    /// The text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let http = https(
            acm_transport_http::client_api_client_config(&self.ca_pem)
                .unwrap_or_else(|e| panic!("client TLS: {e}")),
        );
        let answer = http
            .get(format!("{}/metrics", self.client_url()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET /metrics: {e}"));
        assert_eq!(answer.status(), reqwest::StatusCode::OK);
        answer
            .text()
            .await
            .unwrap_or_else(|e| panic!("GET /metrics body: {e}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The event types of `events`, in order.
pub fn types(events: &[Envelope<Event>]) -> Vec<String> {
    events.iter().map(|e| e.event_type.to_string()).collect()
}

/// A and B running, in a temporary directory laid out as docs/configuration.md shows:
/// `certs/` from `acm gen-certs`, `mc-a.example.toml`, `mc-b.example.toml`, `stores/`, and
/// `logs/` with each start's standard error.
#[derive(Debug)]
pub struct Systems {
    /// System A's server.
    pub a: Server,
    /// System B's server.
    pub b: Server,
    /// Dropped last: the servers are killed before their files go.
    dir: tempfile::TempDir,
}

impl Systems {
    /// Makes the files and starts both servers; returns once both are ready.
    pub async fn start() -> Self {
        Self::start_with(&Tweaks::default(), &Tweaks::default()).await
    }

    /// [`Systems::start`] with A's configuration changed by `a` and B's by `b`.
    pub async fn start_with(a: &Tweaks, b: &Tweaks) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let root = dir.path().to_path_buf();
        let certs = root.join("certs");
        let certs_arg = certs.to_string_lossy().into_owned();
        let (status, _, err) = acm(&["gen-certs", "--out", &certs_arg, A, B]);
        assert!(status.success(), "acm gen-certs failed ({status}): {err}");
        std::fs::create_dir_all(root.join("logs"))
            .unwrap_or_else(|e| panic!("logs directory: {e}"));

        let token_key = read(&certs.join("tokens").join("token-key.pem"));
        let server = |ports: &[u16], (i, (me, other)): (usize, (&'static str, &'static str))| {
            let [client, partner] = [ports[2 * i], ports[2 * i + 1]];
            let config = root.join(format!("{me}.toml"));
            let tweaks = if i == 0 { a } else { b };
            let text = tweaked_config(me, other, [client, partner], ports[2 * (1 - i) + 1], tweaks);
            std::fs::write(&config, text).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
            let issuer = TokenIssuer::from_pem(
                &token_key,
                jsonwebtoken::Algorithm::ES256,
                format!("https://idms.{me}"),
                format!("acm.{me}"),
                "mcptt_id",
            )
            .unwrap_or_else(|e| panic!("token issuer of {me}: {e}"));
            Server {
                system: me,
                config,
                store: tweaks
                    .store
                    .clone()
                    .unwrap_or_else(|| root.join("stores").join(format!("{me}.db"))),
                client_port: client,
                partner_port: partner,
                dir: root.clone(),
                env: tweaks.env.clone(),
                child: None,
                starts: 0,
                ca_pem: read(&certs.join(me).join("ca.pem")),
                issuer,
            }
        };
        // The free ports are released before the servers bind them, so another socket (a
        // client's, another test's) can take one in between: then the pair starts again on
        // fresh ports.
        let mut attempts = 0;
        loop {
            let mut taken = Vec::new();
            let ports: Vec<u16> = (0..4).map(|_| free_port(&mut taken)).collect();
            drop(taken);
            let mut a = server(&ports, (0, (A, B)));
            let mut b = server(&ports, (1, (B, A)));
            a.spawn();
            b.spawn();
            let ready = match a.ready().await {
                Ok(()) => b.ready().await,
                Err(why) => Err(why),
            };
            match ready {
                Ok(()) => return Self { a, b, dir },
                Err(why) if why.contains("Address already in use") && attempts < 5 => {
                    attempts += 1;
                    a.discard();
                    b.discard();
                }
                Err(why) => panic!("{why}"),
            }
        }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The certificates `acm gen-certs` wrote for `system`.
    pub fn certs(&self, system: &str) -> PathBuf {
        self.dir.path().join("certs").join(system)
    }
}

/// The bytes of `path`.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// That a system identifier parses (for the tests' own constants).
pub fn system(text: &str) -> SystemId {
    id(text)
}
pub mod partner;
