use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::error::Closure;
use crate::id::GroupId;
use crate::id::{McServiceId, MessageId, SystemId};
use crate::message::PartnerMessage;
use crate::request::AcmRequestBody;
use crate::request::{
    AcmRequest, AcmResponse, AuthorizationRefusal, Decision, Limits, MAX_REASON_LEN, Outcome,
    Processing, RejectionReason, Responder, Target, VerificationFailure,
};
use crate::testkit::given;
use chrono::TimeZone;
use proptest::prelude::*;

fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}
fn a() -> SystemId {
    id("mc-a.example")
}
fn b() -> SystemId {
    id("mc-b.example")
}
fn alice() -> McServiceId {
    id("sip:alice@mc-a.example")
}
fn bob() -> McServiceId {
    id("sip:bob@mc-b.example")
}
fn carol() -> McServiceId {
    id("sip:carol@mc-b.example")
}
fn msg(n: u8) -> MessageId {
    id(&format!("0190a000-0000-7000-8000-0000000000{n:02x}"))
}
fn groups(n: usize) -> Vec<GroupId> {
    (1..=n)
        .map(|i| id(&format!("sip:tac-{i}@mc-a.example")))
        .collect()
}
fn request_with(target: Target, groups: Vec<GroupId>) -> Arc<AcmRequest> {
    Arc::new(AcmRequest {
        request_id: id("0190a000-0000-7000-8000-000000000aaa"),
        requester: alice(),
        requester_alias: None,
        partner: b(),
        target,
        body: AcmRequestBody::provision(groups),
    })
}
fn request() -> Arc<AcmRequest> {
    request_with(Target::User(bob()), groups(2))
}
fn submit(request: Arc<AcmRequest>, authorization: Result<(), AuthorizationRefusal>) -> Command {
    Command::Submit {
        request,
        authorization,
        limits: Limits {
            max_groups: 3,
            max_users: 3,
        },
        message_id: msg(1),
        at: t0(),
        idempotency_key: None,
    }
}
fn facts(recipients: Result<Vec<McServiceId>, VerificationFailure>) -> ReceiptFacts {
    ReceiptFacts {
        local: b(),
        interconnected: true,
        home_domains: vec![a()],
        recipients: recipients.map(Arc::from),
        processing: Processing::Manual,
        group_known: true,
        unknown_users: Vec::new(),
        limits: Limits {
            max_groups: 3,
            max_users: 3,
        },
    }
}
fn receive(request: Arc<AcmRequest>, facts: ReceiptFacts) -> Command {
    Command::Receive {
        from: a(),
        message_id: msg(1),
        request,
        facts,
        response_message_id: msg(2),
        at: t0(),
    }
}
fn accepted_by(user: McServiceId) -> AcmResponse {
    AcmResponse {
        responder: Responder::User {
            id: user,
            alias: None,
        },
        outcome: Outcome::Accepted,
        user_results: Arc::default(),
    }
}
fn respond(by: McServiceId) -> Command {
    Command::Respond {
        by,
        alias: None,
        decision: Decision::Accept,
        message_id: msg(3),
    }
}

// ---- primary history builders
fn submitted() -> Vec<Event> {
    vec![
        Event::Submitted {
            request: request(),
            at: t0(),
            idempotency_key: None,
        },
        Event::Authorized,
        Event::Forwarded {
            to: b(),
            message_id: msg(1),
        },
    ]
}
fn acked() -> Vec<Event> {
    let mut e = submitted();
    e.push(Event::PartnerStored { message_id: msg(1) });
    e
}
fn answered_at_primary() -> Vec<Event> {
    let mut e = acked();
    e.push(Event::ResponseReceived {
        message_id: msg(3),
        response: accepted_by(bob()),
    });
    e
}

// ---- partner history builders
fn stored_for(recipients: Vec<McServiceId>) -> Vec<Event> {
    let recipients: Arc<[McServiceId]> = recipients.into();
    vec![
        Event::Stored {
            from: a(),
            message_id: msg(1),
            request: request(),
            at: t0(),
        },
        Event::Verified {
            recipients,
            user_results: Arc::from([]),
        },
    ]
}
fn delivered() -> Vec<Event> {
    let mut e = stored_for(vec![bob()]);
    e.push(Event::Delivered { to: bob() });
    e
}
fn responded() -> Vec<Event> {
    let mut e = delivered();
    e.push(Event::Responded {
        message_id: msg(3),
        response: accepted_by(bob()),
    });
    e
}

