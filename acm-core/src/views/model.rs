//! The views held in memory: what the memory store keeps, and what the conformance suite
//! expects of every store.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use foldhash::HashMap;

use crate::id::{IdempotencyKey, McServiceId, MessageId, RequestId, SystemId};

use super::port::{Claim, InboxEntry, OutboxStatus, OwedMessage, SendFailure, SubmissionEntry};
use super::{Timer, TimerKind, ViewChanges};

/// One owed message in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// The request that owes it.
    pub request_id: RequestId,
    /// The partner it is for.
    pub partner: SystemId,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When it was queued (the recording time of the event that queued it).
    pub queued_at: DateTime<Utc>,
    /// Not due before this (after a failure).
    pub retry_at: Option<DateTime<Utc>>,
    /// Claimed by a relay until this.
    pub claimed_until: Option<DateTime<Utc>>,
    /// The partner's problem type, when it refused the message.
    pub refused: Option<String>,
}

/// Every view of an ACM store, in memory.
///
/// [`ViewModel::apply`] applies one append's [`ViewChanges`]; [`ViewModel::check`] is what a
/// store asks first, so that an append claiming a taken key writes nothing.
#[derive(Debug, Clone, Default)]
pub struct ViewModel {
    pending: HashMap<McServiceId, BTreeSet<RequestId>>,
    outbox: HashMap<MessageId, OutboxRow>,
    hooks: BTreeSet<RequestId>,
    timers: BTreeMap<TimerKind, BTreeSet<(DateTime<Utc>, RequestId)>>,
    timer_of: HashMap<RequestId, Timer>,
    inbox: HashMap<MessageId, InboxEntry>,
    submissions: HashMap<(McServiceId, IdempotencyKey), SubmissionEntry>,
}

impl ViewModel {
    /// Empty views.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first key `changes` claims that another request holds.
    pub fn check(&self, request_id: RequestId, changes: &ViewChanges) -> Result<(), Claim> {
        if let Some(entry) = &changes.inbox
            && self
                .inbox
                .get(&entry.message_id)
                .is_some_and(|held| held.request_id != request_id)
        {
            return Err(Claim::Message(entry.message_id));
        }
        if let Some(entry) = &changes.submission
            && self
                .submissions
                .get(&(entry.requester.clone(), entry.key.clone()))
                .is_some_and(|held| held.request_id != request_id)
        {
            return Err(Claim::Submission {
                requester: entry.requester.clone(),
                key: entry.key.clone(),
            });
        }
        Ok(())
    }

    /// Applies one append's changes to `request_id`'s views; `at` is the recording time of
    /// the append's last event.
    pub fn apply(&mut self, request_id: RequestId, changes: &ViewChanges, at: DateTime<Utc>) {
        for user in &changes.pending_removed {
            if let Some(set) = self.pending.get_mut(user) {
                set.remove(&request_id);
                if set.is_empty() {
                    self.pending.remove(user);
                }
            }
        }
        for user in &changes.pending_added {
            self.pending
                .entry(user.clone())
                .or_default()
                .insert(request_id);
        }
        if let Some(message_id) = changes.outbox_settled {
            self.outbox.remove(&message_id);
        }
        if let Some(queued) = &changes.outbox_queued {
            self.outbox.insert(
                queued.message_id,
                OutboxRow {
                    request_id,
                    partner: queued.partner.clone(),
                    attempts: 0,
                    queued_at: at,
                    retry_at: None,
                    claimed_until: None,
                    refused: None,
                },
            );
        }
        match changes.hook {
            Some(true) => {
                self.hooks.insert(request_id);
            }
            Some(false) => {
                self.hooks.remove(&request_id);
            }
            None => {}
        }
        if let Some(timer) = changes.timer {
            if let Some(old) = self.timer_of.remove(&request_id)
                && let Some(set) = self.timers.get_mut(&old.kind)
            {
                set.remove(&(old.since, request_id));
            }
            if let Some(new) = timer {
                self.timers
                    .entry(new.kind)
                    .or_default()
                    .insert((new.since, request_id));
                self.timer_of.insert(request_id, new);
            }
        }
        if let Some(entry) = &changes.inbox {
            self.inbox.insert(entry.message_id, entry.clone());
        }
        if let Some(entry) = &changes.submission {
            self.submissions
                .insert((entry.requester.clone(), entry.key.clone()), entry.clone());
        }
    }

