//! The hash chain over the log: each event's link covers the previous link and a canonical
//! encoding of the event's immutable envelope fields and payload bytes. The link itself is
//! [`acm_core::chain::link`], the same one an audit export carries.

pub(crate) use acm_core::chain::{ChainFields as Fields, link};
pub use acm_core::chain::{GENESIS, Hash};

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
#[non_exhaustive]
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
    /// A row holds a position below 1, or one out of the log's order: positions were
    /// rewritten.
    InvalidPosition,
    /// The recorded chain head is gone: the store was altered.
    NoHead,
}

impl std::fmt::Display for BreakKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::HashMismatch => {
                "the stored link does not match the event: it (or one before it) was altered"
            }
            Self::Missing => "no event at this position, yet later ones exist: it was deleted",
            Self::Truncated => {
                "the log ends before its recorded head: the last events were deleted"
            }
            Self::VersionGap => "the event's version does not follow its request's previous one",
            Self::Corrupt => "a column does not hold what the schema promises",
            Self::InvalidPosition => {
                "a row holds a position below 1 or out of order: positions were rewritten"
            }
            Self::NoHead => "the recorded chain head is missing: the store was altered",
        })
    }
}

impl BreakKind {
    /// A stable name for the kind, as `acm audit --json` prints it.
    pub fn code(self) -> &'static str {
        match self {
            Self::HashMismatch => "hash_mismatch",
            Self::Missing => "missing",
            Self::Truncated => "truncated",
            Self::VersionGap => "version_gap",
            Self::Corrupt => "corrupt",
            Self::InvalidPosition => "invalid_position",
            Self::NoHead => "no_head",
        }
    }
}
