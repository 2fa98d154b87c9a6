//! The pure lifecycle of one ACM request on one ACM server: state, commands, `decide`, `evolve`.
//!
//! Everything here is a plain value. Facts that need a port (is the user authorised? who holds
//! this alias?) are looked up by the service and passed in the command, and so is the time:
//! `decide` is deterministic and `evolve` is total.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Closure, DomainError};
use crate::event::Event;
use crate::id::{FunctionalAlias, McServiceId, MessageId, RequestId, SystemId};
use crate::request::{
    AcmRequest, AcmResponse, AuthorizationRefusal, Decision, Limits, MAX_REASON_LEN, Outcome,
    Processing, RejectionReason, Responder, Target, VerificationFailure,
};
use crate::store::DomainEvent;

/// A pure decider: the shape every aggregate of acm has.
pub trait Decider {
    /// State folded from events; `Default` is "no events yet".
    type State: Default;
    /// What may be asked of it.
    type Command;
    /// What it records.
    type Event: DomainEvent;
    /// Why it refuses a command.
    type Error;

    /// Decides which events a command produces in a state; an error records nothing.
    fn decide(
        state: &Self::State,
        command: &Self::Command,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds one event into the state. Total: an event that does not apply leaves the state
    /// unchanged.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// Folds a sequence of events from the empty state.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State
    where
        Self::Event: 'a,
    {
        events
            .into_iter()
            .fold(Self::State::default(), Self::evolve)
    }
}

/// The ACM request lifecycle, as a [`Decider`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Lifecycle;

impl Decider for Lifecycle {
    type State = RequestState;
    type Command = Command;
    type Event = Event;
    type Error = DomainError;

    fn decide(state: &RequestState, command: &Command) -> Result<Vec<Event>, DomainError> {
        decide(state, command)
    }

    fn evolve(state: RequestState, event: &Event) -> RequestState {
        evolve(state, event)
    }
}

/// Facts the partner ACM server looked up about a received request (step 4a).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptFacts {
    /// This (the partner) MC system.
    pub local: SystemId,
    /// Whether the sender is a configured, interconnected partner.
    pub interconnected: bool,
    /// Domains the sender is the group home system for.
    pub home_domains: Vec<SystemId>,
    /// The target resolved to users (target user, alias holders or administrators).
    pub recipients: Result<Arc<[McServiceId]>, VerificationFailure>,
    /// Local policy for this request kind.
    pub processing: Processing,
    /// This server's limits.
    pub limits: Limits,
}

/// What may be asked of an ACM request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "command")]
pub enum Command {
    // ---- primary ----
    /// Steps 1–3: submit; `authorization` is the step-2 verdict.
    Submit {
        /// The request, with the requester from the access token.
        request: Arc<AcmRequest>,
        /// Step 2's verdict.
        authorization: Result<(), AuthorizationRefusal>,
        /// This server's limits.
        limits: Limits,
        /// Id for the forwarding message.
        message_id: MessageId,
        /// Now.
        at: DateTime<Utc>,
    },
    /// Step 4b at the primary: the partner acknowledged storing the request.
    RecordPartnerAck {
        /// The message acknowledged.
        message_id: MessageId,
    },
    /// Step 11: a response arrived from the partner.
    ReceiveResponse {
        /// The authenticated sending system.
        from: SystemId,
        /// The partner's message id.
        message_id: MessageId,
        /// The response.
        response: AcmResponse,
    },
    /// Step 14: deliver what is pending for the requester: the stored response, and the
    /// partner's answer to a withdrawal.
    DeliverResponse {
        /// Who downloads it.
        to: McServiceId,
    },
    /// The requester withdraws the request.
    RequestWithdrawal {
        /// Who asks.
        by: McServiceId,
        /// Id for the withdrawal message.
        message_id: MessageId,
    },
    /// The partner answered a withdrawal.
    RecordWithdrawalOutcome {
        /// The withdrawal message.
        message_id: MessageId,
        /// Whether the partner withdrew it (false: delivered or answered already).
        withdrawn: bool,
    },

