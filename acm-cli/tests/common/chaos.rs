//! The pieces of the kill -9 test (tests/chaos.rs): a seeded random source, a client-side
//! retry loop that treats an unknown outcome as the client's to settle, the ledger of what
//! the workload was answered, and what each store says about where every request stands.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use acm_core::{Envelope, Event, RequestId};
use acm_transport_http::ClientError;

/// The longest one call is retried: far longer than any restart takes, only a bound so that
/// a server that never comes back fails the test instead of hanging it.
pub const RETRY_BOUND: Duration = Duration::from_secs(90);

/// The pause between two tries of a call.
pub const RETRY_PAUSE: Duration = Duration::from_millis(25);

/// A small seeded random source (splitmix64): the test needs a replayable choice of what to
/// kill and when, not cryptographic randomness, and no dependency for it.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A source that yields the same numbers for the same seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A duration between `lo` and `hi` milliseconds, both included.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }

    /// An independent source for another task, drawn from this one.
    pub fn fork(&mut self) -> Self {
        Self::new(self.next_u64())
    }
}

/// `ACM_CHAOS_SEED` when set (to replay a run), else a new seed from the clock.
pub fn seed() -> u64 {
    if let Ok(text) = std::env::var("ACM_CHAOS_SEED") {
        return text
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("ACM_CHAOS_SEED={text:?} is not a u64: {e}"));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // Nanoseconds alone would do; the process id keeps two runs started together apart.
    u64::try_from(now.as_nanos() & u128::from(u64::MAX)).unwrap_or_default()
        ^ u64::from(std::process::id()).rotate_left(32)
}

/// `ACM_CHAOS_KILLS` when set, else 30.
pub fn kills() -> usize {
    match std::env::var("ACM_CHAOS_KILLS") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("ACM_CHAOS_KILLS={text:?} is not a count: {e}")),
        Err(_) => 30,
    }
}

/// Whether a call that failed so may be sent again as it was: no answer (the server was
/// killed before, during or after it; the outcome is unknown), or a 503 that asks for a
/// retry. Every other failure is an answer the workload never expects.
pub fn worth_retrying(error: &ClientError) -> bool {
    match error {
        ClientError::Transport(_) => true,
        ClientError::Problem(problem) => problem.status == 503,
        ClientError::Status { status, .. } => *status == 503,
        _ => false,
    }
}

/// Calls `call` until it succeeds, again after every failure [`worth_retrying`], for at
/// most [`RETRY_BOUND`]; each try is counted in flight as a `kind` call in `calls`, and each
/// retry as one. Panics naming `what` on any other failure.
pub async fn persist<T, Fut>(
    calls: &Calls,
    kind: Call,
    what: &str,
    mut call: impl FnMut() -> Fut,
) -> T
where
    Fut: Future<Output = Result<T, ClientError>>,
{
    let started = Instant::now();
    loop {
        let result = {
            let _flying = calls.fly(kind);
            call().await
        };
        match result {
            Ok(value) => return value,
            Err(error) if worth_retrying(&error) => {
                calls.retried[kind.index()].fetch_add(1, Ordering::Relaxed);
                assert!(
                    started.elapsed() < RETRY_BOUND,
                    "{what}: still failing after {RETRY_BOUND:?}: {error}"
                );
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Err(error) => panic!("{what}: {error}"),
        }
    }
}

/// The kinds of client call the workload makes, each counted while in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Call {
    /// Alice's submission at A (steps 1–3).
    Submit,
    /// Bob's download at B (steps 7b–8).
    BobDownload,
    /// Bob's response at B (step 9).
    Respond,
    /// Alice's download at A (step 13b).
    AliceDownload,
    /// Alice's acknowledgement at A (step 14).
    Acknowledge,
    /// Bob's log-on at B (step 6: the notification stream).
    BobLogOn,
    /// Alice's log-on at A (step 12).
    AliceLogOn,
}

impl Call {
    /// Whether the call goes to A (else to B).
    pub fn to_a(self) -> bool {
        matches!(
            self,
            Self::Submit | Self::AliceDownload | Self::Acknowledge | Self::AliceLogOn
        )
    }

    /// Every kind.
    pub const ALL: [Self; KINDS] = [
        Self::Submit,
        Self::BobDownload,
        Self::Respond,
        Self::AliceDownload,
        Self::Acknowledge,
        Self::BobLogOn,
        Self::AliceLogOn,
    ];

