//! The ports an ACM server needs besides its event store. Each is a small object-safe trait;
//! [`Directory`] is the union of the directory-like ones, implemented for any type that has
//! them all.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::DomainError;
use crate::id::{EventId, GroupId, McServiceId, MessageId, RequestId, SystemId};
use crate::message::{PartnerAck, PartnerMessage};
use crate::request::{
    AcmRequest, AcmRequestKind, AcmResponse, AuthorizationRefusal, Processing, Target,
    VerificationFailure,
};

/// The time, injected.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Source of fresh identifiers, injected so that tests can be deterministic.
pub trait IdSource: Send + Sync {
    /// A fresh version 7 UUID.
    fn next_uuid(&self) -> Uuid;
}

/// An [`IdSource`] broke its promise: the UUID it gave is not version 7. Nothing was
/// recorded; the vendor's id source needs fixing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the id source gave {uuid}, which is not a version 7 UUID")]
pub struct IdSourceError {
    /// What it gave.
    pub uuid: Uuid,
}

/// Fresh ids of each kind, for any [`IdSource`], checked: a vendor source that gives a UUID
/// of another version is an error, never a panic.
pub trait Ids: IdSource {
    /// A fresh event id.
    fn event_id(&self) -> Result<EventId, IdSourceError> {
        let uuid = self.next_uuid();
        EventId::from_uuid(uuid).map_err(|_| IdSourceError { uuid })
    }
    /// A fresh message id.
    fn message_id(&self) -> Result<MessageId, IdSourceError> {
        let uuid = self.next_uuid();
        MessageId::from_uuid(uuid).map_err(|_| IdSourceError { uuid })
    }
    /// A fresh request id.
    fn request_id(&self) -> Result<RequestId, IdSourceError> {
        let uuid = self.next_uuid();
        RequestId::from_uuid(uuid).map_err(|_| IdSourceError { uuid })
    }
}

impl<T: IdSource + ?Sized> Ids for T {}

/// Random version 7 UUIDs (time-ordered, from the system clock and the OS's randomness).
#[derive(Debug, Clone, Copy, Default)]
pub struct V7Ids;

impl IdSource for V7Ids {
    fn next_uuid(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// Deterministic version 7 UUIDs from a counter, for tests, benchmarks and replayable demos.
#[derive(Debug, Default)]
pub struct SequentialIds {
    next: AtomicU64,
    seed: u16,
}

impl SequentialIds {
    /// A sequence; different seeds give disjoint ids.
    pub fn new(seed: u16) -> Self {
        Self {
            next: AtomicU64::new(1),
            seed,
        }
    }
}

impl IdSource for SequentialIds {
    fn next_uuid(&self) -> Uuid {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut random = [0u8; 10];
        random[..2].copy_from_slice(&self.seed.to_be_bytes());
        random[2..].copy_from_slice(&n.to_be_bytes());
        uuid::Builder::from_unix_timestamp_millis(n, &random).into_uuid()
    }
}

/// A directory could not be asked (its server is down, a query timed out): not a verdict.
/// The ACM server records nothing final on it and answers
/// [`ServiceError::Unavailable`](crate::server::ServiceError::Unavailable); a partner message
/// is then not acknowledged, so its sender tries again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("directory unavailable: {detail}")]
pub struct DirectoryError {
    /// What failed, for the operator.
    pub detail: String,
}

impl DirectoryError {
    /// A directory failure described by `detail`.
    pub fn new(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
        }
    }
}

/// A directory's answer: the inner result is the verdict, the outer one whether the
/// directory could be asked at all (in the manner of a nested result: a refusal is a
/// value, an outage an error).
pub type Lookup<T, R> = Result<Result<T, R>, DirectoryError>;

/// Step 2: may this user provide this kind of ACM request to this partner system?
///
/// The ACM server checks what its configuration already knows before it asks: that the
/// partner is interconnected ([`Interconnections`]), that every group is homed in this MC
/// system (`ServerConfig::home_domains`), and that the requester holds the functional alias
/// they submit as ([`Recipients`]). A request that fails those never reaches the authorizer;
/// what is left to it is the user's authorisation alone.
#[async_trait]
pub trait Authorizer: Send + Sync {
    /// `Ok` when `request.requester` is authorised to provide this kind of ACM request to
    /// `request.partner` (TS 23.280's pre-condition on the sending user); otherwise why not,
    /// typically [`AuthorizationRefusal::NotAuthorized`].
    async fn authorize(&self, request: &AcmRequest) -> Lookup<(), AuthorizationRefusal>;
}

/// The interconnected partner MC systems.
#[async_trait]
pub trait Interconnections: Send + Sync {
    /// The domains `system` is the group home system for, or `None` when `system` is not an
    /// interconnected partner.
    async fn partner_home_domains(
        &self,
        system: &SystemId,
    ) -> Result<Option<Vec<SystemId>>, DirectoryError>;

