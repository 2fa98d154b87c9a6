//! A model-based test of two ACM servers, reusable on any [`AcmStore`]: systems A (the
//! primary) and B (the partner) of the [`fixture`](super::fixture), each on a fresh store from
//! a [`StoreFactory`], driven by random sequences of user actions, background work, link
//! failures, clock moves and restarts.
//!
//! The reference model ([`Reference`], its state a [`Model`]) tracks, independently of the
//! servers, each request's stage on each side, who it is pending for, the outbox with its
//! back-off timers, who is logged on and which notifications and acceptance hooks are due.
//! Every [`Transition`]'s result is predicted by the model and asserted; after every
//! transition the servers' state, pending lists, outboxes, hook calls and event logs are
//! checked against the model and against the log's invariants ([`check_log`]). The store is
//! seen only through the [`AcmStore`] and [`EventStore`] traits.
//!
//! A store's test is a few lines: [`run`] with a factory of fresh stores and a case count.
//!
//! ```text
//! #[test]
//! fn two_acm_servers_follow_the_model() {
//!     acm_core::testkit::model::run(|| std::sync::Arc::new(MyStore::new()), 64);
//! }
//! ```
//!
//! The run is deterministic (fixed seed); set `PROPTEST_RNG_SEED` to explore other sequences
//! and `PROPTEST_CASES` to run more of them. With [`AcmStateMachine`] (for a factory that is
//! [`Default`]) the model also runs under `proptest_state_machine::prop_state_machine!`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, Utc};
use futures_executor::block_on;
use futures_util::StreamExt;
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};

use crate::audit::replay;
use crate::{
    AcmRequestKind, AcmResponse, AuthorizationRefusal, Decision, MAX_REASON_LEN, Outcome,
    Processing, RejectionReason, Responder, Target, VerificationFailure,
};
use crate::{AcmServer, AcmStore, Envelope, Event, EventStore, Session};
use crate::{Authorization, RequestState, Verification, Withdrawal};
use crate::{Closure, DomainError};
use crate::{GlobalPosition, McServiceId, RequestId, StreamId, SystemId, Version};
use crate::{PartnerAck, PendingItem, ServiceError};

use super::fixture::{System, TwoSystems, alice, bob, carol, duty_officer, id, provision};

/// Pending time configured at both servers, in milliseconds (one hour).
pub const TTL_MS: i64 = 60 * 60 * 1000;
/// Longest back-off between two sends of an outbox message (the default, one minute).
pub const MAX_BACKOFF_MS: i64 = 60 * 1000;
/// How long a message the partner refused is parked before it is tried again.
pub const REFUSED_RETRY_MS: i64 = 2 * 60 * 1000;
/// A rejection reason one byte longer than allowed.
const TOO_LONG: usize = MAX_REASON_LEN + 1;

// ------------------------------------------------------------------------------ vocabulary

/// One of the two MC systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// System A, `mc-a.example`, the primary.
    A,
    /// System B, `mc-b.example`, the partner.
    B,
}

impl Side {
    fn ix(self) -> usize {
        match self {
            Self::A => 0,
            Self::B => 1,
        }
    }

    fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }

    fn system(self) -> SystemId {
        match self {
            Self::A => id("mc-a.example"),
            Self::B => id("mc-b.example"),
        }
    }
}

/// The users of the fixture that the test acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum User {
    /// `sip:alice@mc-a.example`, who may provide ACM requests to B.
    Alice,
    /// `sip:mallory@mc-a.example`, who may not.
    Mallory,
    /// `sip:bob@mc-b.example`, who may receive.
    Bob,
    /// `sip:carol@mc-b.example`, who may receive.
    Carol,
    /// `sip:dave@mc-b.example`, who may not receive.
    Dave,
}

impl User {
    const ALL: [Self; 5] = [
        Self::Alice,
        Self::Mallory,
        Self::Bob,
        Self::Carol,
        Self::Dave,
    ];

    fn id(self) -> McServiceId {
        match self {
            Self::Alice => alice(),
            Self::Mallory => id("sip:mallory@mc-a.example"),
            Self::Bob => bob(),
            Self::Carol => carol(),
            Self::Dave => id("sip:dave@mc-b.example"),
        }
    }

    fn side(self) -> Side {
        match self {
            Self::Alice | Self::Mallory => Side::A,
            Self::Bob | Self::Carol | Self::Dave => Side::B,
        }
    }
}

/// Who a submission is addressed to in B.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// Bob.
    Bob,
    /// Carol.
    Carol,
    /// The functional alias held by bob and carol.
    Alias,
    /// A user of B who may not receive: verification fails.
    Dave,
}

impl TargetKind {
    fn target(self) -> Target {
        match self {
            Self::Bob => Target::User(bob()),
            Self::Carol => Target::User(carol()),
            Self::Alias => Target::FunctionalAlias(duty_officer()),
            Self::Dave => Target::User(User::Dave.id()),
        }
    }
}

/// A recipient's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    /// Accepts.
    Accept,
    /// Rejects without a reason.
    Reject,
    /// Rejects with a short reason.
    RejectWithReason,
    /// A reason longer than allowed: refused.
    RejectTooLong,
}

impl DecisionKind {
    fn decision(self) -> Decision {
        match self {
            Self::Accept => Decision::Accept,
            Self::Reject => Decision::Reject { reason: None },
            Self::RejectWithReason => Decision::Reject {
                reason: Some("not now".into()),
            },
            Self::RejectTooLong => Decision::Reject {
                reason: Some("x".repeat(TOO_LONG)),
            },
        }
    }
}

/// B's processing policy for provision requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// A recipient answers.
    Manual,
    /// B accepts on receipt.
    AutoAccept,
    /// B rejects on receipt.
    AutoReject,
}

impl Policy {
    fn processing(self) -> Processing {
        match self {
            Self::Manual => Processing::Manual,
            Self::AutoAccept => Processing::AutoAccept,
            Self::AutoReject => Processing::AutoReject,
        }
    }
}

/// One step of a run: what the test does to the servers, their network or their clock.
#[derive(Debug, Clone)]
pub enum Transition {
    /// A user of A submits a provision of `groups` groups.
    Submit {
        /// The submitter.
        by: User,
        /// The target in B.
        target: TargetKind,
        /// How many groups it provides.
        groups: usize,
    },
    /// A user logs on at their server (one more session).
    LogOn(User),
    /// Every session of a user ends.
    LogOff(User),
    /// Pending ACM data download (query and fetch).
    Download(User),
    /// A user of B answers the request with this index (in submission order).
    Respond {
        /// The answering user.
        by: User,
        /// The request's index.
        request: usize,
        /// The answer.
        decision: DecisionKind,
        /// Whether they answer as the functional alias.
        as_alias: bool,
    },
    /// A user of A withdraws the request with this index.
    Withdraw {
        /// The withdrawing user.
        by: User,
        /// The request's index.
        request: usize,
    },
    /// One relay pass of a server's outbox.
    Relay(Side),
    /// The message `from` owes about a request reaches the other system, but the
    /// acknowledgement is lost: the receiver records it, the sender does not (it resends).
    LoseAck {
        /// The sending side.
        from: Side,
        /// The request's index.
        request: usize,
    },
    /// Cuts or restores the link from `from` to the other system.
    Link {
        /// The sending side of the link.
        from: Side,
        /// Whether it is up afterwards.
        up: bool,
    },
    /// Moves the shared clock forward.
    Advance {
        /// By this many milliseconds.
        ms: i64,
    },
    /// B expires what is due.
    Expire,
    /// B runs due acceptance hooks.
    ApplyAcceptances,
    /// B's hook starts or stops failing.
    HookFailing(bool),
    /// B's processing policy changes.
    SetPolicy(Policy),
    /// The functional alias changes hands at B.
    AliasHolders(Vec<User>),
    /// A server is rebuilt from its store.
    Restart(Side),
}

