//! Helpers of the store's tests: a store in a temporary directory that lives as long as the
//! store, a directory's files before and after, appends of test events.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use acm_core::Version;
use acm_core::testkit::conformance::{TestEvent, event, stream};
use acm_core::testkit::intercept::{Intercepted, Passthrough};
use acm_core::{DomainEvent, EventStore, ExpectedVersion};
use acm_store_sqlite::{SqliteOptions, SqliteStore};
use tempfile::TempDir;

/// A [`SqliteStore`] (`inner`) whose directory is removed when it is dropped.
pub type TempStore<E> = Intercepted<SqliteStore<E>, Passthrough<TempDir>>;

/// A new store in a new temporary directory.
pub fn temp_store<E: DomainEvent>() -> TempStore<E> {
    temp_store_with(SqliteOptions::default())
}

/// A new store with `options` in a new temporary directory.
pub fn temp_store_with<E: DomainEvent>(options: SqliteOptions<E>) -> TempStore<E> {
    let dir = tempfile::tempdir().unwrap();
    let inner = SqliteStore::open_with(dir.path().join("acm.db"), options).unwrap();
    Intercepted {
        inner,
        how: Passthrough(dir),
    }
}

/// Every file of `dir`, name to bytes (a directory in it shows as `<not a file>`).
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let bytes = if e.file_type().unwrap().is_file() {
                fs::read(e.path()).unwrap()
            } else {
                b"<not a file>".to_vec()
            };
            (name, bytes)
        })
        .collect()
}

/// The names of the files of `dir`, sorted. No file is opened: safe beside a store of this
/// process (closing a descriptor of its file would drop its POSIX locks).
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Waits (at most 10 s) until the store at `path`, whose last handle was dropped, has closed
/// on its own: a drop does not wait for that, and the close deletes the `-wal` and `-shm`.
/// A test that reopens a path closes its store instead ([`SqliteStore::close`] answers once
/// the store has let go of the file).
pub fn wait_until_closed_after_drop(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while beside(path, "-wal").exists() || beside(path, "-shm").exists() {
        assert!(Instant::now() < deadline, "the dropped store did not close");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `path` with `suffix` (`-wal`, `-shm`, `-journal`) appended.
pub fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Appends `n` one-event batches to stream `stream_no`, at versions `from..from + n`.
pub async fn append_events(store: &SqliteStore<TestEvent>, stream_no: u64, from: u64, n: u64) {
    let s = stream(stream_no);
    for i in from..from + n {
        store
            .append(
                s,
                ExpectedVersion::Exact(Version(i - 1)),
                vec![event(s, stream_no * 1_000_000 + i, i)],
            )
            .await
            .unwrap();
    }
}
