//! A soak's extras: partner restarts in the middle of the run, samples of throughput,
//! latency, memory and file descriptors per interval (flat lines mean nothing leaks), and
//! what the stores still owe at the end (nothing, when nothing was lost).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use acm_core::AcmStore;
use serde::Serialize;

use super::Servers;
use super::stats::{Counters, per_second};
use crate::Failure;
use crate::pair::Pair;

/// What the soak's tasks saw beside the run.
#[derive(Debug, Default)]
pub struct Extras {
    /// One per `--sample-every` interval.
    pub samples: Vec<Sample>,
    /// How long B was away at each restart.
    pub restarts: Vec<Duration>,
}

/// Runs `run` (the exchanges) with the sampler and the partner restarter beside it, as
/// asked; the servers back (B restarted, maybe), what `run` gave, and what they saw.
pub(super) async fn beside<T>(
    servers: Servers,
    sample_every: Option<Duration>,
    restart_every: Option<Duration>,
    counters: &Arc<Counters>,
    run: impl std::future::Future<Output = T>,
) -> Result<(Servers, T, Extras), Failure> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sampling =
        sample_every.map(|every| tokio::spawn(sample(every, counters.clone(), stopped.clone())));
    let (kept, restarter) = match (servers, restart_every) {
        (Servers::Started(pair), Some(every)) => {
            (None, Some(tokio::spawn(restart(pair, every, stopped))))
        }
        (Servers::External, Some(_)) => {
            return Err(Failure::Usage(
                "--restart-partner-every needs started mode (no --a-url)".into(),
            ));
        }
        (servers, None) => (Some(servers), None),
    };
    let ran = run.await;
    stop.send_replace(true);
    let samples = match sampling {
        Some(task) => task.await.map_err(|e| Failure::Broken(e.to_string()))?,
        None => Vec::new(),
    };
    let (servers, restarts) = match (kept, restarter) {
        (_, Some(task)) => {
            let (pair, restarts) = task.await.map_err(|e| Failure::Broken(e.to_string()))??;
            (Servers::Started(pair), restarts)
        }
        (Some(servers), None) => (servers, Vec::new()),
        (None, None) => {
            return Err(Failure::Broken(
                "the servers were neither kept nor restarted".into(),
            ));
        }
    };
    Ok((servers, ran, Extras { samples, restarts }))
}

/// One interval of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the run started, at the interval's end.
    pub at_s: f64,
    /// Exchanges finished in the interval, per second.
    pub exchanges_per_s: f64,
    /// Exchanges that failed in the interval.
    pub errors: u64,
    /// p50 and p99 of the exchanges finished in the interval, ms.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// This process's resident set (`VmRSS`), KiB.
    pub rss_kib: Option<u64>,
    /// Of it, anonymous memory (`RssAnon`: the heap, stacks), KiB; the rest is mapped
    /// files and shared memory (the stores' `-shm` files).
    pub rss_anon_kib: Option<u64>,
    /// This process's open file descriptors.
    pub fds: Option<usize>,
}

/// A `kB` line of this process's `/proc/self/status` (`VmRSS:`, `RssAnon:`), KiB (Linux).
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Open file descriptors of this process (Linux).
fn fds() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(Iterator::count)
}

/// Samples every `every` until `stop` fires; the samples.
pub async fn sample(
    every: Duration,
    counters: Arc<Counters>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<Sample> {
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut done, mut errors) = (0_u64, 0_u64);
    let mut last = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return samples,
        }
        let window = counters.take_window();
        let now_done = counters.done.load(Ordering::Relaxed);
        let now_errors = counters.errors.load(Ordering::Relaxed);
        let latency = window.latency();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        samples.push(Sample {
            at_s: started.elapsed().as_secs_f64(),
            exchanges_per_s: per_second(now_done.saturating_sub(done), last.elapsed()),
            errors: now_errors.saturating_sub(errors),
            p50_ms: latency.p50_ms,
            p99_ms: latency.p99_ms,
            rss_kib: status_kib(&status, "VmRSS:"),
            rss_anon_kib: status_kib(&status, "RssAnon:"),
            fds: fds(),
        });
        (done, errors, last) = (now_done, now_errors, Instant::now());
    }
}

