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

/// What the cache holds for a request.
#[derive(Debug)]
enum Slot {
    /// A command has the entry out (the slot stays in place: taking and putting back moves
    /// no node of the LRU list and allocates nothing).
    Busy,
    /// The state at a version.
    Cached(Entry),
    /// Settled at this version: only the version is kept, so that a slower command putting
    /// back an older, unsettled state cannot make a finished request look open again.
    Settled(Version),
}

/// Least-recently-used states, at most `capacity`. Settled requests (nothing pending, owed,
/// due or timed) keep only their version: a finished request costs no state, and a server's
/// memory does not grow with its history.
///
/// A command takes its request's entry out while it runs and puts the new state back after
/// its append: a command dropped in between (its caller went away) leaves no stale entry,
/// and the next one reads the stream.
#[derive(Debug)]
pub(crate) struct Cache {
    entries: Mutex<LruCache<RequestId, Slot, foldhash::fast::RandomState>>,
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

    fn lock(&self) -> MutexGuard<'_, LruCache<RequestId, Slot, foldhash::fast::RandomState>> {
        // Every critical section leaves the map whole; a panic elsewhere cannot corrupt it.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes `id`'s entry out (its slot stays, busy, until the entry is put back).
    pub(crate) fn take(&self, id: RequestId) -> Option<Entry> {
        let mut entries = self.lock();
        let slot = entries.get_mut(&id)?;
        match std::mem::replace(slot, Slot::Busy) {
            Slot::Cached(entry) => Some(entry),
            other => {
                *slot = other;
                None
            }
        }
    }

    /// A copy of `id`'s entry.
    pub(crate) fn get(&self, id: RequestId) -> Option<Entry> {
        match self.lock().get(&id)? {
            Slot::Cached(entry) => Some(entry.clone()),
            Slot::Busy | Slot::Settled(_) => None,
        }
    }

    /// Puts `entry` back unless a newer one is known; a settled request keeps only its
    /// version.
    pub(crate) fn put(&self, id: RequestId, entry: Entry) {
        let mut entries = self.lock();
        let newer_known = match entries.peek(&id) {
            Some(Slot::Cached(cached)) => cached.version >= entry.version,
            Some(Slot::Settled(version)) => *version >= entry.version,
            Some(Slot::Busy) | None => false,
        };
        if newer_known {
            return;
        }
        let slot = if views::is_settled(&entry.state) {
            Slot::Settled(entry.version)
        } else {
            Slot::Cached(entry)
        };
        match entries.get_mut(&id) {
            Some(existing) => *existing = slot,
            None => {
                entries.put(id, slot);
            }
        }
    }

    /// Forgets `id`'s state if it is older than `version` (another process wrote the
    /// stream).
    pub(crate) fn forget_older(&self, id: RequestId, version: Version) {
        let mut entries = self.lock();
        let older = match entries.peek(&id) {
            Some(Slot::Cached(cached)) => cached.version < version,
            Some(Slot::Settled(settled)) => *settled < version,
            Some(Slot::Busy) | None => false,
        };
        if older {
            entries.pop(&id);
        }
    }

    /// How many states are cached.
    pub(crate) fn len(&self) -> usize {
        self.lock()
            .iter()
            .filter(|(_, slot)| matches!(slot, Slot::Cached(_)))
            .count()
    }
}