    // ---- partner ----
    /// Step 4a: a request arrived from a partner.
    Receive {
        /// The authenticated sending system.
        from: SystemId,
        /// The sender's message id.
        message_id: MessageId,
        /// The request.
        request: Arc<AcmRequest>,
        /// What the server looked up.
        facts: ReceiptFacts,
        /// Id for a final response decided on receipt (verification failure, automatic).
        response_message_id: MessageId,
        /// Now.
        at: DateTime<Utc>,
    },
    /// The primary asks to withdraw the request.
    ReceiveWithdrawal {
        /// The authenticated sending system.
        from: SystemId,
    },
    /// Step 8: deliver the request to a recipient who downloads pending ACM data.
    Deliver {
        /// The recipient.
        to: McServiceId,
    },
    /// Step 9: a recipient answers.
    Respond {
        /// The recipient.
        by: McServiceId,
        /// Their functional alias, if they answer in a role.
        alias: Option<FunctionalAlias>,
        /// Accept or reject.
        decision: Decision,
        /// Id for the response message.
        message_id: MessageId,
    },
    /// Step 10 at the partner: the primary acknowledged storing the response.
    RecordResponseAck {
        /// The message acknowledged.
        message_id: MessageId,
    },
    /// The request stayed pending too long.
    Expire {
        /// Now.
        now: DateTime<Utc>,
        /// Configured pending time.
        ttl: Duration,
        /// Id for the rejected response message.
        message_id: MessageId,
    },
    /// The acceptance hook ran.
    RecordAcceptanceApplied,
}

/// Step 2's state at the primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// Submitted, not yet judged (only between events of one decision).
    Pending,
    /// Authorised.
    Granted,
    /// Refused; the procedure stopped.
    Refused(AuthorizationRefusal),
}

/// A withdrawal's state at the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawal {
    /// Not asked for.
    None,
    /// Asked for; the message is in the outbox.
    Requested(MessageId),
    /// The partner refused: too late.
    Refused(MessageId),
    /// Withdrawn.
    Withdrawn(MessageId),
}

/// One request as the primary ACM server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryState {
    /// The request.
    pub request: Arc<AcmRequest>,
    /// When it was submitted.
    pub submitted_at: DateTime<Utc>,
    /// Step 2.
    pub authorization: Authorization,
    /// Step 3: the forwarding message, once decided.
    pub forward: Option<(SystemId, MessageId)>,
    /// Step 4b: the partner acknowledged storing it.
    pub partner_stored: bool,
    /// Step 11: the stored response.
    pub response: Option<(MessageId, AcmResponse)>,
    /// Step 14: the response was delivered to the requester.
    pub response_delivered: bool,
    /// Withdrawal.
    pub withdrawal: Withdrawal,
    /// The partner's answer to a withdrawal (withdrawn, or too late) was delivered to the
    /// requester.
    pub withdrawal_outcome_delivered: bool,
}

impl PrimaryState {
    /// Whether a stored response waits for the requester's download.
    pub fn response_pending(&self) -> bool {
        self.response.is_some() && !self.response_delivered
    }

    /// Whether the partner's answer to a withdrawal waits for the requester's download.
    pub fn withdrawal_outcome_pending(&self) -> bool {
        matches!(
            self.withdrawal,
            Withdrawal::Refused(_) | Withdrawal::Withdrawn(_)
        ) && !self.withdrawal_outcome_delivered
    }
}

/// Step 4a's verification at the partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Stored, not yet judged (only between events of one decision).
    Unverified,
    /// Passed: pending for these recipients.
    Passed(Arc<[McServiceId]>),
    /// Failed.
    Failed(VerificationFailure),
}

