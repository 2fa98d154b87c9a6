//! Backing a store up beside its running server: `VACUUM INTO` copies one committed snapshot
//! in one read transaction (WAL readers never block the writer, and no lock of the store is
//! taken), then the copy's hash chain is verified.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::chain::{ChainReport, Hash};
use crate::error::OpenError;

/// What [`backup_file`] copied, as verified on the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupReport {
    /// Events in the copy, every one verified.
    pub events: u64,
    /// The copy's last chain link (what `verify_file` reports as its head): the value to keep
    /// beside the backup to tell later that it was not rewritten.
    pub head: Hash,
}

/// Why [`backup_file`] made no backup, or made one that does not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// Something is at the destination already: a backup never overwrites.
    #[error("{path}: exists already; a backup never overwrites a file")]
    DestinationExists {
        /// The destination asked for.
        path: PathBuf,
    },
    /// The source is not an acm store this build can read (the reason is the [`OpenError`]).
    #[error(transparent)]
    Source(#[from] OpenError),
    /// The destination could not be created, written or synced (it was deleted again).
    #[error("{path}: {source}")]
    Io {
        /// The destination.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// `SQLite` failed to write the copy (it was deleted again).
    #[error("{path}: writing the copy: {source}")]
    Copy {
        /// The destination.
        path: PathBuf,
        /// The failure.
        #[source]
        source: rusqlite::Error,
    },
    /// The copy was written but could not be read back to verify it (it is kept).
    #[error("the copy could not be verified: {source}")]
    CopyUnreadable {
        /// The destination.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: OpenError,
    },
    /// The copy's hash chain does not verify; the source's does not either, since the copy
    /// holds its rows as they are. The copy is kept, for whoever looks into it.
    #[error(
        "the copy's hash chain is broken at position {position}: {kind}; {checked} events \
         before it verify, so the source's chain is broken too (run `acm audit verify` on it); \
         the copy is kept at {path} for inspection",
        position = report.broken.map_or(0, |b| b.position),
        kind = report.broken.map_or_else(String::new, |b| b.kind.to_string()),
        checked = report.checked,
        path = path.display()
    )]
    CopyBroken {
        /// The destination.
        path: PathBuf,
        /// The copy's verification.
        report: ChainReport,
    },
}

/// Copies the acm store at `src` to a new file `dst`, safely beside a server that has `src`
/// open and keeps appending: the copy is one committed snapshot (a prefix of the log), taken
/// in one read transaction that does not hold the server up, with no lock of the store taken
/// and nothing left beside `src` (see [`verify_file`](crate::verify_file)). The copy is synced
/// to disk, then its hash chain is verified.
///
/// A plain file copy of a live store's `.db` is not a backup: commits since the last
/// checkpoint are only in its `-wal`.
///
/// ```
/// # futures_executor::block_on(async {
/// use acm_core::{EventStore, ExpectedVersion};
/// use acm_core::testkit::conformance::{event, stream, TestEvent};
/// let dir = tempfile::tempdir().unwrap();
/// let store = acm_store_sqlite::SqliteStore::<TestEvent>::open(dir.path().join("acm.db")).unwrap();
/// let s = stream(1);
/// store.append(s, ExpectedVersion::NoStream, vec![event(s, 1, 1)]).await.unwrap();
/// let copy = dir.path().join("copy.db");
/// let report = acm_store_sqlite::backup_file(store.path(), &copy).unwrap();
/// assert_eq!(report.events, 1);
/// # });
/// ```
///
/// # Errors
///
/// [`BackupError::DestinationExists`] when `dst` exists (it is left alone);
/// [`BackupError::Source`] when `src` is not an acm store this build reads; the others when
/// writing or verifying the copy failed.
pub fn backup_file(
    src: impl AsRef<Path>,
    dst: impl AsRef<Path>,
) -> Result<BackupReport, BackupError> {
    let dst = crate::open::absolute(dst.as_ref());
    let io = |source| BackupError::Io {
        path: dst.clone(),
        source,
    };
    // Reserves the name: of two backups to one destination, one is refused.
    match OpenOptions::new().write(true).create_new(true).open(&dst) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(BackupError::DestinationExists { path: dst });
        }
        Err(e) => return Err(io(e)),
    }
    let written = crate::readonly::read(src.as_ref(), |conn| copy(conn, &dst)).and_then(|()| {
        File::open(&dst).and_then(|f| f.sync_all()).map_err(io)?;
        // The new name, durable too.
        if let Some(dir) = dst.parent() {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    });
    if let Err(e) = written {
        if let Err(error) = std::fs::remove_file(&dst) {
            tracing::warn!(path = %dst.display(), %error, "could not delete a failed backup");
        }
        return Err(e);
    }
    let report = crate::verify_file(&dst).map_err(|source| BackupError::CopyUnreadable {
        path: dst.clone(),
        source,
    })?;
    if !report.is_intact() {
        return Err(BackupError::CopyBroken { path: dst, report });
    }
    tracing::info!(
        path = %dst.display(),
        events = report.checked,
        "acm store backed up and verified"
    );
    Ok(BackupReport {
        events: report.checked,
        head: report.head,
    })
}

/// Writes the snapshot `conn` reads into `dst`, which must be empty for `VACUUM INTO` (it is
/// emptied first: the read may be run a second time, see [`crate::readonly`]).
fn copy(conn: &rusqlite::Connection, dst: &Path) -> Result<(), BackupError> {
    let io = |source| BackupError::Io {
        path: dst.to_owned(),
        source,
    };
    OpenOptions::new()
        .write(true)
        .open(dst)
        .and_then(|f| f.set_len(0))
        .map_err(io)?;
    let name = dst.to_str().ok_or_else(|| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "SQLite takes a UTF-8 file name",
        ))
    })?;
    conn.execute("VACUUM INTO ?1", [name])
        .map(drop)
        .map_err(|source| BackupError::Copy {
            path: dst.to_owned(),
            source,
        })
}
