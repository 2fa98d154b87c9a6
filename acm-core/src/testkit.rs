//! Test support for acm and for adapter crates (feature `testkit`): the conformance suites of
//! the event store and the ACM store ([`conformance`], [`acm`]), given/when/then helpers for
//! deciders ([`gwt`]), proptest [`strategies`], a store whose appends a test controls
//! ([`intercept`]), the in-process network between servers ([`network`]), two interconnected
//! systems ready to run the procedure on any store ([`fixture`]), the two-server state
//! machine model to run on any store ([`model`]), and a recording hook.

pub mod acm;
pub mod conformance;
pub mod fixture;
pub mod gwt;
mod hook;
pub mod intercept;
pub mod model;
pub mod network;
pub mod strategies;
pub mod workload;

pub use crate::clock::ManualClock;
pub use crate::server::execute;
/// Runs a future to completion on the current thread (what the conformance macros use, so
/// that a crate using them needs no executor of its own).
pub use futures_executor::block_on;
pub use gwt::given;
pub use hook::RecordingHook;
pub use network::InProcessNetwork;