/// One request as the partner ACM server sees it.
// Each flag is a distinct fact recorded by its own event; an enum would merge facts that
// combine (an expired request still has its response forwarded and acknowledged).
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerState {
    /// The request.
    pub request: Arc<AcmRequest>,
    /// The primary system that sent it.
    pub from: SystemId,
    /// The primary's message id.
    pub message_id: MessageId,
    /// When it was stored.
    pub stored_at: DateTime<Utc>,
    /// Step 4a.
    pub verification: Verification,
    /// Step 8: recipients it was delivered to, in order.
    pub delivered_to: Vec<McServiceId>,
    /// Step 9: the final response and its message id.
    pub response: Option<(MessageId, AcmResponse)>,
    /// Step 10: the primary acknowledged the response.
    pub response_forwarded: bool,
    /// Expired before an answer.
    pub expired: bool,
    /// Withdrawn by the sender.
    pub withdrawn: bool,
    /// The acceptance hook ran.
    pub acceptance_applied: bool,
}

/// An ACM request's state on one ACM server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RequestState {
    /// No events.
    #[default]
    Empty,
    /// This server is the primary for the request.
    Primary(Box<PrimaryState>),
    /// This server is the partner for the request.
    Partner(Box<PartnerState>),
}

/// A message owed to a partner, borrowed from the state.
enum Owed<'a> {
    Request(&'a SystemId, MessageId, &'a Arc<AcmRequest>),
    Withdrawal(&'a SystemId, MessageId, RequestId),
    Response(&'a SystemId, MessageId, RequestId, &'a AcmResponse),
}

/// A message that an ACM server owes a partner: the outbox entry derived from state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "message")]
pub enum PartnerMessage {
    /// Step 3: an ACM request for the partner.
    Request {
        /// Message id (deduplication key).
        message_id: MessageId,
        /// The request.
        request: Arc<AcmRequest>,
    },
    /// Step 10: the final response to a request.
    Response {
        /// Message id (deduplication key).
        message_id: MessageId,
        /// The request answered.
        request_id: RequestId,
        /// The response.
        response: AcmResponse,
    },
    /// The requester withdraws a request.
    Withdrawal {
        /// Message id.
        message_id: MessageId,
        /// The request to withdraw.
        request_id: RequestId,
    },
}

impl PartnerMessage {
    /// The message id.
    pub fn message_id(&self) -> MessageId {
        match self {
            Self::Request { message_id, .. }
            | Self::Response { message_id, .. }
            | Self::Withdrawal { message_id, .. } => *message_id,
        }
    }

    /// The request the message is about.
    pub fn request_id(&self) -> RequestId {
        match self {
            Self::Request { request, .. } => request.request_id,
            Self::Response { request_id, .. } | Self::Withdrawal { request_id, .. } => *request_id,
        }
    }
}

impl RequestState {
    /// The request, if any.
    pub fn request(&self) -> Option<&AcmRequest> {
        match self {
            Self::Empty => None,
            Self::Primary(p) => Some(&p.request),
            Self::Partner(p) => Some(&p.request),
        }
    }

    /// Users this request is pending for: recipients until it is answered (partner), the
    /// requester until the response and any withdrawal outcome are delivered (primary).
    pub fn pending_for(&self) -> &[McServiceId] {
        match self {
            Self::Empty => &[],
            Self::Primary(p) => {
                if p.response_pending() || p.withdrawal_outcome_pending() {
                    std::slice::from_ref(&p.request.requester)
                } else {
                    &[]
                }
            }
            Self::Partner(p) => match &p.verification {
                Verification::Passed(recipients) if p.is_open() => recipients,
                _ => &[],
            },
        }
    }

