//! A SQLite store's audit export: it carries the store's own chain byte for byte (the same
//! file an export of the same log from the memory store gives), and whatever was done to the
//! store behind its back shows in the export's verification.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use acm_core::audit::{LineBreak, LineBreakKind, export_log, verify_export};
use acm_core::testkit::fixture::{TwoSystems, alice, bob};
use acm_core::{
    AcmStore, Decision, Envelope, Event, EventStore, GlobalPosition, PendingItem, Target,
};
use acm_store_memory::MemoryAcmStore;
use acm_store_sqlite::{SqliteAcmStore, export_file, verify_file};
use futures_util::TryStreamExt;

mod support;
use support::{names, snapshot};

/// The procedure to step 14, deterministic (fixture ids and clock), on any store: the
/// download is acknowledged, so the delivery of the response is recorded.
async fn play<S: AcmStore + 'static>(sys: &TwoSystems<S>) {
    let request = sys.alice_provides(Target::User(bob()), 2).await.unwrap();
    sys.settle().await.unwrap();
    sys.bob_answers(request, Decision::Accept).await.unwrap();
    let data = sys.a.server.download_pending(&alice()).await.unwrap();
    let receipts: Vec<_> = data.items.iter().map(PendingItem::receipt).collect();
    let recorded = sys.a.server.acknowledge_download(&alice(), &receipts).await;
    assert_eq!(recorded.unwrap(), 1, "step 14 recorded");
}

fn on_sqlite(dir: &Path) -> TwoSystems<SqliteAcmStore> {
    futures_executor::block_on(TwoSystems::with_stores(
        |c| c,
        |system| Arc::new(SqliteAcmStore::open(dir.join(format!("{system}.db"))).unwrap()),
    ))
    .unwrap()
}

/// Closes both systems' stores (every handle of each, the servers' included), so their
/// files can be copied and opened at once.
fn close(sys: &TwoSystems<SqliteAcmStore>) {
    for store in [&sys.a.store, &sys.b.store] {
        futures_executor::block_on(SqliteAcmStore::clone(store).close()).unwrap();
    }
}

fn export_of(path: &Path) -> String {
    let mut out = Vec::new();
    export_file(path, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn a_stores_export_is_its_chain_byte_for_byte_and_matches_the_memory_stores() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = on_sqlite(dir.path());
    futures_executor::block_on(play(&sqlite));
    let memory = futures_executor::block_on(TwoSystems::<MemoryAcmStore>::new()).unwrap();
    futures_executor::block_on(play(&memory));

    for (system, mem) in [("mc-a.example", &memory.a), ("mc-b.example", &memory.b)] {
        let path = dir.path().join(format!("{system}.db"));
        let from_store = export_of(&path);
        // The same log read through the event store contract, chain computed on export.
        let store = if system == "mc-a.example" {
            &sqlite.a.store
        } else {
            &sqlite.b.store
        };
        let log: Vec<Envelope<Event>> =
            futures_executor::block_on(store.read_all(GlobalPosition::START).try_collect())
                .unwrap();
        let mut computed = Vec::new();
        export_log(&mut computed, &log).unwrap();
        assert_eq!(from_store, String::from_utf8(computed).unwrap(), "{system}");
        // And the memory store's export of the same procedure.
        let mut from_memory = Vec::new();
        export_log(&mut from_memory, &mem.store.snapshot()).unwrap();
        assert_eq!(
            from_store,
            String::from_utf8(from_memory).unwrap(),
            "{system}"
        );

        let report = verify_export(from_store.as_bytes()).unwrap();
        assert!(report.is_intact(), "{:?}", report.broken);
        let chain = verify_file(&path).unwrap();
        assert_eq!((report.events, report.head), (chain.checked, chain.head));
    }
}

/// Runs SQL on a store file behind its back, with the append-only triggers dropped.
fn tamper(path: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete; {sql}"
    ))
    .unwrap();
}

fn broken(path: &Path) -> LineBreak {
    verify_export(export_of(path).as_bytes())
        .unwrap()
        .broken
        .expect("the tampering shows in the export")
}

