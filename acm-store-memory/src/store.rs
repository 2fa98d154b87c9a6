//! The in-memory event store.

use std::sync::{Mutex, MutexGuard, PoisonError};

use acm_core::{
    Appended, DomainEvent, Envelope, EventStore, EventStream, ExpectedVersion, NewEvent, StoreError,
};
use acm_core::{EventId, GlobalPosition, StreamId, Version};
use async_trait::async_trait;
use foldhash::HashMap;
use std::collections::hash_map::Entry;
use tokio::sync::watch;

/// How many envelopes a read copies per lock acquisition: bounds the time writers wait.
const PAGE: usize = 256;

/// Events per chunk of the log.
const CHUNK: usize = 4096;

/// The log in fixed-size chunks: growing it never moves (or copies) what is stored.
#[derive(Debug)]
struct Log<E> {
    chunks: Vec<Vec<Envelope<E>>>,
    len: usize,
}

impl<E> Log<E> {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize) -> Option<&Envelope<E>> {
        self.chunks.get(index / CHUNK)?.get(index % CHUNK)
    }

    fn push(&mut self, envelope: Envelope<E>) {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push(envelope);
            self.len += 1;
        }
    }

    /// Events from `index` on, in order.
    fn iter_from(&self, index: usize) -> impl Iterator<Item = &Envelope<E>> {
        let (chunk, offset) = (index / CHUNK, index % CHUNK);
        self.chunks
            .iter()
            .skip(chunk)
            .enumerate()
            .flat_map(move |(i, c)| c[if i == 0 { offset.min(c.len()) } else { 0 }..].iter())
    }
}

#[derive(Debug)]
struct Inner<E, P> {
    /// The whole log; index `i` holds global position `i + 1`.
    log: Log<E>,
    /// Per stream, the log indexes of its events in version order.
    streams: HashMap<StreamId, Vec<usize>>,
    /// Event id -> log index: the unique index behind idempotent appends.
    ids: HashMap<EventId, usize>,
    /// The views kept with the events, under the same lock.
    views: P,
}

/// An event store held in memory, safe to share between tasks.
///
/// ```
/// use acm_core::GlobalPosition;
/// use acm_core::EventStore;
/// use acm_core::Event;
/// use acm_store_memory::MemoryStore;
/// let store = MemoryStore::<Event>::new();
/// let head = futures_executor::block_on(store.head()).unwrap();
/// assert_eq!(head, GlobalPosition::START);
/// ```
#[derive(Debug)]
pub struct MemoryStore<E, P = NoViews> {
    inner: Mutex<Inner<E, P>>,
    /// The log's length, for subscribers waiting for what commits next.
    committed: watch::Sender<u64>,
}

impl<E, P: Default> Default for MemoryStore<E, P> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                log: Log {
                    chunks: Vec::new(),
                    len: 0,
                },
                streams: HashMap::default(),
                ids: HashMap::default(),
                views: P::default(),
            }),
            committed: watch::Sender::new(0),
        }
    }
}

