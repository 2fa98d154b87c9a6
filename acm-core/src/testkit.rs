//! Test support for acm and for adapter crates (feature `testkit`): the event store
//! conformance suite, given/when/then helpers for deciders, and recording test doubles.

pub mod conformance;
pub mod gwt;

pub use crate::recording::{ManualClock, RecordingHook, RecordingNotifier};
pub use gwt::given;
