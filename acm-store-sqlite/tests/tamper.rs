//! Tamper evidence: a log altered behind the store's back — a payload byte changed through
//! SQL, a row deleted, the last rows deleted, a byte flipped in the database file itself — is
//! caught by `verify()`, which names the first position that does not verify and what is
//! wrong there. An untouched log verifies whole.
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use acm_core::testkit::conformance::{TestEvent, event, stream};
use acm_core::{EventStore, ExpectedVersion};
use acm_core::{GlobalPosition, Version};
use acm_store_sqlite::{Break, BreakKind, ChainReport, SqliteStore, verify_file};
use futures_executor::block_on;
use proptest::prelude::*;
use rusqlite::{Connection, params};
use tempfile::TempDir;

type Store = SqliteStore<TestEvent>;

/// Events in the log under test.
const N: u64 = 50;

/// The text of the event at position `k`: distinctive, so its bytes can be found in the file.
fn marker(k: u64) -> String {
    format!("tamper-marker-{k:04}-end")
}

/// The bytes of a store file holding `N` events (appended in batches of 1 to 5 across five
/// streams; the event at position `k` carries `marker(k)`), checkpointed so that the main
/// file holds every event and no `-wal` is needed. Built once; each case copies it.
fn template() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acm.db");
        {
            let store = Store::open(&path).unwrap();
            let mut versions = [0u64; 5];
            let mut k = 1;
            let mut batch = 0;
            while k <= N {
                let size = (batch % 5 + 1).min(N + 1 - k);
                let which = usize::try_from(batch % 5).unwrap();
                let s = stream(which as u64 + 1);
                let events = (k..k + size)
                    .map(|p| {
                        let mut e = event(s, p, p);
                        e.payload.text = marker(p);
                        e
                    })
                    .collect();
                let appended = block_on(store.append(
                    s,
                    ExpectedVersion::Exact(Version(versions[which])),
                    events,
                ))
                .unwrap();
                assert_eq!(appended.first_position, GlobalPosition(k));
                versions[which] += size;
                k += size;
                batch += 1;
            }
            block_on(store.close()).unwrap();
        }
        // The store's connections may leave the last commits in the -wal: fold them in.
        let conn = Connection::open(&path).unwrap();
        let (busy, _, _): (i64, i64, i64) = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(busy, 0, "the checkpoint could not complete");
        conn.close().unwrap();
        let wal = dir.path().join("acm.db-wal");
        assert!(!wal.exists() || fs::metadata(&wal).unwrap().len() == 0);
        fs::read(&path).unwrap()
    })
}

/// A copy of the template in its own directory.
fn copy() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acm.db");
    fs::write(&path, template()).unwrap();
    (dir, path)
}

fn sql(position: u64) -> i64 {
    i64::try_from(position).unwrap()
}

/// Verifies the store at `path`, opened, and with `verify_file` (an auditor's read-only
/// check): both must say the same.
fn verify(path: &Path) -> ChainReport {
    let audited = verify_file(path).unwrap();
    let store = Store::open(path).unwrap();
    let report = block_on(store.verify()).unwrap();
    assert_eq!(
        audited, report,
        "verify_file and SqliteStore::verify disagree"
    );
    block_on(store.close()).unwrap();
    report
}

/// Runs `sql` on a plain connection, after dropping the triggers that keep the log
/// append-only (what a tamperer does first).
fn tamper(path: &Path, sql: impl FnOnce(&Connection)) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;")
        .unwrap();
    sql(&conn);
    conn.close().unwrap();
}

fn broken_at(report: &ChainReport, position: u64, kind: BreakKind) {
    assert_eq!(
        report.broken,
        Some(Break { position, kind }),
        "report: {report:?}"
    );
    assert!(!report.is_intact());
    assert_eq!(
        report.checked,
        position - 1,
        "events checked before the break"
    );
}

/// An untouched log verifies whole: every event checked, the head link the one the store
/// recorded, and the same after a restart.
#[test]
fn an_untouched_log_verifies() {
    let (_dir, path) = copy();
    let report = {
        let store = Store::open(&path).unwrap();
        let report = block_on(store.verify()).unwrap();
        assert_eq!(report.checked, block_on(store.head()).unwrap().0);
        block_on(store.close()).unwrap();
        report
    };
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.broken, None);
    assert_eq!(report.checked, N);
    let conn = Connection::open(&path).unwrap();
    let (position, hash): (i64, Vec<u8>) = conn
        .query_row("SELECT position, hash FROM chain_head", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    conn.close().unwrap();
    assert_eq!(position, 50);
    assert_eq!(report.head.to_vec(), hash);
    assert_eq!(verify(&path), report);
}

