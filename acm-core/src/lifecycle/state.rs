//! An ACM request's state on one ACM server, and what it owes, holds and waits for.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::error::Closure;
use crate::id::{IdempotencyKey, McServiceId, MessageId, RequestId, SystemId};
use crate::message::PartnerMessage;
use crate::request::{
    AcmRequest, AcmResponse, AuthorizationRefusal, UserResult, VerificationFailure,
};

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
// Each flag is a distinct fact recorded by its own event (see `PartnerState`).
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryState {
    /// The request.
    pub request: Arc<AcmRequest>,
    /// When it was submitted.
    pub submitted_at: DateTime<Utc>,
    /// The client's key for the submission, if it gave one.
    pub idempotency_key: Option<IdempotencyKey>,
    /// Step 2.
    pub authorization: Authorization,
    /// Step 3: the forwarding message, once decided.
    pub forward: Option<(SystemId, MessageId)>,
    /// Step 4b: the partner acknowledged storing it.
    pub partner_stored: bool,
    /// The partner did not acknowledge it within the send deadline.
    pub undeliverable: bool,
    /// The undeliverable notice was delivered to the requester.
    pub undeliverable_delivered: bool,
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
    /// Whether a stored response waits for the requester's download (a response that came
    /// after the request was recorded undeliverable too: the requester learns it).
    pub fn response_pending(&self) -> bool {
        self.response.is_some() && !self.response_delivered
    }

    /// Whether the notice that the request was undeliverable waits for the requester.
    pub fn undeliverable_pending(&self) -> bool {
        self.undeliverable && !self.undeliverable_delivered
    }

    /// Whether the send deadline can still run out: authorised and forwarded, not yet
    /// acknowledged, answered, withdrawn or given up.
    pub fn awaiting_ack(&self) -> bool {
        matches!(self.authorization, Authorization::Granted)
            && self.forward.is_some()
            && !self.partner_stored
            && self.response.is_none()
            && !self.undeliverable
            && !matches!(self.withdrawal, Withdrawal::Withdrawn(_))
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
    /// Step 4a: a group membership update's result per listed user (empty otherwise).
    pub user_results: Arc<[UserResult]>,
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
                if p.response_pending()
                    || p.withdrawal_outcome_pending()
                    || p.undeliverable_pending()
                {
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
                if p.response.is_some() || p.undeliverable {
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
    pub(crate) fn closure(&self) -> Option<Closure> {
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

    pub(crate) fn recipients(&self) -> &[McServiceId] {
        match &self.verification {
            Verification::Passed(r) => r,
            _ => &[],
        }
    }
}
