//! `acm load`: full exchanges between MC systems A and B by N virtual user pairs (real HTTPS
//! clients, each user logged on to a notification stream), for a duration, closed loop or at
//! a target rate; then the raw baseline hop for the same duration and concurrency, and the
//! ratio of the two.
//!
//! Started mode (the default, the one measured): A and B are started here on loopback with
//! temporary SQLite stores ([`crate::pair`]). External mode (`--a-url` …): servers already
//! running, with users `alice-<i>@mc-a.example` and `bob-<i>@mc-b.example` configured.

mod baseline;
mod cpu;
mod exchange;
mod soak;
mod stats;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acm_core::{McServiceId, Processing, SystemId};
use acm_transport_http::{AcmClient, TokenIssuer};
use serde::Serialize;

use crate::Failure;
use crate::pair::{self, PairOptions};
use exchange::{Outcome, Plan, STAGES, User, VirtualPair, Watcher};
use stats::{Counters, Histogram, Latency, per_second};

/// `acm load`.
#[derive(Debug, clap::Args)]
#[allow(clippy::struct_excessive_bools)] // each is a flag a user sets on its own
pub struct LoadArgs {
    /// How long exchanges are started (`10s`, `500ms`, `2m`); the baseline runs as long.
    #[arg(long, default_value = "10s", value_parser = parse_duration, env = "ACM_LOAD_DURATION")]
    duration: Duration,
    /// Virtual user pairs (alice-i on A, bob-i on B), each doing one exchange at a time; also
    /// the baseline's concurrent callers.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000), env = "ACM_LOAD_CONCURRENCY")]
    concurrency: u32,
    /// Target exchanges per second across all pairs, paced by a shared ticker (without it:
    /// as fast as the pairs go).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), env = "ACM_LOAD_RATE")]
    rate: Option<u32>,
    /// Print the summary as one JSON object on standard output.
    #[arg(long, env = "ACM_LOAD_JSON")]
    json: bool,
    /// Skip the raw baseline hop.
    #[arg(long, env = "ACM_LOAD_NO_BASELINE")]
    no_baseline: bool,
    /// Also report where an exchange's time goes, stage by stage.
    #[arg(long, env = "ACM_LOAD_VERBOSE")]
    verbose: bool,
    /// Longest wait for the request at bob or the response at alice before the exchange
    /// counts as failed.
    #[arg(long, default_value = "10s", value_parser = parse_duration, env = "ACM_LOAD_PATIENCE")]
    patience: Duration,
    /// Started mode: how often each server's duties (the relay among them) run, in ms.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=60_000), env = "ACM_LOAD_TICK_MS")]
    tick_ms: u64,
    /// Started mode: most sends in flight to the partner at once (`[limits]
    /// sends_per_partner`; without it, the server's default).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096), env = "ACM_LOAD_SENDS_PER_PARTNER")]
    sends_per_partner: Option<u32>,
    /// Where the temporary directory (certificates, both stores, the baseline's SQLite
    /// file) is made; removed at the end. Default: the system's temporary directory. On a
    /// tmpfs an fsync costs nothing: a diagnostic, not a durable measurement.
    #[arg(long, env = "ACM_LOAD_DIR")]
    dir: Option<PathBuf>,
    /// Started mode: stop B gracefully and start it again this often during the run (a soak
    /// with partner restarts). The relay's longest back-off is then 1 s, so that A tries
    /// again soon after B is back.
    #[arg(long, value_parser = parse_duration, env = "ACM_LOAD_RESTART_PARTNER_EVERY")]
    restart_partner_every: Option<Duration>,
    /// Also report, this often: exchanges per second, p99, this process's resident memory
    /// and open file descriptors (a soak's samples, to see that nothing grows).
    #[arg(long, value_parser = parse_duration, env = "ACM_LOAD_SAMPLE_EVERY")]
    sample_every: Option<Duration>,
    #[command(flatten)]
    external: External,
}

