//! The ACM server service: one method per step of the procedure, for a server in either role,
//! generic over the ports.
//!
//! What is pending, owed, due or received lives in the store's views, written in the events'
//! transaction ([`crate::views`]); the server keeps only a bounded cache of the requests it is
//! working on and the sessions of its logged-on users. Opening a server reads no history, so
//! restart time and memory do not grow with the log. Nothing is sent or hooked before the
//! event that decides it is stored: the relay ([`AcmServer::relay`]) claims owed messages
//! from the store's outbox and records each acknowledgement as an event, so a crash at any
//! point loses nothing and a resend is harmless (the receiver deduplicates by message id).
//!
//! - `client`: steps 1–3, log-on, the pending ACM data download, steps 9 and withdrawal;
//! - `partner`: messages from partner ACM servers (steps 4a, 11, withdrawals);
//! - `relay`: sending the outbox; `duties`: expiry, send deadlines, hooks, following the log.

mod cache;
mod client;
mod config;
mod duties;
mod error;
mod partner;
mod ports;
mod relay;
mod sessions;
mod signal;

use std::sync::Arc;

use futures_util::StreamExt;

use crate::event::Event;
use crate::id::{McServiceId, RequestId, StreamId, Version};
use crate::lifecycle::{Command, RequestState, decide, evolve};
use crate::ports::Ids;
use crate::store::{Actor, CausationId, ExpectedVersion, NewEvent, StoreError};
use crate::views::AcmStore;

use cache::{Cache, Entry};
use sessions::Sessions;

pub use client::{DownloadedItem, Submission};
pub use config::{ConfigError, MAX_BACKOFF, MAX_PENDING_TTL, ServerConfig};
pub use duties::{Duty, TickReport};
pub use error::ServiceError;
pub use partner::PartnerInbox;
pub use ports::{Ports, PortsBuilder};
pub use relay::RelayReport;
pub use sessions::Session;

/// How often a command is re-decided after losing a race for its stream.
const MAX_CONFLICT_RETRIES: usize = 8;

/// An ACM server for one MC system, in the primary role, the partner role, or both.
pub struct AcmServer {
    config: ServerConfig,
    ports: Ports,
    store: Arc<dyn AcmStore>,
    cache: Cache,
    sessions: Arc<Sessions>,
    /// Raised when an append leaves a message owed, so the relay need not wait for a tick.
    owed: signal::Signal,
}

impl std::fmt::Debug for AcmServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmServer")
            .field("system", &self.config.system)
            .finish_non_exhaustive()
    }
}

impl AcmServer {
    /// Opens a server on `store`. Nothing is read: the store's views hold what the server
    /// works from, so this is also how a server restarts, in the same time whatever the log
    /// holds. A configuration out of range is refused ([`ServiceError::Config`]).
    // Async although it awaits nothing today: opening on a store is an async operation for
    // callers, so a check of the store at open (its schema, its head) stays compatible.
    #[allow(clippy::unused_async)]
    pub async fn open(
        config: ServerConfig,
        ports: Ports,
        store: Arc<dyn AcmStore>,
    ) -> Result<Self, ServiceError> {
        config.validate()?;
        Ok(Self {
            cache: Cache::new(config.cache_capacity),
            config,
            ports,
            store,
            sessions: Arc::default(),
            owed: signal::Signal::default(),
        })
    }

    /// This server's configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// This server's store.
    pub fn store(&self) -> &Arc<dyn AcmStore> {
        &self.store
    }

    /// How many request states are cached (at most the configured capacity).
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// The entry of `id`: from the cache, or read from its stream (and then cached).
    async fn entry(&self, id: RequestId) -> Result<Entry, StoreError> {
        if let Some(entry) = self.cache.get(id) {
            return Ok(entry);
        }
        let entry = self.read_entry(id).await?;
        self.cache.put(id, entry.clone());
        Ok(entry)
    }

    /// `id`'s state read from its stream (not the cache), and cached.
    pub(crate) async fn fresh_state(&self, id: RequestId) -> Result<RequestState, StoreError> {
        let entry = self.read_entry(id).await?;
        self.cache.put(id, entry.clone());
        Ok(entry.state)
    }

    async fn read_entry(&self, id: RequestId) -> Result<Entry, StoreError> {
        let mut entry = Entry::default();
        let mut events = self.store.read_stream(StreamId(id), Version::NONE);
        while let Some(envelope) = events.next().await {
            let envelope = envelope?;
            entry.state = evolve(std::mem::take(&mut entry.state), &envelope.payload);
            entry.version = envelope.version;
        }
        Ok(entry)
    }