#[test]
fn submit_authorised_is_recorded_and_queued_for_the_partner() {
    let state = given::<Lifecycle>([])
        .when(submit(request(), Ok(())))
        .then(submitted());
    assert_eq!(
        state.outbound(),
        Some((
            b(),
            PartnerMessage::Request {
                message_id: msg(1),
                request: request()
            }
        ))
    );
    assert!(state.pending_for().is_empty());
}

#[test]
fn submit_unauthorised_records_the_refusal_and_sends_nothing() {
    let reason = AuthorizationRefusal::NotAuthorized {
        user: alice(),
        partner: b(),
    };
    let state = given::<Lifecycle>([])
        .when(submit(request(), Err(reason.clone())))
        .then([
            Event::Submitted {
                request: request(),
                at: t0(),
                idempotency_key: None,
            },
            Event::AuthorizationRefused { reason },
        ]);
    assert_eq!(state.outbound(), None);
}

#[test]
fn bad_group_lists_are_refused() {
    let g = groups(4);
    given::<Lifecycle>([])
        .when(submit(request_with(Target::User(bob()), vec![]), Ok(())))
        .then_error(DomainError::EmptyGroupList);
    given::<Lifecycle>([])
        .when(submit(
            request_with(
                Target::User(bob()),
                vec![g[0].clone(), g[1].clone(), g[0].clone()],
            ),
            Ok(()),
        ))
        .then_error(DomainError::DuplicateGroup {
            group: g[0].clone(),
        });
    given::<Lifecycle>([])
        .when(submit(request_with(Target::User(bob()), g), Ok(())))
        .then_error(DomainError::TooManyGroups { count: 4, max: 3 });
    given::<Lifecycle>([])
        .when(submit(
            request_with(Target::User(id("sip:x@mc-c.example")), groups(1)),
            Ok(()),
        ))
        .then_error(DomainError::TargetOutsidePartner { partner: b() });
}

#[test]
fn submitting_the_same_request_twice_is_refused() {
    given::<Lifecycle>(submitted())
        .when(submit(request(), Ok(())))
        .then_error(DomainError::RequestExists);
}

#[test]
fn partner_ack_is_recorded_once() {
    let state = given::<Lifecycle>(submitted())
        .when(Command::RecordPartnerAck { message_id: msg(1) })
        .then([Event::PartnerStored { message_id: msg(1) }]);
    assert_eq!(state.outbound(), None);
    given::<Lifecycle>(acked())
        .when(Command::RecordPartnerAck { message_id: msg(1) })
        .then([]);
    given::<Lifecycle>(submitted())
        .when(Command::RecordPartnerAck { message_id: msg(9) })
        .then_error(DomainError::UnexpectedMessage { message_id: msg(9) });
}

#[test]
fn receive_stores_verifies_and_makes_the_request_pending() {
    let state = given::<Lifecycle>([])
        .when(receive(request(), facts(Ok(vec![bob()]))))
        .then(stored_for(vec![bob()]));
    assert_eq!(state.pending_for(), [bob()]);
    assert_eq!(state.outbound(), None);
}

#[test]
fn receive_is_idempotent_by_message_id() {
    given::<Lifecycle>(stored_for(vec![bob()]))
        .when(receive(request(), facts(Ok(vec![bob()]))))
        .then([]);
    let mut other = receive(request(), facts(Ok(vec![bob()])));
    if let Command::Receive { message_id, .. } = &mut other {
        *message_id = msg(7);
    }
    given::<Lifecycle>(stored_for(vec![bob()]))
        .when(other)
        .then_error(DomainError::RequestIdReused);
}

#[test]
fn receive_from_a_stranger_is_refused() {
    let mut f = facts(Ok(vec![bob()]));
    f.interconnected = false;
    given::<Lifecycle>([])
        .when(receive(request(), f))
        .then_error(DomainError::NotInterconnected { system: a() });
}

