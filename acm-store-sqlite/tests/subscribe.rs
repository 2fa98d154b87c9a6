//! The catch-up subscription: history after a position, then live events as they commit, in
//! order and without gaps.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use acm_core::testkit::conformance::{TestEvent, event, stream};
use acm_core::{Envelope, EventStore, EventStream, ExpectedVersion};
use acm_core::{GlobalPosition, Version};
use futures_util::StreamExt;

/// The next event, which must come within ten seconds.
async fn next_event(sub: &mut EventStream<'static, TestEvent>) -> Envelope<TestEvent> {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("an event arrives")
        .expect("the subscription stays open")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_then_live_events_in_order() {
    let t = support::temp_store::<TestEvent>();
    let s = stream(1);
    for i in 1..=5u64 {
        t.inner
            .append(
                s,
                ExpectedVersion::Exact(Version(i - 1)),
                vec![event(s, i, i)],
            )
            .await
            .unwrap();
    }
    let mut sub = t.inner.subscribe(GlobalPosition(2));

    // Live appends from other tasks, on several streams, while the subscriber reads.
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let store = t.inner.clone();
            tokio::spawn(async move {
                let s = stream(10 + w);
                for i in 0..10u64 {
                    let id = 100 + w * 100 + i;
                    store
                        .append(
                            s,
                            ExpectedVersion::Exact(Version(i)),
                            vec![event(s, id, id)],
                        )
                        .await
                        .unwrap();
                }
            })
        })
        .collect();

    let mut seen = Vec::new();
    while seen.len() < 3 + 40 {
        let next = next_event(&mut sub).await;
        seen.push(next.position.0);
    }
    for w in writers {
        w.await.unwrap();
    }
    let want: Vec<u64> = (3..=45).collect();
    assert_eq!(
        seen, want,
        "history 3..=5, then every live event in commit order"
    );

    // Nothing more until something commits.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), sub.next())
            .await
            .is_err()
    );
    let s = stream(99);
    t.inner
        .append(s, ExpectedVersion::NoStream, vec![event(s, 9_999, 1)])
        .await
        .unwrap();
    let next = next_event(&mut sub).await;
    assert_eq!(next.position, GlobalPosition(46));
    assert_eq!(next.payload.n, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_from_the_head_sees_only_new_events() {
    let t = support::temp_store::<TestEvent>();
    let s = stream(1);
    t.inner
        .append(
            s,
            ExpectedVersion::NoStream,
            vec![event(s, 1, 1), event(s, 2, 2)],
        )
        .await
        .unwrap();
    let head = t.inner.head().await.unwrap();
    let mut sub = t.inner.subscribe(head);
    t.inner
        .append(s, ExpectedVersion::Exact(Version(2)), vec![event(s, 3, 3)])
        .await
        .unwrap();
    let next = next_event(&mut sub).await;
    assert_eq!(
        (next.position, next.version),
        (GlobalPosition(3), Version(3))
    );
}
