//! The `acm` binary as a user runs it.
// A failed unwrap is a failed test; a scenario reads best as one function.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

mod support;
use support::acm;

#[test]
fn demo_plays_every_step_and_exports_logs_that_audit_replays() {
    let dir = std::env::temp_dir().join(format!("acm-cli-test-{}", std::process::id()));
    let (ok, out, err) = acm(&["demo", "--in-process", "--export", dir.to_str().unwrap()]);
    assert!(ok, "demo failed: {err}");
    for step in [
        "[1-2]", "[3-4b]", "[5]", "[6-7a]", "[7b-8]", "[9]", "[10-11]", "[12-13a]", "[13b-14]",
    ] {
        assert!(out.contains(step), "step {step} missing from:\n{out}");
    }
    assert!(out.contains("learns the group IDs: sip:tac-1@mc-a.example, sip:tac-2@mc-a.example"));
    assert!(out.contains("learns: accepted by sip:bob@mc-b.example"));
    assert!(out.contains("6 events at A, 6 at B"));

    let a_log = dir.join("mc-a.example.jsonl");
    let (ok, out, err) = acm(&["audit", "replay", a_log.to_str().unwrap()]);
    assert!(ok, "replay failed: {err}");
    assert!(out.starts_with("6 events, 1 request;"), "{out}");
    assert!(out.contains("response: accepted"), "{out}");
    let request = out
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();

    let (ok, out, _) = acm(&["audit", "timeline", a_log.to_str().unwrap(), &request]);
    assert!(ok);
    // A header line, the column names, then one line per event.
    let types: Vec<&str> = out
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().nth(5).unwrap_or(""))
        .collect();
    assert_eq!(
        types,
        [
            "submitted",
            "authorized",
            "forwarded",
            "partner_stored",
            "response_received",
            "response_delivered"
        ]
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn audit_refuses_bad_input_with_a_clear_message() {
    let dir = std::env::temp_dir().join(format!("acm-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, "{\"not\":1}\n").unwrap();
    let (ok, _, err) = acm(&["audit", "replay", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("line 1: not an acm audit export"), "{err}");
    let (ok, _, err) = acm(&[
        "audit",
        "replay",
        dir.join("missing.jsonl").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("missing.jsonl"), "{err}");
    let (ok, _, err) = acm(&["audit", "timeline", bad.to_str().unwrap(), "not-a-uuid"]);
    assert!(!ok);
    assert!(err.contains("invalid request ID"), "{err}");
    assert!(err.contains("the request id comes last"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn audit_verify_checks_a_sqlite_store_and_names_the_first_broken_position() {
    use acm_core::testkit::conformance::{TestEvent, event, stream};
    use acm_core::{EventStore, ExpectedVersion};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mc-a.example.db");
    {
        let store = acm_store_sqlite::SqliteStore::<TestEvent>::open(&db).unwrap();
        let s = stream(1);
        let batch = (1..=5).map(|i| event(s, i, i)).collect();
        futures_executor::block_on(store.append(s, ExpectedVersion::NoStream, batch)).unwrap();
    }
    let (ok, out, err) = acm(&["audit", "verify", db.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        out.contains(": SQLite store, 5 events, hash chain intact, head "),
        "{out}"
    );

    // One byte of the third payload changed behind the store's back.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "DROP TRIGGER events_no_update;
         UPDATE events SET payload = CAST(replace(CAST(payload AS TEXT), 'event 3', 'event 8') AS BLOB)
         WHERE position = 3;",
    )
    .unwrap();
    drop(conn);
    let (ok, _, err) = acm(&["audit", "verify", db.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("position 3: the stored link does not match the event"),
        "{err}"
    );
    assert!(!err.contains("HashMismatch"), "no Debug text: {err}");

    // Not a store at all.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database, just some words to fill a page").unwrap();
    let (ok, _, err) = acm(&["audit", "verify", text.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("not a SQLite database"), "{err}");
}

#[test]
fn the_demo_on_sqlite_leaves_stores_that_verify_and_refuses_to_reuse_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stores");
    let (ok, out, err) = acm(&["demo", "--in-process", "--db", db.to_str().unwrap()]);
    assert!(ok, "demo failed: {err}");
    assert!(out.contains("6 events at A, 6 at B"), "{out}");
    for system in ["mc-a.example", "mc-b.example"] {
        let file = db.join(format!("{system}.db"));
        let (ok, out, err) = acm(&["audit", "verify", file.to_str().unwrap()]);
        assert!(ok, "{err}");
        assert!(out.contains("6 events, hash chain intact"), "{out}");
    }
    // The demo's ids repeat from run to run: a second run into the same stores is refused.
    let (ok, _, err) = acm(&["demo", "--in-process", "--db", db.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("exists already"), "{err}");
}

/// The README's main command: two ACM servers over HTTPS on loopback, the 14 steps played by
/// HTTP clients, what each side recorded, the joined timeline, and both chains intact.
#[test]
fn the_https_demo_plays_every_step_between_two_servers() {
    let (ok, out, err) = acm(&["demo"]);
    assert!(ok, "demo failed: {err}\n{out}");
    for step in [
        "[1-4b]", "[5-7a]", "[7b-8]", "[9-11]", "[12-13a]", "[13b-14]",
    ] {
        assert!(out.contains(step), "step {step} missing from:\n{out}");
    }
    for event in [
        "mc-a.example  #1  submitted",
        "mc-b.example  #2  verified",
        "mc-b.example  #4  responded",
        "mc-a.example  #6  response_delivered",
        "-> pending ACM data notification to sip:bob@mc-b.example",
        "-> pending ACM data notification to sip:alice@mc-a.example",
        "12 events on mc-a.example and mc-b.example, in causal order",
        "6 events at A, 6 at B; both hash chains verify: true",
    ] {
        assert!(out.contains(event), "{event:?} missing from:\n{out}");
    }
}