    /// Whether `group`, homed at partner `from`, is known in this MC system as an
    /// interconnection group (a group membership update names only such a group).
    async fn is_interconnection_group(
        &self,
        group: &GroupId,
        from: &SystemId,
    ) -> Result<bool, DirectoryError>;
}

/// Users of this MC system: who exists, who may receive, who holds a functional alias
/// (in TS 23.280, learnt from the functional alias controlling server).
#[async_trait]
pub trait Recipients: Send + Sync {
    /// The users a target resolves to in this system, or why it does not resolve.
    async fn resolve(
        &self,
        target: &Target,
        kind: AcmRequestKind,
    ) -> Lookup<Vec<McServiceId>, VerificationFailure>;

    /// Whether `user` is a user of this system (whether or not they may receive ACM
    /// requests of `kind`): asked for each user a group membership update lists.
    async fn is_user(
        &self,
        user: &McServiceId,
        kind: AcmRequestKind,
    ) -> Result<bool, DirectoryError> {
        Ok(
            match self.resolve(&Target::User(user.clone()), kind).await? {
                Ok(_) | Err(VerificationFailure::TargetMayNotReceive { .. }) => true,
                Err(_) => false,
            },
        )
    }
}

/// Local policy: manual or automatic processing per request kind and sender.
#[async_trait]
pub trait ProcessingPolicy: Send + Sync {
    /// How requests of `kind` from `from` are processed.
    async fn processing(
        &self,
        kind: AcmRequestKind,
        from: &SystemId,
    ) -> Result<Processing, DirectoryError>;
}

/// Everything an ACM server looks up; implemented for any type with all four parts.
pub trait Directory: Authorizer + Interconnections + Recipients + ProcessingPolicy {}

impl<T: Authorizer + Interconnections + Recipients + ProcessingPolicy> Directory for T {}

/// The pending ACM data notification (TS 23.280): only the user it is for; no content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingAcmDataNotification {
    /// The MC service ID of the user who has pending ACM data.
    pub mc_service_id: McServiceId,
}

/// Why a message did not reach a partner, or was refused there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "error")]
#[non_exhaustive]
pub enum TransportError {
    /// No answer (network, time-out, partner down): try again later.
    #[error("partner {system} unreachable: {detail}")]
    Unreachable {
        /// The partner.
        system: SystemId,
        /// What happened.
        detail: String,
    },
    /// The partner refused the message; retrying the same message will not help until its
    /// configuration changes.
    #[error("partner {system} refused the message: {problem}")]
    Refused {
        /// The partner.
        system: SystemId,
        /// Why.
        problem: PartnerProblem,
    },
}

/// Why a partner refused a message, as its ACM server said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "problem")]
#[non_exhaustive]
pub enum PartnerProblem {
    /// The partner's lifecycle refused it (its stable code is [`DomainError::code`]).
    #[error("{0}")]
    Domain(DomainError),
    /// A refusal the partner named by a problem type acm does not know.
    #[error("{problem_type}")]
    Other {
        /// The partner's problem type (RFC 9457 `type`).
        problem_type: String,
    },
}

impl PartnerProblem {
    /// A stable code: the domain error's code, or the partner's problem type.
    pub fn code(&self) -> &str {
        match self {
            Self::Domain(error) => error.code(),
            Self::Other { problem_type } => problem_type,
        }
    }
}

/// Sends messages to partner ACM servers (steps 3 and 10, withdrawals).
#[async_trait]
pub trait PartnerTransport: Send + Sync {
    /// Sends `message` to `to` and returns its acknowledgement. A send that has no answer
    /// within `deadline` must give up with [`TransportError::Unreachable`]: the relay's claim
    /// on the message lasts only a little longer.
    async fn send(
        &self,
        to: &SystemId,
        message: &PartnerMessage,
        deadline: std::time::Duration,
    ) -> Result<PartnerAck, TransportError>;
}

/// Called once a partner user (or the partner server's policy) accepts a request, so that a
/// vendor's configuration management server can add the groups to the users' profiles.
///
/// Called at least once per accepted request (it is driven from the log, like the outbox); an
/// error makes it run again at the next tick.
#[async_trait]
pub trait AcceptanceHook: Send + Sync {
    /// The request was accepted.
    async fn accepted(&self, request: &AcmRequest, response: &AcmResponse)
    -> Result<(), HookError>;
}

/// A failed acceptance hook; it will be called again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("acceptance hook failed: {0}")]
pub struct HookError(pub String);

/// The default hook: does nothing and records nothing outside the log.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHook;

#[async_trait]
impl AcceptanceHook for NoHook {
    async fn accepted(&self, _: &AcmRequest, _: &AcmResponse) -> Result<(), HookError> {
        Ok(())
    }
}
