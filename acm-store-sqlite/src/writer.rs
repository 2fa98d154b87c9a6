//! The one writer thread. It takes every job queued while the previous transaction was
//! committing and runs them in one `BEGIN IMMEDIATE` transaction (group commit): one fsync
//! pays for the whole batch. Each append runs inside its own savepoint, so a conflicting
//! append is rolled back alone and its caller gets its own typed error.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use acm_core::views::{Claim, OwedMessage, TimerKind};
use acm_core::{Appended, DomainEvent, ExpectedVersion, NewEvent, StoreError};
use acm_core::{EventId, GlobalPosition, MessageId, RequestId, StreamId, Version};
use foldhash::HashMap;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use tokio::sync::{OwnedSemaphorePermit, oneshot, watch};

use crate::chain::{self, Fields, Hash};
use crate::codec::{Codec, actor_columns, nanos_saturating};
use crate::error::BackendError;
use crate::open::StoreLock;
use crate::projection::{Appending, History, Projection, RowChange};
use crate::reader::Readers;

const INSERT_EVENT: &str = include_str!("writer/insert_event.sql");
const PENDING_ADD: &str = include_str!("writer/pending_add.sql");
const PENDING_REMOVE: &str = include_str!("writer/pending_remove.sql");
const OUTBOX_QUEUE: &str = include_str!("writer/outbox_queue.sql");
const OUTBOX_SETTLE: &str = include_str!("writer/outbox_settle.sql");
const OUTBOX_CLAIM: &str = include_str!("writer/outbox_claim.sql");
const OUTBOX_FAILED: &str = include_str!("writer/outbox_failed.sql");
const OUTBOX_RELEASE: &str = include_str!("writer/outbox_release.sql");
const HOOK_SET: &str = include_str!("writer/hook_set.sql");
const HOOK_CLEAR: &str = include_str!("writer/hook_clear.sql");
const TIMER_SET: &str = include_str!("writer/timer_set.sql");
const TIMER_CLEAR: &str = include_str!("writer/timer_clear.sql");
const INBOX_INSERT: &str = include_str!("writer/inbox_insert.sql");
const INBOX_HOLDER: &str = include_str!("writer/inbox_holder.sql");
const INBOX_UPDATE: &str = include_str!("writer/inbox_update.sql");
const SUBMISSION_INSERT: &str = include_str!("writer/submission_insert.sql");
const SUBMISSION_HOLDER: &str = include_str!("writer/submission_holder.sql");
const SUBMISSION_UPDATE: &str = include_str!("writer/submission_update.sql");
const CHAIN_HEAD: &str = include_str!("writer/chain_head.sql");
const HISTORY: &str = include_str!("writer/history.sql");
const REPLAYED: &str = include_str!("writer/replayed.sql");
const PROJECTION_STATE: &str = include_str!("writer/projection_state.sql");
const PROJECTION_THROUGH: &str = include_str!("writer/projection_through.sql");
const PROJECTION_CLEAR: &str = include_str!("writer/projection_clear.sql");
const CATCH_UP: &str = include_str!("writer/catch_up.sql");

/// Events projected per transaction while catching the projection up on open.
const CATCH_UP_PAGE: i64 = 4096;

/// Longest wait for a batch to fill up to the size of the previous one.
const GATHER: Duration = Duration::from_micros(300);

/// Stream versions kept before the cache starts over (a miss costs one indexed lookup). A
/// request's stream is appended to within seconds of its previous append, so a few thousand
/// cover the requests in flight; a million kept tens of MB for finished ones.
const MAX_CACHED_VERSIONS: usize = 1 << 14;

/// Longest wait, when the store closes, for readers of other processes (an auditor, a backup)
/// to leave the `-wal` so that it can be folded into the database file.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