impl<E: DomainEvent, P: Projector<E>> MemoryStore<E, P> {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner<E, P>> {
        // Every mutation is validated before the first write, so a poisoned lock still guards
        // a consistent log.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Number of stored events.
    pub fn len(&self) -> usize {
        self.lock().log.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the whole log (for tests and audits of small logs).
    pub fn snapshot(&self) -> Vec<Envelope<E>> {
        self.lock().log.iter_from(0).cloned().collect()
    }

    fn append_sync(
        &self,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent<E>>,
    ) -> Result<Appended, StoreError> {
        let Some(first) = events.first() else {
            return Err(StoreError::EmptyAppend);
        };
        if let Some((i, e)) = events
            .iter()
            .enumerate()
            .find(|(i, e)| events[..*i].iter().any(|p| p.event_id == e.event_id))
        {
            debug_assert!(i > 0);
            return Err(StoreError::IdempotencyConflict {
                event_id: e.event_id,
            });
        }
        let mut guard = self.lock();
        let Inner {
            log,
            streams,
            ids,
            views,
        } = &mut *guard;
        // Each id is hashed once: the first id's slot decides between a replay and a new batch,
        // the others are claimed below and released again if the batch is refused.
        let first_slot = match ids.entry(first.event_id) {
            Entry::Occupied(stored) => return replayed(log, *stored.get(), stream, &events),
            Entry::Vacant(slot) => slot,
        };
        // Most requests record under ten events: one allocation, no regrowth.
        let indexes = streams
            .entry(stream)
            .or_insert_with(|| Vec::with_capacity(8));
        let actual = Version(indexes.len() as u64);
        if !expected.admits(actual) {
            if indexes.is_empty() {
                streams.remove(&stream);
            }
            return Err(StoreError::Conflict {
                stream,
                expected,
                actual,
            });
        }
        let first_index = log.len();
        first_slot.insert(first_index);
        for (i, e) in events.iter().enumerate().skip(1) {
            match ids.entry(e.event_id) {
                Entry::Vacant(slot) => {
                    slot.insert(first_index + i);
                }
                Entry::Occupied(_) => {
                    for claimed in &events[..i] {
                        ids.remove(&claimed.event_id);
                    }
                    if indexes.is_empty() {
                        streams.remove(&stream);
                    }
                    return Err(StoreError::IdempotencyConflict {
                        event_id: e.event_id,
                    });
                }
            }
        }
        let prepared = {
            let mut history = indexes
                .iter()
                .filter_map(|&i| log.get(i))
                .map(|e| &e.payload);
            views.prepare(stream, &mut history, &events)
        };
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(error) => {
                for claimed in &events {
                    ids.remove(&claimed.event_id);
                }
                if indexes.is_empty() {
                    streams.remove(&stream);
                }
                return Err(error);
            }
        };
        let count = events.len();
        for (i, event) in events.into_iter().enumerate() {
            let index = first_index + i;
            indexes.push(index);
            log.push(Envelope::seal(
                stream,
                Version(actual.0 + 1 + i as u64),
                GlobalPosition(index as u64 + 1),
                event,
            ));
        }
        views.commit(stream, prepared);
        let len = log.len() as u64;
        drop(guard);
        // Only subscribers need waking; one that subscribes after this check reads the log,
        // which holds these events already.
        if self.committed.receiver_count() > 0 {
            self.committed.send_replace(len);
        }
        Ok(Appended {
            first_version: actual.next(),
            first_position: GlobalPosition(first_index as u64 + 1),
            count: count as u64,
            replayed: false,
        })
    }

    /// Runs `f` on the views, under the store's lock.
    pub(crate) fn with_views<R>(&self, f: impl FnOnce(&mut P) -> R) -> R {
        f(&mut self.lock().views)
    }

    /// Every event after `after`, then every event as it commits.
    pub(crate) fn follow(&self, after: GlobalPosition) -> EventStream<'_, E> {
        let pages = futures_util::stream::unfold(
            (after, self.committed.subscribe()),
            move |(after, mut committed)| async move {
                loop {
                    // Marked seen before the read: a commit after it wakes the wait below.
                    committed.borrow_and_update();
                    let page = self.page_after(after);
                    if let Some(last) = page.last().map(|e| e.position) {
                        return Some((
                            futures_util::stream::iter(page.into_iter().map(Ok)),
                            (last, committed),
                        ));
                    }
                    // The sender lives as long as the store this stream borrows.
                    committed.changed().await.ok()?;
                }
            },
        );
        Box::pin(futures_util::StreamExt::flatten(pages))
    }

    fn page_after(&self, after: GlobalPosition) -> Vec<Envelope<E>> {
        let inner = self.lock();
        let from = usize::try_from(after.0)
            .unwrap_or(usize::MAX)
            .min(inner.log.len());
        inner.log.iter_from(from).take(PAGE).cloned().collect()
    }
}

