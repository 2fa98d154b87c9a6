//! An in-process network between ACM servers: a [`PartnerTransport`] per system that calls the
//! partner's [`PartnerInbox`] directly, with links that tests can cut.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock, Weak};

use crate::PartnerAck;
use crate::PartnerMessage;
use crate::SystemId;
use crate::{PartnerInbox, ServiceError};
use crate::{PartnerProblem, PartnerTransport, TransportError};
use async_trait::async_trait;
use std::time::Duration;

#[derive(Default)]
struct Routes {
    inboxes: HashMap<SystemId, Weak<dyn PartnerInbox>>,
    down: HashSet<(SystemId, SystemId)>,
}

/// A set of ACM servers that reach each other in process.
///
/// Each server gets its transport from [`InProcessNetwork::transport`] before it is built,
/// and is registered with [`InProcessNetwork::register`] after; a message is delivered to the
/// registered server of the destination system with the sender's system as its
/// authenticated origin.
#[derive(Clone, Default)]
pub struct InProcessNetwork {
    routes: Arc<RwLock<Routes>>,
}

impl std::fmt::Debug for InProcessNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessNetwork").finish_non_exhaustive()
    }
}

impl InProcessNetwork {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `inbox` the server of `system` (replacing any earlier one, as after a restart).
    /// The network holds it weakly: dropping the server takes it off the network.
    pub fn register(&self, system: SystemId, inbox: &Arc<impl PartnerInbox + 'static>) {
        let inbox: Arc<dyn PartnerInbox> = inbox.clone();
        self.write().inboxes.insert(system, Arc::downgrade(&inbox));
    }

    /// Cuts (`up == false`) or restores the link from `from` to `to`.
    pub fn set_link(&self, from: &SystemId, to: &SystemId, up: bool) {
        let key = (from.clone(), to.clone());
        let mut routes = self.write();
        if up {
            routes.down.remove(&key);
        } else {
            routes.down.insert(key);
        }
    }

    /// The transport that system `local` uses to send.
    pub fn transport(&self, local: SystemId) -> Arc<dyn PartnerTransport> {
        Arc::new(InProcessTransport {
            local,
            network: self.clone(),
        })
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Routes> {
        self.routes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn route(&self, from: &SystemId, to: &SystemId) -> Option<Arc<dyn PartnerInbox>> {
        let routes = self
            .routes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if routes.down.contains(&(from.clone(), to.clone())) {
            return None;
        }
        routes.inboxes.get(to)?.upgrade()
    }
}

struct InProcessTransport {
    local: SystemId,
    network: InProcessNetwork,
}

#[async_trait]
impl PartnerTransport for InProcessTransport {
    async fn send(
        &self,
        to: &SystemId,
        message: &PartnerMessage,
        deadline: Duration,
    ) -> Result<PartnerAck, TransportError> {
        let Some(inbox) = self.network.route(&self.local, to) else {
            return Err(TransportError::Unreachable {
                system: to.clone(),
                detail: "no route".into(),
            });
        };
        // In process there is no timer to race: a partner that does not answer is modelled
        // by a cut link, and the deadline is the caller's bound on what it waits for.
        let _ = deadline;
        match inbox.receive(&self.local, message.clone()).await {
            Ok(ack) => Ok(ack),
            Err(ServiceError::Domain(error)) => Err(TransportError::Refused {
                system: to.clone(),
                problem: PartnerProblem::Domain(error),
            }),
            Err(other) => Err(TransportError::Unreachable {
                system: to.clone(),
                detail: other.to_string(),
            }),
        }
    }
}
