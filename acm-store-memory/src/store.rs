//! The in-memory event store.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use acm_core::id::{EventId, GlobalPosition, StreamId, Version};
use acm_core::store::{
    Appended, DomainEvent, Envelope, EventStore, EventStream, ExpectedVersion, NewEvent, StoreError,
};
use async_trait::async_trait;

/// How many envelopes a read copies per lock acquisition: bounds the time writers wait.
const PAGE: usize = 256;

#[derive(Debug)]
struct Inner<E> {
    /// The whole log; index `i` holds global position `i + 1`.
    log: Vec<Envelope<E>>,
    /// Per stream, the log indexes of its events in version order.
    streams: HashMap<StreamId, Vec<usize>>,
    /// Event id -> log index: the unique index behind idempotent appends.
    ids: HashMap<EventId, usize>,
}

/// An event store held in memory, safe to share between tasks.
///
/// ```
/// use acm_core::id::GlobalPosition;
/// use acm_core::store::EventStore;
/// use acm_core::Event;
/// use acm_store_memory::MemoryStore;
/// let store = MemoryStore::<Event>::new();
/// let head = futures_executor::block_on(store.head()).unwrap();
/// assert_eq!(head, GlobalPosition::START);
/// ```
#[derive(Debug)]
pub struct MemoryStore<E> {
    inner: Mutex<Inner<E>>,
}

impl<E> Default for MemoryStore<E> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                log: Vec::new(),
                streams: HashMap::new(),
                ids: HashMap::new(),
            }),
        }
    }
}

impl<E: DomainEvent> MemoryStore<E> {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner<E>> {
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
        self.lock().log.clone()
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
        let mut inner = self.lock();
        // Idempotency: a batch whose first id is stored must be an exact repeat of a stored run.
        if let Some(&start) = inner.ids.get(&first.event_id) {
            return replayed(&inner.log, start, stream, &events);
        }
        if let Some(e) = events.iter().find(|e| inner.ids.contains_key(&e.event_id)) {
            return Err(StoreError::IdempotencyConflict {
                event_id: e.event_id,
            });
        }
        for (i, e) in events.iter().enumerate() {
            if events[..i].iter().any(|p| p.event_id == e.event_id) {
                return Err(StoreError::IdempotencyConflict {
                    event_id: e.event_id,
                });
            }
        }
        let actual = Version(inner.streams.get(&stream).map_or(0, |s| s.len() as u64));
        if !expected.admits(actual) {
            return Err(StoreError::Conflict {
                stream,
                expected,
                actual,
            });
        }
        let first_index = inner.log.len();
        let count = events.len();
        let Inner { log, streams, ids } = &mut *inner;
        let indexes = streams.entry(stream).or_default();
        log.reserve(count);
        for (i, event) in events.into_iter().enumerate() {
            let index = first_index + i;
            ids.insert(event.event_id, index);
            indexes.push(index);
            log.push(Envelope::seal(
                stream,
                Version(actual.0 + 1 + i as u64),
                GlobalPosition(index as u64 + 1),
                event,
            ));
        }
        Ok(Appended {
            first_version: actual.next(),
            first_position: GlobalPosition(first_index as u64 + 1),
            count: count as u64,
            replayed: false,
        })
    }
}

fn replayed<E: DomainEvent>(
    log: &[Envelope<E>],
    start: usize,
    stream: StreamId,
    events: &[NewEvent<E>],
) -> Result<Appended, StoreError> {
    let stored = log.get(start..start + events.len());
    let run_matches = stored.is_some_and(|run| {
        run.iter().zip(events).all(|(s, e)| s.same_as(stream, e))
            && run.windows(2).all(|w| w[1].version == w[0].version.next())
    });
    if !run_matches {
        // Find the first event that differs, to name it.
        let event_id = events
            .iter()
            .enumerate()
            .find(|(i, e)| !log.get(start + i).is_some_and(|s| s.same_as(stream, e)))
            .map_or(events[0].event_id, |(_, e)| e.event_id);
        return Err(StoreError::IdempotencyConflict { event_id });
    }
    let first = &log[start];
    Ok(Appended {
        first_version: first.version,
        first_position: first.position,
        count: events.len() as u64,
        replayed: true,
    })
}

#[async_trait]
impl<E: DomainEvent> EventStore<E> for MemoryStore<E> {
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
                    .map(|&i| inner.log[i].clone())
                    .collect()
            };
            let last = page.last()?.version;
            Some((futures_util::stream::iter(page.into_iter().map(Ok)), last))
        });
        Box::pin(futures_util::StreamExt::flatten(pages))
    }

    fn read_all(&self, after: GlobalPosition) -> EventStream<'_, E> {
        let pages = futures_util::stream::unfold(after, move |after| async move {
            let page: Vec<_> = {
                let inner = self.lock();
                let from = usize::try_from(after.0)
                    .unwrap_or(usize::MAX)
                    .min(inner.log.len());
                inner.log[from..].iter().take(PAGE).cloned().collect()
            };
            let last = page.last()?.position;
            Some((futures_util::stream::iter(page.into_iter().map(Ok)), last))
        });
        Box::pin(futures_util::StreamExt::flatten(pages))
    }

    async fn head(&self) -> Result<GlobalPosition, StoreError> {
        Ok(GlobalPosition(self.lock().log.len() as u64))
    }
}
