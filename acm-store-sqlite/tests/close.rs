//! Closing a store leaves it whole in its `.db` file: the WAL folded in, no `-wal` or `-shm`
//! beside it, so a copy of the `.db` alone is the store. `close` commits what was queued
//! before it and closes the store for every handle; dropping the last handle does the same.
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use acm_core::testkit::conformance::{TestEvent, event, stream};
use acm_core::{EventStore, ExpectedVersion, StoreError};
use acm_core::{GlobalPosition, Version};
use acm_store_sqlite::{BackendError, SqliteStore, verify_file};
use futures_executor::block_on;
use futures_util::{StreamExt, TryStreamExt};

mod support;
use support::{append_events, names};

type Store = SqliteStore<TestEvent>;

/// Appends `n` events to stream 1 from version `from - 1`, then reads them all back (so each
/// reader connection has read, and holds the file).
async fn append_and_read(store: &Store, from: u64, n: u64) {
    append_events(store, 1, from, n).await;
    let all: Vec<_> = store
        .read_all(GlobalPosition::START)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len() as u64, from + n - 1);
    assert!(store.verify().await.unwrap().is_intact());
    assert!(
        store
            .read_stream(stream(1), Version(0))
            .next()
            .await
            .is_some()
    );
}

/// The `.db` at `path`, copied alone into a directory of its own, is the whole store: it
/// verifies with `events` events and opens with them.
fn whole_in_its_db_file(path: &Path, events: u64) {
    let dir = path.parent().unwrap();
    assert_eq!(
        names(dir),
        ["acm.db"],
        "the -wal or -shm was left beside the store"
    );
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().join("copy.db");
    fs::copy(path, &copy).unwrap();
    let report = verify_file(&copy).unwrap();
    assert_eq!(
        (report.checked, report.is_intact()),
        (events, true),
        "{report:?}"
    );
    let reopened = Store::open(&copy).unwrap();
    assert_eq!(block_on(reopened.head()).unwrap(), GlobalPosition(events));
    let all: Vec<_> = block_on(reopened.read_all(GlobalPosition::START).try_collect()).unwrap();
    assert_eq!(all.len() as u64, events);
}

fn temp_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acm.db");
    (dir, path)
}

/// `close` after appends and reads folds the WAL into the `.db` and deletes the `-wal` and
/// `-shm`; a copy of the `.db` alone verifies and opens with every event.
#[test]
fn close_leaves_the_whole_store_in_its_db_file() {
    let (_dir, path) = temp_path();
    let store = Store::open(&path).unwrap();
    block_on(async {
        append_and_read(&store, 1, 200).await;
        store.close().await.unwrap();
    });
    whole_in_its_db_file(&path, 200);
}

/// Dropping the last handle after reads does the same: the reader connections close before
/// the writer's, so the writer's close is the last and folds the WAL in.
#[test]
fn dropping_the_last_handle_after_reads_folds_the_wal_in_too() {
    let (_dir, path) = temp_path();
    let store = Store::open(&path).unwrap();
    block_on(append_and_read(&store, 1, 50));
    let clone = store.clone();
    drop(store);
    assert!(
        path.with_file_name("acm.db-wal").exists(),
        "a handle is left: the store is still open"
    );
    drop(clone);
    // The drop does not wait: the writer thread closes the store on its own.
    support::wait_until_closed_after_drop(&path);
    whole_in_its_db_file(&path, 50);
}

/// Every append queued before `close` is committed and answered; the store then holds them
/// all.
#[test]
fn close_commits_every_append_queued_before_it() {
    let (_dir, path) = temp_path();
    let store = Store::open(&path).unwrap();
    let appends = (1..=64u64).map(|i| {
        let store = store.clone();
        async move {
            let s = stream(i);
            store
                .append(s, ExpectedVersion::NoStream, vec![event(s, i, i)])
                .await
        }
    });
    // `join` polls the appends first: each is queued before the close is.
    let (appended, closed) = block_on(futures_util::future::join(
        futures_util::future::join_all(appends),
        store.clone().close(),
    ));
    closed.unwrap();
    let mut positions: Vec<u64> = appended
        .into_iter()
        .map(|a| a.unwrap().first_position.0)
        .collect();
    positions.sort_unstable();
    assert_eq!(positions, (1..=64).collect::<Vec<_>>());
    drop(store);
    whole_in_its_db_file(&path, 64);
}

fn is_closed<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    match r {
        Err(StoreError::Backend(e)) => {
            matches!(e.downcast_ref::<BackendError>(), Some(BackendError::Closed))
        }
        other => panic!("expected Closed, got {other:?}"),
    }
}

/// A close through one handle closes the store for all: another handle's appends and reads
/// fail with `Closed`, its subscription ends, its own close is `Ok`; the one-writer lock is
/// released at once, so the file opens again while that handle lives.
#[test]
fn a_closed_store_is_closed_for_every_handle() {
    let (_dir, path) = temp_path();
    let store = Store::open(&path).unwrap();
    block_on(append_and_read(&store, 1, 3));
    let other = store.clone();
    let mut subscription = other.subscribe(GlobalPosition::START);
    block_on(async {
        for _ in 0..3 {
            subscription.next().await.unwrap().unwrap();
        }
    });
    let (ended, waiting) = std::sync::mpsc::channel();
    std::thread::spawn(move || ended.send(block_on(subscription.next()).is_none()));

    block_on(store.close()).unwrap();
    let ended = waiting.recv_timeout(Duration::from_secs(10));
    assert_eq!(ended, Ok(true), "the subscription did not end");
    let s = stream(1);
    assert!(is_closed(block_on(other.append(
        s,
        ExpectedVersion::Exact(Version(3)),
        vec![event(s, 4, 4)]
    ))));
    assert!(is_closed(block_on(other.verify())));
    let read: Vec<_> = block_on(other.read_all(GlobalPosition::START).collect::<Vec<_>>());
    assert_eq!(read.len(), 1);
    assert!(is_closed(read.into_iter().next().unwrap()));

    let again = Store::open(&path).unwrap();
    assert_eq!(block_on(again.head()).unwrap(), GlobalPosition(3));
    block_on(again.close()).unwrap();
    block_on(other.close()).unwrap();
    whole_in_its_db_file(&path, 3);
}

/// A reader of another connection holding a snapshot in the `-wal` keeps `close` from folding
/// it in: `close` says so (`CheckpointBlocked`) after waiting for it, every commit is kept, and
/// the next open and close fold the log into the `.db`.
#[test]
fn a_reader_holding_the_wal_is_reported_and_nothing_is_lost() {
    let (_dir, path) = temp_path();
    let store = Store::open(&path).unwrap();
    block_on(append_and_read(&store, 1, 10));
    let reader =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let n: i64 = reader
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 10);
    // Written after the reader's snapshot: the checkpoint cannot pass it.
    block_on(append_and_read(&store, 11, 5));
    match block_on(store.close()) {
        Err(StoreError::Backend(e)) => assert!(
            matches!(
                e.downcast_ref::<BackendError>(),
                Some(BackendError::CheckpointBlocked)
            ),
            "{e}"
        ),
        other => panic!("expected CheckpointBlocked, got {other:?}"),
    }
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    let again = Store::open(&path).unwrap();
    assert_eq!(block_on(again.head()).unwrap(), GlobalPosition(15));
    block_on(again.close()).unwrap();
    whole_in_its_db_file(&path, 15);
}
