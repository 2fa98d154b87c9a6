//! ACM requests and responses: the information elements of TS 23.280's administrative
//! configuration management, as acm carries them between MC systems.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::id::{FunctionalAlias, GroupId, McServiceId, RequestId, SystemId};

/// Longest free-text reason accepted in a rejection, in bytes.
pub const MAX_REASON_LEN: usize = 1024;

/// Who an ACM request is addressed to in the partner MC system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "snake_case",
    tag = "kind",
    content = "id",
    deny_unknown_fields
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Target {
    /// A selected MC service user of the partner system.
    User(McServiceId),
    /// Whoever currently holds this functional alias in the partner system.
    FunctionalAlias(FunctionalAlias),
    /// The partner ACM server itself: stored for the partner's authorised ACM administrators.
    PartnerServer,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(u) => write!(f, "user {u}"),
            Self::FunctionalAlias(a) => write!(f, "functional alias {a}"),
            Self::PartnerServer => f.write_str("the partner ACM server"),
        }
    }
}

/// The ACM request kinds of TS 23.280 that acm handles. New kinds are new variants here and in
/// [`AcmRequestBody`]; the store and the transports carry bodies opaquely and need no change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AcmRequestKind {
    /// Interconnection group identity provision (TS 23.280 ACM).
    InterconnectionGroupIdentityProvision,
    /// Group membership update across MC systems: users added to or deleted from one MC
    /// service group homed at the requesting system.
    GroupMembershipUpdate,
    /// User migration management (TS 23.280 §10.17.5): users of the requesting system added
    /// to or removed from those authorised to migrate to the partner system.
    UserMigrationManagement,
}

impl AcmRequestKind {
    /// Every kind acm handles.
    pub const ALL: [Self; 3] = [
        Self::InterconnectionGroupIdentityProvision,
        Self::GroupMembershipUpdate,
        Self::UserMigrationManagement,
    ];

    /// The kind's stable name (its serde form), as configuration files and wire formats
    /// spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::InterconnectionGroupIdentityProvision => {
                "interconnection_group_identity_provision"
            }
            Self::GroupMembershipUpdate => "group_membership_update",
            Self::UserMigrationManagement => "user_migration_management",
        }
    }
}

impl fmt::Display for AcmRequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a group membership update adds the listed users to the group or deletes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MembershipOperation {
    /// Add to the group.
    Add,
    /// Delete from the group.
    Delete,
}

/// Whether a user migration management request adds the listed users to those authorised
/// to migrate to the partner system, or removes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MigrationOperation {
    /// Authorise them to migrate (the add user configuration request).
    Add,
    /// Withdraw the authorisation (the remove user configuration request).
    Remove,
}

/// The level of operational urgency of a group membership update (TS 23.280 leaves the
/// levels open; acm's choice is in `docs/procedure.md`). Pending ACM data is downloaded most
/// urgent first; a request without one is [`Urgency::Normal`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Urgency {
    /// Routine administration.
    #[default]
    Normal,
    /// To be handled before routine requests.
    Urgent,
    /// An operational emergency: handled first.
    Emergency,
}

impl fmt::Display for Urgency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Normal => "normal",
            Self::Urgent => "urgent",
            Self::Emergency => "emergency",
        })
    }
}

/// The kind-specific content of an ACM request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
#[non_exhaustive]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AcmRequestBody {
    /// Interconnection group identity provision request: the list of MC service group IDs.
    InterconnectionGroupIdentityProvision {
        /// MC service group IDs, homed at the requesting (primary) MC system.
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<GroupId>))]
        groups: Arc<[GroupId]>,
    },
    /// Group membership update request: one group, the users it concerns, add or delete.
    GroupMembershipUpdate {
        /// The MC service group, homed at the requesting (primary) MC system.
        group: GroupId,
        /// The MC service users of the partner system affected by the operation.
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<McServiceId>))]
        users: Arc<[McServiceId]>,
        /// Add to or delete from the group.
        operation: MembershipOperation,
        /// The level of operational urgency (O).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        urgency: Option<Urgency>,
    },
    /// User migration management request (add or remove user configuration request).
    UserMigrationManagement {
        /// MC service users of the requesting (primary) MC system.
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<McServiceId>))]
        users: Arc<[McServiceId]>,
        /// Add to or remove from the users authorised to migrate to the partner system.
        operation: MigrationOperation,
    },
}

/// The first item that appears twice in `items`.
fn first_duplicate<T: PartialEq + std::hash::Hash + Eq>(items: &[T]) -> Option<&T> {
    if items.len() <= 16 {
        // Short lists (the usual case) need no allocation.
        items
            .iter()
            .enumerate()
            .find(|(i, x)| items[..*i].contains(x))
            .map(|(_, x)| x)
    } else {
        let mut seen = HashSet::with_capacity(items.len());
        items.iter().find(|x| !seen.insert(*x))
    }
}