// ------------------------------------------------------------------------------ the model

/// A final response, as the model knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resp {
    /// The answering user and whether they answered as the functional alias; `None`: B's
    /// server answered.
    by: Option<(User, bool)>,
    outcome: ModelOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ModelOutcome {
    Accepted,
    RejectedByUser(Option<String>),
    RejectedByPolicy,
    /// Verification failed: the target may not receive.
    RejectedUnverified(Failure),
    Expired,
}

impl Resp {
    fn server(outcome: ModelOutcome) -> Self {
        Self { by: None, outcome }
    }

    fn accepted(&self) -> bool {
        self.outcome == ModelOutcome::Accepted
    }

    /// The response the servers should hold.
    fn to_acm(&self) -> AcmResponse {
        let responder = match self.by {
            None => Responder::Server {
                system: Side::B.system(),
            },
            Some((user, as_alias)) => Responder::User {
                id: user.id(),
                alias: as_alias.then(duty_officer),
            },
        };
        let rejected = |reason| Outcome::Rejected { reason };
        let outcome = match &self.outcome {
            ModelOutcome::Accepted => Outcome::Accepted,
            ModelOutcome::RejectedByUser(text) => {
                rejected(RejectionReason::User { text: text.clone() })
            }
            ModelOutcome::RejectedByPolicy => rejected(RejectionReason::Policy),
            ModelOutcome::RejectedUnverified(failure) => rejected(RejectionReason::Verification {
                failure: failure.to_acm(),
            }),
            ModelOutcome::Expired => rejected(RejectionReason::Expired),
        };
        AcmResponse::new(responder, outcome)
    }
}

/// Why B's verification fails, as the model knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The target user may not receive.
    MayNotReceive(User),
    /// Nobody holds the functional alias.
    AliasNotHeld,
    /// The alias is held, but by nobody who may receive.
    NoEligibleRecipient,
}

impl Failure {
    fn to_acm(self) -> VerificationFailure {
        match self {
            Self::MayNotReceive(user) => {
                VerificationFailure::TargetMayNotReceive { user: user.id() }
            }
            Self::AliasNotHeld => VerificationFailure::AliasNotHeld {
                alias: duty_officer(),
            },
            Self::NoEligibleRecipient => VerificationFailure::NoEligibleRecipient,
        }
    }
}

/// Withdrawal stage at A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WithdrawalStage {
    None,
    Requested,
    Refused,
    Withdrawn,
}

/// The request at A, its primary.
#[allow(
    clippy::struct_excessive_bools,
    reason = "the primary stage has independent flags, as in the procedure"
)]
#[derive(Debug, Clone)]
struct AtPrimary {
    authorized: bool,
    partner_stored: bool,
    response: Option<Resp>,
    response_delivered: bool,
    withdrawal: WithdrawalStage,
    /// The partner's answer to the withdrawal was delivered to the requester.
    withdrawal_outcome_delivered: bool,
}

impl AtPrimary {
    fn withdrawal_outcome_pending(&self) -> bool {
        matches!(
            self.withdrawal,
            WithdrawalStage::Refused | WithdrawalStage::Withdrawn
        ) && !self.withdrawal_outcome_delivered
    }

    fn response_pending(&self) -> bool {
        self.response.is_some() && !self.response_delivered
    }
}

/// The request at B, its partner.
#[allow(
    clippy::struct_excessive_bools,
    reason = "the partner stage has independent flags, as in the procedure"
)]
#[derive(Debug, Clone)]
struct AtPartner {
    /// Model time of receipt.
    stored_at: i64,
    /// `Ok(recipients)` or why verification failed.
    verification: Result<Vec<User>, Failure>,
    delivered_to: Vec<User>,
    response: Option<Resp>,
    response_forwarded: bool,
    expired: bool,
    withdrawn: bool,
    acceptance_applied: bool,
}

impl AtPartner {
    /// Still waiting for an answer.
    fn is_open(&self) -> bool {
        self.verification.is_ok() && !self.withdrawn && !self.expired && self.response.is_none()
    }

    /// Why it no longer takes an answer, in the order the procedure names them.
    fn closure(&self) -> Option<Closure> {
        if self.withdrawn {
            Some(Closure::Withdrawn)
        } else if self.expired {
            Some(Closure::Expired)
        } else if self.verification.is_err() {
            Some(Closure::VerificationFailed)
        } else if self.response.is_some() {
            Some(Closure::Answered)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone)]
struct Req {
    requester: User,
    target: TargetKind,
    groups: usize,
    a: AtPrimary,
    b: Option<AtPartner>,
}

/// A partner message owed by one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Msg {
    Request,
    Withdrawal,
    Response,
}

/// An outbox entry's retry timer.
#[derive(Debug, Clone, Copy, Default)]
struct Retry {
    attempts: u32,
    not_before: Option<i64>,
}

/// An item of a pending ACM data download.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// A request for a user of B, stored at this model time.
    Request(usize, i64),
    /// A response for the requester.
    Response(usize, Resp),
    /// The partner's answer to the requester's withdrawal: withdrawn or not.
    WithdrawalOutcome(usize, bool),
}

/// What the model predicts for the last transition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Expected {
    #[default]
    Nothing,
    Submit {
        refused: bool,
    },
    LogOn(usize),
    Download(Vec<Item>),
    Respond(Result<(), DomainError>),
    Withdraw(Result<(), DomainError>),
    Relay {
        acknowledged: usize,
        unreachable: usize,
        refused: usize,
    },
    /// The acknowledgement the receiver gives (`Err`: it refuses the message), or `None` when
    /// nothing is owed.
    LoseAck(Option<Result<PartnerAck, ()>>),
    Expire(usize),
    Apply(usize),
}

/// The reference model's state: the two systems as the procedure says they should be.
#[derive(Debug, Clone)]
pub struct Model {
    /// Milliseconds since the start.
    now: i64,
    /// Requests in submission order.
    reqs: Vec<Req>,
    /// Per side: outbox entries by request.
    outbox: [BTreeMap<usize, Retry>; 2],
    /// Per side: users logged on.
    sessions: [BTreeSet<User>; 2],
    /// Per side: whether the link to the other side is up.
    link_up: [bool; 2],
    hook_failing: bool,
    policy: Policy,
    /// Who holds the functional alias at B, in the directory's order.
    alias_holders: Vec<User>,
    /// Requests the hook ran for, in order.
    hook_calls: Vec<usize>,
    /// The last transition's result.
    expected: Expected,
    /// Per side: users notified during the last transition.
    notified: [Vec<User>; 2],
}

/// How one send in the model went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Acked,
    Unreachable,
    Refused,
}

fn backoff(attempts: u32) -> i64 {
    // 100 ms doubled per failed attempt, at most the configured maximum.
    (100_i64 << attempts.min(20)).min(MAX_BACKOFF_MS)
}

impl Model {
    fn new() -> Self {
        Self {
            now: 0,
            reqs: Vec::new(),
            outbox: [BTreeMap::new(), BTreeMap::new()],
            sessions: [BTreeSet::new(), BTreeSet::new()],
            link_up: [true, true],
            hook_failing: false,
            policy: Policy::Manual,
            alias_holders: vec![User::Bob, User::Carol],
            hook_calls: Vec::new(),
            expected: Expected::Nothing,
            notified: [Vec::new(), Vec::new()],
        }
    }