    /// A short name.
    pub fn label(self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::BobDownload => "bob's download",
            Self::Respond => "respond",
            Self::AliceDownload => "alice's download",
            Self::Acknowledge => "acknowledge",
            Self::BobLogOn => "bob's log-on",
            Self::AliceLogOn => "alice's log-on",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const KINDS: usize = 7;

/// Calls in flight and calls retried, per kind.
#[derive(Debug, Default)]
pub struct Calls {
    in_flight: [AtomicUsize; KINDS],
    retried: [AtomicUsize; KINDS],
}

/// One call in flight, counted until dropped.
pub struct Flying<'a>(&'a AtomicUsize);

impl Drop for Flying<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Calls {
    /// Counts a call of `kind` in flight until the guard is dropped.
    pub fn fly(&self, kind: Call) -> Flying<'_> {
        let counter = &self.in_flight[kind.index()];
        counter.fetch_add(1, Ordering::SeqCst);
        Flying(counter)
    }

    /// Calls of `kind` in flight now.
    pub fn in_flight(&self, kind: Call) -> usize {
        self.in_flight[kind.index()].load(Ordering::SeqCst)
    }

    /// How often calls of `kind` were sent again.
    pub fn retried(&self, kind: Call) -> usize {
        self.retried[kind.index()].load(Ordering::Relaxed)
    }
}

/// Where a request is, as its clients know it; only ever moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Alice was answered; bob has not downloaded it yet (A's relay, B's store).
    Queued,
    /// Bob downloaded it; his response is not answered yet.
    AtBob,
    /// Bob was answered; alice has not downloaded the response yet (B's relay, A's store).
    Answered,
    /// Alice downloaded the response; her acknowledgement is not answered yet.
    Acknowledging,
    /// Alice's acknowledgement was answered.
    Done,
}

/// A call answered with success: what it did must be in the store from then on, whatever
/// happens to the server after the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// A submission with this key was answered with this request id (A: `submitted`).
    Submitted {
        /// The idempotency key.
        key: String,
        /// The request id of the answer.
        request: RequestId,
    },
    /// Bob's download listed the request (B: `delivered`).
    Delivered(RequestId),
    /// Bob's response was answered 204 (B: `responded`).
    Responded(RequestId),
    /// Alice's acknowledgement of the response was answered (A: `response_delivered`).
    ResponseDelivered(RequestId),
}

impl Answered {
    /// Whether A's store (else B's) must show it.
    pub fn at_a(&self) -> bool {
        matches!(self, Self::Submitted { .. } | Self::ResponseDelivered(_))
    }

    /// The request it is about.
    pub fn request(&self) -> RequestId {
        match self {
            Self::Submitted { request, .. }
            | Self::Delivered(request)
            | Self::Responded(request)
            | Self::ResponseDelivered(request) => *request,
        }
    }

    /// The event type that shows it.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::Submitted { .. } => "submitted",
            Self::Delivered(_) => "delivered",
            Self::Responded(_) => "responded",
            Self::ResponseDelivered(_) => "response_delivered",
        }
    }
}

/// What the workload knows: every key it submitted with and the request id it was answered,
/// every request's stage, and every success answer in the order it came.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Idempotency key → the request id answered (`None` until the first answer).
    pub keys: BTreeMap<String, Option<RequestId>>,
    /// Each request id seen, on either side, and its stage.
    pub stages: BTreeMap<RequestId, Stage>,
    /// Every success answer.
    pub answered: Vec<Answered>,
}

impl Ledger {
    /// Moves `request` to `stage` unless it is further already (bob may download a request
    /// before alice's submission is answered: the relay does not wait for the answer).
    pub fn advance(&mut self, request: RequestId, stage: Stage) {
        let now = self.stages.entry(request).or_insert(stage);
        *now = (*now).max(stage);
    }

    /// Requests submitted (answered) and not yet done, plus submissions not yet answered.
    pub fn open(&self) -> usize {
        let unanswered = self.keys.values().filter(|id| id.is_none()).count();
        let undone = self
            .keys
            .values()
            .flatten()
            .filter(|id| self.stages.get(id) != Some(&Stage::Done))
            .count();
        unanswered + undone
    }

    /// How many requests are at `stage`.
    pub fn at(&self, stage: Stage) -> usize {
        self.stages.values().filter(|s| **s == stage).count()
    }
}

/// Each request's event types in one log, in log order.
pub fn by_request(events: &[Envelope<Event>]) -> BTreeMap<RequestId, Vec<String>> {
    let mut map: BTreeMap<RequestId, Vec<String>> = BTreeMap::new();
    for e in events {
        map.entry(e.correlation_id)
            .or_default()
            .push(e.event_type.to_string());
    }
    map
}

