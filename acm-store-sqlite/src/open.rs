//! Opening a store file: refuse what is not ours before writing a byte, then migrate.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use crate::error::OpenError;

/// `PRAGMA application_id` of an acm store: "ACM1".
pub(crate) const APPLICATION_ID: i32 = 0x4143_4D31;

/// Migrations in order; migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("schema/0001_events.sql"),
    include_str!("schema/0002_projection_state.sql"),
    include_str!("schema/0003_views.sql"),
];

/// The schema version this build writes.
#[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)] // a handful of migrations
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> OpenError + '_ {
    move |source| {
        if source.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
            OpenError::NotADatabase {
                path: path.to_owned(),
            }
        } else {
            OpenError::Sqlite {
                path: path.to_owned(),
                source,
            }
        }
    }
}

/// Checks the path before `SQLite` sees it, so each refusal gets its own error.
pub(crate) fn check_path(path: &Path) -> Result<(), OpenError> {
    let owned = || path.to_owned();
    let dir = match path.parent() {
        Some(d) if d.as_os_str().is_empty() => Path::new("."),
        Some(d) => d,
        None => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(OpenError::MissingDirectory { path: owned() });
    }
    // The permission bits are checked rather than trusted to the OS: a privileged process
    // would write through them. The directory must be writable too: WAL keeps its `-wal` and
    // `-shm` files beside the database.
    let writable = |p: &Path| match std::fs::metadata(p) {
        Ok(m) => Ok(Some(!m.permissions().readonly())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(OpenError::Io {
            path: owned(),
            source,
        }),
    };
    match (writable(path)?, writable(dir)?) {
        (Some(false), _) | (_, Some(false)) => Err(OpenError::ReadOnly { path: owned() }),
        _ => Ok(()),
    }
}

/// A file's identity: (device, inode).
pub(crate) type FileKey = (u64, u64);

/// This process's use of store files, by (device, inode). A second open is refused before
/// any file descriptor is opened on the database, because closing one would drop the POSIX
/// locks `SQLite`'s own connections hold on it. Read-only readers ([`crate::verify_file`],
/// [`crate::backup_file`]) are counted for the same reason: none of them opens a descriptor of
/// its own on a file that a store or another reader of this process is reading.
#[derive(Debug)]
pub(crate) struct Registry {
    stores: BTreeSet<FileKey>,
    readers: BTreeMap<FileKey, usize>,
}

impl Registry {
    /// Whether a store of this process has the file open.
    pub(crate) fn has_store(&self, key: FileKey) -> bool {
        self.stores.contains(&key)
    }

    /// Whether a store or a read-only reader of this process has `SQLite` connections on the
    /// file.
    pub(crate) fn in_use(&self, key: FileKey) -> bool {
        self.has_store(key) || self.readers.contains_key(&key)
    }

    /// Counts a read-only reader in.
    pub(crate) fn enter(&mut self, key: FileKey) {
        *self.readers.entry(key).or_default() += 1;
    }

    /// Counts a read-only reader out; whether the file is then unused by this process.
    pub(crate) fn leave(&mut self, key: FileKey) -> bool {
        if let Some(n) = self.readers.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.readers.remove(&key);
            }
        }
        !self.in_use(key)
    }
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    stores: BTreeSet::new(),
    readers: BTreeMap::new(),
});

