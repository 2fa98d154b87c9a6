//! Reading a JSON Lines export back, verifying it line by line: the header, every event's
//! link recomputed from its fields, positions and versions, each payload against its event
//! type, and the trailer.

use std::fmt;
use std::io::BufRead;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::export::{EXPORT_FORMAT, EXPORT_VERSION, EventMeta, Header, Trailer};
use crate::chain::{self, Hash};
use crate::event::Event;
use crate::id::{GlobalPosition, RequestId, Version};
use crate::store::{DomainEvent, Envelope};

/// What is wrong at a [`LineBreak`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineBreakKind {
    /// The first line is not an acm audit export header.
    NotAnExport,
    /// The header names a format version this build does not read.
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },
    /// The line is not a well-formed export line (not JSON, a field missing or invalid).
    Malformed {
        /// What is wrong with it.
        detail: String,
    },
    /// The line's link does not match its fields and the line before it: the line was
    /// edited (or the line before it was, and its link recomputed).
    Edited,
    /// Positions jump: the events in between are missing.
    Missing {
        /// The first missing position.
        from: GlobalPosition,
        /// The last missing position.
        to: GlobalPosition,
    },
    /// A position appears out of order: lines were moved or repeated.
    Reordered {
        /// The position found on the line.
        found: GlobalPosition,
        /// The position due there.
        expected: GlobalPosition,
    },
    /// The line's `event_type` contradicts the type its payload holds.
    TypeContradictsPayload {
        /// The `event_type` field.
        event_type: String,
        /// The payload's own type.
        payload_type: String,
    },
    /// A request's versions are not contiguous from 1.
    VersionGap {
        /// The request.
        request: RequestId,
        /// The version due.
        expected: Version,
        /// The version found.
        found: Version,
    },
    /// The file ends inside a line: it was cut short.
    Truncated,
    /// The file ends without the trailer line: it was cut short at a line boundary, or its
    /// last lines were removed.
    MissingTrailer,
    /// The trailer's count or head does not match the lines before it: events were removed
    /// from (or added at) the end.
    TrailerMismatch {
        /// Events the trailer counts.
        count: u64,
        /// Event lines the file holds.
        found: u64,
    },
    /// Lines follow the trailer.
    AfterTrailer,
}

impl LineBreakKind {
    /// A stable name for the kind, as `acm audit --json` prints it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAnExport => "not_an_export",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::Malformed { .. } => "malformed_line",
            Self::Edited => "edited_line",
            Self::Missing { .. } => "missing_lines",
            Self::Reordered { .. } => "reordered_lines",
            Self::TypeContradictsPayload { .. } => "type_contradicts_payload",
            Self::VersionGap { .. } => "version_gap",
            Self::Truncated => "truncated_file",
            Self::MissingTrailer => "missing_trailer",
            Self::TrailerMismatch { .. } => "trailer_mismatch",
            Self::AfterTrailer => "lines_after_trailer",
        }
    }
}

impl fmt::Display for LineBreakKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnExport => f.write_str("not an acm audit export (no export header)"),
            Self::UnsupportedVersion { version } => write!(
                f,
                "export format version {version}; this acm reads version {EXPORT_VERSION}"
            ),
            Self::Malformed { detail } => write!(f, "malformed line: {detail}"),
            Self::Edited => f.write_str(
                "edited line: its hash-chain link does not match its content and the line before it",
            ),
            Self::Missing { from, to } if from == to => {
                write!(f, "missing line: the event at position {from} is not there")
            }
            Self::Missing { from, to } => write!(
                f,
                "missing lines: the events at positions {from} to {to} are not there"
            ),
            Self::Reordered { found, expected } => write!(
                f,
                "reordered lines: position {found} where position {expected} is due"
            ),
            Self::TypeContradictsPayload {
                event_type,
                payload_type,
            } => write!(
                f,
                "event type {event_type:?} contradicts its payload, which is {payload_type:?}"
            ),
            Self::VersionGap {
                request,
                expected,
                found,
            } => write!(
                f,
                "request {request}: version {found} where version {expected} is due"
            ),
            Self::Truncated => f.write_str("truncated file: it ends inside a line"),
            Self::MissingTrailer => f.write_str(
                "missing trailer: the file ends without its closing line (cut short, or its last lines removed)",
            ),
            Self::TrailerMismatch { count, found } => write!(
                f,
                "the trailer counts {count} events and the chain head after them, but the file holds {found} (lines removed or added at the end)"
            ),
            Self::AfterTrailer => f.write_str("lines after the trailer"),
        }
    }
}

