//! The `SQLite` store as an ACM store: [`SqliteAcmStore`], a store opened with the views of
//! [`acm_core::views`] ([`AcmProjection`]) and the [`AcmStore`] port over their tables.
//!
//! It is a type of its own so that a store without the views does not type-check where an
//! ACM server's store is wanted (there is no runtime "no projection" error to forget).

use std::path::Path;

use acm_core::views::{Digest, TimerKind};
use acm_core::{
    AcmStore, Appended, Event, EventStore, EventStream, ExpectedVersion, GlobalPosition,
    IdempotencyKey, InboxEntry, McServiceId, MessageId, NewEvent, OutboxStatus, OwedMessage,
    RequestId, SendFailure, StoreError, StreamId, SubmissionEntry, Version,
};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use rusqlite::{OptionalExtension, params};
use tokio::sync::oneshot;

use crate::chain::ChainReport;
use crate::codec::nanos_saturating;
use crate::error::{BackendError, OpenError, sqlite};
use crate::projection::AcmProjection;
use crate::store::{SqliteOptions, SqliteStore, WriterStats};
use crate::writer::Job;

const PENDING_FOR: &str = include_str!("acm/pending_for.sql");
const PENDING_COUNT: &str = include_str!("acm/pending_count.sql");
const OUTBOX_STATUS: &str = include_str!("acm/outbox_status.sql");
const DUE_HOOKS: &str = include_str!("acm/due_hooks.sql");
const DUE_TIMERS: &str = include_str!("acm/due_timers.sql");
const RECEIVED: &str = include_str!("acm/received.sql");
const SUBMISSION: &str = include_str!("acm/submission.sql");

/// An ACM server's durable store: a [`SqliteStore`] of ACM events whose views (pending items,
/// outbox, hooks, timers, inbox, submissions) are written in the events' transactions.
/// Cheap to clone (a handle).
///
/// ```
/// use acm_core::{AcmStore, McServiceId};
/// use acm_store_sqlite::SqliteAcmStore;
/// let dir = tempfile::tempdir().unwrap();
/// let store = SqliteAcmStore::open(dir.path().join("acm.db")).unwrap();
/// let bob: McServiceId = "sip:bob@mc-b.example".parse().unwrap();
/// assert!(futures_executor::block_on(store.pending_for(&bob)).unwrap().is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct SqliteAcmStore {
    store: SqliteStore<Event>,
}

fn corrupt(column: &'static str) -> StoreError {
    BackendError::Corrupt {
        position: 0,
        column,
    }
    .into()
}

fn request_id(bytes: &[u8], column: &'static str) -> Result<RequestId, StoreError> {
    let uuid = uuid::Uuid::from_slice(bytes).map_err(|_| corrupt(column))?;
    RequestId::from_uuid(uuid).map_err(|_| corrupt(column))
}

fn digest(bytes: &[u8], column: &'static str) -> Result<Digest, StoreError> {
    Ok(Digest(bytes.try_into().map_err(|_| corrupt(column))?))
}

