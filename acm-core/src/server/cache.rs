//! The bounded cache of the requests a server is working on.

use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard, PoisonError};

use lru::LruCache;

use crate::id::{RequestId, Version};
use crate::lifecycle::RequestState;
use crate::views;

/// A request's state at a version of its stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct Entry {
    pub(crate) state: RequestState,
    pub(crate) version: Version,
}

/// Least-recently-used states, at most `capacity`. Requests that are settled (nothing
/// pending, owed, due or timed) are not kept: a finished request costs no memory, and a
/// server's memory does not grow with its history.
///
/// A command takes its request's entry out while it runs and puts the new state back after
/// its append: a command dropped in between (its caller went away) leaves no stale entry,
/// and the next one reads the stream.
#[derive(Debug)]
pub(crate) struct Cache {
    // A slot stays in place while its command runs (`None`): taking and putting back moves
    // no node of the LRU list and allocates nothing.
    entries: Mutex<LruCache<RequestId, Option<Entry>, foldhash::fast::RandomState>>,
}

impl Cache {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            entries: Mutex::new(LruCache::with_hasher(
                capacity,
                foldhash::fast::RandomState::default(),
            )),
        }
    }

    fn lock(
        &self,
    ) -> MutexGuard<'_, LruCache<RequestId, Option<Entry>, foldhash::fast::RandomState>> {
        // Every critical section leaves the map whole; a panic elsewhere cannot corrupt it.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes `id`'s entry out (its slot stays, empty, until the entry is put back).
    pub(crate) fn take(&self, id: RequestId) -> Option<Entry> {
        self.lock().get_mut(&id).and_then(Option::take)
    }

    /// A copy of `id`'s entry.
    pub(crate) fn get(&self, id: RequestId) -> Option<Entry> {
        self.lock().get(&id).and_then(Clone::clone)
    }

    /// Puts `entry` back unless a newer one is there; a settled request is dropped instead.
    pub(crate) fn put(&self, id: RequestId, entry: Entry) {
        let mut entries = self.lock();
        if views::is_settled(&entry.state) {
            entries.pop(&id);
            return;
        }
        match entries.get_mut(&id) {
            Some(Some(cached)) if cached.version >= entry.version => {}
            Some(slot) => *slot = Some(entry),
            None => {
                entries.put(id, Some(entry));
            }
        }
    }

    /// How many states are cached.
    pub(crate) fn len(&self) -> usize {
        self.lock()
            .iter()
            .filter(|(_, slot)| slot.is_some())
            .count()
    }
}
