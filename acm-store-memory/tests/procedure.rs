//! The whole procedure, steps 1–14, between systems A and B in one process, and its failure
//! paths, asserting what each server recorded after each step.
// A failed unwrap is a failed test; a scenario reads best as one function.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use acm_core::{
    AcmRequest, AcmRequestBody, AcmRequestKind, AcmResponse, AcmServer, Actor,
    AuthorizationRefusal, Closure, Command, Decision, DomainError, Event, McServiceId, Outcome,
    PartnerAck, PartnerMessage, PendingItem, Processing, RejectionReason, RequestId, RequestState,
    Responder, ServiceError, Session, StreamId, Target, VerificationFailure,
};
use acm_store_memory::MemoryAcmStore;
use acm_store_memory::fixture::{TwoSystems, alice, bob, carol, duty_officer, id, provision};
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

/// Steps 1–4b: alice submits `n` groups for `target` and both servers settle.
async fn submit_and_settle(sys: &TwoSystems, target: Target, n: usize) -> RequestId {
    let request = sys
        .a
        .server
        .submit(&alice(), provision(target, n))
        .await
        .unwrap();
    sys.settle().await.unwrap();
    request
}

/// Whom the notice waiting for `session` is for, taking it (`None`: no notice).
fn notified(session: &Session) -> Option<McServiceId> {
    session.try_next().map(|n| n.mc_service_id)
}

async fn pending(server: &AcmServer, user: &McServiceId) -> Vec<RequestId> {
    server.pending_for(user).await.unwrap()
}

async fn response_of(sys: &TwoSystems, request: RequestId) -> AcmResponse {
    sys.a
        .response(request)
        .await
        .unwrap()
        .expect("a response at A")
}

/// Acknowledges every item of a download.
async fn acknowledge(server: &AcmServer, user: &McServiceId, items: &[PendingItem]) -> usize {
    let receipts: Vec<_> = items.iter().map(PendingItem::receipt).collect();
    server.acknowledge_download(user, &receipts).await.unwrap()
}

