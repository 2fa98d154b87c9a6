//! The ACM store port: an event store of ACM events that keeps the views in the events'
//! transaction.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::id::{GlobalPosition, IdempotencyKey, McServiceId, MessageId, RequestId, SystemId};
use crate::store::{EventStore, EventStream, StoreError};

use super::{Digest, TimerKind};

/// A partner message a request records as received, by its id: a message id names one
/// request and one content for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxEntry {
    /// The message.
    pub message_id: MessageId,
    /// The request that records it.
    pub request_id: RequestId,
    /// What it carried.
    pub digest: Digest,
}

/// A submission made with a client's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionEntry {
    /// Who submitted (keys are scoped to their requester).
    pub requester: McServiceId,
    /// The client's key.
    pub key: IdempotencyKey,
    /// The request the submission created.
    pub request_id: RequestId,
    /// What was submitted ([`super::submission_digest`]).
    pub digest: Digest,
}

/// A key that one request holds in a store's views and no other may take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "claim")]
#[non_exhaustive]
pub enum Claim {
    /// A partner message id.
    Message(MessageId),
    /// A requester's idempotency key.
    Submission {
        /// The requester.
        requester: McServiceId,
        /// The key.
        key: IdempotencyKey,
    },
}

impl std::fmt::Display for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Message(id) => write!(f, "message {id}"),
            Self::Submission { requester, key } => {
                write!(f, "idempotency key {key} of {requester}")
            }
        }
    }
}

/// A message owed to a partner, as the outbox hands it to the relay. The message itself is
/// rebuilt from the request's state (derived from the log), so what the relay sends is always
/// what the log owes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwedMessage {
    /// The request it belongs to.
    pub request_id: RequestId,
    /// The message's id (the partner deduplicates by it).
    pub message_id: MessageId,
    /// The partner it is for.
    pub partner: SystemId,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// What became of a send that was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// No answer: due again at `retry_at`.
    Unreachable {
        /// When to try again.
        retry_at: DateTime<Utc>,
    },
    /// The partner refused it: parked, with the partner's problem type, and not due before
    /// `retry_at` (long after an unreachable message would be).
    Refused {
        /// When to try again.
        retry_at: DateTime<Utc>,
        /// The partner's stable problem type.
        problem: String,
    },
}

/// How the outbox stands, for metrics and operators.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStatus {
    /// Messages owed.
    pub depth: u64,
    /// Of those, refused by their partner and parked.
    pub parked: u64,
    /// When the oldest owed message was queued.
    pub oldest_queued_at: Option<DateTime<Utc>>,
    /// Most failed attempts of any owed message.
    pub max_attempts: u32,
}

/// An event store of ACM events with the views an ACM server works from, kept in the same
/// transaction as the events by [`super::changes`]. A plain [`EventStore`] is not one: a
/// server cannot be opened on a store that does not keep them.
///
/// Beyond [`EventStore`]'s guarantees, every implementation gives (checked by
/// `acm_core::testkit::conformance::acm`):
/// - after any sequence of appends, every view equals [`super::of_state`] of the fold of
///   each stream of the log;
/// - an append whose changes [`claim`](super::ViewChanges::claims) a key another request
///   holds is [`StoreError::Taken`] and writes nothing;
/// - a claimed outbox message is not claimed again before its lease runs out, unless a
///   failure is recorded for it.
#[async_trait]
pub trait AcmStore: EventStore<Event> {
    /// Requests pending for `user`, oldest first (request ids are UUID v7).
    async fn pending_for(&self, user: &McServiceId) -> Result<Vec<RequestId>, StoreError>;

    /// How many items are pending, over every user (a request pending for two users counts
    /// twice): for metrics.
    async fn pending_count(&self) -> Result<u64, StoreError>;

    /// Claims up to `limit` owed messages due at `now`, the longest-waiting first; each stays
    /// claimed until `now + lease`.
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<OwedMessage>, StoreError>;

    /// Records a failed send: one more attempt, due again as `failure` says. Returns the
    /// attempts so far, or `None` when the message is no longer owed.
    async fn record_failed_send(
        &self,
        message_id: MessageId,
        failure: SendFailure,
    ) -> Result<Option<u32>, StoreError>;

    /// How the outbox stands.
    async fn outbox_status(&self) -> Result<OutboxStatus, StoreError>;

    /// Up to `limit` accepted requests whose acceptance hook has not run, oldest first.
    async fn due_hooks(&self, limit: usize) -> Result<Vec<RequestId>, StoreError>;

    /// Up to `limit` requests whose `kind` timer started at or before `since`, earliest
    /// first.
    async fn due_timers(
        &self,
        kind: TimerKind,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<RequestId>, StoreError>;

    /// The request that records partner message `message_id`, if any.
    async fn received(&self, message_id: MessageId) -> Result<Option<InboxEntry>, StoreError>;

    /// The submission `requester` made with `key`, if any.
    async fn submission(
        &self,
        requester: &McServiceId,
        key: &IdempotencyKey,
    ) -> Result<Option<SubmissionEntry>, StoreError>;

    /// Every event after `after`, then every event as it commits (including those written
    /// by another process on the same database); never ends unless the store fails.
    fn subscribe(&self, after: GlobalPosition) -> EventStream<'_, Event>;
}

#[async_trait]
impl<S: AcmStore + ?Sized> AcmStore for std::sync::Arc<S> {
    async fn pending_for(&self, user: &McServiceId) -> Result<Vec<RequestId>, StoreError> {
        (**self).pending_for(user).await
    }

    async fn pending_count(&self) -> Result<u64, StoreError> {
        (**self).pending_count().await
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<OwedMessage>, StoreError> {
        (**self).claim_outbox(now, lease, limit).await
    }

    async fn record_failed_send(
        &self,
        message_id: MessageId,
        failure: SendFailure,
    ) -> Result<Option<u32>, StoreError> {
        (**self).record_failed_send(message_id, failure).await
    }

    async fn outbox_status(&self) -> Result<OutboxStatus, StoreError> {
        (**self).outbox_status().await
    }

    async fn due_hooks(&self, limit: usize) -> Result<Vec<RequestId>, StoreError> {
        (**self).due_hooks(limit).await
    }

    async fn due_timers(
        &self,
        kind: TimerKind,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<RequestId>, StoreError> {
        (**self).due_timers(kind, since, limit).await
    }

    async fn received(&self, message_id: MessageId) -> Result<Option<InboxEntry>, StoreError> {
        (**self).received(message_id).await
    }

    async fn submission(
        &self,
        requester: &McServiceId,
        key: &IdempotencyKey,
    ) -> Result<Option<SubmissionEntry>, StoreError> {
        (**self).submission(requester, key).await
    }

    fn subscribe(&self, after: GlobalPosition) -> EventStream<'_, Event> {
        (**self).subscribe(after)
    }
}
