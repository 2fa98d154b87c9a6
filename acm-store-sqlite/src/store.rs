//! The store handle: the event store contract on top of the writer and the readers, plus the
//! catch-up subscription, chain verification, and the projection queries.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

use acm_core::Event;
use acm_core::{
    Appended, DomainEvent, Envelope, EventStore, EventStream, ExpectedVersion, NewEvent, StoreError,
};
use acm_core::{GlobalPosition, StreamId, Version};
use async_trait::async_trait;
use foldhash::HashMap;
use futures_util::StreamExt;
use rusqlite::{Connection, params};
use tokio::sync::{Semaphore, oneshot, watch};

use crate::acm::SqliteAcmStore;
use crate::chain::{self, Break, BreakKind, ChainReport, Fields};
use crate::codec::{Codec, encode, nanos};
use crate::error::{BackendError, OpenError, sqlite};
use crate::projection::{AcmProjection, Projection};
use crate::reader::Readers;
use crate::upcast::Upcasters;
use crate::writer::{AppendJob, Job, Msg, Published, Writer};

const READ_ALL: &str = include_str!("store/read_all.sql");
const READ_STREAM: &str = include_str!("store/read_stream.sql");
const VERIFY: &str = include_str!("store/verify.sql");

/// Rows a whole-log read fetches per reader job.
const PAGE_ALL: usize = 2048;
/// Pages of the log asked for ahead of the consumer (one per reader thread by default).
const READ_AHEAD: usize = 2;
/// Rows a stream read fetches per reader job (streams are short).
const PAGE_STREAM: usize = 256;

/// Group commit at work: jobs (appends and outbox updates) per committed transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed.
    pub transactions: u64,
    /// Jobs those transactions held.
    pub jobs: u64,
}

/// How a store is opened.
pub struct SqliteOptions<E> {
    /// Reader threads (each with its own connection). Default 2.
    pub readers: usize,
    /// Most jobs committed in one transaction. Default 1024.
    pub max_batch: usize,
    /// Transforms of old payloads, applied on read.
    pub upcasters: Upcasters,
    /// Row changes kept in the events' transactions.
    pub projection: Option<Box<dyn Projection<E>>>,
    /// Most jobs queued for the writer, and most queued for the readers, at a time; a caller
    /// beyond them waits (asynchronously) for room. Default 4096.
    pub queue: usize,
    /// Most request states the ACM views' projection ([`AcmProjection`]) keeps on the writer
    /// thread, for a store opened with the views ([`SqliteAcmStore::open_with`],
    /// [`SqliteOptions::acm`]). Settled requests are never kept; beyond this many open ones
    /// the cache starts over, and an event of a request not kept reads its stream first.
    /// Default 10,000 ([`AcmProjection::DEFAULT_CAPACITY`]): a server on a store of any size
    /// keeps the projection's memory to some 10–20 MB. Ignored by other projections.
    pub projection_cache: usize,
}

impl<E> Default for SqliteOptions<E> {
    fn default() -> Self {
        Self {
            readers: 2,
            max_batch: 1024,
            upcasters: Upcasters::new(),
            projection: None,
            queue: 4096,
            projection_cache: AcmProjection::DEFAULT_CAPACITY,
        }
    }
}

impl<E> fmt::Debug for SqliteOptions<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteOptions")
            .field("readers", &self.readers)
            .field("max_batch", &self.max_batch)
            .field("upcasters", &self.upcasters)
            .field("projection", &self.projection.is_some())
            .field("queue", &self.queue)
            .field("projection_cache", &self.projection_cache)
            .finish()
    }
}

impl SqliteOptions<Event> {
    /// The options of an ACM server's store: the views of `acm_core::views`
    /// ([`SqliteAcmStore::open_with`] sets the projection whatever these say).
    pub fn acm() -> Self {
        let mut options = Self::default();
        options.projection = Some(Box::new(AcmProjection::with_capacity(
            options.projection_cache,
        )));
        options
    }
}

