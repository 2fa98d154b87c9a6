//! Typed errors: why a store could not be opened, and what a backend failure was.

use std::path::PathBuf;
use std::sync::Arc;

use acm_core::StoreError;

/// Why [`SqliteStore::open`](crate::SqliteStore::open) (or [`verify_file`](crate::verify_file))
/// refused a path. In every case nothing was written to the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The directory the file would live in does not exist.
    #[error("{path}: the directory does not exist")]
    MissingDirectory {
        /// The path asked for.
        path: PathBuf,
    },
    /// The file (or its directory) cannot be written; a store that cannot write cannot
    /// acknowledge anything.
    #[error("{path}: the file is read-only")]
    ReadOnly {
        /// The path asked for.
        path: PathBuf,
    },
    /// The file is not a `SQLite` database.
    #[error("{path}: not a SQLite database")]
    NotADatabase {
        /// The path asked for.
        path: PathBuf,
    },
    /// The file is a `SQLite` database of another program.
    #[error(
        "{path}: a SQLite database that is not an acm store \
         (application_id {application_id:#x}, user_version {user_version})"
    )]
    NotAnAcmStore {
        /// The path asked for.
        path: PathBuf,
        /// `PRAGMA application_id` of the file.
        application_id: i32,
        /// `PRAGMA user_version` of the file.
        user_version: i32,
    },
    /// The store was written by a newer acm with a schema this build does not know.
    #[error("{path}: schema version {found} is newer than this build supports ({supported})")]
    NewerSchema {
        /// The path asked for.
        path: PathBuf,
        /// The file's schema version.
        found: i32,
        /// The newest schema version this build knows.
        supported: i32,
    },
    /// The file says it is an acm store, but its schema version is one no acm build writes:
    /// negative, or 0 with tables in it (acm sets the version in the transaction that creates
    /// its tables). Something other than acm changed `PRAGMA user_version`.
    #[error(
        "{path}: an acm store marked with schema version {user_version}, which no acm build \
         writes (the file was altered or damaged)"
    )]
    UnknownSchema {
        /// The path asked for.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        user_version: i32,
    },
    /// Another store (in this or another process) has the file open.
    #[error("{path}: the store is open elsewhere (one writer per store)")]
    Locked {
        /// The path asked for.
        path: PathBuf,
    },
    /// The file is an acm store but could not be read to the end.
    #[error("{path}: {source}")]
    Unreadable {
        /// The path asked for.
        path: PathBuf,
        /// The failure.
        #[source]
        source: StoreError,
    },
    /// `SQLite` failed.
    #[error("{path}: {source}")]
    Sqlite {
        /// The path asked for.
        path: PathBuf,
        /// The failure.
        #[source]
        source: rusqlite::Error,
    },
    /// No file at the path a reader was given.
    #[error("{path}: no such file; give the path of an ACM server's store file (.db)")]
    NoSuchFile {
        /// The path asked for.
        path: PathBuf,
    },
    /// A reader was given a directory.
    #[error("{path} is a directory; give the path of an ACM server's store file (.db) in it")]
    IsADirectory {
        /// The path asked for.
        path: PathBuf,
    },
    /// The file system failed.
    #[error("{path}: {source}")]
    Io {
        /// The path asked for.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
}

/// What went wrong below the event store contract; carried by [`StoreError::Backend`] and
/// recovered with `downcast_ref::<BackendError>()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// `SQLite` failed (shared: one failed transaction fails every append batched into it).
    #[error("sqlite: {0}")]
    Sqlite(#[source] Arc<rusqlite::Error>),
    /// A stored payload does not decode as the event type.
    #[error("event at position {position}: {source}")]
    Decode {
        /// Where.
        position: u64,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// An upcaster refused a stored payload.
    #[error("event at position {position}: upcasting {event_type} v{version}: {message}")]
    Upcast {
        /// Where.
        position: u64,
        /// The stored event type.
        event_type: String,
        /// The schema version the failing upcaster starts from.
        version: u32,
        /// Why.
        message: String,
    },
    /// A stored column does not hold what the schema promises (the file was altered).
    #[error("event at position {position}: column {column} is corrupt")]
    Corrupt {
        /// Where.
        position: u64,
        /// Which column.
        column: &'static str,
    },
    /// A payload could not be encoded as JSON.
    #[error("encoding a payload: {0}")]
    Encode(#[source] serde_json::Error),
    /// `recorded_at` is outside what the store can hold (years 1677 to 2262).
    #[error("recorded_at {0} is outside the years 1677 to 2262")]
    TimeOutOfRange(chrono::DateTime<chrono::Utc>),
    /// The outbox was asked for on a store opened without the ACM projection (use
    /// `SqliteStore::open_acm`).
    #[error("the store keeps no outbox: it was opened without the ACM projection")]
    NoProjection,
    /// The store's writer or readers have stopped.
    #[error("the store is closed")]
    Closed,
    /// The store closed with every commit durable, but another connection (an auditor's or a
    /// backup's read, in another process) still read from the `-wal` file, so part of the log
    /// stays there; the next open of the store folds it into the database file.
    #[error("the store closed, but a reader kept part of the log in the -wal file")]
    CheckpointBlocked,
}

impl From<rusqlite::Error> for BackendError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(Arc::new(e))
    }
}

impl From<BackendError> for StoreError {
    fn from(e: BackendError) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

pub(crate) fn sqlite(e: rusqlite::Error) -> StoreError {
    BackendError::from(e).into()
}
