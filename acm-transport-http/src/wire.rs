//! The wire contract: the JSON bodies of the client API and of the partner API, shared by the
//! servers that read them and the clients that write them.
//!
//! Every body a server reads refuses unknown fields, so a misspelt or forged field (a sender
//! system, a requester) is an error instead of being silently dropped.

use acm_core::{
    AcmRequest, AcmRequestBody, AcmRequestKind, AcmResponse, DownloadedItem, FunctionalAlias,
    GroupId, McServiceId, MembershipOperation, MessageId, MigrationOperation, PartnerAck,
    RequestId, SystemId, Target, Urgency,
};
use serde::{Deserialize, Serialize};

/// Routes of the client API (ACM client → its own ACM server).
pub mod client_routes {
    /// Submit an interconnection group identity provision request (step 1).
    pub const PROVISION_REQUESTS: &str =
        "/acm/v1/interconnection-group-identity-provision/requests";
    /// Submit a group membership update request (step 1).
    pub const MEMBERSHIP_REQUESTS: &str = "/acm/v1/group-membership-update/requests";
    /// Submit a user migration management request: the add or remove user configuration
    /// request (step 1).
    pub const MIGRATION_REQUESTS: &str = "/acm/v1/user-migration-management/requests";
    /// One request as its requester sees it (`GET`).
    pub const REQUEST: &str = "/acm/v1/requests/{request_id}";
    /// Withdraw one's own request (`POST`).
    pub const WITHDRAWAL: &str = "/acm/v1/requests/{request_id}/withdrawal";
    /// Answer a delivered partner request (step 9, `POST`).
    pub const RESPONSE: &str = "/acm/v1/requests/{request_id}/response";
    /// The pending ACM data download (steps 7b–8, 13b–14, `GET`).
    pub const PENDING: &str = "/acm/v1/pending-acm-data";
    /// The acknowledgement of a download (`POST`).
    pub const ACKNOWLEDGEMENT: &str = "/acm/v1/pending-acm-data/acknowledgement";
    /// The pending ACM data notification stream (steps 6/12 log-on, 7a/13a, `GET`, SSE).
    pub const NOTIFICATIONS: &str = "/acm/v1/pending-acm-data/notifications";
    /// The name of the SSE event that carries a pending ACM data notification.
    pub const NOTIFICATION_EVENT: &str = "pending-acm-data-notification";
}

/// Routes of the partner API (ACM server → partner ACM server, mutual TLS).
pub mod partner_routes {
    /// Step 3 → 4a/4b: a forwarded interconnection group identity provision request.
    pub const PROVISION_REQUESTS: &str =
        "/acm-partner/v1/interconnection-group-identity-provision/requests";
    /// Step 10 → 11: a forwarded interconnection group identity provision response.
    pub const PROVISION_RESPONSES: &str =
        "/acm-partner/v1/interconnection-group-identity-provision/responses";
    /// A requester's withdrawal.
    pub const WITHDRAWALS: &str = "/acm-partner/v1/withdrawals";
}

/// Operations routes, on the client listener.
pub mod ops_routes {
    /// Liveness.
    pub const HEALTHZ: &str = "/healthz";
    /// Readiness: the store answers.
    pub const READYZ: &str = "/readyz";
    /// Prometheus metrics.
    pub const METRICS: &str = "/metrics";
    /// The `OpenAPI` document.
    pub const OPENAPI: &str = "/openapi.json";
}

/// The header that carries a client's idempotency key on a submission.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Step 1: an interconnection group identity provision request as a client submits it. The
/// requester is the token's user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "partner": "mc-b.example",
    "target": {"kind": "user", "id": "sip:bob@mc-b.example"},
    "groups": ["sip:fire-ops@mc-a.example"]
}))]
pub struct ProvisionSubmission {
    /// The partner MC system.
    pub partner: SystemId,
    /// Who in the partner system is to handle it.
    pub target: Target,
    /// The MC service group IDs, homed in the requester's MC system.
    pub groups: Vec<GroupId>,
    /// The requester's functional alias, if they send as one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_alias: Option<FunctionalAlias>,
    /// The requester; when given it must be the token's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<McServiceId>,
}

