//! The ports an ACM server uses besides its store, put together with a builder.

use std::sync::Arc;

use crate::ports::{
    AcceptanceHook, Clock, Directory, IdSource, NoHook, PartnerTransport, SystemClock, V7Ids,
};

/// The ports an [`AcmServer`](super::AcmServer) uses besides its store.
///
/// ```
/// use std::sync::Arc;
/// use acm_core::StaticDirectory;
/// use acm_core::SequentialIds;
/// use acm_core::Ports;
/// # use acm_core::{PartnerAck, PartnerMessage};
/// # use acm_core::{PartnerTransport, TransportError};
/// # use acm_core::SystemId;
/// # struct Nowhere;
/// # #[async_trait::async_trait]
/// # impl PartnerTransport for Nowhere {
/// #     async fn send(&self, to: &SystemId, _: &PartnerMessage, _: std::time::Duration)
/// #         -> Result<PartnerAck, TransportError> {
/// #         Err(TransportError::Unreachable { system: to.clone(), detail: "no network".into() })
/// #     }
/// # }
/// let directory = Arc::new(StaticDirectory::new("mc-a.example".parse().unwrap()));
/// let ports = Ports::builder(directory, Arc::new(Nowhere))
///     .ids(Arc::new(SequentialIds::new(1)))
///     .build();
/// # let _ = ports;
/// ```
#[derive(Clone)]
pub struct Ports {
    pub(crate) directory: Arc<dyn Directory>,
    pub(crate) transport: Arc<dyn PartnerTransport>,
    pub(crate) hook: Arc<dyn AcceptanceHook>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdSource>,
}

impl Ports {
    /// Ports with a directory and a transport, and defaults for the rest: no hook, the
    /// system clock, random version 7 ids.
    pub fn new(directory: Arc<dyn Directory>, transport: Arc<dyn PartnerTransport>) -> Self {
        Self::builder(directory, transport).build()
    }

    /// Starts from a directory and a transport, with the defaults of [`Ports::new`].
    pub fn builder(
        directory: Arc<dyn Directory>,
        transport: Arc<dyn PartnerTransport>,
    ) -> PortsBuilder {
        PortsBuilder(Self {
            directory,
            transport,
            hook: Arc::new(NoHook),
            clock: Arc::new(SystemClock),
            ids: Arc::new(V7Ids),
        })
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The directory.
    pub fn directory(&self) -> &Arc<dyn Directory> {
        &self.directory
    }
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports").finish_non_exhaustive()
    }
}

/// Builds [`Ports`]: each setter replaces one default.
#[derive(Debug)]
#[must_use]
pub struct PortsBuilder(Ports);

impl PortsBuilder {
    /// Replaces the acceptance hook.
    pub fn hook(mut self, hook: Arc<dyn AcceptanceHook>) -> Self {
        self.0.hook = hook;
        self
    }

    /// Replaces the clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.0.clock = clock;
        self
    }

    /// Replaces the id source.
    pub fn ids(mut self, ids: Arc<dyn IdSource>) -> Self {
        self.0.ids = ids;
        self
    }

    /// The ports.
    pub fn build(self) -> Ports {
        self.0
    }
}
