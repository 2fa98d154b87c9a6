//! The conformance suite every [`AcmStore`] implementation must pass: its views equal the
//! fold of its log after any history, keys are claimed once, outbox claims are leased, and
//! the subscription sees every event once, in order.
//!
//! Use [`acm_conformance_tests!`](crate::acm_conformance_tests) in an adapter crate's tests:
//!
//! ```text
//! acm_core::acm_conformance_tests!(acm_store_memory::MemoryAcmStore::new());
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use futures_util::StreamExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::event::Event;
use crate::id::{
    EventId, GlobalPosition, GroupId, IdempotencyKey, McServiceId, MessageId, RequestId, StreamId,
    SystemId, Version,
};
use crate::lifecycle::{Command, ReceiptFacts, RequestState, decide, evolve};
use crate::request::{AcmRequest, AcmRequestBody, Decision, Limits, Processing, Target};
use crate::store::{Actor, ExpectedVersion, NewEvent, StoreError};
use crate::views::{self, AcmStore, Claim, SendFailure, TimerKind, ViewModel};

use super::conformance::v7;

fn parse<T: std::str::FromStr>(s: &str) -> T {
    s.parse()
        .unwrap_or_else(|_| unreachable!("suite literal {s}"))
}

fn system_a() -> SystemId {
    parse("mc-a.example")
}

fn system_b() -> SystemId {
    parse("mc-b.example")
}

fn alice() -> McServiceId {
    parse("sip:alice@mc-a.example")
}

fn bob() -> McServiceId {
    parse("sip:bob@mc-b.example")
}

fn carol() -> McServiceId {
    parse("sip:carol@mc-b.example")
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 8, 0, 0)
        .single()
        .unwrap_or_default()
}

/// The request numbered `n` (primary at A when `n` is even, partner at B when odd).
pub fn request_id(n: u64) -> RequestId {
    RequestId::from_uuid(v7(n, 0x5EED)).unwrap_or_else(|_| unreachable!())
}

fn message_id(n: u64, salt: u16) -> MessageId {
    MessageId::from_uuid(v7(n, salt)).unwrap_or_else(|_| unreachable!())
}

/// One step of a generated history, applied to request `n` through [`decide`] (a step the
/// lifecycle refuses in the request's state is skipped).
#[derive(Debug, Clone)]
pub enum Step {
    /// Submit (authorised or not) at the primary, optionally with an idempotency key.
    Submit(u64, bool, Option<u8>),
    /// Receive at the partner, with automatic processing or not.
    Receive(u64, Processing),
    /// Partner acknowledgement of the forward.
    PartnerAck(u64),
    /// Deliver to bob (partner).
    Deliver(u64),
    /// Bob answers.
    Respond(u64, bool),
    /// The primary acknowledged the response (partner).
    ResponseAck(u64),
    /// The response arrives (primary).
    ResponseArrives(u64, bool),
    /// The requester's download was acknowledged.
    DeliverResponse(u64),
    /// The requester withdraws.
    Withdraw(u64),
    /// The partner answered the withdrawal.
    WithdrawalOutcome(u64, bool),
    /// The partner received the withdrawal.
    ReceiveWithdrawal(u64),
    /// Expiry at the partner.
    Expire(u64),
    /// The send deadline ran out (primary).
    GiveUp(u64),
    /// The acceptance hook ran (partner).
    HookApplied(u64),
}

fn request(n: u64) -> Arc<AcmRequest> {
    Arc::new(AcmRequest {
        request_id: request_id(n),
        requester: alice(),
        requester_alias: None,
        partner: system_b(),
        target: Target::User(bob()),
        body: AcmRequestBody::provision([parse::<GroupId>("sip:tac-1@mc-a.example")]),
    })
}

