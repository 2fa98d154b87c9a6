//! `acm audit` as an auditor runs it: both forms of a log, the documented exit codes, the
//! JSON shapes, the published head, the joined timeline, and errors that say what to do.
// A failed unwrap is a failed test; a scenario reads best as one function.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod support;
use support::acm_code as acm;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Plays the demo on SQLite stores with exports: (stores dir, exports dir, request id).
fn demo(dir: &Path) -> (PathBuf, PathBuf, String) {
    let (db, logs) = (dir.join("stores"), dir.join("logs"));
    let (code, out, err) = acm(&["demo", "--in-process", "--db", s(&db), "--export", s(&logs)]);
    assert_eq!(code, 0, "demo failed: {err}");
    let request = out
        .lines()
        .find_map(|l| l.strip_prefix("request "))
        .and_then(|l| l.split(':').next())
        .unwrap()
        .to_string();
    (db, logs, request)
}

#[test]
fn verify_answers_for_a_store_and_an_export_alike_with_documented_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (db, logs, _) = demo(dir.path());
    let store = db.join("mc-a.example.db");
    let export = logs.join("mc-a.example.jsonl");

    let (code, out, _) = acm(&["audit", "verify", s(&store), "--json"]);
    assert_eq!(code, 0);
    let from_store: Value = serde_json::from_str(&out).unwrap();
    let (code, out, _) = acm(&["audit", "--json", "verify", s(&export)]);
    assert_eq!(code, 0);
    let from_export: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(from_store["form"], "store");
    assert_eq!(from_export["form"], "export");
    for v in [&from_store, &from_export] {
        assert_eq!(v["events"], 6);
        assert_eq!(v["intact"], true);
        assert_eq!(v["break"], Value::Null);
    }
    // The export carries the store's own chain.
    assert_eq!(from_store["head"], from_export["head"]);
    let head = from_store["head"].as_str().unwrap().to_string();

    // The published head: matches, differs, malformed.
    let (code, out, _) = acm(&["audit", "verify", s(&export), "--expect-head", &head]);
    assert_eq!(code, 0);
    assert!(out.contains("(as expected)"), "{out}");
    let other = "ab".repeat(32);
    let (code, _, err) = acm(&["audit", "verify", s(&store), "--expect-head", &other]);
    assert_eq!(
        code, 1,
        "a head other than the published one is a broken log"
    );
    assert!(err.contains("is not the expected"), "{err}");
    let (code, out, _) = acm(&[
        "audit",
        "verify",
        s(&export),
        "--expect-head",
        &other,
        "--json",
    ]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["head_matches"].clone(), v["intact"].clone()),
        (false.into(), true.into())
    );
    let (code, _, err) = acm(&["audit", "verify", s(&export), "--expect-head", "xyz"]);
    assert_eq!(code, 2, "usage");
    assert!(err.contains("64 hex digits"), "{err}");

    // An edited export: exit 1, the line and the kind named.
    let text = std::fs::read_to_string(&export).unwrap();
    let forged = dir.path().join("forged.jsonl");
    std::fs::write(
        &forged,
        text.replacen("sip:tac-1@mc-a.example", "sip:tac-9@mc-a.example", 1),
    )
    .unwrap();
    let (code, _, err) = acm(&["audit", "verify", s(&forged)]);
    assert_eq!(code, 1);
    assert!(err.contains("line 2: edited line"), "{err}");
    let (code, out, _) = acm(&["audit", "verify", s(&forged), "--json"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["break"]["line"], 2);
    assert_eq!(v["break"]["kind"], "edited_line");
    // Replay refuses a broken log the same way.
    let (code, _, err) = acm(&["audit", "replay", s(&forged)]);
    assert_eq!(code, 1);
    assert!(err.contains("line 2: edited line"), "{err}");
    // The last line removed.
    let cut = dir.path().join("cut.jsonl");
    let kept: Vec<&str> = text.lines().collect();
    std::fs::write(&cut, format!("{}\n", kept[..kept.len() - 1].join("\n"))).unwrap();
    let (code, _, err) = acm(&["audit", "verify", s(&cut)]);
    assert_eq!(code, 1);
    assert!(err.contains("missing trailer"), "{err}");

    // Cannot open: exit 3, with what to do.
    let (code, _, err) = acm(&["audit", "verify", s(dir.path())]);
    assert_eq!(code, 3);
    assert!(
        err.contains("is a directory; give an ACM server's store file"),
        "{err}"
    );
    assert!(!err.contains("entity not found"), "{err}");
    let (code, _, err) = acm(&["audit", "replay", s(&dir.path().join("nope.jsonl"))]);
    assert_eq!(code, 3);
    assert!(err.contains("nope.jsonl"), "{err}");
    let (code, _, _) = acm(&["audit", "verify"]);
    assert_eq!(code, 2, "clap's usage error");
}

