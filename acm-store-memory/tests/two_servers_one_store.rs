//! Found by review: two servers on one store (as two processes on one database), and a
//! download acknowledged with items that are not pending.
#![allow(clippy::unwrap_used)]
use std::sync::Arc;

use acm_core::{
    AcmServer, Decision, DownloadedItem, PendingItem, Ports, RequestId, SequentialIds,
    ServerConfig, Target,
};
use acm_store_memory::fixture::{TwoSystems, alice, bob, id};
use futures_executor::block_on;

/// Two servers on one store: A's cache held a stale state, so A's download missed the
/// response the other server stored; a download now reads the stream when the cache is
/// behind the store's views.
#[test]
fn second_server_on_the_same_store_download_sees_the_response() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        // A records the submission and caches it (unsettled: owed, awaiting the ack).
        let request = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
        let a_id = sys.a.id.clone();
        let ports = Ports::builder(sys.a.directory.clone(), sys.network.transport(a_id.clone()))
            .clock(sys.clock.clone())
            .ids(Arc::new(SequentialIds::new(0xC)))
            .build();
        let a2 = Arc::new(
            AcmServer::open(ServerConfig::new(a_id.clone()), ports, sys.a.store.clone())
                .await
                .unwrap(),
        );
        sys.network.register(a_id, &a2); // partner messages now reach the other process
        assert_eq!(a2.tick().await.relay.acknowledged, 1); // the other process relays it
        sys.bob_answers(request, Decision::Accept).await.unwrap();
        assert_eq!(
            sys.a.server.pending_for(&alice()).await.unwrap(),
            vec![request]
        );
        let data = sys.a.server.download_pending(&alice()).await.unwrap();
        assert!(
            data.items
                .iter()
                .any(|i| matches!(i, PendingItem::Response { .. })),
            "the store says the response is pending, the download returns {:?}",
            data.items
        );
    });
}

/// `acknowledge_download` once recorded the first item, then failed on the second (`Err`
/// after a commit, and the count lost); an item that is not pending is now skipped.
#[test]
fn acknowledging_an_unknown_item_beside_a_real_one_succeeds() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let request = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
        sys.settle().await.unwrap();
        sys.bob_answers(request, Decision::Accept).await.unwrap();
        let unknown: RequestId = id("01890000-0000-7000-8000-000000000001");
        let result = sys
            .a
            .server
            .acknowledge_download(
                &alice(),
                &[
                    DownloadedItem::Response(request),
                    DownloadedItem::Response(unknown),
                ],
            )
            .await;
        let still_pending = sys.a.server.pending_for(&alice()).await.unwrap();
        // The real item is recorded (one event), the unknown one skipped, and a retry of the
        // same list records nothing and still succeeds.
        assert_eq!(result.unwrap(), 1, "pending now {still_pending:?}");
        assert!(still_pending.is_empty());
        let again = sys
            .a
            .server
            .acknowledge_download(
                &alice(),
                &[
                    DownloadedItem::Response(request),
                    DownloadedItem::Response(unknown),
                ],
            )
            .await;
        assert_eq!(again.unwrap(), 0);
    });
}
