//! Two interconnected MC systems in one process, ready to run the procedure: system A
//! (`mc-a.example`, the primary) and system B (`mc-b.example`, the partner), each with an ACM
//! server on its own store, joined by an [`InProcessNetwork`], sharing one [`ManualClock`].
//! Used by the demo, the integration tests and the benchmarks; generic over the store, so a
//! store's author runs the whole procedure on theirs (`acm_store_memory::fixture::TwoSystems`
//! is this on memory stores).
//!
//! The directories hold:
//! - A: `sip:alice@mc-a.example` may provide ACM requests to B; `sip:mallory@mc-a.example` may
//!   not. B is home for `mc-b.example` groups.
//! - B: `sip:bob@mc-b.example` and `sip:carol@mc-b.example` may receive,
//!   `sip:dave@mc-b.example` may not; `sip:duty-officer@mc-b.example` is held by bob and carol;
//!   `sip:admin@mc-b.example` is the ACM administrator. A is home for `mc-a.example` groups.

use std::sync::Arc;

use crate::StaticDirectory;
use crate::{AcmRequestBody, Target};
use crate::{
    AcmServer, AcmStore, ManualClock, Ports, ServerConfig, ServiceError, Session, Submission,
};
use crate::{FunctionalAlias, GroupId, McServiceId, RequestId, SystemId};
use crate::{IdSource, SequentialIds};

use super::hook::RecordingHook;
use super::network::InProcessNetwork;

/// Parses a literal identifier of the fixture.
///
/// # Panics
/// When `s` is not a valid identifier: only for the fixture's own literals.
#[must_use]
pub fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    match s.parse() {
        Ok(v) => v,
        Err(e) => panic!("fixture identifier {s:?}: {e:?}"),
    }
}

/// One MC system of the pair, on a store of type `S`.
#[derive(Debug)]
pub struct System<S> {
    /// Its id.
    pub id: SystemId,
    /// Its ACM server.
    pub server: Arc<AcmServer>,
    /// Its store.
    pub store: Arc<S>,
    /// Its directory.
    pub directory: Arc<StaticDirectory>,
    /// Acceptance hook calls on its server.
    pub hook: Arc<RecordingHook>,
    config: ServerConfig,
    ports: Ports,
}

impl<S: AcmStore + 'static> System<S> {
    async fn open(
        config: ServerConfig,
        directory: StaticDirectory,
        network: &InProcessNetwork,
        clock: Arc<ManualClock>,
        ids: Arc<dyn IdSource>,
        store: Arc<S>,
    ) -> Result<Self, ServiceError> {
        let directory = Arc::new(directory);
        let hook = Arc::new(RecordingHook::default());
        let ports = Ports::builder(directory.clone(), network.transport(config.system.clone()))
            .hook(hook.clone())
            .clock(clock)
            .ids(ids)
            .build();
        let server = Arc::new(AcmServer::open(config.clone(), ports.clone(), store.clone()).await?);
        network.register(config.system.clone(), &server);
        Ok(Self {
            id: config.system.clone(),
            server,
            store,
            directory,
            hook,
            config,
            ports,
        })
    }

    /// The response this system, as the primary of `request`, has stored for it: `None`
    /// before step 11, or when `request` is not this system's own.
    pub async fn response(
        &self,
        request: RequestId,
    ) -> Result<Option<crate::AcmResponse>, ServiceError> {
        Ok(match self.server.state(request).await? {
            crate::RequestState::Primary(p) => p.response.map(|(_, r)| r),
            _ => None,
        })
    }

    /// Logs `user` on at this system's server.
    pub async fn log_on(&self, user: &McServiceId) -> Result<Session, ServiceError> {
        self.server.log_on(user).await
    }

    /// Restarts the server: a new [`AcmServer`] on the same store (sessions and the cache are
    /// lost, as in a process restart).
    pub async fn restart(&mut self, network: &InProcessNetwork) -> Result<(), ServiceError> {
        let server =
            AcmServer::open(self.config.clone(), self.ports.clone(), self.store.clone()).await?;
        self.server = Arc::new(server);
        network.register(self.id.clone(), &self.server);
        Ok(())
    }
}

/// Systems A and B, interconnected, each on a store of type `S`.
#[derive(Debug)]
pub struct TwoSystems<S> {
    /// The network between them.
    pub network: InProcessNetwork,
    /// The clock both use.
    pub clock: Arc<ManualClock>,
    /// System A, the primary.
    pub a: System<S>,
    /// System B, the partner.
    pub b: System<S>,
}

