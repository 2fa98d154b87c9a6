//! Opening a store file: refuse what is not ours before writing a byte, then migrate.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::error::OpenError;

/// `PRAGMA application_id` of an acm store: "ACM1".
pub(crate) const APPLICATION_ID: i32 = 0x4143_4D31;

/// Migrations in order; migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[include_str!("schema/0001_events.sql")];

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

/// Takes the one-writer lock: an advisory `flock` on the database file itself (independent of
/// `SQLite`'s own `fcntl` locks). The kernel drops it when the process dies.
fn lock(path: &Path) -> Result<File, OpenError> {
    let file = OpenOptions::new()
        .read(true)
        .open(path)
        .map_err(|source| OpenError::Io {
            path: path.to_owned(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(OpenError::Locked {
            path: path.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(OpenError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Opens the writer connection: checks the file is empty or an acm store of a known schema
/// (reading only), then sets WAL and FULL synchronous and applies missing migrations.
pub(crate) fn open_writer(path: &Path) -> Result<(Connection, File), OpenError> {
    let err = sqlite(path);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(&err)?;
    if conn.is_readonly(rusqlite::MAIN_DB).map_err(&err)? {
        return Err(OpenError::ReadOnly {
            path: path.to_owned(),
        });
    }
    let user_version = inspect(&conn, path)?;
    // Accepted, and ours alone once locked: from here on the file is written.
    let lock = lock(path)?;
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
    let fresh = application_id == 0 && user_version == 0 && objects == 0;
    if !fresh && application_id != APPLICATION_ID {
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
    Ok(user_version)
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

/// Opens a read connection (used by the reader threads).
pub(crate) fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

/// The absolute form of `path`, for error messages and reader connections.
pub(crate) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}