fn fails_verification(request: Arc<AcmRequest>, facts: ReceiptFacts, failure: VerificationFailure) {
    let state = given::<Lifecycle>([])
        .when(receive(request.clone(), facts))
        .then([
            Event::Stored {
                from: a(),
                message_id: msg(1),
                request,
                at: t0(),
            },
            Event::VerificationFailed {
                failure: failure.clone(),
            },
            Event::Responded {
                message_id: msg(2),
                response: AcmResponse {
                    responder: Responder::Server { system: b() },
                    outcome: Outcome::Rejected {
                        reason: RejectionReason::Verification { failure },
                    },
                    user_results: Arc::default(),
                },
            },
        ]);
    assert!(state.pending_for().is_empty());
    assert!(matches!(state.outbound(), Some((to, PartnerMessage::Response { .. })) if to == a()));
}

#[test]
fn each_verification_failure_becomes_a_rejected_final_response() {
    fails_verification(
        request(),
        facts(Err(VerificationFailure::UnknownTarget { user: bob() })),
        VerificationFailure::UnknownTarget { user: bob() },
    );
    let mut foreign = facts(Ok(vec![bob()]));
    foreign.home_domains = vec![id("mc-z.example")];
    fails_verification(
        request(),
        foreign,
        VerificationFailure::GroupNotHomedAtPrimary {
            group: groups(1)[0].clone(),
        },
    );
    let mut not_ours = request();
    let not_ours_mut = Arc::make_mut(&mut not_ours);
    not_ours_mut.partner = id("mc-c.example");
    fails_verification(
        not_ours,
        facts(Ok(vec![bob()])),
        VerificationFailure::NotAddressedToThisSystem {
            partner: id("mc-c.example"),
        },
    );
    let mut spoofed = request();
    let spoofed_mut = Arc::make_mut(&mut spoofed);
    spoofed_mut.requester = id("sip:eve@mc-e.example");
    fails_verification(
        spoofed,
        facts(Ok(vec![bob()])),
        VerificationFailure::RequesterNotOfSender,
    );
    fails_verification(
        request_with(Target::User(bob()), vec![]),
        facts(Ok(vec![bob()])),
        VerificationFailure::Malformed {
            error: DomainError::EmptyGroupList,
        },
    );
}

#[test]
fn automatic_processing_answers_on_receipt() {
    let mut f = facts(Ok(vec![bob()]));
    f.processing = Processing::AutoReject;
    let mut expected = stored_for(vec![bob()]);
    expected.push(Event::Responded {
        message_id: msg(2),
        response: AcmResponse {
            responder: Responder::Server { system: b() },
            outcome: Outcome::Rejected {
                reason: RejectionReason::Policy,
            },
            user_results: Arc::default(),
        },
    });
    let state = given::<Lifecycle>([])
        .when(receive(request(), f))
        .then(expected);
    assert!(state.pending_for().is_empty());
    assert!(!state.acceptance_due());
}

#[test]
fn deliver_before_stored_is_refused() {
    given::<Lifecycle>([])
        .when(Command::Deliver { to: bob() })
        .then_error(DomainError::NotStored);
    given::<Lifecycle>(submitted())
        .when(Command::Deliver { to: bob() })
        .then_error(DomainError::WrongSide);
}

#[test]
fn deliver_records_each_recipient_once() {
    given::<Lifecycle>(stored_for(vec![bob()]))
        .when(Command::Deliver { to: bob() })
        .then([Event::Delivered { to: bob() }]);
    given::<Lifecycle>(delivered())
        .when(Command::Deliver { to: bob() })
        .then([]);
    given::<Lifecycle>(delivered())
        .when(Command::Deliver { to: carol() })
        .then_error(DomainError::NotARecipient { user: carol() });
}

#[test]
fn respond_rules() {
    let state = given::<Lifecycle>(delivered())
        .when(respond(bob()))
        .then([Event::Responded {
            message_id: msg(3),
            response: accepted_by(bob()),
        }]);
    assert!(state.acceptance_due());
    assert!(state.pending_for().is_empty());
    // The same answer again (a client retrying after a lost reply): success, nothing new.
    given::<Lifecycle>(responded())
        .when(respond(bob()))
        .then([]);
    // Another answer to an answered request, or the same answer under another message id
    // but by another user: refused.
    given::<Lifecycle>(responded())
        .when(Command::Respond {
            by: bob(),
            alias: None,
            decision: Decision::Reject { reason: None },
            message_id: msg(4),
        })
        .then_error(DomainError::Closed {
            closure: Closure::Answered,
        });
    given::<Lifecycle>(responded())
        .when(respond(carol()))
        .then_error(DomainError::Closed {
            closure: Closure::Answered,
        });
    // Respond by a user who is not the selected one.
    given::<Lifecycle>(delivered())
        .when(respond(carol()))
        .then_error(DomainError::NotARecipient { user: carol() });
    // Respond before delivery.
    given::<Lifecycle>(stored_for(vec![bob()]))
        .when(respond(bob()))
        .then_error(DomainError::NotDelivered { user: bob() });
    // Respond to a request never stored.
    given::<Lifecycle>([])
        .when(respond(bob()))
        .then_error(DomainError::NotStored);
    // Overlong reason.
    given::<Lifecycle>(delivered())
        .when(Command::Respond {
            by: bob(),
            alias: None,
            decision: Decision::Reject {
                reason: Some("x".repeat(MAX_REASON_LEN + 1)),
            },
            message_id: msg(3),
        })
        .then_error(DomainError::ReasonTooLong {
            len: MAX_REASON_LEN + 1,
            max: MAX_REASON_LEN,
        });
}

