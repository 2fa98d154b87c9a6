//! Projections kept in the same transaction as the events: the views of
//! [`acm_core::views`]. A [`Projection`] turns each appended event into typed row changes;
//! the writer applies them inside the append's savepoint, so the rows never disagree with the
//! log, whatever crashes when, and an append whose rows cannot be written (a key another
//! request holds) is refused alone.

use acm_core::Event;
use acm_core::McServiceId;
use acm_core::MessageId;
use acm_core::views::{self, InboxEntry, Queued, SubmissionEntry, Timer};
use acm_core::{GlobalPosition, StreamId, Version};
use acm_core::{NewEvent, StoreError};
use acm_core::{RequestState, evolve};
use chrono::{DateTime, Utc};
use foldhash::HashMap;

/// A change to a view table, applied in the transaction of the event that caused it. Every
/// change is about the request (stream) of that event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowChange {
    /// The request is no longer pending for a user.
    PendingRemove(McServiceId),
    /// The request became pending for a user.
    PendingAdd(McServiceId),
    /// A message is no longer owed: acknowledged, or made moot.
    OutboxSettle(MessageId),
    /// A message is now owed to a partner, queued at the event's recording time.
    OutboxQueue {
        /// The message and its partner.
        queued: Queued,
        /// When it was queued.
        at: DateTime<Utc>,
    },
    /// The acceptance hook became due (`true`) or is no longer due (`false`).
    Hook(bool),
    /// The request's timer is now this (`None`: it has none any more).
    Timer(Option<Timer>),
    /// A partner message the request records (refused when another request records it).
    Inbox(InboxEntry),
    /// A client's idempotency key the request claims (refused when another request holds it).
    Submission(SubmissionEntry),
}

impl RowChange {
    /// The row changes of one append's [`views::ViewChanges`], recorded at `at`.
    pub fn of(changes: views::ViewChanges, at: DateTime<Utc>, out: &mut Vec<Self>) {
        let views::ViewChanges {
            pending_removed,
            pending_added,
            outbox_settled,
            outbox_queued,
            hook,
            timer,
            inbox,
            submission,
        } = changes;
        // The claims first: a refused append stops before writing anything else.
        out.extend(inbox.map(Self::Inbox));
        out.extend(submission.map(Self::Submission));
        out.extend(pending_removed.into_iter().map(Self::PendingRemove));
        out.extend(pending_added.into_iter().map(Self::PendingAdd));
        out.extend(outbox_settled.map(Self::OutboxSettle));
        out.extend(outbox_queued.map(|queued| Self::OutboxQueue { queued, at }));
        out.extend(hook.map(Self::Hook));
        out.extend(timer.map(Self::Timer));
    }
}

/// One appended event, as a projection sees it.
#[derive(Debug, Clone, Copy)]
pub struct Appending<'a, E> {
    /// Its stream.
    pub stream: StreamId,
    /// Its version.
    pub version: Version,
    /// Its global position.
    pub position: GlobalPosition,
    /// The event and its metadata.
    pub event: &'a NewEvent<E>,
}

/// Reads a stream's earlier events inside the append's transaction.
pub trait History<E> {
    /// The payloads of `stream` up to and including version `upto`, in order.
    fn load(&mut self, stream: StreamId, upto: Version) -> Result<Vec<E>, StoreError>;
}

/// Turns appended events into row changes. Runs on the writer thread.
pub trait Projection<E>: Send + 'static {
    /// A stable name, recorded in the store: a store opened with another projection than the
    /// one its tables hold rebuilds them.
    fn name(&self) -> &'static str;

    /// The row changes `appending` causes, pushed to `out`.
    fn project(
        &mut self,
        history: &mut dyn History<E>,
        appending: Appending<'_, E>,
        out: &mut Vec<RowChange>,
    ) -> Result<(), StoreError>;

    /// Forgets what it cached for `stream` (its last append was rolled back).
    fn forget(&mut self, stream: StreamId);

    /// Forgets everything it cached (a whole transaction was rolled back).
    fn reset(&mut self);
}

/// The projection of the ACM views: [`views::changes`] of each event's request state before
/// and after it. It keeps the states of unsettled requests (a settled one leaves at once) so
/// that an event costs one `evolve`; a request not kept is rebuilt from its stream, inside
/// the append's transaction (one read of a short stream).
///
/// The states kept are bounded ([`SqliteOptions::projection_cache`](crate::SqliteOptions),
/// default [`AcmProjection::DEFAULT_CAPACITY`]): when the bound is reached the cache starts
/// over, so the writer's memory does not grow with the number of open requests (about 1–2 KB
/// a state: the default costs some 10–20 MB at most).
#[derive(Debug)]
pub struct AcmProjection {
    states: HashMap<StreamId, RequestState>,
    capacity: usize,
}

impl Default for AcmProjection {
    fn default() -> Self {
        Self::new()
    }
}

impl AcmProjection {
    /// Request states kept by default.
    pub const DEFAULT_CAPACITY: usize = 10_000;

    /// An empty projection keeping at most [`Self::DEFAULT_CAPACITY`] states.
    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// An empty projection keeping at most `capacity` request states (0: none, every event
    /// rebuilds its request from the stream).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            states: HashMap::default(),
            capacity,
        }
    }

    /// How many request states are kept now (at most the capacity).
    pub fn cached(&self) -> usize {
        self.states.len()
    }
}

impl Projection<Event> for AcmProjection {
    fn name(&self) -> &'static str {
        // Renamed with the views (schema version 3): tables of the older projection are
        // rebuilt from the log on open.
        "acm-views"
    }

    fn project(
        &mut self,
        history: &mut dyn History<Event>,
        a: Appending<'_, Event>,
        out: &mut Vec<RowChange>,
    ) -> Result<(), StoreError> {
        let before = match self.states.remove(&a.stream) {
            Some(state) => state,
            None if a.version.0 <= 1 => RequestState::Empty,
            None => history
                .load(a.stream, Version(a.version.0 - 1))?
                .iter()
                .fold(RequestState::Empty, evolve),
        };
        // Summarised, then folded in place: no copy of the state per event.
        let summary = views::Summary::of(&before);
        let after = evolve(before, &a.event.payload);
        RowChange::of(summary.changes_to(&after), a.event.recorded_at, out);
        if !views::is_settled(&after) && self.capacity > 0 {
            if self.states.len() >= self.capacity {
                self.states.clear();
            }
            self.states.insert(a.stream, after);
        }
        Ok(())
    }

    fn forget(&mut self, stream: StreamId) {
        self.states.remove(&stream);
    }

    fn reset(&mut self) {
        self.states.clear();
    }
}
