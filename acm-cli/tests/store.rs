//! The `acm` binary's stores: whole in their `.db` files once a command ends, and backed up by
//! `acm store backup`.
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;

mod support;
use support::acm;

fn demo(dir: &Path) {
    let (ok, _, err) = acm(&[
        Path::new("demo"),
        Path::new("--in-process"),
        Path::new("--db"),
        dir,
    ]);
    assert!(ok, "demo failed: {err}");
}

/// After `acm demo --db DIR` each `.db` alone is its system's whole store: no `-wal` with
/// commits beside it, and a copy of the `.db` without anything else verifies with all six
/// events.
#[test]
fn the_demo_leaves_each_store_whole_in_its_db_file() {
    let dir = tempfile::tempdir().unwrap();
    let stores = dir.path().join("stores");
    demo(&stores);
    for system in ["mc-a.example", "mc-b.example"] {
        let db = stores.join(format!("{system}.db"));
        let wal = stores.join(format!("{system}.db-wal"));
        assert!(
            std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
            "{system}: commits were left in the -wal"
        );
        let alone = tempfile::tempdir().unwrap();
        let copy = alone.path().join("copy.db");
        std::fs::copy(&db, &copy).unwrap();
        let report = acm_store_sqlite::verify_file(&copy).unwrap();
        assert_eq!(
            (report.checked, report.is_intact()),
            (6, true),
            "{system}: {report:?}"
        );
    }
}

/// `acm store backup SRC DST` copies a store and verifies the copy: the report's head is the
/// one `acm audit verify` gives for the source and for the copy. A second backup to the same
/// file, and a backup of a file that is not a store, are refused with a clear message.
#[test]
fn store_backup_copies_verifies_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let stores = dir.path().join("stores");
    demo(&stores);
    let src = stores.join("mc-a.example.db");
    let dst = dir.path().join("backup.db");
    let backup = Path::new("backup");
    let store = Path::new("store");

    let (ok, out, err) = acm(&[store, backup, &src, &dst]);
    assert!(ok, "{err}");
    assert!(
        out.contains(": 6 events, hash chain intact, head "),
        "{out}"
    );
    let head = out.rsplit("head ").next().unwrap().trim();
    assert_eq!(head.len(), 64, "{out}");
    for file in [&src, &dst] {
        let (ok, out, err) = acm(&[Path::new("audit"), Path::new("verify"), file]);
        assert!(ok, "{err}");
        assert_eq!(
            out.trim(),
            format!(
                "{}: SQLite store, 6 events, hash chain intact, head {head}",
                file.display()
            )
        );
    }

    let before = std::fs::read(&dst).unwrap();
    let (ok, _, err) = acm(&[store, backup, &src, &dst]);
    assert!(!ok);
    assert!(err.contains("exists already"), "{err}");
    assert_eq!(std::fs::read(&dst).unwrap(), before);

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database, just some words to fill a page").unwrap();
    let (ok, _, err) = acm(&[store, backup, &text, &dir.path().join("other.db")]);
    assert!(!ok);
    assert!(err.contains("not a SQLite database"), "{err}");
    assert!(!dir.path().join("other.db").exists());
}