pub(crate) fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn file_key(path: &Path) -> Result<Option<FileKey>, OpenError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some((m.dev(), m.ino()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(OpenError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The one-writer lock of an open store: an advisory `flock` on the database file (the
/// kernel drops it when the process dies) and this process's registration.
#[derive(Debug)]
pub(crate) struct StoreLock {
    _file: File,
    key: FileKey,
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        registry().stores.remove(&self.key);
    }
}

/// How often, and how far apart, a held lock is tried again before the open is refused.
const LOCK_ATTEMPTS: u32 = 25;
const LOCK_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// Takes the lock, creating the file when it does not exist yet (an empty file is a new
/// database to `SQLite`).
fn lock(path: &Path, registry: &mut Registry) -> Result<StoreLock, OpenError> {
    let io = |source| OpenError::Io {
        path: path.to_owned(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io)?;
    // No store of this process holds the file (the caller checked the registry), yet the
    // lock can be held for a moment after a close: a child this process is spawning holds a
    // copy of the closed descriptor until it execs. Another process holding it for longer is
    // a second writer, refused.
    let mut attempts = 0;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if attempts < LOCK_ATTEMPTS => {
                attempts += 1;
                std::thread::sleep(LOCK_PAUSE);
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(OpenError::Locked {
                    path: path.to_owned(),
                });
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(io(source)),
        }
    }
    let m = file.metadata().map_err(io)?;
    let key = (m.dev(), m.ino());
    registry.stores.insert(key);
    Ok(StoreLock { _file: file, key })
}

/// The first 100 bytes of a `SQLite` file, read without `SQLite`: a foreign file is refused
/// before any connection could roll back its journal or checkpoint its WAL.
pub(crate) fn check_header(path: &Path) -> Result<(), OpenError> {
    let io = |source| OpenError::Io {
        path: path.to_owned(),
        source,
    };
    let mut header = [0u8; 100];
    let mut read = 0;
    match File::open(path) {
        Ok(mut f) => {
            while read < header.len() {
                match f.read(&mut header[read..]) {
                    Ok(0) => break,
                    Ok(k) => read += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(source) => return Err(io(source)),
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(io(source)),
    }
    if read == 0 {
        return Ok(());
    }
    if read < header.len() || &header[..16] != b"SQLite format 3\0" {
        return Err(OpenError::NotADatabase {
            path: path.to_owned(),
        });
    }
    let be = |at: usize| {
        i32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let (schema_cookie, user_version, application_id) = (be(40), be(60), be(68));
    // The schema cookie counts schema changes: 0 means no table was ever created.
    judge(path, application_id, user_version, schema_cookie != 0).map(drop)
}

/// Accepts an empty database or an acm store of a schema this build knows.
fn judge(
    path: &Path,
    application_id: i32,
    user_version: i32,
    has_schema: bool,
) -> Result<i32, OpenError> {
    let empty = application_id == 0 && user_version == 0 && !has_schema;
    if !empty && application_id != APPLICATION_ID {
        return Err(OpenError::NotAnAcmStore {
            path: path.to_owned(),
            application_id,
            user_version,
        });
    }
    if user_version > SCHEMA_VERSION {
        return Err(OpenError::NewerSchema {
            path: path.to_owned(),
            found: user_version,
            supported: SCHEMA_VERSION,
        });
    }
    // Every acm build sets the version with the tables, in one transaction: tables without a
    // version, or a negative one, were written by something else, and migrating would either
    // fail on the tables that exist or build on ones it does not know.
    if user_version < 0 || (user_version == 0 && has_schema) {
        return Err(OpenError::UnknownSchema {
            path: path.to_owned(),
            user_version,
        });
    }
    Ok(user_version)
}

/// Opens the writer connection: refuses a foreign file from its header, locks it, checks it
/// through `SQLite` reading only and with no checkpoint on close (the WAL may hold a newer
/// schema than the header says), then sets WAL and FULL synchronous and applies the missing
/// migrations.
pub(crate) fn open_writer(path: &Path) -> Result<(Connection, StoreLock), OpenError> {
    let err = sqlite(path);
    let mut registry = registry();
    if file_key(path)?.is_some_and(|key| registry.has_store(key)) {
        return Err(OpenError::Locked {
            path: path.to_owned(),
        });
    }
    check_header(path)?;
    let lock = lock(path, &mut registry)?;
    drop(registry);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(&err)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .map_err(&err)?;
    if conn.is_readonly(rusqlite::MAIN_DB).map_err(&err)? {
        return Err(OpenError::ReadOnly {
            path: path.to_owned(),
        });
    }
    let user_version = inspect(&conn, path)?;
    // Accepted: from here on the file is written.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false)
        .map_err(&err)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(&err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OpenError::Sqlite {
            path: path.to_owned(),
            source: rusqlite::Error::InvalidParameterName(format!("journal_mode stayed {mode}")),
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(&err)?;
    keep_plans(&conn).map_err(&err)?;
    conn.set_prepared_statement_cache_capacity(32);
    migrate(&conn, user_version).map_err(&err)?;
    Ok((conn, lock))
}

/// Checks, reading only, that `conn` holds nothing or an acm store of a schema this build
/// knows; returns its schema version.
pub(crate) fn inspect(conn: &Connection, path: &Path) -> Result<i32, OpenError> {
    let err = sqlite(path);
    // Reads only: a file that is not a database fails here with SQLITE_NOTADB.
    let application_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(&err)?;
    let user_version: i32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(&err)?;
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(&err)?;
    judge(path, application_id, user_version, objects != 0)
}

fn migrate(conn: &Connection, from: i32) -> rusqlite::Result<()> {
    let from = usize::try_from(from).unwrap_or(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(from) {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let applied = conn.execute_batch(sql).and_then(|()| {
            conn.pragma_update(
                None,
                "user_version",
                i64::try_from(i + 1).unwrap_or(i64::MAX),
            )
        });
        match applied {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        tracing::info!(version = i + 1, "acm store schema migrated");
    }
    Ok(())
}

/// Keeps cached statements prepared. rusqlite clears a statement's bindings when it returns
/// to the cache, and `SQLite` then expires every statement whose plan may depend on a bound
/// value (`LIMIT ?`, `column = ?` on a non-unique index): without the query planner stability
/// guarantee each of our queries was parsed and planned again on every run (measured: 6.3 µs
/// instead of 2.1 µs for `pending_for`).
fn keep_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map(drop)
}

/// Opens a read connection (used by the reader threads).
pub(crate) fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    keep_plans(&conn)?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

/// The absolute form of `path`, for error messages and reader connections.
pub(crate) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}
