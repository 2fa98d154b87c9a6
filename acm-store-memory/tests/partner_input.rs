//! What a partner may send and what is refused: forged responders, oversized reasons,
//! reused message ids, requester aliases of another system, host case; and who of the
//! partner's users is offered a request.
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use acm_core::{
    AcmRequest, AcmRequestBody, AcmResponse, AcmServer, Decision, DomainError, MAX_REASON_LEN,
    McServiceId, MessageId, Outcome, PartnerAck, PartnerMessage, RejectionReason, RequestId,
    RequestState, Responder, ServiceError, StreamId, Target, Verification, VerificationFailure,
    Version,
};
use acm_store_memory::fixture::{TwoSystems, alice, bob, duty_officer, id};
use futures_executor::block_on;

async fn pending(server: &AcmServer, user: &McServiceId) -> Vec<RequestId> {
    server.pending_for(user).await.unwrap()
}

async fn state(server: &AcmServer, request: RequestId) -> RequestState {
    server.state(request).await.unwrap()
}

fn response_message(request: acm_core::RequestId, response: AcmResponse) -> PartnerMessage {
    PartnerMessage::Response {
        message_id: id("01900000-0000-7000-8000-00000000beef"),
        request_id: request,
        response,
    }
}

#[test]
fn primary_refuses_a_response_in_another_systems_name_or_over_the_limits() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let request = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
        sys.a.server.relay().await.unwrap();
        let accepted = |responder| AcmResponse {
            responder,
            outcome: Outcome::Accepted,
            user_results: Arc::default(),
        };
        let forged = [
            accepted(Responder::User {
                id: id("sip:chief@mc-a.example"),
                alias: None,
            }),
            accepted(Responder::User {
                id: bob(),
                alias: Some(id("sip:chief@mc-a.example")),
            }),
            accepted(Responder::Server {
                system: id("mc-a.example"),
            }),
        ];
        for response in forged {
            match sys
                .a
                .server
                .receive(&sys.b.id, response_message(request, response))
                .await
            {
                Err(ServiceError::Domain(DomainError::ResponderNotOfSender { system })) => {
                    assert_eq!(system, sys.b.id);
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
        let long = AcmResponse {
            responder: Responder::User {
                id: bob(),
                alias: None,
            },
            outcome: Outcome::Rejected {
                reason: RejectionReason::User {
                    text: Some("x".repeat(MAX_REASON_LEN + 1)),
                },
            },
            user_results: Arc::default(),
        };
        match sys
            .a
            .server
            .receive(&sys.b.id, response_message(request, long))
            .await
        {
            Err(ServiceError::Domain(DomainError::ReasonTooLong { len, max })) => {
                assert_eq!((len, max), (MAX_REASON_LEN + 1, MAX_REASON_LEN));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(
            pending(&sys.a.server, &alice()).await.is_empty(),
            "nothing stored"
        );
        // A response in B's own name is stored.
        let fair = accepted(Responder::User {
            id: bob(),
            alias: None,
        });
        let ack = sys
            .a
            .server
            .receive(&sys.b.id, response_message(request, fair))
            .await
            .unwrap();
        assert_eq!(ack, PartnerAck::Stored);
        assert_eq!(pending(&sys.a.server, &alice()).await, [request]);
    });
}

fn request(groups: &str, alias: Option<&str>) -> Arc<AcmRequest> {
    Arc::new(AcmRequest {
        request_id: id("01900000-0000-7000-8000-00000000c0de"),
        requester: alice(),
        requester_alias: alias.map(id),
        partner: id("mc-b.example"),
        target: Target::User(bob()),
        body: AcmRequestBody::provision([id(groups)]),
    })
}

#[test]
fn a_message_id_reused_with_other_content_is_refused() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let message_id = id("01900000-0000-7000-8000-00000000c0df");
        let first = request("sip:tac-1@mc-a.example", None);
        let ack = sys
            .b
            .server
            .receive(
                &sys.a.id,
                PartnerMessage::Request {
                    message_id,
                    request: first.clone(),
                },
            )
            .await;
        assert_eq!(ack.unwrap(), PartnerAck::Stored);
        let again = sys
            .b
            .server
            .receive(
                &sys.a.id,
                PartnerMessage::Request {
                    message_id,
                    request: first.clone(),
                },
            )
            .await;
        assert_eq!(
            again.unwrap(),
            PartnerAck::Stored,
            "an identical resend is acknowledged again"
        );
        let other = request("sip:tac-999@mc-a.example", None);
        match sys
            .b
            .server
            .receive(
                &sys.a.id,
                PartnerMessage::Request {
                    message_id,
                    request: other,
                },
            )
            .await
        {
            Err(ServiceError::Domain(DomainError::MessageIdReused { message_id: m })) => {
                assert_eq!(m, message_id);
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        match state(&sys.b.server, first.request_id).await {
            RequestState::Partner(p) => assert_eq!(p.request, first),
            other => panic!("expected the first request stored, got {other:?}"),
        }
    });
}

#[test]
fn a_requester_alias_of_another_system_fails_verification() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let forged = request(
            "sip:tac-1@mc-a.example",
            Some("sip:duty-officer@mc-b.example"),
        );
        let message = PartnerMessage::Request {
            message_id: id("01900000-0000-7000-8000-00000000c0df"),
            request: forged.clone(),
        };
        assert_eq!(
            sys.b.server.receive(&sys.a.id, message).await.unwrap(),
            PartnerAck::Stored
        );
        match state(&sys.b.server, forged.request_id).await {
            RequestState::Partner(p) => {
                assert_eq!(
                    p.verification,
                    Verification::Failed(VerificationFailure::RequesterNotOfSender)
                );
            }
            other => panic!("expected a partner state, got {other:?}"),
        }
    });
}