pub(crate) struct AppendJob<E> {
    pub stream: StreamId,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent<E>>,
    pub payloads: Vec<Vec<u8>>,
    pub reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// Where the outcome of a close goes.
pub(crate) type CloseReply = oneshot::Sender<Result<(), StoreError>>;

/// What the store sends its writer thread.
pub(crate) enum Msg<E> {
    /// A job, with the permit of the writer's bounded queue that its caller took: released
    /// once the job is answered.
    Job(Job<E>, OwnedSemaphorePermit),
    /// Commit every job queued before this one, then shut the store down.
    Close(CloseReply),
}

pub(crate) enum Job<E> {
    Append(AppendJob<E>),
    Claim {
        now: i64,
        until: i64,
        limit: usize,
        reply: oneshot::Sender<Result<Vec<OwedMessage>, StoreError>>,
    },
    Failed {
        message_id: MessageId,
        retry_at: i64,
        refused: Option<String>,
        reply: oneshot::Sender<Result<Option<u32>, StoreError>>,
    },
}

/// What readers may see of the writer: the committed head (a `watch`, so subscribers wake on
/// each commit).
#[derive(Debug)]
pub(crate) struct Published {
    pub head: watch::Sender<u64>,
    /// Transactions committed, and the jobs they held (group commit's batch sizes).
    pub transactions: AtomicU64,
    pub jobs: AtomicU64,
    /// Set when the writer has shut down (subscriptions end).
    pub closed: AtomicBool,
    /// Test-only: the next commit fails as if `COMMIT` had (see
    /// `SqliteStore::inject_commit_failure`).
    pub inject_commit_failure: AtomicBool,
}

/// A job's outcome, sent once its transaction is committed (or failed).
enum Done {
    Append(
        oneshot::Sender<Result<Appended, StoreError>>,
        Result<Appended, StoreError>,
    ),
    Claim(
        oneshot::Sender<Result<Vec<OwedMessage>, StoreError>>,
        Result<Vec<OwedMessage>, StoreError>,
    ),
    Failed(
        oneshot::Sender<Result<Option<u32>, StoreError>>,
        Result<Option<u32>, StoreError>,
    ),
}

impl Done {
    fn send(self) {
        // A caller that stopped waiting does not stop the others.
        match self {
            Self::Append(tx, r) => drop(tx.send(r)),
            Self::Claim(tx, r) => drop(tx.send(r)),
            Self::Failed(tx, r) => drop(tx.send(r)),
        }
    }

    /// Refuses the job: the writer halted before it.
    fn halt(self, reason: &str) {
        let e = || StoreError::Halted {
            reason: reason.to_owned(),
        };
        match self {
            Self::Append(tx, _) => drop(tx.send(Err(e()))),
            Self::Claim(tx, _) => drop(tx.send(Err(e()))),
            Self::Failed(tx, _) => drop(tx.send(Err(e()))),
        }
    }

    /// Refuses the job: the storage had no room, and nothing of it was written.
    fn full(self, reason: &str) {
        let e = || StoreError::StorageFull {
            reason: reason.to_owned(),
        };
        match self {
            Self::Append(tx, _) => drop(tx.send(Err(e()))),
            Self::Claim(tx, _) => drop(tx.send(Err(e()))),
            Self::Failed(tx, _) => drop(tx.send(Err(e()))),
        }
    }

    fn fail(self, error: &Arc<rusqlite::Error>) {
        let e = || BackendError::Sqlite(error.clone()).into();
        match self {
            Self::Append(tx, _) => drop(tx.send(Err(e()))),
            Self::Claim(tx, _) => drop(tx.send(Err(e()))),
            Self::Failed(tx, _) => drop(tx.send(Err(e()))),
        }
    }
}

/// An answer that is never sent (the job is refused): fills `Done` for `Done::halt`.
fn placeholder() -> Appended {
    Appended {
        first_version: Version::NONE,
        first_position: GlobalPosition::START,
        count: 0,
        replayed: false,
    }
}

/// What the open transaction has written so far.
struct Tx {
    head: u64,
    chain: Hash,
    versions: HashMap<StreamId, Version>,
}

pub(crate) struct Writer<E> {
    conn: Connection,
    codec: Arc<Codec<E>>,
    projection: Option<Box<dyn Projection<E>>>,
    published: Arc<Published>,
    max_batch: usize,
    /// Committed stream versions.
    versions: HashMap<StreamId, Version>,
    /// Committed head and chain link.
    head: u64,
    chain: Hash,
    changes: Vec<RowChange>,
    /// Set when a transaction failed: whether its commit reached the disk cannot be known
    /// (a failed fsync may have lost pages), so nothing more is written until the store is
    /// reopened (fail-stop, as redb latches `PreviousIo`).
    halted: Option<String>,
}

/// Runs a job unless the transaction has failed already; a failure of the transaction is kept
/// in `fatal` (the job's own result is then replaced by it for every job of the batch).
fn guarded<T>(
    fatal: &mut Option<rusqlite::Error>,
    job: impl FnOnce() -> rusqlite::Result<Result<T, StoreError>>,
) -> Result<T, StoreError> {
    if fatal.is_some() {
        return Err(BackendError::Closed.into());
    }
    job().unwrap_or_else(|e| {
        *fatal = Some(e);
        Err(BackendError::Closed.into())
    })
}

fn blob(id: uuid::Uuid) -> [u8; 16] {
    *id.as_bytes()
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Whether `e` says the disk or file system is full (`SQLITE_FULL`, which `SQLite` also gives
/// for a short write).
fn is_full(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::DiskFull)
}

/// Whether `e` is a UNIQUE or PRIMARY KEY violation, told by `SQLite`'s extended result code.
fn violation(e: &rusqlite::Error) -> Option<i32> {
    let f = e.sqlite_error()?;
    (f.code == ErrorCode::ConstraintViolation
        && matches!(
            f.extended_code,
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        ))
    .then_some(f.extended_code)
}

/// Reads a stream's history inside the writer's transaction.
struct TxHistory<'a, E> {
    conn: &'a Connection,
    codec: &'a Codec<E>,
}

impl<E: DomainEvent> History<E> for TxHistory<'_, E> {
    fn load(&mut self, stream: StreamId, upto: Version) -> Result<Vec<E>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(HISTORY)
            .map_err(crate::error::sqlite)?;
        let mut rows = stmt
            .query(params![blob(stream.0.as_uuid()), i64_of(upto.0)])
            .map_err(crate::error::sqlite)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(crate::error::sqlite)? {
            out.push(self.codec.decode(row)?.payload);
        }
        Ok(out)
    }
}

