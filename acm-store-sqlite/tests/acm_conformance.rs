//! The SQLite ACM store passes the ACM store conformance suite: its views equal the fold of
//! its log after any history, keys are claimed once, outbox claims are leased.
#![allow(clippy::unwrap_used)]

use acm_core::testkit::intercept::{Intercepted, Passthrough};
use acm_store_sqlite::SqliteAcmStore;
use tempfile::TempDir;

/// A [`SqliteAcmStore`] in a temporary directory that lives as long as it.
fn fresh() -> Intercepted<SqliteAcmStore, Passthrough<TempDir>> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteAcmStore::open(dir.path().join("acm.db")).unwrap();
    Intercepted {
        inner: store,
        how: Passthrough(dir),
    }
}

acm_core::acm_conformance_tests!(fresh());