pub(crate) struct Inner<E> {
    path: PathBuf,
    writer: Option<mpsc::Sender<Msg<E>>>,
    // The writer thread (detached: a drop never joins it) holds the one-writer lock until its
    // connection is closed.
    pub(crate) readers: Arc<Readers>,
    /// Places in the writer's queue (jobs queued or being committed).
    writer_queue: Arc<Semaphore>,
    codec: Arc<Codec<E>>,
    published: Arc<Published>,
    projected: bool,
}

impl<E> Drop for Inner<E> {
    fn drop(&mut self) {
        // The writer commits what is queued, sees the channel closed, and shuts the store down
        // as `close` does; a failure there is only logged. A drop never waits for that (a
        // commit, a checkpoint, a file close): the threads finish on their own, and the path
        // stays locked until they have. Whoever opens the path again closes first (`close`
        // answers once the lock is released).
        self.writer.take();
        // Already asked by the writer, unless its thread panicked.
        self.readers.signal_stop();
    }
}

/// A durable event store in one `SQLite` file: WAL, `synchronous=FULL`, one group-commit
/// writer thread, reader threads, a hash chain over the log. Cheap to clone (a handle).
///
/// ```
/// use acm_core::GlobalPosition;
/// use acm_core::EventStore;
/// use acm_core::Event;
/// use acm_store_sqlite::SqliteStore;
/// let dir = tempfile::tempdir().unwrap();
/// let store = SqliteStore::<Event>::open_acm(dir.path().join("acm.db")).unwrap();
/// let head = futures_executor::block_on(store.head()).unwrap();
/// assert_eq!(head, GlobalPosition::START);
/// ```
pub struct SqliteStore<E> {
    pub(crate) inner: Arc<Inner<E>>,
}

impl<E> Clone for SqliteStore<E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<E> fmt::Debug for SqliteStore<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("head", &*self.inner.published.head.borrow())
            .finish_non_exhaustive()
    }
}

impl SqliteStore<Event> {
    /// Opens (or creates) an ACM server's store, with its views: [`SqliteAcmStore::open`].
    pub fn open_acm(path: impl AsRef<Path>) -> Result<SqliteAcmStore, OpenError> {
        SqliteAcmStore::open(path)
    }
}

fn spawn_error(path: &Path) -> impl Fn(std::io::Error) -> OpenError + '_ {
    move |source| OpenError::Io {
        path: path.to_owned(),
        source,
    }
}

