//! Background duties: expiry, send deadlines, acceptance hooks, and following the store's
//! log to notify logged-on users of what other processes made pending.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;

use crate::event::Event;
use crate::id::{GlobalPosition, RequestId};
use crate::lifecycle::{Command, RequestState};
use crate::ports::Ids;
use crate::request::{AcmRequest, AcmResponse};
use crate::store::Actor;

/// Acceptance hooks run at once in one pass.
const HOOKS_AT_ONCE: usize = 16;
use crate::views::TimerKind;

use super::{AcmServer, RelayReport, ServiceError};

/// Most requests one duty pass takes from the store.
const DUTY_BATCH: usize = 512;

/// One of the server's background duties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Duty {
    /// Expiring partner requests pending too long.
    Expiry,
    /// Recording primary requests undeliverable past the send deadline.
    SendDeadline,
    /// Sending the outbox.
    Relay,
    /// Running acceptance hooks.
    Hooks,
}

impl fmt::Display for Duty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Expiry => "expiry",
            Self::SendDeadline => "send deadline",
            Self::Relay => "relay",
            Self::Hooks => "acceptance hooks",
        })
    }
}

/// What one [`AcmServer::tick`] did, and every error each duty met.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct TickReport {
    /// Requests expired.
    pub expired: usize,
    /// Requests recorded undeliverable.
    pub undeliverable: usize,
    /// The relay pass.
    pub relay: RelayReport,
    /// Acceptance hooks run.
    pub hooks: usize,
    /// Every error met, by duty; a failing duty does not stop the others.
    pub errors: Vec<(Duty, ServiceError)>,
}

/// `now - by`, or `None` when that is before chrono's range (nothing can be due).
fn cutoff(now: DateTime<Utc>, by: Duration) -> Option<DateTime<Utc>> {
    now.checked_sub_signed(by)
}

impl AcmServer {
    /// Expires every open request at this partner whose pending time has run out; the
    /// first error after trying them all.
    pub async fn expire_due(&self) -> Result<usize, ServiceError> {
        first_error(self.expiry_pass().await)
    }

    async fn expiry_pass(&self) -> (usize, Vec<ServiceError>) {
        let Some(ttl) = self.config.pending_ttl else {
            return (0, Vec::new());
        };
        let now = self.ports.clock.now();
        self.timer_pass(TimerKind::Expiry, now, ttl, |this| {
            Ok(Command::Expire {
                now,
                ttl,
                message_id: this.ports.ids.message_id()?,
            })
        })
        .await
    }

    /// Records undeliverable every request its partner has not acknowledged within the send
    /// deadline, and tells its requester; the first error after trying them all.
    pub async fn give_up_due(&self) -> Result<usize, ServiceError> {
        first_error(self.deadline_pass().await)
    }

    async fn deadline_pass(&self) -> (usize, Vec<ServiceError>) {
        let Some(deadline) = self.config.send_deadline else {
            return (0, Vec::new());
        };
        let now = self.ports.clock.now();
        self.timer_pass(TimerKind::SendDeadline, now, deadline, |_| {
            Ok(Command::GiveUp { now, deadline })
        })
        .await
    }

    async fn timer_pass(
        &self,
        kind: TimerKind,
        now: DateTime<Utc>,
        after: Duration,
        command: impl Fn(&Self) -> Result<Command, ServiceError>,
    ) -> (usize, Vec<ServiceError>) {
        let Some(since) = cutoff(now, after) else {
            return (0, Vec::new());
        };
        let due = match self.store.due_timers(kind, since, DUTY_BATCH).await {
            Ok(due) => due,
            Err(error) => return (0, vec![error.into()]),
        };
        let actor = Actor::System(self.config.system.clone());
        let mut done = 0;
        let mut errors = Vec::new();
        for id in due {
            let result = match command(self) {
                Ok(command) => self.execute(id, &command, &actor, None).await,
                Err(error) => Err(error),
            };
            match result {
                Ok(_) => done += 1,
                Err(ServiceError::Domain(error)) => {
                    tracing::debug!(%id, %error, ?kind, "request moved on before its timer ran out");
                }
                Err(error) => errors.push(error),
            }
        }
        (done, errors)
    }

    /// Runs the acceptance hook for every accepted request not yet applied; the first error
    /// after trying them all. A hook that fails is tried again at the next pass.
    pub async fn apply_acceptances(&self) -> Result<usize, ServiceError> {
        first_error(self.hook_pass().await)
    }

