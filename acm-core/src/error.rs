//! Typed refusals of the lifecycle's `decide`.

use serde::{Deserialize, Serialize};

use crate::id::{FunctionalAlias, GroupId, McServiceId, MessageId, SystemId};

/// Why a request is closed to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Closure {
    /// Refused at step 2.
    Refused,
    /// Answered already (the first response wins).
    Answered,
    /// Expired before an answer.
    Expired,
    /// Withdrawn by the sender.
    Withdrawn,
    /// Partner verification failed.
    VerificationFailed,
    /// The partner did not acknowledge it within the send deadline.
    Undeliverable,
}

impl std::fmt::Display for Closure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Refused => "refused",
            Self::Answered => "answered",
            Self::Expired => "expired",
            Self::Withdrawn => "withdrawn",
            Self::VerificationFailed => "failed verification",
            Self::Undeliverable => "undeliverable",
        })
    }
}

/// A command that the lifecycle refuses; nothing is recorded.
///
/// Each variant is a stable, matchable reason: callers never need to read the message text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "error", deny_unknown_fields)]
#[non_exhaustive]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DomainError {
    /// A provision request with no group IDs.
    #[error("the group list is empty")]
    EmptyGroupList,
    /// The same group ID twice in one request.
    #[error("group {group} is listed twice")]
    DuplicateGroup {
        /// The repeated group.
        group: GroupId,
    },
    /// More group IDs than the configured cap.
    #[error("{count} group IDs, at most {max} allowed")]
    TooManyGroups {
        /// How many were sent.
        count: usize,
        /// The configured cap.
        max: usize,
    },
    /// A group membership update or user migration management request with no users.
    #[error("the user list is empty")]
    EmptyUserList,
    /// The same MC service ID twice in one request.
    #[error("user {user} is listed twice")]
    DuplicateUser {
        /// The repeated user.
        user: McServiceId,
    },
    /// More MC service IDs than the configured cap.
    #[error("{count} MC service IDs, at most {max} allowed")]
    TooManyUsers {
        /// How many were sent.
        count: usize,
        /// The configured cap.
        max: usize,
    },
    /// A group membership update lists a user who is not of the partner MC system named.
    #[error("user {user} is not in partner MC system {partner}")]
    UserOutsidePartner {
        /// The user.
        user: McServiceId,
        /// The partner named.
        partner: SystemId,
    },
    /// A user migration management request lists a user who is not of the requester's MC
    /// system: only a system's own users can be authorised to migrate from it.
    #[error("user {user} is not of the requester's MC system")]
    UserNotOfRequesterSystem {
        /// The user.
        user: McServiceId,
    },
    /// A group membership update must name a user or a functional alias of the partner,
    /// not the partner ACM server.
    #[error("a group membership update is addressed to a user or a functional alias")]
    TargetMustBeUserOrAlias,
    /// A partner's per-user results do not answer the users the request lists, one each in
    /// its order (or come with a response that is not an accepted membership update).
    #[error("the per-user results do not match the request's user list")]
    UserResultsMismatch,
    /// The target user or alias is not in the partner MC system named.
    #[error("the target is not in partner MC system {partner}")]
    TargetOutsidePartner {
        /// The partner named.
        partner: SystemId,
    },
    /// A free-text reason longer than allowed.
    #[error("reason is {len} bytes, at most {max} allowed")]
    ReasonTooLong {
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A request with this id exists already.
    #[error("a request with this id exists already")]
    RequestExists,
    /// No such request on this server.
    #[error("unknown request")]
    UnknownRequest,
    /// Delivery or a response for a request that the partner has not stored.
    #[error("the request is not stored at this server")]
    NotStored,
    /// The command belongs to the other side of the exchange.
    #[error("this command is for the other MC system's server")]
    WrongSide,
    /// A message from a system that is not an interconnected partner.
    #[error("{system} is not an interconnected partner MC system")]
    NotInterconnected {
        /// The sending system.
        system: SystemId,
    },
    /// The sender of a follow-up message is not the system that sent the request.
    #[error("{system} did not send this request")]
    NotTheSender {
        /// The sending system.
        system: SystemId,
    },
    /// The request id is reused by another message, or the message id with other content.
    #[error("request id reused by another message")]
    RequestIdReused,
    /// A partner message id that names another request here already.
    #[error("message {message_id} was received for another request")]
    MessageIdReused {
        /// The reused message id.
        message_id: MessageId,
    },
    /// A partner's response names a responder outside the partner's MC system.
    #[error("the response names a responder outside {system}")]
    ResponderNotOfSender {
        /// The sending system.
        system: SystemId,
    },
    /// The user answers in a functional alias they do not hold.
    #[error("{user} does not hold functional alias {alias}")]
    AliasNotHeld {
        /// The alias claimed.
        alias: FunctionalAlias,
        /// The user.
        user: McServiceId,
    },
    /// The user is not one of the request's recipients.
    #[error("{user} is not a recipient of this request")]
    NotARecipient {
        /// The user.
        user: McServiceId,
    },
    /// The user answered a request not delivered to them.
    #[error("the request was not delivered to {user}")]
    NotDelivered {
        /// The user.
        user: McServiceId,
    },
    /// The request is closed.
    #[error("the request is {closure}")]
    Closed {
        /// Why it is closed.
        closure: Closure,
    },
    /// A second, different response to the same request.
    #[error("a response to this request was stored already")]
    ResponseExists,
    /// A message id that does not match what this request expects.
    #[error("unexpected message {message_id}")]
    UnexpectedMessage {
        /// The message id given.
        message_id: MessageId,
    },
    /// Only the requester may do this.
    #[error("{user} is not the requester")]
    NotTheRequester {
        /// The user.
        user: McServiceId,
    },
    /// The response is not stored, or was delivered already.
    #[error("no response is pending")]
    NoPendingResponse,
    /// The request cannot be withdrawn in its present state.
    #[error("the request cannot be withdrawn now")]
    NotWithdrawable,
    /// The request was not accepted, so there is nothing to apply.
    #[error("the request was not accepted")]
    NotAccepted,
    /// The request's pending time (or send deadline) has not run out.
    #[error("the request is not due to expire")]
    NotDue,
    /// The request was acknowledged, answered or closed: the send deadline no longer applies.
    #[error("the request is no longer waiting for the partner's acknowledgement")]
    NotAwaitingAck,
}