fn check_users(users: &[McServiceId], limits: &Limits) -> Result<(), DomainError> {
    if users.is_empty() {
        return Err(DomainError::EmptyUserList);
    }
    if users.len() > limits.max_users {
        return Err(DomainError::TooManyUsers {
            count: users.len(),
            max: limits.max_users,
        });
    }
    match first_duplicate(users) {
        Some(user) => Err(DomainError::DuplicateUser { user: user.clone() }),
        None => Ok(()),
    }
}

impl AcmRequestBody {
    /// Builds an interconnection group identity provision body.
    pub fn provision(groups: impl IntoIterator<Item = GroupId>) -> Self {
        Self::InterconnectionGroupIdentityProvision {
            groups: groups.into_iter().collect(),
        }
    }

    /// Builds a group membership update body.
    pub fn membership(
        group: GroupId,
        users: impl IntoIterator<Item = McServiceId>,
        operation: MembershipOperation,
        urgency: Option<Urgency>,
    ) -> Self {
        Self::GroupMembershipUpdate {
            group,
            users: users.into_iter().collect(),
            operation,
            urgency,
        }
    }

    /// Builds a user migration management body.
    pub fn migration(
        users: impl IntoIterator<Item = McServiceId>,
        operation: MigrationOperation,
    ) -> Self {
        Self::UserMigrationManagement {
            users: users.into_iter().collect(),
            operation,
        }
    }

    /// The kind of this body.
    pub fn kind(&self) -> AcmRequestKind {
        match self {
            Self::InterconnectionGroupIdentityProvision { .. } => {
                AcmRequestKind::InterconnectionGroupIdentityProvision
            }
            Self::GroupMembershipUpdate { .. } => AcmRequestKind::GroupMembershipUpdate,
            Self::UserMigrationManagement { .. } => AcmRequestKind::UserMigrationManagement,
        }
    }

    /// The MC service group IDs this body names, each of which must be homed at the
    /// requesting system: a provision's list, a membership update's one group, none for a
    /// migration.
    pub fn groups(&self) -> &[GroupId] {
        match self {
            Self::InterconnectionGroupIdentityProvision { groups } => groups,
            Self::GroupMembershipUpdate { group, .. } => std::slice::from_ref(group),
            Self::UserMigrationManagement { .. } => &[],
        }
    }

    /// The MC service users this body lists (none for a provision).
    pub fn users(&self) -> &[McServiceId] {
        match self {
            Self::InterconnectionGroupIdentityProvision { .. } => &[],
            Self::GroupMembershipUpdate { users, .. }
            | Self::UserMigrationManagement { users, .. } => users,
        }
    }

    /// How urgent the request is; [`Urgency::Normal`] when it does not say.
    pub fn urgency(&self) -> Urgency {
        match self {
            Self::GroupMembershipUpdate {
                urgency: Some(u), ..
            } => *u,
            _ => Urgency::Normal,
        }
    }

    /// Structural checks that need no configuration beyond the limits.
    pub fn validate(&self, limits: &Limits) -> Result<(), DomainError> {
        match self {
            Self::InterconnectionGroupIdentityProvision { groups } => {
                if groups.is_empty() {
                    return Err(DomainError::EmptyGroupList);
                }
                if groups.len() > limits.max_groups {
                    return Err(DomainError::TooManyGroups {
                        count: groups.len(),
                        max: limits.max_groups,
                    });
                }
                match first_duplicate(groups) {
                    Some(group) => Err(DomainError::DuplicateGroup {
                        group: group.clone(),
                    }),
                    None => Ok(()),
                }
            }
            Self::GroupMembershipUpdate { users, .. }
            | Self::UserMigrationManagement { users, .. } => check_users(users, limits),
        }
    }
}

/// Limits configured per ACM server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Most group IDs accepted in one provision request.
    pub max_groups: usize,
    /// Most MC service IDs accepted in one group membership update or user migration
    /// management request.
    #[serde(default = "default_max_users")]
    pub max_users: usize,
}

fn default_max_users() -> usize {
    Limits::default().max_users
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_groups: 64,
            max_users: 256,
        }
    }
}

/// An ACM request as it travels from the primary to the partner MC system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AcmRequest {
    /// acm's request id (a transport-level addition), the same on both systems.
    pub request_id: RequestId,
    /// Requester's MC service ID (M); taken from the access token, never from a request body.
    pub requester: McServiceId,
    /// Requester's functional alias (O).
    pub requester_alias: Option<FunctionalAlias>,
    /// The partner MC system the request is for.
    pub partner: SystemId,
    /// Who in the partner system is to handle it.
    pub target: Target,
    /// Kind-specific content.
    pub body: AcmRequestBody,
}

