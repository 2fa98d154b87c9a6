//! The service when its store fails: what is stored is never stranded, what is delivered is
//! never lost.
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use acm_core::id::StreamId;
use acm_core::lifecycle::RequestState;
use acm_core::pending::PendingItem;
use acm_core::ports::SequentialIds;
use acm_core::request::{Decision, Target};
use acm_core::store::{Appended, EventStore, ExpectedVersion, NewEvent, StoreError};
use acm_core::{AcmServer, Event, Ports, ServiceError};
use acm_store_memory::MemoryStore;
use acm_store_memory::fixture::{System, TwoSystems, alice, bob};
use async_trait::async_trait;

use acm_core::testkit::intercept::{Append, Intercepted};
use futures_executor::block_on;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    No,
    /// The append is durable but the caller sees a backend error (a lost commit reply).
    AfterWrite,
    /// Nothing is written.
    BeforeWrite,
}

/// A memory store that fails the append after `skip` more successful ones.
struct Flaky {
    next: Mutex<Fail>,
    skip: Mutex<u32>,
}

type FlakyStore = Intercepted<Arc<MemoryStore<Event>>, Flaky>;

fn fail(store: &FlakyStore, after: u32, how: Fail) {
    *store.how.skip.lock().unwrap() = after;
    *store.how.next.lock().unwrap() = how;
}

#[async_trait]
impl Append<Arc<MemoryStore<Event>>, Event> for Flaky {
    async fn append(
        &self,
        inner: &Arc<MemoryStore<Event>>,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent<Event>>,
    ) -> Result<Appended, StoreError> {
        let mode = {
            let mut skip = self.skip.lock().unwrap();
            if *skip > 0 {
                *skip -= 1;
                Fail::No
            } else {
                std::mem::replace(&mut *self.next.lock().unwrap(), Fail::No)
            }
        };
        if mode == Fail::BeforeWrite {
            return Err(StoreError::Backend("disk full".into()));
        }
        let result = inner.append(stream, expected, events).await;
        if mode == Fail::AfterWrite {
            return Err(StoreError::Backend("commit reply lost".into()));
        }
        result
    }
}

/// Replaces `system`'s server by one on a flaky view of the same store.
async fn flaky(sys: &TwoSystems, system: &System, seed: u16) -> (Arc<AcmServer>, Arc<FlakyStore>) {
    let store = Arc::new(Intercepted {
        inner: system.store.clone(),
        how: Flaky {
            next: Mutex::new(Fail::No),
            skip: Mutex::new(0),
        },
    });
    let ports = Ports {
        notifier: system.notifier.clone(),
        hook: system.hook.clone(),
        clock: sys.clock.clone(),
        ids: Arc::new(SequentialIds::new(seed)),
        outbox: None,
        ..Ports::new(
            system.directory.clone(),
            sys.network.transport(system.id.clone()),
        )
    };
    let server = AcmServer::open(system.server.config().clone(), ports, store.clone());
    let server = Arc::new(server.await.unwrap());
    sys.network.register(system.id.clone(), &server);
    (server, store)
}

#[test]
fn an_answer_stored_despite_a_backend_error_is_still_relayed_and_hooked() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let request = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
        sys.settle().await.unwrap();
        let (b, store) = flaky(&sys, &sys.b, 0xC).await;
        b.download_pending(&bob()).await.unwrap();
        fail(&store, 0, Fail::AfterWrite);
        let answer = b.respond(&bob(), None, request, Decision::Accept).await;
        assert!(matches!(answer, Err(ServiceError::Store(_))), "{answer:?}");
        assert_eq!(b.outbox_len(), 1, "the stored answer is in the outbox");
        b.tick().await.unwrap();
        match sys.a.server.state(request) {
            Some(RequestState::Primary(p)) => assert!(p.response.is_some(), "A has the answer"),
            other => panic!("expected A's state, got {other:?}"),
        }
        assert_eq!(sys.b.hook.calls(), [request]);
    });
}

#[test]
fn a_download_cut_short_by_the_store_loses_no_response() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let r1 = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
        let r2 = sys.alice_provides(Target::User(bob()), 2).await.unwrap();
        sys.settle().await.unwrap();
        sys.b.server.download_pending(&bob()).await.unwrap();
        for r in [r1, r2] {
            sys.b
                .server
                .respond(&bob(), None, r, Decision::Accept)
                .await
                .unwrap();
        }
        sys.settle().await.unwrap();
        let (a, store) = flaky(&sys, &sys.a, 0xD).await;
        assert_eq!(a.pending_for(&alice()), [r1, r2]);
        let responses = |items: Vec<PendingItem>| -> Vec<_> {
            items
                .into_iter()
                .map(|i| match i {
                    PendingItem::Response { request, .. } => request.request_id,
                    other => panic!("unexpected {other:?}"),
                })
                .collect()
        };

        // The second delivery fails: the client gets the first, the second stays pending.
        fail(&store, 1, Fail::BeforeWrite);
        let first = a.download_pending(&alice()).await.unwrap();
        assert_eq!(responses(first.items), [r1]);
        assert_eq!(a.pending_for(&alice()), [r2]);

        // The delivery is written but reported failed: the client still gets it.
        fail(&store, 0, Fail::AfterWrite);
        let second = a.download_pending(&alice()).await.unwrap();
        assert_eq!(responses(second.items), [r2]);
        assert!(a.pending_for(&alice()).is_empty());
    });
}

#[test]
fn a_failed_first_delivery_is_an_error_and_stays_pending() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let request = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
        sys.settle().await.unwrap();
        let (b, store) = flaky(&sys, &sys.b, 0xE).await;
        fail(&store, 0, Fail::BeforeWrite);
        let download = b.download_pending(&bob()).await;
        assert!(
            matches!(download, Err(ServiceError::Store(_))),
            "{download:?}"
        );
        assert_eq!(b.pending_for(&bob()), [request]);
        assert_eq!(b.download_pending(&bob()).await.unwrap().items.len(), 1);
    });
}
