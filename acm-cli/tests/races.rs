//! Messages and calls that meet each other between two `acm serve` processes: every partner
//! message delivered twice and out of order (the test is the network between the two
//! servers, carrying the very messages their relays send), two devices of one user
//! answering at once, and one submission sent twice at once from two connections.
// A scenario reads best as one function.
#![allow(clippy::too_many_lines)]

mod common;

use acm_core::{Envelope, Event, EventId, IdempotencyKey, PendingItem, RequestId};
use acm_transport_http::wire::{DecisionKind, ResponseSubmission, partner_routes};
use acm_transport_http::{AcmClient, ClientError, Submitted};
use common::partner::{
    PartnerLink, Route, Switch, forwarded_request, forwarded_response, forwarded_withdrawal, of,
    partner_addr, sample, types_of, until_events,
};
use common::{A, ALICE, B, BOB, POLL, Systems, Tweaks, id, provision, until_stage, within};
use reqwest::StatusCode;
use serde_json::json;

async fn submit(alice: &AcmClient, group: &str) -> RequestId {
    let key: IdempotencyKey = id(&format!("races-{group}"));
    match alice.submit(&provision(&[group]), &key).await {
        Ok(Submitted::Queued(accepted)) => accepted.request_id,
        other => panic!("submission of {group} not queued: {other:?}"),
    }
}

/// The identity of every event, in log order: two logs are the same when these are.
fn ids(events: &[Envelope<Event>]) -> Vec<EventId> {
    events.iter().map(|e| e.event_id).collect()
}

const ACCEPT: ResponseSubmission = ResponseSubmission {
    decision: DecisionKind::Accept,
    reason: None,
    responder_alias: None,
};

fn reject() -> ResponseSubmission {
    ResponseSubmission {
        decision: DecisionKind::Reject,
        reason: Some("not now".into()),
        responder_alias: None,
    }
}

/// Asserts a partner API answer: `status`, and `body` exactly.
fn answered(got: &(StatusCode, serde_json::Value), status: StatusCode, body: &serde_json::Value) {
    assert_eq!(&got.0, &status, "{}", got.1);
    assert_eq!(&got.1, body);
}

fn stored() -> serde_json::Value {
    json!({"ack": "stored"})
}