    /// Who request `r` is pending for on `side`.
    fn pending_on(&self, r: usize, side: Side) -> Vec<User> {
        let req = &self.reqs[r];
        match side {
            Side::A if req.a.response_pending() || req.a.withdrawal_outcome_pending() => {
                vec![req.requester]
            }
            Side::A => Vec::new(),
            Side::B => match &req.b {
                Some(b) if b.is_open() => b.verification.clone().unwrap_or_default(),
                _ => Vec::new(),
            },
        }
    }

    /// Requests pending for `user` on their server, oldest first.
    fn pending(&self, user: User) -> Vec<usize> {
        (0..self.reqs.len())
            .filter(|&r| self.pending_on(r, user.side()).contains(&user))
            .collect()
    }

    /// The message `side` owes the other side about request `r`.
    fn outbound(&self, r: usize, side: Side) -> Option<Msg> {
        let req = &self.reqs[r];
        match side {
            Side::A => {
                let a = &req.a;
                if !a.authorized || a.response.is_some() {
                    None
                } else if !a.partner_stored
                    && matches!(
                        a.withdrawal,
                        WithdrawalStage::None | WithdrawalStage::Requested
                    )
                {
                    Some(Msg::Request)
                } else if a.withdrawal == WithdrawalStage::Requested {
                    Some(Msg::Withdrawal)
                } else {
                    None
                }
            }
            Side::B => req
                .b
                .as_ref()
                .filter(|b| b.response.is_some() && !b.response_forwarded)
                .map(|_| Msg::Response),
        }
    }

    /// Changes request `r` on `side`: notifies logged-on users it became pending for and
    /// keeps the outbox in step (an entry keeps its retry timer while a message is owed).
    fn change(&mut self, side: Side, r: usize, f: impl FnOnce(&mut Req)) {
        let before = self.pending_on(r, side);
        f(&mut self.reqs[r]);
        for user in self.pending_on(r, side) {
            if !before.contains(&user) && self.sessions[side.ix()].contains(&user) {
                self.notified[side.ix()].push(user);
            }
        }
        if self.outbound(r, side).is_some() {
            self.outbox[side.ix()].entry(r).or_default();
        } else {
            self.outbox[side.ix()].remove(&r);
        }
    }

    fn submit(&mut self, by: User, target: TargetKind, groups: usize) {
        let authorized = by == User::Alice;
        self.reqs.push(Req {
            requester: by,
            target,
            groups,
            a: AtPrimary {
                authorized: false,
                partner_stored: false,
                response: None,
                response_delivered: false,
                withdrawal: WithdrawalStage::None,
                withdrawal_outcome_delivered: false,
            },
            b: None,
        });
        let r = self.reqs.len() - 1;
        self.change(Side::A, r, |q| q.a.authorized = authorized);
        self.expected = Expected::Submit {
            refused: !authorized,
        };
    }

    fn log_on(&mut self, user: User) {
        let side = user.side().ix();
        self.sessions[side].insert(user);
        // The new session holds a notice when something is pending (checked by the log-on;
        // the user's other sessions are not raised).
        let pending = self.pending(user).len();
        self.expected = Expected::LogOn(pending);
    }

    fn download(&mut self, user: User) {
        let mut items = Vec::new();
        for r in self.pending(user) {
            match user.side() {
                Side::A => {
                    // The withdrawal's outcome first, then the response, as the server lists
                    // them.
                    let a = &self.reqs[r].a;
                    if a.withdrawal_outcome_pending() {
                        let withdrawn = a.withdrawal == WithdrawalStage::Withdrawn;
                        items.push(Item::WithdrawalOutcome(r, withdrawn));
                    }
                    if a.response_pending() {
                        let response = a.response.clone().expect("pending at A: answered");
                        items.push(Item::Response(r, response));
                    }
                    self.change(Side::A, r, |q| {
                        if q.a.response.is_some() {
                            q.a.response_delivered = true;
                        }
                        if q.a.withdrawal_outcome_pending() {
                            q.a.withdrawal_outcome_delivered = true;
                        }
                    });
                }
                Side::B => {
                    let mut stored_at = 0;
                    self.change(Side::B, r, |q| {
                        let b = q.b.as_mut().expect("pending at B: stored");
                        if !b.delivered_to.contains(&user) {
                            b.delivered_to.push(user);
                        }
                        stored_at = b.stored_at;
                    });
                    items.push(Item::Request(r, stored_at));
                }
            }
        }
        self.expected = Expected::Download(items);
    }

    fn respond(&mut self, by: User, r: usize, decision: DecisionKind, as_alias: bool) {
        // The claimed alias is checked against its holders first (B must know the request
        // to know which kind to ask the directory about).
        if as_alias && (self.reqs[r].b.is_none() || !self.alias_holders.contains(&by)) {
            self.expected = Expected::Respond(Err(DomainError::AliasNotHeld {
                alias: duty_officer(),
                user: by.id(),
            }));
            return;
        }
        let outcome = match decision {
            DecisionKind::Accept => ModelOutcome::Accepted,
            DecisionKind::Reject => ModelOutcome::RejectedByUser(None),
            DecisionKind::RejectWithReason | DecisionKind::RejectTooLong => {
                ModelOutcome::RejectedByUser(Some("not now".into()))
            }
        };
        let response = Resp {
            by: Some((by, as_alias)),
            outcome,
        };
        // The answer is checked first, then whether it repeats the recorded one (a retry
        // succeeds and records nothing), then the request's stage.
        let mut repeat = false;
        let result = self.reqs[r]
            .b
            .as_ref()
            .map_or(Err(DomainError::NotStored), |b| {
                if decision == DecisionKind::RejectTooLong {
                    Err(DomainError::ReasonTooLong {
                        len: TOO_LONG,
                        max: MAX_REASON_LEN,
                    })
                } else if b.response.as_ref() == Some(&response) {
                    repeat = true;
                    Ok(())
                } else if let Some(closure) = b.closure() {
                    Err(DomainError::Closed { closure })
                } else if !b.verification.as_ref().is_ok_and(|rs| rs.contains(&by)) {
                    Err(DomainError::NotARecipient { user: by.id() })
                } else if !b.delivered_to.contains(&by) {
                    Err(DomainError::NotDelivered { user: by.id() })
                } else {
                    Ok(())
                }
            });
        if result.is_ok() && !repeat {
            self.change(Side::B, r, |q| {
                q.b.as_mut().expect("answered at B").response = Some(response);
            });
        }
        self.expected = Expected::Respond(result);
    }

    fn withdraw(&mut self, by: User, r: usize) {
        let a = &self.reqs[r].a;
        let result = if self.reqs[r].requester != by {
            Err(DomainError::NotTheRequester { user: by.id() })
        } else if !a.authorized {
            Err(DomainError::Closed {
                closure: Closure::Refused,
            })
        } else if a.response.is_some() {
            Err(DomainError::Closed {
                closure: Closure::Answered,
            })
        } else {
            match a.withdrawal {
                WithdrawalStage::None => Ok(()),
                WithdrawalStage::Withdrawn => Err(DomainError::Closed {
                    closure: Closure::Withdrawn,
                }),
                WithdrawalStage::Requested | WithdrawalStage::Refused => {
                    Err(DomainError::NotWithdrawable)
                }
            }
        };
        if result.is_ok() {
            self.change(Side::A, r, |q| q.a.withdrawal = WithdrawalStage::Requested);
        }
        self.expected = Expected::Withdraw(result);
    }

