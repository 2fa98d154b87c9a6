//! The event store port: envelopes, expected versions, typed conflicts, streamed reads.

use std::borrow::Cow;
use std::fmt;
use std::pin::Pin;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_core::Stream;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::id::{
    EventId, GlobalPosition, McServiceId, MessageId, RequestId, StreamId, SystemId, Version,
};

/// An event type that a store can hold.
pub trait DomainEvent:
    Clone + PartialEq + fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// Stable name of the variant, stored beside the payload.
    fn event_type(&self) -> &'static str;

    /// Schema version of the payload's encoding; bumped when an upcaster is added.
    fn schema_version(&self) -> u32 {
        1
    }
}

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum Actor {
    /// An MC service user, authenticated by their client's access token.
    User(McServiceId),
    /// An ACM server: this one (relay, timers, automatic processing) or a partner (messages).
    System(SystemId),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(u) => u.fmt(f),
            Self::System(s) => s.fmt(f),
        }
    }
}

/// The event or message that caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CausationId(pub Uuid);

impl From<EventId> for CausationId {
    fn from(id: EventId) -> Self {
        Self(id.as_uuid())
    }
}

impl From<MessageId> for CausationId {
    fn from(id: MessageId) -> Self {
        Self(id.as_uuid())
    }
}

/// An event to append, with the metadata its caller supplies.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent<E> {
    /// Caller-supplied id; appending the same id again is idempotent.
    pub event_id: EventId,
    /// The request this event is about, the same on both MC systems.
    pub correlation_id: RequestId,
    /// The event or message that caused it, if any.
    pub causation_id: Option<CausationId>,
    /// Who caused it.
    pub actor: Actor,
    /// When it was recorded (from the server's clock port, never read by the store).
    pub recorded_at: DateTime<Utc>,
    /// The event.
    pub payload: E,
}

/// A stored event with its envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<E> {
    /// Caller-supplied unique id.
    pub event_id: EventId,
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// Its version in the stream, from 1, contiguous.
    pub version: Version,
    /// Its position in the server's whole log, from 1, gap-free, in commit order.
    pub position: GlobalPosition,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// The request it is about, the same on both MC systems.
    pub correlation_id: RequestId,
    /// What caused it.
    pub causation_id: Option<CausationId>,
    /// Who caused it.
    pub actor: Actor,
    /// The payload's [`DomainEvent::event_type`].
    pub event_type: Cow<'static, str>,
    /// The payload's [`DomainEvent::schema_version`].
    pub schema_version: u32,
    /// The event.
    pub payload: E,
}

impl<E: DomainEvent> Envelope<E> {
    /// Seals a new event at its version and position.
    pub fn seal(
        stream_id: StreamId,
        version: Version,
        position: GlobalPosition,
        event: NewEvent<E>,
    ) -> Self {
        Self {
            event_id: event.event_id,
            stream_id,
            version,
            position,
            recorded_at: event.recorded_at,
            correlation_id: event.correlation_id,
            causation_id: event.causation_id,
            actor: event.actor,
            event_type: Cow::Borrowed(event.payload.event_type()),
            schema_version: event.payload.schema_version(),
            payload: event.payload,
        }
    }

    /// Whether this stored event is the same as `event` (for idempotent re-appends).
    pub fn same_as(&self, stream_id: StreamId, event: &NewEvent<E>) -> bool {
        self.stream_id == stream_id
            && self.event_id == event.event_id
            && self.correlation_id == event.correlation_id
            && self.causation_id == event.causation_id
            && self.actor == event.actor
            && self.recorded_at == event.recorded_at
            && self.payload == event.payload
    }
}

/// What the appender expects the stream's version to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode", content = "version")]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must have no events.
    NoStream,
    /// The stream's last version must be exactly this.
    Exact(Version),
}

impl ExpectedVersion {
    /// Whether a stream at `actual` satisfies this expectation.
    pub fn admits(self, actual: Version) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == Version::NONE,
            Self::Exact(v) => actual == v,
        }
    }
}

/// Where an append landed: `count` events from `first_version` / `first_position` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appended {
    /// Version of the first event of the batch.
    pub first_version: Version,
    /// Global position of the first event of the batch.
    pub first_position: GlobalPosition,
    /// Number of events.
    pub count: u64,
    /// True when every event was stored already and this append changed nothing.
    pub replayed: bool,
}