impl<E: DomainEvent> SqliteStore<E> {
    /// Opens (or creates) a store with default options and no projection. Blocks on file I/O
    /// (see [`SqliteStore::open_with`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens (or creates) a store. A file that is not an acm store, or of a newer schema, is
    /// refused with a typed error and left untouched.
    ///
    /// Opening blocks: it opens, locks, migrates and possibly catches the projection up on
    /// the file (file I/O and fsyncs) before it returns. An async server should call it from
    /// `spawn_blocking` (or before its runtime starts).
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions<E>) -> Result<Self, OpenError> {
        let path = crate::open::absolute(path.as_ref());
        crate::open::check_path(&path)?;
        let (conn, lock) = crate::open::open_writer(&path)?;
        let as_open_error = |source| OpenError::Sqlite {
            path: path.clone(),
            source,
        };
        let codec = Arc::new(Codec::new(options.upcasters));
        let projected = options.projection.is_some();
        let published = Arc::new(Published {
            head: watch::channel(0).0,
            transactions: AtomicU64::new(0),
            jobs: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            inject_commit_failure: AtomicBool::new(false),
        });
        let mut writer = Writer::new(
            conn,
            codec.clone(),
            options.projection,
            published.clone(),
            options.max_batch,
        )
        .map_err(as_open_error)?;
        writer.catch_up().map_err(|source| OpenError::Unreadable {
            path: path.clone(),
            source,
        })?;
        let readers = Arc::new(
            Readers::start(&path, options.readers, options.queue.max(1)).map_err(as_open_error)?,
        );
        let (tx, rx) = mpsc::channel();
        let stopping = readers.clone();
        std::thread::Builder::new()
            .name("acm-sqlite-writer".to_owned())
            .spawn(move || writer.run(&rx, &stopping, lock))
            .map_err(spawn_error(&path))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                writer: Some(tx),
                writer_queue: Arc::new(Semaphore::new(options.queue.max(1))),
                readers,
                codec,
                published,
                projected,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether the store keeps a projection (the ACM views).
    pub fn is_projected(&self) -> bool {
        self.inner.projected
    }

    /// Test-only: makes the writer's next commit fail as a failed `COMMIT` (an fsync error)
    /// would: that transaction is rolled back and its jobs fail with
    /// [`BackendError::Sqlite`], and the store halts (every later write is
    /// [`StoreError::Halted`] until it is reopened).
    #[doc(hidden)]
    pub fn inject_commit_failure(&self) {
        self.inner
            .published
            .inject_commit_failure
            .store(true, Ordering::Release);
    }

    /// What the writer has committed since the store was opened.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            transactions: self.inner.published.transactions.load(Ordering::Relaxed),
            jobs: self.inner.published.jobs.load(Ordering::Relaxed),
        }
    }

    /// Queues `job` for the writer once the writer's bounded queue has room: a caller waits
    /// (asynchronously, never blocking its executor's thread) while `queue` jobs are queued
    /// or being committed.
    pub(crate) async fn send(&self, job: Job<E>) -> Result<(), StoreError> {
        let permit = self
            .inner
            .writer_queue
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::from(BackendError::Closed))?;
        self.inner
            .writer
            .as_ref()
            .and_then(|w| w.send(Msg::Job(job, permit)).ok())
            .ok_or_else(|| BackendError::Closed.into())
    }

    /// Closes the store, for every handle of it: the writer commits every job queued before
    /// the close (each caller gets its result), the readers finish their queued reads and close
    /// their connections, then the writer folds the WAL into the database file
    /// (`PRAGMA wal_checkpoint(TRUNCATE)`) and closes its connection, which deletes the `-wal`
    /// and `-shm` files, and the one-writer lock is released: the `.db` file alone then holds
    /// the whole store, and the path can be opened again.
    ///
    /// Afterwards every operation of every handle (clones included) fails with
    /// [`BackendError::Closed`], and subscriptions end. Closing a store already closed is
    /// `Ok`. Dropping the last handle does the same, without telling how it went, and without
    /// waiting: the writer thread finishes on its own (the path may stay locked a moment).
    ///
    /// # Errors
    ///
    /// [`BackendError::CheckpointBlocked`] when a reader of another process (an auditor, a
    /// backup) kept reading from the `-wal` for longer than two seconds: every commit is durable
    /// all the same, part of it in the `-wal`, which the next open folds in.
    /// [`BackendError::Sqlite`] when the checkpoint or the close failed.
    pub async fn close(self) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        let sent = self
            .inner
            .writer
            .as_ref()
            .is_some_and(|w| w.send(Msg::Close(reply)).is_ok());
        let result = if sent {
            rx.await.unwrap_or_else(|_| self.closed_already())
        } else {
            self.closed_already()
        };
        // The writer answers once its connection is closed and the lock released: the path
        // can be opened again at once.
        drop(self);
        result
    }

    fn closed_already(&self) -> Result<(), StoreError> {
        if self.inner.published.closed.load(Ordering::Acquire) {
            Ok(())
        } else {
            // The writer thread ended without shutting down: it panicked.
            Err(BackendError::Closed.into())
        }
    }

    /// Queues the read of a page of the log now; the future yields it.
    fn read_page_all(
        &self,
        after: GlobalPosition,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Envelope<E>>, StoreError>> + Send + 'static {
        let codec = self.inner.codec.clone();
        self.inner.readers.submit(move |conn| {
            query_envelopes(
                conn,
                &codec,
                READ_ALL,
                params![to_i64(after.0), to_i64(limit as u64)],
            )
        })
    }

    /// Every event after `after`, then each event as it commits: a catch-up subscription.
    /// The stream ends only when the store is closed ([`SqliteStore::close`]); it holds a
    /// handle of the store, so the store is not dropped while it lives.
    pub fn subscribe(&self, after: GlobalPosition) -> EventStream<'static, E> {
        struct State<E> {
            store: SqliteStore<E>,
            after: GlobalPosition,
            changed: watch::Receiver<u64>,
            failed: bool,
        }
        let state = State {
            store: self.clone(),
            after,
            changed: self.inner.published.head.subscribe(),
            failed: false,
        };
        let pages = futures_util::stream::unfold(state, |mut s| async move {
            if s.failed {
                return None;
            }
            loop {
                // Seen before reading, so a commit after the read still wakes us.
                let head = *s.changed.borrow_and_update();
                // Checked after taking the head: the close sets `closed`, then wakes us.
                if s.store.inner.published.closed.load(Ordering::Acquire) {
                    return None;
                }
                if head > s.after.0 {
                    match s.store.read_page_all(s.after, PAGE_ALL).await {
                        Ok(page) if !page.is_empty() => {
                            s.after = page.last().map_or(s.after, |e| e.position);
                            return Some((futures_util::stream::iter(ok_all(page)), s));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            s.failed = true;
                            return Some((futures_util::stream::iter(vec![Err(e)]), s));
                        }
                    }
                }
                if s.changed.changed().await.is_err() {
                    return None;
                }
            }
        });
        Box::pin(pages.flatten())
    }

    /// Recomputes the hash chain over the whole log (one read transaction) and reports the
    /// first position that does not verify.
    pub async fn verify(&self) -> Result<ChainReport, StoreError> {
        self.inner.readers.submit(verify).await
    }
}

