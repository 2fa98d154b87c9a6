//! A store in a temporary directory that lives as long as the store.
#![allow(dead_code)]

use acm_core::id::{GlobalPosition, StreamId, Version};
use acm_core::store::{
    Appended, DomainEvent, EventStore, EventStream, ExpectedVersion, NewEvent, StoreError,
};
use acm_store_sqlite::{SqliteOptions, SqliteStore};
use async_trait::async_trait;
use tempfile::TempDir;

/// A [`SqliteStore`] whose file is removed when it is dropped.
#[derive(Debug)]
pub struct TempStore<E> {
    pub store: SqliteStore<E>,
    pub dir: TempDir,
}

impl<E: DomainEvent> TempStore<E> {
    pub fn new() -> Self {
        Self::with(SqliteOptions::default())
    }

    pub fn with(options: SqliteOptions<E>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_with(dir.path().join("acm.db"), options).unwrap();
        Self { store, dir }
    }
}

#[async_trait]
impl<E: DomainEvent> EventStore<E> for TempStore<E> {
    async fn append(
        &self,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent<E>>,
    ) -> Result<Appended, StoreError> {
        self.store.append(stream, expected, events).await
    }

    fn read_stream(&self, stream: StreamId, after: Version) -> EventStream<'_, E> {
        self.store.read_stream(stream, after)
    }

    fn read_all(&self, after: GlobalPosition) -> EventStream<'_, E> {
        self.store.read_all(after)
    }

    async fn head(&self) -> Result<GlobalPosition, StoreError> {
        self.store.head().await
    }
}