#[test]
fn host_case_does_not_matter() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let request = Arc::new(AcmRequest {
            requester: id("sip:alice@MC-A.example"),
            ..(*request("sip:tac-1@Mc-A.Example", None)).clone()
        });
        let message = PartnerMessage::Request {
            message_id: id("01900000-0000-7000-8000-00000000c0df"),
            request: request.clone(),
        };
        sys.b.server.receive(&sys.a.id, message).await.unwrap();
        match state(&sys.b.server, request.request_id).await {
            RequestState::Partner(p) => assert!(
                matches!(p.verification, Verification::Passed(_)),
                "{:?}",
                p.verification
            ),
            other => panic!("expected a partner state, got {other:?}"),
        }
    });
}

/// Alice provides a group to B's duty officer alias; returns the request and B's verdict.
async fn to_the_alias(sys: &TwoSystems) -> (RequestId, Verification) {
    let request = sys
        .alice_provides(Target::FunctionalAlias(duty_officer()), 1)
        .await
        .unwrap();
    sys.settle().await.unwrap();
    match state(&sys.b.server, request).await {
        RequestState::Partner(p) => (request, p.verification),
        other => panic!("expected a partner state, got {other:?}"),
    }
}

#[test]
fn alias_holders_who_may_not_receive_here_are_not_offered_the_request() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let dave: McServiceId = id("sip:dave@mc-b.example");
        let stranger: McServiceId = id("sip:eve@mc-b.example");
        let elsewhere: McServiceId = id("sip:zed@mc-z.example");
        sys.b.directory.set_alias_holders(
            duty_officer(),
            vec![
                dave.clone(),
                bob(),
                stranger.clone(),
                elsewhere.clone(),
                bob(),
            ],
        );
        let (request, verification) = to_the_alias(&sys).await;
        assert_eq!(verification, Verification::Passed(Arc::from([bob()])));
        assert_eq!(pending(&sys.b.server, &bob()).await, [request]);
        for user in [&dave, &stranger, &elsewhere] {
            assert!(pending(&sys.b.server, user).await.is_empty(), "{user}");
            assert!(
                sys.b
                    .server
                    .download_pending(user)
                    .await
                    .unwrap()
                    .items
                    .is_empty()
            );
            match sys
                .b
                .server
                .respond(user, None, request, Decision::Accept)
                .await
            {
                Err(ServiceError::Domain(DomainError::NotARecipient { user: u })) => {
                    assert_eq!(&u, user);
                }
                other => panic!("{user} may not answer, got {other:?}"),
            }
        }

        // None left who may receive: verification fails and the primary is told.
        sys.b
            .directory
            .set_alias_holders(duty_officer(), vec![dave, stranger, elsewhere]);
        let (request, verification) = to_the_alias(&sys).await;
        assert_eq!(
            verification,
            Verification::Failed(VerificationFailure::NoEligibleRecipient)
        );
        match state(&sys.a.server, request).await {
            RequestState::Primary(p) => {
                let (_, response) = p.response.unwrap();
                assert_eq!(
                    response.outcome,
                    Outcome::Rejected {
                        reason: RejectionReason::Verification {
                            failure: VerificationFailure::NoEligibleRecipient
                        }
                    }
                );
            }
            other => panic!("expected a primary state, got {other:?}"),
        }
    });
}