#[test]
fn fourteen_steps_between_a_and_b() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let (a, b) = (&sys.a, &sys.b);
        let alice_session = a.log_on(&alice()).await.unwrap();
        assert_eq!(
            notified(&alice_session),
            None,
            "nothing pending for alice yet"
        );

        // Steps 1–3: submitted, authorised, queued for B.
        let request = a
            .server
            .submit(&alice(), provision(Target::User(bob()), 2))
            .await
            .unwrap();
        assert_eq!(
            types(&a.store, request),
            ["submitted", "authorized", "forwarded"]
        );
        assert!(
            types(&b.store, request).is_empty(),
            "nothing reaches B before the relay"
        );
        assert_eq!(a.server.outbox_status().await.unwrap().depth, 1);

        // Steps 3–4b: the relay forwards; B stores and verifies; A records the ack.
        let relay = a.server.relay().await.unwrap();
        assert_eq!(
            (relay.acknowledged, relay.unreachable, relay.refused),
            (1, 0, 0)
        );
        assert_eq!(types(&b.store, request), ["stored", "verified"]);
        assert_eq!(
            types(&a.store, request),
            ["submitted", "authorized", "forwarded", "partner_stored"]
        );
        assert_eq!(a.server.outbox_status().await.unwrap().depth, 0);
        assert!(!b.server.is_logged_on(&bob()), "bob is not logged on");
        assert_eq!(notified(&alice_session), None, "nothing for alice yet");

        // Step 5: alice logs off; nothing in flight depends on her.
        drop(alice_session);
        assert!(!a.server.is_logged_on(&alice()));
        sys.clock.advance(Duration::hours(5));

        // Steps 6–7a: bob logs on and is notified.
        let bob_session = b.log_on(&bob()).await.unwrap();
        assert_eq!(notified(&bob_session), Some(bob()));
        assert_eq!(notified(&bob_session), None, "one notice");

        // Steps 7b–8: bob downloads pending ACM data and learns the group IDs.
        let data = b.server.download_pending(&bob()).await.unwrap();
        assert_eq!(data.mc_service_id, bob());
        match &data.items[..] {
            [
                PendingItem::Request {
                    request: r, from, ..
                },
            ] => {
                assert_eq!(r.request_id, request);
                assert_eq!(from, &a.id);
                assert_eq!(r.body.groups(), &acm_store_memory::fixture::groups(2)[..]);
            }
            other => panic!("expected one request, got {other:?}"),
        }
        assert_eq!(
            types(&b.store, request),
            ["stored", "verified", "delivered"]
        );

        // Step 9: bob accepts.
        b.server
            .respond(&bob(), None, request, Decision::Accept)
            .await
            .unwrap();
        assert_eq!(
            types(&b.store, request),
            ["stored", "verified", "delivered", "responded"]
        );
        assert!(pending(&b.server, &bob()).await.is_empty());

        // Steps 10–11: B forwards the response; A stores it; alice is offline, not notified.
        let relay = b.server.relay().await.unwrap();
        assert_eq!(relay.acknowledged, 1);
        assert_eq!(
            types(&a.store, request).last().map(String::as_str),
            Some("response_received")
        );
        assert_eq!(
            types(&b.store, request).last().map(String::as_str),
            Some("response_forwarded")
        );
        assert!(
            !a.server.is_logged_on(&alice()),
            "alice is offline: no notice"
        );

        // The acceptance hook runs once at B.
        assert_eq!(b.server.apply_acceptances().await.unwrap(), 1);
        assert_eq!(b.server.apply_acceptances().await.unwrap(), 0);
        assert_eq!(b.hook.calls(), [request]);
        assert_eq!(
            types(&b.store, request).last().map(String::as_str),
            Some("acceptance_applied")
        );

        // Steps 12–13a: alice logs on and is notified.
        sys.clock.advance(Duration::hours(20));
        let alice_session = a.log_on(&alice()).await.unwrap();
        assert_eq!(notified(&alice_session), Some(alice()));

        // Steps 13b–14: alice downloads the response: bob accepted.
        let data = a.server.download_pending(&alice()).await.unwrap();
        match &data.items[..] {
            [
                PendingItem::Response {
                    request: r,
                    response,
                },
            ] => {
                assert_eq!(r.request_id, request);
                assert_eq!(response.outcome, Outcome::Accepted);
                assert_eq!(
                    response.responder,
                    Responder::User {
                        id: bob(),
                        alias: None
                    }
                );
            }
            other => panic!("expected one response, got {other:?}"),
        }
        // Downloaded but not yet acknowledged: still pending, nothing recorded.
        assert_eq!(
            types(&a.store, request).last().map(String::as_str),
            Some("response_received")
        );
        assert_eq!(pending(&a.server, &alice()).await, [request]);
        assert_eq!(acknowledge(&a.server, &alice(), &data.items).await, 1);
        assert_eq!(
            types(&a.store, request),
            [
                "submitted",
                "authorized",
                "forwarded",
                "partner_stored",
                "response_received",
                "response_delivered"
            ]
        );
        assert!(pending(&a.server, &alice()).await.is_empty());
        assert!(
            a.server
                .download_pending(&alice())
                .await
                .unwrap()
                .items
                .is_empty()
        );

        // Both systems correlate every event of the exchange by the request id.
        for store in [&a.store, &b.store] {
            assert!(store.snapshot().iter().all(|e| e.correlation_id == request));
        }
        // B's receipt is caused by A's forwarding message.
        let forwarded = match &a.store.snapshot()[2].payload {
            Event::Forwarded { message_id, .. } => *message_id,
            other => panic!("expected forwarded, got {other:?}"),
        };
        assert_eq!(b.store.snapshot()[0].causation_id, Some(forwarded.into()));
        assert_eq!(b.store.snapshot()[0].actor, Actor::System(a.id.clone()));
    });
}