    /// Runs one command against one request: decide on its state, append with the expected
    /// version, fold. Returns the new events (none when the command was a harmless repeat).
    ///
    /// Once the store has committed, this returns `Ok`: nothing after the append can fail.
    pub(crate) async fn execute(
        &self,
        id: RequestId,
        command: &Command,
        actor: &Actor,
        causation: Option<CausationId>,
    ) -> Result<Vec<Event>, ServiceError> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let entry = match self.cache.take(id) {
                Some(entry) => entry,
                None => self.read_entry(id).await?,
            };
            let events = match decide(&entry.state, command) {
                Ok(events) if !events.is_empty() => events,
                outcome => {
                    self.cache.put(id, entry);
                    return Ok(outcome?);
                }
            };
            let batch = match self.batch(id, &events, actor, causation) {
                Ok(batch) => batch,
                Err(error) => {
                    self.cache.put(id, entry);
                    return Err(error);
                }
            };
            let expected = if entry.version == Version::NONE {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(entry.version)
            };
            match self.store.append(StreamId(id), expected, batch).await {
                Ok(appended) => {
                    // The views are the store's; what is left is the cache and the notices.
                    let was = crate::views::Users::of(entry.state.pending_for());
                    let was_owed = entry.state.owed_message_id();
                    let state = events.iter().fold(entry.state, evolve);
                    let owed = state.owed_message_id();
                    if owed.is_some() && owed != was_owed {
                        self.owed.raise();
                    }
                    let was = was.as_slice();
                    for user in state.pending_for().iter().filter(|u| !was.contains(u)) {
                        self.sessions.notify(user);
                    }
                    let version = appended.last_version();
                    self.cache.put(id, Entry { state, version });
                    return Ok(events);
                }
                // Someone else wrote the stream: the entry is stale; read it again.
                Err(StoreError::Conflict { .. }) => {}
                // The append may have landed all the same: the entry stays out, and the
                // next command reads the stream.
                Err(error) => return Err(error.into()),
            }
        }
        Err(ServiceError::Contention(id))
    }

    fn batch(
        &self,
        id: RequestId,
        events: &[Event],
        actor: &Actor,
        causation: Option<CausationId>,
    ) -> Result<Vec<NewEvent<Event>>, ServiceError> {
        let now = self.ports.clock.now();
        events
            .iter()
            .map(|event| {
                Ok(NewEvent {
                    event_id: self.ports.ids.event_id()?,
                    correlation_id: id,
                    causation_id: causation,
                    actor: actor.clone(),
                    recorded_at: now,
                    payload: event.clone(),
                })
            })
            .collect()
    }

    // ---------------------------------------------------------------- queries

    /// A request's current state on this server ([`RequestState::Empty`] when unknown).
    pub async fn state(&self, id: RequestId) -> Result<RequestState, ServiceError> {
        Ok(self.entry(id).await?.state)
    }

    /// A request's current version on this server.
    pub async fn version(&self, id: RequestId) -> Result<Version, ServiceError> {
        Ok(self.entry(id).await?.version)
    }

    /// Ids of the requests pending for `user` (what a download would return), oldest first.
    pub async fn pending_for(&self, user: &McServiceId) -> Result<Vec<RequestId>, ServiceError> {
        Ok(self.store.pending_for(user).await?)
    }

    /// Resolves when this server has left a message owed since the last call (and at once
    /// when it did meanwhile), so a runner can relay it without waiting for its next tick.
    /// Messages owed by another process on the same store are not signalled: the runner's
    /// tick relays them.
    pub async fn relay_wanted(&self) {
        self.owed.wait().await;
    }

    /// How the outbox stands.
    pub async fn outbox_status(&self) -> Result<crate::views::OutboxStatus, ServiceError> {
        Ok(self.store.outbox_status().await?)
    }
}

/// Runs one command through a server, for tests and tools that drive the lifecycle
/// directly (`testkit`).
#[cfg(feature = "testkit")]
pub async fn execute(
    server: &AcmServer,
    id: RequestId,
    command: &Command,
    actor: &Actor,
    causation: Option<CausationId>,
) -> Result<Vec<Event>, ServiceError> {
    server.execute(id, command, actor, causation).await
}
