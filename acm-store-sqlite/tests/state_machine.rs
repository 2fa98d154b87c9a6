//! Model-based test of two ACM servers on SQLite stores: `acm_core::testkit::model`, each
//! store in its own temporary directory; 64 cases (5–10 s; 256 take about 20 s) from a
//! fixed seed (`PROPTEST_CASES` and `PROPTEST_RNG_SEED` override both).

use std::sync::{Arc, Mutex, PoisonError};

use acm_store_sqlite::SqliteAcmStore;
use tempfile::TempDir;

#[test]
fn two_acm_servers_follow_the_model_on_sqlite() {
    // The directories outlive their stores: they go when the factory does, after the run.
    let dirs: Mutex<Vec<TempDir>> = Mutex::default();
    let fresh = move || {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteAcmStore::open(dir.path().join("acm.db")).expect("the store opens");
        dirs.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(dir);
        Arc::new(store)
    };
    acm_core::testkit::model::run(fresh, 64);
}
