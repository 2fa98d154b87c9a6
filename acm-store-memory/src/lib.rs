//! # acm-store-memory
//!
//! An in-memory [`EventStore`](acm_core::EventStore) that honours every guarantee of
//! the trait, and an in-process network so that ACM servers talk without sockets. For tests,
//! benchmarks, demos and embedding where durability is not needed.
#![warn(missing_docs)]

mod acm;
pub mod fixture;
mod hook;
pub mod network;
pub mod store;

pub use acm::{AcmViews, MemoryAcmStore};
pub use hook::RecordingHook;
pub use network::InProcessNetwork;
pub use store::{MemoryStore, NoViews, Projector};
