//! Test support shared by the integration tests: a memory ACM store whose appends a test
//! controls. The core's `testkit::intercept::Intercepted` is a plain event store; a server
//! needs the views too, so this wrapper passes every view query to the memory store.
// Each test crate uses part of this module.
#![allow(dead_code)]

use std::sync::Arc;

use acm_core::testkit::intercept::Append;
use acm_core::{
    AcmStore, Appended, Event, EventStore, EventStream, ExpectedVersion, GlobalPosition,
    IdempotencyKey, InboxEntry, McServiceId, MessageId, NewEvent, OutboxStatus, OwedMessage,
    RequestId, SendFailure, StoreError, StreamId, SubmissionEntry, TimerKind, Version,
};
use acm_store_memory::MemoryAcmStore;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

/// A memory ACM store appending through `how`; reads and views pass straight through.
#[derive(Debug)]
pub struct Intercepted<H> {
    /// The real store.
    pub inner: Arc<MemoryAcmStore>,
    /// How appends go.
    pub how: H,
}

#[async_trait]
impl<H: Append<Arc<MemoryAcmStore>, Event>> EventStore<Event> for Intercepted<H> {
    async fn append(
        &self,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent<Event>>,
    ) -> Result<Appended, StoreError> {
        self.how.append(&self.inner, stream, expected, events).await
    }

    fn read_stream(&self, stream: StreamId, after: Version) -> EventStream<'_, Event> {
        self.inner.read_stream(stream, after)
    }

    fn read_all(&self, after: GlobalPosition) -> EventStream<'_, Event> {
        self.inner.read_all(after)
    }

    async fn head(&self) -> Result<GlobalPosition, StoreError> {
        self.inner.head().await
    }
}

#[async_trait]
impl<H: Append<Arc<MemoryAcmStore>, Event>> AcmStore for Intercepted<H> {
    async fn pending_for(&self, user: &McServiceId) -> Result<Vec<RequestId>, StoreError> {
        self.inner.pending_for(user).await
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<OwedMessage>, StoreError> {
        self.inner.claim_outbox(now, lease, limit).await
    }

    async fn record_failed_send(
        &self,
        message_id: MessageId,
        failure: SendFailure,
    ) -> Result<Option<u32>, StoreError> {
        self.inner.record_failed_send(message_id, failure).await
    }

    async fn outbox_status(&self) -> Result<OutboxStatus, StoreError> {
        self.inner.outbox_status().await
    }

    async fn due_hooks(&self, limit: usize) -> Result<Vec<RequestId>, StoreError> {
        self.inner.due_hooks(limit).await
    }

    async fn due_timers(
        &self,
        kind: TimerKind,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<RequestId>, StoreError> {
        self.inner.due_timers(kind, since, limit).await
    }

    async fn received(&self, message_id: MessageId) -> Result<Option<InboxEntry>, StoreError> {
        self.inner.received(message_id).await
    }

    async fn submission(
        &self,
        requester: &McServiceId,
        key: &IdempotencyKey,
    ) -> Result<Option<SubmissionEntry>, StoreError> {
        self.inner.submission(requester, key).await
    }

    fn subscribe(&self, after: GlobalPosition) -> EventStream<'_, Event> {
        self.inner.subscribe(after)
    }
}

/// The states of every request in `store`'s log, folded from it.
pub fn replayed(
    store: &MemoryAcmStore,
) -> std::collections::BTreeMap<RequestId, acm_core::RequestState> {
    match acm_core::audit::replay(store.snapshot()) {
        Ok(states) => states,
        Err(error) => panic!("the log replays: {error:?}"),
    }
}
