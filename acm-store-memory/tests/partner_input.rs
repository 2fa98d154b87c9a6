//! What a partner may send and what is refused: forged responders, oversized reasons,
//! reused message ids, requester aliases of another system, host case.
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use acm_core::error::DomainError;
use acm_core::lifecycle::{PartnerMessage, RequestState, Verification};
use acm_core::ports::PartnerAck;
use acm_core::request::{
    AcmRequest, AcmRequestBody, AcmResponse, MAX_REASON_LEN, Outcome, RejectionReason, Responder,
    Target, VerificationFailure,
};
use acm_core::server::ServiceError;
use acm_store_memory::fixture::{TwoSystems, alice, bob, id};
use futures_executor::block_on;

fn response_message(request: acm_core::id::RequestId, response: AcmResponse) -> PartnerMessage {
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
            sys.a.server.pending_for(&alice()).is_empty(),
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
        assert_eq!(sys.a.server.pending_for(&alice()), [request]);
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
            Err(ServiceError::Domain(DomainError::RequestIdReused)) => {}
            other => panic!("expected a refusal, got {other:?}"),
        }
        match sys.b.server.state(first.request_id) {
            Some(RequestState::Partner(p)) => assert_eq!(p.request, first),
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
        match sys.b.server.state(forged.request_id) {
            Some(RequestState::Partner(p)) => {
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
        match sys.b.server.state(request.request_id) {
            Some(RequestState::Partner(p)) => assert!(
                matches!(p.verification, Verification::Passed(_)),
                "{:?}",
                p.verification
            ),
            other => panic!("expected a partner state, got {other:?}"),
        }
    });
}