/// Restarts B every `every` until `stop` fires; the pair, and how long B was away each time.
pub async fn restart(
    mut pair: Box<Pair>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(Box<Pair>, Vec<Duration>), Failure> {
    let mut away = Vec::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return Ok((pair, away)),
        }
        let (restarted, took) = pair.restart_b().await?;
        tracing::info!(away_ms = took.as_millis(), "B restarted");
        pair = Box::new(restarted);
        away.push(took);
    }
}

/// What the stores still owe once the run is over.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LeftOver {
    /// Messages A and B still have to relay.
    pub a_outbox: u64,
    pub b_outbox: u64,
    /// Items still pending for A's and B's users (requests not answered, responses not
    /// acknowledged).
    pub a_pending: u64,
    pub b_pending: u64,
}

impl LeftOver {
    fn is_empty(self) -> bool {
        self.a_outbox == 0 && self.b_outbox == 0 && self.a_pending == 0 && self.b_pending == 0
    }
}

/// Reads what the stores owe, waiting up to `patience` for the relays to finish what is in
/// flight (an exchange that failed may have left a message to relay).
pub async fn left_over(pair: &Pair, patience: Duration) -> LeftOver {
    let deadline = Instant::now().checked_add(patience);
    loop {
        let (a_outbox, a_pending) = owed(pair.a.store().as_ref()).await;
        let (b_outbox, b_pending) = owed(pair.b.store().as_ref()).await;
        let left = LeftOver {
            a_outbox,
            b_outbox,
            a_pending,
            b_pending,
        };
        if left.is_empty() || deadline.is_none_or(|d| Instant::now() >= d) {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A store's outbox depth and pending items (`u64::MAX` for a count it could not read).
async fn owed(store: &dyn AcmStore) -> (u64, u64) {
    let outbox = store.outbox_status().await.map_or(u64::MAX, |s| s.depth);
    let pending = store.pending_count().await.unwrap_or(u64::MAX);
    (outbox, pending)
}

/// Prints the samples, the restarts and what was left over.
pub fn print(samples: &[Sample], restarts_ms: &[f64], left: Option<&LeftOver>) {
    if !restarts_ms.is_empty() {
        let each: Vec<String> = restarts_ms.iter().map(|ms| format!("{ms:.0}")).collect();
        println!(
            "\npartner restarts: {} (B away, ms: {})",
            restarts_ms.len(),
            each.join(", ")
        );
    }
    if !samples.is_empty() {
        println!(
            "\n{:>8} {:>10} {:>7} {:>8} {:>8} {:>10} {:>10} {:>6}",
            "at s", "exch/s", "errors", "p50 ms", "p99 ms", "RSS MiB", "anon MiB", "fds"
        );
        for s in samples {
            #[allow(clippy::cast_precision_loss)] // KiB far below 2^52
            let mib = |kib: Option<u64>| {
                kib.map_or_else(|| "-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
            };
            let (rss, anon) = (mib(s.rss_kib), mib(s.rss_anon_kib));
            let fds = s.fds.map_or_else(|| "-".to_owned(), |n| n.to_string());
            println!(
                "{:>8.1} {:>10.1} {:>7} {:>8.2} {:>8.2} {rss:>10} {anon:>10} {fds:>6}",
                s.at_s, s.exchanges_per_s, s.errors, s.p50_ms, s.p99_ms
            );
        }
    }
    if let Some(left) = left {
        println!(
            "\nleft over at the end: A outbox {}, B outbox {}, A pending {}, B pending {}{}",
            left.a_outbox,
            left.b_outbox,
            left.a_pending,
            left.b_pending,
            if left.is_empty() {
                " (nothing lost)"
            } else {
                ""
            }
        );
    }
}
