//! The SQLite ACM store passes the ACM store conformance suite: its views equal the fold of
//! its log after any history, keys are claimed once, outbox claims are leased.
#![allow(clippy::unwrap_used)]

use acm_core::views::TimerKind;
use acm_core::{
    AcmStore, Appended, Event, EventStore, EventStream, ExpectedVersion, GlobalPosition,
    IdempotencyKey, InboxEntry, McServiceId, MessageId, NewEvent, OutboxStatus, OwedMessage,
    RequestId, SendFailure, StoreError, StreamId, SubmissionEntry, Version,
};
use acm_store_sqlite::SqliteAcmStore;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use tempfile::TempDir;

/// A [`SqliteAcmStore`] in a temporary directory that lives as long as it.
struct TempAcm {
    store: SqliteAcmStore,
    _dir: TempDir,
}

fn fresh() -> TempAcm {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteAcmStore::open(dir.path().join("acm.db")).unwrap();
    TempAcm { store, _dir: dir }
}

#[async_trait]
impl EventStore<Event> for TempAcm {
    async fn append(
        &self,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent<Event>>,
    ) -> Result<Appended, StoreError> {
        self.store.append(stream, expected, events).await
    }
    fn read_stream(&self, stream: StreamId, after: Version) -> EventStream<'_, Event> {
        self.store.read_stream(stream, after)
    }
    fn read_all(&self, after: GlobalPosition) -> EventStream<'_, Event> {
        self.store.read_all(after)
    }
    async fn head(&self) -> Result<GlobalPosition, StoreError> {
        self.store.head().await
    }
}

#[async_trait]
impl AcmStore for TempAcm {
    async fn pending_for(&self, user: &McServiceId) -> Result<Vec<RequestId>, StoreError> {
        self.store.pending_for(user).await
    }
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<OwedMessage>, StoreError> {
        self.store.claim_outbox(now, lease, limit).await
    }
    async fn record_failed_send(
        &self,
        message_id: MessageId,
        failure: SendFailure,
    ) -> Result<Option<u32>, StoreError> {
        self.store.record_failed_send(message_id, failure).await
    }
    async fn outbox_status(&self) -> Result<OutboxStatus, StoreError> {
        self.store.outbox_status().await
    }
    async fn due_hooks(&self, limit: usize) -> Result<Vec<RequestId>, StoreError> {
        self.store.due_hooks(limit).await
    }
    async fn due_timers(
        &self,
        kind: TimerKind,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<RequestId>, StoreError> {
        self.store.due_timers(kind, since, limit).await
    }
    async fn received(&self, message_id: MessageId) -> Result<Option<InboxEntry>, StoreError> {
        self.store.received(message_id).await
    }
    async fn submission(
        &self,
        requester: &McServiceId,
        key: &IdempotencyKey,
    ) -> Result<Option<SubmissionEntry>, StoreError> {
        self.store.submission(requester, key).await
    }
    fn subscribe(&self, after: GlobalPosition) -> EventStream<'_, Event> {
        self.store.subscribe(after)
    }
}

acm_core::acm_conformance_tests!(fresh());