#[test]
fn first_answer_wins_among_alias_holders() {
    let mut history = stored_for(vec![bob(), carol()]);
    history.extend([
        Event::Delivered { to: bob() },
        Event::Delivered { to: carol() },
    ]);
    history.push(Event::Responded {
        message_id: msg(3),
        response: accepted_by(carol()),
    });
    given::<Lifecycle>(history)
        .when(respond(bob()))
        .then_error(DomainError::Closed {
            closure: Closure::Answered,
        });
}

#[test]
fn response_to_an_unknown_request_is_refused() {
    given::<Lifecycle>([])
        .when(Command::ReceiveResponse {
            from: b(),
            message_id: msg(3),
            response: accepted_by(bob()),
        })
        .then_error(DomainError::UnknownRequest);
}

#[test]
fn response_rules_at_the_primary() {
    let state = given::<Lifecycle>(acked())
        .when(Command::ReceiveResponse {
            from: b(),
            message_id: msg(3),
            response: accepted_by(bob()),
        })
        .then([Event::ResponseReceived {
            message_id: msg(3),
            response: accepted_by(bob()),
        }]);
    assert_eq!(state.pending_for(), [alice()]);
    // The same response again is a harmless repeat; another is refused.
    given::<Lifecycle>(answered_at_primary())
        .when(Command::ReceiveResponse {
            from: b(),
            message_id: msg(3),
            response: accepted_by(bob()),
        })
        .then([]);
    given::<Lifecycle>(answered_at_primary())
        .when(Command::ReceiveResponse {
            from: b(),
            message_id: msg(4),
            response: accepted_by(bob()),
        })
        .then_error(DomainError::ResponseExists);
    // Only from the partner the request went to.
    given::<Lifecycle>(acked())
        .when(Command::ReceiveResponse {
            from: id("mc-c.example"),
            message_id: msg(3),
            response: accepted_by(bob()),
        })
        .then_error(DomainError::NotTheSender {
            system: id("mc-c.example"),
        });
    // A response may overtake the partner's lost acknowledgement; it proves step 4b.
    let state = given::<Lifecycle>(submitted())
        .when(Command::ReceiveResponse {
            from: b(),
            message_id: msg(3),
            response: accepted_by(bob()),
        })
        .then([
            Event::PartnerStored { message_id: msg(1) },
            Event::ResponseReceived {
                message_id: msg(3),
                response: accepted_by(bob()),
            },
        ]);
    assert_eq!(
        state.outbound(),
        None,
        "no need to resend the request once answered"
    );
}

#[test]
fn response_delivery_at_the_primary() {
    given::<Lifecycle>(acked())
        .when(Command::DeliverResponse {
            to: alice(),
            response: true,
            undeliverable: true,
            withdrawal_outcome: true,
        })
        .then_error(DomainError::NoPendingResponse);
    given::<Lifecycle>(answered_at_primary())
        .when(Command::DeliverResponse {
            to: bob(),
            response: true,
            undeliverable: true,
            withdrawal_outcome: true,
        })
        .then_error(DomainError::NotTheRequester { user: bob() });
    let state = given::<Lifecycle>(answered_at_primary())
        .when(Command::DeliverResponse {
            to: alice(),
            response: true,
            undeliverable: true,
            withdrawal_outcome: true,
        })
        .then([Event::ResponseDelivered { to: alice() }]);
    assert!(state.pending_for().is_empty());
}