#[test]
fn unauthorised_submitter_stops_at_step_two() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let mallory: McServiceId = id("sip:mallory@mc-a.example");
        let err = sys
            .a
            .server
            .submit(&mallory, provision(Target::User(bob()), 1))
            .await;
        let request = match err {
            Err(ServiceError::Refused { request_id, reason }) => {
                assert_eq!(
                    reason,
                    AuthorizationRefusal::NotAuthorized {
                        user: mallory.clone(),
                        partner: sys.b.id.clone()
                    }
                );
                request_id
            }
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(
            types(&sys.a.store, request),
            ["submitted", "authorization_refused"]
        );
        assert_eq!(sys.a.server.outbox_status().await.unwrap().depth, 0);
        sys.settle().await.unwrap();
        assert!(sys.b.store.is_empty(), "nothing is forwarded");
    });
}

#[test]
fn malformed_submissions_record_nothing() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let cases: Vec<(acm_core::Submission, DomainError)> = vec![
            (
                {
                    let mut s = provision(Target::User(bob()), 1);
                    s.body = AcmRequestBody::provision([]);
                    s
                },
                DomainError::EmptyGroupList,
            ),
            (
                {
                    let mut s = provision(Target::User(bob()), 1);
                    let g = acm_store_memory::fixture::groups(1);
                    s.body = AcmRequestBody::provision([g[0].clone(), g[0].clone()]);
                    s
                },
                DomainError::DuplicateGroup {
                    group: acm_store_memory::fixture::groups(1)[0].clone(),
                },
            ),
            (
                provision(Target::User(bob()), 65),
                DomainError::TooManyGroups { count: 65, max: 64 },
            ),
            (
                provision(Target::User(id("sip:bob@mc-c.example")), 1),
                DomainError::TargetOutsidePartner {
                    partner: sys.b.id.clone(),
                },
            ),
        ];
        for (submission, want) in cases {
            match sys.a.server.submit(&alice(), submission).await {
                Err(ServiceError::Domain(got)) => assert_eq!(got, want),
                other => panic!("expected {want:?}, got {other:?}"),
            }
        }
        assert!(sys.a.store.is_empty());
    });
}

async fn verification_failure(target: Target, want: VerificationFailure) {
    let sys = TwoSystems::new().await.unwrap();
    let request = sys.alice_provides(target, 1).await.unwrap();
    sys.settle().await.unwrap();
    assert_eq!(
        types(&sys.b.store, request),
        [
            "stored",
            "verification_failed",
            "responded",
            "response_forwarded"
        ]
    );
    assert_eq!(
        types(&sys.a.store, request),
        [
            "submitted",
            "authorized",
            "forwarded",
            "partner_stored",
            "response_received"
        ]
    );
    let response = response_of(&sys, request).await;
    assert_eq!(
        response.responder,
        Responder::Server {
            system: sys.b.id.clone()
        }
    );
    assert_eq!(
        response.outcome,
        Outcome::Rejected {
            reason: RejectionReason::Verification { failure: want }
        }
    );
    // The sender is told at next log-on.
    let session = sys.a.log_on(&alice()).await.unwrap();
    assert_eq!(notified(&session), Some(alice()));
}

#[test]
fn unknown_target_user_is_returned_as_rejected() {
    let zed: McServiceId = id("sip:zed@mc-b.example");
    block_on(verification_failure(
        Target::User(zed.clone()),
        VerificationFailure::UnknownTarget { user: zed },
    ));
}

#[test]
fn target_that_may_not_receive_is_returned_as_rejected() {
    let dave: McServiceId = id("sip:dave@mc-b.example");
    block_on(verification_failure(
        Target::User(dave.clone()),
        VerificationFailure::TargetMayNotReceive { user: dave },
    ));
}

