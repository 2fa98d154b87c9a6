//! `acm load` as a user runs it: a short run between two servers it starts itself.
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn load_runs_full_exchanges_without_errors_and_prints_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_acm"))
        .args(["load", "--duration", "2s", "--concurrency", "2", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "acm load failed: {stderr}\n{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"));
    let exchanges = report["exchanges"].as_u64().unwrap();
    assert!(exchanges > 0, "no exchange done: {report}");
    assert_eq!(report["errors"].as_u64(), Some(0), "{report}");
    // Every exchange made the five client calls at least, and the stores recorded six
    // events on each side for it.
    assert!(report["per_exchange"]["client_calls"].as_f64().unwrap() >= 5.0);
    for side in ["a", "b"] {
        let events = report["per_exchange"][side]["events"].as_f64().unwrap();
        assert!(
            (5.0..=7.0).contains(&events),
            "{side}: {events} events per exchange"
        );
    }
    let baseline = &report["baseline"];
    assert!(baseline["hops"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(baseline["errors"].as_u64(), Some(0), "{report}");
    assert!(report["exchanges_per_raw_hop"].as_f64().unwrap() > 0.0);
}

#[test]
fn load_refuses_a_zero_duration_and_half_an_external_target() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_acm"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["load", "--duration", "0s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("more than zero"));
    let out = run(&["load", "--a-url", "https://localhost:1"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--a-url alone must be a usage error"
    );
}

/// The soak's partner restarts lose nothing: every exchange started finishes (the clients
/// retry what a server that is away could not answer), both stores owe nothing at the end,
/// and each interval has its sample of memory and file descriptors.
#[test]
fn a_soak_with_partner_restarts_finishes_every_exchange_and_leaves_nothing_owed() {
    let out = Command::new(env!("CARGO_BIN_EXE_acm"))
        .args([
            "load",
            "--duration",
            "5s",
            "--concurrency",
            "4",
            "--rate",
            "40",
            "--restart-partner-every",
            "1500ms",
            "--sample-every",
            "1s",
            "--no-baseline",
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "acm load failed: {stderr}\n{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"));
    let restarts = report["partner_restarts_ms"].as_array().unwrap().len();
    assert!(restarts >= 2, "B restarted {restarts} times: {report}");
    assert!(report["exchanges"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["errors"].as_u64(), Some(0), "{report}");
    for owed in ["a_outbox", "b_outbox", "a_pending", "b_pending"] {
        assert_eq!(
            report["left_over"][owed].as_u64(),
            Some(0),
            "{owed}: {report}"
        );
    }
    // A's store recorded one exchange's six events for each one done: none twice.
    let events = report["per_exchange"]["a"]["events"].as_f64().unwrap();
    assert!(
        (5.9..=6.1).contains(&events),
        "A: {events} events per exchange"
    );
    let samples = report["samples"].as_array().unwrap();
    assert!(samples.len() >= 3, "{report}");
    for s in samples {
        assert!(s["rss_kib"].as_u64().unwrap() > 0, "{s}");
        assert!(s["fds"].as_u64().unwrap() > 0, "{s}");
    }
}
