//! The ACM server service: one method per step of the procedure, for a server in either role,
//! generic over the ports.
//!
//! The service keeps each request's state and three projections in memory — pending ACM data
//! per user, the outbox (messages owed to partners) and due acceptance hooks — all derived
//! from the event log and rebuilt from it by [`AcmServer::open`]. Nothing is sent or hooked
//! before the event that decides it is stored: the relay ([`AcmServer::relay`]) reads the
//! outbox and records each acknowledgement as an event, so a crash at any point loses nothing
//! and a resend is harmless (the receiver deduplicates by message id).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use foldhash::{HashMap, HashSet};
use futures_util::StreamExt;

use crate::error::DomainError;
use crate::event::Event;
use crate::id::{
    FunctionalAlias, GlobalPosition, McServiceId, MessageId, RequestId, StreamId, SystemId, Version,
};
use crate::lifecycle::{
    Command, ReceiptFacts, RequestState, Withdrawal, decide, evolve,
};
use crate::message::{PartnerAck, PartnerMessage};
use crate::pending::{PendingAcmData, PendingItem};
use crate::ports::{
    AcceptanceHook, ClientNotifier, Clock, Directory, IdSource, Ids, OutboxLedger, OwedMessage,
    PartnerTransport, PendingAcmDataNotification,
};
use crate::request::{
    AcmRequest, AcmRequestBody, AuthorizationRefusal, Decision, Limits, Target, VerificationFailure,
};
use crate::store::{Actor, CausationId, EventStore, ExpectedVersion, NewEvent, StoreError};

/// How often a command is re-decided after losing a race for its stream.
const MAX_CONFLICT_RETRIES: usize = 8;

/// Most messages one relay pass claims from a durable outbox.
const RELAY_BATCH: usize = 256;

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
    /// Longest pause between two attempts to send an outbox message; at most
    /// [`MAX_BACKOFF`].
    pub max_backoff: Duration,
}

impl ServerConfig {
    /// Defaults for `system`: home for its own domain, default limits, 30 days pending,
    /// back-off up to a minute.
    pub fn new(system: SystemId) -> Self {
        Self {
            home_domains: vec![system.clone()],
            system,
            limits: Limits::default(),
            pending_ttl: Some(Duration::days(30)),
            max_backoff: Duration::minutes(1),
        }
    }

    /// Checks that every setting is in range; [`AcmServer::open`] refuses a configuration
    /// that is not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(ttl) = self.pending_ttl
            && (ttl <= Duration::zero() || ttl > MAX_PENDING_TTL)
        {
            return Err(ConfigError::PendingTtlOutOfRange { ttl });
        }
        if self.max_backoff <= Duration::zero() || self.max_backoff > MAX_BACKOFF {
            return Err(ConfigError::MaxBackoffOutOfRange {
                max_backoff: self.max_backoff,
            });
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
    /// The longest back-off is not positive, or longer than [`MAX_BACKOFF`].
    #[error(
        "longest back-off {max_backoff} is out of range: it must be positive and at most a day"
    )]
    MaxBackoffOutOfRange {
        /// The configured back-off.
        max_backoff: Duration,
    },
    /// `limits.max_groups` is zero: no request could ever be sent.
    #[error("limits allow no group in a request")]
    NoGroupsAllowed,
    /// `home_domains` is empty: step 2 would refuse every group.
    #[error("no home domain: this MC system would be home for no group")]
    NoHomeDomain,
}

/// The ports an [`AcmServer`] uses besides its store.
#[derive(Clone)]
pub struct Ports {
    /// Authorisation, partners, users, aliases, processing policy.
    pub directory: Arc<dyn Directory>,
    /// Messages to partner ACM servers.
    pub transport: Arc<dyn PartnerTransport>,
    /// Pending ACM data notifications to logged-on users.
    pub notifier: Arc<dyn ClientNotifier>,
    /// Called once a request is accepted here.
    pub hook: Arc<dyn AcceptanceHook>,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// Fresh ids.
    pub ids: Arc<dyn IdSource>,
    /// The store's durable outbox, if it keeps one; the relay then claims from it.
    pub outbox: Option<Arc<dyn OutboxLedger>>,
}

impl Ports {
    /// Ports with a directory and a transport, and defaults for the rest: no notifier, no
    /// hook, the system clock, random version 7 ids.
    pub fn new(directory: Arc<dyn Directory>, transport: Arc<dyn PartnerTransport>) -> Self {
        Self {
            directory,
            transport,
            notifier: Arc::new(crate::ports::NoNotifier),
            hook: Arc::new(crate::ports::NoHook),
            clock: Arc::new(crate::ports::SystemClock),
            ids: Arc::new(crate::ports::V7Ids),
            outbox: None,
        }
    }

    /// Lets the relay claim from the store's durable outbox.
    #[must_use]
    pub fn with_outbox(mut self, outbox: Arc<dyn OutboxLedger>) -> Self {
        self.outbox = Some(outbox);
        self
    }

