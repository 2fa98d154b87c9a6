//! The service when its store fails: what is stored is never stranded, what is delivered is
//! never lost.
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use acm_core::testkit::intercept::Append;
use acm_core::{
    AcmServer, Appended, Decision, Event, EventStore, ExpectedVersion, McServiceId, NewEvent,
    PendingItem, Ports, RequestId, RequestState, SequentialIds, ServiceError, StoreError, StreamId,
    Target,
};
use acm_store_memory::MemoryAcmStore;
use acm_store_memory::fixture::{System, TwoSystems, alice, bob};
use async_trait::async_trait;
use futures_executor::block_on;

mod support;
use support::Intercepted;

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

type FlakyStore = Intercepted<Flaky>;

fn fail(store: &FlakyStore, after: u32, how: Fail) {
    *store.how.skip.lock().unwrap() = after;
    *store.how.next.lock().unwrap() = how;
}

#[async_trait]
impl Append<Arc<MemoryAcmStore>, Event> for Flaky {
    async fn append(
        &self,
        inner: &Arc<MemoryAcmStore>,
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
    let ports = Ports::builder(
        system.directory.clone(),
        sys.network.transport(system.id.clone()),
    )
    .hook(system.hook.clone())
    .clock(sys.clock.clone())
    .ids(Arc::new(SequentialIds::new(seed)))
    .build();
    let server = AcmServer::open(system.server.config().clone(), ports, store.clone());
    let server = Arc::new(server.await.unwrap());
    sys.network.register(system.id.clone(), &server);
    (server, store)
}

async fn pending(server: &AcmServer, user: &McServiceId) -> Vec<RequestId> {
    server.pending_for(user).await.unwrap()
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
        assert_eq!(
            b.outbox_status().await.unwrap().depth,
            1,
            "the stored answer is in the outbox"
        );
        let report = b.tick().await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!((report.relay.acknowledged, report.hooks), (1, 1));
        match sys.a.server.state(request).await.unwrap() {
            RequestState::Primary(p) => assert!(p.response.is_some(), "A has the answer"),
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
        assert_eq!(pending(&a, &alice()).await, [r1, r2]);
        let responses = |items: &[PendingItem]| -> Vec<_> {
            items
                .iter()
                .map(|i| match i {
                    PendingItem::Response { request, .. } => request.request_id,
                    other => panic!("unexpected {other:?}"),
                })
                .collect()
        };
        let receipts =
            |items: &[PendingItem]| -> Vec<_> { items.iter().map(PendingItem::receipt).collect() };

        // A download writes nothing for responses: a store failing then cannot lose one.
        fail(&store, 0, Fail::BeforeWrite);
        let first = a.download_pending(&alice()).await.unwrap();
        assert_eq!(responses(&first.items), [r1, r2]);
        fail(&store, 0, Fail::No);

        // The second delivery fails: the first is recorded, the second stays pending.
        fail(&store, 1, Fail::BeforeWrite);
        let ack = a
            .acknowledge_download(&alice(), &receipts(&first.items))
            .await;
        assert!(matches!(ack, Err(ServiceError::Store(_))), "{ack:?}");
        assert_eq!(pending(&a, &alice()).await, [r2]);
        let second = a.download_pending(&alice()).await.unwrap();
        assert_eq!(responses(&second.items), [r2], "nothing lost");

        // The delivery is written but reported failed: it is recorded all the same, and
        // acknowledging it again is a harmless repeat.
        fail(&store, 0, Fail::AfterWrite);
        let ack = a
            .acknowledge_download(&alice(), &receipts(&second.items))
            .await;
        assert!(matches!(ack, Err(ServiceError::Store(_))), "{ack:?}");
        assert!(pending(&a, &alice()).await.is_empty());
        assert_eq!(
            a.acknowledge_download(&alice(), &receipts(&second.items))
                .await
                .unwrap(),
            0
        );
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
        assert_eq!(pending(&b, &bob()).await, [request]);
        assert_eq!(b.download_pending(&bob()).await.unwrap().items.len(), 1);
    });
}