    /// B receives request `r` from A (step 4a).
    fn receive_request(&mut self, r: usize) {
        if self.reqs[r].b.is_some() {
            return; // a repeat: acknowledged again, stored once
        }
        let verification = match self.reqs[r].target {
            TargetKind::Bob => Ok(vec![User::Bob]),
            TargetKind::Carol => Ok(vec![User::Carol]),
            // Whoever holds the alias when the request arrives.
            TargetKind::Alias if self.alias_holders.is_empty() => Err(Failure::AliasNotHeld),
            // Only holders who may receive are offered it (dave may not).
            TargetKind::Alias => {
                let eligible: Vec<User> = self
                    .alias_holders
                    .iter()
                    .copied()
                    .filter(|u| *u != User::Dave)
                    .collect();
                if eligible.is_empty() {
                    Err(Failure::NoEligibleRecipient)
                } else {
                    Ok(eligible)
                }
            }
            TargetKind::Dave => Err(Failure::MayNotReceive(User::Dave)),
        };
        let response = match (&verification, self.policy) {
            (Err(failure), _) => Some(Resp::server(ModelOutcome::RejectedUnverified(*failure))),
            (Ok(_), Policy::Manual) => None,
            (Ok(_), Policy::AutoAccept) => Some(Resp::server(ModelOutcome::Accepted)),
            (Ok(_), Policy::AutoReject) => Some(Resp::server(ModelOutcome::RejectedByPolicy)),
        };
        let stored_at = self.now;
        self.change(Side::B, r, |q| {
            q.b = Some(AtPartner {
                stored_at,
                verification,
                delivered_to: Vec::new(),
                response,
                response_forwarded: false,
                expired: false,
                withdrawn: false,
                acceptance_applied: false,
            });
        });
    }

    /// B receives A's withdrawal of `r`: `Some(withdrawn)`, or `None` when B refuses it.
    fn receive_withdrawal(&mut self, r: usize) -> Option<bool> {
        let b = self.reqs[r].b.as_ref()?;
        if b.withdrawn {
            Some(true)
        } else if !b.delivered_to.is_empty() || b.response.is_some() {
            Some(false)
        } else {
            self.change(Side::B, r, |q| {
                q.b.as_mut().expect("stored at B").withdrawn = true;
            });
            Some(true)
        }
    }

    /// A receives B's response to `r` (step 11); `false` when A refuses it.
    fn receive_response(&mut self, r: usize) -> bool {
        let response = self.reqs[r]
            .b
            .as_ref()
            .and_then(|b| b.response.clone())
            .expect("only an answered request sends a response");
        let a = &self.reqs[r].a;
        match &a.response {
            Some(stored) => *stored == response,
            None if !a.authorized || a.withdrawal == WithdrawalStage::Withdrawn => false,
            None => {
                // The answer proves B stored the request (step 4b), ack or no ack.
                self.change(Side::A, r, |q| {
                    q.a.response = Some(response);
                    q.a.partner_stored = true;
                });
                true
            }
        }
    }

    /// The other side receives `msg` about `r`: its acknowledgement, or `Err` when it refuses
    /// the message.
    fn deliver(&mut self, r: usize, msg: Msg) -> Result<PartnerAck, ()> {
        match msg {
            Msg::Request => {
                self.receive_request(r);
                Ok(PartnerAck::Stored)
            }
            Msg::Withdrawal => match self.receive_withdrawal(r) {
                Some(true) => Ok(PartnerAck::Withdrawn),
                Some(false) => Ok(PartnerAck::TooLate),
                None => Err(()),
            },
            Msg::Response => {
                if self.receive_response(r) {
                    Ok(PartnerAck::Stored)
                } else {
                    Err(())
                }
            }
        }
    }

    /// Sends one message and records the acknowledgement; `false` when it was not
    /// acknowledged.
    fn send(&mut self, side: Side, r: usize, msg: Msg) -> Sent {
        if !self.link_up[side.ix()] {
            return Sent::Unreachable;
        }
        let Ok(ack) = self.deliver(r, msg) else {
            return Sent::Refused;
        };
        match ack {
            PartnerAck::Stored if side == Side::A => {
                self.change(Side::A, r, |q| q.a.partner_stored = true);
            }
            PartnerAck::Stored => self.change(Side::B, r, |q| {
                q.b.as_mut().expect("stored at B").response_forwarded = true;
            }),
            PartnerAck::Withdrawn => {
                self.change(Side::A, r, |q| q.a.withdrawal = WithdrawalStage::Withdrawn);
            }
            PartnerAck::TooLate => {
                self.change(Side::A, r, |q| q.a.withdrawal = WithdrawalStage::Refused);
            }
        }
        Sent::Acked
    }

    fn lose_ack(&mut self, from: Side, r: usize) {
        let ack = self.outbound(r, from).map(|msg| self.deliver(r, msg));
        self.expected = Expected::LoseAck(ack);
    }

    fn relay(&mut self, side: Side) {
        let now = self.now;
        let due: Vec<usize> = self.outbox[side.ix()]
            .iter()
            .filter(|(_, retry)| retry.not_before.is_none_or(|t| t <= now))
            .map(|(r, _)| *r)
            .collect();
        let (mut acknowledged, mut unreachable, mut refused) = (0, 0, 0);
        for r in due {
            let msg = self
                .outbound(r, side)
                .expect("an outbox entry owes a message");
            let sent = self.send(side, r, msg);
            if sent == Sent::Acked {
                acknowledged += 1;
                // The request's next message starts a fresh back-off.
                if let Some(retry) = self.outbox[side.ix()].get_mut(&r) {
                    *retry = Retry::default();
                }
            } else {
                let retry = self.outbox[side.ix()]
                    .get_mut(&r)
                    .expect("a failed message stays in the outbox");
                retry.attempts += 1;
                // An unreachable partner is retried after a back-off; a refused message is
                // parked until the refused-message retry.
                if sent == Sent::Refused {
                    refused += 1;
                    retry.not_before = Some(now + REFUSED_RETRY_MS);
                } else {
                    unreachable += 1;
                    retry.not_before = Some(now + backoff(retry.attempts));
                }
            }
        }
        self.expected = Expected::Relay {
            acknowledged,
            unreachable,
            refused,
        };
    }

    fn expire(&mut self) {
        let now = self.now;
        let due: Vec<usize> = (0..self.reqs.len())
            .filter(|&r| {
                self.reqs[r]
                    .b
                    .as_ref()
                    .is_some_and(|b| b.is_open() && b.stored_at + TTL_MS <= now)
            })
            .collect();
        for &r in &due {
            self.change(Side::B, r, |q| {
                let b = q.b.as_mut().expect("stored at B");
                b.expired = true;
                b.response = Some(Resp::server(ModelOutcome::Expired));
            });
        }
        self.expected = Expected::Expire(due.len());
    }

    fn apply_acceptances(&mut self) {
        if self.hook_failing {
            self.expected = Expected::Apply(0);
            return;
        }
        let due: Vec<usize> = (0..self.reqs.len())
            .filter(|&r| {
                self.reqs[r].b.as_ref().is_some_and(|b| {
                    !b.acceptance_applied && b.response.as_ref().is_some_and(Resp::accepted)
                })
            })
            .collect();
        for &r in &due {
            self.change(Side::B, r, |q| {
                q.b.as_mut().expect("stored at B").acceptance_applied = true;
            });
            self.hook_calls.push(r);
        }
        self.expected = Expected::Apply(due.len());
    }

    /// A restart loses the sessions; the outbox, with its retry timers, is in the store.
    fn restart(&mut self, side: Side) {
        self.sessions[side.ix()].clear();
    }
}

/// The reference state machine: generates transitions and predicts their results.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reference;

fn user_of(users: &'static [User]) -> BoxedStrategy<User> {
    proptest::sample::select(users).boxed()
}