    /// What this server owes the partner, by reference: the one place the outbox rule lives.
    fn owed(&self) -> Option<Owed<'_>> {
        match self {
            Self::Empty => None,
            Self::Primary(p) => {
                if p.response.is_some() {
                    return None;
                }
                match (&p.forward, p.withdrawal) {
                    (Some((to, message_id)), Withdrawal::None | Withdrawal::Requested(_))
                        if !p.partner_stored =>
                    {
                        Some(Owed::Request(to, *message_id, &p.request))
                    }
                    (Some((to, _)), Withdrawal::Requested(message_id)) => {
                        Some(Owed::Withdrawal(to, message_id, p.request.request_id))
                    }
                    _ => None,
                }
            }
            Self::Partner(p) => match &p.response {
                Some((message_id, response)) if !p.response_forwarded => Some(Owed::Response(
                    &p.from,
                    *message_id,
                    p.request.request_id,
                    response,
                )),
                _ => None,
            },
        }
    }

    /// Whether this server owes the partner a message (the request is in the outbox).
    pub fn owes_message(&self) -> bool {
        self.owed().is_some()
    }

    /// The id of the message this server owes the partner, if any, without building it.
    pub fn owed_message_id(&self) -> Option<MessageId> {
        self.owed().map(|owed| match owed {
            Owed::Request(_, id, _) | Owed::Withdrawal(_, id, _) | Owed::Response(_, id, _, _) => {
                id
            }
        })
    }

    /// The message this server owes the partner, if any (the outbox entry).
    pub fn outbound(&self) -> Option<(SystemId, PartnerMessage)> {
        Some(match self.owed()? {
            Owed::Request(to, message_id, request) => (
                to.clone(),
                PartnerMessage::Request {
                    message_id,
                    request: request.clone(),
                },
            ),
            Owed::Withdrawal(to, message_id, request_id) => (
                to.clone(),
                PartnerMessage::Withdrawal {
                    message_id,
                    request_id,
                },
            ),
            Owed::Response(to, message_id, request_id, response) => (
                to.clone(),
                PartnerMessage::Response {
                    message_id,
                    request_id,
                    response: response.clone(),
                },
            ),
        })
    }

    /// Whether the acceptance hook is due (accepted at this partner, not yet applied).
    pub fn acceptance_due(&self) -> bool {
        match self {
            Self::Partner(p) => {
                !p.acceptance_applied
                    && p.response
                        .as_ref()
                        .is_some_and(|(_, r)| r.outcome.is_accepted())
            }
            _ => false,
        }
    }

    /// When an open partner request expires, given the configured pending time; `None` when
    /// it is closed, or when that instant is past the end of time as `chrono` counts it (the
    /// request then never expires).
    pub fn expires_at(&self, ttl: Duration) -> Option<DateTime<Utc>> {
        match self {
            Self::Partner(p) if p.is_open() => p.stored_at.checked_add_signed(ttl),
            _ => None,
        }
    }
}

impl PartnerState {
    fn closure(&self) -> Option<Closure> {
        if self.withdrawn {
            Some(Closure::Withdrawn)
        } else if self.expired {
            Some(Closure::Expired)
        } else if matches!(self.verification, Verification::Failed(_)) {
            Some(Closure::VerificationFailed)
        } else if self.response.is_some() {
            Some(Closure::Answered)
        } else {
            None
        }
    }

    /// Still waiting for an answer.
    pub fn is_open(&self) -> bool {
        self.closure().is_none()
    }

    fn recipients(&self) -> &[McServiceId] {
        match &self.verification {
            Verification::Passed(r) => r,
            _ => &[],
        }
    }
}

fn target_in(target: &Target, system: &SystemId) -> bool {
    match target {
        Target::User(u) => u.host() == system.as_str(),
        Target::FunctionalAlias(a) => a.host() == system.as_str(),
        Target::PartnerServer => true,
    }
}

fn check_reason(reason: Option<&String>) -> Result<(), DomainError> {
    match reason {
        Some(text) if text.len() > MAX_REASON_LEN => Err(DomainError::ReasonTooLong {
            len: text.len(),
            max: MAX_REASON_LEN,
        }),
        _ => Ok(()),
    }
}

/// A partner's response must be in the partner's name and within the limits its own users
/// are held to: nothing else is stored and shown to the requester.
fn check_response(response: &AcmResponse, from: &SystemId) -> Result<(), DomainError> {
    let in_sender = match &response.responder {
        Responder::User { id, alias } => {
            id.host() == from.as_str() && alias.as_ref().is_none_or(|a| a.host() == from.as_str())
        }
        Responder::Server { system } => system == from,
    };
    if !in_sender {
        return Err(DomainError::ResponderNotOfSender {
            system: from.clone(),
        });
    }
    match &response.outcome {
        Outcome::Rejected {
            reason: RejectionReason::User { text },
        } => check_reason(text.as_ref()),
        _ => Ok(()),
    }
}

