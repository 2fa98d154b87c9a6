//! A store whose appends a test controls (to fail, delay or hold them); reads pass straight
//! through to the real store underneath.

use async_trait::async_trait;

use crate::id::{GlobalPosition, StreamId, Version};
use crate::store::{
    Appended, DomainEvent, EventStore, EventStream, ExpectedVersion, NewEvent, StoreError,
};

/// How a test's store appends, given the real store underneath.
#[async_trait]
pub trait Append<S: Sync, E: Send>: Send + Sync {
    /// Appends (or not) to `inner`.
    async fn append(
        &self,
        inner: &S,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent<E>>,
    ) -> Result<Appended, StoreError>;
}

/// `inner`, appending through `how`.
#[derive(Debug)]
pub struct Intercepted<S, H> {
    /// The real store.
    pub inner: S,
    /// How appends go.
    pub how: H,
}

/// Appends straight through, holding `T` as long as the store lives (a temporary
/// directory, say).
#[derive(Debug)]
pub struct Passthrough<T>(pub T);

#[async_trait]
impl<S, E, T> Append<S, E> for Passthrough<T>
where
    S: EventStore<E>,
    E: DomainEvent,
    T: Send + Sync,
{
    async fn append(
        &self,
        inner: &S,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent<E>>,
    ) -> Result<Appended, StoreError> {
        inner.append(stream, expected, events).await
    }
}

#[async_trait]
impl<S, E, H> EventStore<E> for Intercepted<S, H>
where
    S: EventStore<E>,
    E: DomainEvent,
    H: Append<S, E>,
{
    async fn append(
        &self,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent<E>>,
    ) -> Result<Appended, StoreError> {
        self.how.append(&self.inner, stream, expected, events).await
    }

    fn read_stream(&self, stream: StreamId, after: Version) -> EventStream<'_, E> {
        self.inner.read_stream(stream, after)
    }

    fn read_all(&self, after: GlobalPosition) -> EventStream<'_, E> {
        self.inner.read_all(after)
    }

    async fn head(&self) -> Result<GlobalPosition, StoreError> {
        self.inner.head().await
    }
}

/// An intercepted ACM store is an ACM store: the views are the inner store's (written by its
/// appends, however the test lets them through).
#[async_trait]
impl<S, H> crate::views::AcmStore for Intercepted<S, H>
where
    S: crate::views::AcmStore,
    H: Append<S, crate::event::Event>,
{
    async fn pending_for(
        &self,
        user: &crate::id::McServiceId,
    ) -> Result<Vec<crate::id::RequestId>, StoreError> {
        self.inner.pending_for(user).await
    }

    async fn claim_outbox(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        lease: chrono::Duration,
        limit: usize,
    ) -> Result<Vec<crate::views::OwedMessage>, StoreError> {
        self.inner.claim_outbox(now, lease, limit).await
    }

    async fn record_failed_send(
        &self,
        message_id: crate::id::MessageId,
        failure: crate::views::SendFailure,
    ) -> Result<Option<u32>, StoreError> {
        self.inner.record_failed_send(message_id, failure).await
    }

    async fn pending_count(&self) -> Result<u64, StoreError> {
        self.inner.pending_count().await
    }

    async fn outbox_status(&self) -> Result<crate::views::OutboxStatus, StoreError> {
        self.inner.outbox_status().await
    }

    async fn due_hooks(&self, limit: usize) -> Result<Vec<crate::id::RequestId>, StoreError> {
        self.inner.due_hooks(limit).await
    }

    async fn due_timers(
        &self,
        kind: crate::views::TimerKind,
        since: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<crate::id::RequestId>, StoreError> {
        self.inner.due_timers(kind, since, limit).await
    }

    async fn received(
        &self,
        message_id: crate::id::MessageId,
    ) -> Result<Option<crate::views::InboxEntry>, StoreError> {
        self.inner.received(message_id).await
    }

    async fn submission(
        &self,
        requester: &crate::id::McServiceId,
        key: &crate::id::IdempotencyKey,
    ) -> Result<Option<crate::views::SubmissionEntry>, StoreError> {
        self.inner.submission(requester, key).await
    }

    fn subscribe(&self, after: GlobalPosition) -> EventStream<'_, crate::event::Event> {
        self.inner.subscribe(after)
    }
}
