//! # acm-core
//!
//! The pure core of acm: TS 23.280 administrative configuration management (ACM) between
//! interconnected MC systems, starting with interconnection group identity provision.
//!
//! ## Quick start
//!
//! Open a store, build the ports, open the server, drive its duties. Here the store is the
//! in-memory one and the partner is out of reach, so the request waits in the outbox:
//!
//! ```
//! use std::sync::Arc;
//! use acm_core::{AcmServer, ManualClock, Ports, ServerConfig, StaticDirectory, Submission};
//! use acm_core::{PartnerAck, PartnerMessage, PartnerTransport, SystemId, Target, TransportError};
//! use acm_store_memory::MemoryAcmStore;
//!
//! struct Offline;
//! #[acm_core::async_trait]
//! impl PartnerTransport for Offline {
//!     async fn send(&self, to: &SystemId, _: &PartnerMessage, _: std::time::Duration)
//!         -> Result<PartnerAck, TransportError> {
//!         Err(TransportError::Unreachable { system: to.clone(), detail: "offline".into() })
//!     }
//! }
//!
//! # futures_executor::block_on(async {
//! let (a, b): (SystemId, SystemId) = ("mc-a.example".parse()?, "mc-b.example".parse()?);
//! let alice: acm_core::McServiceId = "sip:alice@mc-a.example".parse()?;
//! let directory = StaticDirectory::new(a.clone())
//!     .with_partner(b.clone(), vec![b.clone()])
//!     .with_user(alice.clone(), true)
//!     .with_provider(alice.clone(), b.clone());
//! let ports = Ports::builder(Arc::new(directory), Arc::new(Offline))
//!     .clock(Arc::new(ManualClock::default()))
//!     .build();
//! let server = AcmServer::open(ServerConfig::new(a), ports, Arc::new(MemoryAcmStore::new())).await?;
//!
//! let submission = Submission::provision(
//!     b,
//!     Target::User("sip:bob@mc-b.example".parse()?),
//!     ["sip:fire-ops@mc-a.example".parse()?],
//! );
//! let request_id = server.submit(&alice, submission).await?;
//! // Every duty runs; what failed is in the report (`report.errors`), not an `Err`. Here the
//! // partner was unreachable: the message stays owed and is tried again after a back-off.
//! let report = server.tick().await;
//! assert_eq!(report.relay.unreachable, 1);
//! assert!(report.errors.is_empty());
//! assert_eq!(server.outbox_status().await?.depth, 1);
//! # let _ = request_id;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! ## Map
//!
//! - the lifecycle: [`decide`], the total [`evolve`], [`RequestState`], [`Command`], [`Event`];
//! - the information elements and identifiers: [`AcmRequest`], [`AcmResponse`],
//!   [`McServiceId`], [`GroupId`], …;
//! - the ports that adapters implement: [`EventStore`] and [`AcmStore`] (with its
//!   [`views`]), the directory parts ([`Authorizer`], [`Interconnections`], [`Recipients`],
//!   [`ProcessingPolicy`]), [`PartnerTransport`], [`AcceptanceHook`], [`Clock`],
//!   [`IdSource`];
//! - the ACM server service: [`AcmServer`], its [`ServerConfig`] and [`Ports`];
//! - the server-to-server protocol: [`PartnerMessage`], [`PartnerAck`];
//! - [`audit`]: replay, the tamper-evident export, timelines; [`chain`]: the hash chain.
//!
//! In the docs, *primary* and *partner* are the two roles of TS 23.280: the ACM server of the
//! MC system whose user sends a request, and the one that receives it. "A partner MC system"
//! is any interconnected system; which role it plays depends on the request
//! (`docs/architecture.md` has the glossary).
//!
//! No I/O, no clock reads and no async runtime here: time and ids come through ports.
#![warn(missing_docs)]

pub mod audit;
pub mod chain;
mod clock;
mod directory;
mod error;
mod event;
mod id;
mod lifecycle;
mod message;
mod pending;
mod ports;
mod request;
mod server;
mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod views;

/// Re-exported for port implementors: every port trait is an `async_trait`.
pub use async_trait::async_trait;

pub use clock::ManualClock;
pub use directory::{ComposedDirectory, StaticDirectory};
pub use error::{Closure, DomainError};
pub use event::Event;
pub use id::{
    EventId, FunctionalAlias, GlobalPosition, GroupId, IdError, IdField, IdProblem, IdempotencyKey,
    MAX_ID_LEN, McServiceId, MessageId, RequestId, StreamId, SystemId, Version,
};
pub use lifecycle::{
    Authorization, Command, Decider, Lifecycle, PartnerState, PrimaryState, ReceiptFacts,
    RequestState, Verification, Withdrawal, decide, evolve,
};
pub use message::{PartnerAck, PartnerMessage};
pub use pending::{PendingAcmData, PendingItem};
pub use ports::{
    AcceptanceHook, Authorizer, Clock, Directory, DirectoryError, HookError, IdSource,
    IdSourceError, Ids, Interconnections, Lookup, NoHook, PartnerProblem, PartnerTransport,
    PendingAcmDataNotification, ProcessingPolicy, Recipients, SequentialIds, SystemClock,
    TransportError, V7Ids,
};
pub use request::{
    AcmRequest, AcmRequestBody, AcmRequestKind, AcmResponse, AuthorizationRefusal, Decision,
    Limits, MAX_REASON_LEN, MembershipOperation, MigrationOperation, Outcome, Processing,
    RejectionReason, Responder, Target, Urgency, UserRefusal, UserResult, VerificationFailure,
};
pub use server::{
    AcmServer, ConfigError, DownloadedItem, Duty, MAX_BACKOFF, MAX_PENDING_TTL, PartnerInbox,
    Ports, PortsBuilder, RelayReport, ServerConfig, ServiceError, Session, Submission, TickReport,
};
pub use store::{
    Actor, Appended, CausationId, DomainEvent, Envelope, EventStore, EventStream, ExpectedVersion,
    NewEvent, StoreError,
};
pub use views::{
    AcmStore, Claim, Digest, InboxEntry, OutboxStatus, OwedMessage, SendFailure, SubmissionEntry,
    TimerKind, ViewChanges,
};