#[test]
fn unheld_alias_is_returned_as_rejected() {
    let alias: acm_core::FunctionalAlias = id("sip:nobody@mc-b.example");
    block_on(verification_failure(
        Target::FunctionalAlias(alias.clone()),
        VerificationFailure::AliasNotHeld { alias },
    ));
}

fn crafted(sys: &TwoSystems, groups: &[&str]) -> PartnerMessage {
    PartnerMessage::Request {
        message_id: id("0190a000-0000-7000-8000-000000000001"),
        request: std::sync::Arc::new(AcmRequest {
            request_id: id("0190a000-0000-7000-8000-0000000000aa"),
            requester: alice(),
            requester_alias: None,
            partner: sys.b.id.clone(),
            target: Target::User(bob()),
            body: AcmRequestBody::provision(groups.iter().map(|g| id(g))),
        }),
    }
}

#[test]
fn group_not_homed_at_primary_is_returned_as_rejected() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let message = crafted(&sys, &["sip:tac-1@mc-a.example", "sip:tac-9@mc-z.example"]);
        let request = message.request_id();
        assert_eq!(
            sys.b.server.receive(&sys.a.id, message).await.unwrap(),
            PartnerAck::Stored
        );
        match sys.b.server.state(request).await.unwrap() {
            RequestState::Partner(p) => assert_eq!(
                p.response.map(|r| r.1.outcome),
                Some(Outcome::Rejected {
                    reason: RejectionReason::Verification {
                        failure: VerificationFailure::GroupNotHomedAtPrimary {
                            group: id("sip:tac-9@mc-z.example")
                        }
                    }
                })
            ),
            other => panic!("expected a partner state, got {other:?}"),
        }
        assert!(pending(&sys.b.server, &bob()).await.is_empty());
    });
}

#[test]
fn message_from_a_system_that_is_not_a_partner_is_refused_and_not_stored() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let stranger: acm_core::SystemId = id("mc-x.example");
        let message = crafted(&sys, &["sip:tac-1@mc-a.example"]);
        match sys.b.server.receive(&stranger, message).await {
            Err(ServiceError::Domain(DomainError::NotInterconnected { system })) => {
                assert_eq!(system, stranger);
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(sys.b.store.is_empty());
    });
}

#[test]
fn repeated_message_is_acknowledged_again_and_stored_once() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let message = crafted(&sys, &["sip:tac-1@mc-a.example"]);
        for _ in 0..3 {
            assert_eq!(
                sys.b
                    .server
                    .receive(&sys.a.id, message.clone())
                    .await
                    .unwrap(),
                PartnerAck::Stored
            );
        }
        assert_eq!(
            types(&sys.b.store, message.request_id()),
            ["stored", "verified"]
        );
    });
}

#[test]
fn functional_alias_offers_to_every_holder_and_first_answer_wins() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let carol_session = sys.b.log_on(&carol()).await.unwrap();
        assert_eq!(notified(&carol_session), None);
        let request = sys
            .a
            .server
            .submit(
                &alice(),
                provision(Target::FunctionalAlias(duty_officer()), 1),
            )
            .await
            .unwrap();
        sys.settle().await.unwrap();
        assert_eq!(
            notified(&carol_session),
            Some(carol()),
            "logged-on holder notified at once"
        );
        let bob_session = sys.b.log_on(&bob()).await.unwrap();
        assert_eq!(notified(&bob_session), Some(bob()));
        for user in [bob(), carol()] {
            assert_eq!(
                sys.b
                    .server
                    .download_pending(&user)
                    .await
                    .unwrap()
                    .items
                    .len(),
                1
            );
        }
        sys.b
            .server
            .respond(
                &carol(),
                Some(duty_officer()),
                request,
                Decision::Reject {
                    reason: Some("not today".into()),
                },
            )
            .await
            .unwrap();
        assert!(
            pending(&sys.b.server, &bob()).await.is_empty(),
            "answered for every holder"
        );
        match sys
            .b
            .server
            .respond(&bob(), None, request, Decision::Accept)
            .await
        {
            Err(ServiceError::Domain(DomainError::Closed {
                closure: Closure::Answered,
            })) => {}
            other => panic!("expected answered, got {other:?}"),
        }
        sys.settle().await.unwrap();
        assert_eq!(
            response_of(&sys, request).await.outcome,
            Outcome::Rejected {
                reason: RejectionReason::User {
                    text: Some("not today".into())
                }
            }
        );
        assert!(sys.b.hook.calls().is_empty(), "no hook for a rejection");
    });
}