#[test]
fn export_writes_a_stores_log_once_and_the_export_verifies_against_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (db, logs, request) = demo(dir.path());
    let store = db.join("mc-b.example.db");
    let out = dir.path().join("b.jsonl");
    let (code, stdout, err) = acm(&["audit", "export", s(&store), s(&out), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["events"], 6);
    // The same bytes as the demo's export of that store.
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(logs.join("mc-b.example.jsonl")).unwrap()
    );
    let (code, _, _) = acm(&[
        "audit",
        "verify",
        s(&out),
        "--expect-head",
        v["head"].as_str().unwrap(),
    ]);
    assert_eq!(code, 0);

    // Never overwritten; an export is not a store.
    let before = std::fs::read(&out).unwrap();
    let (code, _, err) = acm(&["audit", "export", s(&store), s(&out)]);
    assert_eq!(code, 3);
    assert!(err.contains("never overwritten"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), before);
    let (code, _, err) = acm(&["audit", "export", s(&out), s(&dir.path().join("x.jsonl"))]);
    assert_eq!(code, 2);
    assert!(err.contains("is an audit export already"), "{err}");

    // Replay and timeline read a store or an export alike.
    for source in [&store, &out] {
        let (code, stdout, err) = acm(&["audit", "replay", s(source), "--json"]);
        assert_eq!(code, 0, "{err}");
        let v: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["events"], 6);
        assert_eq!(v["requests"][0]["request_id"], request.as_str());
        assert_eq!(v["requests"][0]["role"], "partner");
        assert_eq!(v["requests"][0]["counterpart"], "mc-a.example");
        let (code, stdout, _) = acm(&["audit", "replay", s(source)]);
        assert_eq!(code, 0);
        assert!(stdout.starts_with("6 events, 1 request;"), "{stdout}");
        assert!(
            !stdout.contains("None") && !stdout.contains("Some("),
            "no Debug text: {stdout}"
        );
    }
}

