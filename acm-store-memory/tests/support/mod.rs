//! Test support shared by the integration tests: a memory ACM store whose appends a test
//! controls (the test kit's `Intercepted` keeps the inner store's views).

use std::sync::Arc;

use acm_store_memory::MemoryAcmStore;

/// A memory ACM store appending through `H`; reads and views pass straight through.
pub type Intercepted<H> = acm_core::testkit::intercept::Intercepted<Arc<MemoryAcmStore>, H>;