#[test]
fn withdrawal_at_the_partner_before_and_after_delivery() {
    let state = given::<Lifecycle>(stored_for(vec![bob()]))
        .when(Command::ReceiveWithdrawal { from: a() })
        .then([Event::Withdrawn]);
    assert!(state.pending_for().is_empty());
    given::<Lifecycle>(delivered())
        .when(Command::ReceiveWithdrawal { from: a() })
        .then([]);
    given::<Lifecycle>(stored_for(vec![bob()]))
        .when(Command::ReceiveWithdrawal {
            from: id("mc-c.example"),
        })
        .then_error(DomainError::NotTheSender {
            system: id("mc-c.example"),
        });
    let mut withdrawn = stored_for(vec![bob()]);
    withdrawn.push(Event::Withdrawn);
    given::<Lifecycle>(withdrawn)
        .when(Command::Deliver { to: bob() })
        .then_error(DomainError::Closed {
            closure: Closure::Withdrawn,
        });
}

#[test]
fn withdrawal_at_the_primary() {
    let state = given::<Lifecycle>(acked())
        .when(Command::RequestWithdrawal {
            by: alice(),
            message_id: msg(5),
        })
        .then([Event::WithdrawalRequested {
            by: alice(),
            message_id: msg(5),
        }]);
    assert!(
        matches!(state.outbound(), Some((_, PartnerMessage::Withdrawal { message_id, .. })) if message_id == msg(5))
    );
    let mut requested = acked();
    requested.push(Event::WithdrawalRequested {
        by: alice(),
        message_id: msg(5),
    });
    given::<Lifecycle>(requested.clone())
        .when(Command::RequestWithdrawal {
            by: alice(),
            message_id: msg(6),
        })
        .then_error(DomainError::NotWithdrawable);
    given::<Lifecycle>(requested.clone())
        .when(Command::RecordWithdrawalOutcome {
            message_id: msg(5),
            withdrawn: false,
        })
        .then([Event::WithdrawalRefused]);
    let state = given::<Lifecycle>(requested)
        .when(Command::RecordWithdrawalOutcome {
            message_id: msg(5),
            withdrawn: true,
        })
        .then([Event::Withdrawn]);
    assert_eq!(state.outbound(), None);
    given::<Lifecycle>(answered_at_primary())
        .when(Command::RequestWithdrawal {
            by: alice(),
            message_id: msg(5),
        })
        .then_error(DomainError::Closed {
            closure: Closure::Answered,
        });
}

#[test]
fn expiry() {
    let ttl = Duration::hours(1);
    let expire = |now| Command::Expire {
        now,
        ttl,
        message_id: msg(8),
    };
    given::<Lifecycle>(delivered())
        .when(expire(t0() + Duration::minutes(59)))
        .then_error(DomainError::NotDue);
    let state = given::<Lifecycle>(delivered())
        .when(expire(t0() + ttl))
        .then([
            Event::Expired,
            Event::Responded {
                message_id: msg(8),
                response: AcmResponse {
                    responder: Responder::Server { system: b() },
                    outcome: Outcome::Rejected {
                        reason: RejectionReason::Expired,
                    },
                    user_results: Arc::default(),
                },
            },
        ]);
    assert!(state.pending_for().is_empty());
    given::<Lifecycle>(responded())
        .when(expire(t0() + ttl))
        .then_error(DomainError::Closed {
            closure: Closure::Answered,
        });
}

#[test]
fn acceptance_applied_once_and_only_after_acceptance() {
    given::<Lifecycle>(responded())
        .when(Command::RecordAcceptanceApplied)
        .then([Event::AcceptanceApplied]);
    let mut applied = responded();
    applied.push(Event::AcceptanceApplied);
    given::<Lifecycle>(applied)
        .when(Command::RecordAcceptanceApplied)
        .then([]);
    given::<Lifecycle>(delivered())
        .when(Command::RecordAcceptanceApplied)
        .then_error(DomainError::NotAccepted);
}

#[test]
fn response_ack_at_the_partner() {
    let state = given::<Lifecycle>(responded())
        .when(Command::RecordResponseAck { message_id: msg(3) })
        .then([Event::ResponseForwarded { message_id: msg(3) }]);
    assert_eq!(state.outbound(), None);
    given::<Lifecycle>(responded())
        .when(Command::RecordResponseAck { message_id: msg(1) })
        .then_error(DomainError::UnexpectedMessage { message_id: msg(1) });
}

