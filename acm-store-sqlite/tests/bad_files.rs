//! Files that are not ours, or that we may not write: each is refused with its own typed
//! [`OpenError`], and nothing is written — the file's bytes and its directory's listing
//! (no `-wal`, `-shm` or `-journal` beside it) are the same before and after.
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use acm_core::testkit::conformance::{TestEvent, event, stream};
use acm_core::{EventStore, ExpectedVersion, StoreError};
use acm_core::{GlobalPosition, Version};
use acm_store_sqlite::{OpenError, SCHEMA_VERSION, SqliteStore};
use futures_executor::block_on;
use futures_util::StreamExt;
use rusqlite::Connection;
use rusqlite::config::DbConfig;
use tempfile::TempDir;

mod support;
use support::snapshot;

type Store = SqliteStore<TestEvent>;

/// Opens `path`, expecting a refusal; asserts that nothing in its directory changed: no file
/// created, deleted or rewritten. (The bytes of an existing `-shm` may change: it is `SQLite`'s
/// shared-memory index, which any reader updates, not stored data.)
fn refused(path: &Path) -> OpenError {
    let dir = path.parent().unwrap();
    let before = snapshot(dir);
    let err = Store::open(path).expect_err("the store must refuse this file");
    let after = snapshot(dir);
    let created: Vec<&String> = after.keys().filter(|f| !before.contains_key(*f)).collect();
    let deleted: Vec<&String> = before.keys().filter(|f| !after.contains_key(*f)).collect();
    let rewritten: Vec<&String> = before
        .iter()
        .filter(|(f, bytes)| !f.ends_with("-shm") && after.get(*f).is_some_and(|b| b != *bytes))
        .map(|(f, _)| f)
        .collect();
    assert!(
        created.is_empty() && deleted.is_empty() && rewritten.is_empty(),
        "refused ({err}), yet files were created {created:?}, deleted {deleted:?}, \
         rewritten {rewritten:?}"
    );
    err
}

/// A small deterministic generator (xorshift64*).
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

fn file_in(dir: &TempDir) -> PathBuf {
    dir.path().join("acm.db")
}

/// A store at `path` holding `n` events in stream 1.
fn store_with(path: &Path, n: u64) {
    let store = Store::open(path).unwrap();
    for i in 1..=n {
        let s = stream(1);
        block_on(store.append(
            s,
            ExpectedVersion::Exact(Version(i - 1)),
            vec![event(s, i, i)],
        ))
        .unwrap();
    }
    // Closed, not dropped: a drop does not wait for the store to let go of the file.
    block_on(store.close()).unwrap();
}

fn all_events(store: &Store) -> Vec<(u64, u64, u64)> {
    block_on(
        store
            .read_all(GlobalPosition::START)
            .map(|e| {
                let e = e.unwrap();
                (e.position.0, e.version.0, e.payload.n)
            })
            .collect::<Vec<_>>(),
    )
}

/// Random bytes get `NotADatabase`.
#[test]
fn random_bytes_are_not_a_database() {
    for (seed, len) in [(1, 4096), (2, 100), (3, 65_536), (4, 7)] {
        let dir = tempfile::tempdir().unwrap();
        let path = file_in(&dir);
        fs::write(&path, random_bytes(seed, len)).unwrap();
        match refused(&path) {
            OpenError::NotADatabase { path: p } => assert_eq!(p, path),
            other => panic!("{len} random bytes: expected NotADatabase, got {other:?}"),
        }
    }
}

/// A text file (a config file given by mistake, a short one and a long one) gets
/// `NotADatabase`.
#[test]
fn a_text_file_is_not_a_database() {
    let long = "[server]\nlisten = \"0.0.0.0:8443\"\n".repeat(300);
    for text in ["hello\n", "SQLite format 2\n", long.as_str()] {
        let dir = tempfile::tempdir().unwrap();
        let path = file_in(&dir);
        fs::write(&path, text).unwrap();
        assert!(
            matches!(refused(&path), OpenError::NotADatabase { .. }),
            "{text:?}"
        );
    }
}