    async fn hook_pass(&self) -> (usize, Vec<ServiceError>) {
        let due = match self.store.due_hooks(DUTY_BATCH).await {
            Ok(due) => due,
            Err(error) => return (0, vec![error.into()]),
        };
        let actor = Actor::System(self.config.system.clone());
        // Several at once: one hook's append need not wait for the previous one's commit (a
        // pass of one at a time held B's relay behind it under load), and group commit
        // records them together.
        let outcomes: Vec<Option<Result<(), ServiceError>>> = futures_util::stream::iter(due)
            .map(|id| self.apply_one(id, &actor))
            .buffer_unordered(HOOKS_AT_ONCE)
            .collect()
            .await;
        let mut applied = 0;
        let mut errors = Vec::new();
        for outcome in outcomes.into_iter().flatten() {
            match outcome {
                Ok(()) => applied += 1,
                Err(error) => errors.push(error),
            }
        }
        (applied, errors)
    }

    /// Runs the hook of one accepted request and records it: `None` when there was nothing
    /// to apply, or the hook failed (it is tried again at the next pass).
    async fn apply_one(&self, id: RequestId, actor: &Actor) -> Option<Result<(), ServiceError>> {
        let (request, response) = match self.accepted(id).await {
            Ok(Some(found)) => found,
            Ok(None) => return None,
            Err(error) => return Some(Err(error)),
        };
        match self.ports.hook.accepted(&request, &response).await {
            Ok(()) => Some(
                self.execute(id, &Command::RecordAcceptanceApplied, actor, None)
                    .await
                    .map(|_| ()),
            ),
            Err(error) => {
                tracing::warn!(%id, %error, "acceptance hook failed; will retry");
                None
            }
        }
    }

    async fn accepted(
        &self,
        id: RequestId,
    ) -> Result<Option<(Arc<AcmRequest>, AcmResponse)>, ServiceError> {
        Ok(match self.state(id).await? {
            RequestState::Partner(p) => p
                .response
                .as_ref()
                .map(|(_, response)| (p.request.clone(), response.clone())),
            _ => None,
        })
    }

    /// One round of background work: expiry, send deadlines, the outbox relay, acceptance
    /// hooks. Every duty runs whatever the others met; the report lists every error.
    pub async fn tick(&self) -> TickReport {
        let mut report = TickReport::default();
        let (expired, errors) = self.expiry_pass().await;
        report.expired = expired;
        report
            .errors
            .extend(errors.into_iter().map(|e| (Duty::Expiry, e)));
        let (undeliverable, errors) = self.deadline_pass().await;
        report.undeliverable = undeliverable;
        report
            .errors
            .extend(errors.into_iter().map(|e| (Duty::SendDeadline, e)));
        let (relay, errors) = self.relay_pass().await;
        report.relay = relay;
        report
            .errors
            .extend(errors.into_iter().map(|e| (Duty::Relay, e)));
        let (hooks, errors) = self.hook_pass().await;
        report.hooks = hooks;
        report
            .errors
            .extend(errors.into_iter().map(|e| (Duty::Hooks, e)));
        for (duty, error) in &report.errors {
            tracing::warn!(%duty, %error, "duty failed; will run again");
        }
        report
    }

    /// Follows the store's log from `after` for as long as it runs, notifying the sessions
    /// of users for whom an event made something pending: this is how a server learns of
    /// requests that another process wrote to the same store. Returns only when the store's
    /// subscription fails.
    pub async fn follow(&self, after: GlobalPosition) -> ServiceError {
        let mut log = self.store.subscribe(after);
        while let Some(envelope) = log.next().await {
            let envelope = match envelope {
                Ok(envelope) => envelope,
                Err(error) => return error.into(),
            };
            let id = envelope.stream_id.0;
            // A write this server did not make (another process on the store) leaves its
            // cached state behind: forget it, so the next read is the stream's.
            self.cache.forget_older(id, envelope.version);
            if !may_make_pending(&envelope.payload) {
                continue;
            }
            match self.state(id).await {
                Ok(state) => {
                    for user in state.pending_for() {
                        self.sessions.notify(user);
                    }
                }
                Err(error) => tracing::warn!(%id, %error, "could not read a followed request"),
            }
        }
        ServiceError::Store(crate::store::StoreError::Backend(
            "the store's subscription ended".into(),
        ))
    }
}

/// Whether `event` can make a request pending for a user (the events after which
/// [`RequestState::pending_for`] can grow).
fn may_make_pending(event: &Event) -> bool {
    matches!(
        event,
        Event::Verified { .. }
            | Event::ResponseReceived { .. }
            | Event::Undeliverable
            | Event::Withdrawn
            | Event::WithdrawalRefused
    )
}

fn first_error(pass: (usize, Vec<ServiceError>)) -> Result<usize, ServiceError> {
    match pass.1.into_iter().next() {
        Some(error) => Err(error),
        None => Ok(pass.0),
    }
}
