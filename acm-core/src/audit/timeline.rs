//! One request's timeline: on one ACM server, or joined across both MC systems' logs by
//! correlation id, in causal order.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::summary;
use crate::event::Event;
use crate::id::{GlobalPosition, RequestId, SystemId, Version};
use crate::request::{Outcome, RejectionReason};
use crate::store::{Actor, Envelope};

/// The step of the procedure an event records (`docs/procedure.md`): 1–14, or one of the
/// duties around them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// 1: submitted.
    Submit,
    /// 2: authorised or refused.
    Authorize,
    /// 3: forwarded to the partner.
    Forward,
    /// 4a: stored and verified at the partner.
    StoreAndVerify,
    /// 4b: the partner's "stored" acknowledgement, recorded at the primary.
    PartnerAck,
    /// 8: delivered to a recipient.
    Deliver,
    /// 9: answered.
    Respond,
    /// 10: the response forwarded (acknowledged by the primary).
    ForwardResponse,
    /// 11: the response stored at the primary.
    StoreResponse,
    /// 14: the response delivered to the requester.
    DeliverResponse,
    /// The acceptance hook.
    Hook,
    /// Expiry of a request pending too long.
    Expiry,
    /// A withdrawal and its outcome.
    Withdrawal,
}

impl Step {
    /// The step an event records.
    pub fn of(event: &Event) -> Self {
        match event {
            Event::Submitted { .. } => Self::Submit,
            Event::Authorized | Event::AuthorizationRefused { .. } => Self::Authorize,
            Event::Forwarded { .. } | Event::Undeliverable => Self::Forward,
            Event::PartnerStored { .. } => Self::PartnerAck,
            Event::ResponseReceived { .. } => Self::StoreResponse,
            Event::ResponseDelivered { .. } | Event::UndeliverableDelivered { .. } => {
                Self::DeliverResponse
            }
            Event::WithdrawalRequested { .. }
            | Event::WithdrawalRefused
            | Event::Withdrawn
            | Event::WithdrawalOutcomeDelivered { .. } => Self::Withdrawal,
            Event::Stored { .. } | Event::Verified { .. } | Event::VerificationFailed { .. } => {
                Self::StoreAndVerify
            }
            Event::Delivered { .. } => Self::Deliver,
            Event::Responded { response, .. } => match &response.outcome {
                Outcome::Rejected {
                    reason: RejectionReason::Verification { .. },
                } => Self::StoreAndVerify,
                Outcome::Rejected {
                    reason: RejectionReason::Expired,
                } => Self::Expiry,
                _ => Self::Respond,
            },
            Event::ResponseForwarded { .. } => Self::ForwardResponse,
            Event::Expired => Self::Expiry,
            Event::AcceptanceApplied => Self::Hook,
        }
    }

    /// As printed: `1` … `14`, `4a`, `4b`, `hook`, `expiry`, `withdrawal`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submit => "1",
            Self::Authorize => "2",
            Self::Forward => "3",
            Self::StoreAndVerify => "4a",
            Self::PartnerAck => "4b",
            Self::Deliver => "8",
            Self::Respond => "9",
            Self::ForwardResponse => "10",
            Self::StoreResponse => "11",
            Self::DeliverResponse => "14",
            Self::Hook => "hook",
            Self::Expiry => "expiry",
            Self::Withdrawal => "withdrawal",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The partner message that caused an event, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cause {
    /// The message id (the event's causation id).
    pub message_id: Uuid,
    /// The system whose event decided the message, when the logs at hand hold it.
    pub system: Option<SystemId>,
    /// That event's step.
    pub step: Option<Step>,
}

/// One line of a timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    /// The MC system whose ACM server recorded the event.
    pub system: SystemId,
    /// The procedure step.
    pub step: Step,
    /// Position in that server's log.
    pub position: GlobalPosition,
    /// Version in the request's stream there.
    pub version: Version,
    /// When that server recorded it (by its own clock).
    pub recorded_at: DateTime<Utc>,
    /// Who caused it.
    pub actor: Actor,
    /// The event type.
    pub event_type: String,
    /// What happened, in words.
    pub summary: String,
    /// The partner message that caused it, if one did.
    pub caused_by: Option<Cause>,
}

/// Why a timeline cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimelineError {
    /// No log holds the request.
    #[error("request {0} is in none of the logs")]
    UnknownRequest(RequestId),
    /// Two logs hold the request in the same role: they are one server's log twice, or not
    /// the two systems of this request.
    #[error("both logs hold request {request} as its {role}; give the primary's and the partner's")]
    SameRole {
        /// The request.
        request: RequestId,
        /// `primary` or `partner`.
        role: &'static str,
    },
}

/// The message an event decides (its outbox entry), if any.
fn emits(event: &Event) -> Option<Uuid> {
    match event {
        Event::Forwarded { message_id, .. }
        | Event::WithdrawalRequested { message_id, .. }
        | Event::Responded { message_id, .. } => Some(message_id.as_uuid()),
        _ => None,
    }
}

