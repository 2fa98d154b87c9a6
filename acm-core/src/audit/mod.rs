//! Audit: a tamper-evident JSON Lines export of an ACM server's log and its verifier, replay
//! of every request's state, and one request's timeline on one server or joined across both
//! MC systems. `docs/audit.md` says what an auditor can establish with each.

mod export;
mod timeline;
mod verify;

pub use export::{
    EXPORT_FORMAT, EXPORT_VERSION, EventMeta, ExportError, ExportSummary, ExportWriter, export_log,
};
pub use timeline::{Cause, Step, TimelineEntry, TimelineError, joined_timeline, timeline};
pub use verify::{ExportReport, LineBreak, LineBreakKind, scan_export, verify_export};

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::event::Event;
use crate::id::{GlobalPosition, RequestId, Version};
use crate::lifecycle::{RequestState, evolve};
use crate::request::{AcmRequestBody, MembershipOperation, MigrationOperation, UserResult};
use crate::store::Envelope;

/// A log that cannot be replayed as it stands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
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

/// What a request of a kind other than provision asks, in words.
fn what(body: &AcmRequestBody) -> String {
    match body {
        AcmRequestBody::GroupMembershipUpdate {
            group,
            users,
            operation,
            urgency,
        } => {
            let (verb, prep) = match operation {
                MembershipOperation::Add => ("add", "to"),
                MembershipOperation::Delete => ("delete", "from"),
            };
            let urgency = urgency
                .map(|u| format!(" ({u} urgency)"))
                .unwrap_or_default();
            format!(
                "{verb} {} user(s) {prep} group {group}{urgency}",
                users.len()
            )
        }
        AcmRequestBody::UserMigrationManagement { users, operation } => match operation {
            MigrationOperation::Add => format!("authorise {} user(s) to migrate", users.len()),
            MigrationOperation::Remove => format!(
                "remove {} user(s) from those authorised to migrate",
                users.len()
            ),
        },
        AcmRequestBody::InterconnectionGroupIdentityProvision { groups } => {
            format!("provide {} group(s)", groups.len())
        }
    }
}

/// A short human description of an event.
pub fn summary(event: &Event) -> String {
    match event {
        Event::Submitted { request, .. } => match &request.body {
            AcmRequestBody::InterconnectionGroupIdentityProvision { groups } => format!(
                "{} asks to provide {} group(s) to {} in {}",
                request.requester,
                groups.len(),
                request.target,
                request.partner
            ),
            body => format!(
                "{} asks {} in {} to {}",
                request.requester,
                request.target,
                request.partner,
                what(body)
            ),
        },
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
        Event::Undeliverable => "undeliverable: the partner did not acknowledge in time".into(),
        Event::UndeliverableDelivered { to } => format!("undeliverable notice delivered to {to}"),
        Event::WithdrawalRequested { by, .. } => format!("{by} asks to withdraw"),
        Event::WithdrawalRefused => "partner: too late to withdraw".into(),
        Event::WithdrawalOutcomeDelivered { to } => format!("withdrawal outcome delivered to {to}"),
        Event::Withdrawn => "withdrawn".into(),
        Event::Stored { from, request, .. } => match &request.body {
            AcmRequestBody::InterconnectionGroupIdentityProvision { groups } => format!(
                "stored request from {from}: {} group(s) for {}",
                groups.len(),
                request.target
            ),
            body => format!(
                "stored request from {from} for {}: {}",
                request.target,
                what(body)
            ),
        },
        Event::Verified {
            recipients,
            user_results,
        } => {
            let mut text = format!(
                "verified; pending for {}",
                recipients
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let refused = user_results
                .iter()
                .filter(|r| matches!(r, UserResult::Refused { .. }))
                .count();
            if refused > 0 {
                let _ = write!(
                    text,
                    "; {refused} of {} listed user(s) not applicable here",
                    user_results.len()
                );
            }
            text
        }
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
