//! One virtual user pair doing full exchanges in a loop: alice-i submits to bob-i, bob-i
//! learns of it on his notification stream, downloads and accepts; alice-i learns of the
//! response on hers, downloads it and acknowledges it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use acm_core::{GroupId, IdempotencyKey, McServiceId, PendingAcmData, PendingItem, RequestId};
use acm_core::{SystemId, Target};
use acm_transport_http::wire::{DecisionKind, ProvisionSubmission, ResponseSubmission};
use acm_transport_http::{AcmClient, ClientError, Notifications, Submitted};
use futures_util::FutureExt as _;
use tokio::sync::Semaphore;

use super::stats::{Counters, Histogram};

/// The stages of one exchange, in order, as `--verbose` reports them. A wait is the time
/// spent blocked on the notification stream; a download is the time in `GET pending-acm-data`
/// calls (more than one when a notice came before the item was there).
pub const STAGES: [&str; 7] = [
    "alice submits (POST)",
    "bob waits for a notice",
    "bob downloads (GET)",
    "bob responds (POST)",
    "alice waits for a notice",
    "alice downloads (GET)",
    "alice acknowledges (POST)",
];

/// One user: who, and a client acting for them.
#[derive(Debug, Clone)]
pub struct User {
    /// The user's MC service ID.
    pub id: McServiceId,
    /// A client of the user's own ACM server, with the user's token.
    pub client: AcmClient,
}

/// What every pair shares.
#[derive(Debug, Clone)]
pub struct Plan {
    /// No exchange starts at or after this instant.
    pub until: Instant,
    /// With `--rate`: one permit per exchange, handed out by the shared ticker.
    pub pacer: Option<Arc<Semaphore>>,
    /// Exchanges done and failed, for the progress line.
    pub counters: Arc<Counters>,
    /// Time each stage.
    pub verbose: bool,
    /// Longest wait for one thing the servers do (the request at bob, the response at
    /// alice) before the exchange counts as failed.
    pub patience: Duration,
    /// Longest wait for a notice before downloading anyway (a notice lost in a race, or a
    /// stream broken, never hangs a pair).
    pub redownload: Duration,
    /// The partner system (B).
    pub partner: SystemId,
    /// The groups each request provides (homed in A).
    pub groups: Vec<GroupId>,
}

/// What one pair did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Latency of each exchange done: submit sent → acknowledgement answered.
    pub latency: Histogram,
    /// With `--verbose`: one histogram per [`STAGES`] entry, over the exchanges done.
    pub stages: Vec<Histogram>,
    /// Failed exchanges by cause.
    pub errors: BTreeMap<String, u64>,
    /// Client API calls made (every exchange, done or failed).
    pub calls: u64,
    /// Downloads that did not hold what was waited for.
    pub empty_downloads: u64,
    /// Notice waits that timed out and downloaded anyway.
    pub wait_timeouts: u64,
    /// Calls made again after a server was gone or could not answer (no connection, 503,
    /// 507), and notification streams reopened after they broke.
    pub retries: u64,
}

/// Why an exchange failed.
#[derive(Debug)]
enum Fail {
    Client(ClientError),
    /// Waited `patience` for the named thing.
    Timeout(&'static str),
    /// Step 2 refused the submission (a misconfigured server).
    Refused(String),
}

impl Fail {
    fn code(&self) -> String {
        match self {
            Self::Client(e) => e.code().to_owned(),
            Self::Timeout(what) => format!("timeout_{what}"),
            Self::Refused(why) => format!("refused_{why}"),
        }
    }
}

impl From<ClientError> for Fail {
    fn from(e: ClientError) -> Self {
        Self::Client(e)
    }
}

/// A user's notification stream, opened once and reopened (from its last event id) only
/// when it breaks.
#[derive(Debug)]
pub struct Watcher {
    client: AcmClient,
    stream: Option<Notifications>,
    last_event_id: Option<String>,
}

impl Watcher {
    /// Logs `client`'s user on.
    pub async fn open(client: &AcmClient) -> Result<Self, ClientError> {
        let stream = client.notifications(None).await?;
        Ok(Self {
            client: client.clone(),
            stream: Some(stream),
            last_event_id: None,
        })
    }

    fn broken(&mut self) {
        if let Some(stream) = self.stream.take() {
            self.last_event_id = stream.last_event_id().map(str::to_owned);
        }
    }

