//! The runner drives a server's duties and stops gracefully.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use acm_core::Target;
use acm_store_memory::fixture::{TwoSystems, bob};
use acm_transport_http::Runner;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_relays_and_notifies_then_stops() {
    let sys = TwoSystems::new().await.unwrap();
    let session = sys.b.log_on(&bob()).await.unwrap();
    assert!(session.try_next().is_none(), "nothing pending yet");
    let a = Runner::start(sys.a.server.clone(), Duration::from_millis(10));
    let id = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
    // The runner of A relays the request; B stores it and bob's session is told.
    tokio::time::timeout(Duration::from_secs(10), session.next())
        .await
        .expect("bob is notified once A's runner has relayed the request");
    assert_eq!(sys.b.server.pending_for(&bob()).await.unwrap(), vec![id]);
    a.shutdown().await;
    // Stopped: a new request stays in A's outbox.
    sys.alice_provides(Target::User(bob()), 2).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(sys.a.server.outbox_status().await.unwrap().depth, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_at_one_server_is_told_of_a_request_another_server_stored() {
    use std::sync::Arc;

    use acm_core::{AcmServer, Ports, ServerConfig};

    let sys = TwoSystems::new().await.unwrap();
    // A second server of system B on the same store, as a second node would be; the network
    // routes B's messages to the first.
    let ports = Ports::builder(
        sys.b.directory.clone(),
        sys.network.transport(sys.b.id.clone()),
    )
    .clock(sys.clock.clone())
    .build();
    let store: Arc<dyn acm_core::AcmStore> = sys.b.store.clone();
    let second = Arc::new(
        AcmServer::open(ServerConfig::new(sys.b.id.clone()), ports, store)
            .await
            .unwrap(),
    );
    let session = second.log_on(&bob()).await.unwrap();
    assert!(session.try_next().is_none());
    let runner = Runner::start(second.clone(), Duration::from_hours(1));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let id = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
    sys.a.server.relay().await.unwrap();
    // The first server stored it; the second learns it from the store's log.
    tokio::time::timeout(Duration::from_secs(10), session.next())
        .await
        .expect("bob, logged on at the second server, is notified");
    assert_eq!(second.pending_for(&bob()).await.unwrap(), vec![id]);
    runner.shutdown().await;
}
