//! # acm-store-sqlite
//!
//! The durable, embedded default event store of acm: one `SQLite` file per ACM server.
//!
//! - **Durable**: WAL journal with `synchronous=FULL`; `append` returns only after the
//!   transaction holding the events is on disk.
//! - **Group commit**: one writer thread takes every append queued while the previous
//!   transaction was committing and runs them in one `BEGIN IMMEDIATE` transaction, each in
//!   its own savepoint (each caller gets its own result, conflicts included). Reads run on
//!   reader threads with their own connections; async callers only await channels.
//! - **Every guarantee of [`EventStore`](acm_core::EventStore)**, checked by the
//!   conformance suite of `acm_core::testkit`: expected versions, typed conflicts (constraint
//!   violations are told apart by `SQLite`'s extended result codes), idempotent re-append by
//!   event id backed by a unique index, contiguous versions, a gap-free global position in
//!   commit order, paged (streamed) reads, and [`SqliteStore::subscribe`].
//! - **The ACM views in the same transaction**: [`SqliteAcmStore`] is an
//!   [`AcmStore`](acm_core::AcmStore): the pending items, outbox, hooks, timers, inbox and
//!   submissions of `acm_core::views` are written with the events, and an append that claims
//!   a key another request holds is refused alone (`StoreError::Taken`).
//! - **Tamper evidence**: a SHA-256 hash chain over the log; [`SqliteStore::verify`] names the
//!   first position that does not verify.
//! - **Upcasting on read** ([`Upcasters`]): payloads stay byte-for-byte as written.
//! - **Refuses what is not its own**: [`OpenError`] says why, and nothing is written.
//! - **Closes whole**: [`SqliteStore::close`] folds the WAL into the database file, so the
//!   `.db` alone holds the store; [`verify_file`] audits a store and [`backup_file`] copies
//!   one, beside its running server, without leaving a file behind.
//!
//! ```
//! use acm_core::testkit::conformance::{event, stream, TestEvent};
//! use acm_core::{EventStore, ExpectedVersion};
//! use acm_store_sqlite::SqliteStore;
//! # futures_executor::block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::<TestEvent>::open(dir.path().join("acm.db")).unwrap();
//! let s = stream(1);
//! let appended = store.append(s, ExpectedVersion::NoStream, vec![event(s, 1, 42)]).await.unwrap();
//! assert_eq!(appended.first_position.0, 1);
//! assert!(store.verify().await.unwrap().is_intact());
//! # });
//! ```
#![warn(missing_docs)]

mod acm;
mod backup;
mod chain;
mod codec;
mod error;
mod export;
mod open;
mod projection;
mod reader;
mod readonly;
mod store;
mod upcast;
mod writer;

pub use acm::SqliteAcmStore;
pub use backup::{BackupError, BackupReport, backup_file};
pub use chain::{Break, BreakKind, ChainReport, GENESIS, Hash};
pub use error::{BackendError, OpenError};
pub use export::{ExportFileError, export_file};
pub use open::SCHEMA_VERSION;
pub use projection::{AcmProjection, Appending, History, Projection, RowChange};
pub use store::{SqliteOptions, SqliteStore, WriterStats, verify_file};
pub use upcast::Upcasters;
