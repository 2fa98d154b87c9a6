//! A partner that is away, and one that hangs, between two `acm serve` processes: what the
//! primary's `/metrics` shows meanwhile, that its relay keeps trying without hanging, that
//! everything queued reaches the partner once it is back, and that the send deadline turns
//! a request nobody acknowledges into an undeliverable notice for its requester.
// A scenario reads best as one function.
#![allow(clippy::too_many_lines)]

mod common;

use acm_core::{DownloadedItem, Event, IdempotencyKey, PendingItem, RequestId};
use acm_transport_http::wire::RequestStatus;
use acm_transport_http::{AcmClient, ClientError, Submitted};
use common::partner::{Route, Stall, Switch, of, partner_addr, sample, sample_or_zero};
use common::{A, ALICE, POLL, Server, Systems, Tweaks, id, provision, until_stage, within};

const DEPTH: &str = "acm_outbox_depth";
const OLDEST_AGE: &str = "acm_outbox_oldest_age_seconds";
const MAX_ATTEMPTS: &str = "acm_outbox_max_attempts";
const UNREACHABLE: &str = "acm_relay_sends_total{outcome=\"unreachable\"}";
const ACKNOWLEDGED: &str = "acm_relay_sends_total{outcome=\"acknowledged\"}";
const UNDELIVERABLE: &str = "acm_duties_total{duty=\"undeliverable\"}";

/// Requests queued behind each outage.
const QUEUED: usize = 4;

async fn submit(alice: &AcmClient, group: &str) -> RequestId {
    let key: IdempotencyKey = id(&format!("outage-{group}"));
    match alice.submit(&provision(&[group]), &key).await {
        Ok(Submitted::Queued(accepted)) => {
            assert_eq!(accepted.status, "queued");
            accepted.request_id
        }
        other => panic!("submission of {group} not queued: {other:?}"),
    }
}

async fn status(alice: &AcmClient, request: RequestId) -> RequestStatus {
    alice
        .status(request)
        .await
        .unwrap_or_else(|e| panic!("status of {request}: {e}"))
}

/// Scrapes `server` until `done` holds for the text; that text.
async fn until_metrics(server: &Server, what: &str, done: impl Fn(&str) -> bool) -> String {
    within(what, async {
        loop {
            let text = server.metrics().await;
            if done(&text) {
                return text;
            }
            tokio::time::sleep(POLL).await;
        }
    })
    .await
}

