//! The server-to-server protocol: the messages one ACM server sends a partner ACM server,
//! and the partner's acknowledgements.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::id::{MessageId, RequestId};
use crate::request::{AcmRequest, AcmResponse};

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

/// What a partner ACM server answered to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PartnerAck {
    /// The message is durably stored (for a request: received, not yet judged — step 4b).
    Stored,
    /// The request was withdrawn.
    Withdrawn,
    /// The request could not be withdrawn: delivered or answered already.
    TooLate,
}