#[test]
fn the_timeline_joins_both_systems_logs_in_causal_order() {
    let dir = tempfile::tempdir().unwrap();
    let (db, logs, request) = demo(dir.path());
    let a = db.join("mc-a.example.db");
    let b = logs.join("mc-b.example.jsonl");
    let (code, out, err) = acm(&["audit", "timeline", s(&a), s(&b), &request]);
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .contains("12 events on mc-a.example and mc-b.example, in causal order"),
        "{out}"
    );
    assert!(
        lines.next().unwrap().starts_with("SYSTEM"),
        "a header names the columns"
    );
    let rows: Vec<(String, String)> = lines
        .map(|l| {
            let mut w = l.split_whitespace();
            (w.next().unwrap().to_string(), w.next().unwrap().to_string())
        })
        .collect();
    let steps: Vec<&str> = rows.iter().map(|(_, step)| step.as_str()).collect();
    assert_eq!(
        steps,
        [
            "1", "2", "3", "4a", "4a", "4b", "8", "9", "11", "10", "hook", "14"
        ]
    );
    assert_eq!(rows[3].0, "mc-b.example");

    let (code, out, _) = acm(&["audit", "timeline", s(&b), s(&a), &request, "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 12);
    let stored = &entries[3];
    assert_eq!(stored["system"], "mc-b.example");
    assert_eq!(stored["step"], "4a");
    assert_eq!(stored["caused_by"]["system"], "mc-a.example");
    assert_eq!(stored["caused_by"]["step"], "3");

    // The same log twice, and a request in neither: usage errors that say why.
    let (code, _, err) = acm(&["audit", "timeline", s(&a), s(&a), &request]);
    assert_eq!(code, 2);
    assert!(
        err.contains("give the primary's and the partner's"),
        "{err}"
    );
    let (code, _, err) = acm(&[
        "audit",
        "timeline",
        s(&a),
        "0190a000-0000-7000-8000-0000000000aa",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("is in none of the logs"), "{err}");
}

#[test]
fn the_demo_checks_its_options_before_it_runs_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let (code, _, _) = acm(&["demo", "--in-process", "--export", s(&logs)]);
    assert_eq!(code, 0);
    let before = std::fs::read(logs.join("mc-a.example.jsonl")).unwrap();
    let db = dir.path().join("stores");
    let (code, out, err) = acm(&["demo", "--in-process", "--db", s(&db), "--export", s(&logs)]);
    assert_eq!(code, 3, "an output file that exists already");
    assert!(err.contains("exists already"), "{err}");
    assert!(out.is_empty(), "nothing ran: {out}");
    assert!(!db.exists(), "no store was created");
    assert_eq!(
        std::fs::read(logs.join("mc-a.example.jsonl")).unwrap(),
        before
    );
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let (code, _, err) = acm(&["demo", "--in-process", "--export", s(&file)]);
    assert_eq!(code, 2);
    assert!(err.contains("not a directory"), "{err}");
    // Below a file: refused before anything runs, too.
    let (code, out, err) = acm(&["demo", "--in-process", "--export", s(&file.join("sub"))]);
    assert_eq!(code, 2);
    assert!(err.contains("is not a directory"), "{err}");
    assert!(out.is_empty(), "nothing ran: {out}");
}

#[test]
fn the_library_log_is_visible_by_rust_log_and_can_be_json() {
    let dir = tempfile::tempdir().unwrap();
    let run = |db: &str, rust_log: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_acm"));
        cmd.args([
            "--log-format",
            "json",
            "demo",
            "--in-process",
            "--db",
            s(&dir.path().join(db)),
        ]);
        match rust_log {
            Some(filter) => cmd.env("RUST_LOG", filter),
            None => cmd.env_remove("RUST_LOG"),
        };
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // The store logs its schema migration at info level.
    let err = run("a", Some("acm_store_sqlite=info"));
    let first = err.lines().next().expect("the library logs at info level");
    let v: Value = serde_json::from_str(first).unwrap();
    assert_eq!(v["level"], "INFO");
    assert!(
        v["target"]
            .as_str()
            .unwrap()
            .starts_with("acm_store_sqlite"),
        "{first}"
    );
    // By default only warnings and errors are shown.
    assert_eq!(run("b", None), "");
}

#[test]
fn the_demo_outputs_the_readme_suggests_are_ignored_by_git() {
    let ignore =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../.gitignore")).unwrap();
    for path in ["/stores/", "/logs/"] {
        assert!(ignore.lines().any(|l| l == path), "{path} in .gitignore");
    }
}

#[test]
fn with_json_a_failure_is_one_json_document_too() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.jsonl");
    let (code, out, err) = acm(&["audit", "replay", s(&missing), "--json"]);
    assert_eq!(code, 3);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["exit_code"], 3);
    assert_eq!(v["error"]["kind"], "cannot_open");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no such file"),
        "{v}"
    );
    assert!(
        err.contains("no such file; give an ACM server's store file"),
        "{err}"
    );

    let (code, out, _) = acm(&["audit", "timeline", s(&missing), "not-a-uuid", "--json"]);
    assert_eq!(code, 2);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["kind"], "usage");

    // A broken log: replay reports it as an error document; verify as its verdict, once.
    let (_, logs, _) = demo(dir.path());
    let text = std::fs::read_to_string(logs.join("mc-a.example.jsonl")).unwrap();
    let forged = dir.path().join("forged.jsonl");
    std::fs::write(&forged, text.replacen("accepted", "rejected", 1)).unwrap();
    let (code, out, _) = acm(&["audit", "replay", s(&forged), "--json"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["kind"], "broken_log");
    let (code, out, _) = acm(&["audit", "verify", s(&forged), "--json"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).expect("one document");
    assert_eq!(v["intact"], false);
    assert_eq!(v["break"]["kind"], "edited_line");
}

#[test]
fn store_backup_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _, _) = demo(dir.path());
    let (code, _, err) = acm(&[
        "store",
        "backup",
        s(&db.join("nope.db")),
        s(&dir.path().join("b1.db")),
    ]);
    assert_eq!(code, 3);
    assert!(
        err.contains("no such file; give the path of an ACM server's store file"),
        "{err}"
    );
    let (code, _, err) = acm(&["store", "backup", s(&db), s(&dir.path().join("b2.db"))]);
    assert_eq!(code, 3);
    assert!(
        err.contains("is a directory; give the path of an ACM server's store file"),
        "{err}"
    );
    assert!(!err.contains("entity not found"), "{err}");

    // A store altered behind its back: the copy is made, does not verify, and is kept.
    let src = db.join("mc-a.example.db");
    let conn = rusqlite::Connection::open(&src).unwrap();
    conn.execute_batch(
        "DROP TRIGGER events_no_update;
         UPDATE events SET payload = CAST(replace(CAST(payload AS TEXT), 'tac-1', 'tac-9') AS BLOB)
         WHERE position = 1;",
    )
    .unwrap();
    drop(conn);
    let copy = dir.path().join("b3.db");
    let (code, _, err) = acm(&["store", "backup", s(&src), s(&copy)]);
    assert_eq!(code, 1, "the source's log is broken");
    assert!(
        err.contains("broken at position 1: the stored link does not match"),
        "{err}"
    );
    assert!(err.contains("kept at"), "{err}");
    assert!(
        !err.contains("Some(") && !err.contains("HashMismatch"),
        "{err}"
    );
    assert!(copy.exists());
    // Replay refuses the altered store, naming the break by position.
    let (code, _, err) = acm(&["audit", "replay", s(&src)]);
    assert_eq!(code, 1);
    assert!(
        err.contains("position 1: the stored link does not match"),
        "{err}"
    );
}
