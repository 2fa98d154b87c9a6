//! `verify_file` (`acm audit verify`) is read-only: the directory of the store is the same
//! before and after — no `-wal` or `-shm` left behind, no byte of the database or of its
//! `-wal` changed — whether the store is closed, crashed, beside a running server, or
//! refused; and each refusal is a typed [`OpenError`].
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use acm_core::testkit::conformance::{TestEvent, event, stream};
use acm_core::{EventStore, ExpectedVersion};
use acm_core::{GlobalPosition, Version};
use acm_store_sqlite::{OpenError, SCHEMA_VERSION, SqliteStore, verify_file};
use futures_executor::block_on;
use rusqlite::Connection;
use rusqlite::config::DbConfig;

mod support;
use support::{append_events, beside, names, snapshot};

type Store = SqliteStore<TestEvent>;

/// Runs `verify_file(path)` and asserts that its directory is as it was: the same files, each
/// with the same bytes — except an existing `-shm`, `SQLite`'s shared-memory index, which a
/// reader updates (it holds no stored data).
fn verified(path: &Path) -> Result<acm_store_sqlite::ChainReport, OpenError> {
    let dir = path.parent().unwrap();
    let before = snapshot(dir);
    let result = verify_file(path);
    let after = snapshot(dir);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "verify ({result:?}) created or deleted files"
    );
    for (name, bytes) in &before {
        if !name.ends_with("-shm") {
            assert!(after[name] == *bytes, "verify ({result:?}) rewrote {name}");
        }
    }
    result
}

/// A store holding `n` events, read from (so that its readers hold the file), then closed.
fn closed_store(path: &Path, n: u64) {
    let store = Store::open(path).unwrap();
    block_on(async {
        append_events(&store, 1, 1, n).await;
        assert!(store.verify().await.unwrap().is_intact());
        store.close().await.unwrap();
    });
}

/// A crashed store (its server killed), its commits in the `-wal` and no `-shm` beside it (as
/// when the two files were copied without it): the read needs a `-shm`, and deletes the one it
/// made; the database file and the `-wal` are left byte for byte, and the commits in the
/// `-wal` are verified. With a `-shm` there, it is kept.
#[test]
fn verify_of_a_crashed_store_deletes_only_the_shm_it_made() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acm.db");
    let (mut child, mut acked) = server(&path);
    let last = acked.nth(40).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    fs::remove_file(beside(&path, "-shm")).unwrap();
    assert_eq!(names(dir.path()), ["acm.db", "acm.db-wal"]);
    let report = verified(&path).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert!(
        report.checked >= last,
        "{report:?}: {last} were acknowledged"
    );

    // A reader of the crashed store left its -shm (SQLite's index of the -wal): it stays.
    Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
        .query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
        .unwrap();
    assert_eq!(names(dir.path()), ["acm.db", "acm.db-shm", "acm.db-wal"]);
    assert_eq!(verified(&path).unwrap(), report);
}

/// A store closed with `close`, and one dropped after reads: `verify_file` reads each from its
/// file alone, and creates no `-wal` or `-shm` beside it, not even for the time of the read.
#[test]
fn verify_leaves_a_closed_store_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acm.db");
    closed_store(&path, 30);
    assert_eq!(names(dir.path()), ["acm.db"]);
    // Not even for a moment is a file created beside it: the directory is not modified.
    let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    fs::File::open(dir.path())
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    let report = verified(&path).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.checked, 30);
    assert_eq!(
        fs::metadata(dir.path()).unwrap().modified().unwrap(),
        long_ago,
        "files were created beside the closed store, and deleted again"
    );

    let dropped = tempfile::tempdir().unwrap();
    let path = dropped.path().join("acm.db");
    {
        let store = Store::open(&path).unwrap();
        block_on(append_events(&store, 1, 1, 5));
        assert!(block_on(store.verify()).unwrap().is_intact());
    }
    // The drop does not wait: the writer thread closes the store on its own.
    support::wait_until_closed_after_drop(&path);
    assert_eq!(names(dropped.path()), ["acm.db"]);
    assert_eq!(verified(&path).unwrap().checked, 5);
}

/// Set in the child process of [`verify_beside_a_running_server_sees_its_commits`]: the store
/// the child appends to until it is killed.
const WRITER_CHILD: &str = "ACM_VERIFY_FILE_WRITER_DB";

/// Run by [`verify_beside_a_running_server_sees_its_commits`] in a child process: appends one
/// event at a time, printing each acknowledged position.
#[test]
#[ignore = "run as a child process by verify_beside_a_running_server_sees_its_commits"]
fn writer_child() {
    let Some(path) = std::env::var_os(WRITER_CHILD) else {
        return;
    };
    let store = Store::open(PathBuf::from(path)).unwrap();
    let s = stream(1);
    let deadline = Instant::now() + Duration::from_mins(1);
    let mut out = std::io::stdout().lock();
    for i in 1.. {
        let appended = block_on(store.append(
            s,
            ExpectedVersion::Exact(Version(i - 1)),
            vec![event(s, i, i)],
        ))
        .unwrap();
        writeln!(out, "{}", appended.first_position.0).unwrap();
        out.flush().unwrap();
        if Instant::now() > deadline {
            break;
        }
    }
}

