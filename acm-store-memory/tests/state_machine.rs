//! Model-based test of two ACM servers on memory stores: `acm_core::testkit::model`, 256
//! cases from a fixed seed (`PROPTEST_CASES` and `PROPTEST_RNG_SEED` override both).

use std::sync::Arc;

use acm_store_memory::MemoryAcmStore;

#[test]
fn two_acm_servers_follow_the_model() {
    acm_core::testkit::model::run(|| Arc::new(MemoryAcmStore::new()), 256);
}
