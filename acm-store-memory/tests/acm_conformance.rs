//! The memory store passes the ACM store conformance suite: its views are the fold of its log.

acm_core::acm_conformance_tests!(acm_store_memory::MemoryAcmStore::new());
