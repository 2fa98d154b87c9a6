//! How one ACM server is configured, and the checks that refuse a configuration out of range.

use chrono::Duration;

use crate::id::SystemId;
use crate::request::Limits;

/// Longest pending time a server accepts; for requests that never expire, say so with
/// `pending_ttl: None`.
pub const MAX_PENDING_TTL: Duration = Duration::days(100 * 366);

/// Longest back-off between two attempts to send an outbox message that a server accepts.
pub const MAX_BACKOFF: Duration = Duration::days(1);

/// Configuration of one ACM server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// This MC system.
    pub system: SystemId,
    /// The domains this MC system is the group home system for: step 2 refuses a request
    /// naming a group homed anywhere else. Defaults to `system` alone.
    pub home_domains: Vec<SystemId>,
    /// Limits on requests.
    pub limits: Limits,
    /// How long a request may stay pending at the partner before it expires; `None`: never.
    /// At most [`MAX_PENDING_TTL`].
    pub pending_ttl: Option<Duration>,
    /// How long the primary keeps sending a request its partner has not acknowledged before
    /// it records it undeliverable and tells the requester; `None`: for ever. At most
    /// [`MAX_PENDING_TTL`].
    pub send_deadline: Option<Duration>,
    /// Longest pause between two attempts to send an outbox message; at most
    /// [`MAX_BACKOFF`].
    pub max_backoff: Duration,
    /// How long a message the partner refused waits before it is tried again (it is parked
    /// meanwhile, and shown as such in the outbox status). At least `max_backoff`.
    pub refused_retry: Duration,
    /// How long one send may take before the transport gives up on it.
    pub send_timeout: Duration,
    /// How long a relay's claim on a message lasts: longer than `send_timeout`, so that no
    /// other relay sends the message while a send may still be answered.
    pub claim_lease: Duration,
    /// Most sends in flight to one partner at once.
    pub sends_per_partner: usize,
    /// Most partners sent to at once.
    pub partners_at_once: usize,
    /// Most request states the server caches; a miss reads one stream.
    pub cache_capacity: usize,
}

impl ServerConfig {
    /// Defaults for `system`: home for its own domain, default limits, 30 days pending, no
    /// send deadline, back-off up to a minute, refused messages retried hourly, sends of 10 s
    /// under a 30 s claim, 8 sends per partner and 16 partners at once, 10,000 cached states.
    pub fn new(system: SystemId) -> Self {
        Self {
            home_domains: vec![system.clone()],
            system,
            limits: Limits::default(),
            pending_ttl: Some(Duration::days(30)),
            send_deadline: None,
            max_backoff: Duration::minutes(1),
            refused_retry: Duration::hours(1),
            send_timeout: Duration::seconds(10),
            claim_lease: Duration::seconds(30),
            sends_per_partner: 8,
            partners_at_once: 16,
            cache_capacity: 10_000,
        }
    }

    /// Checks that every setting is in range; [`AcmServer::open`](super::AcmServer::open)
    /// refuses a configuration that is not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let in_range = |d: Duration| d > Duration::zero() && d <= MAX_PENDING_TTL;
        if let Some(ttl) = self.pending_ttl
            && !in_range(ttl)
        {
            return Err(ConfigError::PendingTtlOutOfRange { ttl });
        }
        if let Some(deadline) = self.send_deadline
            && !in_range(deadline)
        {
            return Err(ConfigError::SendDeadlineOutOfRange { deadline });
        }
        if self.max_backoff <= Duration::zero() || self.max_backoff > MAX_BACKOFF {
            return Err(ConfigError::MaxBackoffOutOfRange {
                max_backoff: self.max_backoff,
            });
        }
        if self.refused_retry < self.max_backoff || self.refused_retry > MAX_PENDING_TTL {
            return Err(ConfigError::RefusedRetryOutOfRange {
                refused_retry: self.refused_retry,
            });
        }
        if self.send_timeout <= Duration::zero() || self.send_timeout.to_std().is_err() {
            return Err(ConfigError::SendTimeoutOutOfRange {
                send_timeout: self.send_timeout,
            });
        }
        if self.claim_lease <= self.send_timeout || self.claim_lease > MAX_BACKOFF {
            return Err(ConfigError::ClaimLeaseTooShort {
                claim_lease: self.claim_lease,
                send_timeout: self.send_timeout,
            });
        }
        if self.sends_per_partner == 0 || self.partners_at_once == 0 {
            return Err(ConfigError::NoSendsAllowed);
        }
        if self.cache_capacity == 0 {
            return Err(ConfigError::NoCache);
        }
        if self.limits.max_groups == 0 {
            return Err(ConfigError::NoGroupsAllowed);
        }
        if self.home_domains.is_empty() {
            return Err(ConfigError::NoHomeDomain);
        }
        Ok(())
    }
}

/// A [`ServerConfig`] setting out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The pending time is not positive, or longer than [`MAX_PENDING_TTL`].
    #[error(
        "pending time {ttl} is out of range: it must be positive and at most 100 years; \
         for requests that never expire, leave it unset"
    )]
    PendingTtlOutOfRange {
        /// The configured pending time.
        ttl: Duration,
    },
    /// The send deadline is not positive, or longer than [`MAX_PENDING_TTL`].
    #[error(
        "send deadline {deadline} is out of range: it must be positive and at most 100 \
         years; to keep sending for ever, leave it unset"
    )]
    SendDeadlineOutOfRange {
        /// The configured deadline.
        deadline: Duration,
    },
    /// The longest back-off is not positive, or longer than [`MAX_BACKOFF`].
    #[error(
        "longest back-off {max_backoff} is out of range: it must be positive and at most a day"
    )]
    MaxBackoffOutOfRange {
        /// The configured back-off.
        max_backoff: Duration,
    },
    /// A refused message would be retried sooner than an unreachable one, or never.
    #[error(
        "refused-message retry {refused_retry} is out of range: at least the longest \
         back-off, at most 100 years"
    )]
    RefusedRetryOutOfRange {
        /// The configured retry.
        refused_retry: Duration,
    },
    /// The send timeout is not positive.
    #[error("send timeout {send_timeout} must be positive")]
    SendTimeoutOutOfRange {
        /// The configured timeout.
        send_timeout: Duration,
    },
    /// The claim on a message would run out while its send may still be answered (or is
    /// longer than a day).
    #[error(
        "claim lease {claim_lease} must be longer than the send timeout {send_timeout} and \
         at most a day"
    )]
    ClaimLeaseTooShort {
        /// The configured lease.
        claim_lease: Duration,
        /// The configured send timeout.
        send_timeout: Duration,
    },
    /// No send could ever be in flight.
    #[error("sends per partner and partners at once must both be at least 1")]
    NoSendsAllowed,
    /// The cache holds nothing.
    #[error("the state cache must hold at least one request")]
    NoCache,
    /// `limits.max_groups` is zero: no request could ever be sent.
    #[error("limits allow no group in a request")]
    NoGroupsAllowed,
    /// `home_domains` is empty: step 2 would refuse every group.
    #[error("no home domain: this MC system would be home for no group")]
    NoHomeDomain,
}
