//! `backup_file` (`acm store backup`): a verified copy of a store, closed or beside a writer
//! that keeps appending, never over an existing file, and only of an acm store.
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use acm_core::GlobalPosition;
use acm_core::testkit::conformance::TestEvent;
use acm_core::{Envelope, EventStore};
use acm_store_sqlite::{BackupError, OpenError, SqliteStore, backup_file, verify_file};
use futures_executor::block_on;
use futures_util::TryStreamExt;
use rusqlite::Connection;

mod support;
use support::{append_events, names, snapshot};

type Store = SqliteStore<TestEvent>;

fn log(store: &Store) -> Vec<Envelope<TestEvent>> {
    block_on(store.read_all(GlobalPosition::START).try_collect()).unwrap()
}

/// A closed store is copied: the report gives the copy's event count and head (those of the
/// source), the source's directory is left byte for byte, and the copy stands alone in its
/// directory and opens as the same store.
#[test]
fn a_closed_store_is_backed_up_and_the_copy_verifies() {
    let src_dir = tempfile::tempdir().unwrap();
    let src = src_dir.path().join("acm.db");
    let store = Store::open(&src).unwrap();
    block_on(append_events(&store, 1, 1, 40));
    let expected = log(&store);
    block_on(store.close()).unwrap();
    let source = verify_file(&src).unwrap();

    let dst_dir = tempfile::tempdir().unwrap();
    let dst = dst_dir.path().join("backup.db");
    let before = snapshot(src_dir.path());
    let report = backup_file(&src, &dst).unwrap();
    assert_eq!(
        snapshot(src_dir.path()),
        before,
        "the backup changed the source's directory"
    );
    assert_eq!((report.events, report.head), (40, source.head));
    assert_eq!(names(dst_dir.path()), ["backup.db"]);

    let copy = Store::open(&dst).unwrap();
    assert_eq!(log(&copy), expected);
    assert!(block_on(copy.verify()).unwrap().is_intact());
}

/// Beside a writer of this process that keeps appending: every backup verifies and holds a
/// prefix of the log (at least what was acknowledged when it began), and appends go on being
/// acknowledged while it runs (the writer thread would panic on a refused append).
#[test]
fn a_backup_beside_a_writer_that_keeps_appending_holds_a_prefix_of_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("acm.db");
    let store = Store::open(&src).unwrap();
    block_on(append_events(&store, 1, 1, 2000));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let writer = {
        let (store, stop, acked) = (store.clone(), stop.clone(), acked.clone());
        std::thread::spawn(move || {
            let mut i = 1;
            while !stop.load(Ordering::Relaxed) {
                block_on(append_events(&store, 2, i, 1));
                acked.store(2000 + i, Ordering::Release);
                i += 1;
            }
        })
    };
    let mut copies = Vec::new();
    // Appends acknowledged while a backup ran (about a hundred each, measured).
    let mut during = 0;
    for k in 0..4 {
        let before = acked.load(Ordering::Acquire).max(2000);
        let dst = dir.path().join(format!("backup-{k}.db"));
        let report = backup_file(&src, &dst).unwrap();
        during += acked.load(Ordering::Acquire).max(2000) - before;
        assert!(
            report.events >= before,
            "{report:?}: {before} were acknowledged before"
        );
        copies.push((dst, report));
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(during > 0, "no append was acknowledged while a backup ran");

    let full = log(&store);
    block_on(store.close()).unwrap();
    for (dst, report) in copies {
        let copy = Store::open(&dst).unwrap();
        let held = log(&copy);
        assert_eq!(held.len() as u64, report.events);
        assert_eq!(
            held[..],
            full[..held.len()],
            "{} is not a prefix of the log",
            dst.display()
        );
    }
}

/// An existing destination is never overwritten, not even an empty file: `DestinationExists`,
/// and the file is left as it was.
#[test]
fn a_backup_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("acm.db");
    let store = Store::open(&src).unwrap();
    block_on(append_events(&store, 1, 1, 3));
    block_on(store.close()).unwrap();
    for contents in [&b"an operator's notes"[..], b""] {
        let dst = dir.path().join("taken.db");
        fs::write(&dst, contents).unwrap();
        match backup_file(&src, &dst) {
            Err(BackupError::DestinationExists { path }) => assert_eq!(path, dst),
            other => panic!("expected DestinationExists, got {other:?}"),
        }
        assert_eq!(fs::read(&dst).unwrap(), contents);
    }
    // The source over itself, too.
    assert!(matches!(
        backup_file(&src, &src),
        Err(BackupError::DestinationExists { .. })
    ));
}

/// A source that is not an acm store is refused with the `OpenError` that says why, and no
/// destination file is left.
#[test]
fn a_backup_of_what_is_not_an_acm_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("other.db");
    Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    let text = dir.path().join("notes.txt");
    fs::write(&text, "not a database, only words").unwrap();
    let dst = dir.path().join("backup.db");
    match backup_file(&foreign, &dst) {
        Err(BackupError::Source(OpenError::NotAnAcmStore { path, .. })) => {
            assert_eq!(path, foreign);
        }
        other => panic!("expected Source(NotAnAcmStore), got {other:?}"),
    }
    assert!(matches!(
        backup_file(&text, &dst),
        Err(BackupError::Source(OpenError::NotADatabase { .. }))
    ));
    assert!(matches!(
        backup_file(dir.path().join("missing.db"), &dst),
        Err(BackupError::Source(OpenError::NoSuchFile { .. }))
    ));
    assert!(matches!(
        backup_file(dir.path(), &dst),
        Err(BackupError::Source(OpenError::IsADirectory { .. }))
    ));
    assert_eq!(names(dir.path()), ["notes.txt", "other.db"]);
}

/// A store whose log was altered is copied as it is, and the copy's verification says so
/// (`CopyBroken`, naming the break); the copy is kept for inspection.
#[test]
fn a_backup_of_an_altered_store_reports_the_break() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("acm.db");
    let store = Store::open(&src).unwrap();
    block_on(append_events(&store, 1, 1, 5));
    block_on(store.close()).unwrap();
    Connection::open(&src)
        .unwrap()
        .execute_batch(
            "DROP TRIGGER events_no_update;
             UPDATE events SET recorded_at = recorded_at + 1 WHERE position = 4;",
        )
        .unwrap();
    let dst = dir.path().join("backup.db");
    match backup_file(&src, &dst) {
        Err(BackupError::CopyBroken { path, report }) => {
            assert_eq!(path, dst);
            assert_eq!(report.broken.map(|b| b.position), Some(4));
            assert_eq!(report.checked, 3);
        }
        other => panic!("expected CopyBroken, got {other:?}"),
    }
    assert!(dst.exists());
}