    /// Replaces the notifier.
    #[must_use]
    pub fn with_notifier(mut self, notifier: Arc<dyn ClientNotifier>) -> Self {
        self.notifier = notifier;
        self
    }

    /// Replaces the acceptance hook.
    #[must_use]
    pub fn with_hook(mut self, hook: Arc<dyn AcceptanceHook>) -> Self {
        self.hook = hook;
        self
    }
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports").finish_non_exhaustive()
    }
}

/// What a user asks to submit (step 1); the requester comes from their access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// Requester's functional alias (O).
    pub requester_alias: Option<FunctionalAlias>,
    /// The partner system.
    pub partner: SystemId,
    /// Who there.
    pub target: Target,
    /// What.
    pub body: AcmRequestBody,
}

impl Submission {
    /// An interconnection group identity provision of `groups` to `target` in `partner`.
    pub fn provision(
        partner: SystemId,
        target: Target,
        groups: impl IntoIterator<Item = crate::id::GroupId>,
    ) -> Self {
        Self {
            requester_alias: None,
            partner,
            target,
            body: AcmRequestBody::provision(groups),
        }
    }
}

/// Why a service call failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The lifecycle refused the command; nothing was recorded.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Step 2 refused the request; the refusal is recorded under `request_id`.
    #[error("request {request_id} refused: {reason}")]
    Refused {
        /// The recorded request.
        request_id: RequestId,
        /// Why.
        reason: AuthorizationRefusal,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stream kept changing under the command; try again.
    #[error("request {0} is busy; try again")]
    Contention(RequestId),
    /// The server's configuration is out of range; it was not opened.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// What one relay pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// Messages acknowledged (and the acknowledgement recorded).
    pub acknowledged: usize,
    /// Messages that failed and wait for a retry.
    pub failed: usize,
}

/// What one [`AcmServer::tick`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Requests expired.
    pub expired: usize,
    /// The relay pass.
    pub relay: RelayReport,
    /// Acceptance hooks run.
    pub hooks: usize,
}

#[derive(Debug, Default)]
struct Entry {
    state: RequestState,
    version: Version,
}

#[derive(Debug, Clone, Copy, Default)]
struct Retry {
    attempts: u32,
    not_before: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct Inner {
    requests: HashMap<RequestId, Entry>,
    // Hash sets that keep their capacity (a user's set stays when empty): a request passing
    // through must not allocate and free tree nodes. Readers sort.
    pending: HashMap<McServiceId, HashSet<RequestId>>,
    outbox: HashMap<RequestId, Retry>,
    acceptances: HashSet<RequestId>,
    expiry: BTreeSet<(DateTime<Utc>, RequestId)>,
    sessions: HashSet<McServiceId>,
    // Partner messages received (requests and responses), by message id: a message id names
    // one request for good, so one reused for another request is refused.
    inbox: HashMap<MessageId, RequestId>,
}

impl Inner {
    /// Replaces a request's state by `f(old)` and keeps the projections in step; returns the
    /// logged-on users for whom the request became pending (to notify).
    fn update(
        &mut self,
        id: RequestId,
        version: Version,
        ttl: Option<Duration>,
        f: impl FnOnce(RequestState) -> RequestState,
    ) -> Vec<McServiceId> {
        let entry = self.requests.entry(id).or_default();
        let old = std::mem::take(&mut entry.state);
        // Only what the projections need of the old state survives the fold.
        let before = Users::from(old.pending_for());
        let was = ttl.and_then(|ttl| old.expires_at(ttl));
        // A state records a received message once and keeps it: only a new one is indexed.
        let known = received_messages(&old).count();
        entry.state = f(old);
        entry.version = version;
        let new = &entry.state;

        let mut newly_pending = Vec::new();
        let (before, after) = (before.as_slice(), new.pending_for());
        if before != after {
            for user in before.iter().filter(|u| !after.contains(u)) {
                if let Some(set) = self.pending.get_mut(user) {
                    set.remove(&id);
                }
            }
            for user in after.iter().filter(|u| !before.contains(u)) {
                match self.pending.get_mut(user) {
                    Some(set) => set.insert(id),
                    None => self.pending.entry(user.clone()).or_default().insert(id),
                };
                if self.sessions.contains(user) {
                    newly_pending.push(user.clone());
                }
            }
        }
        if new.owes_message() {
            self.outbox.entry(id).or_default();
        } else {
            self.outbox.remove(&id);
        }
        if new.acceptance_due() {
            self.acceptances.insert(id);
        } else {
            self.acceptances.remove(&id);
        }
        for message_id in received_messages(new).skip(known) {
            self.inbox.insert(message_id, id);
        }
        let is = ttl.and_then(|ttl| new.expires_at(ttl));
        if was != is {
            if let Some(at) = was {
                self.expiry.remove(&(at, id));
            }
            if let Some(at) = is {
                self.expiry.insert((at, id));
            }
        }
        newly_pending
    }
}

/// The partner messages a request's state records as received here.
fn received_messages(state: &RequestState) -> impl Iterator<Item = MessageId> {
    let (request, response) = match state {
        RequestState::Partner(p) => (Some(p.message_id), None),
        RequestState::Primary(p) => (None, p.response.as_ref().map(|(m, _)| *m)),
        RequestState::Empty => (None, None),
    };
    request.into_iter().chain(response)
}

static EMPTY: RequestState = RequestState::Empty;

/// What a request held for its user when a download listed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// A partner request for a recipient.
    Request,
    /// For the requester: a response, a withdrawal's outcome.
    Primary { response: bool, outcome: bool },
}

