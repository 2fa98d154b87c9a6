//! Test support for acm and for adapter crates (feature `testkit`): the event store
//! conformance suite, given/when/then helpers for deciders, a store whose appends a test
//! controls, and recording test doubles.

pub mod conformance;
pub mod gwt;
pub mod intercept;

pub use crate::clock::ManualClock;
pub use crate::server::execute;
pub use gwt::given;
