//! The SQLite store passes the event store conformance suite, unchanged.
#![allow(clippy::unwrap_used)]

mod support;

use acm_core::testkit::conformance::TestEvent;

acm_core::conformance_tests!(support::temp_store::<TestEvent>());