// ---- properties over random command sequences

fn any_command() -> impl Strategy<Value = Command> {
    let user = prop_oneof![Just(bob()), Just(carol()), Just(alice())];
    let m = (1u8..6).prop_map(msg);
    prop_oneof![
        (any::<bool>(), 0usize..5).prop_map(|(ok, n)| submit(
            request_with(Target::User(bob()), groups(n)),
            if ok {
                Ok(())
            } else {
                Err(AuthorizationRefusal::NotAPartner { partner: b() })
            }
        )),
        m.clone()
            .prop_map(|message_id| Command::RecordPartnerAck { message_id }),
        (m.clone(), user.clone()).prop_map(|(message_id, u)| Command::ReceiveResponse {
            from: b(),
            message_id,
            response: accepted_by(u)
        }),
        user.clone().prop_map(|to| Command::DeliverResponse {
            to,
            response: true,
            undeliverable: true,
            withdrawal_outcome: true,
        }),
        (user.clone(), m.clone())
            .prop_map(|(by, message_id)| Command::RequestWithdrawal { by, message_id }),
        (m.clone(), any::<bool>()).prop_map(|(message_id, withdrawn)| {
            Command::RecordWithdrawalOutcome {
                message_id,
                withdrawn,
            }
        }),
        prop_oneof![
            Just(Ok(vec![bob()])),
            Just(Ok(vec![bob(), carol()])),
            Just(Err(VerificationFailure::NoAdministrator))
        ]
        .prop_map(|r| receive(request(), facts(r))),
        Just(Command::ReceiveWithdrawal { from: a() }),
        user.clone().prop_map(|to| Command::Deliver { to }),
        (user, any::<bool>(), m.clone()).prop_map(|(by, accept, message_id)| Command::Respond {
            by,
            alias: None,
            decision: if accept {
                Decision::Accept
            } else {
                Decision::Reject { reason: None }
            },
            message_id
        }),
        m.clone()
            .prop_map(|message_id| Command::RecordResponseAck { message_id }),
        (0i64..120, m).prop_map(|(mins, message_id)| Command::Expire {
            now: t0() + Duration::minutes(mins),
            ttl: Duration::hours(1),
            message_id
        }),
        Just(Command::RecordAcceptanceApplied),
    ]
}

proptest! {
    /// Lifecycle rules that hold whatever commands arrive in whatever order.
    #[test]
    fn lifecycle_invariants(commands in proptest::collection::vec(any_command(), 1..60)) {
        let mut state = RequestState::Empty;
        let mut log: Vec<Event> = Vec::new();
        for command in &commands {
            let before = state.clone();
            match decide(&state, command) {
                Err(_) => {}
                Ok(events) => {
                    // A repeat decides nothing; deciding again on the new state is a no-op
                    // for idempotent commands.
                    for e in &events {
                        state = evolve(state, e);
                    }
                    log.extend(events);
                }
            }
            // Deciding is pure: the same input gives the same output.
            prop_assert_eq!(decide(&before, command), decide(&before, command));
        }
        // Replaying the log gives the live state.
        prop_assert_eq!(Lifecycle::fold(&log), state.clone());
        let count = |t: &str| log.iter().filter(|e| e.event_type() == t).count();
        // At most one final response, one response received, one delivery of it, one hook.
        prop_assert!(count("responded") <= 1);
        prop_assert!(count("response_received") <= 1);
        prop_assert!(count("response_delivered") <= 1);
        prop_assert!(count("acceptance_applied") <= 1);
        // A request lives on one side only.
        prop_assert!(count("submitted") + count("stored") <= 1);
        // A response is delivered only after it was stored.
        if let Some(d) = log.iter().position(|e| e.event_type() == "response_delivered") {
            let r = log.iter().position(|e| e.event_type() == "response_received");
            prop_assert!(r.is_some_and(|r| r < d));
        }
        // Nothing is delivered after the request closed, and a response needs a delivery
        // (unless the server answered).
        if let RequestState::Partner(p) = &state {
            if let Some((_, AcmResponse { responder: Responder::User { id, .. }, .. })) = &p.response {
                prop_assert!(p.delivered_to.contains(id));
            }
            prop_assert!(!(p.withdrawn && p.response.is_some()));
        }
        // Pending users are exactly the open recipients.
        match &state {
            RequestState::Partner(p) if p.is_open() => prop_assert!(!state.pending_for().is_empty()),
            RequestState::Partner(_) => prop_assert!(state.pending_for().is_empty()),
            _ => {}
        }
    }

    /// Evolve is total: any event on any state gives a state, never a panic.
    #[test]
    fn evolve_is_total(commands in proptest::collection::vec(any_command(), 0..20), extra in proptest::collection::vec(any_command(), 0..20)) {
        let mut events = Vec::new();
        let mut state = RequestState::Empty;
        for c in commands.iter().chain(&extra) {
            if let Ok(es) = decide(&RequestState::Empty, c) { events.extend(es); }
            if let Ok(es) = decide(&state, c) { for e in &es { state = evolve(state, e); } }
        }
        // Fold arbitrary (possibly nonsensical) sequences: must not panic.
        let _ = Lifecycle::fold(&events);
    }
}