impl DomainError {
    /// A stable, machine-readable code for this refusal (the serde tag), for wire formats
    /// such as RFC 9457 problem types.
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmptyGroupList => "empty_group_list",
            Self::DuplicateGroup { .. } => "duplicate_group",
            Self::TooManyGroups { .. } => "too_many_groups",
            Self::EmptyUserList => "empty_user_list",
            Self::DuplicateUser { .. } => "duplicate_user",
            Self::TooManyUsers { .. } => "too_many_users",
            Self::UserOutsidePartner { .. } => "user_outside_partner",
            Self::UserNotOfRequesterSystem { .. } => "user_not_of_requester_system",
            Self::TargetMustBeUserOrAlias => "target_must_be_user_or_alias",
            Self::UserResultsMismatch => "user_results_mismatch",
            Self::TargetOutsidePartner { .. } => "target_outside_partner",
            Self::ReasonTooLong { .. } => "reason_too_long",
            Self::RequestExists => "request_exists",
            Self::UnknownRequest => "unknown_request",
            Self::NotStored => "not_stored",
            Self::WrongSide => "wrong_side",
            Self::NotInterconnected { .. } => "not_interconnected",
            Self::NotTheSender { .. } => "not_the_sender",
            Self::RequestIdReused => "request_id_reused",
            Self::MessageIdReused { .. } => "message_id_reused",
            Self::ResponderNotOfSender { .. } => "responder_not_of_sender",
            Self::AliasNotHeld { .. } => "alias_not_held",
            Self::NotARecipient { .. } => "not_a_recipient",
            Self::NotDelivered { .. } => "not_delivered",
            Self::Closed { .. } => "closed",
            Self::ResponseExists => "response_exists",
            Self::UnexpectedMessage { .. } => "unexpected_message",
            Self::NotTheRequester { .. } => "not_the_requester",
            Self::NoPendingResponse => "no_pending_response",
            Self::NotWithdrawable => "not_withdrawable",
            Self::NotAccepted => "not_accepted",
            Self::NotDue => "not_due",
            Self::NotAwaitingAck => "not_awaiting_ack",
        }
    }
}