/// A server (the child) appending to the store at `path`, and the positions it acknowledges.
fn server(path: &Path) -> (std::process::Child, impl Iterator<Item = u64>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "writer_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WRITER_CHILD, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let acked = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .filter_map(|l| l.ok()?.trim().parse::<u64>().ok());
    (child, acked)
}

/// Beside a server (another process) that keeps appending: `verify_file` verifies at least
/// every commit acknowledged before it started, and creates no file (the `-wal` and `-shm`
/// are the server's).
#[test]
fn verify_beside_a_running_server_sees_its_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acm.db");
    let (mut child, mut acked) = server(&path);
    let mut last = 0;
    for round in 0..3 {
        // Positions the child acknowledged before this verify began.
        last = acked.by_ref().take(20).last().unwrap();
        let before = names(dir.path());
        assert_eq!(before, ["acm.db", "acm.db-shm", "acm.db-wal"]);
        let report = verify_file(&path).unwrap();
        assert!(report.is_intact(), "round {round}: {report:?}");
        assert!(
            report.checked >= last,
            "round {round}: {} verified, {last} acknowledged before",
            report.checked
        );
        assert_eq!(names(dir.path()), before, "round {round}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(last >= 60);
}

/// Beside a store open in this process (a server auditing its own store): verified, nothing
/// created, and the store keeps working and closes whole.
#[test]
fn verify_beside_a_store_of_this_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acm.db");
    let store = Store::open(&path).unwrap();
    block_on(append_events(&store, 1, 1, 8));
    let before = names(dir.path());
    let report = verify_file(&path).unwrap();
    assert_eq!((report.checked, report.is_intact()), (8, true));
    assert_eq!(names(dir.path()), before);
    block_on(append_events(&store, 1, 9, 2));
    assert_eq!(block_on(store.head()).unwrap(), GlobalPosition(10));
    block_on(store.close()).unwrap();
    assert_eq!(names(dir.path()), ["acm.db"]);
    assert_eq!(verified(&path).unwrap().checked, 10);
}

/// A store of a newer schema is refused with `NewerSchema`, and left as it was: when the
/// header says so, and when only its `-wal` does (with and without a `-shm` beside it).
#[test]
fn verify_refuses_a_newer_schema_and_leaves_it_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acm.db");
    closed_store(&path, 3);
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    assert_eq!(names(dir.path()), ["acm.db"]);
    assert!(matches!(
        verified(&path),
        Err(OpenError::NewerSchema { found, supported, .. })
            if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION
    ));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acm.db");
    closed_store(&path, 3);
    let conn = Connection::open(&path).unwrap();
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    assert_eq!(names(dir.path()), ["acm.db", "acm.db-shm", "acm.db-wal"]);
    assert!(matches!(
        verified(&path),
        Err(OpenError::NewerSchema { .. })
    ));
    fs::remove_file(beside(&path, "-shm")).unwrap();
    assert!(matches!(
        verified(&path),
        Err(OpenError::NewerSchema { .. })
    ));
    assert_eq!(names(dir.path()), ["acm.db", "acm.db-wal"]);
}

/// Another program's database with a hot journal beside it is refused with `NotAnAcmStore`,
/// as `open` refuses it, before `SQLite` could roll the journal back.
#[test]
fn verify_refuses_another_programs_database_with_a_hot_journal() {
    let src = tempfile::tempdir().unwrap();
    let src_path = src.path().join("acm.db");
    let conn = Connection::open(&src_path).unwrap();
    conn.execute_batch(
        "PRAGMA cache_size = 1; CREATE TABLE t(x);
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200)
         INSERT INTO t SELECT randomblob(1000) FROM c;
         BEGIN; UPDATE t SET x = randomblob(1000);",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acm.db");
    fs::copy(&src_path, &path).unwrap();
    fs::copy(src.path().join("acm.db-journal"), beside(&path, "-journal")).unwrap();
    conn.execute_batch("ROLLBACK").unwrap();
    drop(conn);
    match verified(&path) {
        Err(OpenError::NotAnAcmStore {
            application_id: 0,
            user_version: 0,
            ..
        }) => {}
        other => panic!("expected NotAnAcmStore, got {other:?}"),
    }
}

/// An acm store whose `user_version` no acm build writes (-1, or 0 beside its tables) is
/// refused with `UnknownSchema`, by `verify_file` as by `open` (see `bad_files.rs`).
#[test]
fn verify_refuses_a_schema_version_no_acm_build_writes() {
    for user_version in [-1, 0] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acm.db");
        closed_store(&path, 2);
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", user_version)
            .unwrap();
        match verified(&path) {
            Err(OpenError::UnknownSchema {
                path: p,
                user_version: found,
            }) => assert_eq!((p, found), (path.clone(), user_version)),
            other => panic!("user_version {user_version}: expected UnknownSchema, got {other:?}"),
        }
    }
}