fn limit_of(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl SqliteAcmStore {
    /// Opens (or creates) an ACM server's store at `path`, with default options.
    ///
    /// Opening blocks on file I/O (and, for a store opened before with other views, on
    /// rebuilding them from the log): an async server should call it from
    /// `spawn_blocking`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens (or creates) an ACM server's store with `options`; their projection is replaced
    /// by the ACM views', keeping at most `options.projection_cache` request states. Blocks
    /// as [`SqliteAcmStore::open`] does.
    pub fn open_with(
        path: impl AsRef<Path>,
        mut options: SqliteOptions<Event>,
    ) -> Result<Self, OpenError> {
        options.projection = Some(Box::new(AcmProjection::with_capacity(
            options.projection_cache,
        )));
        Ok(Self {
            store: SqliteStore::open_with(path, options)?,
        })
    }

    /// The event store underneath (verification, statistics, the file's path).
    pub fn as_store(&self) -> &SqliteStore<Event> {
        &self.store
    }

    /// Test-only: [`SqliteStore::inject_commit_failure`].
    #[doc(hidden)]
    pub fn inject_commit_failure(&self) {
        self.store.inject_commit_failure();
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// What the writer has committed since the store was opened.
    pub fn stats(&self) -> WriterStats {
        self.store.stats()
    }

    /// Recomputes the hash chain ([`SqliteStore::verify`]).
    pub async fn verify(&self) -> Result<ChainReport, StoreError> {
        self.store.verify().await
    }

    /// Closes the store, for every handle of it ([`SqliteStore::close`]).
    pub async fn close(self) -> Result<(), StoreError> {
        self.store.close().await
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.store.inner.readers.submit(f).await
    }

    async fn request_ids(
        &self,
        sql: &'static str,
        values: Vec<Box<dyn rusqlite::ToSql + Send>>,
    ) -> Result<Vec<RequestId>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(sql).map_err(sqlite)?;
            let refs: Vec<&dyn rusqlite::ToSql> = values
                .iter()
                .map(|v| -> &dyn rusqlite::ToSql { v.as_ref() })
                .collect();
            let mut rows = stmt.query(refs.as_slice()).map_err(sqlite)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(sqlite)? {
                let bytes = row
                    .get_ref(0)
                    .and_then(|v| Ok(v.as_blob()?))
                    .map_err(|_| corrupt("request_id"))?;
                out.push(request_id(bytes, "request_id")?);
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl EventStore<Event> for SqliteAcmStore {
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
impl AcmStore for SqliteAcmStore {
    async fn pending_for(&self, user: &McServiceId) -> Result<Vec<RequestId>, StoreError> {
        self.request_ids(PENDING_FOR, vec![Box::new(user.as_str().to_owned())])
            .await
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<OwedMessage>, StoreError> {
        let until = now
            .checked_add_signed(lease)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let (reply, rx) = oneshot::channel();
        self.store
            .send(Job::Claim {
                now: nanos_saturating(now),
                until: nanos_saturating(until),
                limit,
                reply,
            })
            .await?;
        rx.await
            .map_err(|_| StoreError::from(BackendError::Closed))?
    }

    async fn record_failed_send(
        &self,
        message_id: MessageId,
        failure: SendFailure,
    ) -> Result<Option<u32>, StoreError> {
        let (retry_at, refused) = match failure {
            SendFailure::Unreachable { retry_at } => (retry_at, None),
            SendFailure::Refused { retry_at, problem } => (retry_at, Some(problem)),
        };
        let (reply, rx) = oneshot::channel();
        self.store
            .send(Job::Failed {
                message_id,
                retry_at: nanos_saturating(retry_at),
                refused,
                reply,
            })
            .await?;
        rx.await
            .map_err(|_| StoreError::from(BackendError::Closed))?
    }

    async fn pending_count(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(PENDING_COUNT)
                .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
                .map(i64::cast_unsigned)
                .map_err(sqlite)
        })
        .await
    }

    async fn outbox_status(&self) -> Result<OutboxStatus, StoreError> {
        self.read(|conn| {
            let (depth, parked, oldest, max): (i64, i64, Option<i64>, i64) = conn
                .prepare_cached(OUTBOX_STATUS)
                .and_then(|mut s| {
                    s.query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                })
                .map_err(sqlite)?;
            Ok(OutboxStatus {
                depth: depth.cast_unsigned(),
                parked: parked.cast_unsigned(),
                oldest_queued_at: oldest.map(DateTime::from_timestamp_nanos),
                max_attempts: u32::try_from(max).unwrap_or(u32::MAX),
            })
        })
        .await
    }

    async fn due_hooks(&self, limit: usize) -> Result<Vec<RequestId>, StoreError> {
        self.request_ids(DUE_HOOKS, vec![Box::new(limit_of(limit))])
            .await
    }

    async fn due_timers(
        &self,
        kind: TimerKind,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<RequestId>, StoreError> {
        let kind = match kind {
            TimerKind::Expiry => "expiry",
            TimerKind::SendDeadline => "send_deadline",
        };
        self.request_ids(
            DUE_TIMERS,
            vec![
                Box::new(kind),
                Box::new(nanos_saturating(since)),
                Box::new(limit_of(limit)),
            ],
        )
        .await
    }

    async fn received(&self, message_id: MessageId) -> Result<Option<InboxEntry>, StoreError> {
        self.read(move |conn| {
            let row: Option<(Vec<u8>, Vec<u8>)> = conn
                .prepare_cached(RECEIVED)
                .and_then(|mut s| {
                    s.query_row(params![&message_id.as_uuid().as_bytes()[..]], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()
                })
                .map_err(sqlite)?;
            row.map(|(id, d)| {
                Ok(InboxEntry {
                    message_id,
                    request_id: request_id(&id, "inbox.request_id")?,
                    digest: digest(&d, "inbox.digest")?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn submission(
        &self,
        requester: &McServiceId,
        key: &IdempotencyKey,
    ) -> Result<Option<SubmissionEntry>, StoreError> {
        let (requester, key) = (requester.clone(), key.clone());
        self.read(move |conn| {
            let row: Option<(Vec<u8>, Vec<u8>)> = conn
                .prepare_cached(SUBMISSION)
                .and_then(|mut s| {
                    s.query_row(params![requester.as_str(), key.as_str()], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()
                })
                .map_err(sqlite)?;
            row.map(|(id, d)| {
                Ok(SubmissionEntry {
                    requester,
                    key,
                    request_id: request_id(&id, "submissions.request_id")?,
                    digest: digest(&d, "submissions.digest")?,
                })
            })
            .transpose()
        })
        .await
    }

    fn subscribe(&self, after: GlobalPosition) -> EventStream<'_, Event> {
        self.store.subscribe(after)
    }
}
