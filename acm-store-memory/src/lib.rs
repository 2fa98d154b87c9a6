//! # acm-store-memory
//!
//! An in-memory [`EventStore`](acm_core::EventStore) that honours every guarantee of the
//! trait ([`MemoryStore`]), and the same with the ACM views ([`MemoryAcmStore`]), for tests,
//! benchmarks, demos and embedding where durability is not needed.
//!
//! ```
//! use std::sync::Arc;
//! use acm_store_memory::fixture::{TwoSystems, alice, bob};
//! # futures_executor::block_on(async {
//! let sys = TwoSystems::new().await.unwrap(); // systems A and B on memory stores
//! let id = sys.alice_provides(acm_core::Target::User(bob()), 2).await.unwrap();
//! sys.settle().await.unwrap();
//! assert_eq!(sys.b.server.pending_for(&bob()).await.unwrap(), vec![id]);
//! # let _ = alice();
//! # });
//! ```
#![warn(missing_docs)]

mod acm;
pub mod store;

pub use acm::{AcmViews, MemoryAcmStore};
/// The in-process network between ACM servers (it lives in `acm_core::testkit`).
pub use acm_core::testkit::InProcessNetwork;
/// The recording acceptance hook (it lives in `acm_core::testkit`).
pub use acm_core::testkit::RecordingHook;
pub use store::{MemoryStore, NoViews, Projector};

/// Systems A and B on memory stores: `acm_core::testkit::fixture` with the memory store as
/// the default.
pub mod fixture {
    pub use acm_core::testkit::fixture::{alice, bob, carol, duty_officer, groups, id, provision};

    /// One MC system of the pair, on a memory store.
    pub type System = acm_core::testkit::fixture::System<crate::MemoryAcmStore>;

    /// Systems A and B, interconnected, on memory stores (for other stores:
    /// `acm_core::testkit::fixture::TwoSystems<S>`).
    pub type TwoSystems = acm_core::testkit::fixture::TwoSystems<crate::MemoryAcmStore>;
}

/// The network module's old path.
pub mod network {
    pub use acm_core::testkit::InProcessNetwork;
}