/// A stream of pages fetched by `fetch(after)`, each page of at most `page` envelopes, until a
/// short page or an error (which ends the stream). `fetch` must start its work when called:
/// the next page is asked for as soon as a full page arrives, so a reader thread reads it while
/// the consumer works through the current one.
fn paged<'a, E, K, F, Fut>(
    after: K,
    page: usize,
    key: fn(&Envelope<E>) -> K,
    fetch: F,
) -> EventStream<'a, E>
where
    E: DomainEvent,
    K: Copy + Send + 'a,
    F: Fn(K) -> Fut + Send + 'a,
    Fut: Future<Output = Result<Vec<Envelope<E>>, StoreError>> + Send + 'a,
{
    let first = fetch(after);
    let pages =
        futures_util::stream::unfold((fetch, Some(first)), move |(fetch, pending)| async move {
            let envelopes = match pending?.await {
                Ok(envelopes) => envelopes,
                Err(e) => return Some((futures_util::stream::iter(vec![Err(e)]), (fetch, None))),
            };
            let next = (envelopes.len() == page)
                .then(|| envelopes.last().map(|e| fetch(key(e))))
                .flatten();
            (!envelopes.is_empty())
                .then(|| (futures_util::stream::iter(ok_all(envelopes)), (fetch, next)))
        });
    Box::pin(pages.flatten())
}

/// `envelopes` if they hold positions `after + 1`, `after + 2`, … without a gap.
fn contiguous<E>(after: u64, envelopes: Vec<Envelope<E>>) -> Result<Vec<Envelope<E>>, StoreError> {
    match envelopes
        .iter()
        .zip(after.saturating_add(1)..)
        .find(|(e, want)| e.position.0 != *want)
    {
        None => Ok(envelopes),
        Some((_, missing)) => Err(BackendError::Corrupt {
            position: missing,
            column: "position (a row is missing)",
        }
        .into()),
    }
}

fn ok_all<E>(page: Vec<Envelope<E>>) -> Vec<Result<Envelope<E>, StoreError>> {
    page.into_iter().map(Ok).collect()
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn query_envelopes<E: DomainEvent>(
    conn: &Connection,
    codec: &Codec<E>,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Envelope<E>>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sqlite)?;
    let mut rows = stmt.query(params).map_err(sqlite)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sqlite)? {
        out.push(codec.decode(row)?);
    }
    Ok(out)
}

