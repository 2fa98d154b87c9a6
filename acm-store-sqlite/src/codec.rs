//! Rows to envelopes and back.

use std::borrow::Cow;
use std::marker::PhantomData;

use acm_core::{Actor, CausationId, DomainEvent, Envelope, NewEvent, StoreError};
use acm_core::{EventId, GlobalPosition, McServiceId, RequestId, StreamId, SystemId, Version};
use chrono::{DateTime, Utc};
use rusqlite::Row;
use uuid::Uuid;

use crate::error::BackendError;
use crate::upcast::Upcasters;

/// Decodes stored rows into envelopes of `E`, upcasting old payloads.
#[derive(Debug)]
pub(crate) struct Codec<E> {
    upcasters: Upcasters,
    _event: PhantomData<fn() -> E>,
}

pub(crate) fn nanos(at: DateTime<Utc>) -> Result<i64, StoreError> {
    at.timestamp_nanos_opt()
        .ok_or_else(|| BackendError::TimeOutOfRange(at).into())
}

/// `at` in nanoseconds, clamped to what an `i64` holds: for the instants a caller compares
/// stored times with (a cut-off far in the future is later than every stored time).
pub(crate) fn nanos_saturating(at: DateTime<Utc>) -> i64 {
    at.timestamp_nanos_opt().unwrap_or(if at.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// The actor's two columns, as the chain also encodes them.
pub(crate) use acm_core::chain::actor_parts as actor_columns;

/// Encodes a batch's payloads; run by the caller, off the writer thread.
pub(crate) fn encode<E: DomainEvent>(events: &[NewEvent<E>]) -> Result<Vec<Vec<u8>>, StoreError> {
    events
        .iter()
        .map(|e| serde_json::to_vec(&e.payload).map_err(|e| BackendError::Encode(e).into()))
        .collect()
}

fn corrupt(position: u64, column: &'static str) -> StoreError {
    BackendError::Corrupt { position, column }.into()
}

fn uuid(row: &Row<'_>, i: usize, position: u64, column: &'static str) -> Result<Uuid, StoreError> {
    let bytes = row
        .get_ref(i)
        .and_then(|v| Ok(v.as_blob()?))
        .map_err(|_| corrupt(position, column))?;
    Uuid::from_slice(bytes).map_err(|_| corrupt(position, column))
}

impl<E: DomainEvent> Codec<E> {
    pub(crate) fn new(upcasters: Upcasters) -> Self {
        Self {
            upcasters,
            _event: PhantomData,
        }
    }

    /// Decodes a row whose first twelve columns are those of every `.sql` read: position,
    /// `event_id`, `stream_id`, version, `recorded_at`, `correlation_id`, `causation_id`, `actor_kind`,
    /// `actor_id`, `event_type`, `schema_version`, payload.
    pub(crate) fn decode(&self, row: &Row<'_>) -> Result<Envelope<E>, StoreError> {
        let position: i64 = row.get(0).map_err(|_| corrupt(0, "position"))?;
        let position = position.cast_unsigned();
        let col = |c| corrupt(position, c);
        let event_id =
            EventId::from_uuid(uuid(row, 1, position, "event_id")?).map_err(|_| col("event_id"))?;
        let stream_id = StreamId(
            RequestId::from_uuid(uuid(row, 2, position, "stream_id")?)
                .map_err(|_| col("stream_id"))?,
        );
        let version: i64 = row.get(3).map_err(|_| col("version"))?;
        let recorded_at: i64 = row.get(4).map_err(|_| col("recorded_at"))?;
        let correlation_id = RequestId::from_uuid(uuid(row, 5, position, "correlation_id")?)
            .map_err(|_| col("correlation_id"))?;
        let causation_id = match row.get_ref(6).map_err(|_| col("causation_id"))? {
            rusqlite::types::ValueRef::Null => None,
            _ => Some(CausationId(uuid(row, 6, position, "causation_id")?)),
        };
        let kind = row
            .get_ref(7)
            .and_then(|v| Ok(v.as_str()?))
            .map_err(|_| col("actor_kind"))?;
        let id = row
            .get_ref(8)
            .and_then(|v| Ok(v.as_str()?))
            .map_err(|_| col("actor_id"))?;
        let actor = match kind {
            "user" => Actor::User(id.parse::<McServiceId>().map_err(|_| col("actor_id"))?),
            "system" => Actor::System(id.parse::<SystemId>().map_err(|_| col("actor_id"))?),
            _ => return Err(col("actor_kind")),
        };
        let event_type = row
            .get_ref(9)
            .and_then(|v| Ok(v.as_str()?))
            .map_err(|_| col("event_type"))?;
        let stored_version: i64 = row.get(10).map_err(|_| col("schema_version"))?;
        let stored_version = u32::try_from(stored_version).map_err(|_| col("schema_version"))?;
        let payload = row
            .get_ref(11)
            .and_then(|v| Ok(v.as_blob()?))
            .map_err(|_| col("payload"))?;
        let (payload, schema_version) =
            self.payload(position, event_type, stored_version, payload)?;
        Ok(Envelope {
            event_id,
            stream_id,
            version: Version(version.cast_unsigned()),
            position: GlobalPosition(position),
            recorded_at: DateTime::from_timestamp_nanos(recorded_at),
            correlation_id,
            causation_id,
            actor,
            event_type: Cow::Borrowed(payload.event_type()),
            schema_version,
            payload,
        })
    }

    fn payload(
        &self,
        position: u64,
        event_type: &str,
        version: u32,
        bytes: &[u8],
    ) -> Result<(E, u32), StoreError> {
        let decode = |source| BackendError::Decode { position, source };
        let Some(steps) = self.upcasters.steps(event_type, version) else {
            return Ok((serde_json::from_slice(bytes).map_err(decode)?, version));
        };
        let value = serde_json::from_slice(bytes).map_err(decode)?;
        let (value, reached) =
            Upcasters::apply(steps, version, value).map_err(|f| BackendError::Upcast {
                position,
                event_type: event_type.to_owned(),
                version: f.version,
                message: f.message,
            })?;
        Ok((serde_json::from_value(value).map_err(decode)?, reached))
    }
}
