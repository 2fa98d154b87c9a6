//! The hash chain over an ACM server's log: each event's link covers the previous link and a
//! canonical encoding of the event's immutable envelope fields and payload bytes.
//!
//! One definition serves every place a link is computed: the `SQLite` store writes it beside
//! each row, [`audit::ExportWriter`](crate::audit::ExportWriter) puts it on every line of a
//! JSON Lines export, and the verifiers of both recompute it. So a store's export carries the
//! store's own links, byte for byte, and an export of any other store carries the links that
//! store would have written.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::store::Actor;

/// One link of the chain (SHA-256).
pub type Hash = [u8; 32];

/// The link before the first event.
pub const GENESIS: Hash = [0; 32];

/// Domain separation: a link of this chain cannot be confused with any other SHA-256 use.
pub const CHAIN_TAG: &str = "acm/event-chain/v1";

/// The stored fields of one event, as the chain sees them: identifiers as their 16 bytes, the
/// time as nanoseconds since the Unix epoch, the payload as its encoded bytes.
#[derive(Debug, Clone, Copy)]
pub struct ChainFields<'a> {
    /// Global position.
    pub position: u64,
    /// Event id, 16 bytes.
    pub event_id: &'a [u8],
    /// Stream (request) id, 16 bytes.
    pub stream_id: &'a [u8],
    /// Version in the stream.
    pub version: u64,
    /// Nanoseconds since the Unix epoch.
    pub recorded_at: i64,
    /// Correlation (request) id, 16 bytes.
    pub correlation_id: &'a [u8],
    /// Causation id, 16 bytes, if any.
    pub causation_id: Option<&'a [u8]>,
    /// `user` or `system`.
    pub actor_kind: &'a str,
    /// The actor's MC service ID or MC system ID.
    pub actor_id: &'a str,
    /// The payload's event type.
    pub event_type: &'a str,
    /// The payload's schema version.
    pub schema_version: u32,
    /// The payload's JSON bytes, exactly as stored.
    pub payload: &'a [u8],
}

fn bytes(h: &mut Sha256, b: &[u8]) {
    // Length-prefixed, so no two field sequences encode alike.
    h.update((b.len() as u64).to_be_bytes());
    h.update(b);
}

/// The link of `f` after `prev`.
pub fn link(prev: &Hash, f: &ChainFields<'_>) -> Hash {
    let mut h = Sha256::new();
    h.update(CHAIN_TAG.as_bytes());
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

/// The actor as the chain (and the `SQLite` store's columns) hold it: kind and id.
pub fn actor_parts(actor: &Actor) -> (&'static str, &str) {
    match actor {
        Actor::User(u) => ("user", u.as_str()),
        Actor::System(s) => ("system", s.as_str()),
    }
}

/// An event's time cannot be held as nanoseconds since the epoch (before 1677 or after 2262),
/// or is a leap second (which the nanosecond count cannot tell from the second before), so it
/// has no link; a durable store refuses such an event when it is appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "event at position {position} was recorded at {recorded_at}, a time the hash chain cannot hold (before 1677, after 2262, or a leap second)"
)]
pub struct TimeOutOfRange {
    /// The event's position.
    pub position: u64,
    /// Its time.
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

/// A link as 64 lower-case hex digits.
pub fn to_hex(hash: &Hash) -> String {
    hash.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Parses 64 hex digits (either case) into a link.
pub fn from_hex(text: &str) -> Option<Hash> {
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (byte, pair) in hash.iter_mut().zip(text.chunks_exact(2)) {
        let digit = |c: u8| char::from(c).to_digit(16);
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(hash)
}