#[test]
fn partner_server_target_is_stored_for_administrators() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let request = submit_and_settle(&sys, Target::PartnerServer, 3).await;
        assert_eq!(
            pending(&sys.b.server, &id("sip:admin@mc-b.example")).await,
            [request]
        );
    });
}

#[test]
fn automatic_processing_answers_on_receipt() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        sys.b.directory.set_processing(
            AcmRequestKind::InterconnectionGroupIdentityProvision,
            Processing::AutoAccept,
        );
        let request = submit_and_settle(&sys, Target::User(bob()), 1).await;
        assert_eq!(
            types(&sys.b.store, request),
            [
                "stored",
                "verified",
                "responded",
                "response_forwarded",
                "acceptance_applied"
            ]
        );
        assert_eq!(sys.b.hook.calls(), [request]);
        let response = response_of(&sys, request).await;
        assert_eq!(
            (response.outcome, response.responder),
            (
                Outcome::Accepted,
                Responder::Server {
                    system: sys.b.id.clone()
                }
            )
        );
        assert!(pending(&sys.b.server, &bob()).await.is_empty());
    });
}

#[test]
fn logged_on_target_is_notified_at_once_and_again_at_each_log_on() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let session = sys.b.log_on(&bob()).await.unwrap();
        assert_eq!(notified(&session), None);
        sys.alice_provides(Target::User(bob()), 1).await.unwrap();
        sys.settle().await.unwrap();
        assert_eq!(notified(&session), Some(bob()));
        drop(session);
        assert!(!sys.b.server.is_logged_on(&bob()));
        let session = sys.b.log_on(&bob()).await.unwrap();
        assert_eq!(
            notified(&session),
            Some(bob()),
            "still pending: notified again"
        );
    });
}

#[test]
fn pending_request_expires_and_the_sender_is_told() {
    block_on(async {
        let sys = TwoSystems::with_config(|mut c| {
            c.pending_ttl = Some(Duration::hours(1));
            c
        })
        .await
        .unwrap();
        let request = submit_and_settle(&sys, Target::User(bob()), 1).await;
        sys.clock.advance(Duration::minutes(59));
        assert_eq!(sys.b.server.expire_due().await.unwrap(), 0);
        sys.clock.advance(Duration::minutes(2));
        sys.settle().await.unwrap();
        assert_eq!(
            types(&sys.b.store, request),
            [
                "stored",
                "verified",
                "expired",
                "responded",
                "response_forwarded"
            ]
        );
        assert_eq!(
            response_of(&sys, request).await.outcome,
            Outcome::Rejected {
                reason: RejectionReason::Expired
            }
        );
        assert!(pending(&sys.b.server, &bob()).await.is_empty());
        let session = sys.a.log_on(&alice()).await.unwrap();
        assert_eq!(notified(&session), Some(alice()));
    });
}

