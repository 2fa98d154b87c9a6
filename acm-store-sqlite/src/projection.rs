//! Projections kept in the same transaction as the events: the outbox, the inbox and the
//! pending items per user. A [`Projection`] turns each appended event into typed row changes;
//! the writer applies them inside the append's transaction, so the rows never disagree with
//! the log, whatever crashes when.

use acm_core::event::Event;
use acm_core::id::{GlobalPosition, McServiceId, MessageId, StreamId, SystemId, Version};
use acm_core::lifecycle::{RequestState, evolve};
use acm_core::store::{Actor, NewEvent, StoreError};
use foldhash::HashMap;

use crate::error::BackendError;

/// A change to a projection table, applied in the transaction of the event that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowChange {
    /// The request became pending for a user.
    PendingAdd {
        /// The user.
        user: McServiceId,
    },
    /// The request is no longer pending for a user.
    PendingRemove {
        /// The user.
        user: McServiceId,
    },
    /// A message is now owed to a partner.
    OutboxQueue {
        /// Its id (the partner deduplicates by it).
        message_id: MessageId,
        /// The partner system.
        partner: SystemId,
        /// The message as JSON.
        message: Vec<u8>,
    },
    /// A message is no longer owed: acknowledged, or made moot.
    OutboxSettle {
        /// Its id.
        message_id: MessageId,
    },
    /// A partner message was received and stored.
    InboxRecord {
        /// Its id.
        message_id: MessageId,
        /// The sending system.
        sender: SystemId,
    },
}

/// One appended event, as a projection sees it.
#[derive(Debug, Clone, Copy)]
pub struct Appending<'a, E> {
    /// Its stream.
    pub stream: StreamId,
    /// Its version.
    pub version: Version,
    /// Its global position.
    pub position: GlobalPosition,
    /// The event and its metadata.
    pub event: &'a NewEvent<E>,
}

/// Reads a stream's earlier events inside the append's transaction.
pub trait History<E> {
    /// The payloads of `stream` up to and including version `upto`, in order.
    fn load(&mut self, stream: StreamId, upto: Version) -> Result<Vec<E>, StoreError>;
}

/// Turns appended events into row changes. Runs on the writer thread.
pub trait Projection<E>: Send + 'static {
    /// A stable name, recorded in the store: a store opened with another projection than the
    /// one its tables hold rebuilds them.
    fn name(&self) -> &'static str;

    /// The row changes `appending` causes, pushed to `out`.
    fn project(
        &mut self,
        history: &mut dyn History<E>,
        appending: Appending<'_, E>,
        out: &mut Vec<RowChange>,
    ) -> Result<(), StoreError>;

    /// Forgets what it cached for `stream` (its last append was rolled back).
    fn forget(&mut self, stream: StreamId);

    /// Forgets everything it cached (a whole transaction was rolled back).
    fn reset(&mut self);
}

/// The projection of the ACM provision lifecycle: pending items from
/// [`RequestState::pending_for`], the outbox from [`RequestState::outbound`], the inbox from
/// the events that store a partner's message. It keeps each request's state (rebuilt from the
/// log after a restart) so that an event costs one `evolve`.
#[derive(Debug, Default)]
pub struct AcmProjection {
    states: HashMap<StreamId, RequestState>,
}

/// States kept before the cache starts over (a miss costs one read of a short stream).
const MAX_CACHED: usize = 200_000;

impl AcmProjection {
    /// An empty projection.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Projection<Event> for AcmProjection {
    fn name(&self) -> &'static str {
        "acm"
    }

    fn project(
        &mut self,
        history: &mut dyn History<Event>,
        a: Appending<'_, Event>,
        out: &mut Vec<RowChange>,
    ) -> Result<(), StoreError> {
        let before = match self.states.remove(&a.stream) {
            Some(state) => state,
            None if a.version.0 <= 1 => RequestState::Empty,
            None => history
                .load(a.stream, Version(a.version.0 - 1))?
                .iter()
                .fold(RequestState::Empty, evolve),
        };
        let pending_before = before.pending_for().to_vec();
        let owed_before = before.owed_message_id();
        let was_partner = matches!(before, RequestState::Partner(_));
        let after = evolve(before, &a.event.payload);

        let pending_after = after.pending_for();
        for user in pending_before.iter().filter(|u| !pending_after.contains(u)) {
            out.push(RowChange::PendingRemove { user: user.clone() });
        }
        for user in pending_after.iter().filter(|u| !pending_before.contains(u)) {
            out.push(RowChange::PendingAdd { user: user.clone() });
        }

        // The message is built (and encoded) only when the debt changes.
        if owed_before != after.owed_message_id() {
            if let Some(message_id) = owed_before {
                out.push(RowChange::OutboxSettle { message_id });
            }
            if let Some((partner, message)) = after.outbound() {
                out.push(RowChange::OutboxQueue {
                    message_id: message.message_id(),
                    partner,
                    message: serde_json::to_vec(&message).map_err(BackendError::Encode)?,
                });
            }
        }

        let sender = match &a.event.actor {
            Actor::System(s) => Some(s),
            Actor::User(_) => None,
        };
        let received = match (&a.event.payload, sender) {
            (
                Event::Stored {
                    from, message_id, ..
                },
                _,
            ) => Some((*message_id, from.clone())),
            (Event::ResponseReceived { message_id, .. }, Some(s)) => Some((*message_id, s.clone())),
            // A withdrawal at the partner is caused by the primary's message.
            (Event::Withdrawn, Some(s)) if was_partner => a
                .event
                .causation_id
                .and_then(|c| MessageId::from_uuid(c.0).ok())
                .map(|m| (m, s.clone())),
            _ => None,
        };
        if let Some((message_id, sender)) = received {
            out.push(RowChange::InboxRecord { message_id, sender });
        }

        if self.states.len() >= MAX_CACHED {
            self.states.clear();
        }
        self.states.insert(a.stream, after);
        Ok(())
    }

    fn forget(&mut self, stream: StreamId) {
        self.states.remove(&stream);
    }

    fn reset(&mut self) {
        self.states.clear();
    }
}