#[test]
fn what_was_done_to_a_store_shows_in_its_export() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = on_sqlite(dir.path());
    futures_executor::block_on(play(&sqlite));
    close(&sqlite);
    drop(sqlite);
    let path = |name: &str| {
        let src = dir.path().join("mc-a.example.db");
        let copy = dir.path().join(format!("{name}.db"));
        std::fs::copy(&src, &copy).unwrap();
        for suffix in ["-wal", "-shm"] {
            let side = dir.path().join(format!("mc-a.example.db{suffix}"));
            if side.exists() {
                std::fs::copy(&side, dir.path().join(format!("{name}.db{suffix}"))).unwrap();
            }
        }
        copy
    };

    // A payload edited: line 1 is the header, so position 3 is line 4.
    let edited = path("edited");
    tamper(
        &edited,
        "UPDATE events SET payload = CAST(replace(CAST(payload AS TEXT), 'mc-b.example', 'mc-c.example') AS BLOB) WHERE position = 3;",
    );
    assert_eq!(
        broken(&edited),
        LineBreak {
            line: 4,
            kind: LineBreakKind::Edited
        }
    );

    // The last event deleted: the store's recorded head still counts it.
    let truncated = path("truncated");
    tamper(
        &truncated,
        "DELETE FROM events WHERE position = (SELECT max(position) FROM events);",
    );
    let total = 6;
    assert_eq!(
        broken(&truncated),
        LineBreak {
            line: total + 1,
            kind: LineBreakKind::TrailerMismatch {
                count: total as u64,
                found: total as u64 - 1
            }
        }
    );

    // A middle event deleted.
    let holed = path("holed");
    tamper(&holed, "DELETE FROM events WHERE position = 2;");
    assert_eq!(
        broken(&holed),
        LineBreak {
            line: 3,
            kind: LineBreakKind::Missing {
                from: GlobalPosition(2),
                to: GlobalPosition(2)
            }
        }
    );
}

#[test]
fn an_export_is_read_only_for_a_closed_store_and_beside_an_open_one() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = on_sqlite(dir.path());
    futures_executor::block_on(play(&sqlite));
    let a = dir.path().join("mc-a.example.db");

    // Beside the open store: its commits are there, no file is added or removed.

    let before = names(dir.path());
    let open = verify_export(export_of(&a).as_bytes()).unwrap();
    assert!(open.is_intact());
    assert_eq!(open.events, 6);
    assert_eq!(names(dir.path()), before);

    // Closed: the directory is byte for byte as it was, and the export is the same.
    close(&sqlite);
    drop(sqlite);
    let before = snapshot(dir.path());
    let closed = verify_export(export_of(&a).as_bytes()).unwrap();
    assert_eq!(snapshot(dir.path()), before);
    assert_eq!((closed.events, closed.head), (open.events, open.head));
}

#[test]
fn rewritten_positions_and_a_removed_chain_head_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = on_sqlite(dir.path());
    futures_executor::block_on(play(&sqlite));
    close(&sqlite);
    drop(sqlite);
    let copy = |name: &str| {
        let copy = dir.path().join(format!("{name}.db"));
        std::fs::copy(dir.path().join("mc-a.example.db"), &copy).unwrap();
        copy
    };

    let below_one = copy("below-one");
    tamper(
        &below_one,
        "UPDATE events SET position = -1 WHERE position = 2;",
    );
    let report = verify_file(&below_one).unwrap();
    let b = report.broken.unwrap();
    assert_eq!(b.kind, acm_store_sqlite::BreakKind::InvalidPosition);
    assert_eq!((b.position, report.checked), (1, 0));
    // Such a row cannot be written as an export line: the export is refused, nothing half
    // written is handed out.
    let mut out = Vec::new();
    assert!(matches!(
        export_file(&below_one, &mut out),
        Err(acm_store_sqlite::ExportFileError::Read(_))
    ));
    assert!(out.is_empty());

    let headless = copy("headless");
    tamper(&headless, "DELETE FROM chain_head;");
    let report = verify_file(&headless).unwrap();
    assert_eq!(
        report.broken.map(|b| (b.position, b.kind)),
        Some((7, acm_store_sqlite::BreakKind::NoHead))
    );
    assert_eq!(report.checked, 6, "every row verifies");
    assert!(matches!(
        broken(&headless).kind,
        LineBreakKind::TrailerMismatch { count: 0, found: 6 }
    ));
}
