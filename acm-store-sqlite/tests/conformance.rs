//! The SQLite store passes the event store conformance suite, unchanged.
#![allow(clippy::unwrap_used)]

mod support;

use acm_core::testkit::conformance::TestEvent;
use support::TempStore;

acm_core::conformance_tests!(TempStore::<TestEvent>::new());