/// One log's events about the request, with the system that recorded them.
struct Side<'a> {
    system: SystemId,
    primary: bool,
    events: Vec<&'a Envelope<Event>>,
}

fn side(log: &[Envelope<Event>], request: RequestId) -> Option<Side<'_>> {
    let events: Vec<_> = log.iter().filter(|e| e.correlation_id == request).collect();
    let (system, primary) = match &events.first()?.payload {
        Event::Submitted { request, .. } => (request.requester.system(), true),
        Event::Stored { request, .. } => (request.partner.clone(), false),
        // A stream that does not start as the procedure starts: name the recorder by actor.
        _ => match &events.first()?.actor {
            Actor::System(s) => (s.clone(), false),
            Actor::User(u) => (u.system(), true),
        },
    };
    Some(Side {
        system,
        primary,
        events,
    })
}

/// The timeline of `request` in one server's log, in log order.
pub fn timeline(
    log: &[Envelope<Event>],
    request: RequestId,
) -> Result<Vec<TimelineEntry>, TimelineError> {
    let side = side(log, request).ok_or(TimelineError::UnknownRequest(request))?;
    Ok(merge(&[side]))
}

/// The timeline of `request` joined across two servers' logs (either order), in causal
/// order: an event a partner message caused comes after the event that decided the message,
/// and an acknowledgement's record after the partner's record of receiving it, whatever the
/// two clocks say; otherwise earlier times first.
pub fn joined_timeline(
    a: &[Envelope<Event>],
    b: &[Envelope<Event>],
    request: RequestId,
) -> Result<Vec<TimelineEntry>, TimelineError> {
    let sides: Vec<Side<'_>> = [side(a, request), side(b, request)]
        .into_iter()
        .flatten()
        .collect();
    match sides.as_slice() {
        [] => Err(TimelineError::UnknownRequest(request)),
        [x, y] if x.primary == y.primary => Err(TimelineError::SameRole {
            request,
            role: if x.primary { "primary" } else { "partner" },
        }),
        _ => Ok(merge(&sides)),
    }
}

fn merge(sides: &[Side<'_>]) -> Vec<TimelineEntry> {
    // Who decided each message: (side, index in that side).
    let mut emitter: foldhash::HashMap<Uuid, (usize, usize)> = foldhash::HashMap::default();
    // Per side and message: the last event that message caused there.
    let mut last_caused: Vec<foldhash::HashMap<Uuid, usize>> =
        vec![foldhash::HashMap::default(); sides.len()];
    for (s, side) in sides.iter().enumerate() {
        for (i, e) in side.events.iter().enumerate() {
            if let Some(m) = emits(&e.payload) {
                emitter.entry(m).or_insert((s, i));
            }
            if let Some(c) = e.causation_id {
                last_caused[s].insert(c.0, i);
            }
        }
    }
    let mut next = vec![0usize; sides.len()];
    let ready = |next: &[usize], s: usize, e: &Envelope<Event>| -> bool {
        let Some(c) = e.causation_id else {
            return true;
        };
        match emitter.get(&c.0) {
            // Received from the other side: after the event that decided it there.
            Some(&(from, i)) if from != s => next[from] > i,
            // An acknowledgement of our own message: after everything it caused there.
            Some(&(own, _)) if own == s => (0..sides.len())
                .filter(|&o| o != s)
                .all(|o| last_caused[o].get(&c.0).is_none_or(|&i| next[o] > i)),
            _ => true,
        }
    };
    let total: usize = sides.iter().map(|s| s.events.len()).sum();
    let mut out = Vec::with_capacity(total);
    while out.len() < total {
        let heads = (0..sides.len()).filter_map(|s| Some((s, *sides[s].events.get(next[s])?)));
        let candidates: Vec<_> = heads.collect();
        // Logs that contradict each other (a cycle) still list every event: by time.
        let pick = candidates
            .iter()
            .filter(|(s, e)| ready(&next, *s, e))
            .min_by_key(|(s, e)| (e.recorded_at, *s))
            .or_else(|| candidates.iter().min_by_key(|(s, e)| (e.recorded_at, *s)));
        let Some(&(s, e)) = pick else { break };
        next[s] += 1;
        out.push(TimelineEntry {
            system: sides[s].system.clone(),
            step: Step::of(&e.payload),
            position: e.position,
            version: e.version,
            recorded_at: e.recorded_at,
            actor: e.actor.clone(),
            event_type: e.event_type.to_string(),
            summary: summary(&e.payload),
            caused_by: e.causation_id.map(|c| {
                let from = emitter.get(&c.0);
                Cause {
                    message_id: c.0,
                    system: from.map(|&(f, _)| sides[f].system.clone()),
                    step: from.map(|&(f, i)| Step::of(&sides[f].events[i].payload)),
                }
            }),
        });
    }
    out
}
