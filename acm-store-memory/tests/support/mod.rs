//! A memory store with a test's own append behaviour; reads pass straight through.

use std::sync::Arc;

use acm_core::Event;
use acm_core::id::{GlobalPosition, StreamId, Version};
use acm_core::store::{Appended, EventStore, EventStream, ExpectedVersion, NewEvent, StoreError};
use acm_store_memory::MemoryStore;
use async_trait::async_trait;

/// How a test's store appends, given the real store underneath.
#[async_trait]
pub trait Append: Send + Sync {
    async fn append(
        &self,
        inner: &MemoryStore<Event>,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent<Event>>,
    ) -> Result<Appended, StoreError>;
}

/// `inner`, appending through `how`.
pub struct Intercepted<H> {
    pub inner: Arc<MemoryStore<Event>>,
    pub how: H,
}

#[async_trait]
impl<H: Append> EventStore<Event> for Intercepted<H> {
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
