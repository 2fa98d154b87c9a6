//! Group commit: concurrent appends share transactions, and each caller still gets its own
//! result — the winners their positions, the losers their typed conflicts.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;

use acm_core::testkit::conformance::{TestEvent, event, stream};
use acm_core::{EventStore, ExpectedVersion, StoreError};
use acm_core::{GlobalPosition, Version};
use futures_util::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_transactions_and_get_their_own_results() {
    let t = support::temp_store::<TestEvent>();
    let contested = stream(1);
    // 512 appends at once: even tasks each to a stream of their own (all must succeed), odd
    // tasks all to one contested stream expecting it empty (exactly one may succeed).
    let tasks: Vec<_> = (0..512u64)
        .map(|i| {
            let store = t.inner.clone();
            tokio::spawn(async move {
                let s = if i % 2 == 0 {
                    stream(100 + i)
                } else {
                    contested
                };
                let r = store
                    .append(
                        s,
                        ExpectedVersion::NoStream,
                        vec![event(s, 1_000 + i, i), event(s, 5_000 + i, i)],
                    )
                    .await;
                (i, r)
            })
        })
        .collect();
    let mut positions = BTreeSet::new();
    let mut contested_wins = 0;
    for task in tasks {
        let (i, r) = task.await.unwrap();
        match (i % 2, r) {
            (0, Ok(a)) => {
                assert_eq!((a.first_version, a.count), (Version(1), 2));
                positions.insert(a.first_position.0);
            }
            (1, Ok(a)) => {
                contested_wins += 1;
                positions.insert(a.first_position.0);
            }
            (1, Err(StoreError::Conflict { actual, .. })) => assert_eq!(actual, Version(2)),
            (_, r) => panic!("append {i}: unexpected {r:?}"),
        }
    }
    assert_eq!(
        contested_wins, 1,
        "exactly one append wins the contested stream"
    );
    // 257 batches of two: positions 1, 3, 5, … each once, and nothing in between lost.
    assert_eq!(positions, (0..257u64).map(|b| 1 + 2 * b).collect());
    assert_eq!(t.inner.head().await.unwrap(), GlobalPosition(514));
    let all: Vec<_> = t.inner.read_all(GlobalPosition::START).collect().await;
    assert_eq!(all.len(), 514);

    let stats = t.inner.stats();
    assert_eq!(stats.jobs, 512, "every append went through the writer");
    assert!(
        stats.transactions < stats.jobs,
        "appends queued together commit together: {stats:?}"
    );
    assert!(t.inner.verify().await.unwrap().is_intact());
}