/// The command `step` stands for, for the request it names.
#[allow(clippy::too_many_lines)] // one arm per step
pub fn command(step: &Step) -> (u64, Command) {
    let later = t0() + Duration::days(400);
    match step {
        Step::Submit(n, authorised, key) => (
            *n,
            Command::Submit {
                request: request(*n),
                authorization: if *authorised {
                    Ok(())
                } else {
                    Err(crate::request::AuthorizationRefusal::NotAuthorized {
                        user: alice(),
                        partner: system_b(),
                    })
                },
                limits: Limits::default(),
                message_id: message_id(*n, 1),
                at: t0(),
                idempotency_key: key.map(|k| parse::<IdempotencyKey>(&format!("key-{k}"))),
            },
        ),
        Step::Receive(n, processing) => (
            *n,
            Command::Receive {
                from: system_a(),
                message_id: message_id(*n, 1),
                request: request(*n),
                facts: ReceiptFacts {
                    local: system_b(),
                    interconnected: true,
                    home_domains: vec![system_a()],
                    recipients: Ok(Arc::from([bob(), carol()])),
                    processing: *processing,
                    group_known: true,
                    unknown_users: Vec::new(),
                    limits: Limits::default(),
                },
                response_message_id: message_id(*n, 2),
                at: t0(),
            },
        ),
        Step::PartnerAck(n) => (
            *n,
            Command::RecordPartnerAck {
                message_id: message_id(*n, 1),
            },
        ),
        Step::Deliver(n) => (*n, Command::Deliver { to: bob() }),
        Step::Respond(n, accept) => (
            *n,
            Command::Respond {
                by: bob(),
                alias: None,
                decision: if *accept {
                    Decision::Accept
                } else {
                    Decision::Reject { reason: None }
                },
                message_id: message_id(*n, 2),
            },
        ),
        Step::ResponseAck(n) => (
            *n,
            Command::RecordResponseAck {
                message_id: message_id(*n, 2),
            },
        ),
        Step::ResponseArrives(n, accept) => (
            *n,
            Command::ReceiveResponse {
                from: system_b(),
                message_id: message_id(*n, 2),
                response: crate::request::AcmResponse {
                    responder: crate::request::Responder::User {
                        id: bob(),
                        alias: None,
                    },
                    outcome: if *accept {
                        crate::request::Outcome::Accepted
                    } else {
                        crate::request::Outcome::Rejected {
                            reason: crate::request::RejectionReason::User { text: None },
                        }
                    },
                    user_results: Arc::default(),
                },
            },
        ),
        Step::DeliverResponse(n) => (
            *n,
            Command::DeliverResponse {
                to: alice(),
                response: true,
                undeliverable: true,
                withdrawal_outcome: true,
            },
        ),
        Step::Withdraw(n) => (
            *n,
            Command::RequestWithdrawal {
                by: alice(),
                message_id: message_id(*n, 3),
            },
        ),
        Step::WithdrawalOutcome(n, withdrawn) => (
            *n,
            Command::RecordWithdrawalOutcome {
                message_id: message_id(*n, 3),
                withdrawn: *withdrawn,
            },
        ),
        Step::ReceiveWithdrawal(n) => (*n, Command::ReceiveWithdrawal { from: system_a() }),
        Step::Expire(n) => (
            *n,
            Command::Expire {
                now: later,
                ttl: Duration::days(30),
                message_id: message_id(*n, 2),
            },
        ),
        Step::GiveUp(n) => (
            *n,
            Command::GiveUp {
                now: later,
                deadline: Duration::days(1),
            },
        ),
        Step::HookApplied(n) => (*n, Command::RecordAcceptanceApplied),
    }
}