/// Every message between A and B delivered by the test instead of the relays (whose routes
/// refuse every connection meanwhile): a withdrawal before the request it withdraws is
/// refused (404 `unknown_request`, nothing stored); a request twice after it was delivered,
/// and again after its withdrawal, is acknowledged again; a withdrawal twice is answered
/// `withdrawn` again; a response twice, before A heard B's acknowledgement of the request
/// and after, is acknowledged again. No replay adds an event at either server. Then the
/// relays' routes open, and what they send (now all replays, or the acknowledgements still
/// owed) settles both outboxes with each step recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_twice_and_out_of_order() {
    let link_to_b = Switch::start(Route::Refuse).await;
    let link_to_a = Switch::start(Route::Refuse).await;
    let systems = Systems::start_with(
        &Tweaks {
            partner_url: Some(link_to_b.url()),
            ..Tweaks::default()
        },
        &Tweaks {
            partner_url: Some(link_to_a.url()),
            ..Tweaks::default()
        },
    )
    .await;
    let (a, b) = (&systems.a, &systems.b);
    let alice = a.client(ALICE);
    let bob = b.client(BOB);
    let to_b = PartnerLink::new(&systems, A, b);
    let to_a = PartnerLink::new(&systems, B, a);

    let first = submit(&alice, "replay-1").await;
    let second = submit(&alice, "replay-2").await;
    let request_1 = forwarded_request(a, first);
    let request_2 = forwarded_request(a, second);
    alice
        .withdraw(second)
        .await
        .unwrap_or_else(|e| panic!("withdrawal: {e}"));
    let withdrawal_2 = forwarded_withdrawal(a, second);
    assert_eq!(b.events().len(), 0, "a relay got through");

    // The withdrawal before its request: a typed refusal, nothing stored.
    let got = to_b.post(partner_routes::WITHDRAWALS, &withdrawal_2).await;
    assert_eq!(got.0, StatusCode::NOT_FOUND, "{}", got.1);
    assert_eq!(
        got.1["type"], "urn:acm:problem:unknown_request",
        "{}",
        got.1
    );
    assert_eq!(got.1["error"]["error"], "unknown_request", "{}", got.1);
    assert_eq!(b.events().len(), 0, "B recorded a refused withdrawal");

    // The first request, then twice again.
    let got = to_b
        .post(partner_routes::PROVISION_REQUESTS, &request_1)
        .await;
    answered(&got, StatusCode::OK, &stored());
    let after_first = b.events();
    assert_eq!(types_of(&after_first, first), ["stored", "verified"]);
    for _ in 0..2 {
        let got = to_b
            .post(partner_routes::PROVISION_REQUESTS, &request_1)
            .await;
        answered(&got, StatusCode::OK, &stored());
        assert_eq!(ids(&b.events()), ids(&after_first), "a replayed request");
    }

    // The second request and its withdrawal; each twice more, the request also after it
    // was withdrawn.
    let got = to_b
        .post(partner_routes::PROVISION_REQUESTS, &request_2)
        .await;
    answered(&got, StatusCode::OK, &stored());
    let got = to_b.post(partner_routes::WITHDRAWALS, &withdrawal_2).await;
    answered(&got, StatusCode::OK, &json!({"ack": "withdrawn"}));
    let after_second = b.events();
    assert_eq!(
        types_of(&after_second, second),
        ["stored", "verified", "withdrawn"]
    );
    for _ in 0..2 {
        let got = to_b.post(partner_routes::WITHDRAWALS, &withdrawal_2).await;
        answered(&got, StatusCode::OK, &json!({"ack": "withdrawn"}));
        let got = to_b
            .post(partner_routes::PROVISION_REQUESTS, &request_2)
            .await;
        answered(&got, StatusCode::OK, &stored());
        assert_eq!(
            ids(&b.events()),
            ids(&after_second),
            "a replayed withdrawal"
        );
    }

    // Bob answers the first; B's response is owed to A, and its route refuses.
    let pending = bob
        .pending()
        .await
        .unwrap_or_else(|e| panic!("bob's download: {e}"));
    let offered: Vec<RequestId> = pending
        .items
        .iter()
        .map(|i| match i {
            PendingItem::Request { request, .. } => request.request_id,
            other => panic!("not a request: {other:?}"),
        })
        .collect();
    assert_eq!(offered, [first], "the withdrawn request was offered");
    bob.respond(first, &ACCEPT)
        .await
        .unwrap_or_else(|e| panic!("bob's response: {e}"));
    until_events(b, first, "B's response and its hook", |t| {
        t.iter().any(|t| t == "responded") && t.iter().any(|t| t == "acceptance_applied")
    })
    .await;
    let response_1 = forwarded_response(b, first);
    let answered_at_b = b.events();

    // The response, before A has heard B's acknowledgement of the request, then twice more.
    assert_eq!(
        types_of(&a.events(), first),
        ["submitted", "authorized", "forwarded"]
    );
    let got = to_a
        .post(partner_routes::PROVISION_RESPONSES, &response_1)
        .await;
    answered(&got, StatusCode::OK, &stored());
    let after_response = a.events();
    assert_eq!(
        types_of(&after_response, first),
        [
            "submitted",
            "authorized",
            "forwarded",
            "partner_stored",
            "response_received"
        ]
    );
    for _ in 0..2 {
        let got = to_a
            .post(partner_routes::PROVISION_RESPONSES, &response_1)
            .await;
        answered(&got, StatusCode::OK, &stored());
        assert_eq!(
            ids(&a.events()),
            ids(&after_response),
            "a replayed response"
        );
    }
    // The first request once more, after its response: B still acknowledges it.
    let got = to_b
        .post(partner_routes::PROVISION_REQUESTS, &request_1)
        .await;
    answered(&got, StatusCode::OK, &stored());
    assert_eq!(ids(&b.events()), ids(&answered_at_b));
    until_stage(&alice, first, "answered").await;

    // The relays' routes open: A sends the second request and its withdrawal, B the
    // response; B has every one of them, A has the response.
    link_to_b.set(Route::Forward(partner_addr(b)));
    link_to_a.set(Route::Forward(partner_addr(a)));
    for server in [a, b] {
        within(&format!("{}'s outbox to empty", server.system), async {
            while sample(&server.metrics().await, "acm_outbox_depth") != Some(0.0) {
                tokio::time::sleep(POLL).await;
            }
        })
        .await;
    }
    until_stage(&alice, second, "withdrawn").await;
    let (a_log, b_log) = (a.events(), b.events());
    assert_eq!(
        types_of(&a_log, first),
        types_of(&after_response, first),
        "A recorded the relayed response"
    );
    assert_eq!(
        types_of(&a_log, second),
        [
            "submitted",
            "authorized",
            "forwarded",
            "withdrawal_requested",
            "partner_stored",
            "withdrawn"
        ]
    );
    // B records only that A acknowledged its response.
    assert_eq!(&ids(&b_log)[..answered_at_b.len()], ids(&answered_at_b));
    assert_eq!(
        types_of(&b_log, first),
        [
            "stored",
            "verified",
            "delivered",
            "responded",
            "acceptance_applied",
            "response_forwarded"
        ]
    );
    assert_eq!(
        types_of(&b_log, second),
        types_of(&after_second, second),
        "B recorded the relayed request or withdrawal"
    );
    assert_eq!(b_log.len(), answered_at_b.len() + 1);
}

