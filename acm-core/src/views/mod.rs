//! The views an ACM store keeps beside its log, and the one pure function that says how an
//! append changes them.
//!
//! Every store applies [`changes`] in the transaction of the events (the memory store to its
//! maps, the `SQLite` store to its tables), so a view never disagrees with the log, whatever
//! crashes when, and the server reads what is pending, owed or due from its store instead of
//! keeping every request in memory. The [`AcmStore`] port is what a server needs of them.

mod digest;
mod model;
mod port;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::{IdempotencyKey, McServiceId, MessageId, SystemId};
use crate::lifecycle::RequestState;

pub use digest::{Digest, request_digest, response_digest, submission_digest};
pub use model::{OutboxRow, ViewModel};
pub use port::{
    AcmStore, Claim, InboxEntry, OutboxStatus, OwedMessage, SendFailure, SubmissionEntry,
};

/// A due time a server acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// An open request at the partner expires `pending_ttl` after it was stored.
    Expiry,
    /// A request the partner has not acknowledged becomes undeliverable `send_deadline` after
    /// it was submitted.
    SendDeadline,
}

/// A request's timer: what runs out, counted from when. The server turns its configured
/// durations into a cut-off, so the store needs no configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    /// What runs out.
    pub kind: TimerKind,
    /// The instant it is counted from (stored or submitted).
    pub since: DateTime<Utc>,
}

/// A message newly owed to a partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// Its id (the partner deduplicates by it).
    pub message_id: MessageId,
    /// The partner it is for.
    pub partner: SystemId,
}

/// How one append changes the views of its request. Empty when nothing changes, which is
/// most appends' case for most views.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewChanges {
    /// Users for whom the request is no longer pending.
    pub pending_removed: Vec<McServiceId>,
    /// Users for whom the request became pending (to notify, if logged on).
    pub pending_added: Vec<McServiceId>,
    /// The message no longer owed (acknowledged, or made moot).
    pub outbox_settled: Option<MessageId>,
    /// The message now owed.
    pub outbox_queued: Option<Queued>,
    /// `Some(true)`: the acceptance hook became due; `Some(false)`: no longer due.
    pub hook: Option<bool>,
    /// `Some(timer)`: the request's timer is now this (`None`: it has none any more).
    pub timer: Option<Option<Timer>>,
    /// A partner message the request now records as received here.
    pub inbox: Option<InboxEntry>,
    /// The client's idempotency key, claimed by this request.
    pub submission: Option<SubmissionEntry>,
}

impl ViewChanges {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The keys this change claims for its request: a store refuses the append when another
    /// request holds one ([`Claim`]).
    pub fn claims(&self) -> impl Iterator<Item = Claim> + '_ {
        let message = self.inbox.as_ref().map(|i| Claim::Message(i.message_id));
        let submission = self.submission.as_ref().map(|s| Claim::Submission {
            requester: s.requester.clone(),
            key: s.key.clone(),
        });
        message.into_iter().chain(submission)
    }
}

/// What the views of one request hold in `state`: the changes from [`RequestState::Empty`].
pub fn of_state(state: &RequestState) -> ViewChanges {
    changes(&RequestState::Empty, state)
}

/// How the views change when a request goes from `before` to `after` (one append: one or
/// more events of one stream). The one place the rules of every view live:
/// - pending: [`RequestState::pending_for`];
/// - outbox: [`RequestState::owed_message_id`] and the partner it is owed to;
/// - hooks: [`RequestState::acceptance_due`];
/// - timers: an open partner request's expiry, a primary request's send deadline;
/// - inbox: the partner message a request records (the request at the partner, the response
///   at the primary), with its [`Digest`];
/// - submissions: the client's idempotency key of a primary request.
pub fn changes(before: &RequestState, after: &RequestState) -> ViewChanges {
    Summary::of(before).changes_to(after)
}

/// What the views hold of one state: enough to compute [`changes`] once the state has been
/// folded further, without keeping a copy of it (a store folds the events into the state it
/// has, and summarises it first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    empty: bool,
    pending: Users,
    owed: Option<MessageId>,
    hook: bool,
    timer: Option<Timer>,
    received: Option<MessageId>,
}

/// A copy of a short list of users that allocates only for two or more (alias targets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Users {
    None,
    One(McServiceId),
    Many(Vec<McServiceId>),
}