/// Servers already running.
#[derive(Debug, clap::Args)]
struct External {
    /// External mode: system A's client API (`https://host:port`).
    #[arg(long, requires_all = ["b_url", "a_ca", "b_ca", "token_key"], env = "ACM_LOAD_A_URL")]
    a_url: Option<String>,
    /// System B's client API.
    #[arg(long, requires = "a_url", env = "ACM_LOAD_B_URL")]
    b_url: Option<String>,
    /// The CA certificate (PEM) A's client API is certified by.
    #[arg(long, requires = "a_url", env = "ACM_LOAD_A_CA")]
    a_ca: Option<PathBuf>,
    /// The CA certificate (PEM) B's client API is certified by.
    #[arg(long, requires = "a_url", env = "ACM_LOAD_B_CA")]
    b_ca: Option<PathBuf>,
    /// The token signing key both servers trust (`token-key.pem` from gen-certs).
    #[arg(long, requires = "a_url", env = "ACM_LOAD_TOKEN_KEY")]
    token_key: Option<PathBuf>,
    /// `iss` of A's tokens.
    #[arg(
        long,
        default_value = "https://idms.mc-a.example",
        env = "ACM_LOAD_A_ISSUER"
    )]
    a_issuer: String,
    /// `aud` of A's tokens.
    #[arg(long, default_value = "acm.mc-a.example", env = "ACM_LOAD_A_AUDIENCE")]
    a_audience: String,
    /// `iss` of B's tokens.
    #[arg(
        long,
        default_value = "https://idms.mc-b.example",
        env = "ACM_LOAD_B_ISSUER"
    )]
    b_issuer: String,
    /// `aud` of B's tokens.
    #[arg(long, default_value = "acm.mc-b.example", env = "ACM_LOAD_B_AUDIENCE")]
    b_audience: String,
    /// The token claim carrying the user's MC service ID.
    #[arg(long, default_value = "mcptt_id", env = "ACM_LOAD_CLAIM")]
    claim: String,
}

/// `10s`, `250ms`, `2m`, `1h`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?}: a whole number and a unit (ms, s, m, h), e.g. 10s"))?;
    let duration = match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "" | "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        other => return Err(format!("{text:?}: unknown unit {other:?} (ms, s, m, h)")),
    };
    match duration {
        Some(d) if !d.is_zero() => Ok(d),
        Some(_) => Err(format!("{text:?}: must be more than zero")),
        None => Err(format!("{text:?}: too long")),
    }
}

fn err(e: impl std::fmt::Display) -> Failure {
    Failure::Open(e.to_string())
}

/// Per-store figures, read before and after the run.
#[derive(Debug, Clone, Copy, Default)]
struct StoreMark {
    events: u64,
    appends: u64,
    transactions: u64,
}

impl StoreMark {
    async fn of(running: &crate::serve::Running) -> Self {
        let store = running.store();
        let stats = store.stats();
        let events = acm_core::EventStore::head(store.as_ref())
            .await
            .map_or(0, |p| p.0);
        Self {
            events,
            appends: stats.jobs,
            transactions: stats.transactions,
        }
    }

    fn since(self, before: Self) -> Self {
        Self {
            events: self.events.saturating_sub(before.events),
            appends: self.appends.saturating_sub(before.appends),
            transactions: self.transactions.saturating_sub(before.transactions),
        }
    }
}

/// What a store did per exchange.
#[derive(Debug, Clone, Copy, Serialize)]
struct PerExchangeStore {
    events: f64,
    appends: f64,
    /// The writer's transactions (appends and outbox claims, batched): each that changed
    /// rows ends with an fsync (WAL, `synchronous=FULL`).
    transactions: f64,
    /// The whole run's writer transactions per second.
    transactions_per_s: f64,
}

fn per_exchange(mark: StoreMark, exchanges: u64, elapsed: Duration) -> PerExchangeStore {
    let per = |n: u64| stats::fraction(n, exchanges);
    PerExchangeStore {
        events: per(mark.events),
        appends: per(mark.appends),
        transactions: per(mark.transactions),
        transactions_per_s: per_second(mark.transactions, elapsed),
    }
}

