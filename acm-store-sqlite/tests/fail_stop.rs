//! Fail-stop: after a transaction fails (here an injected commit failure, as a failed fsync
//! would be), the store refuses every later write with `Halted` until it is reopened; reads
//! go on, and the reopened store holds exactly what its log shows.
#![allow(clippy::unwrap_used)]

mod support;

use acm_core::testkit::conformance::{TestEvent, event, stream};
use acm_core::{EventStore, ExpectedVersion, StoreError};
use acm_core::{GlobalPosition, Version};
use acm_store_sqlite::SqliteStore;
use futures_executor::block_on;
use futures_util::StreamExt;

async fn positions(store: &SqliteStore<TestEvent>) -> Vec<u64> {
    store
        .read_all(GlobalPosition::START)
        .map(|e| e.unwrap().position.0)
        .collect()
        .await
}

#[test]
fn a_failed_commit_halts_writes_until_reopened() {
    block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acm.db");
        let store = SqliteStore::<TestEvent>::open(&path).unwrap();
        let s = stream(1);
        store
            .append(s, ExpectedVersion::NoStream, vec![event(s, 1, 1)])
            .await
            .unwrap();

        store.inject_commit_failure();
        let failed = store
            .append(s, ExpectedVersion::Exact(Version(1)), vec![event(s, 2, 2)])
            .await;
        assert!(matches!(failed, Err(StoreError::Backend(_))), "{failed:?}");

        for n in 3..6 {
            let later = store
                .append(s, ExpectedVersion::Any, vec![event(s, n, n)])
                .await;
            assert!(matches!(later, Err(StoreError::Halted { .. })), "{later:?}");
        }
        let other = stream(2);
        let later = store
            .append(other, ExpectedVersion::NoStream, vec![event(other, 10, 1)])
            .await;
        assert!(matches!(later, Err(StoreError::Halted { .. })), "{later:?}");

        // Reads still work, and show only what committed.
        assert_eq!(positions(&store).await, vec![1]);
        assert_eq!(store.head().await.unwrap(), GlobalPosition(1));
        store.close().await.unwrap();

        // Reopened, the store writes again, and its log is what reads showed.
        let store = SqliteStore::<TestEvent>::open(&path).unwrap();
        assert_eq!(positions(&store).await, vec![1]);
        let appended = store
            .append(s, ExpectedVersion::Exact(Version(1)), vec![event(s, 2, 2)])
            .await
            .unwrap();
        assert_eq!(appended.first_position, GlobalPosition(2));
        assert!(store.verify().await.unwrap().is_intact());
        store.close().await.unwrap();
    });
}