/// Steps over `requests` primary and `requests` partner requests.
pub fn step_strategy(requests: u64) -> impl Strategy<Value = Step> {
    let primary = (0..requests).prop_map(|n| n * 2);
    let partner = (0..requests).prop_map(|n| n * 2 + 1);
    prop_oneof![
        (primary.clone(), any::<bool>(), proptest::option::of(0u8..3))
            .prop_map(|(n, a, k)| Step::Submit(n, a, k)),
        (
            partner.clone(),
            prop_oneof![
                Just(Processing::Manual),
                Just(Processing::AutoAccept),
                Just(Processing::AutoReject)
            ]
        )
            .prop_map(|(n, p)| Step::Receive(n, p)),
        primary.clone().prop_map(Step::PartnerAck),
        partner.clone().prop_map(Step::Deliver),
        (partner.clone(), any::<bool>()).prop_map(|(n, a)| Step::Respond(n, a)),
        partner.clone().prop_map(Step::ResponseAck),
        (primary.clone(), any::<bool>()).prop_map(|(n, a)| Step::ResponseArrives(n, a)),
        primary.clone().prop_map(Step::DeliverResponse),
        primary.clone().prop_map(Step::Withdraw),
        (primary.clone(), any::<bool>()).prop_map(|(n, w)| Step::WithdrawalOutcome(n, w)),
        partner.clone().prop_map(Step::ReceiveWithdrawal),
        partner.clone().prop_map(Step::Expire),
        primary.prop_map(Step::GiveUp),
        partner.prop_map(Step::HookApplied),
    ]
}

fn event_id(n: u64) -> EventId {
    EventId::from_uuid(v7(n, 0xE1E1)).unwrap_or_else(|_| unreachable!())
}

/// Applies `steps` to `store` through [`decide`]; returns how many appends it made. A step
/// whose key another request holds (two submissions with one key) is refused by the store
/// with [`StoreError::Taken`] and skipped, as it must be.
pub async fn apply_history<S: AcmStore + ?Sized>(store: &S, steps: &[Step]) -> usize {
    let mut states: BTreeMap<u64, (RequestState, Version)> = BTreeMap::new();
    let mut next_event;
    let mut appends = 0;
    for step in steps {
        let n = match step {
            Step::Submit(n, ..)
            | Step::Receive(n, _)
            | Step::PartnerAck(n)
            | Step::Deliver(n)
            | Step::Respond(n, _)
            | Step::ResponseAck(n)
            | Step::ResponseArrives(n, _)
            | Step::DeliverResponse(n)
            | Step::Withdraw(n)
            | Step::WithdrawalOutcome(n, _)
            | Step::ReceiveWithdrawal(n)
            | Step::Expire(n)
            | Step::GiveUp(n)
            | Step::HookApplied(n) => *n,
        };
        let (state, version) = states.get(&n).cloned().unwrap_or_default();
        next_event = 0;
        let (n, command) = command(step);
        let Ok(events) = decide(&state, &command) else {
            continue;
        };
        if events.is_empty() {
            continue;
        }
        let batch: Vec<NewEvent<Event>> = events
            .iter()
            .map(|payload| {
                next_event += 1;
                // Unique per request and version, so that two calls never collide.
                let number = n * 1_000 + version.0 + next_event;
                NewEvent {
                    event_id: event_id(number),
                    correlation_id: request_id(n),
                    causation_id: None,
                    actor: Actor::System(system_a()),
                    recorded_at: t0() + Duration::seconds(i64::try_from(next_event).unwrap_or(0)),
                    payload: payload.clone(),
                }
            })
            .collect();
        let expected = if version == Version::NONE {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        };
        match store.append(StreamId(request_id(n)), expected, batch).await {
            Ok(appended) => {
                appends += 1;
                let state = events.iter().fold(state, evolve);
                states.insert(n, (state, appended.last_version()));
            }
            Err(StoreError::Taken(_)) => {}
            Err(error) => panic!("append of {step:?} failed: {error}"),
        }
    }
    appends
}

/// The views the log of `store` implies: every stream folded, then [`views::of_state`].
pub async fn expected_views<S: AcmStore + ?Sized>(store: &S) -> ViewModel {
    let mut states: BTreeMap<StreamId, RequestState> = BTreeMap::new();
    let mut log = store.read_all(GlobalPosition::START);
    while let Some(envelope) = log.next().await {
        let envelope = envelope.unwrap_or_else(|e| panic!("read_all: {e}"));
        let state = states.remove(&envelope.stream_id).unwrap_or_default();
        states.insert(envelope.stream_id, evolve(state, &envelope.payload));
    }
    let mut model = ViewModel::new();
    for (stream, state) in states {
        model.apply(stream.0, &views::of_state(&state), t0());
    }
    model
}

