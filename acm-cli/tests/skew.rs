//! Two `acm serve` processes whose clocks are ten minutes apart each way from the test's,
//! under libfaketime: the procedure works, the pending time at B and the send deadline at A
//! each run by that server's own clock, and each server's identity management server shares
//! that server's clock (tokens are issued by `acm gen-token` under the same skew).
//!
//! libfaketime is Debian's `faketime` package. Without it the tests are skipped with a
//! message, except under CI (`CI=true`), where they fail.
// A scenario reads best as one function.
#![allow(clippy::too_many_lines)]

mod common;

use std::path::Path;
use std::time::Duration;

use acm_core::{Event, IdempotencyKey, Outcome, PendingItem, RejectionReason, RequestId};
use acm_transport_http::wire::{DecisionKind, ResponseSubmission};
use acm_transport_http::{AcmClient, ClientError, Submitted};
use chrono::{DateTime, Utc};
use common::partner::{types_of, until_events};
use common::{ALICE, BOB, Server, Systems, Tweaks, id, provision, until_stage};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// The skew of each server from the test's clock.
const SKEW_MINUTES: i64 = 10;

/// Whether libfaketime is here; without it, a skip outside CI and a failure under CI.
fn libfaketime() -> bool {
    if Path::new(LIBFAKETIME).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{LIBFAKETIME} is missing: install Debian's faketime package"
    );
    #[allow(clippy::print_stderr)] // the skip must be visible in the test's output
    {
        eprintln!("skipped: {LIBFAKETIME} is missing (Debian's faketime package)");
    }
    false
}

/// The process environment that puts a server's wall clock `minutes` away from the test's;
/// its monotonic clock (tokio's timers) is left alone.
fn skewed(minutes: i64) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".into(), LIBFAKETIME.into()),
        ("FAKETIME".into(), format!("{minutes:+}m")),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ]
}

