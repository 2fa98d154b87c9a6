//! Sending the outbox: owed messages claimed from the store, sent concurrently with a bound
//! per partner, each acknowledgement recorded as an event.

use chrono::{DateTime, Duration, Utc};
use futures_util::stream::{self, StreamExt};

use crate::id::{RequestId, SystemId};
use crate::lifecycle::{Command, RequestState};
use crate::message::{PartnerAck, PartnerMessage};
use crate::ports::TransportError;
use crate::store::Actor;
use crate::views::{OwedMessage, SendFailure};

use super::{AcmServer, ServiceError};

/// Most messages one relay pass claims.
const RELAY_BATCH: usize = 512;

/// What one relay pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayReport {
    /// Messages acknowledged (and the acknowledgement recorded).
    pub acknowledged: usize,
    /// Messages that got no answer; due again after a back-off.
    pub unreachable: usize,
    /// Messages the partner refused; parked, due again after the refused-message retry.
    pub refused: usize,
    /// Claimed messages no longer owed when their turn came (settled meanwhile).
    pub not_owed: usize,
}

impl RelayReport {
    fn add(&mut self, other: Self) {
        self.acknowledged += other.acknowledged;
        self.unreachable += other.unreachable;
        self.refused += other.refused;
        self.not_owed += other.not_owed;
    }
}

/// The outcome of one send.
enum Sent {
    Acked(RequestId, SystemId, Command, crate::id::MessageId),
    Failed(OwedMessage, SendFailure),
    NotOwed,
}

impl AcmServer {
    /// Sends every due outbox message once and records each acknowledgement.
    ///
    /// Sends to one partner run at most `sends_per_partner` at a time and partners at most
    /// `partners_at_once` at a time, so a slow partner delays only its own messages; each
    /// send has the configured `send_timeout`, shorter than the claim's lease. The
    /// acknowledgements of one partner are recorded together, so a store with group commit
    /// writes them in one transaction. An unreachable partner's message is due again after
    /// an exponential back-off; a refused one is parked until the refused-message retry.
    ///
    /// Every claimed message is tried; the first error met (a store failing to record) is
    /// returned after the pass. [`AcmServer::tick`] reports every error.
    pub async fn relay(&self) -> Result<RelayReport, ServiceError> {
        let (report, errors) = self.relay_pass().await;
        match errors.into_iter().next() {
            Some(error) => Err(error),
            None => Ok(report),
        }
    }

    pub(crate) async fn relay_pass(&self) -> (RelayReport, Vec<ServiceError>) {
        let now = self.ports.clock.now();
        let due = match self
            .store
            .claim_outbox(now, self.config.claim_lease, self.claim_limit())
            .await
        {
            Ok(due) => due,
            Err(error) => return (RelayReport::default(), vec![error.into()]),
        };
        let mut by_partner: Vec<(SystemId, Vec<OwedMessage>)> = Vec::new();
        for owed in due {
            match by_partner.iter_mut().find(|(p, _)| *p == owed.partner) {
                Some((_, list)) => list.push(owed),
                None => by_partner.push((owed.partner.clone(), vec![owed])),
            }
        }
        let results: Vec<(RelayReport, Vec<ServiceError>)> = stream::iter(by_partner)
            .map(|(partner, owed)| self.relay_to(partner, owed))
            .buffer_unordered(self.config.partners_at_once)
            .collect()
            .await;
        let mut report = RelayReport::default();
        let mut errors = Vec::new();
        for (r, e) in results {
            report.add(r);
            errors.extend(e);
        }
        (report, errors)
    }

    /// Most messages one pass claims: no more than one partner's sends can get through
    /// within a claim's lease (`sends_per_partner` at a time, each up to `send_timeout`), so
    /// no claimed message outlives its lease unsent, whichever partner they are for.
    fn claim_limit(&self) -> usize {
        let rounds = self
            .config
            .claim_lease
            .num_milliseconds()
            .checked_div(self.config.send_timeout.num_milliseconds().max(1))
            .and_then(|r| usize::try_from(r).ok())
            .unwrap_or(1)
            .max(1);
        self.config
            .sends_per_partner
            .saturating_mul(rounds)
            .clamp(1, RELAY_BATCH)
    }