fn verify(
    from: &SystemId,
    request: &AcmRequest,
    facts: &ReceiptFacts,
) -> Result<Arc<[McServiceId]>, VerificationFailure> {
    request
        .body
        .validate(&facts.limits)
        .map_err(|error| VerificationFailure::Malformed { error })?;
    if request.partner != facts.local {
        return Err(VerificationFailure::NotAddressedToThisSystem {
            partner: request.partner.clone(),
        });
    }
    let alias_elsewhere = request
        .requester_alias
        .as_ref()
        .is_some_and(|a| a.host() != from.as_str());
    if request.requester.host() != from.as_str() || alias_elsewhere {
        return Err(VerificationFailure::RequesterNotOfSender);
    }
    if let Some(group) = request
        .body
        .groups()
        .iter()
        .find(|g| !facts.home_domains.iter().any(|d| d.as_str() == g.host()))
    {
        return Err(VerificationFailure::GroupNotHomedAtPrimary {
            group: group.clone(),
        });
    }
    if !target_in(&request.target, &facts.local) {
        return Err(VerificationFailure::TargetNotInThisSystem);
    }
    facts.recipients.clone()
}

fn server_response(system: &SystemId, outcome: Outcome) -> AcmResponse {
    AcmResponse {
        responder: Responder::Server {
            system: system.clone(),
        },
        outcome,
    }
}

fn primary(state: &RequestState) -> Result<&PrimaryState, DomainError> {
    match state {
        RequestState::Primary(p) => Ok(p),
        RequestState::Partner(_) => Err(DomainError::WrongSide),
        RequestState::Empty => Err(DomainError::UnknownRequest),
    }
}

fn partner(state: &RequestState, empty: DomainError) -> Result<&PartnerState, DomainError> {
    match state {
        RequestState::Partner(p) => Ok(p),
        RequestState::Primary(_) => Err(DomainError::WrongSide),
        RequestState::Empty => Err(empty),
    }
}

