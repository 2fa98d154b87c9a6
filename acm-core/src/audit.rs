//! Audit replay: rebuild every request's state from an event log, move logs as JSON Lines,
//! and print one request's timeline.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, Write};

use crate::event::Event;
use crate::id::{GlobalPosition, RequestId, Version};
use crate::lifecycle::{RequestState, evolve};
use crate::store::Envelope;

/// A log that cannot be replayed as it stands.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A line is not a valid envelope.
    #[error("line {line}: {source}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// Global positions are not contiguous from 1.
    #[error("position {found} where {expected} was expected")]
    PositionGap {
        /// Expected position.
        expected: GlobalPosition,
        /// Found position.
        found: GlobalPosition,
    },
    /// A stream's versions are not contiguous from 1.
    #[error("request {request}: version {found} where {expected} was expected")]
    VersionGap {
        /// The stream.
        request: RequestId,
        /// Expected version.
        expected: Version,
        /// Found version.
        found: Version,
    },
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Every request's state rebuilt from a log, checking that positions and versions are
/// contiguous.
pub fn replay<I>(log: I) -> Result<BTreeMap<RequestId, RequestState>, AuditError>
where
    I: IntoIterator<Item = Envelope<Event>>,
{
    // Hashing is cheaper than ordered inserts per event; order once at the end.
    let mut states: foldhash::HashMap<RequestId, (RequestState, Version)> =
        foldhash::HashMap::default();
    let mut position = GlobalPosition::START;
    for envelope in log {
        if envelope.position != position.next() {
            return Err(AuditError::PositionGap {
                expected: position.next(),
                found: envelope.position,
            });
        }
        position = envelope.position;
        let request = envelope.stream_id.0;
        let (state, version) = states.entry(request).or_default();
        if envelope.version != version.next() {
            return Err(AuditError::VersionGap {
                request,
                expected: version.next(),
                found: envelope.version,
            });
        }
        *version = envelope.version;
        *state = evolve(std::mem::take(state), &envelope.payload);
    }
    Ok(states.into_iter().map(|(id, (s, _))| (id, s)).collect())
}

/// Writes envelopes as JSON Lines, one envelope per line.
pub fn export_jsonl<'a, W: Write>(
    mut out: W,
    log: impl IntoIterator<Item = &'a Envelope<Event>>,
) -> Result<usize, AuditError> {
    let mut n = 0;
    for envelope in log {
        serde_json::to_writer(&mut out, envelope).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}

/// Reads envelopes from JSON Lines lazily; blank lines are skipped.
pub fn import_jsonl<R: BufRead>(
    input: R,
) -> impl Iterator<Item = Result<Envelope<Event>, AuditError>> {
    input
        .lines()
        .enumerate()
        .filter_map(|(i, line)| match line {
            Err(e) => Some(Err(AuditError::Io(e))),
            Ok(l) if l.trim().is_empty() => None,
            Ok(l) => Some(
                serde_json::from_str(&l).map_err(|source| AuditError::Parse {
                    line: i + 1,
                    source,
                }),
            ),
        })
}

/// One request's events in order, one line each: position, version, time, actor, event.
pub fn timeline<'a>(
    log: impl IntoIterator<Item = &'a Envelope<Event>>,
    request: RequestId,
) -> String {
    let mut out = String::new();
    for e in log.into_iter().filter(|e| e.stream_id.0 == request) {
        let _ = writeln!(
            out,
            "#{:<6} v{:<3} {} {:<28} {:<22} {}",
            e.position,
            e.version,
            e.recorded_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            e.actor.to_string(),
            e.event_type,
            summary(&e.payload),
        );
    }
    out
}

/// A short human description of an event.
pub fn summary(event: &Event) -> String {
    match event {
        Event::Submitted { request, .. } => format!(
            "{} asks to provide {} group(s) to {} in {}",
            request.requester,
            request.body.groups().len(),
            request.target,
            request.partner
        ),
        Event::Authorized => "authorised".into(),
        Event::AuthorizationRefused { reason } => format!("refused: {reason}"),
        Event::Forwarded { to, message_id } => format!("forward to {to} (message {message_id})"),
        Event::PartnerStored { .. } => "partner acknowledged: stored".into(),
        Event::ResponseReceived { response, .. } => {
            format!(
                "response stored: {} by {}",
                response.outcome, response.responder
            )
        }
        Event::ResponseDelivered { to } => format!("response delivered to {to}"),
        Event::WithdrawalRequested { by, .. } => format!("{by} asks to withdraw"),
        Event::WithdrawalRefused => "partner: too late to withdraw".into(),
        Event::WithdrawalOutcomeDelivered { to } => format!("withdrawal outcome delivered to {to}"),
        Event::Withdrawn => "withdrawn".into(),
        Event::Stored { from, request, .. } => format!(
            "stored request from {from}: {} group(s) for {}",
            request.body.groups().len(),
            request.target
        ),
        Event::Verified { recipients } => format!(
            "verified; pending for {}",
            recipients
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Event::VerificationFailed { failure } => format!("verification failed: {failure}"),
        Event::Delivered { to } => format!("delivered to {to}"),
        Event::Responded { response, .. } => {
            format!("responded: {} by {}", response.outcome, response.responder)
        }
        Event::ResponseForwarded { .. } => "primary acknowledged the response".into(),
        Event::Expired => "expired".into(),
        Event::AcceptanceApplied => "acceptance hook applied".into(),
    }
}

#[cfg(test)]
mod tests;