/// The first line of an export that does not verify, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineBreak {
    /// 1-based line number in the file.
    pub line: usize,
    /// What is wrong there.
    pub kind: LineBreakKind,
}

impl fmt::Display for LineBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.kind)
    }
}

/// What [`verify_export`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// Events that verified, from position 1.
    pub events: u64,
    /// The link of the last event that verified ([`GENESIS`](crate::chain::GENESIS) before the first); for an intact
    /// export, the log's head, which an auditor compares with a published one.
    pub head: Hash,
    /// The first break, if any.
    pub broken: Option<LineBreak>,
}

impl ExportReport {
    /// Whether the whole export verified.
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// One event line as read.
#[derive(Deserialize)]
struct LineIn {
    #[serde(flatten)]
    meta: EventMeta,
    payload: Box<RawValue>,
    link: String,
}

/// Tells the line kinds apart without caring about key order.
#[derive(Deserialize)]
struct Probe {
    format: Option<IgnoredAny>,
    end: Option<IgnoredAny>,
}

/// Verifies an export and decodes its events, handing each verified event to `each` in
/// order; stops at the first break. Fails only when reading fails.
pub fn scan_export<R: BufRead>(
    mut input: R,
    mut each: impl FnMut(Envelope<Event>),
) -> Result<ExportReport, std::io::Error> {
    let mut scan = Scan::default();
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line_no += 1;
        let complete = buf.ends_with(b"\n");
        // Bytes that are not UTF-8 are an edit like any other, not a reading failure.
        let step = match std::str::from_utf8(&buf) {
            Ok(text) => scan.line(text.trim_end_matches(['\n', '\r']), complete, &mut each),
            Err(_) if scan.stage == Stage::Header => Err(LineBreakKind::NotAnExport),
            Err(e) => Err(malformed(format_args!("not UTF-8: {e}"))),
        };
        if let Err(kind) = step {
            // A line cut short at the end of the file is a truncation, whatever it failed.
            let kind = if complete {
                kind
            } else {
                LineBreakKind::Truncated
            };
            let kind = match kind {
                LineBreakKind::Missing { from, .. } => classify_jump(&mut input, from, kind)?,
                other => other,
            };
            return Ok(scan.report(Some(LineBreak {
                line: line_no,
                kind,
            })));
        }
    }
    let broken = match scan.stage {
        Stage::Header => Some(LineBreak {
            line: 1,
            kind: LineBreakKind::NotAnExport,
        }),
        Stage::Events => Some(LineBreak {
            line: line_no + 1,
            kind: LineBreakKind::MissingTrailer,
        }),
        Stage::Done => None,
    };
    Ok(scan.report(broken))
}

/// Verifies an export without keeping its events.
pub fn verify_export<R: BufRead>(input: R) -> Result<ExportReport, std::io::Error> {
    scan_export(input, |_| {})
}