/// Alice downloads her pending ACM data, which must be `request`'s withdrawal outcome alone,
/// and acknowledges it; returns whether it was withdrawn.
async fn withdrawal_outcome(sys: &TwoSystems, request: RequestId) -> bool {
    let items = sys.a.server.download_pending(&alice()).await.unwrap().items;
    let withdrawn = match items.as_slice() {
        [
            PendingItem::WithdrawalOutcome {
                request: r,
                withdrawn,
            },
        ] => {
            assert_eq!(r.request_id, request);
            *withdrawn
        }
        other => panic!("expected the withdrawal outcome, got {other:?}"),
    };
    assert_eq!(
        pending(&sys.a.server, &alice()).await,
        [request],
        "pending until acknowledged"
    );
    assert_eq!(acknowledge(&sys.a.server, &alice(), &items).await, 1);
    withdrawn
}

#[test]
fn withdrawal_before_delivery_withdraws_at_both() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let request = submit_and_settle(&sys, Target::User(bob()), 1).await;
        match sys.a.server.withdraw(&bob(), request).await {
            Err(ServiceError::Domain(DomainError::NotTheRequester { .. })) => {}
            other => panic!("only the requester may withdraw, got {other:?}"),
        }
        sys.a.server.withdraw(&alice(), request).await.unwrap();
        sys.settle().await.unwrap();
        assert_eq!(
            types(&sys.b.store, request),
            ["stored", "verified", "withdrawn"]
        );
        assert_eq!(
            types(&sys.a.store, request).last().map(String::as_str),
            Some("withdrawn")
        );
        assert!(pending(&sys.b.server, &bob()).await.is_empty());
        let bob_session = sys.b.log_on(&bob()).await.unwrap();
        assert_eq!(notified(&bob_session), None);

        // The requester learns the outcome like a response: notified at log-on, then
        // delivered once by download and acknowledgement.
        assert_eq!(pending(&sys.a.server, &alice()).await, [request]);
        let alice_session = sys.a.log_on(&alice()).await.unwrap();
        assert_eq!(notified(&alice_session), Some(alice()));
        assert!(withdrawal_outcome(&sys, request).await, "withdrawn");
        assert_eq!(
            types(&sys.a.store, request).last().map(String::as_str),
            Some("withdrawal_outcome_delivered")
        );
        assert!(pending(&sys.a.server, &alice()).await.is_empty());
        assert!(
            sys.a
                .server
                .download_pending(&alice())
                .await
                .unwrap()
                .items
                .is_empty()
        );
    });
}

#[test]
fn withdrawal_after_delivery_is_too_late() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let request = submit_and_settle(&sys, Target::User(bob()), 1).await;
        sys.b.server.download_pending(&bob()).await.unwrap();
        sys.a.server.withdraw(&alice(), request).await.unwrap();
        sys.settle().await.unwrap();
        assert_eq!(
            types(&sys.a.store, request).last().map(String::as_str),
            Some("withdrawal_refused")
        );
        assert_eq!(
            pending(&sys.b.server, &bob()).await,
            [request],
            "still pending for bob"
        );

        // The requester is told it was too late ...
        let alice_session = sys.a.log_on(&alice()).await.unwrap();
        assert_eq!(notified(&alice_session), Some(alice()));
        assert!(!withdrawal_outcome(&sys, request).await, "too late");
        assert!(pending(&sys.a.server, &alice()).await.is_empty());
        // ... and the response still comes the usual way.
        sys.b
            .server
            .respond(&bob(), None, request, Decision::Accept)
            .await
            .unwrap();
        sys.settle().await.unwrap();
        let items = sys.a.server.download_pending(&alice()).await.unwrap().items;
        match items.as_slice() {
            [PendingItem::Response { response, .. }] => assert!(response.outcome.is_accepted()),
            other => panic!("expected only the response, got {other:?}"),
        }
    });
}