/// A token for `user` issued by `server`'s identity management server, which shares the
/// server's clock: `acm gen-token` run under the server's environment.
fn token(systems: &Systems, server: &Server, user: &str) -> String {
    let key = systems
        .dir()
        .join("certs")
        .join("tokens")
        .join("token-key.pem");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_acm"))
        .arg("gen-token")
        .arg("--key")
        .arg(&key)
        .args([
            "--issuer",
            &format!("https://idms.{}", server.system),
            "--audience",
            &format!("acm.{}", server.system),
            "--user",
            user,
        ])
        .envs(server.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run acm gen-token: {e}"));
    assert!(
        out.status.success(),
        "acm gen-token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn client(systems: &Systems, server: &Server, user: &str) -> AcmClient {
    AcmClient::new(
        &server.client_url(),
        server.ca_pem(),
        token(systems, server, user),
    )
    .unwrap_or_else(|e| panic!("client of {user}: {e}"))
}

async fn submit(alice: &AcmClient, group: &str) -> RequestId {
    let key: IdempotencyKey = id(&format!("skew-{group}"));
    match alice.submit(&provision(&[group]), &key).await {
        Ok(Submitted::Queued(accepted)) => accepted.request_id,
        other => panic!("submission of {group} not queued: {other:?}"),
    }
}

/// When the request's clock started at `server`: the time its submission (at the primary)
/// or its storing (at the partner) says, by that server's clock.
fn started_at(server: &Server, request: RequestId) -> DateTime<Utc> {
    server
        .events()
        .iter()
        .filter(|e| e.correlation_id == request)
        .find_map(|e| match &e.payload {
            Event::Submitted { at, .. } | Event::Stored { at, .. } => Some(*at),
            _ => None,
        })
        .unwrap_or_else(|| {
            panic!(
                "{} has no submission or storing of {request}",
                server.system
            )
        })
}

/// When `server` recorded the first `event_type` of `request`.
fn recorded_at(server: &Server, request: RequestId, event_type: &str) -> DateTime<Utc> {
    server
        .events()
        .iter()
        .find(|e| e.correlation_id == request && e.event_type == event_type)
        .map_or_else(
            || panic!("{} has no {event_type} of {request}", server.system),
            |e| e.recorded_at,
        )
}

/// Every event of `server` was recorded by a clock `minutes` away from the test's, read
/// between `since` and now: libfaketime does shift the server's clock.
fn recorded_skewed(server: &Server, minutes: i64, since: DateTime<Utc>) {
    let skew = chrono::Duration::minutes(minutes);
    // Generous: only the sign and size of the skew matter, not the moment.
    let slack = chrono::Duration::minutes(2);
    let (earliest, latest) = (since + skew - slack, Utc::now() + skew + slack);
    let events = server.events();
    assert!(!events.is_empty(), "{} recorded nothing", server.system);
    for e in &events {
        assert!(
            e.recorded_at >= earliest && e.recorded_at <= latest,
            "{}'s {} recorded at {}, not {minutes:+} min from the test's clock ({since} .. now)",
            server.system,
            e.event_type,
            e.recorded_at
        );
    }
}

/// A token from the test's own clock, valid for five minutes, is refused by a server whose
/// clock is ten minutes away: expired ahead, not yet valid behind.
async fn clock_token_refused(server: &Server, minutes: i64, user: &str) {
    let token = server
        .issuer()
        .issue(&id(user), Duration::from_mins(5))
        .unwrap_or_else(|e| panic!("token: {e}"));
    let client = AcmClient::new(&server.client_url(), server.ca_pem(), token)
        .unwrap_or_else(|e| panic!("client: {e}"));
    let expected = if minutes > 0 {
        "token_expired"
    } else {
        "token_not_yet_valid"
    };
    match client.pending().await {
        Err(ClientError::Problem(problem)) => {
            assert_eq!(problem.code(), expected, "{}: {problem:?}", server.system);
        }
        other => panic!(
            "{}: a token of the test's clock was not refused: {other:?}",
            server.system
        ),
    }
}

/// Appends `line` to `server`'s `[timing]` (the last table of its file) and starts it again.
async fn retime(server: &mut Server, line: &str) {
    let mut text = std::fs::read_to_string(&server.config)
        .unwrap_or_else(|e| panic!("{}: {e}", server.config.display()));
    text.push_str(line);
    text.push('\n');
    std::fs::write(&server.config, text)
        .unwrap_or_else(|e| panic!("{}: {e}", server.config.display()));
    let exit = server.terminate().await;
    assert_eq!(exit.code(), Some(0), "{}: {exit}", server.system);
    server.restart().await;
}

/// The whole check with A's clock `a` minutes and B's `b` minutes from the test's.
async fn skewed_systems(a: i64, b: i64) {
    let since = Utc::now();
    let mut systems = Systems::start_with(
        &Tweaks {
            env: skewed(a),
            ..Tweaks::default()
        },
        &Tweaks {
            env: skewed(b),
            ..Tweaks::default()
        },
    )
    .await;
    clock_token_refused(&systems.a, a, ALICE).await;
    clock_token_refused(&systems.b, b, BOB).await;
    let alice = client(&systems, &systems.a, ALICE);
    let bob = client(&systems, &systems.b, BOB);

    // Steps 1–14.
    let first = submit(&alice, "skew-1").await;
    until_stage(&alice, first, "stored_at_partner").await;
    let pending = bob
        .pending()
        .await
        .unwrap_or_else(|e| panic!("bob's download: {e}"));
    match pending.items.as_slice() {
        [PendingItem::Request { request, .. }] => assert_eq!(request.request_id, first),
        other => panic!("bob's download: {other:?}"),
    }
    let accept = ResponseSubmission {
        decision: DecisionKind::Accept,
        reason: None,
        responder_alias: None,
    };
    bob.respond(first, &accept)
        .await
        .unwrap_or_else(|e| panic!("bob's response: {e}"));
    until_stage(&alice, first, "answered").await;
    let pending = alice
        .pending()
        .await
        .unwrap_or_else(|e| panic!("alice's download: {e}"));
    match pending.items.as_slice() {
        [PendingItem::Response { request, response }] => {
            assert_eq!(request.request_id, first);
            assert!(response.outcome.is_accepted());
        }
        other => panic!("alice's download: {other:?}"),
    }
    let recorded = alice
        .acknowledge_all(&pending)
        .await
        .unwrap_or_else(|e| panic!("alice's acknowledgement: {e}"));
    assert_eq!(recorded.recorded, 1);
    until_events(&systems.b, first, &format!("B's events of {first}"), |t| {
        t.iter().any(|t| t == "response_forwarded") && t.iter().any(|t| t == "acceptance_applied")
    })
    .await;
    assert_eq!(
        types_of(&systems.a.events(), first),
        [
            "submitted",
            "authorized",
            "forwarded",
            "partner_stored",
            "response_received",
            "response_delivered"
        ]
    );
    let mut b_types = types_of(&systems.b.events(), first);
    b_types[4..].sort();
    assert_eq!(
        b_types,
        [
            "stored",
            "verified",
            "delivered",
            "responded",
            "acceptance_applied",
            "response_forwarded"
        ]
    );
    recorded_skewed(&systems.a, a, since);
    recorded_skewed(&systems.b, b, since);

    // A short pending time at B: the request expires that long after B stored it, by B's
    // clock, whichever way A's clock is off.
    retime(&mut systems.b, "pending_ttl_seconds = 3").await;
    let second = submit(&alice, "skew-2").await;
    let expired = until_stage(&alice, second, "answered").await;
    match expired.response.map(|r| r.outcome) {
        Some(Outcome::Rejected {
            reason: RejectionReason::Expired,
        }) => {}
        other => panic!("not rejected as expired: {other:?}"),
    }
    let waited = recorded_at(&systems.b, second, "expired") - started_at(&systems.b, second);
    assert!(
        waited >= chrono::Duration::seconds(3),
        "expired {waited} after it was stored"
    );
    recorded_skewed(&systems.b, b, since);

    // A short send deadline at A with B gone: undeliverable that long after the submission,
    // by A's clock.
    systems.b.kill().await;
    retime(&mut systems.a, "send_deadline_seconds = 3").await;
    let third = submit(&alice, "skew-3").await;
    until_stage(&alice, third, "undeliverable").await;
    let waited = recorded_at(&systems.a, third, "undeliverable") - started_at(&systems.a, third);
    assert!(
        waited >= chrono::Duration::seconds(3),
        "undeliverable {waited} after the submission"
    );
    recorded_skewed(&systems.a, a, since);
}

/// A ten minutes ahead of the test's clock, B ten minutes behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_ahead_partner_behind() {
    if libfaketime() {
        skewed_systems(SKEW_MINUTES, -SKEW_MINUTES).await;
    }
}

/// A ten minutes behind, B ten minutes ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_behind_partner_ahead() {
    if libfaketime() {
        skewed_systems(-SKEW_MINUTES, SKEW_MINUTES).await;
    }
}