/// Step 1: a group membership update request, as the client writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "partner": "mc-b.example",
    "target": {"kind": "user", "id": "sip:bob@mc-b.example"},
    "group": "sip:fire-ops@mc-a.example",
    "users": ["sip:carol@mc-b.example"],
    "operation": "add",
    "urgency": "urgent"
}))]
pub struct MembershipSubmission {
    /// The partner MC system.
    pub partner: SystemId,
    /// A user or functional alias of the partner system.
    pub target: Target,
    /// The MC service group, homed in the requester's MC system.
    pub group: GroupId,
    /// The partner system's users the operation is for.
    pub users: Vec<McServiceId>,
    /// `add` to or `delete` from the group.
    pub operation: MembershipOperation,
    /// `normal`, `urgent` or `emergency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgency: Option<Urgency>,
    /// The requester's functional alias, if they send as one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_alias: Option<FunctionalAlias>,
    /// The requester; when given it must be the token's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<McServiceId>,
}

/// Step 1: a user migration management request, as the client writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "partner": "mc-b.example",
    "target": {"kind": "user", "id": "sip:bob@mc-b.example"},
    "users": ["sip:erin@mc-a.example"],
    "operation": "add"
}))]
pub struct MigrationSubmission {
    /// The partner MC system.
    pub partner: SystemId,
    /// Who in the partner system is to answer.
    pub target: Target,
    /// Users of the requester's MC system.
    pub users: Vec<McServiceId>,
    /// `add` to or `remove` from those authorised to migrate to the partner.
    pub operation: MigrationOperation,
    /// The requester's functional alias, if they send as one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_alias: Option<FunctionalAlias>,
    /// The requester; when given it must be the token's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<McServiceId>,
}

impl MembershipSubmission {
    /// The request body it asks for.
    pub fn body(&self) -> AcmRequestBody {
        AcmRequestBody::membership(
            self.group.clone(),
            self.users.iter().cloned(),
            self.operation,
            self.urgency,
        )
    }
}

impl MigrationSubmission {
    /// The request body it asks for.
    pub fn body(&self) -> AcmRequestBody {
        AcmRequestBody::migration(self.users.iter().cloned(), self.operation)
    }
}

/// What a queued submission gets (steps 2–3 passed: authorised, queued for the partner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubmissionAccepted {
    /// The request's id, the same on both MC systems.
    pub request_id: RequestId,
    /// Always `queued`: authorised and owed to the partner.
    #[schema(schema_with = words::queued)]
    pub status: String,
}

/// Step 9: a recipient's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseSubmission {
    /// `accept` or `reject`.
    pub decision: DecisionKind,
    /// Free text for a rejection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The functional alias the user answers as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responder_alias: Option<FunctionalAlias>,
}

/// Accept or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// Accept the request.
    Accept,
    /// Reject it.
    Reject,
}

/// What a withdrawal gets: the withdrawal is owed to the partner, whose answer arrives as
/// pending ACM data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WithdrawalAccepted {
    /// The request.
    pub request_id: RequestId,
    /// Always `withdrawal_requested`.
    #[schema(schema_with = words::withdrawal_requested)]
    pub status: String,
}

/// The acknowledgement of a download: the items the client has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Acknowledgement {
    /// The items, as the download listed them.
    pub items: Vec<DownloadedItem>,
}

/// What an acknowledgement recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AcknowledgementRecorded {
    /// Events recorded (0 for a repeat).
    pub recorded: usize,
}

/// Step 3 on the wire: a request forwarded to the partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardedRequest {
    /// Deduplication key.
    pub message_id: MessageId,
    /// The request.
    pub request: AcmRequest,
}

/// Step 10 on the wire: a response forwarded to the primary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardedResponse {
    /// Deduplication key.
    pub message_id: MessageId,
    /// The request answered.
    pub request_id: RequestId,
    /// The response.
    pub response: AcmResponse,
}