/// How an insert failed.
enum InsertError {
    /// A UNIQUE / PRIMARY KEY violation at event `index`, with its extended code.
    Violation {
        index: usize,
        code: i32,
    },
    Fatal(rusqlite::Error),
}

impl<E: DomainEvent> Writer<E> {
    pub(crate) fn new(
        conn: Connection,
        codec: Arc<Codec<E>>,
        projection: Option<Box<dyn Projection<E>>>,
        published: Arc<Published>,
        max_batch: usize,
    ) -> rusqlite::Result<Self> {
        let (head, chain) = read_chain_head(&conn)?;
        published.head.send_replace(head);
        Ok(Self {
            conn,
            codec,
            projection,
            published,
            max_batch: max_batch.max(1),
            versions: HashMap::default(),
            head,
            chain,
            changes: Vec::new(),
            halted: None,
        })
    }

    /// Brings the projection's tables up to the log before the writer serves: events appended
    /// while the store was opened without this projection are projected now, in order; tables
    /// kept by another projection (or by none) are rebuilt from the first event.
    pub(crate) fn catch_up(&mut self) -> Result<u64, StoreError> {
        let Some(name) = self.projection.as_ref().map(|p| p.name()) else {
            return Ok(0);
        };
        let (recorded, mut through): (Option<String>, i64) = self
            .conn
            .query_row(PROJECTION_STATE, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(crate::error::sqlite)?;
        if recorded.as_deref() != Some(name) {
            self.conn
                .execute_batch(&format!("BEGIN IMMEDIATE;\n{PROJECTION_CLEAR}\nCOMMIT;"))
                .map_err(crate::error::sqlite)?;
            through = 0;
        }
        let mut projected = 0;
        loop {
            let page = {
                let mut stmt = self
                    .conn
                    .prepare_cached(CATCH_UP)
                    .map_err(crate::error::sqlite)?;
                let mut rows = stmt
                    .query(params![through, CATCH_UP_PAGE])
                    .map_err(crate::error::sqlite)?;
                let mut page = Vec::new();
                while let Some(row) = rows.next().map_err(crate::error::sqlite)? {
                    page.push(self.codec.decode(row)?);
                }
                page
            };
            let Some(last) = page.last().map(|e| e.position.0) else {
                break;
            };
            self.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(crate::error::sqlite)?;
            let applied = page
                .into_iter()
                .try_for_each(|e| self.project_stored(e))
                .and_then(|()| {
                    self.conn
                        .prepare_cached(PROJECTION_THROUGH)
                        .and_then(|mut s| s.execute(params![name, i64_of(last)]))
                        .map(drop)
                        .map_err(crate::error::sqlite)
                })
                .and_then(|()| {
                    self.conn
                        .execute_batch("COMMIT")
                        .map_err(crate::error::sqlite)
                });
            if let Err(e) = applied {
                let _ = self.conn.execute_batch("ROLLBACK");
                if let Some(p) = self.projection.as_mut() {
                    p.reset();
                }
                return Err(e);
            }
            projected += last - through.cast_unsigned();
            through = i64_of(last);
        }
        if recorded.as_deref() != Some(name) {
            // Record the name even when there was nothing to project.
            self.conn
                .prepare_cached(PROJECTION_THROUGH)
                .and_then(|mut s| s.execute(params![name, through]))
                .map_err(crate::error::sqlite)?;
        }
        if projected > 0 {
            tracing::info!(
                projection = name,
                events = projected,
                "projection caught up with the log"
            );
        }
        let released = self
            .conn
            .execute(OUTBOX_RELEASE, [])
            .map_err(crate::error::sqlite)?;
        if released > 0 {
            tracing::info!(
                messages = released,
                "outbox claims of a process that is gone released"
            );
        }
        Ok(projected)
    }

    /// Projects one stored event (catching up).
    fn project_stored(&mut self, e: acm_core::Envelope<E>) -> Result<(), StoreError> {
        let event = NewEvent {
            event_id: e.event_id,
            correlation_id: e.correlation_id,
            causation_id: e.causation_id,
            actor: e.actor,
            recorded_at: e.recorded_at,
            payload: e.payload,
        };
        self.project_one(Appending {
            stream: e.stream_id,
            version: e.version,
            position: e.position,
            event: &event,
        })
    }

    /// Runs the projection (if any) over one event and applies its row changes.
    fn project_one(&mut self, appending: Appending<'_, E>) -> Result<(), StoreError> {
        let Self {
            conn,
            codec,
            projection,
            changes,
            ..
        } = self;
        let Some(projection) = projection.as_mut() else {
            return Ok(());
        };
        let request_id = appending.stream.0;
        changes.clear();
        projection.project(&mut TxHistory { conn, codec }, appending, changes)?;
        for change in changes.iter() {
            apply_change(conn, request_id, change)?;
        }
        Ok(())
    }

    /// Serves until every sender is dropped or a close is asked for, then shuts the store's
    /// connections down: the readers' first, so that the writer's is the last connection to
    /// the file and its close can fold the WAL into the database file and delete it (a
    /// connection that closes while another one of this process holds the file keeps the WAL).
    /// `lock` is released once every connection is closed.
    pub(crate) fn run(mut self, jobs: &mpsc::Receiver<Msg<E>>, readers: &Readers, lock: StoreLock) {
        let close = self.serve(jobs);
        readers.stop();
        let published = self.published.clone();
        let result = self.close();
        drop(lock);
        published.closed.store(true, Ordering::Release);
        // Wakes every subscription, which then sees `closed`.
        published.head.send_modify(|_| {});
        // What was queued after the close is not run: a later close is told how it went, the
        // other jobs' callers get `Closed` when their reply is dropped.
        while let Ok(msg) = jobs.try_recv() {
            if let Msg::Close(reply) = msg {
                let outcome = result
                    .as_ref()
                    .map_err(|_| StoreError::from(BackendError::Closed));
                drop(reply.send(outcome.copied()));
            }
        }
        match close {
            Some(reply) => drop(reply.send(result)),
            None => {
                if let Err(error) = result {
                    tracing::warn!(%error, "closing the acm store");
                }
            }
        }
        tracing::debug!("acm store writer stopped");
    }

    /// Commits batches until every sender is dropped (`None`) or a close is asked for (its
    /// reply, once every job queued before it is committed).
    fn serve(&mut self, jobs: &mpsc::Receiver<Msg<E>>) -> Option<CloseReply> {
        fn take<E>(
            msg: Msg<E>,
            batch: &mut Vec<Job<E>>,
            permits: &mut Vec<OwnedSemaphorePermit>,
        ) -> Option<CloseReply> {
            match msg {
                Msg::Job(job, permit) => {
                    batch.push(job);
                    permits.push(permit);
                    None
                }
                Msg::Close(reply) => Some(reply),
            }
        }
        let mut batch = Vec::with_capacity(self.max_batch);
        let mut permits = Vec::with_capacity(self.max_batch);
        let mut last = 1;
        loop {
            let mut close = take(jobs.recv().ok()?, &mut batch, &mut permits);
            while close.is_none() && batch.len() < self.max_batch {
                match jobs.try_recv() {
                    Ok(msg) => close = take(msg, &mut batch, &mut permits),
                    Err(_) => break,
                }
            }
            // The callers the last commit answered are on their way back with their next
            // appends: without a moment's wait each transaction would hold about half of them
            // (measured: 4 of 8 concurrent appenders per commit, 8 with the wait).
            let want = last.min(self.max_batch);
            if close.is_none() && batch.len() < want {
                let deadline = Instant::now() + GATHER;
                while close.is_none() && batch.len() < want {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match jobs.recv_timeout(left) {
                        Ok(msg) => close = take(msg, &mut batch, &mut permits),
                        Err(_) => break,
                    }
                }
            }
            if !batch.is_empty() {
                last = batch.len();
                // The metrics facade records nothing unless the application installed one.
                #[allow(clippy::cast_precision_loss)]
                metrics::histogram!("acm_store_commit_batch_size").record(batch.len() as f64);
                self.commit(&mut batch);
                // Answered: their callers' places in the queue are free again.
                permits.clear();
            }
            if close.is_some() {
                return close;
            }
        }
    }

    /// Folds the WAL into the database file (`TRUNCATE`: the `-wal` is left empty even if the
    /// close cannot delete it) and closes the connection, which deletes the `-wal` and `-shm`
    /// when no other connection has the file open.
    fn close(self) -> Result<(), StoreError> {
        let _ = self.conn.busy_timeout(CLOSE_WAIT);
        let checkpoint = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            });
        let closed = self.conn.close().map_err(|(_, e)| crate::error::sqlite(e));
        match checkpoint {
            Err(e) => Err(crate::error::sqlite(e)),
            Ok(busy) if busy != 0 => Err(BackendError::CheckpointBlocked.into()),
            Ok(_) => closed,
        }
    }

    fn commit(&mut self, batch: &mut Vec<Job<E>>) {
        if let Some(reason) = &self.halted {
            for job in batch.drain(..) {
                match job {
                    Job::Append(a) => Done::Append(a.reply, Ok(placeholder())).halt(reason),
                    Job::Claim { reply, .. } => Done::Claim(reply, Ok(Vec::new())).halt(reason),
                    Job::Failed { reply, .. } => Done::Failed(reply, Ok(None)).halt(reason),
                }
            }
            return;
        }
        let mut tx = Tx {
            head: self.head,
            chain: self.chain,
            versions: HashMap::default(),
        };
        let mut done = Vec::with_capacity(batch.len());
        let mut fatal = self.conn.execute_batch("BEGIN IMMEDIATE").err();
        for job in batch.drain(..) {
            match job {
                Job::Append(a) => {
                    let r = guarded(&mut fatal, || self.append(&a, &mut tx));
                    done.push(Done::Append(a.reply, r));
                }
                Job::Claim {
                    now,
                    until,
                    limit,
                    reply,
                } => {
                    let r = guarded(&mut fatal, || self.claim(now, until, limit));
                    done.push(Done::Claim(reply, r));
                }
                Job::Failed {
                    message_id,
                    retry_at,
                    refused,
                    reply,
                } => {
                    let r = guarded(&mut fatal, || {
                        self.failed(message_id, retry_at, refused.as_deref())
                    });
                    done.push(Done::Failed(reply, r));
                }
            }
        }
        if fatal.is_none() && tx.head != self.head {
            fatal = self
                .conn
                .prepare_cached(CHAIN_HEAD)
                .and_then(|mut s| s.execute(params![i64_of(tx.head), &tx.chain[..]]))
                .err();
        }
        if let (None, Some(p)) = (&fatal, &self.projection)
            && tx.head != self.head
        {
            fatal = self
                .conn
                .prepare_cached(PROJECTION_THROUGH)
                .and_then(|mut s| s.execute(params![p.name(), i64_of(tx.head)]))
                .err();
        }
        if fatal.is_none()
            && self
                .published
                .inject_commit_failure
                .swap(false, Ordering::AcqRel)
        {
            fatal = Some(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR_FSYNC),
                Some("injected commit failure".to_owned()),
            ));
        }
        if fatal.is_none() {
            fatal = self.conn.execute_batch("COMMIT").err();
        }
        if let Some(error) = fatal {
            self.abort(error, done);
            return;
        }
        self.published.transactions.fetch_add(1, Ordering::Relaxed);
        self.published
            .jobs
            .fetch_add(done.len() as u64, Ordering::Relaxed);
        self.head = tx.head;
        self.chain = tx.chain;
        if self.versions.len() + tx.versions.len() > MAX_CACHED_VERSIONS {
            self.versions.clear();
        }
        self.versions.extend(tx.versions);
        self.publish();
        for d in done {
            d.send();
        }
    }

    /// Rolls back a failed transaction and answers its jobs. A full disk refuses the batch and
    /// the writer goes on; any other failure halts it.
    fn abort(&mut self, error: rusqlite::Error, done: Vec<Done>) {
        // SQLite may have rolled back already (it does on SQLITE_FULL), so the ROLLBACK's own
        // error says nothing; whether a transaction is still open does.
        let _ = self.conn.execute_batch("ROLLBACK");
        let rolled_back = self.conn.is_autocommit();
        let recovered = self.recover();
        if rolled_back && recovered && is_full(&error) {
            // No room: the write was refused before anything reached the log (a commit is
            // durable only once its last frame is written, and that write is what failed), so
            // nothing acknowledged is in doubt and the next batch may find space again.
            tracing::error!(%error, jobs = done.len(), "acm store is full; transaction rolled back, nothing written");
            let reason = error.to_string();
            for d in done {
                d.full(&reason);
            }
            return;
        }
        tracing::error!(%error, jobs = done.len(), "acm store transaction failed; rolled back; halting");
        self.halted = Some(format!("transaction failed: {error}"));
        let error = Arc::new(error);
        for d in done {
            d.fail(&error);
        }
    }

    /// Tells readers and subscribers the committed head, if it moved.
    fn publish(&self) {
        let head = self.head;
        self.published.head.send_if_modified(|h| {
            let moved = *h != head;
            *h = head;
            moved
        });
    }

    /// After a failed transaction: forget every cache and re-read the committed head; whether
    /// the head could be read.
    fn recover(&mut self) -> bool {
        self.versions.clear();
        if let Some(p) = self.projection.as_mut() {
            p.reset();
        }
        match read_chain_head(&self.conn) {
            Ok((head, chain)) => {
                self.head = head;
                self.chain = chain;
                // A commit reported failed may have landed all the same.
                self.publish();
                true
            }
            Err(error) => {
                tracing::error!(%error, "could not re-read the chain head");
                false
            }
        }
    }

    fn version(&mut self, stream: StreamId, tx: &Tx) -> rusqlite::Result<Version> {
        if let Some(v) = tx
            .versions
            .get(&stream)
            .or_else(|| self.versions.get(&stream))
        {
            return Ok(*v);
        }
        let v: i64 = self
            .conn
            .prepare_cached("SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?1")?
            .query_row([blob(stream.0.as_uuid())], |r| r.get(0))?;
        let v = Version(v.cast_unsigned());
        // Committed (the stream is untouched in this transaction), so safe to keep.
        self.versions.insert(stream, v);
        Ok(v)
    }

    fn position_of(&self, id: EventId) -> rusqlite::Result<Option<u64>> {
        Ok(self
            .conn
            .prepare_cached("SELECT position FROM events WHERE event_id = ?1")?
            .query_row([blob(id.as_uuid())], |r| r.get::<_, i64>(0))
            .optional()?
            .map(i64::cast_unsigned))
    }

    /// The answer to a re-append whose first event is stored at `position`: the original
    /// positions when the whole batch is stored there unchanged, else an idempotency conflict.
    fn replayed(&self, position: u64, a: &AppendJob<E>) -> Result<Appended, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(REPLAYED)
            .map_err(crate::error::sqlite)?;
        let mut rows = stmt
            .query(params![i64_of(position), i64_of(a.events.len() as u64)])
            .map_err(crate::error::sqlite)?;
        let mut stored = Vec::with_capacity(a.events.len());
        while let Some(row) = rows.next().map_err(crate::error::sqlite)? {
            stored.push(self.codec.decode(row)?);
        }
        let first_differing = a.events.iter().enumerate().find(|(i, e)| {
            stored.get(*i).is_none_or(|s| {
                !s.same_as(a.stream, e) || (*i > 0 && s.version != stored[i - 1].version.next())
            })
        });
        if let Some((_, e)) = first_differing {
            return Err(StoreError::IdempotencyConflict {
                event_id: e.event_id,
            });
        }
        Ok(Appended {
            first_version: stored[0].version,
            first_position: stored[0].position,
            count: a.events.len() as u64,
            replayed: true,
        })
    }

    fn append(
        &mut self,
        a: &AppendJob<E>,
        tx: &mut Tx,
    ) -> rusqlite::Result<Result<Appended, StoreError>> {
        let actual = self.version(a.stream, tx)?;
        if !a.expected.admits(actual) {
            // A re-append of stored events is answered whatever it expects.
            if let Some(p) = self.position_of(a.events[0].event_id)? {
                return Ok(self.replayed(p, a));
            }
            return Ok(Err(StoreError::Conflict {
                stream: a.stream,
                expected: a.expected,
                actual,
            }));
        }
        self.conn.prepare_cached("SAVEPOINT append")?.execute([])?;
        let inserted = self.insert(a, actual, tx.head, tx.chain);
        let chain = match inserted {
            Ok(chain) => chain,
            Err(InsertError::Fatal(e)) => return Err(e),
            Err(InsertError::Violation { index, code }) => {
                self.rollback_savepoint()?;
                if code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY {
                    // The position was taken: this writer's head is out of step with the file.
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(code),
                        Some("global position already taken".to_owned()),
                    ));
                }
                let id = a.events[index].event_id;
                return Ok(match self.position_of(id)? {
                    Some(p) if index == 0 => self.replayed(p, a),
                    Some(_) => Err(StoreError::IdempotencyConflict { event_id: id }),
                    None => {
                        // The version was taken: the cached version was stale.
                        self.versions.remove(&a.stream);
                        let actual = self.version(a.stream, tx)?;
                        Err(StoreError::Conflict {
                            stream: a.stream,
                            expected: a.expected,
                            actual,
                        })
                    }
                });
            }
        };
        let first_position = tx.head + 1;
        if let Err(e) = self.project(a, actual, first_position) {
            self.rollback_savepoint()?;
            if let Some(p) = self.projection.as_mut() {
                p.forget(a.stream);
            }
            return Ok(Err(e));
        }
        self.conn.prepare_cached("RELEASE append")?.execute([])?;
        let count = a.events.len() as u64;
        tx.head += count;
        tx.chain = chain;
        tx.versions.insert(a.stream, Version(actual.0 + count));
        Ok(Ok(Appended {
            first_version: actual.next(),
            first_position: GlobalPosition(first_position),
            count,
            replayed: false,
        }))
    }

    fn rollback_savepoint(&self) -> rusqlite::Result<()> {
        self.conn
            .prepare_cached("ROLLBACK TO append")?
            .execute([])?;
        self.conn.prepare_cached("RELEASE append")?.execute([])?;
        Ok(())
    }

    /// Inserts the batch's rows after `head`, chaining from `chain`; returns the last link.
    fn insert(
        &self,
        a: &AppendJob<E>,
        actual: Version,
        head: u64,
        mut chain: Hash,
    ) -> Result<Hash, InsertError> {
        let mut stmt = self
            .conn
            .prepare_cached(INSERT_EVENT)
            .map_err(InsertError::Fatal)?;
        let stream_id = blob(a.stream.0.as_uuid());
        for (i, (e, payload)) in a.events.iter().zip(&a.payloads).enumerate() {
            let position = head + 1 + i as u64;
            let version = actual.0 + 1 + i as u64;
            let event_id = blob(e.event_id.as_uuid());
            let correlation_id = blob(e.correlation_id.as_uuid());
            let causation_id = e.causation_id.map(|c| blob(c.0));
            let (actor_kind, actor_id) = actor_columns(&e.actor);
            // Checked by the caller before the job was queued.
            let recorded_at = e.recorded_at.timestamp_nanos_opt().unwrap_or_default();
            let event_type = e.payload.event_type();
            let schema_version = e.payload.schema_version();
            chain = chain::link(
                &chain,
                &Fields {
                    position,
                    event_id: &event_id,
                    stream_id: &stream_id,
                    version,
                    recorded_at,
                    correlation_id: &correlation_id,
                    causation_id: causation_id.as_ref().map(|c| &c[..]),
                    actor_kind,
                    actor_id,
                    event_type,
                    schema_version,
                    payload,
                },
            );
            stmt.execute(params![
                i64_of(position),
                &event_id[..],
                &stream_id[..],
                i64_of(version),
                recorded_at,
                &correlation_id[..],
                causation_id.as_ref().map(|c| &c[..]),
                actor_kind,
                actor_id,
                event_type,
                schema_version,
                payload,
                &chain[..],
            ])
            .map_err(|e| match violation(&e) {
                Some(code) => InsertError::Violation { index: i, code },
                None => InsertError::Fatal(e),
            })?;
        }
        Ok(chain)
    }

    /// Runs the projection over the batch and applies its row changes.
    fn project(
        &mut self,
        a: &AppendJob<E>,
        actual: Version,
        first_position: u64,
    ) -> Result<(), StoreError> {
        for (i, event) in a.events.iter().enumerate() {
            self.project_one(Appending {
                stream: a.stream,
                version: Version(actual.0 + 1 + i as u64),
                position: GlobalPosition(first_position + i as u64),
                event,
            })?;
        }
        Ok(())
    }

    fn claim(
        &self,
        now: i64,
        until: i64,
        limit: usize,
    ) -> rusqlite::Result<Result<Vec<OwedMessage>, StoreError>> {
        let mut stmt = self.conn.prepare_cached(OUTBOX_CLAIM)?;
        let mut rows = stmt.query(params![now, until, i64_of(limit as u64)])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            // A row that does not decode is set aside (it stays claimed for the lease and is
            // logged each time), so it cannot hold up the messages behind it.
            if let Some(r) = owed_message(row) {
                out.push(r);
            } else {
                tracing::error!("an outbox row does not decode; skipped");
            }
        }
        // RETURNING yields rows in no promised order.
        out.sort_unstable_by_key(|(queued_at, m)| (*queued_at, m.message_id));
        Ok(Ok(out.into_iter().map(|(_, m)| m).collect()))
    }

    fn failed(
        &self,
        message_id: MessageId,
        retry_at: i64,
        refused: Option<&str>,
    ) -> rusqlite::Result<Result<Option<u32>, StoreError>> {
        let attempts: Option<i64> = self
            .conn
            .prepare_cached(OUTBOX_FAILED)?
            .query_row(
                params![&blob(message_id.as_uuid())[..], retry_at, refused],
                |r| r.get(0),
            )
            .optional()?;
        Ok(Ok(attempts.map(|a| u32::try_from(a).unwrap_or(u32::MAX))))
    }
}