impl<S: AcmStore + Default + 'static> TwoSystems<S> {
    /// Builds both systems, each on a fresh `S::default()` store, with default limits and
    /// pending time.
    pub async fn new() -> Result<Self, ServiceError> {
        Self::with_config(|c| c).await
    }

    /// Builds both systems on fresh stores, letting `configure` adjust each server's
    /// configuration.
    pub async fn with_config(
        configure: impl Fn(ServerConfig) -> ServerConfig,
    ) -> Result<Self, ServiceError> {
        Self::with_stores(configure, |_| Arc::new(S::default())).await
    }
}

impl<S: AcmStore + 'static> TwoSystems<S> {
    /// Builds both systems, each on the store `store(system)` gives, letting `configure`
    /// adjust each server's configuration.
    pub async fn with_stores(
        configure: impl Fn(ServerConfig) -> ServerConfig,
        mut store: impl FnMut(&SystemId) -> Arc<S>,
    ) -> Result<Self, ServiceError> {
        let (a_id, b_id): (SystemId, SystemId) = (id("mc-a.example"), id("mc-b.example"));
        let network = InProcessNetwork::new();
        let clock = Arc::new(ManualClock::default());
        let dir_a = StaticDirectory::new(a_id.clone())
            .with_partner(b_id.clone(), vec![b_id.clone()])
            .with_user(alice(), false)
            .with_user(id("sip:mallory@mc-a.example"), false)
            .with_provider(alice(), b_id.clone());
        let dir_b = StaticDirectory::new(b_id.clone())
            .with_partner(a_id.clone(), vec![a_id.clone()])
            .with_provider(bob(), a_id.clone())
            .with_user(bob(), true)
            .with_user(carol(), true)
            .with_user(id("sip:dave@mc-b.example"), false)
            .with_administrator(id("sip:admin@mc-b.example"));
        dir_b.set_alias_holders(duty_officer(), vec![bob(), carol()]);
        let a = System::open(
            configure(ServerConfig::new(a_id.clone())),
            dir_a,
            &network,
            clock.clone(),
            Arc::new(SequentialIds::new(0xA)),
            store(&a_id),
        )
        .await?;
        let b = System::open(
            configure(ServerConfig::new(b_id.clone())),
            dir_b,
            &network,
            clock.clone(),
            Arc::new(SequentialIds::new(0xB)),
            store(&b_id),
        )
        .await?;
        Ok(Self {
            network,
            clock,
            a,
            b,
        })
    }

    /// Steps 1–2: alice asks A to provide `n` of A's groups to `target` in B.
    pub async fn alice_provides(
        &self,
        target: Target,
        n: usize,
    ) -> Result<RequestId, crate::ServiceError> {
        self.a.server.submit(&alice(), provision(target, n)).await
    }

    /// Steps 7b–11: bob downloads his pending ACM data and answers `request` with
    /// `decision`; then both servers settle (the response reaches A).
    pub async fn bob_answers(
        &self,
        request: RequestId,
        decision: crate::Decision,
    ) -> Result<(), crate::ServiceError> {
        self.b.server.download_pending(&bob()).await?;
        self.b
            .server
            .respond(&bob(), None, request, decision)
            .await?;
        self.settle().await
    }

    /// Runs both servers' duties until neither has anything left to do (at most 8 rounds);
    /// the first error a duty met, if any.
    pub async fn settle(&self) -> Result<(), crate::ServiceError> {
        for _ in 0..8 {
            let a = self.a.server.tick().await;
            let b = self.b.server.tick().await;
            let busy = a.relay.acknowledged + b.relay.acknowledged + a.hooks + b.hooks;
            if let Some((_, error)) = a.errors.into_iter().chain(b.errors).next() {
                return Err(error);
            }
            if busy == 0 {
                break;
            }
        }
        Ok(())
    }
}

/// `sip:alice@mc-a.example`, authorised to provide group IDs to B.
pub fn alice() -> McServiceId {
    id("sip:alice@mc-a.example")
}

/// `sip:bob@mc-b.example`, a user of B who may receive.
pub fn bob() -> McServiceId {
    id("sip:bob@mc-b.example")
}

/// `sip:carol@mc-b.example`, a user of B who may receive.
pub fn carol() -> McServiceId {
    id("sip:carol@mc-b.example")
}

/// `sip:duty-officer@mc-b.example`, held by bob and carol.
pub fn duty_officer() -> FunctionalAlias {
    id("sip:duty-officer@mc-b.example")
}

/// Interconnection groups homed at A: `sip:tac-1@mc-a.example` … `sip:tac-N@mc-a.example`.
pub fn groups(n: usize) -> Vec<GroupId> {
    (1..=n)
        .map(|i| id(&format!("sip:tac-{i}@mc-a.example")))
        .collect()
}

/// A provision of `n` groups from A to `target` in B.
pub fn provision(target: Target, n: usize) -> Submission {
    Submission {
        requester_alias: None,
        partner: id("mc-b.example"),
        target,
        body: AcmRequestBody::provision(groups(n)),
        idempotency_key: None,
    }
}