/// The append-only triggers refuse an UPDATE or DELETE that has not dropped them first.
#[test]
fn the_log_refuses_updates_and_deletes() {
    let (_dir, path) = copy();
    let conn = Connection::open(&path).unwrap();
    assert!(
        conn.execute("UPDATE events SET payload = x'00' WHERE position = 3", [])
            .is_err()
    );
    assert!(
        conn.execute("DELETE FROM events WHERE position = 3", [])
            .is_err()
    );
    conn.close().unwrap();
    assert!(verify(&path).is_intact());
}

/// Another column than the payload changed (who did it): a hash mismatch there too.
#[test]
fn a_changed_actor_is_a_hash_mismatch() {
    let (_dir, path) = copy();
    tamper(&path, |conn| {
        let changed = conn
            .execute(
                "UPDATE events SET actor_id = 'sip:mallory@mc-a.example' WHERE position = 17",
                [],
            )
            .unwrap();
        assert_eq!(changed, 1);
    });
    broken_at(&verify(&path), 17, BreakKind::HashMismatch);
}

/// A stored link that is not a SHA-256 (the column altered to a short blob): `Corrupt` there.
#[test]
fn a_malformed_link_is_corrupt() {
    let (_dir, path) = copy();
    tamper(&path, |conn| {
        let changed = conn
            .execute("UPDATE events SET hash = x'00ff' WHERE position = 23", [])
            .unwrap();
        assert_eq!(changed, 1);
    });
    broken_at(&verify(&path), 23, BreakKind::Corrupt);
}

#[test]
fn rows_past_the_recorded_head_are_named_at_the_first_of_them() {
    let (_dir, path) = copy();
    // The head set back one event: the last row, although well chained, was never recorded.
    tamper(&path, |c| {
        c.execute(
            "UPDATE chain_head SET position = ?1, hash = (SELECT hash FROM events WHERE position = ?1)",
            [sql(N - 1)],
        )
        .unwrap();
    });
    broken_at(&verify(&path), N, BreakKind::HashMismatch);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// One byte of the payload at `k` changed through SQL: `HashMismatch` at `k`.
    #[test]
    fn a_changed_payload_byte_is_a_hash_mismatch(
        k in 1..=N,
        at in any::<prop::sample::Index>(),
        xor in 1..=255u8,
    ) {
        let (_dir, path) = copy();
        tamper(&path, |conn| {
            let mut payload: Vec<u8> = conn
                .query_row("SELECT payload FROM events WHERE position = ?1", [sql(k)], |r| r.get(0))
                .unwrap();
            let i = at.index(payload.len());
            payload[i] ^= xor;
            let changed = conn
                .execute("UPDATE events SET payload = ?1 WHERE position = ?2", params![payload, sql(k)])
                .unwrap();
            assert_eq!(changed, 1);
        });
        broken_at(&verify(&path), k, BreakKind::HashMismatch);
    }

    /// A row before the last deleted: `Missing` at its position.
    #[test]
    fn a_deleted_row_is_missing(k in 1..N) {
        let (_dir, path) = copy();
        tamper(&path, |conn| {
            let deleted = conn.execute("DELETE FROM events WHERE position = ?1", [sql(k)]).unwrap();
            assert_eq!(deleted, 1);
        });
        broken_at(&verify(&path), k, BreakKind::Missing);
    }

    /// The last `count` rows deleted (down to all of them): `Truncated` at the first missing
    /// position.
    #[test]
    fn deleted_last_rows_are_truncated(count in 1..=N) {
        let (_dir, path) = copy();
        let first_missing = N + 1 - count;
        tamper(&path, |conn| {
            let deleted = conn
                .execute("DELETE FROM events WHERE position >= ?1", [sql(first_missing)])
                .unwrap();
            assert_eq!(deleted, usize::try_from(count).unwrap());
        });
        broken_at(&verify(&path), first_missing, BreakKind::Truncated);
    }

    /// A byte of the payload at `k` flipped in the database file itself, not through SQL:
    /// `HashMismatch` at `k`. (Every copy of the text in the file is flipped: `SQLite` may leave
    /// stale copies of a cell in a page's free space.)
    #[test]
    fn a_flipped_file_byte_is_a_hash_mismatch(
        k in 1..=N,
        at in any::<prop::sample::Index>(),
        xor in 1..=255u8,
    ) {
        let (_dir, path) = copy();
        let mut bytes = fs::read(&path).unwrap();
        let needle = marker(k).into_bytes();
        let i = at.index(needle.len());
        let found: Vec<usize> = bytes
            .windows(needle.len())
            .enumerate()
            .filter(|(_, w)| *w == needle.as_slice())
            .map(|(p, _)| p)
            .collect();
        prop_assert!(!found.is_empty(), "{} is not in the file", marker(k));
        for p in found {
            bytes[p + i] ^= xor;
        }
        fs::write(&path, &bytes).unwrap();
        broken_at(&verify(&path), k, BreakKind::HashMismatch);
    }
}