fn owed_message(row: &rusqlite::Row<'_>) -> Option<(i64, OwedMessage)> {
    let id = |i| -> Option<uuid::Uuid> {
        uuid::Uuid::from_slice(row.get_ref(i).ok()?.as_blob().ok()?).ok()
    };
    Some((
        row.get::<_, i64>(4).ok()?,
        OwedMessage {
            message_id: MessageId::from_uuid(id(0)?).ok()?,
            request_id: RequestId::from_uuid(id(1)?).ok()?,
            partner: row.get_ref(2).ok()?.as_str().ok()?.parse().ok()?,
            attempts: u32::try_from(row.get::<_, i64>(3).ok()?).ok()?,
        },
    ))
}

fn timer_kind(kind: TimerKind) -> &'static str {
    match kind {
        TimerKind::Expiry => "expiry",
        TimerKind::SendDeadline => "send_deadline",
    }
}

/// Inserts a claimed key's row with `insert`; when the key is held already (told by the
/// primary key's extended result code), the holder is read with `holder`: this request's own
/// row is updated with `update`, another request's is [`StoreError::Taken`].
fn claim_key(
    conn: &Connection,
    request_id: RequestId,
    sql: [&str; 3],
    key: &[&dyn rusqlite::ToSql],
    digest: &[u8],
    claim: impl FnOnce() -> Claim,
) -> Result<(), StoreError> {
    let [insert, holder, update] = sql;
    let id = blob(request_id.as_uuid());
    let mut values: Vec<&dyn rusqlite::ToSql> = key.to_vec();
    values.push(&id);
    values.push(&digest);
    let inserted = conn
        .prepare_cached(insert)
        .and_then(|mut s| s.execute(values.as_slice()));
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if violation(&e) == Some(rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => {
            let held: Vec<u8> = conn
                .prepare_cached(holder)
                .and_then(|mut s| s.query_row(key, |r| r.get(0)))
                .map_err(crate::error::sqlite)?;
            if held.as_slice() != id.as_slice() {
                return Err(StoreError::Taken(claim()));
            }
            conn.prepare_cached(update)
                .and_then(|mut s| s.execute(values.as_slice()))
                .map(drop)
                .map_err(crate::error::sqlite)
        }
        Err(e) => Err(crate::error::sqlite(e)),
    }
}