#[async_trait]
impl<E: DomainEvent> EventStore<E> for SqliteStore<E> {
    async fn append(
        &self,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent<E>>,
    ) -> Result<Appended, StoreError> {
        if events.is_empty() {
            return Err(StoreError::EmptyAppend);
        }
        if let Some(dup) = events
            .iter()
            .enumerate()
            .find(|(i, e)| events[..*i].iter().any(|p| p.event_id == e.event_id))
        {
            return Err(StoreError::IdempotencyConflict {
                event_id: dup.1.event_id,
            });
        }
        for e in &events {
            nanos(e.recorded_at)?;
        }
        // Encoded here, on the caller's task, so the writer thread only writes.
        let payloads = encode(&events)?;
        let (reply, rx) = oneshot::channel();
        self.send(Job::Append(AppendJob {
            stream,
            expected,
            events,
            payloads,
            reply,
        }))
        .await?;
        rx.await
            .map_err(|_| StoreError::from(BackendError::Closed))?
    }

    fn read_stream(&self, stream: StreamId, after: Version) -> EventStream<'_, E> {
        paged(
            after,
            PAGE_STREAM,
            |e| e.version,
            move |after| {
                let codec = self.inner.codec.clone();
                self.inner.readers.submit(move |conn| {
                    query_envelopes(
                        conn,
                        &codec,
                        READ_STREAM,
                        params![
                            &stream.0.as_uuid().as_bytes()[..],
                            to_i64(after.0),
                            to_i64(PAGE_STREAM as u64)
                        ],
                    )
                })
            },
        )
    }

    fn read_all(&self, after: GlobalPosition) -> EventStream<'_, E> {
        // Positions are gap-free, so the page after a full one starts `PAGE_ALL` further on:
        // pages can be asked for ahead, and both readers decode while the consumer consumes.
        // Each page is checked to start where expected and run without gaps; a log with a
        // hole (rows deleted behind the store's back) is an error, never a repeated event.
        let page = PAGE_ALL as u64;
        let fetch = move |start: u64| (start, self.read_page_all(GlobalPosition(start), PAGE_ALL));
        let queue: VecDeque<_> = (0..READ_AHEAD as u64)
            .map(|k| fetch(after.0.saturating_add(k * page)))
            .collect();
        let next = after.0.saturating_add(READ_AHEAD as u64 * page);
        let pages =
            futures_util::stream::unfold((queue, next), move |(mut queue, next)| async move {
                let (start, pending) = queue.pop_front()?;
                let envelopes = match pending.await.and_then(|e| contiguous(start, e)) {
                    Ok(envelopes) => envelopes,
                    Err(e) => {
                        return Some((
                            futures_util::stream::iter(vec![Err(e)]),
                            (VecDeque::new(), next),
                        ));
                    }
                };
                if envelopes.len() < PAGE_ALL {
                    // The end of the log as of this page: what was read ahead is dropped.
                    queue.clear();
                } else {
                    queue.push_back(fetch(next));
                }
                (!envelopes.is_empty()).then(|| {
                    (
                        futures_util::stream::iter(ok_all(envelopes)),
                        (queue, next.saturating_add(page)),
                    )
                })
            });
        Box::pin(pages.flatten())
    }

    async fn head(&self) -> Result<GlobalPosition, StoreError> {
        Ok(GlobalPosition(*self.inner.published.head.borrow()))
    }
}

/// Verifies the hash chain of the store file at `path` on a read-only connection of its own:
/// no lock is taken and nothing is written, so an auditor may run it beside a live server
/// (it checks the committed snapshot it starts from). The directory is left as it was: a
/// closed store is read from its file alone, and a `-shm` the read had to create beside a
/// `-wal` is deleted again (see `docs/storage.md`).
///
/// ```
/// # futures_executor::block_on(async {
/// use acm_core::{EventStore, ExpectedVersion};
/// use acm_core::testkit::conformance::{event, stream, TestEvent};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("acm.db");
/// let store = acm_store_sqlite::SqliteStore::<TestEvent>::open(&path).unwrap();
/// let s = stream(1);
/// store.append(s, ExpectedVersion::NoStream, vec![event(s, 1, 1)]).await.unwrap();
/// let report = acm_store_sqlite::verify_file(&path).unwrap();
/// assert_eq!((report.checked, report.is_intact()), (1, true));
/// # });
/// ```
pub fn verify_file(path: impl AsRef<Path>) -> Result<ChainReport, OpenError> {
    crate::readonly::read(path.as_ref(), |conn| {
        verify(conn).map_err(|source| OpenError::Unreadable {
            path: crate::open::absolute(path.as_ref()),
            source,
        })
    })
}