    /// Requests pending for `user`, oldest first.
    pub fn pending_for(&self, user: &McServiceId) -> Vec<RequestId> {
        self.pending
            .get(user)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default()
    }

    /// How many items are pending, over every user.
    pub fn pending_count(&self) -> u64 {
        self.pending.values().map(|s| s.len() as u64).sum()
    }

    /// Every user with something pending, and what.
    pub fn pending(&self) -> BTreeMap<McServiceId, BTreeSet<RequestId>> {
        self.pending
            .iter()
            .map(|(u, s)| (u.clone(), s.clone()))
            .collect()
    }

    /// Claims up to `limit` messages due at `now`, longest-waiting first.
    pub fn claim_outbox(
        &mut self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Vec<OwedMessage> {
        let mut due: Vec<(&MessageId, &OutboxRow)> = self
            .outbox
            .iter()
            .filter(|(_, row)| row.retry_at.is_none_or(|t| t <= now))
            .filter(|(_, row)| row.claimed_until.is_none_or(|t| t <= now))
            .collect();
        due.sort_unstable_by_key(|(id, row)| (row.queued_at, **id));
        due.truncate(limit);
        let claimed: Vec<OwedMessage> = due
            .into_iter()
            .map(|(id, row)| OwedMessage {
                request_id: row.request_id,
                message_id: *id,
                partner: row.partner.clone(),
                attempts: row.attempts,
            })
            .collect();
        let until = now
            .checked_add_signed(lease)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        for owed in &claimed {
            if let Some(row) = self.outbox.get_mut(&owed.message_id) {
                row.claimed_until = Some(until);
            }
        }
        claimed
    }

    /// Records a failed send; the attempts so far, or `None` when not owed.
    pub fn record_failed_send(
        &mut self,
        message_id: MessageId,
        failure: SendFailure,
    ) -> Option<u32> {
        let row = self.outbox.get_mut(&message_id)?;
        row.attempts = row.attempts.saturating_add(1);
        row.claimed_until = None;
        match failure {
            SendFailure::Unreachable { retry_at } => {
                row.retry_at = Some(retry_at);
                row.refused = None;
            }
            SendFailure::Refused { retry_at, problem } => {
                row.retry_at = Some(retry_at);
                row.refused = Some(problem);
            }
        }
        Some(row.attempts)
    }

    /// The outbox, by message id.
    pub fn outbox(&self) -> BTreeMap<MessageId, OutboxRow> {
        self.outbox.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    /// How the outbox stands.
    pub fn outbox_status(&self) -> OutboxStatus {
        OutboxStatus {
            depth: self.outbox.len() as u64,
            parked: self.outbox.values().filter(|r| r.refused.is_some()).count() as u64,
            oldest_queued_at: self.outbox.values().map(|r| r.queued_at).min(),
            max_attempts: self.outbox.values().map(|r| r.attempts).max().unwrap_or(0),
        }
    }

    /// Up to `limit` requests whose acceptance hook is due, oldest first.
    pub fn due_hooks(&self, limit: usize) -> Vec<RequestId> {
        self.hooks.iter().take(limit).copied().collect()
    }

    /// Up to `limit` requests whose `kind` timer started at or before `since`.
    pub fn due_timers(
        &self,
        kind: TimerKind,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Vec<RequestId> {
        self.timers.get(&kind).map_or_else(Vec::new, |set| {
            set.iter()
                .take_while(|(at, _)| *at <= since)
                .take(limit)
                .map(|(_, id)| *id)
                .collect()
        })
    }

    /// Every request's timer.
    pub fn timers(&self) -> BTreeMap<RequestId, Timer> {
        self.timer_of.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// The request recording message `message_id`.
    pub fn received(&self, message_id: MessageId) -> Option<InboxEntry> {
        self.inbox.get(&message_id).cloned()
    }

    /// The whole inbox.
    pub fn inbox(&self) -> BTreeMap<MessageId, InboxEntry> {
        self.inbox.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    /// The submission `requester` made with `key`.
    pub fn submission(
        &self,
        requester: &McServiceId,
        key: &IdempotencyKey,
    ) -> Option<SubmissionEntry> {
        self.submissions
            .get(&(requester.clone(), key.clone()))
            .cloned()
    }

    /// Every submission made with a key.
    pub fn submissions(&self) -> Vec<SubmissionEntry> {
        let mut all: Vec<SubmissionEntry> = self.submissions.values().cloned().collect();
        all.sort_unstable_by_key(|s| s.request_id);
        all
    }
}