fn apply_change(
    conn: &Connection,
    request_id: RequestId,
    change: &RowChange,
) -> Result<(), StoreError> {
    let id = blob(request_id.as_uuid());
    let run = |sql: &str, values: &[&dyn rusqlite::ToSql]| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute(values))
            .map(drop)
            .map_err(crate::error::sqlite)
    };
    match change {
        RowChange::PendingAdd(user) => run(PENDING_ADD, &[&user.as_str(), &id]),
        RowChange::PendingRemove(user) => run(PENDING_REMOVE, &[&user.as_str(), &id]),
        RowChange::OutboxQueue { queued, at } => run(
            OUTBOX_QUEUE,
            &[
                &blob(queued.message_id.as_uuid()),
                &id,
                &queued.partner.as_str(),
                &nanos_saturating(*at),
            ],
        ),
        RowChange::OutboxSettle(message_id) => run(OUTBOX_SETTLE, &[&blob(message_id.as_uuid())]),
        RowChange::Hook(true) => run(HOOK_SET, &[&id]),
        RowChange::Hook(false) => run(HOOK_CLEAR, &[&id]),
        RowChange::Timer(Some(timer)) => run(
            TIMER_SET,
            &[&id, &timer_kind(timer.kind), &nanos_saturating(timer.since)],
        ),
        RowChange::Timer(None) => run(TIMER_CLEAR, &[&id]),
        RowChange::Inbox(entry) => claim_key(
            conn,
            request_id,
            [INBOX_INSERT, INBOX_HOLDER, INBOX_UPDATE],
            &[&blob(entry.message_id.as_uuid())],
            &entry.digest.0,
            || Claim::Message(entry.message_id),
        ),
        RowChange::Submission(entry) => claim_key(
            conn,
            request_id,
            [SUBMISSION_INSERT, SUBMISSION_HOLDER, SUBMISSION_UPDATE],
            &[&entry.requester.as_str(), &entry.key.as_str()],
            &entry.digest.0,
            || Claim::Submission {
                requester: entry.requester.clone(),
                key: entry.key.clone(),
            },
        ),
    }
}

/// The recorded chain head, `None` when its row is gone (only an altered store lacks it).
pub(crate) fn read_recorded_head(conn: &Connection) -> rusqlite::Result<Option<(u64, Hash)>> {
    use rusqlite::OptionalExtension;
    read_chain_head(conn).optional()
}

pub(crate) fn read_chain_head(conn: &Connection) -> rusqlite::Result<(u64, Hash)> {
    conn.query_row(
        "SELECT position, hash FROM chain_head WHERE id = 1",
        [],
        |r| {
            let position: i64 = r.get(0)?;
            let hash: Vec<u8> = r.get(1)?;
            let mut link = chain::GENESIS;
            if hash.len() == link.len() {
                link.copy_from_slice(&hash);
            }
            Ok((position.cast_unsigned(), link))
        },
    )
}
