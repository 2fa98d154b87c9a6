//! Test support for acm and for adapter crates (feature `testkit`): the event store
//! conformance suite, given/when/then helpers for deciders, a store whose appends a test
//! controls, and recording test doubles.

pub mod acm;
pub mod conformance;
pub mod gwt;
pub mod intercept;
pub mod strategies;

pub use crate::clock::ManualClock;
pub use crate::server::execute;
/// Runs a future to completion on the current thread (what the conformance macros use, so
/// that a crate using them needs no executor of its own).
pub use futures_executor::block_on;
pub use gwt::given;
