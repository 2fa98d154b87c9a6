//! The memory store passes the event store conformance suite.
// A failed unwrap is a failed test; a scenario reads best as one function.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use acm_core::testkit::conformance::TestEvent;
use acm_store_memory::MemoryStore;

acm_core::conformance_tests!(MemoryStore::<TestEvent>::new());