/// Another program's `SQLite` database (no application id, one table) gets `NotAnAcmStore`
/// naming its application id and user version.
#[test]
fn another_programs_database_is_not_an_acm_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir);
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")
            .unwrap();
    }
    match refused(&path) {
        OpenError::NotAnAcmStore {
            path: p,
            application_id: 0,
            user_version: 0,
        } => assert_eq!(p, path),
        other => panic!("expected NotAnAcmStore, got {other:?}"),
    }
}

/// A database with another application id (and a user version) gets `NotAnAcmStore`, also
/// when it has no table at all and when it is in WAL mode (reading it must not leave a
/// `-wal` or `-shm` behind).
#[test]
fn a_database_with_another_application_id_is_not_an_acm_store() {
    for (wal, table) in [(false, true), (false, false), (true, true), (true, false)] {
        let dir = tempfile::tempdir().unwrap();
        let path = file_in(&dir);
        {
            let conn = Connection::open(&path).unwrap();
            if wal {
                let mode: String = conn
                    .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
                    .unwrap();
                assert_eq!(mode, "wal");
            }
            conn.execute_batch("PRAGMA application_id = 0x47504B47; PRAGMA user_version = 7;")
                .unwrap();
            if table {
                conn.execute_batch("CREATE TABLE gpkg(x)").unwrap();
            }
        }
        match refused(&path) {
            OpenError::NotAnAcmStore {
                application_id: 0x4750_4B47,
                user_version: 7,
                ..
            } => {}
            other => panic!("wal {wal}, table {table}: expected NotAnAcmStore, got {other:?}"),
        }
    }
}

/// A database with no application id and no table but a user version (another program's,
/// freshly made) is not an empty file: `NotAnAcmStore`.
#[test]
fn a_database_with_only_a_user_version_is_not_an_acm_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir);
    Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 3")
        .unwrap();
    assert!(matches!(
        refused(&path),
        OpenError::NotAnAcmStore {
            application_id: 0,
            user_version: 3,
            ..
        }
    ));
}

/// An acm store of a newer schema gets `NewerSchema { found, supported }`.
#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir);
    store_with(&path, 3);
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    match refused(&path) {
        OpenError::NewerSchema {
            path: p,
            found,
            supported,
        } => {
            assert_eq!(p, path);
            assert_eq!(found, SCHEMA_VERSION + 1);
            assert_eq!(supported, SCHEMA_VERSION);
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
}

/// An acm store whose `user_version` no acm build writes — negative, or 0 beside the acm
/// tables (acm sets it in the transaction that creates them) — gets `UnknownSchema` naming the
/// version, not a migration that fails on the tables already there.
#[test]
fn a_schema_version_no_acm_build_writes_is_refused() {
    for user_version in [-1, 0] {
        let dir = tempfile::tempdir().unwrap();
        let path = file_in(&dir);
        store_with(&path, 2);
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", user_version)
            .unwrap();
        match refused(&path) {
            OpenError::UnknownSchema {
                path: p,
                user_version: found,
            } => assert_eq!((p, found), (path.clone(), user_version)),
            other => panic!("user_version {user_version}: expected UnknownSchema, got {other:?}"),
        }
    }
}

/// A connection that leaves what it wrote in the `-wal` when it closes: the files are then as
/// a program leaves them when it is killed, or loses power, before it checkpoints.
fn without_checkpoint(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .unwrap();
    conn
}

fn wal_len(path: &Path) -> u64 {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    fs::metadata(wal).map_or(0, |m| m.len())
}

/// A newer acm's store as that acm left it when it was killed (an upgrade that went wrong,
/// before going back to this build): its last commits still in the `-wal` beside it. Refused
/// with `NewerSchema`, and nothing is written: the `-wal` is neither folded into the file nor
/// deleted, the `-shm` is not deleted.
#[test]
fn a_newer_schema_with_a_wal_is_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir);
    store_with(&path, 3);
    without_checkpoint(&path)
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    assert!(wal_len(&path) > 0, "the setup should leave a -wal");
    assert!(matches!(
        refused(&path),
        OpenError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1
    ));
}

