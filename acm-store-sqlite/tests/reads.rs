//! Whole-log reads run pages ahead of the consumer: at page boundaries, and while appends
//! commit, a read still yields a gap-free run of positions from `after + 1`.
#![allow(clippy::unwrap_used)]

mod support;

use acm_core::id::{GlobalPosition, Version};
use acm_core::store::{EventStore, ExpectedVersion};
use acm_core::testkit::conformance::{TestEvent, event, stream};
use futures_util::StreamExt;
use support::TempStore;

const PAGE: u64 = 2048;

async fn positions(t: &TempStore<TestEvent>, after: u64) -> Vec<u64> {
    t.store
        .read_all(GlobalPosition(after))
        .map(|e| e.unwrap().position.0)
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_at_page_boundaries_and_beside_appends() {
    let t = TempStore::<TestEvent>::new();
    let s = stream(1);
    let total = 2 * PAGE;
    for chunk in 0..total / 512 {
        let batch = (1..=512).map(|i| event(s, chunk * 512 + i, i)).collect();
        t.store
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
        let store = t.store.clone();
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