fn respond(
    request: impl Strategy<Value = usize> + 'static,
    by: impl Strategy<Value = User> + 'static,
) -> BoxedStrategy<Transition> {
    let decision = prop_oneof![
        4 => Just(DecisionKind::Accept),
        2 => Just(DecisionKind::Reject),
        2 => Just(DecisionKind::RejectWithReason),
        1 => Just(DecisionKind::RejectTooLong),
    ];
    (by, request, decision, any::<bool>())
        .prop_map(|(by, request, decision, as_alias)| Transition::Respond {
            by,
            request,
            decision,
            as_alias,
        })
        .boxed()
}

/// Transitions possible in any state, with their weights.
fn any_state() -> Vec<(u32, BoxedStrategy<Transition>)> {
    let side = || prop_oneof![Just(Side::A), Just(Side::B)];
    let target = prop_oneof![
        3 => Just(TargetKind::Bob),
        2 => Just(TargetKind::Carol),
        3 => Just(TargetKind::Alias),
        1 => Just(TargetKind::Dave),
    ];
    let submitter = prop_oneof![5 => Just(User::Alice), 1 => Just(User::Mallory)];
    let client = || user_of(&[User::Alice, User::Bob, User::Carol]);
    vec![
        (
            4,
            (submitter, target, 1..=3_usize)
                .prop_map(|(by, target, groups)| Transition::Submit { by, target, groups })
                .boxed(),
        ),
        (2, client().prop_map(Transition::LogOn).boxed()),
        (1, client().prop_map(Transition::LogOff).boxed()),
        (4, client().prop_map(Transition::Download).boxed()),
        (2, side().prop_map(Transition::Relay).boxed()),
        (
            3,
            (side(), any::<bool>())
                .prop_map(|(from, up)| Transition::Link { from, up })
                .boxed(),
        ),
        (
            3,
            prop_oneof![
                1 => Just(1_i64),
                1 => Just(150),
                2 => Just(250),
                1 => Just(1_000),
                1 => Just(20_000),
                1 => Just(10 * 60 * 1000),
                2 => Just(TTL_MS - 1),
                2 => Just(TTL_MS + 1),
            ]
            .prop_map(|ms| Transition::Advance { ms })
            .boxed(),
        ),
        (3, Just(Transition::Expire).boxed()),
        (2, Just(Transition::ApplyAcceptances).boxed()),
        (1, any::<bool>().prop_map(Transition::HookFailing).boxed()),
        (
            1,
            prop_oneof![
                2 => Just(Policy::Manual),
                1 => Just(Policy::AutoAccept),
                1 => Just(Policy::AutoReject),
            ]
            .prop_map(Transition::SetPolicy)
            .boxed(),
        ),
        (2, side().prop_map(Transition::Restart).boxed()),
        (
            1,
            prop_oneof![
                2 => Just(vec![User::Bob, User::Carol]),
                1 => Just(vec![User::Carol, User::Bob]),
                1 => Just(vec![User::Bob]),
                1 => Just(vec![User::Carol]),
                1 => Just(vec![User::Dave, User::Bob]),
                1 => Just(vec![User::Dave]),
                1 => Just(vec![]),
            ]
            .prop_map(Transition::AliasHolders)
            .boxed(),
        ),
    ]
}

/// Transitions on known requests, biased towards what can make progress: answers by a
/// recipient of a request stored at B (most often one it was delivered to), relays of a
/// non-empty outbox, withdrawals by the requester, downloads by a user with something pending.
fn on_requests(state: &Model) -> Vec<(u32, BoxedStrategy<Transition>)> {
    let mut choices = Vec::new();
    let n = state.reqs.len();
    if n > 0 {
        choices.push((2, respond(0..n, user_of(&[User::Bob, User::Carol]))));
        choices.push((
            1,
            (
                prop_oneof![4 => Just(User::Alice), 1 => Just(User::Mallory)],
                0..n,
            )
                .prop_map(|(by, request)| Transition::Withdraw { by, request })
                .boxed(),
        ));
    }
    let answerable: Vec<(usize, User)> = (0..n)
        .filter_map(|r| Some((r, state.reqs[r].b.as_ref()?)))
        .flat_map(|(r, b)| {
            let users = b.verification.clone().unwrap_or_else(|_| vec![User::Bob]);
            users.into_iter().map(move |u| (r, u))
        })
        .collect();
    if !answerable.is_empty() {
        choices.push((
            3,
            proptest::sample::select(answerable)
                .prop_flat_map(|(r, by)| respond(Just(r), Just(by)))
                .boxed(),
        ));
    }
    let delivered: Vec<(usize, User)> = (0..n)
        .filter_map(|r| Some((r, state.reqs[r].b.as_ref()?)))
        .flat_map(|(r, b)| b.delivered_to.iter().map(move |&u| (r, u)))
        .collect();
    if !delivered.is_empty() {
        choices.push((
            6,
            proptest::sample::select(delivered)
                .prop_flat_map(|(r, by)| respond(Just(r), Just(by)))
                .boxed(),
        ));
    }
    let owing: Vec<Side> = [Side::A, Side::B]
        .into_iter()
        .filter(|side| !state.outbox[side.ix()].is_empty())
        .collect();
    if !owing.is_empty() {
        choices.push((
            4,
            proptest::sample::select(owing)
                .prop_map(Transition::Relay)
                .boxed(),
        ));
    }
    let owed: Vec<(Side, usize)> = [Side::A, Side::B]
        .into_iter()
        .flat_map(|side| state.outbox[side.ix()].keys().map(move |&r| (side, r)))
        .collect();
    if !owed.is_empty() {
        choices.push((
            2,
            proptest::sample::select(owed)
                .prop_map(|(from, request)| Transition::LoseAck { from, request })
                .boxed(),
        ));
    }
    let own: Vec<usize> = (0..n)
        .filter(|&r| state.reqs[r].requester == User::Alice)
        .collect();
    if !own.is_empty() {
        choices.push((
            2,
            proptest::sample::select(own)
                .prop_map(|request| Transition::Withdraw {
                    by: User::Alice,
                    request,
                })
                .boxed(),
        ));
    }
    let waiting: Vec<User> = [User::Alice, User::Bob, User::Carol]
        .into_iter()
        .filter(|&u| !state.pending(u).is_empty())
        .collect();
    if !waiting.is_empty() {
        choices.push((
            4,
            proptest::sample::select(waiting)
                .prop_map(Transition::Download)
                .boxed(),
        ));
    }
    choices
}

impl ReferenceStateMachine for Reference {
    type State = Model;
    type Transition = Transition;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::new()).boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Transition> {
        let mut choices = any_state();
        choices.extend(on_requests(state));
        Union::new_weighted(choices).boxed()
    }

    fn preconditions(state: &Model, transition: &Transition) -> bool {
        match transition {
            Transition::Respond { request, .. }
            | Transition::Withdraw { request, .. }
            | Transition::LoseAck { request, .. } => *request < state.reqs.len(),
            _ => true,
        }
    }

    fn apply(mut state: Model, transition: &Transition) -> Model {
        state.expected = Expected::Nothing;
        state.notified = [Vec::new(), Vec::new()];
        match *transition {
            Transition::Submit { by, target, groups } => state.submit(by, target, groups),
            Transition::LogOn(user) => state.log_on(user),
            Transition::LogOff(user) => {
                state.sessions[user.side().ix()].remove(&user);
            }
            Transition::Download(user) => state.download(user),
            Transition::Respond {
                by,
                request,
                decision,
                as_alias,
            } => state.respond(by, request, decision, as_alias),
            Transition::Withdraw { by, request } => state.withdraw(by, request),
            Transition::Relay(side) => state.relay(side),
            Transition::LoseAck { from, request } => state.lose_ack(from, request),
            Transition::Link { from, up } => state.link_up[from.ix()] = up,
            Transition::Advance { ms } => state.now += ms,
            Transition::Expire => state.expire(),
            Transition::ApplyAcceptances => state.apply_acceptances(),
            Transition::HookFailing(failing) => state.hook_failing = failing,
            Transition::SetPolicy(policy) => state.policy = policy,
            Transition::AliasHolders(ref holders) => state.alias_holders.clone_from(holders),
            Transition::Restart(side) => state.restart(side),
        }
        state
    }
}