/// Another program's WAL-mode database whose last commits are still in its `-wal` (that
/// program was killed): refused with `NotAnAcmStore`, and its three files are left as they
/// are.
#[test]
fn another_programs_database_with_a_wal_is_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir);
    {
        let conn = without_checkpoint(&path);
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.execute_batch(
            "PRAGMA application_id = 0x47504B47; CREATE TABLE t(x); INSERT INTO t VALUES (1);",
        )
        .unwrap();
    }
    assert!(wal_len(&path) > 0, "the setup should leave a -wal");
    assert!(matches!(
        refused(&path),
        OpenError::NotAnAcmStore {
            application_id: 0x4750_4B47,
            ..
        }
    ));
}

/// Another program's database (rollback journal) with a hot journal beside it: that program
/// was killed in the middle of a transaction that had already written some pages to the file.
/// Refused with `NotAnAcmStore`, and left as it is: not rolled back, the journal not deleted.
#[test]
fn another_programs_database_with_a_hot_journal_is_left_as_it_is() {
    let src = tempfile::tempdir().unwrap();
    let src_path = file_in(&src);
    let conn = Connection::open(&src_path).unwrap();
    conn.execute_batch(
        "PRAGMA cache_size = 1; CREATE TABLE t(x);
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200)
         INSERT INTO t SELECT randomblob(1000) FROM c;
         BEGIN; UPDATE t SET x = randomblob(1000);",
    )
    .unwrap();
    // A copy of the files as they are mid-transaction is what the killed program left.
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir);
    let journal = dir.path().join("acm.db-journal");
    fs::copy(&src_path, &path).unwrap();
    fs::copy(src.path().join("acm.db-journal"), &journal).unwrap();
    conn.execute_batch("ROLLBACK").unwrap();
    drop(conn);
    assert!(fs::metadata(&journal).unwrap().len() > 0);
    assert!(matches!(
        refused(&path),
        OpenError::NotAnAcmStore {
            application_id: 0,
            ..
        }
    ));
}

/// A read-only store file gets `ReadOnly` (checked from the permission bits: these tests may
/// run as root, who could write anyway); once writable again it opens with its events.
#[test]
fn a_read_only_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir);
    store_with(&path, 3);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
    match refused(&path) {
        OpenError::ReadOnly { path: p } => assert_eq!(p, path),
        other => panic!("expected ReadOnly, got {other:?}"),
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(all_events(&store), [(1, 1, 1), (2, 2, 2), (3, 3, 3)]);
}

/// A new file in a read-only directory gets `ReadOnly`, and no file is created.
#[test]
fn a_new_file_in_a_read_only_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("ro");
    fs::create_dir(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o555)).unwrap();
    let path = sub.join("acm.db");
    let err = refused(&path);
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).unwrap();
    assert!(matches!(err, OpenError::ReadOnly { .. }), "{err:?}");
    assert!(snapshot(&sub).is_empty());
}

/// A path whose directory does not exist gets `MissingDirectory`; the directory is not
/// created.
#[test]
fn a_missing_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no").join("such");
    let path = missing.join("acm.db");
    let before = snapshot(dir.path());
    match Store::open(&path) {
        Err(OpenError::MissingDirectory { path: p }) => assert_eq!(p, path),
        other => panic!("expected MissingDirectory, got {other:?}"),
    }
    assert!(!missing.exists());
    assert!(!dir.path().join("no").exists());
    assert_eq!(snapshot(dir.path()), before);
}

/// A second open while a store holds the file gets `Locked`; the first store keeps working;
/// once it is closed the file opens again with everything it wrote.
#[test]
fn a_second_open_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir);
    let first = Store::open(&path).unwrap();
    let s = stream(1);
    block_on(first.append(s, ExpectedVersion::NoStream, vec![event(s, 1, 1)])).unwrap();

    match Store::open(&path) {
        Err(OpenError::Locked { path: p }) => assert_eq!(p, path),
        other => panic!("expected Locked, got {other:?}"),
    }
    // The same through a relative spelling of the path.
    let relative = PathBuf::from(format!("{}/./acm.db", dir.path().display()));
    assert!(matches!(
        Store::open(&relative),
        Err(OpenError::Locked { .. })
    ));

    // The refusal did not disturb the first store.
    let appended =
        block_on(first.append(s, ExpectedVersion::Exact(Version(1)), vec![event(s, 2, 2)]))
            .unwrap();
    assert_eq!(appended.first_position, GlobalPosition(2));
    assert!(block_on(first.verify()).unwrap().is_intact());

    block_on(first.close()).unwrap();
    let again = Store::open(&path).unwrap();
    assert_eq!(all_events(&again), [(1, 1, 1), (2, 2, 2)]);
    assert_eq!(block_on(again.head()).unwrap(), GlobalPosition(2));
    assert!(block_on(again.verify()).unwrap().is_intact());
}

