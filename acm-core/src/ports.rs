//! The ports an ACM server needs besides its event store. Each is a small object-safe trait;
//! [`Directory`] is the union of the directory-like ones, implemented for any type that has
//! them all.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::id::{EventId, McServiceId, MessageId, RequestId, SystemId};
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

/// Fresh ids of each kind, for any [`IdSource`].
pub trait Ids: IdSource {
    /// A fresh event id.
    fn event_id(&self) -> EventId {
        EventId::from_uuid(self.next_uuid()).unwrap_or_else(|_| unreachable_v7())
    }
    /// A fresh message id.
    fn message_id(&self) -> MessageId {
        MessageId::from_uuid(self.next_uuid()).unwrap_or_else(|_| unreachable_v7())
    }
    /// A fresh request id.
    fn request_id(&self) -> RequestId {
        RequestId::from_uuid(self.next_uuid()).unwrap_or_else(|_| unreachable_v7())
    }
}

impl<T: IdSource + ?Sized> Ids for T {}

#[cold]
fn unreachable_v7() -> ! {
    // IdSource implementations promise version 7; breaking that is a programming error.
    panic!("IdSource returned a UUID that is not version 7")
}

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
    async fn authorize(&self, request: &AcmRequest) -> Result<(), AuthorizationRefusal>;
}

/// The interconnected partner MC systems.
#[async_trait]
pub trait Interconnections: Send + Sync {
    /// The domains `system` is the group home system for, or `None` when `system` is not an
    /// interconnected partner.
    async fn partner_home_domains(&self, system: &SystemId) -> Option<Vec<SystemId>>;
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
    ) -> Result<Vec<McServiceId>, VerificationFailure>;
}

/// Local policy: manual or automatic processing per request kind and sender.
#[async_trait]
pub trait ProcessingPolicy: Send + Sync {
    /// How requests of `kind` from `from` are processed.
    async fn processing(&self, kind: AcmRequestKind, from: &SystemId) -> Processing;
}

/// Everything an ACM server looks up; implemented for any type with all four parts.
pub trait Directory: Authorizer + Interconnections + Recipients + ProcessingPolicy {}

impl<T: Authorizer + Interconnections + Recipients + ProcessingPolicy> Directory for T {}

/// The pending ACM data notification (TS 23.280): only the user it is for; no content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAcmDataNotification {
    /// The MC service ID of the user who has pending ACM data.
    pub mc_service_id: McServiceId,
}

/// Tells a logged-on user's ACM client that ACM data is pending (steps 7a and 13a).
///
/// Best effort by design: a lost notification is repeated at the user's next log-on, and the
/// data itself stays pending in the store until downloaded.
#[async_trait]
pub trait ClientNotifier: Send + Sync {
    /// Sends the notification.
    async fn notify(&self, notification: PendingAcmDataNotification);
}

/// A notifier that tells nobody.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoNotifier;

#[async_trait]
impl ClientNotifier for NoNotifier {
    async fn notify(&self, _notification: PendingAcmDataNotification) {}
}

/// Why a message did not reach a partner, or was refused there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "error")]
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
        /// The partner's stable problem type.
        problem: String,
    },
}

/// Sends messages to partner ACM servers (steps 3 and 10, withdrawals).
#[async_trait]
pub trait PartnerTransport: Send + Sync {
    /// Sends `message` to `to` and returns its acknowledgement.
    async fn send(
        &self,
        to: &SystemId,
        message: &PartnerMessage,
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

/// A message owed to a partner, as an outbox hands it to the relay. The message itself is
/// rebuilt from the request's state (derived from the log), so what the relay sends is always
/// what the log owes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwedMessage {
    /// The request it belongs to.
    pub request_id: RequestId,
    /// The message's id (the partner deduplicates by it).
    pub message_id: MessageId,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// A durable outbox kept by the store in the same transaction as the events (the `SQLite`
/// store has one). With it the relay claims due messages from the store and counts failed
/// attempts there, so back-off survives a restart; without it the relay works from the
/// in-memory projection. Either way a message is settled by the event that records its
/// acknowledgement.
#[async_trait]
pub trait OutboxLedger: Send + Sync {
    /// Claims up to `limit` messages due at `now`; a claimed message is not claimed again
    /// before `now + lease` unless recorded as failed.
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: usize,
    ) -> Result<Vec<OwedMessage>, crate::store::StoreError>;

    /// Records a failed send: one more attempt, not due before `retry_at`. Returns the
    /// attempts so far, or `None` when the message is no longer owed.
    async fn failed(
        &self,
        message_id: MessageId,
        retry_at: DateTime<Utc>,
    ) -> Result<Option<u32>, crate::store::StoreError>;
}
