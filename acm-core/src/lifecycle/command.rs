//! What may be asked of an ACM request, and the facts a command carries.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::id::{FunctionalAlias, IdempotencyKey, McServiceId, MessageId, SystemId};
use crate::request::{
    AcmRequest, AcmResponse, AuthorizationRefusal, Decision, Limits, Processing,
    VerificationFailure,
};

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
    /// For a group membership update: whether its group is known here as an
    /// interconnection group (true for the other kinds).
    pub group_known: bool,
    /// For a group membership update: the listed users of this system that the directory
    /// does not know.
    pub unknown_users: Vec<McServiceId>,
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
        /// The client's key for this submission, if it gave one.
        idempotency_key: Option<IdempotencyKey>,
    },
    /// The send deadline ran out before the partner acknowledged the request.
    GiveUp {
        /// Now.
        now: DateTime<Utc>,
        /// Configured send deadline, counted from submission.
        deadline: Duration,
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
        /// Who downloaded it.
        to: McServiceId,
        /// The response was delivered.
        response: bool,
        /// The undeliverable notice was delivered.
        undeliverable: bool,
        /// The withdrawal's outcome was delivered.
        withdrawal_outcome: bool,
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
