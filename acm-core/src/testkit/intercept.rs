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