impl Users {
    /// A copy of `users`.
    pub(crate) fn of(users: &[McServiceId]) -> Self {
        match users {
            [] => Self::None,
            [one] => Self::One(one.clone()),
            many => Self::Many(many.to_vec()),
        }
    }

    /// The users.
    pub(crate) fn as_slice(&self) -> &[McServiceId] {
        match self {
            Self::None => &[],
            Self::One(user) => std::slice::from_ref(user),
            Self::Many(users) => users,
        }
    }
}

impl Summary {
    /// The summary of `state`.
    pub fn of(state: &RequestState) -> Self {
        Self {
            empty: matches!(state, RequestState::Empty),
            pending: Users::of(state.pending_for()),
            owed: state.owed_message_id(),
            hook: state.acceptance_due(),
            timer: timer(state),
            received: received_id(state),
        }
    }

    /// How the views change from the summarised state to `after`.
    pub fn changes_to(&self, after: &RequestState) -> ViewChanges {
        let mut out = ViewChanges::default();
        let (was, is) = (self.pending.as_slice(), after.pending_for());
        if was != is {
            out.pending_removed = was.iter().filter(|u| !is.contains(u)).cloned().collect();
            out.pending_added = is.iter().filter(|u| !was.contains(u)).cloned().collect();
        }
        let owed_after = after.owed_message_id();
        if self.owed != owed_after {
            out.outbox_settled = self.owed;
            out.outbox_queued = owed_after.and_then(|message_id| {
                Some(Queued {
                    message_id,
                    partner: owed_to(after)?.clone(),
                })
            });
        }
        let hook_after = after.acceptance_due();
        if self.hook != hook_after {
            out.hook = Some(hook_after);
        }
        let timer_after = timer(after);
        if self.timer != timer_after {
            out.timer = Some(timer_after);
        }
        // The digest costs a hash of the message: only a newly received message pays it.
        if self.received != received_id(after) {
            out.inbox = inbox(after);
        }
        if self.empty {
            out.submission = submission(after);
        }
        out
    }
}

/// Whether nothing of `state` is in any view that a server works from: nothing pending,
/// owed, due or timed. Such a request is finished here and leaves the server's cache.
pub fn is_settled(state: &RequestState) -> bool {
    state.pending_for().is_empty()
        && state.owed_message_id().is_none()
        && !state.acceptance_due()
        && timer(state).is_none()
}

fn owed_to(state: &RequestState) -> Option<&SystemId> {
    match state {
        RequestState::Primary(p) => p.forward.as_ref().map(|(to, _)| to),
        RequestState::Partner(p) => Some(&p.from),
        RequestState::Empty => None,
    }
}

/// The timer `state` runs on, if any.
pub fn timer(state: &RequestState) -> Option<Timer> {
    match state {
        RequestState::Partner(p) if p.is_open() => Some(Timer {
            kind: TimerKind::Expiry,
            since: p.stored_at,
        }),
        RequestState::Primary(p) if p.awaiting_ack() => Some(Timer {
            kind: TimerKind::SendDeadline,
            since: p.submitted_at,
        }),
        _ => None,
    }
}

fn received_id(state: &RequestState) -> Option<MessageId> {
    match state {
        RequestState::Partner(p) => Some(p.message_id),
        RequestState::Primary(p) => p.response.as_ref().map(|(m, _)| *m),
        RequestState::Empty => None,
    }
}

fn inbox(state: &RequestState) -> Option<InboxEntry> {
    match state {
        RequestState::Partner(p) => Some(InboxEntry {
            message_id: p.message_id,
            request_id: p.request.request_id,
            digest: request_digest(&p.from, &p.request),
        }),
        RequestState::Primary(p) => p
            .response
            .as_ref()
            .map(|(message_id, response)| InboxEntry {
                message_id: *message_id,
                request_id: p.request.request_id,
                digest: response_digest(&p.request.partner, p.request.request_id, response),
            }),
        RequestState::Empty => None,
    }
}

fn submission(state: &RequestState) -> Option<SubmissionEntry> {
    match state {
        RequestState::Primary(p) => {
            let key: &IdempotencyKey = p.idempotency_key.as_ref()?;
            Some(SubmissionEntry {
                requester: p.request.requester.clone(),
                key: key.clone(),
                request_id: p.request.request_id,
                digest: submission_digest(&p.request),
            })
        }
        _ => None,
    }
}