// ------------------------------------------------------------------------------ the servers

/// The system under test: the two systems of the fixture, each on a store of type `S`.
#[derive(Debug)]
pub struct Servers<S> {
    sys: TwoSystems<S>,
    /// Open sessions, by side (a user may hold several).
    sessions: [Vec<Session>; 2],
    /// Request ids in submission order: the model's request indexes.
    ids: Vec<RequestId>,
    /// The clock at the start: model time 0.
    t0: DateTime<Utc>,
}

impl<S: AcmStore + 'static> Servers<S> {
    /// Opens both systems, each on a fresh store from `factory`, with the model's pending
    /// time, maximum back-off and refused-message retry.
    pub fn open<F: StoreFactory<Store = S>>(factory: &F) -> Self {
        let sys = block_on(TwoSystems::with_stores(
            |mut c| {
                c.pending_ttl = Some(Duration::milliseconds(TTL_MS));
                c.max_backoff = Duration::milliseconds(MAX_BACKOFF_MS);
                c.refused_retry = Duration::milliseconds(REFUSED_RETRY_MS);
                c
            },
            |_| factory.fresh(),
        ))
        .expect("the fixture opens");
        let t0 = crate::Clock::now(&*sys.clock);
        Self {
            sys,
            sessions: [Vec::new(), Vec::new()],
            ids: Vec::new(),
            t0,
        }
    }

    fn system(&self, side: Side) -> &System<S> {
        match side {
            Side::A => &self.sys.a,
            Side::B => &self.sys.b,
        }
    }

    fn server(&self, side: Side) -> &AcmServer {
        &self.system(side).server
    }

    fn at(&self, ms: i64) -> DateTime<Utc> {
        self.t0 + Duration::milliseconds(ms)
    }

    fn submit(&mut self, model: &Model, by: User, target: TargetKind, groups: usize) {
        let result = block_on(
            self.sys
                .a
                .server
                .submit(&by.id(), provision(target.target(), groups)),
        );
        let request = match (result, &model.expected) {
            (Ok(request), Expected::Submit { refused: false }) => request,
            (
                Err(ServiceError::Refused { request_id, reason }),
                Expected::Submit { refused: true },
            ) => {
                assert_eq!(
                    reason,
                    AuthorizationRefusal::NotAuthorized {
                        user: by.id(),
                        partner: Side::B.system(),
                    }
                );
                request_id
            }
            (got, want) => panic!("submit by {by:?}: expected {want:?}, got {got:?}"),
        };
        assert!(
            !self.ids.contains(&request),
            "request id {request} issued twice"
        );
        self.ids.push(request);
    }

    /// Downloads and acknowledges every item (the model's download is both).
    fn download(&self, model: &Model, user: User) {
        let data =
            block_on(self.server(user.side()).download_pending(&user.id())).expect("download");
        let receipts: Vec<_> = data.items.iter().map(PendingItem::receipt).collect();
        block_on(
            self.server(user.side())
                .acknowledge_download(&user.id(), &receipts),
        )
        .expect("acknowledge");
        assert_eq!(data.mc_service_id, user.id());
        let Expected::Download(want) = &model.expected else {
            panic!("the model predicts a download");
        };
        assert_eq!(
            data.items.len(),
            want.len(),
            "download by {user:?}: {:?}",
            data.items
        );
        for (got, want) in data.items.iter().zip(want) {
            match (got, want) {
                (
                    PendingItem::Request {
                        request,
                        from,
                        stored_at,
                    },
                    Item::Request(r, at),
                ) => {
                    assert_eq!(request.request_id, self.ids[*r]);
                    assert_eq!(request.body.groups().len(), model.reqs[*r].groups);
                    assert_eq!(from, &Side::A.system());
                    assert_eq!(*stored_at, self.at(*at));
                }
                (PendingItem::Response { request, response }, Item::Response(r, resp)) => {
                    assert_eq!(request.request_id, self.ids[*r]);
                    assert_eq!(*response, resp.to_acm());
                }
                (
                    PendingItem::WithdrawalOutcome { request, withdrawn },
                    Item::WithdrawalOutcome(r, want),
                ) => {
                    assert_eq!(request.request_id, self.ids[*r]);
                    assert_eq!(withdrawn, want, "withdrawal outcome of request {r}");
                }
                (got, want) => panic!("download by {user:?}: expected {want:?}, got {got:?}"),
            }
        }
    }

    fn respond(
        &self,
        model: &Model,
        by: User,
        request: usize,
        decision: DecisionKind,
        alias: bool,
    ) {
        let result = block_on(self.sys.b.server.respond(
            &by.id(),
            alias.then(duty_officer),
            self.ids[request],
            decision.decision(),
        ));
        expect_domain(result, &model.expected, Expected::Respond);
    }

    fn withdraw(&self, model: &Model, by: User, request: usize) {
        let result = block_on(self.sys.a.server.withdraw(&by.id(), self.ids[request]));
        expect_domain(result, &model.expected, Expected::Withdraw);
    }

    fn lose_ack(&self, model: &Model, from: Side, request: usize) {
        let owed = block_on(self.server(from).state(self.ids[request]))
            .expect("state")
            .outbound();
        let got = owed.map(|(to, message)| {
            assert_eq!(to, from.other().system());
            let ack = block_on(self.server(from.other()).receive(&from.system(), message));
            match ack {
                Ok(ack) => Ok(ack),
                Err(ServiceError::Domain(_)) => Err(()),
                Err(other) => panic!("receive from {from:?}: {other}"),
            }
        });
        assert_eq!(
            Expected::LoseAck(got),
            model.expected,
            "message from {from:?}"
        );
    }

    /// Every session of each user the model notified holds a notice, and no other session
    /// does (notices to one session merge into one).
    fn check_notifications(&self, model: &Model) {
        for side in [Side::A, Side::B] {
            let want: BTreeSet<McServiceId> =
                model.notified[side.ix()].iter().map(|u| u.id()).collect();
            for session in &self.sessions[side.ix()] {
                let got = session.try_next().map(|n| n.mc_service_id);
                let user = session.user().clone();
                assert_eq!(
                    got,
                    want.contains(&user).then(|| user.clone()),
                    "notice for a session of {user} at {side:?}"
                );
            }
        }
    }

    /// The server's stage of request `r` at A equals the model's.
    fn check_primary(&self, model: &Model, r: usize) {
        let req = &model.reqs[r];
        let Ok(RequestState::Primary(p)) = block_on(self.sys.a.server.state(self.ids[r])) else {
            panic!("request {r} is not a primary request at A");
        };
        assert_eq!(p.request.requester, req.requester.id());
        assert_eq!(p.request.target, req.target.target());
        assert_eq!(p.request.body.groups().len(), req.groups);
        match (&p.authorization, req.a.authorized) {
            (Authorization::Granted, true) => {}
            (Authorization::Refused(AuthorizationRefusal::NotAuthorized { user, .. }), false) => {
                assert_eq!(*user, req.requester.id());
            }
            (got, want) => panic!("request {r}: authorised {want}, got {got:?}"),
        }
        assert_eq!(
            p.forward.is_some(),
            req.a.authorized,
            "request {r}: forward"
        );
        assert_eq!(
            p.partner_stored, req.a.partner_stored,
            "request {r}: partner stored"
        );
        assert_eq!(
            p.response.map(|(_, response)| response),
            req.a.response.as_ref().map(Resp::to_acm),
            "request {r}: response at A"
        );
        assert_eq!(
            p.response_delivered, req.a.response_delivered,
            "request {r}: response delivered"
        );
        let withdrawal = match p.withdrawal {
            Withdrawal::None => WithdrawalStage::None,
            Withdrawal::Requested(_) => WithdrawalStage::Requested,
            Withdrawal::Refused(_) => WithdrawalStage::Refused,
            Withdrawal::Withdrawn(_) => WithdrawalStage::Withdrawn,
        };
        assert_eq!(withdrawal, req.a.withdrawal, "request {r}: withdrawal at A");
        assert_eq!(
            p.withdrawal_outcome_delivered, req.a.withdrawal_outcome_delivered,
            "request {r}: withdrawal outcome delivered"
        );
    }

    /// The server's stage of request `r` at B equals the model's.
    fn check_partner(&self, model: &Model, r: usize) {
        let state = block_on(self.sys.b.server.state(self.ids[r])).expect("state at B");
        let (b, p) = match (&model.reqs[r].b, state) {
            (None, RequestState::Empty) => return,
            (Some(b), RequestState::Partner(p)) => (b, p),
            (want, got) => panic!("request {r} at B: expected {want:?}, got {got:?}"),
        };
        assert_eq!(p.from, Side::A.system());
        assert_eq!(p.stored_at, self.at(b.stored_at), "request {r}: stored at");
        let verification = match &b.verification {
            Ok(users) => Verification::Passed(users.iter().map(|u| u.id()).collect()),
            Err(failure) => Verification::Failed(failure.to_acm()),
        };
        assert_eq!(p.verification, verification, "request {r}: verification");
        let delivered: Vec<McServiceId> = b.delivered_to.iter().map(|u| u.id()).collect();
        assert_eq!(p.delivered_to, delivered, "request {r}: delivered to");
        assert_eq!(
            p.response.map(|(_, response)| response),
            b.response.as_ref().map(Resp::to_acm),
            "request {r}: response at B"
        );
        assert_eq!(
            (
                p.response_forwarded,
                p.expired,
                p.withdrawn,
                p.acceptance_applied
            ),
            (
                b.response_forwarded,
                b.expired,
                b.withdrawn,
                b.acceptance_applied
            ),
            "request {r}: (forwarded, expired, withdrawn, applied) at B"
        );
    }

    /// Applies `transition` to the servers and asserts its result is the one `model` (the
    /// reference state after the transition) predicts.
    #[must_use]
    pub fn apply(mut self, model: &Model, transition: Transition) -> Self {
        match transition {
            Transition::Submit { by, target, groups } => self.submit(model, by, target, groups),
            Transition::LogOn(user) => {
                let server = self.server(user.side());
                let session = block_on(server.log_on(&user.id())).expect("log on");
                let pending = block_on(server.pending_for(&user.id()))
                    .expect("pending")
                    .len();
                assert_eq!(Expected::LogOn(pending), model.expected, "log on {user:?}");
                assert_eq!(
                    session.try_next().map(|n| n.mc_service_id),
                    (pending > 0).then(|| user.id()),
                    "notice at log-on of {user:?}"
                );
                self.sessions[user.side().ix()].push(session);
            }
            Transition::LogOff(user) => {
                // Every session of the user ends.
                self.sessions[user.side().ix()].retain(|s| *s.user() != user.id());
            }
            Transition::Download(user) => self.download(model, user),
            Transition::Respond {
                by,
                request,
                decision,
                as_alias,
            } => self.respond(model, by, request, decision, as_alias),
            Transition::Withdraw { by, request } => self.withdraw(model, by, request),
            Transition::Relay(side) => {
                let report = block_on(self.server(side).relay()).expect("relay");
                let got = Expected::Relay {
                    acknowledged: report.acknowledged,
                    unreachable: report.unreachable,
                    refused: report.refused,
                };
                assert_eq!(got, model.expected, "relay at {side:?}");
            }
            Transition::LoseAck { from, request } => self.lose_ack(model, from, request),
            Transition::Link { from, up } => {
                self.sys
                    .network
                    .set_link(&from.system(), &from.other().system(), up);
            }
            Transition::Advance { ms } => self.sys.clock.advance(Duration::milliseconds(ms)),
            Transition::Expire => {
                let expired = block_on(self.sys.b.server.expire_due()).expect("expire");
                assert_eq!(Expected::Expire(expired), model.expected, "expire at B");
                let at_a = block_on(self.sys.a.server.expire_due()).expect("expire");
                assert_eq!(at_a, 0, "A is the partner of nothing");
            }
            Transition::ApplyAcceptances => {
                let applied = block_on(self.sys.b.server.apply_acceptances()).expect("hooks");
                assert_eq!(Expected::Apply(applied), model.expected, "hooks at B");
            }
            Transition::HookFailing(failing) => self.sys.b.hook.set_failing(failing),
            Transition::AliasHolders(holders) => self
                .sys
                .b
                .directory
                .set_alias_holders(duty_officer(), holders.into_iter().map(User::id).collect()),
            Transition::SetPolicy(policy) => self.sys.b.directory.set_processing(
                AcmRequestKind::InterconnectionGroupIdentityProvision,
                policy.processing(),
            ),
            Transition::Restart(Side::A) => {
                block_on(self.sys.a.restart(&self.sys.network)).expect("restart A");
                // The sessions belonged to the server that went away.
                self.sessions[Side::A.ix()].clear();
            }
            Transition::Restart(Side::B) => {
                block_on(self.sys.b.restart(&self.sys.network)).expect("restart B");
                self.sessions[Side::B.ix()].clear();
            }
        }
        self.check_notifications(model);
        self
    }

    /// Asserts the servers agree with `model`: the log invariants of both ([`check_log`]),
    /// the outboxes' depths, every request's stage on each side, every user's pending list
    /// and sessions, and the acceptance hook calls.
    pub fn check_invariants(&self, model: &Model) {
        assert_eq!(self.ids.len(), model.reqs.len());
        let mut replayed = [0; 2];
        for side in [Side::A, Side::B] {
            let system = self.system(side);
            replayed[side.ix()] = check_log(side, &*system.store, &system.server);
            let depth = block_on(system.server.outbox_status())
                .expect("outbox")
                .depth;
            assert_eq!(
                usize::try_from(depth).expect("depth"),
                model.outbox[side.ix()].len(),
                "{side:?}: outbox"
            );
        }
        // Every request is at A; only those received are at B.
        assert_eq!(replayed[Side::A.ix()], model.reqs.len());
        let at_b = model.reqs.iter().filter(|q| q.b.is_some()).count();
        assert_eq!(replayed[Side::B.ix()], at_b);
        for r in 0..model.reqs.len() {
            self.check_primary(model, r);
            self.check_partner(model, r);
        }
        for user in User::ALL {
            let want: Vec<RequestId> = model.pending(user).iter().map(|&r| self.ids[r]).collect();
            let home = self.server(user.side());
            assert_eq!(
                block_on(home.pending_for(&user.id())).expect("pending"),
                want,
                "pending for {user:?}"
            );
            assert!(
                block_on(self.server(user.side().other()).pending_for(&user.id()))
                    .expect("pending")
                    .is_empty(),
                "{user:?} has nothing pending on the other system"
            );
            assert_eq!(
                home.is_logged_on(&user.id()),
                model.sessions[user.side().ix()].contains(&user),
                "{user:?} logged on"
            );
        }
        let calls: Vec<RequestId> = model.hook_calls.iter().map(|&r| self.ids[r]).collect();
        assert_eq!(self.sys.b.hook.calls(), calls, "acceptance hook calls at B");
        assert!(self.sys.a.hook.calls().is_empty(), "A accepts nothing");
    }
}