/// What one of two simultaneous answers got: the winner 204, the other a 409 saying the
/// request is closed because it was answered.
fn one_wins(round: usize, answers: [(DecisionKind, Result<(), ClientError>); 2]) -> DecisionKind {
    let mut winner = None;
    for (decision, answer) in answers {
        match answer {
            Ok(()) => {
                assert!(winner.is_none(), "round {round}: both answers were taken");
                winner = Some(decision);
            }
            Err(ClientError::Problem(problem)) => {
                assert_eq!(problem.status, 409, "round {round}: {problem:?}");
                assert_eq!(problem.code(), "closed", "round {round}: {problem:?}");
                assert_eq!(
                    problem.extensions.get("error"),
                    Some(&json!({"error": "closed", "closure": "answered"})),
                    "round {round}: {problem:?}"
                );
            }
            Err(other) => panic!("round {round}: {decision:?}: {other}"),
        }
    }
    winner.unwrap_or_else(|| panic!("round {round}: neither answer was taken"))
}

/// Bob's two devices answer the same request at the same moment, one accepting and one
/// rejecting, each on its own connection: one answer is taken (204), the other is refused
/// with 409 `closed` (answered), B records one response, and it is the one A receives.
/// Several rounds, with the devices swapping decisions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_answer_at_once() {
    const ROUNDS: usize = 6;
    let systems = Systems::start().await;
    let alice = systems.a.client(ALICE);
    let phone = systems.b.client(BOB);
    let desk = systems.b.client(BOB);

    for round in 0..ROUNDS {
        let request = submit(&alice, &format!("answer-{round}")).await;
        until_stage(&alice, request, "stored_at_partner").await;
        // Both devices download (so both connections are open), and the request is
        // delivered to bob.
        for device in [&phone, &desk] {
            let pending = device
                .pending()
                .await
                .unwrap_or_else(|e| panic!("download: {e}"));
            assert!(pending.items.iter().any(
                |i| matches!(i, PendingItem::Request { request: r, .. } if r.request_id == request)
            ));
        }
        let (accepting, rejecting) = if round % 2 == 0 {
            (&phone, &desk)
        } else {
            (&desk, &phone)
        };
        let reject = reject();
        let (accepted, rejected) = tokio::join!(
            accepting.respond(request, &ACCEPT),
            rejecting.respond(request, &reject)
        );
        let decision = one_wins(
            round,
            [
                (DecisionKind::Accept, accepted),
                (DecisionKind::Reject, rejected),
            ],
        );

        let events = systems.b.events();
        let responses: Vec<&acm_core::AcmResponse> = of(&events, request)
            .iter()
            .filter_map(|e| match &e.payload {
                Event::Responded { response, .. } => Some(response),
                _ => None,
            })
            .collect();
        assert_eq!(responses.len(), 1, "round {round}: {responses:?}");
        let accepted = responses[0].outcome.is_accepted();
        assert_eq!(accepted, decision == DecisionKind::Accept, "round {round}");

        until_stage(&alice, request, "answered").await;
        let status = alice
            .status(request)
            .await
            .unwrap_or_else(|e| panic!("status: {e}"));
        let received = status
            .response
            .unwrap_or_else(|| panic!("round {round}: no response at A"));
        assert_eq!(received.outcome.is_accepted(), accepted, "round {round}");
    }
}

/// The same submission with the same idempotency key, sent at the same moment from two
/// connections: both answers name one request, and A records one submission per key (and
/// B stores each request once). Several rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_from_two_connections_at_once() {
    const ROUNDS: usize = 8;
    let systems = Systems::start().await;
    let left = systems.a.client(ALICE);
    let right = systems.a.client(ALICE);
    for client in [&left, &right] {
        client
            .pending()
            .await
            .unwrap_or_else(|e| panic!("warm-up download: {e}"));
    }

    let mut requests = Vec::new();
    for round in 0..ROUNDS {
        let key: IdempotencyKey = id(&format!("same-key-{round}"));
        let submission = provision(&[&format!("same-key-{round}")]);
        let (one, other) = tokio::join!(
            left.submit(&submission, &key),
            right.submit(&submission, &key)
        );
        let request = match (one, other) {
            (Ok(Submitted::Queued(one)), Ok(Submitted::Queued(other))) => {
                assert_eq!(one.request_id, other.request_id, "round {round}");
                one.request_id
            }
            other => panic!("round {round}: {other:?}"),
        };
        requests.push(request);
        let events = systems.a.events();
        let submitted: Vec<RequestId> = events
            .iter()
            .filter(|e| matches!(e.payload, Event::Submitted { .. }))
            .map(|e| e.correlation_id)
            .collect();
        assert_eq!(submitted, requests, "round {round}");
    }
    for request in &requests {
        until_stage(&left, *request, "stored_at_partner").await;
    }
    let events = systems.b.events();
    for request in &requests {
        assert_eq!(types_of(&events, *request), ["stored", "verified"]);
    }
    assert_eq!(events.len(), 2 * ROUNDS);
}