// ---- group membership update and user migration management ----

fn dave() -> McServiceId {
    id("sip:dave@mc-b.example")
}
fn zoe() -> McServiceId {
    id("sip:zoe@mc-c.example")
}
fn tac1() -> GroupId {
    id("sip:tac-1@mc-a.example")
}
fn with_body(target: Target, body: AcmRequestBody) -> Arc<AcmRequest> {
    let mut r = (*request_with(target, groups(1))).clone();
    r.body = body;
    Arc::new(r)
}
fn membership(users: Vec<McServiceId>) -> Arc<AcmRequest> {
    with_body(
        Target::User(bob()),
        AcmRequestBody::membership(
            tac1(),
            users,
            crate::request::MembershipOperation::Add,
            Some(crate::request::Urgency::Urgent),
        ),
    )
}
fn migration(users: Vec<McServiceId>) -> Arc<AcmRequest> {
    with_body(
        Target::User(bob()),
        AcmRequestBody::migration(users, crate::request::MigrationOperation::Add),
    )
}
fn applied(user: McServiceId) -> crate::request::UserResult {
    crate::request::UserResult::Applied { user }
}
fn refused(user: McServiceId, reason: crate::request::UserRefusal) -> crate::request::UserResult {
    crate::request::UserResult::Refused { user, reason }
}

#[test]
fn a_membership_update_is_checked_before_it_is_sent() {
    let mc_a_user: McServiceId = id("sip:erin@mc-a.example");
    let cases = [
        (
            with_body(
                Target::PartnerServer,
                AcmRequestBody::membership(
                    tac1(),
                    [carol()],
                    crate::request::MembershipOperation::Delete,
                    None,
                ),
            ),
            DomainError::TargetMustBeUserOrAlias,
        ),
        (
            membership(vec![carol(), mc_a_user.clone()]),
            DomainError::UserOutsidePartner {
                user: mc_a_user,
                partner: b(),
            },
        ),
        (membership(vec![]), DomainError::EmptyUserList),
        (
            membership(vec![carol(), dave(), carol()]),
            DomainError::DuplicateUser { user: carol() },
        ),
        (
            membership(vec![carol(), dave(), bob(), id("sip:eve@mc-b.example")]),
            DomainError::TooManyUsers { count: 4, max: 3 },
        ),
    ];
    for (request, error) in cases {
        given::<Lifecycle>([])
            .when(submit(request, Ok(())))
            .then_error(error);
    }
    given::<Lifecycle>([])
        .when(submit(membership(vec![carol(), dave()]), Ok(())))
        .result()
        .expect("a well-formed update is submitted");
}

#[test]
fn a_migration_lists_only_the_requesters_own_users() {
    given::<Lifecycle>([])
        .when(submit(
            migration(vec![id("sip:erin@mc-a.example"), carol()]),
            Ok(()),
        ))
        .then_error(DomainError::UserNotOfRequesterSystem { user: carol() });
    given::<Lifecycle>([])
        .when(submit(migration(vec![id("sip:erin@mc-a.example")]), Ok(())))
        .result()
        .expect("a migration of A's own user is submitted");
}