/// The summary, as `--json` prints it.
#[derive(Debug, Serialize)]
struct Report {
    mode: &'static str,
    concurrency: u32,
    rate: Option<u32>,
    duration_s: f64,
    /// From the first exchange started to the last one finished (exchanges under way at
    /// the end are let finish and counted).
    elapsed_s: f64,
    exchanges: u64,
    exchanges_per_s: f64,
    errors: u64,
    error_kinds: BTreeMap<String, u64>,
    latency_ms: Latency,
    per_exchange: PerExchange,
    durability: Durability,
    #[serde(skip_serializing_if = "Option::is_none")]
    stages_ms: Option<BTreeMap<String, Latency>>,
    /// This process's CPU time during the exchange run (Linux).
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<Cpu>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started: Option<Started>,
    baseline: Option<Baseline>,
    /// acm full exchanges/s ÷ raw hops/s.
    exchanges_per_raw_hop: Option<f64>,
    /// With `--sample-every`: one entry per interval.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    samples: Vec<soak::Sample>,
    /// With `--restart-partner-every`: how long B was away at each restart, ms.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    partner_restarts_ms: Vec<f64>,
    /// Started mode: what the stores still owe once the run is over (all zero when nothing
    /// was lost: every message relayed, every item acknowledged).
    #[serde(skip_serializing_if = "Option::is_none")]
    left_over: Option<soak::LeftOver>,
}

/// CPU spent during the exchange run, by this one process (servers and load clients alike).
#[derive(Debug, Serialize)]
struct Cpu {
    /// CPU cores the machine offers.
    cores: usize,
    /// CPU time ÷ elapsed time: how many cores the process kept busy.
    cores_busy: f64,
    /// CPU time per exchange, ms.
    ms_per_exchange: f64,
    /// The same by thread name: `acm-load-client` is the load's own clients, the tokio
    /// workers the servers (HTTP, TLS, tokens, the relay), `acm-sqlite-*` the stores.
    by_thread_ms_per_exchange: BTreeMap<String, f64>,
}

#[derive(Debug, Serialize)]
struct Started {
    tick_ms: u64,
    sends_per_partner: Option<u32>,
}

#[derive(Debug, Serialize)]
struct PerExchange {
    /// Client API calls made per exchange (submit, downloads, respond, acknowledge; more
    /// than 5 when a notice came before the item was there).
    client_calls: f64,
    /// Downloads that did not hold what was waited for, per exchange.
    empty_downloads: f64,
    /// Notice waits that timed out and downloaded anyway, per exchange.
    wait_timeouts: f64,
    /// Calls made again (and streams reopened) because a server was away, per exchange.
    retries: f64,
    /// Notices pushed on the SSE streams that an exchange needs (bob's, alice's).
    sse_notices: u32,
    /// Partner API calls (A → B the request, B → A the response), mutual TLS.
    partner_calls: u32,
    /// Started mode: what each store did, per exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    a: Option<PerExchangeStore>,
    #[serde(skip_serializing_if = "Option::is_none")]
    b: Option<PerExchangeStore>,
}

#[derive(Debug, Serialize)]
struct Durability {
    /// The exchange run's stores: `journal_mode` read from each file, `synchronous` as
    /// acm-store-sqlite sets it on its connection (it is not stored in the file).
    stores: String,
    baseline: Option<String>,
}

#[derive(Debug, Serialize)]
struct Baseline {
    hops: u64,
    hops_per_s: f64,
    errors: u64,
    latency_ms: Latency,
    body_bytes: usize,
    commits: u64,
    hops_per_commit: f64,
    /// This process's CPU time per hop (client and server), ms.
    cpu_ms_per_hop: Option<f64>,
}

/// The load clients' runtime. A runtime cannot be dropped on another's thread, so it is
/// shut down in the background: once every pair has finished, what is left is idle
/// connections.
struct ClientRuntime(Option<tokio::runtime::Runtime>);

impl Drop for ClientRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Where the exchanges run.
enum Servers {
    Started(Box<pair::Pair>),
    External,
}

