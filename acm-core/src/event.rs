//! The events of an ACM request's lifecycle, as each ACM server records them.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::{IdempotencyKey, McServiceId, MessageId, SystemId};
use crate::request::{
    AcmRequest, AcmResponse, AuthorizationRefusal, UserResult, VerificationFailure,
};
use crate::store::DomainEvent;

/// One fact about an ACM request, recorded by the primary or by the partner ACM server.
///
/// Variants are grouped by the server that records them; `docs/procedure.md` maps each to its
/// step of the procedure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Event {
    // ---- primary ACM server ----
    /// Step 1: an authenticated user submitted a request.
    Submitted {
        /// The request as submitted (shared: states and messages hold the same value).
        request: Arc<AcmRequest>,
        /// When the server received it.
        at: DateTime<Utc>,
        /// The key the client chose for this submission, if any: a retry with it is answered
        /// from this request.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<IdempotencyKey>,
    },
    /// Step 2: the user is authorised for this request.
    Authorized,
    /// Step 2: the user is not authorised; the procedure stops here.
    AuthorizationRefused {
        /// Why.
        reason: AuthorizationRefusal,
    },
    /// Step 3: the request is to be forwarded to the partner ACM server. This is the outbox
    /// entry: recorded before sending, so the relay can (re)send it after any crash.
    Forwarded {
        /// The partner system.
        to: SystemId,
        /// Id of the message; the partner deduplicates by it.
        message_id: MessageId,
    },
    /// Step 4b: the partner acknowledged that it stored the request.
    PartnerStored {
        /// The message acknowledged.
        message_id: MessageId,
    },
    /// Step 11: the partner's response is stored, pending for the requester.
    ResponseReceived {
        /// The partner's message id.
        message_id: MessageId,
        /// The response.
        response: AcmResponse,
    },
    /// The partner did not acknowledge the request within the send deadline: the primary
    /// stops sending it and tells the requester, as it would a response. A late
    /// acknowledgement or response is recorded and does not reopen the request.
    Undeliverable,
    /// The undeliverable notice was delivered to the requester.
    UndeliverableDelivered {
        /// The requester.
        to: McServiceId,
    },
    /// Step 14: the response was delivered to the requester.
    ResponseDelivered {
        /// The requester.
        to: McServiceId,
    },
    /// The requester asked to withdraw the request; outbox entry for the partner.
    WithdrawalRequested {
        /// The requester.
        by: McServiceId,
        /// Id of the withdrawal message.
        message_id: MessageId,
    },
    /// The partner could not withdraw the request: it was delivered or answered already.
    WithdrawalRefused,
    /// The partner's answer to the withdrawal (withdrawn, or too late) was delivered to the
    /// requester, who learns it like a response.
    WithdrawalOutcomeDelivered {
        /// The requester.
        to: McServiceId,
    },

    // ---- both servers ----
    /// The request is withdrawn (at the partner: before delivery; at the primary: confirmed).
    Withdrawn,

    // ---- partner ACM server ----
    /// Step 4a: the request from the primary is durably stored (then acknowledged, 4b).
    Stored {
        /// The primary system that sent it (from its certificate).
        from: SystemId,
        /// The primary's message id.
        message_id: MessageId,
        /// The request.
        request: Arc<AcmRequest>,
        /// When it was stored.
        at: DateTime<Utc>,
    },
    /// Step 4a: verification passed; the request is pending for these users.
    Verified {
        /// The users the request is offered to (the target, the alias holders, or the
        /// administrators).
        recipients: Arc<[McServiceId]>,
        /// A group membership update's result per listed user, as an acceptance will report
        /// it (empty for the other kinds).
        #[serde(default, skip_serializing_if = "<[UserResult]>::is_empty")]
        user_results: Arc<[UserResult]>,
    },
    /// Step 4a: verification failed; a rejected final response follows.
    VerificationFailed {
        /// What failed.
        failure: VerificationFailure,
    },
    /// Step 8: the request was delivered to this recipient.
    Delivered {
        /// The recipient.
        to: McServiceId,
    },
    /// Step 9 (or automatic processing, verification failure, expiry): the final response,
    /// the outbox entry for step 10.
    Responded {
        /// Id of the response message.
        message_id: MessageId,
        /// The response.
        response: AcmResponse,
    },
    /// Step 10: the primary acknowledged that it stored the response.
    ResponseForwarded {
        /// The message acknowledged.
        message_id: MessageId,
    },
    /// The request stayed pending past the configured time; a rejected response follows.
    Expired,
    /// The acceptance hook ran (a vendor's configuration management added the groups).
    AcceptanceApplied,
}

impl DomainEvent for Event {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Submitted { .. } => "submitted",
            Self::Authorized => "authorized",
            Self::AuthorizationRefused { .. } => "authorization_refused",
            Self::Forwarded { .. } => "forwarded",
            Self::PartnerStored { .. } => "partner_stored",
            Self::ResponseReceived { .. } => "response_received",
            Self::ResponseDelivered { .. } => "response_delivered",
            Self::Undeliverable => "undeliverable",
            Self::UndeliverableDelivered { .. } => "undeliverable_delivered",
            Self::WithdrawalRequested { .. } => "withdrawal_requested",
            Self::WithdrawalRefused => "withdrawal_refused",
            Self::WithdrawalOutcomeDelivered { .. } => "withdrawal_outcome_delivered",
            Self::Withdrawn => "withdrawn",
            Self::Stored { .. } => "stored",
            Self::Verified { .. } => "verified",
            Self::VerificationFailed { .. } => "verification_failed",
            Self::Delivered { .. } => "delivered",
            Self::Responded { .. } => "responded",
            Self::ResponseForwarded { .. } => "response_forwarded",
            Self::Expired => "expired",
            Self::AcceptanceApplied => "acceptance_applied",
        }
    }
}