fn gauge(text: &str, name: &str) -> f64 {
    sample(text, name).unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

#[allow(clippy::cast_precision_loss)] // small counts
fn float(n: usize) -> f64 {
    n as f64
}

/// How many times each of `requests` was stored at `partner`.
fn stored_counts(partner: &Server, requests: &[RequestId]) -> Vec<usize> {
    let events = partner.events();
    requests
        .iter()
        .map(|r| {
            of(&events, *r)
                .iter()
                .filter(|e| matches!(e.payload, Event::Stored { .. }))
                .count()
        })
        .collect()
}

/// Waits until A's outbox holds `depth` messages, each tried at least twice, with
/// `unreachable_since` + `more` failed sends counted; checks that the oldest message's age
/// grows while it waits.
async fn outage_shows(
    server: &Server,
    what: &str,
    depth: usize,
    unreachable_since: f64,
    more: usize,
) {
    let text = until_metrics(
        server,
        &format!("{what}: the outbox to show the retries"),
        |m| {
            sample(m, DEPTH) == Some(float(depth))
                && sample(m, MAX_ATTEMPTS).is_some_and(|a| a >= 2.0)
                && sample_or_zero(m, UNREACHABLE) >= unreachable_since + float(more)
        },
    )
    .await;
    let age = gauge(&text, OLDEST_AGE);
    assert!(age >= 0.0, "{OLDEST_AGE} {age}");
    until_metrics(
        server,
        &format!("{what}: the oldest message to grow older"),
        |m| sample(m, OLDEST_AGE).is_some_and(|later| later > age),
    )
    .await;
}

/// B away, killed (-9) and then stopped gracefully: alice's requests are queued at A, whose
/// `/metrics` shows them in the outbox with a growing age, attempts and unreachable sends;
/// once B is back on its store each request is stored there once and the outbox is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_down_for_a_while() {
    let mut systems = Systems::start().await;
    let alice = systems.a.client(ALICE);
    let mut everything = Vec::new();

    for signal in ["KILL", "TERM"] {
        let before = systems.a.metrics().await;
        let exit = systems.b.signal(signal).await;
        if signal == "TERM" {
            assert_eq!(exit.code(), Some(0), "B on SIGTERM: {exit}");
        } else {
            assert!(!exit.success(), "B on SIGKILL: {exit}");
        }

        let mut requests = Vec::new();
        for i in 0..QUEUED {
            requests.push(submit(&alice, &format!("{signal}-{i}")).await);
        }
        outage_shows(
            &systems.a,
            &format!("B stopped by SIG{signal}"),
            QUEUED,
            sample_or_zero(&before, UNREACHABLE),
            QUEUED,
        )
        .await;
        for r in &requests {
            assert_eq!(status(&alice, *r).await.stage, "queued");
        }
        assert_eq!(stored_counts(&systems.b, &requests), vec![0; QUEUED]);

        systems.b.restart().await;
        for r in &requests {
            until_stage(&alice, *r, "stored_at_partner").await;
        }
        let after = until_metrics(&systems.a, "an empty outbox", |m| {
            sample(m, DEPTH) == Some(0.0)
        })
        .await;
        assert!(
            gauge(&after, ACKNOWLEDGED) >= sample_or_zero(&before, ACKNOWLEDGED) + float(QUEUED),
            "{after}"
        );
        assert_eq!(sample(&after, OLDEST_AGE), Some(0.0), "{after}");
        everything.extend(requests);
        assert_eq!(
            stored_counts(&systems.b, &everything),
            vec![1; everything.len()]
        );
    }
}

/// A's partner URL leads to something that takes the connection and never answers: first a
/// TCP listener that never writes, then a partner API that completes mutual TLS, reads the
/// call and leaves it unanswered. With a short `send_timeout_ms` the relay keeps trying
/// (attempts counted, unreachable sends in `/metrics`, each attempt reaching the hanging
/// end), alice's status calls are answered meanwhile, and once the route leads to B every
/// request is stored there once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_that_never_answers() {
    let switch = Switch::start(Route::Hole).await;
    let a = Tweaks {
        partner_url: Some(switch.url()),
        timing: vec!["send_timeout_ms = 1000".into()],
        ..Tweaks::default()
    };
    let systems = Systems::start_with(&a, &Tweaks::default()).await;
    let stall = Stall::start(&systems, common::B, A);
    let alice = systems.a.client(ALICE);
    let mut everything = Vec::new();

    for (what, route) in [
        ("a listener that never writes", Route::Hole),
        (
            "a partner API that never answers",
            Route::Forward(stall.addr()),
        ),
    ] {
        switch.set(route);
        let (held, calls) = (switch.held(), stall.calls());
        let before = systems.a.metrics().await;
        let mut requests = Vec::new();
        for i in 0..QUEUED {
            requests.push(submit(&alice, &format!("hang-{}-{i}", everything.len())).await);
        }
        outage_shows(
            &systems.a,
            what,
            QUEUED,
            sample_or_zero(&before, UNREACHABLE),
            2 * QUEUED,
        )
        .await;
        // The attempts reached the end that hangs: they are not failing to connect.
        if route == Route::Hole {
            assert!(switch.held() > held, "{what}: no connection was held");
        } else {
            assert!(
                stall.calls() >= calls + QUEUED,
                "{what}: {} calls",
                stall.calls()
            );
        }
        for r in &requests {
            assert_eq!(status(&alice, *r).await.stage, "queued", "{what}");
        }

        switch.set(Route::Forward(partner_addr(&systems.b)));
        for r in &requests {
            until_stage(&alice, *r, "stored_at_partner").await;
        }
        until_metrics(&systems.a, "an empty outbox", |m| {
            sample(m, DEPTH) == Some(0.0)
        })
        .await;
        everything.extend(requests);
        assert_eq!(
            stored_counts(&systems.b, &everything),
            vec![1; everything.len()],
            "{what}"
        );
    }
}