/// Decides which events `command` produces in `state`.
///
/// ```
/// use acm_core::lifecycle::{decide, Command, RequestState};
/// use acm_core::error::DomainError;
/// let cmd = Command::RecordAcceptanceApplied;
/// assert_eq!(decide(&RequestState::Empty, &cmd), Err(DomainError::NotStored));
/// ```
#[allow(clippy::too_many_lines)] // one match arm per command reads better than many helpers
pub fn decide(state: &RequestState, command: &Command) -> Result<Vec<Event>, DomainError> {
    match command {
        Command::Submit {
            request,
            authorization,
            limits,
            message_id,
            at,
        } => {
            if !matches!(state, RequestState::Empty) {
                return Err(DomainError::RequestExists);
            }
            request.body.validate(limits)?;
            if !target_in(&request.target, &request.partner) {
                return Err(DomainError::TargetOutsidePartner {
                    partner: request.partner.clone(),
                });
            }
            let submitted = Event::Submitted {
                request: request.clone(),
                at: *at,
            };
            Ok(match authorization {
                Err(reason) => vec![
                    submitted,
                    Event::AuthorizationRefused {
                        reason: reason.clone(),
                    },
                ],
                Ok(()) => vec![
                    submitted,
                    Event::Authorized,
                    Event::Forwarded {
                        to: request.partner.clone(),
                        message_id: *message_id,
                    },
                ],
            })
        }
        Command::RecordPartnerAck { message_id } => {
            let p = primary(state)?;
            match &p.forward {
                Some((_, m)) if m == message_id => Ok(if p.partner_stored {
                    vec![]
                } else {
                    vec![Event::PartnerStored {
                        message_id: *message_id,
                    }]
                }),
                _ => Err(DomainError::UnexpectedMessage {
                    message_id: *message_id,
                }),
            }
        }
        Command::ReceiveResponse {
            from,
            message_id,
            response,
        } => {
            let p = primary(state)?;
            if *from != p.request.partner {
                return Err(DomainError::NotTheSender {
                    system: from.clone(),
                });
            }
            if let Authorization::Refused(_) = p.authorization {
                return Err(DomainError::Closed {
                    closure: Closure::Refused,
                });
            }
            check_response(response, from)?;
            if let Some((m, r)) = &p.response {
                return if m == message_id && r == response {
                    Ok(vec![])
                } else {
                    Err(DomainError::ResponseExists)
                };
            }
            if let Withdrawal::Withdrawn(_) = p.withdrawal {
                return Err(DomainError::Closed {
                    closure: Closure::Withdrawn,
                });
            }
            let mut events = Vec::with_capacity(2);
            // An answer proves the partner stored the request: record step 4b even when its
            // acknowledgement was lost, so the audit trail has every step.
            if let (Some((_, forward)), false) = (&p.forward, p.partner_stored) {
                events.push(Event::PartnerStored {
                    message_id: *forward,
                });
            }
            events.push(Event::ResponseReceived {
                message_id: *message_id,
                response: response.clone(),
            });
            Ok(events)
        }
        Command::DeliverResponse { to } => {
            let p = primary(state)?;
            if *to != p.request.requester {
                return Err(DomainError::NotTheRequester { user: to.clone() });
            }
            let mut events = Vec::new();
            if p.withdrawal_outcome_pending() {
                events.push(Event::WithdrawalOutcomeDelivered { to: to.clone() });
            }
            if p.response_pending() {
                events.push(Event::ResponseDelivered { to: to.clone() });
            }
            let delivered_before = p.response_delivered || p.withdrawal_outcome_delivered;
            if events.is_empty() && !delivered_before {
                return Err(DomainError::NoPendingResponse);
            }
            Ok(events)
        }
        Command::RequestWithdrawal { by, message_id } => {
            let p = primary(state)?;
            if *by != p.request.requester {
                return Err(DomainError::NotTheRequester { user: by.clone() });
            }
            if let Authorization::Refused(_) = p.authorization {
                return Err(DomainError::Closed {
                    closure: Closure::Refused,
                });
            }
            if p.response.is_some() {
                return Err(DomainError::Closed {
                    closure: Closure::Answered,
                });
            }
            match p.withdrawal {
                Withdrawal::None => Ok(vec![Event::WithdrawalRequested {
                    by: by.clone(),
                    message_id: *message_id,
                }]),
                Withdrawal::Withdrawn(_) => Err(DomainError::Closed {
                    closure: Closure::Withdrawn,
                }),
                Withdrawal::Requested(_) | Withdrawal::Refused(_) => {
                    Err(DomainError::NotWithdrawable)
                }
            }
        }
        Command::RecordWithdrawalOutcome {
            message_id,
            withdrawn,
        } => {
            let p = primary(state)?;
            match p.withdrawal {
                Withdrawal::Requested(m) if m == *message_id => {
                    if p.response.is_some() {
                        // The answer overtook the withdrawal; the answer stands.
                        Ok(vec![])
                    } else if *withdrawn {
                        Ok(vec![Event::Withdrawn])
                    } else {
                        Ok(vec![Event::WithdrawalRefused])
                    }
                }
                Withdrawal::Refused(m) | Withdrawal::Withdrawn(m) if m == *message_id => Ok(vec![]),
                _ => Err(DomainError::UnexpectedMessage {
                    message_id: *message_id,
                }),
            }
        }
        Command::Receive {
            from,
            message_id,
            request,
            facts,
            response_message_id,
            at,
        } => {
            match state {
                RequestState::Empty => {}
                RequestState::Partner(p)
                    if p.message_id == *message_id && p.from == *from && p.request == *request =>
                {
                    return Ok(vec![]);
                }
                RequestState::Partner(_) => return Err(DomainError::RequestIdReused),
                RequestState::Primary(_) => return Err(DomainError::WrongSide),
            }
            if !facts.interconnected {
                return Err(DomainError::NotInterconnected {
                    system: from.clone(),
                });
            }
            let mut events = vec![Event::Stored {
                from: from.clone(),
                message_id: *message_id,
                request: request.clone(),
                at: *at,
            }];
            match verify(from, request, facts) {
                Err(failure) => {
                    let reason = RejectionReason::Verification {
                        failure: failure.clone(),
                    };
                    events.push(Event::VerificationFailed { failure });
                    events.push(Event::Responded {
                        message_id: *response_message_id,
                        response: server_response(&facts.local, Outcome::Rejected { reason }),
                    });
                }
                Ok(recipients) => {
                    events.push(Event::Verified { recipients });
                    let automatic = match facts.processing {
                        Processing::Manual => None,
                        Processing::AutoAccept => Some(Outcome::Accepted),
                        Processing::AutoReject => Some(Outcome::Rejected {
                            reason: RejectionReason::Policy,
                        }),
                    };
                    if let Some(outcome) = automatic {
                        events.push(Event::Responded {
                            message_id: *response_message_id,
                            response: server_response(&facts.local, outcome),
                        });
                    }
                }
            }
            Ok(events)
        }
        Command::ReceiveWithdrawal { from } => {
            let p = partner(state, DomainError::UnknownRequest)?;
            if *from != p.from {
                return Err(DomainError::NotTheSender {
                    system: from.clone(),
                });
            }
            // Too late once delivered or answered: the outcome is read from the state.
            if p.withdrawn || !p.delivered_to.is_empty() || p.response.is_some() {
                Ok(vec![])
            } else {
                Ok(vec![Event::Withdrawn])
            }
        }
        Command::Deliver { to } => {
            let p = partner(state, DomainError::NotStored)?;
            if let Some(closure) = p.closure() {
                return Err(DomainError::Closed { closure });
            }
            if !p.recipients().contains(to) {
                return Err(DomainError::NotARecipient { user: to.clone() });
            }
            if p.delivered_to.contains(to) {
                return Ok(vec![]);
            }
            Ok(vec![Event::Delivered { to: to.clone() }])
        }
        Command::Respond {
            by,
            alias,
            decision,
            message_id,
        } => {
            let p = partner(state, DomainError::NotStored)?;
            if let Some(closure) = p.closure() {
                return Err(DomainError::Closed { closure });
            }
            if !p.recipients().contains(by) {
                return Err(DomainError::NotARecipient { user: by.clone() });
            }
            if !p.delivered_to.contains(by) {
                return Err(DomainError::NotDelivered { user: by.clone() });
            }
            let outcome = match decision {
                Decision::Accept => Outcome::Accepted,
                Decision::Reject { reason } => {
                    check_reason(reason.as_ref())?;
                    Outcome::Rejected {
                        reason: RejectionReason::User {
                            text: reason.clone(),
                        },
                    }
                }
            };
            Ok(vec![Event::Responded {
                message_id: *message_id,
                response: AcmResponse {
                    responder: Responder::User {
                        id: by.clone(),
                        alias: alias.clone(),
                    },
                    outcome,
                },
            }])
        }
        Command::RecordResponseAck { message_id } => {
            let p = partner(state, DomainError::UnknownRequest)?;
            match &p.response {
                Some((m, _)) if m == message_id => Ok(if p.response_forwarded {
                    vec![]
                } else {
                    vec![Event::ResponseForwarded {
                        message_id: *message_id,
                    }]
                }),
                _ => Err(DomainError::UnexpectedMessage {
                    message_id: *message_id,
                }),
            }
        }
        Command::Expire {
            now,
            ttl,
            message_id,
        } => {
            let p = partner(state, DomainError::UnknownRequest)?;
            if let Some(closure) = p.closure() {
                return Err(DomainError::Closed { closure });
            }
            // Checked: a pending time that reaches past the end of chrono's range never
            // comes due, rather than panicking after events were recorded.
            if p.stored_at
                .checked_add_signed(*ttl)
                .is_none_or(|due| *now < due)
            {
                return Err(DomainError::NotDue);
            }
            Ok(vec![
                Event::Expired,
                Event::Responded {
                    message_id: *message_id,
                    response: server_response(
                        &p.request.partner,
                        Outcome::Rejected {
                            reason: RejectionReason::Expired,
                        },
                    ),
                },
            ])
        }
        Command::RecordAcceptanceApplied => {
            let p = partner(state, DomainError::NotStored)?;
            if p.acceptance_applied {
                Ok(vec![])
            } else if state.acceptance_due() {
                Ok(vec![Event::AcceptanceApplied])
            } else {
                Err(DomainError::NotAccepted)
            }
        }
    }
}

