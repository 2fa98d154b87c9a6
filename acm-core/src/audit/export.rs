//! Writing the tamper-evident JSON Lines export: a header line, one line per event carrying
//! its hash-chain link, and a trailer with the count and the head. `docs/audit.md` describes
//! the format.

use std::io::Write;

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::chain::{self, GENESIS, Hash, TimeOutOfRange};
use crate::event::Event;
use crate::id::{EventId, GlobalPosition, RequestId, StreamId, Version};
use crate::store::{Actor, CausationId, Envelope};

/// The `format` of an export's header line.
pub const EXPORT_FORMAT: &str = "acm-audit-export";

/// The version of the export format this crate writes and reads.
pub const EXPORT_VERSION: u32 = 1;

/// The first line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Header {
    pub format: String,
    pub version: u32,
    /// Names the link function, so a reader knows which chain the lines carry.
    pub chain: String,
}

/// The last line of an export: how many events it holds and the last link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Trailer {
    pub end: TrailerBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TrailerBody {
    pub count: u64,
    pub head: String,
}

/// The envelope fields of one exported event, everything but the payload; the names are an
/// [`Envelope`]'s, so a line also reads as one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMeta {
    /// Global position.
    pub position: GlobalPosition,
    /// Event id.
    pub event_id: EventId,
    /// The request's stream.
    pub stream_id: StreamId,
    /// Version in the stream.
    pub version: Version,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// The request it is about.
    pub correlation_id: RequestId,
    /// The message or event that caused it.
    pub causation_id: Option<CausationId>,
    /// Who caused it.
    pub actor: Actor,
    /// The payload's event type.
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: u32,
}

impl EventMeta {
    /// The fields of `envelope`.
    pub fn of(envelope: &Envelope<Event>) -> Self {
        Self {
            position: envelope.position,
            event_id: envelope.event_id,
            stream_id: envelope.stream_id,
            version: envelope.version,
            recorded_at: envelope.recorded_at,
            correlation_id: envelope.correlation_id,
            causation_id: envelope.causation_id,
            actor: envelope.actor.clone(),
            event_type: envelope.event_type.to_string(),
            schema_version: envelope.schema_version,
        }
    }

    /// The chain link of this event after `prev`, given its payload's encoded bytes.
    pub fn link(&self, prev: &Hash, payload: &[u8]) -> Result<Hash, TimeOutOfRange> {
        let out_of_range = TimeOutOfRange {
            position: self.position.0,
            recorded_at: self.recorded_at,
        };
        // A leap second (`…:59:60`) counts the same nanoseconds as the second before it: a
        // time rewritten that way would keep its link. No acm store records one.
        if self.recorded_at.nanosecond() >= 1_000_000_000 {
            return Err(out_of_range);
        }
        let recorded_at = self.recorded_at.timestamp_nanos_opt().ok_or(out_of_range)?;
        let (actor_kind, actor_id) = chain::actor_parts(&self.actor);
        let causation = self.causation_id.map(|c| c.0);
        Ok(chain::link(
            prev,
            &chain::ChainFields {
                position: self.position.0,
                event_id: self.event_id.as_uuid().as_bytes(),
                stream_id: self.stream_id.0.as_uuid().as_bytes(),
                version: self.version.0,
                recorded_at,
                correlation_id: self.correlation_id.as_uuid().as_bytes(),
                causation_id: causation.as_ref().map(|c| &c.as_bytes()[..]),
                actor_kind,
                actor_id,
                event_type: &self.event_type,
                schema_version: self.schema_version,
                payload,
            },
        ))
    }
}

/// One event line as written.
#[derive(Serialize)]
struct LineOut<'a> {
    #[serde(flatten)]
    meta: &'a EventMeta,
    payload: &'a RawValue,
    link: String,
}

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// An event's time is outside what the chain can hold.
    #[error(transparent)]
    Time(#[from] TimeOutOfRange),
    /// Events were given out of position order, or with gaps.
    #[error("event at position {found} given where position {expected} was next")]
    OutOfOrder {
        /// The position due.
        expected: GlobalPosition,
        /// The position given.
        found: GlobalPosition,
    },
    /// A payload is not JSON (only a corrupt store holds one).
    #[error("payload at position {position} is not JSON: {source}")]
    Payload {
        /// The event's position.
        position: GlobalPosition,
        /// What the JSON parser said.
        #[source]
        source: serde_json::Error,
    },
}

/// What an export holds: the trailer's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSummary {
    /// Events written.
    pub count: u64,
    /// The last link ([`GENESIS`] for an empty log).
    pub head: Hash,
}