#[test]
fn unreachable_partner_keeps_the_message_until_it_is_acknowledged() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        sys.network.set_link(&sys.a.id, &sys.b.id, false);
        let request = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
        let report = sys.a.server.relay().await.unwrap();
        assert_eq!(
            (report.acknowledged, report.unreachable, report.refused),
            (0, 1, 0)
        );
        assert_eq!(sys.a.server.outbox_status().await.unwrap().depth, 1);
        // Backing off: an immediate retry sends nothing.
        let report = sys.a.server.relay().await.unwrap();
        assert_eq!(
            (report.acknowledged, report.unreachable, report.refused),
            (0, 0, 0)
        );
        sys.network.set_link(&sys.a.id, &sys.b.id, true);
        sys.clock.advance(Duration::seconds(1));
        assert_eq!(sys.a.server.relay().await.unwrap().acknowledged, 1);
        assert_eq!(types(&sys.b.store, request), ["stored", "verified"]);
    });
}

#[test]
fn restart_between_store_and_send_loses_nothing() {
    block_on(async {
        let mut sys = TwoSystems::new().await.unwrap();
        let request = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
        sys.a.restart(&sys.network).await.unwrap();
        assert_eq!(
            sys.a.server.outbox_status().await.unwrap().depth,
            1,
            "the outbox is kept in the store"
        );
        sys.settle().await.unwrap();
        sys.b.restart(&sys.network).await.unwrap();
        assert_eq!(pending(&sys.b.server, &bob()).await, [request]);
        sys.b.server.download_pending(&bob()).await.unwrap();
        sys.b
            .server
            .respond(&bob(), None, request, Decision::Accept)
            .await
            .unwrap();
        sys.b.restart(&sys.network).await.unwrap();
        sys.settle().await.unwrap();
        assert_eq!(response_of(&sys, request).await.outcome, Outcome::Accepted);
        assert_eq!(sys.b.hook.calls(), [request]);
    });
}

#[test]
fn failing_hook_is_retried_until_it_succeeds() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        sys.b.hook.set_failing(true);
        let request = submit_and_settle(&sys, Target::User(bob()), 1).await;
        sys.b.server.download_pending(&bob()).await.unwrap();
        sys.b
            .server
            .respond(&bob(), None, request, Decision::Accept)
            .await
            .unwrap();
        assert_eq!(sys.b.server.apply_acceptances().await.unwrap(), 0);
        sys.b.hook.set_failing(false);
        assert_eq!(sys.b.server.apply_acceptances().await.unwrap(), 1);
        assert_eq!(sys.b.hook.calls(), [request]);
    });
}

#[test]
fn respond_before_delivery_and_by_a_stranger_are_refused() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let request = submit_and_settle(&sys, Target::User(bob()), 1).await;
        match sys
            .b
            .server
            .respond(&bob(), None, request, Decision::Accept)
            .await
        {
            Err(ServiceError::Domain(DomainError::NotDelivered { user })) => {
                assert_eq!(user, bob());
            }
            other => panic!("expected not delivered, got {other:?}"),
        }
        match sys
            .b
            .server
            .respond(&carol(), None, request, Decision::Accept)
            .await
        {
            Err(ServiceError::Domain(DomainError::NotARecipient { user })) => {
                assert_eq!(user, carol());
            }
            other => panic!("expected not a recipient, got {other:?}"),
        }
        assert_eq!(types(&sys.b.store, request), ["stored", "verified"]);
        let _ = Command::RecordAcceptanceApplied;
    });
}

#[test]
fn answering_in_an_alias_one_does_not_hold_is_refused() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let request = submit_and_settle(&sys, Target::User(bob()), 1).await;
        sys.b.server.download_pending(&bob()).await.unwrap();
        sys.b
            .directory
            .set_alias_holders(duty_officer(), vec![carol()]);
        let answer = sys
            .b
            .server
            .respond(&bob(), Some(duty_officer()), request, Decision::Accept)
            .await;
        match answer {
            Err(ServiceError::Domain(DomainError::AliasNotHeld { alias, user })) => {
                assert_eq!((alias, user), (duty_officer(), bob()));
            }
            other => panic!("expected alias not held, got {other:?}"),
        }
        assert_eq!(
            types(&sys.b.store, request),
            ["stored", "verified", "delivered"]
        );
    });
}