    async fn relay_to(
        &self,
        partner: SystemId,
        owed: Vec<OwedMessage>,
    ) -> (RelayReport, Vec<ServiceError>) {
        let mut report = RelayReport::default();
        let mut errors = Vec::new();
        let sent: Vec<Result<Sent, ServiceError>> = stream::iter(owed)
            .map(|owed| self.send_one(owed))
            .buffer_unordered(self.config.sends_per_partner)
            .collect()
            .await;
        let mut acks = Vec::new();
        let mut failures = Vec::new();
        for outcome in sent {
            match outcome {
                Ok(Sent::Acked(id, to, command, message_id)) => {
                    acks.push((id, to, command, message_id));
                }
                Ok(Sent::Failed(owed, failure)) => failures.push((owed, failure)),
                Ok(Sent::NotOwed) => report.not_owed += 1,
                Err(error) => errors.push(error),
            }
        }
        // Recorded together: a store with group commit takes them in one transaction.
        let acks: Vec<(RequestId, Actor, Command, crate::id::MessageId)> = acks
            .into_iter()
            .map(|(id, to, command, message_id)| (id, Actor::System(to), command, message_id))
            .collect();
        let recorded =
            futures_util::future::join_all(acks.iter().map(|(id, actor, command, message_id)| {
                self.execute(*id, command, actor, Some((*message_id).into()))
            }))
            .await;
        for result in recorded {
            match result {
                Ok(_) => report.acknowledged += 1,
                Err(error) => errors.push(error),
            }
        }
        let recorded = futures_util::future::join_all(failures.iter().map(|(owed, failure)| {
            match failure {
                SendFailure::Refused { .. } => report.refused += 1,
                SendFailure::Unreachable { .. } => report.unreachable += 1,
            }
            self.store
                .record_failed_send(owed.message_id, failure.clone())
        }))
        .await;
        errors.extend(recorded.into_iter().filter_map(Result::err).map(Into::into));
        if !errors.is_empty() {
            tracing::warn!(%partner, errors = errors.len(), "relay pass met errors");
        }
        (report, errors)
    }

    async fn send_one(&self, owed: OwedMessage) -> Result<Sent, ServiceError> {
        let id = owed.request_id;
        let owed_here = |state: RequestState| {
            state
                .outbound()
                .filter(|(_, m)| m.message_id() == owed.message_id)
        };
        let mut found = owed_here(self.state(id).await?);
        if found.is_none() {
            // The store owes it and the cached state does not: the cache is behind (another
            // process on the store, or a command still folding). Read the stream once.
            found = owed_here(self.fresh_state(id).await?);
        }
        let Some((to, message)) = found else {
            tracing::debug!(%id, message_id = %owed.message_id, "no longer owed; not sent");
            return Ok(Sent::NotOwed);
        };
        let message_id = message.message_id();
        let timeout = self
            .config
            .send_timeout
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(10));
        let result = self.ports.transport.send(&to, &message, timeout).await;
        let command = match (&message, result) {
            (PartnerMessage::Request { .. }, Ok(PartnerAck::Stored)) => {
                Command::RecordPartnerAck { message_id }
            }
            (PartnerMessage::Response { .. }, Ok(PartnerAck::Stored)) => {
                Command::RecordResponseAck { message_id }
            }
            (
                PartnerMessage::Withdrawal { .. },
                Ok(ack @ (PartnerAck::Withdrawn | PartnerAck::TooLate)),
            ) => Command::RecordWithdrawalOutcome {
                message_id,
                withdrawn: ack == PartnerAck::Withdrawn,
            },
            (_, Ok(ack)) => {
                tracing::warn!(%id, %to, ?ack, "partner answered with an unexpected acknowledgement");
                let retry_at = self.retry_at(self.ports.clock.now(), owed.attempts);
                return Ok(Sent::Failed(owed, SendFailure::Unreachable { retry_at }));
            }
            (_, Err(TransportError::Refused { problem, .. })) => {
                tracing::warn!(%id, %to, %problem, "partner refused the message; parked");
                let retry_at = later(self.ports.clock.now(), self.config.refused_retry);
                let problem = problem.code().to_owned();
                return Ok(Sent::Failed(
                    owed,
                    SendFailure::Refused { retry_at, problem },
                ));
            }
            (_, Err(error)) => {
                tracing::debug!(%id, %to, %error, "partner message not acknowledged; will retry");
                // From when the send gave up, not when the pass began.
                let retry_at = self.retry_at(self.ports.clock.now(), owed.attempts);
                return Ok(Sent::Failed(owed, SendFailure::Unreachable { retry_at }));
            }
        };
        Ok(Sent::Acked(id, to, command, message_id))
    }

    /// Exponential back-off, 200 ms after the first failure and doubling, at most the
    /// configured longest.
    fn retry_at(&self, now: DateTime<Utc>, attempts: u32) -> DateTime<Utc> {
        let attempts = attempts.saturating_add(1);
        let backoff = Duration::milliseconds(100)
            .checked_mul(1 << attempts.min(20))
            .map_or(self.config.max_backoff, |b| b.min(self.config.max_backoff));
        later(now, backoff)
    }
}

/// `now + by`, or the last instant chrono can name.
fn later(now: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    now.checked_add_signed(by)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
