//! Reading a store file without writing a byte beside it, for an auditor or a backup: while
//! its server runs, after it was closed, or after it crashed.
//!
//! A plain read-only `SQLite` connection to a WAL database creates a `-wal` and a `-shm`
//! beside it when they are missing, and never deletes them. So:
//! - **no `-wal`** (a closed store): the file alone holds every commit, and it is read with
//!   `immutable=1`, which makes `SQLite` read the file and nothing else. The file must not
//!   change meanwhile: if a server opened the store during the read (a `-wal` appeared, or the
//!   file's size or times moved), the read is done again as below;
//! - **a `-wal`** (a running server, or a crashed store): the reader needs the WAL and its
//!   `-shm` index, and reads with an ordinary read-only connection, which never checkpoints.
//!   A `-shm` (or an empty `-wal`) that did not exist before is deleted afterwards, if no acm
//!   server has the store open by then (its `flock` tells) and no other reader of this process
//!   is reading it.

use std::fmt::Write;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::error::OpenError;

/// Longest wait for a lock another connection holds for a moment.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// What is beside the database file, and the file's identity and times.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Files {
    wal: bool,
    shm: bool,
    /// Inode, size, modification and change times (seconds and nanoseconds).
    db: (u64, u64, i64, i64, i64, i64),
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

fn exists(path: &Path) -> Result<bool, OpenError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(OpenError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

impl Files {
    fn look(path: &Path) -> Result<Self, OpenError> {
        let m = std::fs::metadata(path).map_err(|source| OpenError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            wal: exists(&beside(path, "-wal"))?,
            shm: exists(&beside(path, "-shm"))?,
            db: (
                m.ino(),
                m.len(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
            ),
        })
    }
}

/// `path` as a `file:` URI with `immutable=1` (the path percent-encoded).
fn immutable_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(char::from(b));
        } else {
            let _ = write!(uri, "%{b:02X}");
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// Opens `path` read-only, checks that it is an acm store of a schema this build knows, and
/// runs `read` on the connection; see the module's doc for what is read and what is left.
pub(crate) fn read<T, E>(
    path: &Path,
    mut read: impl FnMut(&Connection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<OpenError>,
{
    let path = crate::open::absolute(path);
    if path.is_dir() {
        return Err(OpenError::IsADirectory { path }.into());
    }
    if !path.is_file() {
        return Err(OpenError::NoSuchFile { path }.into());
    }
    let Some(key) = crate::open::file_key(&path)? else {
        return Err(OpenError::Io {
            path,
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        }
        .into());
    };
    let live = {
        let mut registry = crate::open::registry();
        // A foreign file is refused before any connection could roll back its hot journal.
        // Not when this process is reading the file already: closing the descriptor the check
        // opens would drop that reader's POSIX locks (and the file passed the check then).
        if !registry.in_use(key) {
            crate::open::check_header(&path)?;
        }
        registry.enter(key);
        registry.has_store(key)
    };
    let (before, result) = match Files::look(&path) {
        Ok(before) => {
            let result = read_beside(&path, &before, live, &mut read);
            (Some(before), result)
        }
        Err(e) => (None, Err(e.into())),
    };
    let mut registry = crate::open::registry();
    if registry.leave(key)
        && let Some(before) = &before
    {
        // Under the registry's lock: no store of this process opens the file meanwhile.
        clean_up(&path, before);
    }
    drop(registry);
    result
}

/// Reads from the file alone when nothing is beside it, else (or when the file changed during
/// that read) beside its WAL.
fn read_beside<T, E>(
    path: &Path,
    before: &Files,
    live: bool,
    read: &mut impl FnMut(&Connection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<OpenError>,
{
    if !before.wal && !live {
        let result = with_connection(path, immutable_uri(path), OpenFlags::SQLITE_OPEN_URI, read);
        if Files::look(path).is_ok_and(|now| now == *before) {
            return result;
        }
        tracing::debug!(
            path = %path.display(),
            "the store changed while it was read from its file alone; reading it beside its WAL"
        );
    }
    with_connection(path, path, OpenFlags::empty(), read)
}

fn with_connection<T, E>(
    path: &Path,
    open: impl AsRef<Path>,
    flags: OpenFlags,
    read: &mut impl FnMut(&Connection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<OpenError>,
{
    let sqlite = |source| OpenError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open_with_flags(
        open,
        flags | OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    // Beside a server a reader may have to wait a moment: while the first connection after a
    // crash rebuilds the `-shm`, or while a checkpoint restarts the `-wal`.
    conn.busy_timeout(BUSY_WAIT).map_err(sqlite)?;
    if crate::open::inspect(&conn, path)? == 0 {
        // An empty database: nothing of acm's in it.
        return Err(OpenError::NotAnAcmStore {
            path: path.to_owned(),
            application_id: 0,
            user_version: 0,
        }
        .into());
    }
    let t = read(&conn)?;
    conn.close().map_err(|(_, e)| sqlite(e))?;
    Ok(t)
}

/// Deletes the `-shm`, and an empty `-wal`, that the read created, unless an acm server has
/// the store open by now (they are its files then). A `-wal` with frames in it is never
/// deleted: it may hold commits. The caller holds the registry's lock, and no connection of
/// this process is on the file, so the descriptor opened here drops no one's locks.
fn clean_up(path: &Path, before: &Files) {
    let created = |suffix: &str, existed: bool| {
        let p = beside(path, suffix);
        (!existed && p.exists()).then_some(p)
    };
    let shm = created("-shm", before.shm);
    let wal =
        created("-wal", before.wal).filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() == 0));
    if shm.is_none() && wal.is_none() {
        return;
    }
    // Held while deleting: a server that starts meanwhile is refused (`Locked`) for these few
    // microseconds, rather than find its `-shm` deleted under it.
    let unused = File::open(path).and_then(|f| match f.try_lock_shared() {
        Ok(()) => Ok(Some(f)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    });
    match unused {
        Ok(Some(_held)) => {
            for p in [shm, wal].into_iter().flatten() {
                if let Err(error) = std::fs::remove_file(&p)
                    && error.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(path = %p.display(), %error, "could not delete a file the read created");
                }
            }
        }
        Ok(None) => tracing::debug!(
            path = %path.display(),
            "an acm server opened the store during the read; its -shm and -wal are left to it"
        ),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "could not check the store's lock");
        }
    }
}