impl Due {
    fn of(state: &RequestState) -> Self {
        match state {
            RequestState::Primary(p) => Self::Primary {
                response: p.response_pending(),
                outcome: p.withdrawal_outcome_pending(),
            },
            _ => Self::Request,
        }
    }
}

/// A copy of a short list of users that allocates only for two or more (alias targets).
enum Users {
    None,
    One(McServiceId),
    Many(Vec<McServiceId>),
}

impl From<&[McServiceId]> for Users {
    fn from(users: &[McServiceId]) -> Self {
        match users {
            [] => Self::None,
            [one] => Self::One(one.clone()),
            many => Self::Many(many.to_vec()),
        }
    }
}

impl Users {
    fn as_slice(&self) -> &[McServiceId] {
        match self {
            Self::None => &[],
            Self::One(user) => std::slice::from_ref(user),
            Self::Many(users) => users,
        }
    }
}

/// An ACM server for one MC system, in the primary role, the partner role, or both.
pub struct AcmServer {
    config: ServerConfig,
    ports: Ports,
    store: Arc<dyn EventStore<Event>>,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for AcmServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmServer")
            .field("system", &self.config.system)
            .finish_non_exhaustive()
    }
}

impl AcmServer {
    /// Opens a server on `store`, rebuilding every request's state and the projections from
    /// the log (this is also how a server restarts). A configuration out of range is refused
    /// ([`ServiceError::Config`]) before the store is read.
    pub async fn open(
        config: ServerConfig,
        ports: Ports,
        store: Arc<dyn EventStore<Event>>,
    ) -> Result<Self, ServiceError> {
        config.validate()?;
        let mut states: HashMap<RequestId, Entry> = HashMap::default();
        {
            let mut log = store.read_all(GlobalPosition::START);
            while let Some(envelope) = log.next().await {
                let envelope = envelope?;
                let entry = states.entry(envelope.stream_id.0).or_default();
                entry.state = evolve(std::mem::take(&mut entry.state), &envelope.payload);
                entry.version = envelope.version;
            }
        }
        let mut inner = Inner::default();
        for (id, entry) in states {
            inner.update(id, entry.version, config.pending_ttl, |_| entry.state);
        }
        Ok(Self {
            config,
            ports,
            store,
            inner: Mutex::new(inner),
        })
    }