/// Compares a service call's result with the model's prediction.
fn expect_domain(
    got: Result<(), ServiceError>,
    want: &Expected,
    wrap: fn(Result<(), DomainError>) -> Expected,
) {
    let got = match got {
        Ok(()) => wrap(Ok(())),
        Err(ServiceError::Domain(error)) => wrap(Err(error)),
        Err(other) => panic!("expected {want:?}, got {other:?}"),
    };
    assert_eq!(&got, want);
}

/// Every event `store` holds, in order.
fn read_log<S: EventStore<Event> + ?Sized>(store: &S) -> Vec<Envelope<Event>> {
    block_on(async {
        let mut log = Vec::new();
        let mut events = store.read_all(GlobalPosition::START);
        while let Some(envelope) = events.next().await {
            log.push(envelope.unwrap_or_else(|e| panic!("read_all: {e}")));
        }
        log
    })
}

/// Asserts the log invariants of one server, `server` on `store` at `side`: positions 1, 2,
/// 3… in order; versions 1, 2, 3… per stream, and the server's version of each stream is
/// the log's; the correlation id of every event is its stream's; replaying the log gives the
/// live state; at most one final response per stream on each side (A never responds, B never
/// receives a response); a response is delivered only after it is received. Returns the
/// number of requests the log holds.
///
/// # Panics
/// When an invariant does not hold, or the store or the server fails.
pub fn check_log<S: EventStore<Event> + ?Sized>(
    side: Side,
    store: &S,
    server: &AcmServer,
) -> usize {
    let log = read_log(store);
    let mut versions: HashMap<StreamId, u64> = HashMap::new();
    let mut responded: HashMap<StreamId, usize> = HashMap::new();
    let mut received: HashMap<StreamId, usize> = HashMap::new();
    let mut position = GlobalPosition::START;
    for envelope in &log {
        assert_eq!(
            envelope.position,
            position.next(),
            "{side:?}: global positions"
        );
        position = envelope.position;
        let version = versions.entry(envelope.stream_id).or_default();
        *version += 1;
        assert_eq!(
            envelope.version,
            Version(*version),
            "{side:?}: versions of {:?}",
            envelope.stream_id
        );
        assert_eq!(envelope.correlation_id, envelope.stream_id.0);
        match &envelope.payload {
            Event::Responded { .. } => *responded.entry(envelope.stream_id).or_default() += 1,
            Event::ResponseReceived { .. } => {
                *received.entry(envelope.stream_id).or_default() += 1;
            }
            Event::ResponseDelivered { .. } => assert_eq!(
                received.get(&envelope.stream_id),
                Some(&1),
                "{side:?}: response delivered before it was received in {:?}",
                envelope.stream_id
            ),
            _ => {}
        }
    }
    let at_most_once = |counts: &HashMap<StreamId, usize>, what: &str| {
        for (stream, n) in counts {
            assert!(*n <= 1, "{side:?}: {n} {what} events in {stream:?}");
        }
    };
    at_most_once(&responded, "responded");
    at_most_once(&received, "response_received");
    match side {
        Side::A => assert!(responded.is_empty(), "A is never the partner"),
        Side::B => assert!(received.is_empty(), "B is never the primary"),
    }
    for (stream, version) in &versions {
        assert_eq!(
            block_on(server.version(stream.0)).expect("version"),
            Version(*version),
            "{side:?}"
        );
    }
    let replayed = replay(log).expect("the log replays");
    for (id, state) in &replayed {
        assert_eq!(
            &block_on(server.state(*id)).expect("state"),
            state,
            "{side:?}: replay equals live state of {id}"
        );
    }
    replayed.len()
}

