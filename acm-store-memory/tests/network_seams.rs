//! The seams between the systems and their clients: directory outages, idempotent
//! submissions and answers, several sessions of one user, downloads acknowledged apart, and
//! the send deadline.
// A failed unwrap is a failed test; a scenario reads best as one function.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use acm_core::{
    AcmServer, Decision, IdempotencyKey, McServiceId, Outcome, PendingItem, RequestId,
    RequestState, ServiceError, StreamId, Target,
};
use acm_store_memory::MemoryAcmStore;
use acm_store_memory::fixture::{TwoSystems, alice, bob, id, provision};
use chrono::Duration;
use futures_executor::block_on;

fn types(store: &MemoryAcmStore, request: RequestId) -> Vec<String> {
    store
        .snapshot()
        .into_iter()
        .filter(|e| e.stream_id == StreamId(request))
        .map(|e| e.event_type.into_owned())
        .collect()
}

async fn pending(server: &AcmServer, user: &McServiceId) -> Vec<RequestId> {
    server.pending_for(user).await.unwrap()
}

fn key(s: &str) -> IdempotencyKey {
    id(s)
}

#[test]
fn a_directory_outage_at_a_during_submit_records_nothing_and_the_retry_succeeds() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        sys.a.directory.set_available(false);
        match sys.alice_provides(Target::User(bob()), 1).await {
            Err(ServiceError::Unavailable(_)) => {}
            other => panic!("expected unavailable, got {other:?}"),
        }
        assert!(sys.a.store.is_empty(), "nothing recorded");
        assert_eq!(sys.a.server.outbox_status().await.unwrap().depth, 0);

        sys.a.directory.set_available(true);
        let request = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
        assert_eq!(
            types(&sys.a.store, request),
            ["submitted", "authorized", "forwarded"]
        );
        sys.settle().await.unwrap();
        assert_eq!(pending(&sys.b.server, &bob()).await, [request]);
    });
}

#[test]
fn an_outage_at_b_leaves_the_message_unacknowledged_until_b_is_back() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let request = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
        sys.b.directory.set_available(false);
        let report = sys.a.server.tick().await;
        assert_eq!(report.relay.acknowledged, 0);
        assert_eq!(
            report.relay.unreachable + report.relay.refused,
            1,
            "{:?}",
            report.relay
        );
        assert!(sys.b.store.is_empty(), "nothing stored at B");
        assert_eq!(sys.a.server.outbox_status().await.unwrap().depth, 1);
        assert_eq!(
            types(&sys.a.store, request),
            ["submitted", "authorized", "forwarded"]
        );

        sys.b.directory.set_available(true);
        // Past any back-off (a refused message waits for the refused-message retry).
        sys.clock
            .advance(sys.a.server.config().refused_retry + Duration::seconds(1));
        sys.settle().await.unwrap();
        assert_eq!(types(&sys.b.store, request), ["stored", "verified"]);
        assert_eq!(
            types(&sys.a.store, request).last().map(String::as_str),
            Some("partner_stored")
        );
        assert_eq!(sys.a.server.outbox_status().await.unwrap().depth, 0);
        assert_eq!(pending(&sys.b.server, &bob()).await, [request]);
    });
}

#[test]
fn a_submit_retried_with_its_key_gets_the_same_id_and_another_body_conflicts() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let submission = provision(Target::User(bob()), 2).with_key(key("retry-1"));
        let first = sys
            .a
            .server
            .submit(&alice(), submission.clone())
            .await
            .unwrap();
        let events = sys.a.store.len();
        let again = sys.a.server.submit(&alice(), submission).await.unwrap();
        assert_eq!(again, first, "the same request id");
        assert_eq!(sys.a.store.len(), events, "nothing recorded by the retry");

        let other = provision(Target::User(bob()), 3).with_key(key("retry-1"));
        match sys.a.server.submit(&alice(), other).await {
            Err(ServiceError::IdempotencyConflict { key: k, request_id }) => {
                assert_eq!(k, key("retry-1"));
                assert_eq!(request_id, first);
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(
            sys.a.store.len(),
            events,
            "nothing recorded by the conflict"
        );
        assert_eq!(sys.a.server.outbox_status().await.unwrap().depth, 1);
    });
}