impl Appended {
    /// Version of the last event of the batch (the stream's version after it).
    pub fn last_version(&self) -> Version {
        Version(self.first_version.0 + self.count.saturating_sub(1))
    }

    /// Global position of the last event of the batch.
    pub fn last_position(&self) -> GlobalPosition {
        GlobalPosition(self.first_position.0 + self.count.saturating_sub(1))
    }
}

/// A failure of an event store operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stream's version is not what the appender expected; nothing was written.
    #[error("stream {stream}: expected {expected:?}, found version {actual}")]
    Conflict {
        /// The stream.
        stream: StreamId,
        /// What the appender expected.
        expected: ExpectedVersion,
        /// The stream's actual version.
        actual: Version,
    },
    /// An event id is stored already with other content, or a batch mixes stored and new
    /// events; nothing was written.
    #[error("event {event_id} is stored already with other content")]
    IdempotencyConflict {
        /// The first offending event id.
        event_id: EventId,
    },
    /// An append with no events.
    #[error("nothing to append")]
    EmptyAppend,
    /// An ACM store's append would record a key that another request holds (a partner
    /// message id, a client's idempotency key); nothing was written.
    #[error("{0} is held by another request")]
    Taken(crate::views::Claim),
    /// The store stopped accepting writes after a failure it could not rule out had lost
    /// data (a failed commit or fsync): nothing more is acknowledged until it is reopened.
    #[error("store halted after an I/O failure; reopen it: {reason}")]
    Halted {
        /// The failure that stopped it.
        reason: String,
    },
    /// The storage has no room for the write (the disk or file system is full): nothing was
    /// written and the store goes on; the same write succeeds once space is freed.
    #[error("storage full, nothing written; retry once space is freed: {reason}")]
    StorageFull {
        /// What the backend said.
        reason: String,
    },
    /// The storage backend failed; the append may or may not be durable (retry with the same
    /// event ids, which is safe).
    #[error("storage backend: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A stream of stored events, read lazily.
pub type EventStream<'a, E> =
    Pin<Box<dyn Stream<Item = Result<Envelope<E>, StoreError>> + Send + 'a>>;

/// An append-only event store.
///
/// Guarantees every implementation must give (checked by `acm_core::testkit::conformance`):
/// - an append is atomic: all its events or none;
/// - `expected` is checked against the stream's version; a mismatch is
///   [`StoreError::Conflict`] and writes nothing;
/// - re-appending events whose ids are stored already, with the same content, returns the
///   original [`Appended`] with `replayed: true` and writes nothing, whatever `expected` says;
///   the same id with other content is [`StoreError::IdempotencyConflict`];
/// - versions are contiguous from 1 in each stream; global positions are contiguous from 1
///   across the store, in commit order;
/// - when `append` returns `Ok`, the events are as durable as the store promises (for a
///   durable store: on disk).
#[async_trait]
pub trait EventStore<E: DomainEvent>: Send + Sync {
    /// Appends `events` to `stream`, all or nothing.
    async fn append(
        &self,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent<E>>,
    ) -> Result<Appended, StoreError>;

    /// Reads a stream's events with version greater than `after`, in order.
    fn read_stream(&self, stream: StreamId, after: Version) -> EventStream<'_, E>;

    /// Reads every event with global position greater than `after`, in order.
    fn read_all(&self, after: GlobalPosition) -> EventStream<'_, E>;

    /// The position of the last stored event ([`GlobalPosition::START`] when empty).
    async fn head(&self) -> Result<GlobalPosition, StoreError>;
}

/// A shared store is a store: servers, relays and tests can hold the same one.
#[async_trait]
impl<E: DomainEvent, S: EventStore<E> + ?Sized> EventStore<E> for std::sync::Arc<S> {
    async fn append(
        &self,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent<E>>,
    ) -> Result<Appended, StoreError> {
        (**self).append(stream, expected, events).await
    }

    fn read_stream(&self, stream: StreamId, after: Version) -> EventStream<'_, E> {
        (**self).read_stream(stream, after)
    }

    fn read_all(&self, after: GlobalPosition) -> EventStream<'_, E> {
        (**self).read_all(after)
    }

    async fn head(&self) -> Result<GlobalPosition, StoreError> {
        (**self).head().await
    }
}