/// Checks every view `store` answers against `expected`, for the users and requests the
/// suite uses. Claims every owed message (far in the future) to compare the outbox: use
/// [`assert_views_read_only`] on a store that goes on working.
pub async fn assert_views<S: AcmStore + ?Sized>(store: &S, expected: &ViewModel) {
    assert_views_read_only(store, expected).await;
    let far = t0() + Duration::days(100_000);
    let mut got: Vec<(MessageId, RequestId, SystemId)> = store
        .claim_outbox(far, Duration::seconds(1), 100_000)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|o| (o.message_id, o.request_id, o.partner))
        .collect();
    got.sort();
    let want: Vec<(MessageId, RequestId, SystemId)> = expected
        .outbox()
        .into_iter()
        .map(|(m, row)| (m, row.request_id, row.partner))
        .collect();
    assert_eq!(got, want, "outbox");
}

/// Checks every view `store` answers against `expected` without changing anything (the
/// outbox by its depth only).
pub async fn assert_views_read_only<S: AcmStore + ?Sized>(store: &S, expected: &ViewModel) {
    let far = t0() + Duration::days(100_000);
    for user in [alice(), bob(), carol()] {
        let got = store
            .pending_for(&user)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, expected.pending_for(&user), "pending for {user}");
    }
    assert_eq!(
        store
            .pending_count()
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        expected.pending_count(),
        "pending count"
    );
    let status = store
        .outbox_status()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.depth, expected.outbox().len() as u64, "outbox depth");
    assert_eq!(
        store
            .due_hooks(100_000)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        expected.due_hooks(100_000),
        "due hooks"
    );
    for kind in [TimerKind::Expiry, TimerKind::SendDeadline] {
        let mut got = store
            .due_timers(kind, far, 100_000)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        got.sort();
        let mut want = expected.due_timers(kind, far, 100_000);
        want.sort();
        assert_eq!(got, want, "{kind:?} timers");
        // Nothing is due before the first instant the suite records.
        let early = store
            .due_timers(kind, t0() - Duration::days(1), 100_000)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(early.is_empty(), "{kind:?} timers due before they start");
    }
    for (message_id, entry) in expected.inbox() {
        let got = store
            .received(message_id)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.as_ref(), Some(&entry), "inbox {message_id}");
    }
    for entry in expected.submissions() {
        let got = store
            .submission(&entry.requester, &entry.key)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.as_ref(), Some(&entry), "submission {}", entry.key);
    }
}

/// A scripted history touching every view, then checked.
pub async fn views_follow_the_log<S: AcmStore + ?Sized>(store: &S) {
    let steps = [
        Step::Submit(0, true, Some(1)),
        Step::Submit(2, false, None),
        Step::Submit(4, true, None),
        Step::PartnerAck(4),
        Step::ResponseArrives(4, true),
        Step::Submit(6, true, None),
        Step::Withdraw(6),
        Step::Receive(1, Processing::Manual),
        Step::Deliver(1),
        Step::Respond(1, true),
        Step::Receive(3, Processing::Manual),
        Step::Receive(5, Processing::AutoReject),
    ];
    let appends = apply_history(store, &steps).await;
    assert_eq!(appends, steps.len(), "every scripted step appends");
    let expected = expected_views(store).await;
    assert_eq!(expected.pending_for(&alice()), vec![request_id(4)]);
    assert_eq!(
        expected.pending_for(&bob()),
        vec![request_id(3)],
        "request 1 was answered"
    );
    assert_eq!(expected.due_hooks(10), vec![request_id(1)]);
    assert_views(store, &expected).await;
}