/// With `send_deadline_seconds = 2` and B gone for good, alice's request becomes
/// undeliverable: its status says so, she is notified, her download lists it as an
/// undeliverable notice until she acknowledges it, it can no longer be withdrawn, A recorded
/// it no earlier than the deadline after the submission, and the outbox no longer holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_send_deadline() {
    let a = Tweaks {
        timing: vec!["send_deadline_seconds = 2".into()],
        ..Tweaks::default()
    };
    let mut systems = Systems::start_with(&a, &Tweaks::default()).await;
    let alice = systems.a.client(ALICE);
    systems.b.kill().await;
    let mut stream = alice
        .notifications(None)
        .await
        .unwrap_or_else(|e| panic!("alice's stream: {e}"));

    let request = submit(&alice, "deadline-1").await;
    until_metrics(&systems.a, "the request to be tried", |m| {
        sample(m, DEPTH) == Some(1.0) && sample_or_zero(m, UNREACHABLE) >= 1.0
    })
    .await;
    let undeliverable = until_stage(&alice, request, "undeliverable").await;
    assert!(!undeliverable.delivered);
    assert_eq!(undeliverable.response, None);

    let notice = within("alice's notice", stream.next())
        .await
        .unwrap_or_else(|| panic!("alice's stream ended"))
        .unwrap_or_else(|e| panic!("alice's stream failed: {e}"));
    assert_eq!(notice.notification.mc_service_id.as_str(), ALICE);

    let pending = alice
        .pending()
        .await
        .unwrap_or_else(|e| panic!("alice's download: {e}"));
    match pending.items.as_slice() {
        [PendingItem::Undeliverable { request: r }] => assert_eq!(r.request_id, request),
        other => panic!("alice's download is not the undeliverable notice: {other:?}"),
    }

    let events = systems.a.events();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_ref()).collect();
    assert_eq!(
        types,
        ["submitted", "authorized", "forwarded", "undeliverable"]
    );
    // The deadline runs from the submission's time (`at`); the event is recorded a little
    // after it.
    let Event::Submitted { at: submitted, .. } = &events[0].payload else {
        panic!("not a submission: {:?}", events[0]);
    };
    let waited = events[3].recorded_at - *submitted;
    assert!(
        waited >= chrono::Duration::seconds(2),
        "given up {waited} after the submission"
    );

    let metrics = until_metrics(&systems.a, "an empty outbox", |m| {
        sample(m, DEPTH) == Some(0.0)
    })
    .await;
    assert!(gauge(&metrics, UNDELIVERABLE) >= 1.0, "{metrics}");
    assert_eq!(sample(&metrics, MAX_ATTEMPTS), Some(0.0), "{metrics}");

    match alice.withdraw(request).await {
        Err(ClientError::Problem(problem)) => {
            assert_eq!(problem.code(), "closed");
            assert_eq!(problem.status, 409);
            assert_eq!(
                problem.extensions.get("error"),
                Some(&serde_json::json!({"error": "closed", "closure": "undeliverable"})),
                "{problem:?}"
            );
        }
        other => panic!("withdrawal of an undeliverable request: {other:?}"),
    }

    let recorded = alice
        .acknowledge(&[DownloadedItem::Undeliverable(request)])
        .await
        .unwrap_or_else(|e| panic!("alice's acknowledgement: {e}"));
    assert_eq!(recorded.recorded, 1);
    let done = status(&alice, request).await;
    assert_eq!(done.stage, "undeliverable");
    assert!(done.delivered);
    let pending = alice
        .pending()
        .await
        .unwrap_or_else(|e| panic!("alice's download: {e}"));
    assert_eq!(pending.items, []);
    assert_eq!(
        common::types(&systems.a.events()),
        [
            "submitted",
            "authorized",
            "forwarded",
            "undeliverable",
            "undeliverable_delivered"
        ]
    );
}