    /// Waits up to `wait` for a notice; `true` when one came. The notices already arrived
    /// behind it are consumed too: the download that follows covers them all.
    async fn wait(&mut self, wait: Duration) -> Result<bool, ClientError> {
        if self.stream.is_none() {
            // A reopened stream notifies at once when anything is pending.
            let stream = self
                .client
                .notifications(self.last_event_id.as_deref())
                .await?;
            self.stream = Some(stream);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Ok(false);
        };
        // `Notifications::next` keeps its state in the stream, so a time-out loses nothing.
        match tokio::time::timeout(wait, stream.next()).await {
            Err(_) => Ok(false),
            Ok(Some(Ok(_))) => {
                loop {
                    match stream.next().now_or_never() {
                        Some(Some(Ok(_))) => {}
                        None => break,
                        Some(Some(Err(_)) | None) => {
                            self.broken();
                            break;
                        }
                    }
                }
                Ok(true)
            }
            Ok(Some(Err(e))) => {
                self.broken();
                Err(e)
            }
            Ok(None) => {
                self.broken();
                Err(ClientError::Transport(
                    "the notification stream ended".to_owned(),
                ))
            }
        }
    }
}

/// One virtual user pair: alice on A, bob on B, each logged on.
#[derive(Debug)]
pub struct VirtualPair {
    /// The requester.
    pub alice: User,
    /// The recipient.
    pub bob: User,
    /// alice's notification stream.
    pub alice_watch: Watcher,
    /// bob's notification stream.
    pub bob_watch: Watcher,
}

/// Where one exchange's time went (µs per stage), filled as it goes.
struct Clock {
    stages: [Duration; 7],
}

impl Clock {
    fn add(&mut self, stage: usize, since: Instant) {
        if let Some(slot) = self.stages.get_mut(stage) {
            *slot = slot.saturating_add(since.elapsed());
        }
    }
}

impl VirtualPair {
    /// Runs exchanges until `plan.until`, then returns what it measured.
    pub async fn run(mut self, plan: Plan) -> Outcome {
        let mut outcome = Outcome {
            stages: if plan.verbose {
                (0..STAGES.len()).map(|_| Histogram::new()).collect()
            } else {
                Vec::new()
            },
            ..Outcome::default()
        };
        let until = tokio::time::Instant::from_std(plan.until);
        loop {
            if Instant::now() >= plan.until {
                break;
            }
            if let Some(pacer) = &plan.pacer {
                tokio::select! {
                    permit = pacer.acquire() => match permit {
                        Ok(permit) => permit.forget(),
                        // Closed: the run is over.
                        Err(_) => break,
                    },
                    () = tokio::time::sleep_until(until) => break,
                }
            }
            let mut clock = Clock {
                stages: [Duration::ZERO; 7],
            };
            let started = Instant::now();
            match self.exchange(&plan, &mut outcome, &mut clock).await {
                Ok(()) => {
                    let took = started.elapsed();
                    outcome.latency.record(took);
                    for (h, d) in outcome.stages.iter_mut().zip(clock.stages) {
                        h.record(d);
                    }
                    plan.counters.done(took);
                }
                Err(fail) => {
                    let n = outcome.errors.entry(fail.code()).or_insert(0);
                    *n = n.saturating_add(1);
                    plan.counters.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(user = %self.alice.id, error = ?fail, "exchange failed");
                }
            }
        }
        outcome
    }