/// Random histories: after each, every view equals the fold of the log.
pub fn views_match_the_fold<S: AcmStore>(fresh: impl Fn() -> S, cases: u32) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = proptest::collection::vec(step_strategy(3), 1..40);
    let result = runner.run(&strategy, |steps| {
        let store = fresh();
        futures_executor::block_on(async {
            apply_history(&store, &steps).await;
            let expected = expected_views(&store).await;
            assert_views(&store, &expected).await;
        });
        Ok::<(), TestCaseError>(())
    });
    if let Err(error) = result {
        panic!("views differ from the fold of the log: {error}");
    }
}

/// A partner message id recorded by one request cannot be recorded by another: the second
/// append is [`StoreError::Taken`] and writes nothing.
pub async fn message_ids_are_claimed_once<S: AcmStore + ?Sized>(store: &S) {
    apply_history(store, &[Step::Receive(1, Processing::Manual)]).await;
    let head = store.head().await.unwrap_or_else(|e| panic!("{e}"));
    let (_, command) = command(&Step::Receive(3, Processing::Manual));
    let Command::Receive {
        from,
        request,
        facts,
        response_message_id,
        at,
        ..
    } = command
    else {
        unreachable!()
    };
    let reused = Command::Receive {
        from,
        message_id: message_id(1, 1),
        request,
        facts,
        response_message_id,
        at,
    };
    let events = decide(&RequestState::Empty, &reused).unwrap_or_else(|e| panic!("{e}"));
    let batch = events
        .into_iter()
        .enumerate()
        .map(|(i, payload)| NewEvent {
            event_id: event_id(9_000 + i as u64),
            correlation_id: request_id(3),
            causation_id: None,
            actor: Actor::System(system_a()),
            recorded_at: t0(),
            payload,
        })
        .collect();
    let result = store
        .append(StreamId(request_id(3)), ExpectedVersion::NoStream, batch)
        .await;
    assert!(
        matches!(result, Err(StoreError::Taken(Claim::Message(m))) if m == message_id(1, 1)),
        "a reused message id is taken: {result:?}"
    );
    assert_eq!(store.head().await.unwrap_or_else(|e| panic!("{e}")), head);
    let owner = store
        .received(message_id(1, 1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(owner.map(|e| e.request_id), Some(request_id(1)));
}

/// One requester's idempotency key names one request.
pub async fn submission_keys_are_claimed_once<S: AcmStore + ?Sized>(store: &S) {
    let appends = apply_history(
        store,
        &[
            Step::Submit(0, true, Some(7)),
            Step::Submit(2, true, Some(7)),
        ],
    )
    .await;
    assert_eq!(appends, 1, "the second submission with the key is taken");
    let key = parse::<IdempotencyKey>("key-7");
    let holder = store
        .submission(&alice(), &key)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(holder.map(|e| e.request_id), Some(request_id(0)));
    let other = store
        .submission(&bob(), &key)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(other.is_none(), "keys are scoped to their requester");
}

/// A claim is leased; a failure makes the message due again at its retry time; a refusal
/// parks it and shows in the status.
pub async fn outbox_claims_are_leased<S: AcmStore + ?Sized>(store: &S) {
    apply_history(
        store,
        &[Step::Submit(0, true, None), Step::Submit(2, true, None)],
    )
    .await;
    let now = t0() + Duration::minutes(1);
    let lease = Duration::seconds(30);
    let first = store
        .claim_outbox(now, lease, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.len(), 2);
    assert!(
        first
            .iter()
            .all(|o| o.attempts == 0 && o.partner == system_b())
    );
    let again = store
        .claim_outbox(now, lease, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        again.is_empty(),
        "claimed messages are not claimed twice within the lease"
    );
    let after_lease = store
        .claim_outbox(now + lease, lease, 1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        after_lease.len(),
        1,
        "a lapsed lease frees the message (limit 1)"
    );

    let m = first[0].message_id;
    let retry_at = now + Duration::seconds(5);
    let attempts = store
        .record_failed_send(m, SendFailure::Unreachable { retry_at })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(attempts, Some(1));
    let early = store
        .claim_outbox(retry_at - Duration::seconds(1), lease, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        early.iter().all(|o| o.message_id != m),
        "not due before its retry"
    );
    let due = store
        .claim_outbox(retry_at, lease, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(due.iter().any(|o| o.message_id == m && o.attempts == 1));

    let refused = store
        .record_failed_send(
            m,
            SendFailure::Refused {
                retry_at: now + Duration::hours(1),
                problem: "not_interconnected".into(),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(refused, Some(2));
    let status = store
        .outbox_status()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (status.depth, status.parked, status.max_attempts),
        (2, 1, 2)
    );
    assert!(status.oldest_queued_at.is_some());
    let unknown = store
        .record_failed_send(message_id(99, 9), SendFailure::Unreachable { retry_at })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(unknown, None, "a message not owed has no attempts");
}

/// The subscription yields what is stored, then what commits later, once each, in order.
pub async fn subscription_sees_every_event<S: AcmStore + ?Sized>(store: &S) {
    apply_history(store, &[Step::Submit(0, true, None)]).await;
    let head = store.head().await.unwrap_or_else(|e| panic!("{e}"));
    let mut sub = store.subscribe(GlobalPosition::START);
    let mut seen = Vec::new();
    for _ in 0..head.0 {
        let e = sub
            .next()
            .await
            .unwrap_or_else(|| panic!("ended"))
            .unwrap_or_else(|e| panic!("{e}"));
        seen.push(e.position.0);
    }
    apply_history(store, &[Step::Receive(1, Processing::Manual)]).await;
    let head = store.head().await.unwrap_or_else(|e| panic!("{e}"));
    while seen.len() < usize::try_from(head.0).unwrap_or(0) {
        let e = sub
            .next()
            .await
            .unwrap_or_else(|| panic!("ended"))
            .unwrap_or_else(|e| panic!("{e}"));
        seen.push(e.position.0);
    }
    let want: Vec<u64> = (1..=head.0).collect();
    assert_eq!(seen, want);
    let _: BTreeSet<u64> = seen.into_iter().collect();
}

/// Runs the whole suite, each case on a fresh store.
pub fn run_all<S: AcmStore>(fresh: impl Fn() -> S) {
    futures_executor::block_on(async {
        views_follow_the_log(&fresh()).await;
        message_ids_are_claimed_once(&fresh()).await;
        submission_keys_are_claimed_once(&fresh()).await;
        outbox_claims_are_leased(&fresh()).await;
        subscription_sees_every_event(&fresh()).await;
    });
    views_match_the_fold(fresh, 64);
}

/// Expands to one `#[test]` per guarantee of [`AcmStore`], each on a fresh store from
/// `$fresh`.
#[macro_export]
macro_rules! acm_conformance_tests {
    ($fresh:expr) => {
        mod acm_conformance {
            #[allow(unused_imports)]
            use super::*;
            use $crate::testkit::acm as c;

            #[test]
            fn views_follow_the_log() {
                $crate::testkit::block_on(c::views_follow_the_log(&$fresh));
            }
            #[test]
            fn message_ids_are_claimed_once() {
                $crate::testkit::block_on(c::message_ids_are_claimed_once(&$fresh));
            }
            #[test]
            fn submission_keys_are_claimed_once() {
                $crate::testkit::block_on(c::submission_keys_are_claimed_once(&$fresh));
            }
            #[test]
            fn outbox_claims_are_leased() {
                $crate::testkit::block_on(c::outbox_claims_are_leased(&$fresh));
            }
            #[test]
            fn subscription_sees_every_event() {
                $crate::testkit::block_on(c::subscription_sees_every_event(&$fresh));
            }
            #[test]
            fn views_match_the_fold() {
                c::views_match_the_fold(|| $fresh, 64);
            }
        }
    };
}
