//! # acm-core
//!
//! The pure core of acm: TS 23.280 administrative configuration management (ACM) between
//! interconnected MC systems, starting with interconnection group identity provision.
//!
//! - [`lifecycle`]: the request lifecycle as a pure decider (`decide`, total `evolve`);
//! - [`event`], [`request`], [`id`]: the events, information elements and identifiers;
//! - [`store`] and [`ports`]: the traits that adapters implement;
//! - [`server`]: the ACM server service that runs the procedure over the ports;
//! - [`audit`]: replay, JSON Lines export and import, timelines.
//!
//! No I/O, no clock reads and no async runtime here: time and ids come through ports.
#![warn(missing_docs)]

pub mod audit;
pub mod chain;
pub mod directory;
pub mod error;
pub mod event;
pub mod id;
pub mod lifecycle;
pub mod message;
pub mod pending;
pub mod ports;
pub mod recording;
pub mod request;
pub mod server;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::DomainError;
pub use event::Event;
pub use lifecycle::{Command, Decider, Lifecycle, RequestState, decide, evolve};
pub use server::{AcmServer, Ports, ServerConfig, ServiceError, Submission};
pub use store::{Envelope, EventStore, ExpectedVersion, StoreError};