/// A withdrawal on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardedWithdrawal {
    /// Message id.
    pub message_id: MessageId,
    /// The request to withdraw.
    pub request_id: RequestId,
}

/// A partner's acknowledgement: TS 23.280's process indication, "received and stored".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerAckBody {
    /// `stored`, `withdrawn` or `too_late`.
    pub ack: PartnerAck,
}

/// One request as its requester sees it on their own ACM server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RequestStatus {
    /// The request's id.
    pub request_id: RequestId,
    /// The ACM request kind.
    pub kind: AcmRequestKind,
    /// Where it stands, in one word: `refused`, `queued` (owed to the partner),
    /// `stored_at_partner` (step 4b), `undeliverable`, `withdrawn` or `answered`.
    #[schema(schema_with = words::stage)]
    pub stage: String,
    /// The partner MC system.
    pub partner: SystemId,
    /// Who there.
    pub target: Target,
    /// The MC service group IDs (a membership update's one group; none for a migration).
    pub groups: Vec<GroupId>,
    /// The MC service IDs a membership update or a migration lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<McServiceId>,
    /// When it was submitted.
    pub submitted_at: chrono::DateTime<chrono::Utc>,
    /// Step 2's refusal code, when refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = words::refusal_or_null)]
    pub refusal: Option<String>,
    /// `none`, `requested`, `withdrawn` or `too_late`.
    #[schema(schema_with = words::withdrawal)]
    pub withdrawal: String,
    /// The partner's response, once stored here (step 11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<AcmResponse>,
    /// Whether the response (or the undeliverable notice) was delivered to the requester
    /// (step 14).
    pub delivered: bool,
}

impl From<ForwardedRequest> for acm_core::PartnerMessage {
    fn from(body: ForwardedRequest) -> Self {
        Self::Request {
            message_id: body.message_id,
            request: std::sync::Arc::new(body.request),
        }
    }
}

impl From<ForwardedResponse> for acm_core::PartnerMessage {
    fn from(body: ForwardedResponse) -> Self {
        Self::Response {
            message_id: body.message_id,
            request_id: body.request_id,
            response: body.response,
        }
    }
}

impl From<ForwardedWithdrawal> for acm_core::PartnerMessage {
    fn from(body: ForwardedWithdrawal) -> Self {
        Self::Withdrawal {
            message_id: body.message_id,
            request_id: body.request_id,
        }
    }
}

/// The codes of [`acm_core::AuthorizationRefusal::code`], as a schema: a status's `refusal`
/// and a problem's.
pub(crate) fn refusal_codes() -> utoipa::openapi::ObjectBuilder {
    words::refusal()
}

/// The words that some string members of the bodies take, as schemas: the members are
/// strings in Rust, and the schema says which ones the server writes.
mod words {
    use utoipa::openapi::schema::SchemaType;
    use utoipa::openapi::{ObjectBuilder, Type};

    fn one_of(words: &[&str]) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(words.iter().copied()))
    }

    pub(super) fn queued() -> ObjectBuilder {
        one_of(&["queued"])
    }

    pub(super) fn withdrawal_requested() -> ObjectBuilder {
        one_of(&["withdrawal_requested"])
    }

    pub(super) fn stage() -> ObjectBuilder {
        one_of(&[
            "refused",
            "queued",
            "stored_at_partner",
            "undeliverable",
            "withdrawn",
            "answered",
        ])
    }

    pub(super) fn withdrawal() -> ObjectBuilder {
        one_of(&["none", "requested", "withdrawn", "too_late"])
    }

    /// `AuthorizationRefusal::code()`'s words.
    const REFUSALS: &[&str] = &[
        "not_a_partner",
        "not_authorized",
        "group_not_homed_here",
        "alias_not_held",
    ];

    pub(super) fn refusal() -> ObjectBuilder {
        one_of(REFUSALS)
    }

    /// serde reads a `null` as no refusal.
    pub(super) fn refusal_or_null() -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .enum_values(Some(
                REFUSALS
                    .iter()
                    .map(|w| serde_json::Value::from(*w))
                    .chain([serde_json::Value::Null]),
            ))
    }
}