#[test]
fn both_sessions_of_bob_are_notified_and_dropping_one_keeps_him_logged_on() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let phone = sys.b.log_on(&bob()).await.unwrap();
        let desk = sys.b.log_on(&bob()).await.unwrap();
        assert_eq!(sys.b.server.sessions(), 2);
        assert!(phone.try_next().is_none() && desk.try_next().is_none());
        sys.alice_provides(Target::User(bob()), 1).await.unwrap();
        sys.settle().await.unwrap();
        for session in [&phone, &desk] {
            let notice = session.try_next().expect("each session is notified");
            assert_eq!(notice.mc_service_id, bob());
            assert!(session.try_next().is_none(), "one notice");
        }
        drop(phone);
        assert!(
            sys.b.server.is_logged_on(&bob()),
            "the other session remains"
        );
        assert_eq!(sys.b.server.sessions(), 1);
        // The remaining session still receives.
        sys.alice_provides(Target::User(bob()), 2).await.unwrap();
        sys.settle().await.unwrap();
        assert_eq!(desk.try_next().map(|n| n.mc_service_id), Some(bob()));
        drop(desk);
        assert!(!sys.b.server.is_logged_on(&bob()));
    });
}

#[test]
fn a_retried_answer_with_the_same_decision_succeeds_and_records_nothing() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let request = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
        sys.settle().await.unwrap();
        sys.b.server.download_pending(&bob()).await.unwrap();
        let b = &sys.b.server;
        b.respond(&bob(), None, request, Decision::Accept)
            .await
            .unwrap();
        let recorded = types(&sys.b.store, request);
        assert_eq!(recorded, ["stored", "verified", "delivered", "responded"]);
        b.respond(&bob(), None, request, Decision::Accept)
            .await
            .unwrap();
        assert_eq!(types(&sys.b.store, request), recorded, "nothing recorded");
        // Another answer is refused: the request is answered.
        assert!(matches!(
            b.respond(&bob(), None, request, Decision::Reject { reason: None })
                .await,
            Err(ServiceError::Domain(_))
        ));
        // Still retried after the response went out.
        sys.settle().await.unwrap();
        b.respond(&bob(), None, request, Decision::Accept)
            .await
            .unwrap();
        assert_eq!(
            types(&sys.b.store, request)
                .iter()
                .filter(|t| *t == "responded")
                .count(),
            1
        );
    });
}

#[test]
fn a_download_not_acknowledged_returns_the_same_items_until_it_is() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let r1 = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
        let r2 = sys.alice_provides(Target::User(bob()), 2).await.unwrap();
        sys.settle().await.unwrap();
        sys.bob_answers(r1, Decision::Accept).await.unwrap();
        sys.bob_answers(r2, Decision::Reject { reason: None })
            .await
            .unwrap();
        let a = &sys.a.server;
        let first = a.download_pending(&alice()).await.unwrap();
        assert_eq!(first.items.len(), 2);
        assert!(
            first
                .items
                .iter()
                .all(|i| matches!(i, PendingItem::Response { .. }))
        );
        let second = a.download_pending(&alice()).await.unwrap();
        assert_eq!(second, first, "the same items again");
        assert_eq!(pending(a, &alice()).await, [r1, r2]);
        assert!(!types(&sys.a.store, r1).contains(&"response_delivered".to_owned()));

        let receipts: Vec<_> = second.items.iter().map(PendingItem::receipt).collect();
        assert_eq!(
            a.acknowledge_download(&alice(), &receipts).await.unwrap(),
            2
        );
        assert!(pending(a, &alice()).await.is_empty());
        assert!(a.download_pending(&alice()).await.unwrap().items.is_empty());
        // Acknowledging again changes nothing.
        assert_eq!(
            a.acknowledge_download(&alice(), &receipts).await.unwrap(),
            0
        );
        for r in [r1, r2] {
            assert_eq!(
                types(&sys.a.store, r).last().map(String::as_str),
                Some("response_delivered")
            );
        }
    });
}

/// A primary whose partner never acknowledged request 1 within the deadline: the request is
/// undeliverable at A, and alice has downloaded the notice (not yet acknowledged). Returns
/// the systems, the request and the download.
async fn given_up() -> (TwoSystems, RequestId, acm_core::PendingAcmData) {
    let sys = TwoSystems::with_config(|mut c| {
        c.send_deadline = Some(Duration::minutes(10));
        c
    })
    .await
    .unwrap();
    sys.network.set_link(&sys.a.id, &sys.b.id, false);
    let request = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
    sys.clock.advance(Duration::minutes(11));
    assert_eq!(sys.a.server.tick().await.undeliverable, 1);
    let data = sys.a.server.download_pending(&alice()).await.unwrap();
    (sys, request, data)
}

/// The partner stored the request after all (its acknowledgement was lost) and answers
/// it; the response reaches A after alice downloaded the undeliverable notice. Her
/// acknowledgement of that notice must not swallow the response she has never seen.
#[test]

