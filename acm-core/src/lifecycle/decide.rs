//! `decide`: which events a command produces in a state.

use std::sync::Arc;

use crate::error::{Closure, DomainError};
use crate::event::Event;
use crate::id::{McServiceId, SystemId};
use crate::request::{
    AcmRequest, AcmRequestBody, AcmResponse, Decision, MAX_REASON_LEN, Outcome, Processing,
    RejectionReason, Responder, Target, UserRefusal, UserResult, VerificationFailure,
};

use super::command::{Command, ReceiptFacts};
use super::state::{Authorization, PartnerState, PrimaryState, RequestState, Withdrawal};

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

/// The rules of each kind that only the primary can check before anything is sent: whose
/// users a membership update or a migration lists (at the partner, a membership update's
/// user of another system is a per-user refusal, not a malformed request).
fn check_body(request: &AcmRequest) -> Result<(), DomainError> {
    match &request.body {
        AcmRequestBody::GroupMembershipUpdate { users, .. } => {
            match users.iter().find(|u| u.host() != request.partner.as_str()) {
                Some(user) => Err(DomainError::UserOutsidePartner {
                    user: user.clone(),
                    partner: request.partner.clone(),
                }),
                None => Ok(()),
            }
        }
        AcmRequestBody::UserMigrationManagement { users, .. } => {
            match users.iter().find(|u| u.host() != request.requester.host()) {
                Some(user) => Err(DomainError::UserNotOfRequesterSystem { user: user.clone() }),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// A group membership update's result per listed user at this (the partner) system.
fn user_results(request: &AcmRequest, facts: &ReceiptFacts) -> Arc<[UserResult]> {
    let AcmRequestBody::GroupMembershipUpdate { users, .. } = &request.body else {
        return Arc::from([]);
    };
    users
        .iter()
        .map(|user| {
            let refused = |reason| UserResult::Refused {
                user: user.clone(),
                reason,
            };
            if user.host() != facts.local.as_str() {
                refused(UserRefusal::NotOfThisSystem)
            } else if facts.unknown_users.contains(user) {
                refused(UserRefusal::UnknownUser)
            } else {
                UserResult::Applied { user: user.clone() }
            }
        })
        .collect()
}

/// Per-user results come only with an accepted group membership update, one per listed
/// user in the request's order.
fn check_user_results(request: &AcmRequest, response: &AcmResponse) -> Result<(), DomainError> {
    let expected: &[_] = match (&request.body, &response.outcome) {
        (AcmRequestBody::GroupMembershipUpdate { users, .. }, Outcome::Accepted) => users,
        _ => &[],
    };
    let matches = response.user_results.len() == expected.len()
        && response
            .user_results
            .iter()
            .zip(expected)
            .all(|(r, u)| r.user() == u);
    if matches {
        Ok(())
    } else {
        Err(DomainError::UserResultsMismatch)
    }
}

/// A partner's response must be in the partner's name and within the limits its own users
/// are held to: nothing else is stored and shown to the requester.
fn check_response(
    request: &AcmRequest,
    response: &AcmResponse,
    from: &SystemId,
) -> Result<(), DomainError> {
    check_user_results(request, response)?;
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

/// What step 4a's verification finds: the recipients and (for a membership update) the
/// result per listed user.
type Verdict = (Arc<[McServiceId]>, Arc<[UserResult]>);

/// Step 4a.
fn verify(
    from: &SystemId,
    request: &AcmRequest,
    facts: &ReceiptFacts,
) -> Result<Verdict, VerificationFailure> {
    if facts.processing == Processing::NotAccepted {
        return Err(VerificationFailure::KindNotAccepted {
            kind: request.body.kind(),
        });
    }
    request
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
    let results = match &request.body {
        AcmRequestBody::GroupMembershipUpdate { group, .. } => {
            if !facts.group_known {
                return Err(VerificationFailure::NotAnInterconnectionGroup {
                    group: group.clone(),
                });
            }
            let results = user_results(request, facts);
            if !results
                .iter()
                .any(|r| matches!(r, UserResult::Applied { .. }))
            {
                return Err(VerificationFailure::NoListedUserHere);
            }
            results
        }
        AcmRequestBody::UserMigrationManagement { users, .. } => {
            if let Some(user) = users.iter().find(|u| u.host() != from.as_str()) {
                return Err(VerificationFailure::UserNotOfSender { user: user.clone() });
            }
            Arc::from([])
        }
        _ => Arc::from([]),
    };
    Ok((facts.recipients.clone()?, results))
}

fn server_response(system: &SystemId, outcome: Outcome) -> AcmResponse {
    AcmResponse::new(
        Responder::Server {
            system: system.clone(),
        },
        outcome,
    )
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
/// use acm_core::{decide, Command, RequestState};
/// use acm_core::DomainError;
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
            idempotency_key,
        } => {
            if !matches!(state, RequestState::Empty) {
                return Err(DomainError::RequestExists);
            }
            request.validate(limits)?;
            if !target_in(&request.target, &request.partner) {
                return Err(DomainError::TargetOutsidePartner {
                    partner: request.partner.clone(),
                });
            }
            check_body(request)?;
            let submitted = Event::Submitted {
                request: request.clone(),
                at: *at,
                idempotency_key: idempotency_key.clone(),
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
        Command::GiveUp { now, deadline } => {
            let p = primary(state)?;
            if !p.awaiting_ack() {
                return Err(DomainError::NotAwaitingAck);
            }
            // Checked: a deadline past the end of chrono's range never comes due.
            if p.submitted_at
                .checked_add_signed(*deadline)
                .is_none_or(|due| *now < due)
            {
                return Err(DomainError::NotDue);
            }
            Ok(vec![Event::Undeliverable])
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
            check_response(&p.request, response, from)?;
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
        Command::DeliverResponse {
            to,
            response,
            undeliverable,
            withdrawal_outcome,
        } => {
            let p = primary(state)?;
            if *to != p.request.requester {
                return Err(DomainError::NotTheRequester { user: to.clone() });
            }
            let mut events = Vec::new();
            if *withdrawal_outcome && p.withdrawal_outcome_pending() {
                events.push(Event::WithdrawalOutcomeDelivered { to: to.clone() });
            }
            if *undeliverable && p.undeliverable_pending() {
                events.push(Event::UndeliverableDelivered { to: to.clone() });
            }
            if *response && p.response_pending() {
                events.push(Event::ResponseDelivered { to: to.clone() });
            }
            // Acknowledging what was delivered already is a harmless repeat.
            let delivered_before = (*response && p.response_delivered)
                || (*undeliverable && p.undeliverable_delivered)
                || (*withdrawal_outcome && p.withdrawal_outcome_delivered);
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
            if p.undeliverable {
                return Err(DomainError::Closed {
                    closure: Closure::Undeliverable,
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
                Ok((recipients, user_results)) => {
                    events.push(Event::Verified {
                        recipients,
                        user_results: user_results.clone(),
                    });
                    let automatic = match facts.processing {
                        // Refused before: verification fails for a kind not accepted.
                        Processing::Manual | Processing::NotAccepted => None,
                        Processing::AutoAccept => Some(Outcome::Accepted),
                        Processing::AutoReject => Some(Outcome::Rejected {
                            reason: RejectionReason::Policy,
                        }),
                    };
                    if let Some(outcome) = automatic {
                        let mut response = server_response(&facts.local, outcome);
                        if response.outcome.is_accepted() {
                            response.user_results = user_results;
                        }
                        events.push(Event::Responded {
                            message_id: *response_message_id,
                            response,
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
            let user_results = if outcome.is_accepted() {
                p.user_results.clone()
            } else {
                Arc::from([])
            };
            let response = AcmResponse {
                responder: Responder::User {
                    id: by.clone(),
                    alias: alias.clone(),
                },
                outcome,
                user_results,
            };
            // A client retrying its own answer after a lost reply gets success, and nothing
            // is recorded twice; any other answer to a closed request is refused.
            if matches!(&p.response, Some((_, r)) if *r == response) {
                return Ok(vec![]);
            }
            if let Some(closure) = p.closure() {
                return Err(DomainError::Closed { closure });
            }
            if !p.recipients().contains(by) {
                return Err(DomainError::NotARecipient { user: by.clone() });
            }
            if !p.delivered_to.contains(by) {
                return Err(DomainError::NotDelivered { user: by.clone() });
            }
            Ok(vec![Event::Responded {
                message_id: *message_id,
                response,
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
