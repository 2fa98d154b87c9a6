//! Drives an ACM server's duties on a tokio runtime until told to stop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use acm_core::{AcmServer, GlobalPosition};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running set of duties for one server: `tick` every `interval`, and the follower that
/// notifies logged-on users of what other processes wrote to the store.
///
/// [`Runner::shutdown`] lets the current pass finish (no send or append is cut in the
/// middle) and then stops; dropping a runner without it stops at the next await point.
#[derive(Debug)]
pub struct Runner {
    stop: watch::Sender<bool>,
    ticker: JoinHandle<()>,
    relay: JoinHandle<()>,
    follower: JoinHandle<()>,
}

impl Runner {
    /// Starts the duties of `server` on the current tokio runtime. The follower starts at
    /// the store's head when it starts. Besides the tick, a message this server leaves owed
    /// is relayed at once ([`AcmServer::relay_wanted`]).
    pub fn start(server: Arc<AcmServer>, interval: Duration) -> Self {
        let (stop, stopped) = watch::channel(false);
        let ticker = tokio::spawn(tick_until(server.clone(), interval, stopped.clone()));
        let relay = tokio::spawn(relay_until(server.clone(), stopped.clone()));
        let follower = tokio::spawn(follow_until(server, stopped));
        Self {
            stop,
            ticker,
            relay,
            follower,
        }
    }

    /// Stops after the pass under way, and waits for it.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        // A task that panicked has nothing left to finish; the panic was logged by tokio.
        let _ = self.ticker.await;
        let _ = self.relay.await;
        let _ = self.follower.await;
    }
}

async fn tick_until(
    server: Arc<AcmServer>,
    interval: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        // A pass is not cut short by a stop: it runs to its end.
        let report = server.tick().await;
        record(&report);
        if !report.errors.is_empty() {
            tracing::warn!(
                errors = report.errors.len(),
                "duties met errors; they run again"
            );
        }
    }
}

/// Relays as soon as this server leaves a message owed: a request or a response then waits
/// for no tick. Claims are leased, so this pass and the tick's never send one message twice.
async fn relay_until(server: Arc<AcmServer>, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = server.relay_wanted() => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        match server.relay().await {
            Ok(report) => record_relay(&report),
            // The tick retries what this pass could not do.
            Err(error) => tracing::warn!(%error, "relay pass failed"),
        }
    }
}

fn record_relay(relay: &acm_core::RelayReport) {
    for (outcome, count) in [
        ("acknowledged", relay.acknowledged),
        ("unreachable", relay.unreachable),
        ("refused", relay.refused),
        ("not_owed", relay.not_owed),
    ] {
        metrics::counter!("acm_relay_sends_total", "outcome" => outcome).increment(count as u64);
    }
}

/// The pass's outcomes as Prometheus counters.
fn record(report: &acm_core::TickReport) {
    record_relay(&report.relay);
    for (duty, count) in [
        ("expired", report.expired),
        ("undeliverable", report.undeliverable),
        ("hooks", report.hooks),
    ] {
        metrics::counter!("acm_duties_total", "duty" => duty).increment(count as u64);
    }
    metrics::counter!("acm_duty_errors_total").increment(report.errors.len() as u64);
}

async fn follow_until(server: Arc<AcmServer>, mut stopped: watch::Receiver<bool>) {
    let start = match server.store().head().await {
        Ok(head) => head,
        Err(error) => {
            tracing::warn!(%error, "could not read the store's head; following from the start");
            GlobalPosition::START
        }
    };
    let mut after = start;
    loop {
        tokio::select! {
            error = server.follow(after) => {
                tracing::warn!(%error, "following the store failed; retrying in a second");
            }
            _ = stopped.wait_for(|s| *s) => return,
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        // Notices are at-least-once: following again from the head is enough, since what
        // is pending stays in the store for the next download.
        after = server.store().head().await.unwrap_or(after);
    }
}

/// Runs `server`'s duties until `shutdown` completes, then stops them gracefully.
pub async fn run_until(
    server: Arc<AcmServer>,
    interval: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let runner = Runner::start(server, interval);
    shutdown.await;
    runner.shutdown().await;
}