fn acknowledging_the_undeliverable_notice_does_not_swallow_a_later_response() {
    block_on(async {
        let (sys, request, data) = given_up().await;
        // B got the request through another path (a resend whose ack was lost).
        let forward = match sys.a.server.state(request).await.unwrap() {
            RequestState::Primary(p) => acm_core::PartnerMessage::Request {
                message_id: p.forward.unwrap().1,
                request: p.request,
            },
            other => panic!("expected a primary state, got {other:?}"),
        };
        sys.b.server.receive(&sys.a.id, forward).await.unwrap();
        sys.network.set_link(&sys.a.id, &sys.b.id, true);
        sys.bob_answers(request, Decision::Accept).await.unwrap();
        match sys.a.server.state(request).await.unwrap() {
            RequestState::Primary(p) => assert!(p.response.is_some(), "A has the answer"),
            other => panic!("expected a primary state, got {other:?}"),
        }
        // Alice acknowledges what she downloaded: the undeliverable notice only.
        let receipts: Vec<_> = data.items.iter().map(PendingItem::receipt).collect();
        sys.a
            .server
            .acknowledge_download(&alice(), &receipts)
            .await
            .unwrap();
        let items = sys.a.server.download_pending(&alice()).await.unwrap().items;
        match items.as_slice() {
            [PendingItem::Response { response, .. }] => {
                assert_eq!(response.outcome, Outcome::Accepted);
            }
            other => panic!("the response alice never saw is still pending, got {other:?}"),
        }
    });
}

#[test]
fn past_the_send_deadline_a_request_is_undeliverable_and_a_late_ack_does_not_reopen_it() {
    block_on(async {
        let sys = TwoSystems::with_config(|mut c| {
            c.send_deadline = Some(Duration::minutes(10));
            c
        })
        .await
        .unwrap();
        sys.network.set_link(&sys.a.id, &sys.b.id, false);
        let request = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
        let report = sys.a.server.tick().await;
        assert_eq!((report.undeliverable, report.relay.unreachable), (0, 1));

        sys.clock.advance(Duration::minutes(9));
        assert_eq!(sys.a.server.tick().await.undeliverable, 0, "not yet");
        sys.clock.advance(Duration::minutes(2));
        let report = sys.a.server.tick().await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.undeliverable, 1);
        assert_eq!(
            types(&sys.a.store, request).last().map(String::as_str),
            Some("undeliverable")
        );
        assert_eq!(sys.a.server.outbox_status().await.unwrap().depth, 0);

        let session = sys.a.log_on(&alice()).await.unwrap();
        assert_eq!(session.try_next().map(|n| n.mc_service_id), Some(alice()));
        let data = sys.a.server.download_pending(&alice()).await.unwrap();
        match data.items.as_slice() {
            [PendingItem::Undeliverable { request: r }] => assert_eq!(r.request_id, request),
            other => panic!("expected the undeliverable notice, got {other:?}"),
        }

        // The link comes back; whatever arrives late does not reopen the request.
        sys.network.set_link(&sys.a.id, &sys.b.id, true);
        sys.clock.advance(Duration::minutes(5));
        sys.settle().await.unwrap();
        assert!(sys.b.store.is_empty(), "nothing is sent after giving up");
        let late = acm_core::PartnerMessage::Request {
            message_id: match sys
                .a
                .store
                .snapshot()
                .iter()
                .find_map(|e| match &e.payload {
                    acm_core::Event::Forwarded { message_id, .. } => Some(*message_id),
                    _ => None,
                }) {
                Some(m) => m,
                None => panic!("a forward was recorded"),
            },
            request: match sys.a.server.state(request).await.unwrap() {
                RequestState::Primary(p) => p.request,
                other => panic!("expected a primary state, got {other:?}"),
            },
        };
        // B stores it (B never heard of the deadline), but A's outbox owes nothing: no ack
        // is recorded and the request stays undeliverable.
        sys.b.server.receive(&sys.a.id, late).await.unwrap();
        let report = sys.a.server.tick().await;
        assert_eq!(report.relay.acknowledged, 0);
        let recorded = types(&sys.a.store, request);
        assert_eq!(recorded.last().map(String::as_str), Some("undeliverable"));
        assert!(!recorded.contains(&"partner_stored".to_owned()));
        // The notice stays pending until alice acknowledges it, and then it is gone.
        let receipts: Vec<_> = data.items.iter().map(PendingItem::receipt).collect();
        assert_eq!(
            sys.a
                .server
                .acknowledge_download(&alice(), &receipts)
                .await
                .unwrap(),
            1
        );
        assert!(pending(&sys.a.server, &alice()).await.is_empty());
        assert_eq!(
            types(&sys.a.store, request).last().map(String::as_str),
            Some("undeliverable_delivered")
        );
    });
}
