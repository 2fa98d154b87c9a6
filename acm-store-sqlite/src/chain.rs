//! The hash chain over the log: each event's link covers the previous link and a canonical
//! encoding of the event's immutable envelope fields and payload bytes.

use sha2::{Digest, Sha256};

/// One link of the chain (SHA-256).
pub type Hash = [u8; 32];

/// The link before the first event.
pub const GENESIS: Hash = [0; 32];

/// The stored fields of one event, as the chain sees them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a> {
    pub position: u64,
    pub event_id: &'a [u8],
    pub stream_id: &'a [u8],
    pub version: u64,
    pub recorded_at: i64,
    pub correlation_id: &'a [u8],
    pub causation_id: Option<&'a [u8]>,
    pub actor_kind: &'a str,
    pub actor_id: &'a str,
    pub event_type: &'a str,
    pub schema_version: u32,
    pub payload: &'a [u8],
}

/// Domain separation: a link of this chain cannot be confused with any other SHA-256 use.
const TAG: &[u8] = b"acm/event-chain/v1";

fn bytes(h: &mut Sha256, b: &[u8]) {
    // Length-prefixed, so no two field sequences encode alike.
    h.update((b.len() as u64).to_be_bytes());
    h.update(b);
}

/// The link of `fields` after `prev`.
pub(crate) fn link(prev: &Hash, f: &Fields<'_>) -> Hash {
    let mut h = Sha256::new();
    h.update(TAG);
    h.update(prev);
    h.update(f.position.to_be_bytes());
    bytes(&mut h, f.event_id);
    bytes(&mut h, f.stream_id);
    h.update(f.version.to_be_bytes());
    h.update(f.recorded_at.to_be_bytes());
    bytes(&mut h, f.correlation_id);
    match f.causation_id {
        None => h.update([0u8]),
        Some(c) => {
            h.update([1u8]);
            bytes(&mut h, c);
        }
    }
    bytes(&mut h, f.actor_kind.as_bytes());
    bytes(&mut h, f.actor_id.as_bytes());
    bytes(&mut h, f.event_type.as_bytes());
    h.update(f.schema_version.to_be_bytes());
    bytes(&mut h, f.payload);
    h.finalize().into()
}

/// What [`SqliteStore::verify`](crate::SqliteStore::verify) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Events checked.
    pub checked: u64,
    /// The last link, which an auditor can keep to detect a rewritten log later.
    pub head: Hash,
    /// The first break, if any.
    pub broken: Option<Break>,
}

impl ChainReport {
    /// Whether the whole log verified.
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// Where and how the chain breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Break {
    /// The first global position that does not verify.
    pub position: u64,
    /// What is wrong there.
    pub kind: BreakKind,
}

/// What is wrong at a [`Break`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakKind {
    /// The stored link does not match the event's fields and the previous link: the event
    /// (or one before it) was altered.
    HashMismatch,
    /// No event is stored at this position, yet later ones are: it was deleted.
    Missing,
    /// The log ends before the recorded chain head: the last events were deleted.
    Truncated,
    /// The event's version does not follow its stream's previous version.
    VersionGap,
    /// A column does not hold what the schema promises.
    Corrupt,
}