/// Reopening a store (a restart) keeps its events, its head and its streams' versions, and
/// appends carry on where they stopped; an empty file is a new store.
#[test]
fn a_restart_keeps_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir);
    // An empty file (touched by an installer) is a new store, not a refusal.
    fs::write(&path, b"").unwrap();
    store_with(&path, 5);
    for restart in 0..3u64 {
        let store = Store::open(&path).unwrap();
        let head = 5 + restart;
        assert_eq!(block_on(store.head()).unwrap(), GlobalPosition(head));
        let events = all_events(&store);
        assert_eq!(
            events,
            (1..=head).map(|i| (i, i, i)).collect::<Vec<_>>(),
            "restart {restart}"
        );
        let report = block_on(store.verify()).unwrap();
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.checked, head);
        let s = stream(1);
        let next = head + 1;
        // The stream's version was kept: an append expecting an older one conflicts.
        match block_on(store.append(
            s,
            ExpectedVersion::Exact(Version(head - 1)),
            vec![event(s, 100 + next, next)],
        )) {
            Err(StoreError::Conflict { actual, .. }) => assert_eq!(actual, Version(head)),
            other => panic!("restart {restart}: expected a conflict, got {other:?}"),
        }
        let appended = block_on(store.append(
            s,
            ExpectedVersion::Exact(Version(head)),
            vec![event(s, next, next)],
        ))
        .unwrap();
        assert_eq!(appended.first_position, GlobalPosition(next));
        assert_eq!(appended.first_version, Version(next));
        block_on(store.close()).unwrap();
    }
}

/// Set in the child process of [`an_outside_reader_after_a_refused_open_loses_nothing`]: the
/// path of a store to read with a plain `SQLite` connection, as an operator's tool would.
const READER_CHILD: &str = "ACM_BAD_FILES_READER_DB";

/// Run by [`an_outside_reader_after_a_refused_open_loses_nothing`] in a child process; does
/// nothing in a normal test run.
#[test]
#[ignore = "run as a child process by an_outside_reader_after_a_refused_open_loses_nothing"]
fn sqlite_reader_child() {
    let Some(path) = std::env::var_os(READER_CHILD) else {
        return;
    };
    let conn = Connection::open(path).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert!(n > 0);
    conn.close().map_err(|(_, e)| e).unwrap();
}

/// Another process reading the store with plain `SQLite` (an operator's `sqlite3`, a backup
/// script) while the store is open must not checkpoint and delete the `-wal` the store still
/// writes to when it closes, also after a refused second open in the store's process (which
/// opens and closes a descriptor of the file: on Unix that drops every POSIX lock the process
/// holds on it). Events acknowledged afterwards are still there after a restart.
#[test]
fn an_outside_reader_after_a_refused_open_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_in(&dir);
    let first = Store::open(&path).unwrap();
    let s = stream(1);
    block_on(first.append(s, ExpectedVersion::NoStream, vec![event(s, 1, 1)])).unwrap();
    assert!(matches!(Store::open(&path), Err(OpenError::Locked { .. })));

    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "sqlite_reader_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(READER_CHILD, &path)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the reader child failed: {status}");
    assert!(
        dir.path().join("acm.db-wal").exists(),
        "the outside reader deleted the store's -wal under it"
    );

    // Acknowledged, so on disk.
    block_on(first.append(s, ExpectedVersion::Exact(Version(1)), vec![event(s, 2, 2)])).unwrap();
    block_on(first.close()).unwrap();
    let again = Store::open(&path).unwrap();
    assert_eq!(all_events(&again), [(1, 1, 1), (2, 2, 2)]);
    assert!(block_on(again.verify()).unwrap().is_intact());
}