/// Runs `acm load`.
pub async fn run(args: LoadArgs) -> Result<(), Failure> {
    let mut temp = tempfile::Builder::new();
    temp.prefix("acm-load-");
    let dir = match &args.dir {
        Some(parent) => temp.tempdir_in(parent),
        None => temp.tempdir(),
    }
    .map_err(|e| Failure::Open(format!("the temporary directory: {e}")))?;
    let n = usize::try_from(args.concurrency).map_err(err)?;
    let (servers, users) = servers(&args, dir.path(), n).await?;

    // The load's own clients run on a runtime of their own, so that their CPU time can be
    // told from the servers' (threads `acm-load-client`); each user's connection is made
    // on it, when the user logs on, before the clock starts.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("acm-load-client")
        .enable_all()
        .build()
        .map_err(|e| Failure::Open(format!("the load clients' runtime: {e}")))?;
    let clients = runtime.handle().clone();
    let runtime = ClientRuntime(Some(runtime));
    let pairs = log_on(&clients, users).await?;

    let before = match &servers {
        Servers::Started(p) => Some((StoreMark::of(&p.a).await, StoreMark::of(&p.b).await)),
        Servers::External => None,
    };
    let counters = Arc::new(Counters::default());
    let measured = async {
        let cpu_before = cpu::sample();
        let run = exchanges(&args, pairs, &clients, counters.clone()).await;
        let cpu_spent = cpu::sample()
            .zip(cpu_before)
            .map(|(after, before)| after.since(&before));
        (run, cpu_spent)
    };
    let (servers, (run, cpu_spent), extras) = soak::beside(
        servers,
        args.sample_every,
        args.restart_partner_every,
        &counters,
        measured,
    )
    .await?;
    drop(runtime);
    let soak::Extras { samples, restarts } = extras;
    let (outcome, elapsed) = run?;
    let left_over = match &servers {
        Servers::Started(p) => Some(soak::left_over(p, args.patience).await),
        Servers::External => None,
    };
    let marks = match (&servers, before) {
        // B's figures restart with each start of B, so only A's are whole.
        (Servers::Started(p), Some((a, b))) => Some((
            StoreMark::of(&p.a).await.since(a),
            if restarts.is_empty() {
                StoreMark::of(&p.b).await.since(b)
            } else {
                StoreMark::default()
            },
        )),
        _ => None,
    };
    let stores = match servers {
        Servers::Started(p) => {
            let paths = [p.a.store().path().to_owned(), p.b.store().path().to_owned()];
            p.stop().await?;
            Some(paths)
        }
        Servers::External => None,
    };
    let durability = Durability {
        stores: stores.as_ref().map_or_else(
            || "external servers: as their configuration sets it (acm-store-sqlite: WAL, synchronous=FULL)".to_owned(),
            store_durability,
        ),
        baseline: None,
    };

    let mut report = report(&args, &outcome, elapsed, marks, durability);
    report.samples = samples;
    report.partner_restarts_ms = restarts.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    report.left_over = left_over;
    if !report.partner_restarts_ms.is_empty() {
        // Each start of B counts its store's work afresh: no whole-run figure for it.
        report.per_exchange.b = None;
    }
    report.cpu = cpu_spent.map(|spent| cpu_report(&spent, report.exchanges, elapsed));
    if !args.no_baseline {
        with_baseline(&args, dir.path(), n, &mut report).await?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(err)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// Starts A and B (or, in external mode, reaches them), and makes each user's client.
async fn servers(
    args: &LoadArgs,
    dir: &Path,
    n: usize,
) -> Result<(Servers, Vec<(User, User)>), Failure> {
    let Some(a_url) = &args.external.a_url else {
        let options = PairOptions {
            users: n,
            processing: Processing::Manual,
            tick: Duration::from_millis(args.tick_ms),
            sends_per_partner: args.sends_per_partner.and_then(|s| usize::try_from(s).ok()),
            max_backoff_seconds: args.restart_partner_every.map(|_| 1),
        };
        let pair = pair::start(dir, options).await?;
        let mut users = Vec::with_capacity(n);
        for i in 0..n {
            let alice = pair::requester(&pair.options, i);
            let bob = pair::recipient(&pair.options, i);
            users.push((
                User {
                    client: pair.client(0, &alice)?,
                    id: alice,
                },
                User {
                    client: pair.client(1, &bob)?,
                    id: bob,
                },
            ));
        }
        if !args.json {
            eprintln!(
                "acm load: A and B started on loopback (client APIs https://{}, https://{}), tick {} ms, sends per partner {}",
                pair.a.client_addr(),
                pair.b.client_addr(),
                args.tick_ms,
                args.sends_per_partner
                    .map_or_else(|| "default (8)".to_owned(), |s| s.to_string()),
            );
        }
        return Ok((Servers::Started(Box::new(pair)), users));
    };
    if !args.json {
        eprintln!("acm load: against running servers ({a_url} …)");
    }
    Ok((Servers::External, external_users(a_url, &args.external, n)?))
}

/// Logs every user on (opens each notification stream), on the clients' runtime.
async fn log_on(
    clients: &tokio::runtime::Handle,
    users: Vec<(User, User)>,
) -> Result<Vec<VirtualPair>, Failure> {
    let logged_on = clients.spawn(futures_util::future::try_join_all(users.into_iter().map(
        |(alice, bob)| async move {
            let alice_watch = Watcher::open(&alice.client).await?;
            let bob_watch = Watcher::open(&bob.client).await?;
            Ok::<_, acm_transport_http::ClientError>(VirtualPair {
                alice,
                bob,
                alice_watch,
                bob_watch,
            })
        },
    )));
    logged_on
        .await
        .map_err(err)?
        .map_err(|e| Failure::Open(format!("logging the users on: {e}")))
}

/// Runs the raw baseline hop and adds it to `report`.
async fn with_baseline(
    args: &LoadArgs,
    dir: &Path,
    n: usize,
    report: &mut Report,
) -> Result<(), Failure> {
    let certs = dir.join("certs");
    if !certs.exists() {
        let systems: Vec<SystemId> = [pair::A, pair::B]
            .iter()
            .map(|s| s.parse().map_err(err))
            .collect::<Result<_, _>>()?;
        crate::material::certs(&certs, &systems)?;
    }
    if !args.json {
        eprintln!(
            "acm load: raw baseline hop (mutual TLS + one durable SQLite row), {:?}, {} callers",
            args.duration, args.concurrency
        );
    }
    let counters = Arc::new(Counters::default());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let progress = (!args.json).then(|| {
        tokio::spawn(stats::progress(
            "hops",
            counters.clone(),
            Instant::now(),
            stopped,
        ))
    });
    let cpu_before = cpu::sample();
    let measured = baseline::run(&certs, dir, args.duration, n, counters).await;
    let cpu_spent = cpu::sample()
        .zip(cpu_before)
        .map(|(after, before)| after.since(&before));
    stop.send_replace(true);
    if let Some(p) = progress {
        let _ = p.await;
    }
    let measured = measured?;
    let hops_per_s = per_second(measured.hops, measured.elapsed);
    report.durability.baseline = Some(format!(
        "journal_mode={}, synchronous={} (read back on the writer connection; 2 = FULL)",
        measured.journal_mode, measured.synchronous
    ));
    report.exchanges_per_raw_hop = Some(stats::ratio(report.exchanges_per_s, hops_per_s));
    report.baseline = Some(Baseline {
        hops: measured.hops,
        hops_per_s,
        errors: measured.errors,
        latency_ms: measured.latency.latency(),
        body_bytes: measured.body_bytes,
        commits: measured.transactions,
        hops_per_commit: stats::fraction(measured.hops, measured.transactions),
        cpu_ms_per_hop: cpu_spent
            .map(|spent| cpu_report(&spent, measured.hops, measured.elapsed).ms_per_exchange),
    });
    Ok(())
}

fn external_users(
    a_url: &str,
    external: &External,
    n: usize,
) -> Result<Vec<(User, User)>, Failure> {
    let read = |path: &Option<PathBuf>, what: &str| -> Result<Vec<u8>, Failure> {
        let path = path
            .as_ref()
            .ok_or_else(|| Failure::Usage(format!("--{what} is needed with --a-url")))?;
        std::fs::read(path).map_err(|e| Failure::Open(format!("{}: {e}", path.display())))
    };
    let b_url = external
        .b_url
        .as_deref()
        .ok_or_else(|| Failure::Usage("--b-url is needed with --a-url".into()))?;
    let a_ca = read(&external.a_ca, "a-ca")?;
    let b_ca = read(&external.b_ca, "b-ca")?;
    let key = read(&external.token_key, "token-key")?;
    let issuer = |iss: &str, aud: &str| {
        TokenIssuer::from_pem(
            &key,
            jsonwebtoken::Algorithm::ES256,
            iss,
            aud,
            &external.claim,
        )
        .map_err(|e| Failure::Usage(format!("--token-key: {e}")))
    };
    let issuers = [
        issuer(&external.a_issuer, &external.a_audience)?,
        issuer(&external.b_issuer, &external.b_audience)?,
    ];
    // One pool per system; each user is a token on it.
    let token = |i: usize, user: &McServiceId| {
        issuers[i]
            .issue(user, Duration::from_hours(1))
            .map_err(|e| Failure::Usage(e.to_string()))
    };
    let base = [
        AcmClient::new(a_url, &a_ca, String::new()).map_err(|e| Failure::Usage(e.to_string()))?,
        AcmClient::new(b_url, &b_ca, String::new()).map_err(|e| Failure::Usage(e.to_string()))?,
    ];
    let mut users = Vec::with_capacity(n);
    for i in 0..n {
        let alice: McServiceId = format!("sip:alice-{i}@{}", pair::A).parse().map_err(err)?;
        let bob: McServiceId = format!("sip:bob-{i}@{}", pair::B).parse().map_err(err)?;
        users.push((
            User {
                client: base[0].with_token(token(0, &alice)?),
                id: alice,
            },
            User {
                client: base[1].with_token(token(1, &bob)?),
                id: bob,
            },
        ));
    }
    Ok(users)
}

/// Runs every pair until the duration ends; returns their outcomes merged and the time from
/// the start to the last exchange finished.
async fn exchanges(
    args: &LoadArgs,
    pairs: Vec<VirtualPair>,
    clients: &tokio::runtime::Handle,
    counters: Arc<Counters>,
) -> Result<(Outcome, Duration), Failure> {
    let started = Instant::now();
    let until = started
        .checked_add(args.duration)
        .ok_or_else(|| Failure::Usage("--duration: too long".into()))?;
    let pacer = args
        .rate
        .map(|rate| exchange::pacer(clients, rate, until, pairs.len()));
    let plan = Plan {
        until,
        pacer,
        counters: counters.clone(),
        verbose: args.verbose,
        patience: args.patience,
        redownload: Duration::from_secs(1).min(args.patience),
        partner: pair::B.parse().map_err(err)?,
        groups: vec![
            "sip:fire-ops@mc-a.example".parse().map_err(err)?,
            "sip:tactical-2@mc-a.example".parse().map_err(err)?,
        ],
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let progress = (!args.json).then(|| {
        tokio::spawn(stats::progress(
            "exchanges",
            counters.clone(),
            started,
            stopped,
        ))
    });
    let tasks: Vec<_> = pairs
        .into_iter()
        .map(|p| clients.spawn(p.run(plan.clone())))
        .collect();
    let mut merged = Outcome {
        stages: if args.verbose {
            (0..STAGES.len()).map(|_| Histogram::new()).collect()
        } else {
            Vec::new()
        },
        ..Outcome::default()
    };
    for task in tasks {
        let outcome = task
            .await
            .map_err(|e| Failure::Broken(format!("a virtual user pair failed: {e}")))?;
        merged.latency.merge(&outcome.latency);
        for (m, s) in merged.stages.iter_mut().zip(&outcome.stages) {
            m.merge(s);
        }
        for (code, count) in outcome.errors {
            let n = merged.errors.entry(code).or_insert(0);
            *n = n.saturating_add(count);
        }
        merged.calls = merged.calls.saturating_add(outcome.calls);
        merged.empty_downloads = merged
            .empty_downloads
            .saturating_add(outcome.empty_downloads);
        merged.wait_timeouts = merged.wait_timeouts.saturating_add(outcome.wait_timeouts);
        merged.retries = merged.retries.saturating_add(outcome.retries);
    }
    let elapsed = started.elapsed();
    stop.send_replace(true);
    if let Some(p) = progress {
        let _ = p.await;
    }
    Ok((merged, elapsed))
}

/// The stores' durability, read from their files after the servers stopped.
fn store_durability(paths: &[PathBuf; 2]) -> String {
    let mode = |path: &Path| {
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.pragma_query_value(None, "journal_mode", |r| r.get::<_, String>(0)))
            .unwrap_or_else(|e| format!("unreadable ({e})"))
    };
    format!(
        "A journal_mode={}, B journal_mode={} (read from the files); synchronous=FULL (set by acm-store-sqlite's open on its writer connection)",
        mode(&paths[0]),
        mode(&paths[1])
    )
}

fn report(
    args: &LoadArgs,
    outcome: &Outcome,
    elapsed: Duration,
    marks: Option<(StoreMark, StoreMark)>,
    durability: Durability,
) -> Report {
    let exchanges = outcome.latency.count();
    let errors: u64 = outcome.errors.values().fold(0, |a, b| a.saturating_add(*b));
    let attempts = exchanges.saturating_add(errors);
    let per_attempt = |n: u64| stats::fraction(n, attempts);
    Report {
        mode: if args.external.a_url.is_some() {
            "external"
        } else {
            "started"
        },
        concurrency: args.concurrency,
        rate: args.rate,
        duration_s: args.duration.as_secs_f64(),
        elapsed_s: elapsed.as_secs_f64(),
        exchanges,
        exchanges_per_s: per_second(exchanges, elapsed),
        errors,
        error_kinds: outcome.errors.clone(),
        latency_ms: outcome.latency.latency(),
        per_exchange: PerExchange {
            client_calls: per_attempt(outcome.calls),
            empty_downloads: per_attempt(outcome.empty_downloads),
            wait_timeouts: per_attempt(outcome.wait_timeouts),
            retries: per_attempt(outcome.retries),
            sse_notices: 2,
            partner_calls: 2,
            a: marks.map(|(a, _)| per_exchange(a, attempts, elapsed)),
            b: marks.map(|(_, b)| per_exchange(b, attempts, elapsed)),
        },
        durability,
        cpu: None,
        stages_ms: args.verbose.then(|| {
            STAGES
                .iter()
                .zip(&outcome.stages)
                .map(|(name, h)| ((*name).to_owned(), h.latency()))
                .collect()
        }),
        started: args.external.a_url.is_none().then_some(Started {
            tick_ms: args.tick_ms,
            sends_per_partner: args.sends_per_partner,
        }),
        baseline: None,
        exchanges_per_raw_hop: None,
        samples: Vec::new(),
        partner_restarts_ms: Vec::new(),
        left_over: None,
    }
}

fn cpu_report(spent: &[(String, Duration)], exchanges: u64, elapsed: Duration) -> Cpu {
    let total = spent
        .iter()
        .fold(Duration::ZERO, |a, (_, t)| a.saturating_add(*t));
    let ms_per = |t: Duration| {
        stats::fraction(u64::try_from(t.as_micros()).unwrap_or(u64::MAX), exchanges) / 1000.0
    };
    Cpu {
        cores: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        cores_busy: stats::ratio(total.as_secs_f64(), elapsed.as_secs_f64()),
        ms_per_exchange: ms_per(total),
        by_thread_ms_per_exchange: spent
            .iter()
            .map(|(name, t)| (name.clone(), ms_per(*t)))
            .collect(),
    }
}

fn print_table(r: &Report) {
    let pace = r.rate.map_or_else(
        || "closed loop".to_owned(),
        |rate| format!("target {rate}/s"),
    );
    println!(
        "\nacm load: {} user pairs, {pace}, {:.1} s ({} mode; exchanges under way at the end finish: {:.2} s in all)",
        r.concurrency, r.duration_s, r.mode, r.elapsed_s
    );
    println!("durability: {}", r.durability.stores);
    if let Some(b) = &r.durability.baseline {
        println!("            baseline {b}");
    }
    println!();
    println!(
        "{:<26} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "", "count", "per s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"
    );
    let row = |name: &str, count: u64, rate: f64, l: &Latency, errors: u64| {
        println!(
            "{name:<26} {count:>9} {rate:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {errors:>7}",
            l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
        );
    };
    row(
        "acm full exchanges",
        r.exchanges,
        r.exchanges_per_s,
        &r.latency_ms,
        r.errors,
    );
    if let Some(b) = &r.baseline {
        row(
            "raw hops (baseline)",
            b.hops,
            b.hops_per_s,
            &b.latency_ms,
            b.errors,
        );
    }
    if !r.error_kinds.is_empty() {
        let kinds: Vec<String> = r
            .error_kinds
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        println!("errors: {}", kinds.join(", "));
    }
    print_costs(r);
    soak::print(&r.samples, &r.partner_restarts_ms, r.left_over.as_ref());
}

/// What one exchange is made of, the ratio to the baseline, the CPU, the stages.
fn print_costs(r: &Report) {
    let p = &r.per_exchange;
    println!(
        "\none full exchange = {:.2} client API calls (submit, download, respond, download, acknowledge; {:.2} downloads came up empty, {:.2} notice waits timed out, {:.2} calls made again while a server was away) + {} SSE notices + {} partner API calls (mutual TLS)",
        p.client_calls,
        p.empty_downloads,
        p.wait_timeouts,
        p.retries,
        p.sse_notices,
        p.partner_calls
    );
    for (name, s) in [("A", &p.a), ("B", &p.b)] {
        if let Some(s) = s {
            println!(
                "  store {name}: {:.2} events, {:.2} appends, {:.2} writer transactions per exchange ({:.0}/s; each one that changed rows ends with an fsync, an outbox claim that found nothing does not)",
                s.events, s.appends, s.transactions, s.transactions_per_s
            );
        }
    }
    if let (Some(b), Some(ratio)) = (&r.baseline, r.exchanges_per_raw_hop) {
        println!(
            "  raw hop = 1 HTTPS call (mutual TLS, {}-byte JSON) + 1 durable row; {:.1} rows per commit",
            b.body_bytes, b.hops_per_commit
        );
        if let Some(cpu) = b.cpu_ms_per_hop {
            println!("  raw hop CPU: {cpu:.3} ms per hop (client and server)");
        }
        let durable = p.a.zip(p.b).map(|(a, b)| a.appends + b.appends);
        println!(
            "\nacm full exchanges/s ÷ raw hops/s = {ratio:.3} (an exchange makes {:.1} HTTPS calls and {} durable appends, so the rate per HTTPS call is {:.2}× the raw hop's)",
            p.client_calls + f64::from(p.partner_calls),
            durable.map_or_else(|| "about 9".to_owned(), |d| format!("{d:.1}")),
            ratio * (p.client_calls + f64::from(p.partner_calls)),
        );
    }
    if let Some(cpu) = &r.cpu {
        let mut threads: Vec<(&String, &f64)> = cpu.by_thread_ms_per_exchange.iter().collect();
        threads.sort_by(|a, b| b.1.total_cmp(a.1));
        let threads: Vec<String> = threads
            .iter()
            .map(|(name, ms)| format!("{name} {ms:.2}"))
            .collect();
        println!(
            "\nCPU: {:.2} ms per exchange, {:.2} of {} cores busy ({}); by thread, ms per exchange: {}",
            cpu.ms_per_exchange,
            cpu.cores_busy,
            cpu.cores,
            if r.mode == "started" {
                "this process: both servers and the load clients"
            } else {
                "this process: the load clients only"
            },
            threads.join(", ")
        );
    }
    if let Some(stages) = &r.stages_ms {
        println!("\nwhere an exchange's time goes (--verbose; per exchange, ms):");
        println!(
            "{:<28} {:>8} {:>8} {:>8} {:>8}",
            "", "mean", "p50", "p99", "max"
        );
        for name in STAGES {
            if let Some(l) = stages.get(name) {
                println!(
                    "{name:<28} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                    l.mean_ms, l.p50_ms, l.p99_ms, l.max_ms
                );
            }
        }
    }
}
