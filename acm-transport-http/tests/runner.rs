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

/// A partner C that never answers: each send to it waits out its deadline. Messages to B go
/// through the in-process network.
struct SlowC {
    to_b: std::sync::Arc<dyn acm_core::PartnerTransport>,
    c: acm_core::SystemId,
}

#[acm_core::async_trait]
impl acm_core::PartnerTransport for SlowC {
    async fn send(
        &self,
        to: &acm_core::SystemId,
        message: &acm_core::PartnerMessage,
        deadline: Duration,
    ) -> Result<acm_core::PartnerAck, acm_core::TransportError> {
        if *to == self.c {
            tokio::time::sleep(deadline).await;
            return Err(acm_core::TransportError::Unreachable {
                system: to.clone(),
                detail: "no answer before the deadline".into(),
            });
        }
        self.to_b.send(to, message, deadline).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_that_never_answers_delays_only_its_own_messages() {
    use std::sync::Arc;

    use acm_core::{AcmServer, Ports, RequestState, ServerConfig, StaticDirectory, Submission};
    use acm_store_memory::MemoryAcmStore;
    use acm_store_memory::fixture::{alice, groups};

    let sys = TwoSystems::new().await.unwrap();
    let c: acm_core::SystemId = "mc-c.example".parse().unwrap();
    let directory = StaticDirectory::new(sys.a.id.clone())
        .with_partner(sys.b.id.clone(), vec![sys.b.id.clone()])
        .with_partner(c.clone(), vec![c.clone()])
        .with_user(alice(), false)
        .with_provider(alice(), sys.b.id.clone())
        .with_provider(alice(), c.clone());
    let transport = Arc::new(SlowC {
        to_b: sys.network.transport(sys.a.id.clone()),
        c: c.clone(),
    });
    let config = ServerConfig {
        send_timeout: chrono::Duration::seconds(3),
        claim_lease: chrono::Duration::seconds(10),
        ..ServerConfig::new(sys.a.id.clone())
    };
    let a = Arc::new(
        AcmServer::open(
            config,
            Ports::builder(Arc::new(directory), transport).build(),
            Arc::new(MemoryAcmStore::new()),
        )
        .await
        .unwrap(),
    );
    let to_c = Submission::provision(
        c.clone(),
        Target::User("sip:carl@mc-c.example".parse().unwrap()),
        groups(1),
    );
    let to_b = Submission::provision(sys.b.id.clone(), Target::User(bob()), groups(1));
    let for_c = a.submit(&alice(), to_c).await.unwrap();
    let for_b = a.submit(&alice(), to_b).await.unwrap();

    let started = std::time::Instant::now();
    let pass = tokio::spawn({
        let a = a.clone();
        async move { a.relay().await }
    });
    // B's acknowledgement is recorded while the send to C still waits for its deadline.
    loop {
        if let RequestState::Primary(p) = a.state(for_b).await.unwrap()
            && p.partner_stored
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "B's message waited for C's"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let report = pass.await.unwrap().unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "C's send ran to its deadline"
    );
    assert_eq!((report.acknowledged, report.unreachable), (1, 1));
    let RequestState::Primary(p) = a.state(for_c).await.unwrap() else {
        panic!("primary")
    };
    assert!(!p.partner_stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_left_owed_is_relayed_without_waiting_for_the_tick() {
    let sys = TwoSystems::new().await.unwrap();
    let session = sys.b.log_on(&bob()).await.unwrap();
    // The tick's first pass runs at start and the next in an hour: only the wake-up can
    // relay what is submitted now.
    let a = Runner::start(sys.a.server.clone(), Duration::from_hours(1));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let id = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), session.next())
        .await
        .expect("A relays the request as soon as it is owed");
    assert_eq!(sys.b.server.pending_for(&bob()).await.unwrap(), vec![id]);
    a.shutdown().await;
}