/// Walks the log in one read transaction, recomputing every link.
fn verify(conn: &Connection) -> Result<ChainReport, StoreError> {
    conn.execute_batch("BEGIN").map_err(sqlite)?;
    let report = walk(conn);
    let _ = conn.execute_batch("COMMIT");
    report
}

fn walk(conn: &Connection) -> Result<ChainReport, StoreError> {
    let head = crate::writer::read_recorded_head(conn).map_err(sqlite)?;
    let mut stmt = conn.prepare(VERIFY).map_err(sqlite)?;
    let mut rows = stmt.query([]).map_err(sqlite)?;
    let mut link = chain::GENESIS;
    let mut expected = 1u64;
    let mut versions: HashMap<Vec<u8>, u64> = HashMap::default();
    let report = |checked, head, position, kind| {
        Ok(ChainReport {
            checked,
            head,
            broken: Some(Break { position, kind }),
        })
    };
    while let Some(row) = rows.next().map_err(sqlite)? {
        let position = row.get::<_, i64>(0).map_err(sqlite)?;
        // Rows come in position order: one below the position due was rewritten (below 1,
        // or onto a position that verified already), one above it means rows are missing.
        let Some(position) = u64::try_from(position).ok().filter(|p| *p >= expected) else {
            return report(expected - 1, link, expected, BreakKind::InvalidPosition);
        };
        if position != expected {
            return report(expected - 1, link, expected, BreakKind::Missing);
        }
        let Some((fields, stored)) = chain_fields(row, position) else {
            return report(expected - 1, link, position, BreakKind::Corrupt);
        };
        let next = chain::link(&link, &fields);
        if stored != next {
            return report(expected - 1, link, position, BreakKind::HashMismatch);
        }
        let v = versions.entry(fields.stream_id.to_vec()).or_default();
        if v.checked_add(1) != Some(fields.version) {
            return report(expected - 1, link, position, BreakKind::VersionGap);
        }
        *v = fields.version;
        link = next;
        expected += 1;
    }
    let last = expected - 1;
    let Some((recorded, recorded_link)) = head else {
        return report(last, link, last + 1, BreakKind::NoHead);
    };
    if recorded > last {
        return report(last, link, last + 1, BreakKind::Truncated);
    }
    if recorded < last {
        // Rows past the recorded head: written behind the store's back.
        return report(recorded, link, recorded + 1, BreakKind::HashMismatch);
    }
    if recorded_link != link {
        // Every row links, but the recorded head is not this chain's last link.
        return report(last.saturating_sub(1), link, last, BreakKind::HashMismatch);
    }
    Ok(ChainReport {
        checked: last,
        head: link,
        broken: None,
    })
}

/// The chain's fields of a row of `verify.sql`, and its stored link; `None` when a column
/// does not hold what the schema promises.
pub(crate) fn chain_fields<'r>(
    row: &'r rusqlite::Row<'_>,
    position: u64,
) -> Option<(Fields<'r>, chain::Hash)> {
    let blob = |i| row.get_ref(i).ok()?.as_blob().ok();
    let text = |i| row.get_ref(i).ok()?.as_str().ok();
    let int = |i| row.get_ref(i).ok()?.as_i64().ok();
    let causation_id = match row.get_ref(6).ok()? {
        rusqlite::types::ValueRef::Null => None,
        v => Some(v.as_blob().ok()?),
    };
    let stored: chain::Hash = blob(12)?.try_into().ok()?;
    Some((
        Fields {
            position,
            event_id: blob(1)?,
            stream_id: blob(2)?,
            version: int(3)?.cast_unsigned(),
            recorded_at: int(4)?,
            correlation_id: blob(5)?,
            causation_id,
            actor_kind: text(7)?,
            actor_id: text(8)?,
            event_type: text(9)?,
            schema_version: u32::try_from(int(10)?).ok()?,
            payload: blob(11)?,
        },
        stored,
    ))
}
