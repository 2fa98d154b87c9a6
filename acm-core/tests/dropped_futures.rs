//! A command future dropped at any point — before its append, after the store committed but
//! before the server saw the answer — leaves the store's views equal to the fold of its log
//! and the server's answers equal to the log: views are written in the events' transaction,
//! and the server's cache never holds an entry a dropped command was changing.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use acm_core::testkit::acm::{assert_views_read_only, expected_views};
use acm_core::testkit::fixture::TwoSystems;
use acm_core::testkit::intercept::{Append, Intercepted};
use acm_core::{
    AcmStore, Appended, Decision, Event, EventStore, ExpectedVersion, NewEvent, RequestState,
    StoreError, StreamId, Target, evolve,
};
use acm_store_memory::MemoryAcmStore;
use acm_store_memory::fixture::bob;
use futures_util::StreamExt;
use futures_util::task::noop_waker;
use proptest::prelude::*;

/// Returns `Pending` once (waking itself), so that a test can stop a future there.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Appends with a pause before and after the real append: a dropped future can stop before
/// the store was asked, or after it committed.
struct Pausing;

#[async_trait::async_trait]
impl Append<MemoryAcmStore, Event> for Pausing {
    async fn append(
        &self,
        inner: &MemoryAcmStore,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent<Event>>,
    ) -> Result<Appended, StoreError> {
        YieldOnce(false).await;
        let appended = inner.append(stream, expected, events).await;
        YieldOnce(false).await;
        appended
    }
}

/// Polls `f` at most `polls` times; drops it if it has not finished.
fn poll_then_drop<F: Future>(f: F, polls: usize) -> Option<F::Output> {
    let mut f = Box::pin(f);
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    for _ in 0..polls {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return Some(out);
        }
    }
    None
}

#[derive(Debug, Clone)]
enum Op {
    Submit,
    RelayA,
    Download,
    Respond(usize),
    RelayB,
}

fn op() -> impl Strategy<Value = (Op, usize)> {
    (
        prop_oneof![
            Just(Op::Submit),
            Just(Op::RelayA),
            Just(Op::Download),
            (0usize..4).prop_map(Op::Respond),
            Just(Op::RelayB),
        ],
        0usize..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn dropped_commands_leave_views_and_answers_true(ops in proptest::collection::vec(op(), 1..30)) {
        futures_executor::block_on(async {
            let sys = TwoSystems::with_stores(|c| c, |_| {
                Arc::new(Intercepted { inner: MemoryAcmStore::new(), how: Pausing })
            })
            .await
            .unwrap();
            let mut submitted = Vec::new();
            for (op, polls) in &ops {
                match op {
                    Op::Submit => {
                        if let Some(Ok(id)) = poll_then_drop(sys.alice_provides(Target::User(bob()), 1), *polls) {
                            submitted.push(id);
                        }
                    }
                    Op::RelayA => { poll_then_drop(sys.a.server.tick(), *polls); }
                    Op::Download => { poll_then_drop(sys.b.server.download_pending(&bob()), *polls); }
                    Op::Respond(i) => {
                        if let Some(id) = submitted.get(*i) {
                            poll_then_drop(sys.b.server.respond(&bob(), None, *id, Decision::Accept), *polls);
                        }
                    }
                    Op::RelayB => { poll_then_drop(sys.b.server.tick(), *polls); }
                }
            }
            for (server, store) in [(&sys.a.server, &sys.a.store), (&sys.b.server, &sys.b.store)] {
                // The views are the fold of the log.
                let expected = expected_views(store.as_ref()).await;
                assert_views_read_only(store.as_ref(), &expected).await;
                // The server answers what the log says.
                let mut log = store.read_all(acm_core::GlobalPosition::START);
                let mut states = std::collections::BTreeMap::new();
                while let Some(e) = log.next().await {
                    let e = e.unwrap();
                    let s: RequestState = states.remove(&e.stream_id).unwrap_or_default();
                    states.insert(e.stream_id, evolve(s, &e.payload));
                }
                for (stream, state) in states {
                    assert_eq!(server.state(stream.0).await.unwrap(), state);
                }
            }
            // And the procedure still completes for every request once nothing is dropped
            // (after the leases of claims that dropped relays held have run out).
            sys.clock.advance(chrono::Duration::minutes(1));
            sys.settle().await.unwrap();
            sys.b.server.download_pending(&bob()).await.unwrap();
            for id in &submitted {
                let _ = sys.b.server.respond(&bob(), None, *id, Decision::Accept).await;
            }
            sys.clock.advance(chrono::Duration::minutes(1));
            sys.settle().await.unwrap();
            for id in &submitted {
                let state = sys.a.server.state(*id).await.unwrap();
                let RequestState::Primary(p) = state else { panic!("not primary") };
                let b_state = sys.b.server.state(*id).await.unwrap();
                let status = sys.b.store.outbox_status().await.unwrap();
                let a_status = sys.a.store.outbox_status().await.unwrap();
                assert!(p.response.is_some(), "request {id} answered: {ops:?}\nA {p:?}\nB {b_state:?}\n{status:?} {a_status:?}");
            }
        });
    }
}