/// Writes a whole log, from position 1, as a tamper-evident export.
///
/// ```
/// use acm_core::audit::{ExportWriter, verify_export};
/// let mut out = Vec::new();
/// let writer = ExportWriter::new(&mut out).unwrap();
/// let summary = writer.finish().unwrap();
/// let report = verify_export(&out[..]).unwrap();
/// assert!(report.is_intact());
/// assert_eq!((report.events, report.head), (0, summary.head));
/// ```
#[derive(Debug)]
pub struct ExportWriter<W: Write> {
    out: W,
    count: u64,
    head: Hash,
}

impl<W: Write> ExportWriter<W> {
    /// Starts an export on `out` by writing its header.
    pub fn new(mut out: W) -> Result<Self, ExportError> {
        let header = Header {
            format: EXPORT_FORMAT.into(),
            version: EXPORT_VERSION,
            chain: chain::CHAIN_TAG.into(),
        };
        serde_json::to_writer(&mut out, &header).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        Ok(Self {
            out,
            count: 0,
            head: GENESIS,
        })
    }

    fn check_next(&self, position: GlobalPosition) -> Result<(), ExportError> {
        let expected = GlobalPosition(self.count.saturating_add(1));
        if position == expected {
            Ok(())
        } else {
            Err(ExportError::OutOfOrder {
                expected,
                found: position,
            })
        }
    }

    /// Writes the next event of a log that keeps no links (the memory store): its payload is
    /// encoded as a store encodes it and its link computed here.
    pub fn write_event(&mut self, envelope: &Envelope<Event>) -> Result<(), ExportError> {
        self.check_next(envelope.position)?;
        let meta = EventMeta::of(envelope);
        let payload = serde_json::to_string(&envelope.payload).map_err(std::io::Error::from)?;
        let link = meta.link(&self.head, payload.as_bytes())?;
        let raw = RawValue::from_string(payload).map_err(|source| ExportError::Payload {
            position: envelope.position,
            source,
        })?;
        self.write_line(&meta, &raw, link)
    }

    /// Writes an event of a log that keeps its own links (the `SQLite` store): its position,
    /// the payload's stored bytes and the stored link go out as they are, so the export shows
    /// the store's chain, breaks and holes included, for a verifier to judge.
    pub fn write_stored(
        &mut self,
        meta: &EventMeta,
        payload: &[u8],
        link: Hash,
    ) -> Result<(), ExportError> {
        let text = std::str::from_utf8(payload).map_err(|e| ExportError::Payload {
            position: meta.position,
            source: serde::de::Error::custom(e),
        })?;
        let raw: &RawValue = serde_json::from_str(text).map_err(|source| ExportError::Payload {
            position: meta.position,
            source,
        })?;
        self.write_line(meta, raw, link)
    }

    fn write_line(
        &mut self,
        meta: &EventMeta,
        payload: &RawValue,
        link: Hash,
    ) -> Result<(), ExportError> {
        let out = LineOut {
            meta,
            payload,
            link: chain::to_hex(&link),
        };
        serde_json::to_writer(&mut self.out, &out).map_err(std::io::Error::from)?;
        self.out.write_all(b"\n")?;
        self.count += 1;
        self.head = link;
        Ok(())
    }

    /// Writes the trailer with the count and head of the lines written, and flushes.
    pub fn finish(self) -> Result<ExportSummary, ExportError> {
        let (count, head) = (self.count, self.head);
        self.finish_recorded(count, head)
    }

    /// Writes the trailer with the count and head the log itself records (a store that keeps
    /// its chain head beside the rows), so an export of a log whose last rows were removed
    /// does not verify; flushes.
    pub fn finish_recorded(mut self, count: u64, head: Hash) -> Result<ExportSummary, ExportError> {
        let trailer = Trailer {
            end: TrailerBody {
                count,
                head: chain::to_hex(&head),
            },
        };
        serde_json::to_writer(&mut self.out, &trailer).map_err(std::io::Error::from)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(ExportSummary { count, head })
    }
}

/// Writes `log` (a whole log from position 1, as a store without links reads it) as an
/// export, computing the chain.
pub fn export_log<'a, W: Write>(
    out: W,
    log: impl IntoIterator<Item = &'a Envelope<Event>>,
) -> Result<ExportSummary, ExportError> {
    let mut writer = ExportWriter::new(out)?;
    for envelope in log {
        writer.write_event(envelope)?;
    }
    writer.finish()
}