#[test]
fn a_message_id_reused_for_another_request_is_refused_and_nothing_is_stored() {
    block_on(async {
        let mut sys = TwoSystems::new().await.unwrap();
        let message_id: MessageId = id("01900000-0000-7000-8000-00000000c0df");
        let first = request("sip:tac-1@mc-a.example", None);
        let second = Arc::new(AcmRequest {
            request_id: id("01900000-0000-7000-8000-00000000c1de"),
            ..(*first).clone()
        });
        let send = |request: &Arc<AcmRequest>| PartnerMessage::Request {
            message_id,
            request: request.clone(),
        };
        let b = sys.b.server.clone();
        assert_eq!(
            b.receive(&sys.a.id, send(&first)).await.unwrap(),
            PartnerAck::Stored
        );
        for restarted in [false, true] {
            if restarted {
                // The refusal holds after a restart: the inbox is kept in the store.
                sys.b.restart(&sys.network).await.unwrap();
            }
            let b = sys.b.server.clone();
            match b.receive(&sys.a.id, send(&second)).await {
                Err(ServiceError::Domain(DomainError::MessageIdReused { message_id: m })) => {
                    assert_eq!(m, message_id);
                }
                other => panic!("expected a refusal (restarted: {restarted}), got {other:?}"),
            }
            assert_eq!(
                state(&b, second.request_id).await,
                RequestState::Empty,
                "nothing stored"
            );
            assert_eq!(b.version(second.request_id).await.unwrap(), Version::NONE);
            assert!(matches!(
                state(&b, first.request_id).await,
                RequestState::Partner(_)
            ));
            // The first request's resend is still acknowledged.
            assert_eq!(
                b.receive(&sys.a.id, send(&first)).await.unwrap(),
                PartnerAck::Stored
            );
        }
        let stream: Vec<_> = sys
            .b
            .store
            .snapshot()
            .into_iter()
            .filter(|e| e.stream_id == StreamId(second.request_id))
            .collect();
        assert!(
            stream.is_empty(),
            "the log holds nothing of the second request"
        );
    });
}

#[test]
fn a_response_message_id_reused_for_another_request_is_refused() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let r1 = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
        let r2 = sys.alice_provides(Target::User(bob()), 2).await.unwrap();
        sys.a.server.relay().await.unwrap();
        let accepted = AcmResponse {
            responder: Responder::User {
                id: bob(),
                alias: None,
            },
            outcome: Outcome::Accepted,
            user_results: Arc::default(),
        };
        let a = &sys.a.server;
        assert_eq!(
            a.receive(&sys.b.id, response_message(r1, accepted.clone()))
                .await
                .unwrap(),
            PartnerAck::Stored
        );
        match a.receive(&sys.b.id, response_message(r2, accepted)).await {
            Err(ServiceError::Domain(DomainError::MessageIdReused { .. })) => {}
            other => panic!("expected a refusal, got {other:?}"),
        }
        match state(a, r2).await {
            RequestState::Primary(p) => assert_eq!(p.response, None),
            other => panic!("expected a primary state, got {other:?}"),
        }
        assert_eq!(pending(a, &alice()).await, [r1]);
    });
}
