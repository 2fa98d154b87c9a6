//! The raw hop the exchange rate is compared with: one HTTPS request over mutual TLS (the
//! rustls configurations acm's tls module builds, from the same kind of test certificates)
//! carrying a ~360-byte JSON body, whose handler stores one row durably in SQLite (WAL,
//! `synchronous=FULL`, as acm-store-sqlite opens its store) through a group-commit writer
//! thread, and answers 200 once the row is committed. Nothing else: no tokens, no events,
//! no views, no hash chain.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use acm_core::SystemId;
use acm_transport_http::{
    PartnerTrust, TlsIdentity, partner_api_server_config, partner_client_config,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use rusqlite::Connection;
use tokio::sync::oneshot;

use super::stats::{Counters, Histogram};
use crate::Failure;

/// Most rows one transaction holds (as many as acm-store-sqlite's default batch).
const MAX_BATCH: usize = 1024;
const ROUTE: &str = "/hop";

/// What the baseline measured.
#[derive(Debug)]
pub struct Measured {
    /// Hops answered 200.
    pub hops: u64,
    /// Hops that failed.
    pub errors: u64,
    /// From the first hop sent to the last answered.
    pub elapsed: Duration,
    /// Latency of each hop done.
    pub latency: Histogram,
    /// SQLite transactions committed (one fsync each, in WAL with `synchronous=FULL`).
    pub transactions: u64,
    /// The JSON body's size.
    pub body_bytes: usize,
    /// `PRAGMA journal_mode` and `PRAGMA synchronous`, read back on the writer connection.
    pub journal_mode: String,
    /// 2 is FULL.
    pub synchronous: i64,
}

struct Job {
    body: Bytes,
    reply: oneshot::Sender<bool>,
}

fn open(e: impl std::fmt::Display) -> Failure {
    Failure::Open(format!("baseline: {e}"))
}

/// A ~360-byte JSON message shaped like a forwarded partner request.
fn body(i: usize) -> Vec<u8> {
    let value = serde_json::json!({
        "message_id": uuid::Uuid::new_v4(),
        "request": {
            "request_id": uuid::Uuid::new_v4(),
            "requester": format!("sip:alice-{i}@mc-a.example"),
            "partner": "mc-b.example",
            "target": {"kind": "user", "id": format!("sip:bob-{i}@mc-b.example")},
            "body": {"kind": "interconnection_group_identity_provision",
                     "groups": ["sip:fire-ops@mc-a.example", "sip:tactical-2@mc-a.example"]},
        }
    });
    serde_json::to_vec(&value).unwrap_or_default()
}

/// The store: WAL and `synchronous=FULL` as acm-store-sqlite's `open` sets them.
fn store(path: &Path) -> Result<(Connection, String, i64), Failure> {
    let conn = Connection::open(path).map_err(open)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(open)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(open)?;
    let synchronous: i64 = conn
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .map_err(open)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS hops (
             id INTEGER PRIMARY KEY,
             received_at INTEGER NOT NULL,
             body BLOB NOT NULL
         )",
    )
    .map_err(open)?;
    Ok((conn, mode, synchronous))
}

/// Group commit: everything queued, one transaction, one fsync, then every caller answered.
fn writer(mut conn: Connection, jobs: &mpsc::Receiver<Job>, transactions: &AtomicU64) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = commit(&mut conn, &batch);
        if let Err(error) = &committed {
            tracing::warn!(%error, "baseline commit failed");
        }
        transactions.fetch_add(1, Ordering::Relaxed);
        for job in batch {
            // A caller that went away has nothing to be told.
            let _ = job.reply.send(committed.is_ok());
        }
    }
}

fn commit(conn: &mut Connection, batch: &[Job]) -> rusqlite::Result<()> {
    let now = chrono::Utc::now().timestamp_micros();
    let tx = conn.transaction()?;
    {
        let mut insert =
            tx.prepare_cached("INSERT INTO hops (received_at, body) VALUES (?1, ?2)")?;
        for job in batch {
            insert.execute(rusqlite::params![now, &job.body[..]])?;
        }
    }
    tx.commit()
}

async fn hop(State(jobs): State<mpsc::Sender<Job>>, body: Bytes) -> (StatusCode, &'static str) {
    // Parsed as acm parses a partner message, so the baseline pays for it too.
    if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
        return (StatusCode::BAD_REQUEST, "");
    }
    let (reply, committed) = oneshot::channel();
    if jobs.send(Job { body, reply }).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "");
    }
    match committed.await {
        Ok(true) => (StatusCode::OK, r#"{"ack":"stored"}"#),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, ""),
    }
}