// ------------------------------------------------------------------------------ running it

/// Makes the stores the systems under test run on: one fresh, empty store per system per
/// test case.
///
/// Any `Fn() -> Arc<S>` is a factory, e.g. `|| Arc::new(MemoryAcmStore::new())`. A store that
/// lives in a directory must keep the directory as long as the store (the factory may hold
/// the directories, or leak them).
pub trait StoreFactory {
    /// The store the systems run on.
    type Store: AcmStore + 'static;

    /// A fresh, empty store.
    fn fresh(&self) -> Arc<Self::Store>;
}

impl<S, F> StoreFactory for F
where
    S: AcmStore + 'static,
    F: Fn() -> Arc<S>,
{
    type Store = S;

    fn fresh(&self) -> Arc<S> {
        self()
    }
}

/// The model as a [`StateMachineTest`], for a factory type that is [`Default`] (what
/// `prop_state_machine!` needs; [`run`] takes any factory):
///
/// ```text
/// prop_state_machine! {
///     #![proptest_config(acm_core::testkit::model::config(64))]
///     #[test]
///     fn two_acm_servers(sequential 1..40 => AcmStateMachine<MyFactory>);
/// }
/// ```
#[derive(Debug)]
pub struct AcmStateMachine<F>(PhantomData<F>);

impl<F: StoreFactory + Default> StateMachineTest for AcmStateMachine<F> {
    type SystemUnderTest = Servers<F::Store>;
    type Reference = Reference;

    fn init_test(_: &Model) -> Servers<F::Store> {
        Servers::open(&F::default())
    }

    fn apply(sut: Servers<F::Store>, model: &Model, transition: Transition) -> Servers<F::Store> {
        sut.apply(model, transition)
    }

    fn check_invariants(sut: &Servers<F::Store>, model: &Model) {
        sut.check_invariants(model);
    }
}

/// How many transitions a test case runs.
pub const TRANSITIONS: std::ops::Range<usize> = 1..40;

/// `cases` cases, from a fixed seed so that the run is reproducible, without failure
/// persistence; the `PROPTEST_CASES` and `PROPTEST_RNG_SEED` variables override both.
pub fn config(cases: u32) -> Config {
    let env = Config::default();
    Config {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            env.cases
        } else {
            cases
        },
        rng_seed: match env.rng_seed {
            RngSeed::Random => RngSeed::Fixed(0x00AC_3A0B),
            fixed @ RngSeed::Fixed(_) => fixed,
        },
        failure_persistence: None,
        ..env
    }
}

/// Runs the model on stores from `factory`: [`config`]`(cases)` test cases of
/// [`TRANSITIONS`] transitions each, each case on two fresh stores; a failing case is shrunk
/// and reported.
///
/// # Panics
/// When the servers disagree with the model, with the minimal failing sequence.
#[allow(
    clippy::needless_pass_by_value,
    reason = "the run owns the factory: what it holds for its stores (their directories) goes \
              when the run ends, and a closure is passed as it is written"
)]
pub fn run<F: StoreFactory>(factory: F, cases: u32) {
    let mut runner = TestRunner::new(config(cases));
    let result = runner.run(
        &Reference::sequential_strategy(TRANSITIONS),
        |(model, transitions, seen)| {
            run_case(&factory, model, transitions, seen.as_deref());
            Ok(())
        },
    );
    if let Err(error) = result {
        panic!("{error}");
    }
}

/// One test case, as `StateMachineTest::test_sequential` runs it, on stores from `factory`.
fn run_case<F: StoreFactory>(
    factory: &F,
    mut model: Model,
    transitions: Vec<Transition>,
    seen: Option<&AtomicUsize>,
) {
    let mut sut = Servers::open(factory);
    sut.check_invariants(&model);
    for transition in transitions {
        // Tells the strategy, before shrinking, which transitions were applied.
        if let Some(seen) = seen {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        model = <Reference as ReferenceStateMachine>::apply(model, &transition);
        sut = sut.apply(&model, transition);
        sut.check_invariants(&model);
    }
}
