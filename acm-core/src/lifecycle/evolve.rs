//! `evolve`: the total fold of one event into a request's state.

use std::sync::Arc;

use crate::event::Event;

use super::state::{
    Authorization, PartnerState, PrimaryState, RequestState, Verification, Withdrawal,
};

/// Folds one event into the state. Total: an event that does not apply to the state (which a
/// log written by `decide` never holds) leaves it unchanged.
#[allow(clippy::too_many_lines)] // one arm per event
pub fn evolve(state: RequestState, event: &Event) -> RequestState {
    match (state, event) {
        (
            RequestState::Empty,
            Event::Submitted {
                request,
                at,
                idempotency_key,
            },
        ) => RequestState::Primary(Box::new(PrimaryState {
            request: request.clone(),
            submitted_at: *at,
            idempotency_key: idempotency_key.clone(),
            undeliverable: false,
            undeliverable_delivered: false,
            authorization: Authorization::Pending,
            forward: None,
            partner_stored: false,
            response: None,
            response_delivered: false,
            withdrawal: Withdrawal::None,
            withdrawal_outcome_delivered: false,
        })),
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
            user_results: Arc::from([]),
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
                Event::Undeliverable => p.undeliverable = true,
                Event::UndeliverableDelivered { .. } => p.undeliverable_delivered = true,
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
                Event::Verified {
                    recipients,
                    user_results,
                } => {
                    p.verification = Verification::Passed(recipients.clone());
                    p.user_results = user_results.clone();
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