/// Runs the baseline for `duration` with `concurrency` callers: B's certificate serves,
/// A's is the client's (both from `certs`, as `acm gen-certs` writes them); the SQLite file
/// is `dir/baseline.db`.
pub async fn run(
    certs: &Path,
    dir: &Path,
    duration: Duration,
    concurrency: usize,
    counters: Arc<Counters>,
) -> Result<Measured, Failure> {
    let a: SystemId = crate::pair::A.parse().map_err(open)?;
    let b: SystemId = crate::pair::B.parse().map_err(open)?;
    let read = |path: std::path::PathBuf| {
        std::fs::read(&path).map_err(|e| open(format!("{}: {e}", path.display())))
    };
    let a_ca = read(certs.join(a.as_str()).join("ca.pem"))?;
    let b_ca = read(certs.join(b.as_str()).join("ca.pem"))?;
    let identity = |s: &SystemId| {
        TlsIdentity::from_files(
            certs.join(s.as_str()).join("cert.pem"),
            certs.join(s.as_str()).join("key.pem"),
        )
        .map_err(open)
    };
    let trust = Arc::new(
        PartnerTrust::new()
            .with_partner(a.clone(), &a_ca)
            .map_err(open)?,
    );
    let server_tls = partner_api_server_config(&identity(&b)?, trust).map_err(open)?;
    let client_tls = partner_client_config(&identity(&a)?, &b, &b_ca).map_err(open)?;

    let (conn, journal_mode, synchronous) = store(&dir.join("baseline.db"))?;
    let (jobs, queued) = mpsc::channel::<Job>();
    let transactions = Arc::new(AtomicU64::new(0));
    let counted = transactions.clone();
    let writer = std::thread::Builder::new()
        .name("baseline-writer".into())
        .spawn(move || writer(conn, &queued, &counted))
        .map_err(open)?;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(open)?;
    listener.set_nonblocking(true).map_err(open)?;
    let port = listener.local_addr().map_err(open)?.port();
    let handle = axum_server::Handle::new();
    let router = axum::Router::new().route(ROUTE, post(hop)).with_state(jobs);
    // As acm's servers: accepted connections inherit TCP_NODELAY from the listener.
    socket2::SockRef::from(&listener)
        .set_tcp_nodelay(true)
        .map_err(open)?;
    let server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(server_tls),
    )
    .map_err(open)?
    .handle(handle.clone());
    let serving = tokio::spawn(async move { server.serve(router.into_make_service()).await });

    // One pooled client, as acm's partner transport keeps one per partner.
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(client_tls)
        .https_only(true)
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .build()
        .map_err(open)?;
    let url = format!("https://localhost:{port}{ROUTE}");
    let body_bytes = body(0).len();
    // One call first, so the TLS handshake is not in the figures (the exchange run's
    // connections are made while logging the users on, before its clock starts).
    let _ = client.post(&url).body(body(0)).send().await;

    let started = Instant::now();
    let (latency, errors) = drive(&client, &url, started, duration, concurrency, &counters).await;
    let elapsed = started.elapsed();

    handle.graceful_shutdown(Some(Duration::from_secs(2)));
    drop(client);
    match serving.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "baseline server ended with an error"),
        Err(e) => tracing::warn!(error = %e, "baseline server task failed"),
    }
    // The router (and with it the last sender) is gone: the writer drains and stops.
    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    Ok(Measured {
        hops: latency.count(),
        errors,
        elapsed,
        latency,
        // The warm-up call's transaction is not the run's.
        transactions: transactions.load(Ordering::Relaxed).saturating_sub(1),
        body_bytes,
        journal_mode,
        synchronous,
    })
}

/// `concurrency` callers, each sending one hop after the other until `duration` is over.
async fn drive(
    client: &reqwest::Client,
    url: &str,
    started: Instant,
    duration: Duration,
    concurrency: usize,
    counters: &Arc<Counters>,
) -> (Histogram, u64) {
    let until = started.checked_add(duration).unwrap_or(started);
    let mut callers = Vec::with_capacity(concurrency);
    for i in 0..concurrency {
        let client = client.clone();
        let url = url.to_owned();
        let counters = counters.clone();
        callers.push(tokio::spawn(async move {
            let mut latency = Histogram::new();
            let mut errors = 0_u64;
            while Instant::now() < until {
                let payload = body(i);
                let t = Instant::now();
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .timeout(Duration::from_secs(10))
                    .body(payload)
                    .send()
                    .await;
                let ok = match sent {
                    Ok(answer) if answer.status() == StatusCode::OK => answer.bytes().await.is_ok(),
                    _ => false,
                };
                if ok {
                    latency.record(t.elapsed());
                    counters.done.fetch_add(1, Ordering::Relaxed);
                } else {
                    errors = errors.saturating_add(1);
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            (latency, errors)
        }));
    }
    let mut latency = Histogram::new();
    let mut errors = 0_u64;
    for caller in callers {
        match caller.await {
            Ok((h, e)) => {
                latency.merge(&h);
                errors = errors.saturating_add(e);
            }
            Err(_) => errors = errors.saturating_add(1),
        }
    }
    (latency, errors)
}