    async fn exchange(
        &mut self,
        plan: &Plan,
        outcome: &mut Outcome,
        clock: &mut Clock,
    ) -> Result<(), Fail> {
        let submission = ProvisionSubmission {
            partner: plan.partner.clone(),
            target: Target::User(self.bob.id.clone()),
            groups: plan.groups.clone(),
            requester_alias: None,
            requester: None,
        };
        let key: IdempotencyKey = format!("load-{}", uuid::Uuid::new_v4())
            .parse()
            .map_err(|e| Fail::Client(ClientError::Config(format!("idempotency key: {e}"))))?;
        let t = Instant::now();
        let alice = &self.alice.client;
        let request = match retried(plan, outcome, || alice.submit(&submission, &key)).await? {
            Submitted::Queued(accepted) => accepted.request_id,
            Submitted::Refused { refusal, .. } => return Err(Fail::Refused(refusal)),
        };
        clock.add(0, t);

        let offered = |data: &PendingAcmData| {
            data.items.iter().any(|item| {
                matches!(item, PendingItem::Request { request: r, .. } if r.request_id == request)
            })
        };
        await_item(
            &mut self.bob_watch,
            &self.bob.client,
            plan,
            outcome,
            clock,
            [1, 2],
            "request",
            offered,
        )
        .await?;

        let t = Instant::now();
        let accept = ResponseSubmission {
            decision: DecisionKind::Accept,
            reason: None,
            responder_alias: None,
        };
        let bob = &self.bob.client;
        retried(plan, outcome, || bob.respond(request, &accept)).await?;
        clock.add(3, t);

        let answered = |data: &PendingAcmData| has_response(data, request);
        let data = await_item(
            &mut self.alice_watch,
            &self.alice.client,
            plan,
            outcome,
            clock,
            [4, 5],
            "response",
            answered,
        )
        .await?;
        let t = Instant::now();
        // Everything downloaded, so a response left by an earlier failed exchange goes too.
        retried(plan, outcome, || alice.acknowledge_all(&data)).await?;
        clock.add(6, t);
        Ok(())
    }
}

fn has_response(data: &PendingAcmData, request: RequestId) -> bool {
    data.items.iter().any(|item| {
        matches!(item, PendingItem::Response { request: r, response }
            if r.request_id == request && response.outcome.is_accepted())
    })
}

/// Waits for a notice (or `plan.redownload`), downloads, and again until the download
/// holds what `found` looks for; fails after `plan.patience`.
#[allow(clippy::too_many_arguments)] // one call site per side; a struct would only rename them
async fn await_item(
    watcher: &mut Watcher,
    client: &AcmClient,
    plan: &Plan,
    outcome: &mut Outcome,
    clock: &mut Clock,
    [wait_stage, download_stage]: [usize; 2],
    what: &'static str,
    found: impl Fn(&PendingAcmData) -> bool,
) -> Result<PendingAcmData, Fail> {
    let deadline = Instant::now()
        .checked_add(plan.patience)
        .unwrap_or_else(Instant::now);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Fail::Timeout(what));
        }
        let t = Instant::now();
        match watcher.wait(plan.redownload.min(left)).await {
            Ok(true) => {}
            Ok(false) => outcome.wait_timeouts = outcome.wait_timeouts.saturating_add(1),
            // The server went away (a restart): the stream is reopened at the next wait, and
            // the download below finds what the notice would have announced.
            Err(_) => {
                outcome.retries = outcome.retries.saturating_add(1);
                tokio::time::sleep(RETRY_PAUSE.min(left)).await;
            }
        }
        clock.add(wait_stage, t);
        let t = Instant::now();
        let data = retried(plan, outcome, || client.pending()).await?;
        clock.add(download_stage, t);
        if found(&data) {
            return Ok(data);
        }
        outcome.empty_downloads = outcome.empty_downloads.saturating_add(1);
    }
}

/// The pause before a call is made again after its server could not answer.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Whether a failed call may succeed if made again: the server was unreachable (restarting,
/// say) or said so itself (503, 507 with a `Retry-After`).
fn retryable(e: &ClientError) -> bool {
    match e {
        ClientError::Transport(_) => true,
        ClientError::Problem(p) => p.status == 503 || p.status == 507,
        ClientError::Status { status, .. } => *status >= 500,
        _ => false,
    }
}

/// `call` until it answers, made again with the same arguments (every call of an exchange
/// is idempotent: the submission by its key, the rest by what they name) while its server
/// cannot answer, for up to `plan.patience`.
async fn retried<T, F, Fut>(plan: &Plan, outcome: &mut Outcome, mut call: F) -> Result<T, Fail>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let deadline = Instant::now()
        .checked_add(plan.patience)
        .unwrap_or_else(Instant::now);
    loop {
        outcome.calls = outcome.calls.saturating_add(1);
        match call().await {
            Ok(answer) => return Ok(answer),
            Err(e) if retryable(&e) && Instant::now() < deadline => {
                outcome.retries = outcome.retries.saturating_add(1);
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// With `--rate R`: a task that hands out `R` permits a second, evenly, until `until`, and
/// then closes the semaphore. At most `burst` permits wait unused, so a pause (every pair
/// busy) is not made up for by a burst larger than the pairs.
pub fn pacer(
    runtime: &tokio::runtime::Handle,
    rate: u32,
    until: Instant,
    burst: usize,
) -> Arc<Semaphore> {
    let permits = Arc::new(Semaphore::new(0));
    let handed = permits.clone();
    // A tick per permit, but no more than a thousand ticks a second.
    let period = Duration::from_secs(1)
        .checked_div(rate.max(1))
        .unwrap_or(Duration::from_millis(1))
        .max(Duration::from_millis(1));
    runtime.spawn(async move {
        let started = Instant::now();
        let mut given: u128 = 0;
        let mut every = tokio::time::interval(period);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while Instant::now() < until {
            every.tick().await;
            // Due so far: elapsed µs × rate / 10^6, in integers (no float, no overflow).
            let due = started
                .elapsed()
                .as_micros()
                .saturating_mul(u128::from(rate))
                / 1_000_000;
            let owed = due.saturating_sub(given);
            given = due;
            let room = burst.saturating_sub(handed.available_permits());
            let add = usize::try_from(owed).unwrap_or(usize::MAX).min(room);
            if add > 0 {
                handed.add_permits(add);
            }
        }
        handed.close();
    });
    permits
}