#[test]
fn a_membership_update_gets_a_result_per_listed_user() {
    let request = membership(vec![carol(), dave(), zoe()]);
    let mut f = facts(Ok(vec![bob()]));
    f.unknown_users = vec![dave()];
    let results: Arc<[_]> = Arc::from([
        applied(carol()),
        refused(dave(), crate::request::UserRefusal::UnknownUser),
        refused(zoe(), crate::request::UserRefusal::NotOfThisSystem),
    ]);
    let stored = vec![
        Event::Stored {
            from: a(),
            message_id: msg(1),
            request: request.clone(),
            at: t0(),
        },
        Event::Verified {
            recipients: Arc::from([bob()]),
            user_results: results.clone(),
        },
    ];
    given::<Lifecycle>([])
        .when(receive(request.clone(), f.clone()))
        .then(stored.clone());

    // Bob accepts: the response carries the results; a rejection carries none.
    let mut answered = stored.clone();
    answered.push(Event::Delivered { to: bob() });
    let events = given::<Lifecycle>(answered.clone())
        .when(respond(bob()))
        .result()
        .expect("bob may answer");
    assert!(matches!(&events[..], [Event::Responded { response, .. }]
        if response.outcome.is_accepted() && response.user_results == results));
    let events = given::<Lifecycle>(answered)
        .when(Command::Respond {
            by: bob(),
            alias: None,
            decision: Decision::Reject { reason: None },
            message_id: msg(3),
        })
        .result()
        .expect("bob may reject");
    assert!(matches!(&events[..], [Event::Responded { response, .. }]
        if !response.outcome.is_accepted() && response.user_results.is_empty()));

    // Accepted automatically: the same results.
    f.processing = Processing::AutoAccept;
    let events = given::<Lifecycle>([])
        .when(receive(request, f))
        .result()
        .expect("stored");
    assert!(
        matches!(events.last(), Some(Event::Responded { response, .. })
        if response.user_results == results)
    );
}

#[test]
fn a_membership_update_fails_verification_for_an_unknown_group_or_no_user_here() {
    let mut f = facts(Ok(vec![bob()]));
    f.group_known = false;
    fails_verification(
        membership(vec![carol()]),
        f,
        VerificationFailure::NotAnInterconnectionGroup { group: tac1() },
    );
    let mut f = facts(Ok(vec![bob()]));
    f.unknown_users = vec![carol()];
    fails_verification(
        membership(vec![carol(), zoe()]),
        f,
        VerificationFailure::NoListedUserHere,
    );
}

#[test]
fn a_kind_not_accepted_and_a_foreign_migrant_fail_verification() {
    let mut f = facts(Ok(vec![bob()]));
    f.processing = Processing::NotAccepted;
    fails_verification(
        migration(vec![id("sip:erin@mc-a.example")]),
        f,
        VerificationFailure::KindNotAccepted {
            kind: crate::request::AcmRequestKind::UserMigrationManagement,
        },
    );
    fails_verification(
        migration(vec![id("sip:erin@mc-a.example"), carol()]),
        facts(Ok(vec![bob()])),
        VerificationFailure::UserNotOfSender { user: carol() },
    );
}

#[test]
fn the_primary_refuses_results_that_do_not_answer_its_list() {
    let request = membership(vec![carol(), dave()]);
    let given_events = [
        Event::Submitted {
            request: request.clone(),
            at: t0(),
            idempotency_key: None,
        },
        Event::Authorized,
        Event::Forwarded {
            to: b(),
            message_id: msg(1),
        },
    ];
    let answer = |results: Vec<crate::request::UserResult>| Command::ReceiveResponse {
        from: b(),
        message_id: msg(9),
        response: AcmResponse {
            user_results: Arc::from(results),
            ..accepted_by(bob())
        },
    };
    for wrong in [
        vec![],
        vec![applied(carol())],
        vec![applied(dave()), applied(carol())],
        vec![applied(carol()), applied(dave()), applied(bob())],
    ] {
        given::<Lifecycle>(given_events.clone())
            .when(answer(wrong))
            .then_error(DomainError::UserResultsMismatch);
    }
    given::<Lifecycle>(given_events)
        .when(answer(vec![
            applied(carol()),
            refused(dave(), crate::request::UserRefusal::UnknownUser),
        ]))
        .result()
        .expect("results in the list's order are stored");
    // A provision's response has no results.
    given::<Lifecycle>(submitted())
        .when(Command::ReceiveResponse {
            from: b(),
            message_id: msg(9),
            response: AcmResponse {
                user_results: Arc::from([applied(carol())]),
                ..accepted_by(bob())
            },
        })
        .then_error(DomainError::UserResultsMismatch);
}