/// A jump forward in positions is a missing line unless the skipped position turns up later
/// (then the lines were moved). Reads the rest of the file's positions to tell.
fn classify_jump<R: BufRead>(
    input: &mut R,
    skipped: GlobalPosition,
    missing: LineBreakKind,
) -> Result<LineBreakKind, std::io::Error> {
    #[derive(Deserialize)]
    struct Position {
        position: Option<GlobalPosition>,
    }
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            return Ok(missing);
        }
        if let Ok(Position {
            position: Some(found),
        }) = serde_json::from_slice(&buf)
            && found == skipped
        {
            return Ok(match missing {
                LineBreakKind::Missing { to, .. } => LineBreakKind::Reordered {
                    found: to.next(),
                    expected: skipped,
                },
                other => other,
            });
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Stage {
    #[default]
    Header,
    Events,
    Done,
}

#[derive(Default)]
struct Scan {
    stage: Stage,
    events: u64,
    head: Hash,
    versions: foldhash::HashMap<RequestId, Version>,
}

fn malformed(e: impl fmt::Display) -> LineBreakKind {
    LineBreakKind::Malformed {
        detail: e.to_string(),
    }
}

/// A JSON error as a malformed line's detail: the parser counts lines within the one line it
/// was given, so only its column is kept.
#[allow(clippy::needless_pass_by_value)] // the shape map_err hands over
fn json(e: serde_json::Error) -> LineBreakKind {
    malformed(detail(&e))
}

fn detail(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let at = format!(" at line {} column {}", e.line(), e.column());
    let message = text.strip_suffix(&at).unwrap_or(&text);
    format!("{message} (column {})", e.column())
}

impl Scan {
    fn report(&self, broken: Option<LineBreak>) -> ExportReport {
        ExportReport {
            events: self.events,
            head: self.head,
            broken,
        }
    }

    fn line(
        &mut self,
        text: &str,
        complete: bool,
        each: &mut impl FnMut(Envelope<Event>),
    ) -> Result<(), LineBreakKind> {
        match self.stage {
            Stage::Header => {
                let header: Header =
                    serde_json::from_str(text).map_err(|_| LineBreakKind::NotAnExport)?;
                if header.format != EXPORT_FORMAT || header.chain != chain::CHAIN_TAG {
                    return Err(LineBreakKind::NotAnExport);
                }
                if header.version != EXPORT_VERSION {
                    return Err(LineBreakKind::UnsupportedVersion {
                        version: header.version,
                    });
                }
                self.stage = Stage::Events;
                Ok(())
            }
            Stage::Done => Err(LineBreakKind::AfterTrailer),
            Stage::Events => {
                let probe: Probe =
                    serde_json::from_str(text).map_err(|_| malformed("not a JSON object"))?;
                if probe.end.is_some() {
                    return self.trailer(text, complete);
                }
                if probe.format.is_some() {
                    return Err(malformed("a second header"));
                }
                let envelope = self.event(text)?;
                each(envelope);
                Ok(())
            }
        }
    }

    fn trailer(&mut self, text: &str, complete: bool) -> Result<(), LineBreakKind> {
        let trailer: Trailer = serde_json::from_str(text).map_err(json)?;
        let head = chain::from_hex(&trailer.end.head)
            .ok_or_else(|| malformed("the trailer's head is not 64 hex digits"))?;
        if trailer.end.count != self.events || head != self.head {
            return Err(LineBreakKind::TrailerMismatch {
                count: trailer.end.count,
                found: self.events,
            });
        }
        if !complete {
            return Err(LineBreakKind::Truncated);
        }
        self.stage = Stage::Done;
        Ok(())
    }

    fn event(&mut self, text: &str) -> Result<Envelope<Event>, LineBreakKind> {
        let parsed: LineIn = serde_json::from_str(text).map_err(json)?;
        let meta = parsed.meta;
        let stored = chain::from_hex(&parsed.link)
            .ok_or_else(|| malformed("the link is not 64 hex digits"))?;
        let expected = GlobalPosition(self.events.saturating_add(1));
        if meta.position > expected {
            return Err(LineBreakKind::Missing {
                from: expected,
                to: GlobalPosition(meta.position.0 - 1),
            });
        }
        if meta.position < expected {
            return Err(LineBreakKind::Reordered {
                found: meta.position,
                expected,
            });
        }
        let payload = parsed.payload.get();
        let link = meta
            .link(&self.head, payload.as_bytes())
            .map_err(malformed)?;
        if link != stored {
            return Err(LineBreakKind::Edited);
        }
        let event: Event = serde_json::from_str(payload).map_err(|e| {
            malformed(format_args!(
                "the payload is not an ACM event: {}",
                detail(&e)
            ))
        })?;
        if event.event_type() != meta.event_type {
            return Err(LineBreakKind::TypeContradictsPayload {
                event_type: meta.event_type,
                payload_type: event.event_type().into(),
            });
        }
        let request = meta.stream_id.0;
        let version = self.versions.entry(request).or_default();
        if meta.version != version.next() {
            return Err(LineBreakKind::VersionGap {
                request,
                expected: version.next(),
                found: meta.version,
            });
        }
        *version = meta.version;
        self.events += 1;
        self.head = link;
        Ok(Envelope {
            event_id: meta.event_id,
            stream_id: meta.stream_id,
            version: meta.version,
            position: meta.position,
            recorded_at: meta.recorded_at,
            correlation_id: meta.correlation_id,
            causation_id: meta.causation_id,
            actor: meta.actor,
            event_type: std::borrow::Cow::Borrowed(event.event_type()),
            schema_version: meta.schema_version,
            payload: event,
        })
    }
}