/// The places a kill can find the procedure in, read from the two stores at the kill (the
/// killed server's as it died) and from the calls in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Alice's submission in flight (steps 1–3 at A).
    Submitting,
    /// A request in A's outbox: forwarded, B's "stored" not yet recorded (steps 3–4b).
    RequestRelay,
    /// Stored and verified at B, not yet downloaded by bob (steps 4a–7).
    AwaitingDownload,
    /// Bob's download in flight (steps 7b–8).
    Downloading,
    /// Bob's response in flight (step 9).
    Responding,
    /// A response in B's outbox: answered, A's acknowledgement not yet recorded (10–11).
    ResponseRelay,
    /// A response stored at A, not yet acknowledged by alice (steps 11–13).
    ResponsePending,
    /// Alice's download or acknowledgement in flight (steps 13b–14).
    Acknowledging,
    /// An acceptance at B whose hook has not run yet.
    HookDue,
}

impl Phase {
    /// Every phase, in the procedure's order.
    pub const ALL: [Self; 9] = [
        Self::Submitting,
        Self::RequestRelay,
        Self::AwaitingDownload,
        Self::Downloading,
        Self::Responding,
        Self::ResponseRelay,
        Self::ResponsePending,
        Self::Acknowledging,
        Self::HookDue,
    ];

    /// For a call in flight: whether it goes to A (else to B); `None` for a stage read from
    /// the stores, which either kill can find.
    pub fn call_to_a(self) -> Option<bool> {
        match self {
            Self::Submitting | Self::Acknowledging => Some(true),
            Self::Downloading | Self::Responding => Some(false),
            _ => None,
        }
    }

    /// A short name with the steps.
    pub fn label(self) -> &'static str {
        match self {
            Self::Submitting => "1-3 submit in flight",
            Self::RequestRelay => "3-4b request relay (A outbox)",
            Self::AwaitingDownload => "4a-7 stored at B, not downloaded",
            Self::Downloading => "7b-8 bob's download in flight",
            Self::Responding => "9 bob's respond in flight",
            Self::ResponseRelay => "10-11 response relay (B outbox)",
            Self::ResponsePending => "11-13 response pending for alice",
            Self::Acknowledging => "13b-14 alice's download/ack in flight",
            Self::HookDue => "hook due at B",
        }
    }
}

/// How many requests (or calls) were in each phase at one kill.
pub fn phases(
    a: &[Envelope<Event>],
    b: &[Envelope<Event>],
    calls: &BTreeMap<Call, usize>,
) -> BTreeMap<Phase, usize> {
    let has = |types: &[String], t: &str| types.iter().any(|x| x == t);
    let mut counts: BTreeMap<Phase, usize> = BTreeMap::new();
    let mut bump = |phase: Phase, n: usize| {
        if n > 0 {
            *counts.entry(phase).or_default() += n;
        }
    };
    for types in by_request(a).values() {
        let t = types.as_slice();
        bump(
            Phase::RequestRelay,
            usize::from(
                has(t, "forwarded") && !has(t, "partner_stored") && !has(t, "response_received"),
            ),
        );
        bump(
            Phase::ResponsePending,
            usize::from(has(t, "response_received") && !has(t, "response_delivered")),
        );
    }
    for types in by_request(b).values() {
        let t = types.as_slice();
        bump(
            Phase::AwaitingDownload,
            usize::from(has(t, "verified") && !has(t, "delivered")),
        );
        bump(
            Phase::ResponseRelay,
            usize::from(has(t, "responded") && !has(t, "response_forwarded")),
        );
        bump(
            Phase::HookDue,
            usize::from(has(t, "responded") && !has(t, "acceptance_applied")),
        );
    }
    let call = |kind| calls.get(&kind).copied().unwrap_or(0);
    bump(Phase::Submitting, call(Call::Submit));
    bump(Phase::Downloading, call(Call::BobDownload));
    bump(Phase::Responding, call(Call::Respond));
    bump(
        Phase::Acknowledging,
        call(Call::Acknowledge) + call(Call::AliceDownload),
    );
    counts
}

/// Every event whose event id an earlier event of `events` has already.
pub fn duplicate_event_ids(events: &[Envelope<Event>]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    events
        .iter()
        .filter(|e| !seen.insert(e.event_id.to_string()))
        .map(|e| format!("{} ({} of {})", e.event_id, e.event_type, e.correlation_id))
        .collect()
}