impl AcmRequest {
    /// The structural rules both systems check: the body's (list sizes, duplicates), and
    /// that a group membership update names a user or a functional alias, not the partner
    /// ACM server.
    pub fn validate(&self, limits: &Limits) -> Result<(), DomainError> {
        self.body.validate(limits)?;
        if matches!(self.body, AcmRequestBody::GroupMembershipUpdate { .. })
            && matches!(self.target, Target::PartnerServer)
        {
            return Err(DomainError::TargetMustBeUserOrAlias);
        }
        Ok(())
    }
}

/// Who answered an ACM request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Responder {
    /// An authorised MC service user of the partner system (manual processing).
    User {
        /// Responder's MC service ID (M).
        id: McServiceId,
        /// Responder's functional alias (O).
        alias: Option<FunctionalAlias>,
    },
    /// The partner ACM server itself (automatic processing, verification failure, expiry).
    Server {
        /// The partner MC system.
        system: SystemId,
    },
}

/// Why a partner's verification of a received request failed (step 4a).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "failure", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum VerificationFailure {
    /// The target MC service user does not exist in the partner system.
    UnknownTarget {
        /// The user named.
        user: McServiceId,
    },
    /// The target user exists but may not receive ACM requests of this kind.
    TargetMayNotReceive {
        /// The user named.
        user: McServiceId,
    },
    /// Nobody currently holds the target functional alias.
    AliasNotHeld {
        /// The alias named.
        alias: FunctionalAlias,
    },
    /// The partner ACM server has no authorised ACM administrator to store the request for.
    NoAdministrator,
    /// The target resolved to users, but none of them is a user of this system who may
    /// receive the request (an alias held only by such users, say).
    NoEligibleRecipient,
    /// The target is not in the partner MC system.
    TargetNotInThisSystem,
    /// The request names another MC system as its partner.
    NotAddressedToThisSystem {
        /// The system the request names.
        partner: SystemId,
    },
    /// The requester is not a user of the MC system that forwarded the request.
    RequesterNotOfSender,
    /// A group is not homed at the primary MC system.
    GroupNotHomedAtPrimary {
        /// The first such group.
        group: GroupId,
    },
    /// The body breaks a structural rule (empty, duplicate or too many group IDs).
    Malformed {
        /// The rule broken.
        error: DomainError,
    },
    /// This system is configured not to accept ACM requests of this kind.
    KindNotAccepted {
        /// The kind refused.
        kind: AcmRequestKind,
    },
    /// A group membership update's group is not known here as an interconnection group.
    NotAnInterconnectionGroup {
        /// The group named.
        group: GroupId,
    },
    /// None of the users a group membership update lists is a user of this system.
    NoListedUserHere,
    /// A user migration management request lists a user who is not of the sending system.
    UserNotOfSender {
        /// The first such user.
        user: McServiceId,
    },
}

impl fmt::Display for VerificationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownTarget { user } => write!(f, "unknown target user {user}"),
            Self::TargetMayNotReceive { user } => {
                write!(f, "target user {user} may not receive this request")
            }
            Self::AliasNotHeld { alias } => write!(f, "nobody holds functional alias {alias}"),
            Self::NoAdministrator => f.write_str("no authorised ACM administrator"),
            Self::NoEligibleRecipient => {
                f.write_str("no user the target resolves to may receive this request")
            }
            Self::TargetNotInThisSystem => f.write_str("target is not in this MC system"),
            Self::NotAddressedToThisSystem { partner } => {
                write!(f, "request is addressed to {partner}")
            }
            Self::RequesterNotOfSender => {
                f.write_str("requester is not a user of the sending MC system")
            }
            Self::GroupNotHomedAtPrimary { group } => {
                write!(f, "group {group} is not homed at the primary MC system")
            }
            Self::Malformed { error } => write!(f, "malformed request: {error}"),
            Self::KindNotAccepted { kind } => write!(f, "{kind} requests are not accepted here"),
            Self::NotAnInterconnectionGroup { group } => {
                write!(f, "group {group} is not an interconnection group here")
            }
            Self::NoListedUserHere => f.write_str("no listed user is a user of this MC system"),
            Self::UserNotOfSender { user } => {
                write!(f, "user {user} is not of the sending MC system")
            }
        }
    }
}

/// Why a request was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RejectionReason {
    /// A partner user rejected it, with an optional free-text reason.
    User {
        /// The user's words, at most [`MAX_REASON_LEN`] bytes.
        text: Option<String>,
    },
    /// A configured automatic-processing rule rejected it.
    Policy,
    /// The partner's verification failed.
    Verification {
        /// What failed.
        failure: VerificationFailure,
    },
    /// It stayed pending past the configured time.
    Expired,
}