    /// This server's configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// This server's store.
    pub fn store(&self) -> &Arc<dyn EventStore<Event>> {
        &self.store
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The projections are rebuilt from the log on open; a panic elsewhere cannot leave
        // them half-updated because every update is done inside one critical section.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one command against one request: decide on the cached state, append with the
    /// expected version, evolve. Returns the new events (none when the command was a
    /// harmless repeat).
    pub async fn execute(
        &self,
        id: RequestId,
        command: &Command,
        actor: &Actor,
        causation: Option<CausationId>,
    ) -> Result<Vec<Event>, ServiceError> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let (events, version) = {
                let inner = self.lock();
                let entry = inner.requests.get(&id);
                let state = entry.map_or(&EMPTY, |e| &e.state);
                let version = entry.map_or(Version::NONE, |e| e.version);
                (decide(state, command)?, version)
            };
            if events.is_empty() {
                return Ok(events);
            }
            let now = self.ports.clock.now();
            let batch = events
                .iter()
                .map(|event| NewEvent {
                    event_id: self.ports.ids.event_id(),
                    correlation_id: id,
                    causation_id: causation,
                    actor: actor.clone(),
                    recorded_at: now,
                    payload: event.clone(),
                })
                .collect();
            let expected = if version == Version::NONE {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(version)
            };
            match self.store.append(StreamId(id), expected, batch).await {
                Ok(appended) => {
                    let newly_pending = {
                        let mut inner = self.lock();
                        let cached = inner.requests.get(&id).map_or(Version::NONE, |e| e.version);
                        // Fold our events only onto the state we decided on: a racing command
                        // may have reloaded the stream (our events included) in between.
                        (cached == version).then(|| {
                            inner.update(
                                id,
                                appended.last_version(),
                                self.config.pending_ttl,
                                |state| events.iter().fold(state, evolve),
                            )
                        })
                    };
                    match newly_pending {
                        Some(users) => self.notify_if_logged_on(users).await,
                        None => self.reload(id).await?,
                    }
                    return Ok(events);
                }
                Err(StoreError::Conflict { .. }) => self.reload(id).await?,
                Err(error) => {
                    // The append may have landed all the same (a backend error says nothing
                    // either way): re-read the stream so the projections hold what the log
                    // holds, and an outbox entry or due hook is never stranded.
                    if let Err(reload) = self.reload(id).await {
                        tracing::warn!(%id, %reload, "could not re-read the stream after a failed append");
                    }
                    return Err(error.into());
                }
            }
        }
        Err(ServiceError::Contention(id))
    }

    async fn reload(&self, id: RequestId) -> Result<(), StoreError> {
        let mut state = RequestState::Empty;
        let mut version = Version::NONE;
        let mut events = self.store.read_stream(StreamId(id), Version::NONE);
        while let Some(envelope) = events.next().await {
            let envelope = envelope?;
            state = evolve(state, &envelope.payload);
            version = envelope.version;
        }
        drop(events);
        let newly_pending = {
            let mut inner = self.lock();
            let cached = inner.requests.get(&id).map_or(Version::NONE, |e| e.version);
            // A slower reload must not put back an older state than the cache holds.
            if version < cached {
                return Ok(());
            }
            inner.update(id, version, self.config.pending_ttl, |_| state)
        };
        self.notify_if_logged_on(newly_pending).await;
        Ok(())
    }

    /// Sends pending ACM data notifications to users found logged on under the lock.
    async fn notify_if_logged_on(&self, online: Vec<McServiceId>) {
        for mc_service_id in online {
            self.ports
                .notifier
                .notify(PendingAcmDataNotification { mc_service_id })
                .await;
        }
    }

    // ---------------------------------------------------------------- client side

    /// Steps 1–3 at the primary: records the request, checks authorisation (step 2) and, when
    /// authorised, queues it for the partner (the relay sends it).
    ///
    /// A refusal at step 2 is recorded and returned as [`ServiceError::Refused`]; malformed
    /// requests are refused with [`ServiceError::Domain`] and record nothing.
    pub async fn submit(
        &self,
        requester: &McServiceId,
        submission: Submission,
    ) -> Result<RequestId, ServiceError> {
        let request_id = self.ports.ids.request_id();
        let request = Arc::new(AcmRequest {
            request_id,
            requester: requester.clone(),
            requester_alias: submission.requester_alias,
            partner: submission.partner,
            target: submission.target,
            body: submission.body,
        });
        let authorization = match self.check_configured(&request).await {
            Ok(()) => self.ports.directory.authorize(&request).await,
            Err(refusal) => Err(refusal),
        };
        let command = Command::Submit {
            request,
            authorization: authorization.clone(),
            limits: self.config.limits,
            message_id: self.ports.ids.message_id(),
            at: self.ports.clock.now(),
        };
        self.execute(request_id, &command, &Actor::User(requester.clone()), None)
            .await?;
        match authorization {
            Ok(()) => Ok(request_id),
            Err(reason) => Err(ServiceError::Refused { request_id, reason }),
        }
    }

    /// Step 2's checks of what the configuration knows, made here whatever the vendor's
    /// [`Authorizer`](crate::ports::Authorizer) answers: the partner is interconnected, every
    /// group is homed in this MC system, and the requester holds the functional alias they
    /// submit as.
    async fn check_configured(&self, request: &AcmRequest) -> Result<(), AuthorizationRefusal> {
        let directory = &self.ports.directory;
        if directory
            .partner_home_domains(&request.partner)
            .await
            .is_none()
        {
            return Err(AuthorizationRefusal::NotAPartner {
                partner: request.partner.clone(),
            });
        }
        if let Some(group) = request.body.groups().iter().find(|g| {
            !self
                .config
                .home_domains
                .iter()
                .any(|d| d.as_str() == g.host())
        }) {
            return Err(AuthorizationRefusal::GroupNotHomedHere {
                group: group.clone(),
            });
        }
        if let Some(alias) = &request.requester_alias {
            let held = alias.host() == self.config.system.as_str()
                && directory
                    .resolve(&Target::FunctionalAlias(alias.clone()), request.body.kind())
                    .await
                    .is_ok_and(|holders| holders.contains(&request.requester));
            if !held {
                return Err(AuthorizationRefusal::AliasNotHeld {
                    alias: alias.clone(),
                    user: request.requester.clone(),
                });
            }
        }
        Ok(())
    }

    /// Steps 6/12: a user logs on; a pending ACM data notification goes out at once when
    /// something is pending for them. Returns how many items are pending.
    pub async fn log_on(&self, user: &McServiceId) -> usize {
        let pending = {
            let mut inner = self.lock();
            inner.sessions.insert(user.clone());
            inner.pending.get(user).map_or(0, HashSet::len)
        };
        if pending > 0 {
            self.ports
                .notifier
                .notify(PendingAcmDataNotification {
                    mc_service_id: user.clone(),
                })
                .await;
        }
        pending
    }

    /// Step 5: a user logs off. Nothing in flight depends on it.
    pub fn log_off(&self, user: &McServiceId) {
        self.lock().sessions.remove(user);
    }

    /// Whether `user` is logged on here.
    pub fn is_logged_on(&self, user: &McServiceId) -> bool {
        self.lock().sessions.contains(user)
    }

    /// Steps 7b–8 and 13b–14: the pending ACM data download. Records delivery of each item
    /// (a request stays pending until answered; a response is delivered once).
    pub async fn download_pending(
        &self,
        user: &McServiceId,
    ) -> Result<PendingAcmData, ServiceError> {
        let ids = self.pending_for(user);
        let actor = Actor::User(user.clone());
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(before) = self.lock().requests.get(&id).map(|e| Due::of(&e.state)) else {
                continue;
            };
            let command = if before == Due::Request {
                Command::Deliver { to: user.clone() }
            } else {
                Command::DeliverResponse { to: user.clone() }
            };
            match self.execute(id, &command, &actor, None).await {
                Ok(_) => items.extend(self.delivered_items(before, id, user)),
                // Answered, withdrawn or expired since the list was read: no longer pending.
                Err(ServiceError::Domain(error)) => {
                    tracing::debug!(%id, %error, "pending item went away during download");
                }
                Err(error) => {
                    // What is recorded as delivered goes to the client (the failed write may
                    // have landed: `execute` re-read the stream); the rest stays pending for
                    // the next download.
                    items.extend(self.delivered_items(before, id, user));
                    if items.is_empty() {
                        return Err(error);
                    }
                    tracing::warn!(%id, %error, "download cut short; the rest stays pending");
                    break;
                }
            }
        }
        Ok(PendingAcmData {
            mc_service_id: user.clone(),
            items,
        })
    }

    /// The items of `id` that were pending for `user` (`before`) and whose delivery is
    /// recorded now.
    fn delivered_items(&self, before: Due, id: RequestId, user: &McServiceId) -> Vec<PendingItem> {
        let inner = self.lock();
        let mut items = Vec::new();
        match (before, inner.requests.get(&id).map(|e| &e.state)) {
            (Due::Request, Some(RequestState::Partner(p))) if p.delivered_to.contains(user) => {
                items.push(PendingItem::Request {
                    request: p.request.clone(),
                    from: p.from.clone(),
                    stored_at: p.stored_at,
                });
            }
            (Due::Primary { response, outcome }, Some(RequestState::Primary(p))) => {
                if outcome && p.withdrawal_outcome_delivered {
                    items.push(PendingItem::WithdrawalOutcome {
                        request: p.request.clone(),
                        withdrawn: matches!(p.withdrawal, Withdrawal::Withdrawn(_)),
                    });
                }
                if let (true, true, Some((_, r))) = (response, p.response_delivered, &p.response) {
                    items.push(PendingItem::Response {
                        request: p.request.clone(),
                        response: r.clone(),
                    });
                }
            }
            _ => {}
        }
        items
    }

    /// Step 9 at the partner: a recipient answers a delivered request.
    pub async fn respond(
        &self,
        user: &McServiceId,
        alias: Option<FunctionalAlias>,
        request_id: RequestId,
        decision: Decision,
    ) -> Result<(), ServiceError> {
        if let Some(alias) = &alias {
            // The responder functional alias is checked against the holders now, as the
            // directory knows them (TS 23.280: from the functional alias controlling server).
            let kind = self
                .state(request_id)
                .and_then(|s| s.request().map(|r| r.body.kind()));
            let holders = match kind {
                Some(kind) => self
                    .ports
                    .directory
                    .resolve(&Target::FunctionalAlias(alias.clone()), kind)
                    .await
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            if !holders.contains(user) {
                return Err(DomainError::AliasNotHeld {
                    alias: alias.clone(),
                    user: user.clone(),
                }
                .into());
            }
        }
        let command = Command::Respond {
            by: user.clone(),
            alias,
            decision,
            message_id: self.ports.ids.message_id(),
        };
        self.execute(request_id, &command, &Actor::User(user.clone()), None)
            .await?;
        Ok(())
    }

    /// The requester withdraws a request not yet delivered; the partner decides whether it
    /// is still in time.
    pub async fn withdraw(
        &self,
        user: &McServiceId,
        request_id: RequestId,
    ) -> Result<(), ServiceError> {
        let command = Command::RequestWithdrawal {
            by: user.clone(),
            message_id: self.ports.ids.message_id(),
        };
        self.execute(request_id, &command, &Actor::User(user.clone()), None)
            .await?;
        Ok(())
    }

    // ---------------------------------------------------------------- partner side

    /// Receives a message from partner system `from` (authenticated by the transport) and
    /// returns its acknowledgement once the message is durably stored.
    pub async fn receive(
        &self,
        from: &SystemId,
        message: PartnerMessage,
    ) -> Result<PartnerAck, ServiceError> {
        let home_domains = self.ports.directory.partner_home_domains(from).await;
        let actor = Actor::System(from.clone());
        let causation = Some(CausationId::from(message.message_id()));
        match message {
            PartnerMessage::Request {
                message_id,
                request,
            } => {
                let interconnected = home_domains.is_some();
                let kind = request.body.kind();
                let (recipients, processing) = if interconnected {
                    (
                        self.recipients(&request.target, kind).await,
                        self.ports.directory.processing(kind, from).await,
                    )
                } else {
                    (Ok(Arc::from([])), crate::request::Processing::Manual)
                };
                let request_id = request.request_id;
                let reserved = self.reserve_message(message_id, request_id)?;
                let command = Command::Receive {
                    from: from.clone(),
                    message_id,
                    request,
                    facts: ReceiptFacts {
                        local: self.config.system.clone(),
                        interconnected,
                        home_domains: home_domains.unwrap_or_default(),
                        recipients,
                        processing,
                        limits: self.config.limits,
                    },
                    response_message_id: self.ports.ids.message_id(),
                    at: self.ports.clock.now(),
                };
                let result = self.execute(request_id, &command, &actor, causation).await;
                self.settle_reservation(reserved, message_id, request_id);
                result?;
                Ok(PartnerAck::Stored)
            }
            PartnerMessage::Response {
                message_id,
                request_id,
                response,
            } => {
                if home_domains.is_none() {
                    return Err(DomainError::NotInterconnected {
                        system: from.clone(),
                    }
                    .into());
                }
                let reserved = self.reserve_message(message_id, request_id)?;
                let command = Command::ReceiveResponse {
                    from: from.clone(),
                    message_id,
                    response,
                };
                let result = self.execute(request_id, &command, &actor, causation).await;
                self.settle_reservation(reserved, message_id, request_id);
                result?;
                Ok(PartnerAck::Stored)
            }
            PartnerMessage::Withdrawal { request_id, .. } => {
                if home_domains.is_none() {
                    return Err(DomainError::NotInterconnected {
                        system: from.clone(),
                    }
                    .into());
                }
                let command = Command::ReceiveWithdrawal { from: from.clone() };
                self.execute(request_id, &command, &actor, causation)
                    .await?;
                Ok(match self.state(request_id) {
                    Some(RequestState::Partner(p)) if p.withdrawn => PartnerAck::Withdrawn,
                    _ => PartnerAck::TooLate,
                })
            }
        }
    }

    /// The users `target` resolves to who may receive a request of `kind` here: every
    /// resolved user (an alias's holders, the administrators) is checked as a direct target
    /// would be, so a holder unknown here, of another system, or who may not receive is not
    /// offered the request.
    async fn recipients(
        &self,
        target: &Target,
        kind: crate::request::AcmRequestKind,
    ) -> Result<Arc<[McServiceId]>, VerificationFailure> {
        let resolved = self.ports.directory.resolve(target, kind).await?;
        let mut eligible: Vec<McServiceId> = Vec::with_capacity(resolved.len());
        for user in resolved {
            if user.host() != self.config.system.as_str() || eligible.contains(&user) {
                continue;
            }
            // A direct target was resolved as a user already; an alias holder or an
            // administrator is asked about as one.
            let may_receive = matches!(target, Target::User(_))
                || self
                    .ports
                    .directory
                    .resolve(&Target::User(user.clone()), kind)
                    .await
                    .is_ok_and(|users| users.contains(&user));
            if may_receive {
                eligible.push(user);
            } else {
                tracing::debug!(%user, %target, "resolved user may not receive; not offered");
            }
        }
        if eligible.is_empty() {
            return Err(VerificationFailure::NoEligibleRecipient);
        }
        Ok(eligible.into())
    }

    /// Claims `message_id` for `request_id` before its command runs, so that two messages
    /// racing with one id for different requests cannot both be stored. Returns whether this
    /// call made the claim (and must settle it).
    fn reserve_message(
        &self,
        message_id: MessageId,
        request_id: RequestId,
    ) -> Result<bool, DomainError> {
        let mut inner = self.lock();
        match inner.inbox.get(&message_id) {
            Some(owner) if *owner == request_id => Ok(false),
            Some(_) => Err(DomainError::MessageIdReused { message_id }),
            None => {
                inner.inbox.insert(message_id, request_id);
                Ok(true)
            }
        }
    }

    /// Drops a claim made by [`Self::reserve_message`] unless the request now records the
    /// message (the command was refused, or its append failed and did not land).
    fn settle_reservation(&self, reserved: bool, message_id: MessageId, request_id: RequestId) {
        if !reserved {
            return;
        }
        let mut inner = self.lock();
        let recorded = inner
            .requests
            .get(&request_id)
            .is_some_and(|e| received_messages(&e.state).any(|m| m == message_id));
        if !recorded {
            inner.inbox.remove(&message_id);
        }
    }

    // ---------------------------------------------------------------- background work

    /// The messages the in-memory outbox holds due at `now`, oldest request first.
    fn due_in_memory(&self, now: DateTime<Utc>) -> Vec<OwedMessage> {
        let inner = self.lock();
        let mut due: Vec<OwedMessage> = inner
            .outbox
            .iter()
            .filter(|(_, r)| r.not_before.is_none_or(|t| t <= now))
            .filter_map(|(id, r)| {
                Some(OwedMessage {
                    request_id: *id,
                    message_id: inner.requests.get(id)?.state.owed_message_id()?,
                    attempts: r.attempts,
                })
            })
            .collect();
        // Request ids are UUID v7: a backlog drains in submission order.
        due.sort_unstable_by_key(|m| m.request_id);
        due
    }

    /// The message `owed` names, as the request's state owes it now. A durable outbox can be
    /// ahead of this server's cache (a command's events are committed before its state is
    /// folded in), so the stream is re-read once before giving up.
    async fn owed_message(
        &self,
        owed: &OwedMessage,
    ) -> Result<Option<(SystemId, PartnerMessage)>, ServiceError> {
        let current = |this: &Self| {
            let inner = this.lock();
            inner
                .requests
                .get(&owed.request_id)
                .and_then(|e| e.state.outbound())
                .filter(|(_, m)| m.message_id() == owed.message_id)
        };
        if let Some(found) = current(self) {
            return Ok(Some(found));
        }
        self.reload(owed.request_id).await?;
        Ok(current(self))
    }

    /// Sends every due outbox message once and records each acknowledgement; a failed send
    /// is retried later with exponential back-off. With a durable outbox
    /// ([`Ports::with_outbox`]) the due messages are claimed from the store and the attempts
    /// are counted there.
    ///
    /// One message's failure does not stop the pass: every claimed message is tried, and the
    /// first error (if any) is returned at the end.
    pub async fn relay(&self) -> Result<RelayReport, ServiceError> {
        let now = self.ports.clock.now();
        let due = if let Some(ledger) = &self.ports.outbox {
            // A claim not settled (the process stopped mid-send) is due again after the
            // longest back-off.
            ledger
                .claim(now, self.config.max_backoff, RELAY_BATCH)
                .await?
        } else {
            self.due_in_memory(now)
        };
        let mut report = RelayReport::default();
        let mut first_error = None;
        for owed in due {
            if let Err(error) = self.relay_one(&owed, now, &mut report).await {
                tracing::warn!(id = %owed.request_id, %error, "relaying a message failed");
                first_error.get_or_insert(error);
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(report),
        }
    }

    async fn relay_one(
        &self,
        owed: &OwedMessage,
        now: DateTime<Utc>,
        report: &mut RelayReport,
    ) -> Result<(), ServiceError> {
        let id = owed.request_id;
        let Some((to, message)) = self.owed_message(owed).await? else {
            tracing::debug!(%id, message_id = %owed.message_id, "no longer owed; not sent");
            return Ok(());
        };
        let message_id = message.message_id();
        let result = self.ports.transport.send(&to, &message).await;
        let command = match (&message, result) {
            (PartnerMessage::Request { .. }, Ok(PartnerAck::Stored)) => {
                Some(Command::RecordPartnerAck { message_id })
            }
            (PartnerMessage::Response { .. }, Ok(PartnerAck::Stored)) => {
                Some(Command::RecordResponseAck { message_id })
            }
            (
                PartnerMessage::Withdrawal { .. },
                Ok(ack @ (PartnerAck::Withdrawn | PartnerAck::TooLate)),
            ) => Some(Command::RecordWithdrawalOutcome {
                message_id,
                withdrawn: ack == PartnerAck::Withdrawn,
            }),
            (_, Ok(ack)) => {
                tracing::warn!(%id, %to, ?ack, "partner answered with an unexpected acknowledgement");
                None
            }
            (_, Err(error)) => {
                tracing::warn!(%id, %to, %error, "partner message not acknowledged; will retry");
                None
            }
        };
        if let Some(command) = command {
            self.execute(id, &command, &Actor::System(to), Some(message_id.into()))
                .await?;
            // The next message of this request (a withdrawal, say) starts a fresh back-off.
            if let Some(retry) = self.lock().outbox.get_mut(&id) {
                *retry = Retry::default();
            }
            report.acknowledged += 1;
        } else {
            let attempts = owed.attempts.saturating_add(1);
            let backoff = Duration::milliseconds(100)
                .checked_mul(1 << attempts.min(20))
                .map_or(self.config.max_backoff, |b| b.min(self.config.max_backoff));
            // A clock at the end of chrono's range retries at the last instant it can name.
            let retry_at = now
                .checked_add_signed(backoff)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            report.failed += 1;
            match &self.ports.outbox {
                Some(ledger) => {
                    ledger.failed(message_id, retry_at).await?;
                }
                None => {
                    if let Some(retry) = self.lock().outbox.get_mut(&id) {
                        retry.attempts = attempts;
                        retry.not_before = Some(retry_at);
                    }
                }
            }
        }
        Ok(())
    }

    /// Expires every open request at this partner whose pending time has run out.
    pub async fn expire_due(&self) -> Result<usize, ServiceError> {
        let Some(ttl) = self.config.pending_ttl else {
            return Ok(0);
        };
        let now = self.ports.clock.now();
        let due: Vec<RequestId> = self
            .lock()
            .expiry
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| *id)
            .collect();
        let actor = Actor::System(self.config.system.clone());
        let mut expired = 0;
        for id in due {
            let command = Command::Expire {
                now,
                ttl,
                message_id: self.ports.ids.message_id(),
            };
            match self.execute(id, &command, &actor, None).await {
                Ok(_) => expired += 1,
                Err(ServiceError::Domain(error)) => {
                    tracing::debug!(%id, %error, "request closed before it could expire");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(expired)
    }

    /// Runs the acceptance hook for every accepted request not yet applied.
    pub async fn apply_acceptances(&self) -> Result<usize, ServiceError> {
        let mut due: Vec<(RequestId, Arc<AcmRequest>, crate::request::AcmResponse)> = {
            let inner = self.lock();
            inner
                .acceptances
                .iter()
                .filter_map(|id| match &inner.requests.get(id)?.state {
                    RequestState::Partner(p) => {
                        let (_, response) = p.response.as_ref()?;
                        Some((*id, p.request.clone(), response.clone()))
                    }
                    _ => None,
                })
                .collect()
        };
        due.sort_unstable_by_key(|(id, _, _)| *id);
        let actor = Actor::System(self.config.system.clone());
        let mut applied = 0;
        for (id, request, response) in due {
            match self.ports.hook.accepted(&request, &response).await {
                Ok(()) => {
                    self.execute(id, &Command::RecordAcceptanceApplied, &actor, None)
                        .await?;
                    applied += 1;
                }
                Err(error) => tracing::warn!(%id, %error, "acceptance hook failed; will retry"),
            }
        }
        Ok(applied)
    }

    /// One round of background work: expiry, the outbox relay, acceptance hooks.
    pub async fn tick(&self) -> Result<TickReport, ServiceError> {
        Ok(TickReport {
            expired: self.expire_due().await?,
            relay: self.relay().await?,
            hooks: self.apply_acceptances().await?,
        })
    }

    // ---------------------------------------------------------------- queries

    /// A request's current state on this server.
    pub fn state(&self, id: RequestId) -> Option<RequestState> {
        self.lock().requests.get(&id).map(|e| e.state.clone())
    }

    /// A request's current version on this server.
    pub fn version(&self, id: RequestId) -> Version {
        self.lock()
            .requests
            .get(&id)
            .map_or(Version::NONE, |e| e.version)
    }

    /// Ids of the requests pending for `user` (what a download would return).
    pub fn pending_for(&self, user: &McServiceId) -> Vec<RequestId> {
        let mut ids: Vec<RequestId> = self
            .lock()
            .pending
            .get(user)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        // Request ids are UUID v7: sorting them lists the oldest request first.
        ids.sort_unstable();
        ids
    }

    /// How many messages wait in the outbox.
    pub fn outbox_len(&self) -> usize {
        self.lock().outbox.len()
    }

    /// Every request's state, by id (for audits and tests).
    pub fn states(&self) -> BTreeMap<RequestId, RequestState> {
        self.lock()
            .requests
            .iter()
            .map(|(id, e)| (*id, e.state.clone()))
            .collect()
    }
}

/// Where partner messages for a server arrive: implemented by [`AcmServer`], called by
/// transports (the in-process network, the HTTP server).
#[async_trait]
pub trait PartnerInbox: Send + Sync {
    /// Receives a message from an authenticated partner system.
    async fn receive(
        &self,
        from: &SystemId,
        message: PartnerMessage,
    ) -> Result<PartnerAck, ServiceError>;
}

#[async_trait]
impl PartnerInbox for AcmServer {
    async fn receive(
        &self,
        from: &SystemId,
        message: PartnerMessage,
    ) -> Result<PartnerAck, ServiceError> {
        AcmServer::receive(self, from, message).await
    }
}
