//! Whole-log reads run pages ahead of the consumer: at page boundaries, and while appends
//! commit, a read still yields a gap-free run of positions from `after + 1`.
#![allow(clippy::unwrap_used)]

mod support;

use acm_core::testkit::conformance::{TestEvent, event, stream};
use acm_core::{EventStore, ExpectedVersion};
use acm_core::{GlobalPosition, Version};
use futures_util::StreamExt;
use support::TempStore;

const PAGE: u64 = 2048;

async fn positions(t: &TempStore<TestEvent>, after: u64) -> Vec<u64> {
    t.inner
        .read_all(GlobalPosition(after))
        .map(|e| e.unwrap().position.0)
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_at_page_boundaries_and_beside_appends() {
    let t = support::temp_store::<TestEvent>();
    let s = stream(1);
    let total = 2 * PAGE;
    for chunk in 0..total / 512 {
        let batch = (1..=512).map(|i| event(s, chunk * 512 + i, i)).collect();
        t.inner
            .append(s, ExpectedVersion::Exact(Version(chunk * 512)), batch)
            .await
            .unwrap();
    }
    for after in [0, 1, PAGE - 1, PAGE, PAGE + 1, total - 1, total, total + 5] {
        let want: Vec<u64> = (after + 1..=total).collect();
        assert_eq!(positions(&t, after).await, want, "read_all after {after}");
    }

    // Reads racing appends: each sees a prefix of the log, without gaps.
    let writer = {
        let store = t.inner.clone();
        tokio::spawn(async move {
            let s = stream(2);
            for i in 0..200u64 {
                let batch = (0..50).map(|j| event(s, 100_000 + i * 50 + j, j)).collect();
                store
                    .append(s, ExpectedVersion::Exact(Version(i * 50)), batch)
                    .await
                    .unwrap();
            }
        })
    };
    for _ in 0..20 {
        let got = positions(&t, PAGE - 3).await;
        let want: Vec<u64> = (PAGE - 2..PAGE - 2 + got.len() as u64).collect();
        assert_eq!(got, want);
        assert!(got.len() as u64 >= total - PAGE + 3);
    }
    writer.await.unwrap();
    assert_eq!(positions(&t, 0).await.len() as u64, total + 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_the_largest_position_is_empty() {
    let t = support::temp_store::<TestEvent>();
    let s = stream(1);
    t.inner
        .append(s, ExpectedVersion::NoStream, vec![event(s, 1, 1)])
        .await
        .unwrap();
    assert!(positions(&t, u64::MAX).await.is_empty());
    assert!(positions(&t, u64::MAX - 1).await.is_empty());
}

/// A row deleted behind the store's back is reported where it is missing; no event is ever
/// yielded twice (the read-ahead computes page starts from gap-free positions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hole_in_the_log_is_an_error_not_a_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acm.db");
    {
        let store = acm_store_sqlite::SqliteStore::<TestEvent>::open(&path).unwrap();
        let s = stream(1);
        for chunk in 0..(2 * PAGE) / 512 {
            let batch = (1..=512).map(|i| event(s, chunk * 512 + i, i)).collect();
            store
                .append(s, ExpectedVersion::Exact(Version(chunk * 512)), batch)
                .await
                .unwrap();
        }
        store.close().await.unwrap();
    }
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TRIGGER events_no_delete; DELETE FROM events WHERE position = 5;")
        .unwrap();
    let store = acm_store_sqlite::SqliteStore::<TestEvent>::open(&path).unwrap();
    let read: Vec<_> = store.read_all(GlobalPosition::START).collect().await;
    assert!(
        read.iter().all(Result::is_err) && read.len() == 1,
        "{} items",
        read.len()
    );
    let Err(acm_core::StoreError::Backend(e)) = &read[0] else {
        unreachable!()
    };
    assert!(
        matches!(
            e.downcast_ref::<acm_store_sqlite::BackendError>(),
            Some(acm_store_sqlite::BackendError::Corrupt { position: 5, .. })
        ),
        "{e}"
    );
}
