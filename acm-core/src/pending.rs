//! Pending ACM data: what a pending ACM data download returns to a user (TS 23.280).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::{McServiceId, SystemId};
use crate::request::{AcmRequest, AcmResponse};

/// One item of pending ACM data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "item")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PendingItem {
    /// An ACM request from a partner system waiting for this user's answer (step 8).
    Request {
        /// The request (for a provision: the interconnection group IDs).
        #[cfg_attr(feature = "openapi", schema(value_type = AcmRequest))]
        request: Arc<AcmRequest>,
        /// The primary system it came from.
        from: SystemId,
        /// When this server stored it.
        stored_at: DateTime<Utc>,
    },
    /// The response to this user's own request (step 14).
    Response {
        /// The request answered.
        #[cfg_attr(feature = "openapi", schema(value_type = AcmRequest))]
        request: Arc<AcmRequest>,
        /// The partner's response.
        response: AcmResponse,
    },
    /// The partner never acknowledged the requester's request within the send deadline: it
    /// was not delivered (a late acknowledgement does not change that).
    Undeliverable {
        /// The request.
        #[cfg_attr(feature = "openapi", schema(value_type = AcmRequest))]
        request: Arc<AcmRequest>,
    },
    /// The partner's answer to the requester's withdrawal: withdrawn, or too late (the request
    /// was delivered or answered already; its response follows as usual).
    WithdrawalOutcome {
        /// The request the requester asked to withdraw.
        #[cfg_attr(feature = "openapi", schema(value_type = AcmRequest))]
        request: Arc<AcmRequest>,
        /// Whether the partner withdrew it.
        withdrawn: bool,
    },
}

impl PendingItem {
    /// The request this item is about.
    pub fn request(&self) -> &Arc<AcmRequest> {
        match self {
            Self::Request { request, .. }
            | Self::Response { request, .. }
            | Self::Undeliverable { request }
            | Self::WithdrawalOutcome { request, .. } => request,
        }
    }
}

/// The pending ACM data download response: the user and all ACM data pending for them, of
/// every kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingAcmData {
    /// The user.
    pub mc_service_id: McServiceId,
    /// Everything pending: the most urgent first (a group membership update may carry an
    /// urgency; everything else is normal), then the oldest request first.
    pub items: Vec<PendingItem>,
}