/// The result carried by an ACM response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "result", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Outcome {
    /// The partner accepted the request (for a provision: the groups will be configured).
    Accepted,
    /// The partner rejected the request.
    Rejected {
        /// Why.
        reason: RejectionReason,
    },
}

impl Outcome {
    /// Whether this outcome is an acceptance.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted)
    }
}

/// Why the partner did not apply a group membership update to one listed user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum UserRefusal {
    /// The user is of another MC system than the one that received the update.
    NotOfThisSystem,
    /// This MC system has no such user.
    UnknownUser,
}

impl fmt::Display for UserRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotOfThisSystem => "not a user of this MC system",
            Self::UnknownUser => "unknown user",
        })
    }
}

/// What an accepted group membership update did for one listed user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "result", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum UserResult {
    /// The operation applies to this user.
    Applied {
        /// The user.
        user: McServiceId,
    },
    /// The operation does not apply to this user.
    Refused {
        /// The user.
        user: McServiceId,
        /// Why.
        reason: UserRefusal,
    },
}

impl UserResult {
    /// The user this result is for.
    pub fn user(&self) -> &McServiceId {
        match self {
            Self::Applied { user } | Self::Refused { user, .. } => user,
        }
    }
}

/// An ACM response, for example an interconnection group identity provision response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AcmResponse {
    /// Who answered (responder MC service ID and optional functional alias, or the server).
    pub responder: Responder,
    /// Accepted or rejected, with the reason.
    pub outcome: Outcome,
    /// An accepted group membership update's result per listed user, in the order of the
    /// request's list; empty for every other response.
    #[serde(default, skip_serializing_if = "<[UserResult]>::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<UserResult>))]
    pub user_results: Arc<[UserResult]>,
}

impl AcmResponse {
    /// A response with no per-user results.
    pub fn new(responder: Responder, outcome: Outcome) -> Self {
        Self {
            responder,
            outcome,
            user_results: Arc::from([]),
        }
    }
}

impl fmt::Display for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User { id, alias: None } => id.fmt(f),
            Self::User {
                id,
                alias: Some(alias),
            } => write!(f, "{id} as {alias}"),
            Self::Server { system } => write!(f, "the ACM server of {system}"),
        }
    }
}

impl fmt::Display for RejectionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User { text: None } => f.write_str("by the user"),
            Self::User { text: Some(t) } => write!(f, "by the user: {t:?}"),
            Self::Policy => f.write_str("by local policy"),
            Self::Verification { failure } => write!(f, "verification failed: {failure}"),
            Self::Expired => f.write_str("expired"),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Accepted => f.write_str("accepted"),
            Self::Rejected { reason } => write!(f, "rejected ({reason})"),
        }
    }
}

/// A partner user's answer to a delivered request (step 9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum Decision {
    /// Accept the request.
    Accept,
    /// Reject the request.
    Reject {
        /// Optional free text, at most [`MAX_REASON_LEN`] bytes.
        reason: Option<String>,
    },
}

/// How the partner system processes an ACM request kind (local policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Processing {
    /// Store, notify, download, a user responds.
    #[default]
    Manual,
    /// The ACM server accepts on receipt.
    AutoAccept,
    /// The ACM server rejects on receipt.
    AutoReject,
    /// This system does not accept the kind at all: a request of it fails verification
    /// ([`VerificationFailure::KindNotAccepted`]) and goes back rejected.
    NotAccepted,
}

/// Why the primary ACM server refused a submission at step 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case", tag = "refusal")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AuthorizationRefusal {
    /// The system named is not an interconnected partner.
    #[error("{partner} is not an interconnected partner MC system")]
    NotAPartner {
        /// The system named.
        partner: SystemId,
    },
    /// The user may not provide this kind of ACM request to that partner.
    #[error("{user} may not provide this ACM request to {partner}")]
    NotAuthorized {
        /// The requester.
        user: McServiceId,
        /// The partner named.
        partner: SystemId,
    },
    /// The primary is not the home system of a group in the list.
    #[error("group {group} is not homed in this MC system")]
    GroupNotHomedHere {
        /// The first such group.
        group: GroupId,
    },
    /// The requester asked to send as a functional alias they do not hold in this system.
    #[error("{user} does not hold functional alias {alias}")]
    AliasNotHeld {
        /// The functional alias claimed.
        alias: FunctionalAlias,
        /// The requester.
        user: McServiceId,
    },
}

impl AuthorizationRefusal {
    /// A stable, machine-readable code for this refusal (the serde tag), for wire formats.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAPartner { .. } => "not_a_partner",
            Self::NotAuthorized { .. } => "not_authorized",
            Self::GroupNotHomedHere { .. } => "group_not_homed_here",
            Self::AliasNotHeld { .. } => "alias_not_held",
        }
    }
}