/// What a memory store keeps beside its log, updated under the log's lock: nothing
/// ([`NoViews`]) or the ACM views ([`crate::AcmViews`]).
pub trait Projector<E>: Default + Send + 'static {
    /// What [`Projector::prepare`] computed, to apply once the events are in the log.
    type Prepared;

    /// Computes what appending `events` to `stream` (whose earlier payloads `history`
    /// yields) changes; an error refuses the append, which then writes nothing.
    fn prepare(
        &mut self,
        stream: StreamId,
        history: &mut dyn Iterator<Item = &E>,
        events: &[NewEvent<E>],
    ) -> Result<Self::Prepared, StoreError>;

    /// Applies what [`Projector::prepare`] computed.
    fn commit(&mut self, stream: StreamId, prepared: Self::Prepared);
}

/// No views: a plain event store.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoViews;

impl<E> Projector<E> for NoViews {
    type Prepared = ();

    fn prepare(
        &mut self,
        _: StreamId,
        _: &mut dyn Iterator<Item = &E>,
        _: &[NewEvent<E>],
    ) -> Result<(), StoreError> {
        Ok(())
    }

    fn commit(&mut self, _: StreamId, (): ()) {}
}

fn replayed<E: DomainEvent>(
    log: &Log<E>,
    start: usize,
    stream: StreamId,
    events: &[NewEvent<E>],
) -> Result<Appended, StoreError> {
    let run: Vec<&Envelope<E>> = log.iter_from(start).take(events.len()).collect();
    let run_matches = run.len() == events.len()
        && run.iter().zip(events).all(|(s, e)| s.same_as(stream, e))
        && run.windows(2).all(|w| w[1].version == w[0].version.next());
    if !run_matches {
        // Find the first event that differs, to name it.
        let event_id = events
            .iter()
            .enumerate()
            .find(|(i, e)| !log.get(start + i).is_some_and(|s| s.same_as(stream, e)))
            .map_or(events[0].event_id, |(_, e)| e.event_id);
        return Err(StoreError::IdempotencyConflict { event_id });
    }
    let first = run[0];
    Ok(Appended {
        first_version: first.version,
        first_position: first.position,
        count: events.len() as u64,
        replayed: true,
    })
}

#[async_trait]
impl<E: DomainEvent, P: Projector<E>> EventStore<E> for MemoryStore<E, P> {
    async fn append(
        &self,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent<E>>,
    ) -> Result<Appended, StoreError> {
        self.append_sync(stream, expected, events)
    }

    fn read_stream(&self, stream: StreamId, after: Version) -> EventStream<'_, E> {
        let pages = futures_util::stream::unfold(after, move |after| async move {
            let page: Vec<_> = {
                let inner = self.lock();
                let indexes = inner.streams.get(&stream).map_or(&[][..], Vec::as_slice);
                let from = usize::try_from(after.0)
                    .unwrap_or(usize::MAX)
                    .min(indexes.len());
                indexes[from..]
                    .iter()
                    .take(PAGE)
                    .filter_map(|&i| inner.log.get(i).cloned())
                    .collect()
            };
            let last = page.last()?.version;
            Some((futures_util::stream::iter(page.into_iter().map(Ok)), last))
        });
        Box::pin(futures_util::StreamExt::flatten(pages))
    }

    fn read_all(&self, after: GlobalPosition) -> EventStream<'_, E> {
        let pages = futures_util::stream::unfold(after, move |after| async move {
            let page = self.page_after(after);
            let last = page.last()?.position;
            Some((futures_util::stream::iter(page.into_iter().map(Ok)), last))
        });
        Box::pin(futures_util::StreamExt::flatten(pages))
    }

    async fn head(&self) -> Result<GlobalPosition, StoreError> {
        Ok(GlobalPosition(self.lock().log.len() as u64))
    }
}