/// Folds one event into the state. Total: an event that does not apply to the state (which a
/// log written by `decide` never holds) leaves it unchanged.
#[allow(clippy::too_many_lines)] // one arm per event
pub fn evolve(state: RequestState, event: &Event) -> RequestState {
    match (state, event) {
        (RequestState::Empty, Event::Submitted { request, at }) => {
            RequestState::Primary(Box::new(PrimaryState {
                request: request.clone(),
                submitted_at: *at,
                authorization: Authorization::Pending,
                forward: None,
                partner_stored: false,
                response: None,
                response_delivered: false,
                withdrawal: Withdrawal::None,
                withdrawal_outcome_delivered: false,
            }))
        }
        (
            RequestState::Empty,
            Event::Stored {
                from,
                message_id,
                request,
                at,
            },
        ) => RequestState::Partner(Box::new(PartnerState {
            request: request.clone(),
            from: from.clone(),
            message_id: *message_id,
            stored_at: *at,
            verification: Verification::Unverified,
            delivered_to: Vec::new(),
            response: None,
            response_forwarded: false,
            expired: false,
            withdrawn: false,
            acceptance_applied: false,
        })),
        (RequestState::Primary(mut p), event) => {
            match event {
                Event::Authorized => p.authorization = Authorization::Granted,
                Event::AuthorizationRefused { reason } => {
                    p.authorization = Authorization::Refused(reason.clone());
                }
                Event::Forwarded { to, message_id } => {
                    p.forward = Some((to.clone(), *message_id));
                }
                Event::PartnerStored { .. } => p.partner_stored = true,
                Event::ResponseReceived {
                    message_id,
                    response,
                } => p.response = Some((*message_id, response.clone())),
                Event::ResponseDelivered { .. } => p.response_delivered = true,
                Event::WithdrawalOutcomeDelivered { .. } => p.withdrawal_outcome_delivered = true,
                Event::WithdrawalRequested { message_id, .. } => {
                    p.withdrawal = Withdrawal::Requested(*message_id);
                }
                Event::WithdrawalRefused => {
                    if let Withdrawal::Requested(m) = p.withdrawal {
                        p.withdrawal = Withdrawal::Refused(m);
                    }
                }
                Event::Withdrawn => {
                    if let Withdrawal::Requested(m) = p.withdrawal {
                        p.withdrawal = Withdrawal::Withdrawn(m);
                    }
                }
                _ => {}
            }
            RequestState::Primary(p)
        }
        (RequestState::Partner(mut p), event) => {
            match event {
                Event::Verified { recipients } => {
                    p.verification = Verification::Passed(recipients.clone());
                }
                Event::VerificationFailed { failure } => {
                    p.verification = Verification::Failed(failure.clone());
                }
                Event::Delivered { to } if !p.delivered_to.contains(to) => {
                    p.delivered_to.push(to.clone());
                }
                Event::Responded {
                    message_id,
                    response,
                } if p.response.is_none() => {
                    p.response = Some((*message_id, response.clone()));
                }
                Event::ResponseForwarded { .. } => p.response_forwarded = true,
                Event::Expired => p.expired = true,
                Event::Withdrawn => p.withdrawn = true,
                Event::AcceptanceApplied => p.acceptance_applied = true,
                _ => {}
            }
            RequestState::Partner(p)
        }
        (state @ RequestState::Empty, _) => state,
    }
}

#[cfg(test)]
mod tests;
