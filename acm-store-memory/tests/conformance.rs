//! The memory store passes the event store conformance suite.

use acm_core::testkit::conformance::TestEvent;
use acm_store_memory::MemoryStore;

acm_core::conformance_tests!(MemoryStore::<TestEvent>::new());
