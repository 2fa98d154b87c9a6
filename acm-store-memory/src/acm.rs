//! The memory store as an ACM store: the views of [`acm_core::views`] kept under the log's
//! lock, so an append and its views change together.

use acm_core::views::{self, ViewModel};
use acm_core::{
    AcmStore, Event, EventStream, GlobalPosition, IdempotencyKey, InboxEntry, McServiceId,
    MessageId, NewEvent, OutboxStatus, OwedMessage, RequestId, RequestState, SendFailure,
    StoreError, StreamId, SubmissionEntry, TimerKind, ViewChanges, evolve,
};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use foldhash::HashMap;

use crate::store::{MemoryStore, Projector};

/// An in-memory ACM store: a [`MemoryStore`] of ACM events with the views.
///
/// ```
/// use acm_core::{AcmStore, McServiceId};
/// use acm_store_memory::MemoryAcmStore;
/// let store = MemoryAcmStore::new();
/// let bob: McServiceId = "sip:bob@mc-b.example".parse().unwrap();
/// assert!(futures_executor::block_on(store.pending_for(&bob)).unwrap().is_empty());
/// ```
pub type MemoryAcmStore = MemoryStore<Event, AcmViews>;

/// The ACM views of a memory store, and the states of its unsettled requests (a settled
/// request's state is folded from its events again when one more arrives).
#[derive(Debug, Default)]
pub struct AcmViews {
    states: HashMap<StreamId, RequestState>,
    model: ViewModel,
}

impl AcmViews {
    /// The views.
    pub fn model(&self) -> &ViewModel {
        &self.model
    }
}

/// What an append does to the views, computed before the events are in the log.
#[derive(Debug)]
pub struct Prepared {
    after: RequestState,
    changes: ViewChanges,
    at: DateTime<Utc>,
}

impl Projector<Event> for AcmViews {
    type Prepared = Prepared;

    fn prepare(
        &mut self,
        stream: StreamId,
        history: &mut dyn Iterator<Item = &Event>,
        events: &[NewEvent<Event>],
    ) -> Result<Prepared, StoreError> {
        // Taken out, summarised, folded: no copy of the state is made.
        let before = match self.states.remove(&stream) {
            Some(state) => state,
            None => history.fold(RequestState::Empty, evolve),
        };
        let summary = views::Summary::of(&before);
        let after = events.iter().map(|e| &e.payload).fold(before, evolve);
        let changes = summary.changes_to(&after);
        if let Err(claim) = self.model.check(stream.0, &changes) {
            // Refused: the stream's state is folded again from the log next time.
            return Err(StoreError::Taken(claim));
        }
        let at = events
            .last()
            .map_or(DateTime::<Utc>::MIN_UTC, |e| e.recorded_at);
        Ok(Prepared { after, changes, at })
    }

    fn commit(&mut self, stream: StreamId, prepared: Prepared) {
        self.model.apply(stream.0, &prepared.changes, prepared.at);
        if views::is_settled(&prepared.after) {
            self.states.remove(&stream);
        } else {
            self.states.insert(stream, prepared.after);
        }
    }
}

impl MemoryAcmStore {
    /// A copy of the views (for tests and the conformance suite).
    pub fn views(&self) -> ViewModel {
        self.with_views(|v| v.model.clone())
    }
}

#[async_trait]
impl AcmStore for MemoryAcmStore {
    async fn pending_for(&self, user: &McServiceId) -> Result<Vec<RequestId>, StoreError> {
        Ok(self.with_views(|v| v.model.pending_for(user)))
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<OwedMessage>, StoreError> {
        Ok(self.with_views(|v| v.model.claim_outbox(now, lease, limit)))
    }

    async fn record_failed_send(
        &self,
        message_id: MessageId,
        failure: SendFailure,
    ) -> Result<Option<u32>, StoreError> {
        Ok(self.with_views(|v| v.model.record_failed_send(message_id, failure)))
    }

    async fn pending_count(&self) -> Result<u64, StoreError> {
        Ok(self.with_views(|v| v.model.pending_count()))
    }

    async fn outbox_status(&self) -> Result<OutboxStatus, StoreError> {
        Ok(self.with_views(|v| v.model.outbox_status()))
    }

    async fn due_hooks(&self, limit: usize) -> Result<Vec<RequestId>, StoreError> {
        Ok(self.with_views(|v| v.model.due_hooks(limit)))
    }

    async fn due_timers(
        &self,
        kind: TimerKind,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<RequestId>, StoreError> {
        Ok(self.with_views(|v| v.model.due_timers(kind, since, limit)))
    }

    async fn received(&self, message_id: MessageId) -> Result<Option<InboxEntry>, StoreError> {
        Ok(self.with_views(|v| v.model.received(message_id)))
    }

    async fn submission(
        &self,
        requester: &McServiceId,
        key: &IdempotencyKey,
    ) -> Result<Option<SubmissionEntry>, StoreError> {
        Ok(self.with_views(|v| v.model.submission(requester, key)))
    }

    fn subscribe(&self, after: GlobalPosition) -> EventStream<'_, Event> {
        self.follow(after)
    }
}
