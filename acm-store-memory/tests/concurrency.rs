//! Commands racing on one request: the cached state and version must end equal to the log.
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use acm_core::testkit::intercept::Append;
use acm_core::{
    AcmRequest, AcmRequestBody, AcmServer, AcmStore, Appended, Event, EventStore, ExpectedVersion,
    ManualClock, NewEvent, PartnerMessage, Ports, SequentialIds, ServerConfig, StaticDirectory,
    StoreError, StreamId, SystemId, Target, Version,
};
use acm_store_memory::fixture::{alice, bob, carol, duty_officer, groups, id};
use acm_store_memory::{InProcessNetwork, MemoryAcmStore};
use async_trait::async_trait;

mod support;
use support::Intercepted;

/// Returns `Pending` a given number of times before completing.
struct Stall(usize);

impl Future for Stall {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            Poll::Ready(())
        } else {
            self.0 -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Appends commit at once but answer late: the first append after `armed` is set stalls
/// that many polls.
struct LateAcks {
    armed: AtomicUsize,
}

#[async_trait]
impl Append<Arc<MemoryAcmStore>, Event> for LateAcks {
    async fn append(
        &self,
        inner: &Arc<MemoryAcmStore>,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent<Event>>,
    ) -> Result<Appended, StoreError> {
        let result = inner.append(stream, expected, events).await;
        if result.is_ok() {
            Stall(self.armed.swap(0, Ordering::SeqCst)).await;
        }
        result
    }
}

type LateStore = Arc<Intercepted<LateAcks>>;

/// System B's ACM server on a store whose acknowledgements can be made late; A is its
/// partner, bob and carol (who may receive) hold the duty officer alias.
async fn partner_b() -> (AcmServer, LateStore) {
    let (a, b): (SystemId, SystemId) = (id("mc-a.example"), id("mc-b.example"));
    // Alias holders are offered a request only as users who may receive.
    let directory = StaticDirectory::new(b.clone())
        .with_partner(a.clone(), vec![a.clone()])
        .with_user(bob(), true)
        .with_user(carol(), true);
    directory.set_alias_holders(duty_officer(), vec![bob(), carol()]);
    let store = Arc::new(Intercepted {
        inner: Arc::new(MemoryAcmStore::new()),
        how: LateAcks {
            armed: AtomicUsize::new(0),
        },
    });
    let ports = Ports::builder(
        Arc::new(directory),
        InProcessNetwork::new().transport(b.clone()),
    )
    .clock(Arc::new(ManualClock::default()))
    .ids(Arc::new(SequentialIds::new(7)))
    .build();
    let server = AcmServer::open(ServerConfig::new(b), ports, store.clone())
        .await
        .unwrap();
    (server, store)
}

#[test]
fn racing_downloads_leave_the_cache_equal_to_the_log() {
    futures_executor::block_on(async {
        let (server, store) = partner_b().await;
        let a: SystemId = id("mc-a.example");
        let request = AcmRequest {
            request_id: id("0190a000-0000-7000-8000-0000000000aa"),
            requester: alice(),
            requester_alias: None,
            partner: id("mc-b.example"),
            target: Target::FunctionalAlias(duty_officer()),
            body: AcmRequestBody::provision(groups(1)),
        };
        let request_id = request.request_id;
        let message = PartnerMessage::Request {
            message_id: id("0190a000-0000-7000-8000-000000000001"),
            request: Arc::new(request),
        };
        server.receive(&a, message).await.unwrap();

        // Bob's delivery commits first but is acknowledged last; carol's races it, loses
        // the version check, reloads, and commits after it.
        store.how.armed.store(3, Ordering::SeqCst);
        let (x, y) = futures_util::future::join(
            server.download_pending(&bob()),
            server.download_pending(&carol()),
        )
        .await;
        assert_eq!(x.unwrap().items.len(), 1);
        assert_eq!(y.unwrap().items.len(), 1);

        let log = store.inner.snapshot();
        let stream_len = log
            .iter()
            .filter(|e| e.stream_id == StreamId(request_id))
            .count();
        assert_eq!(stream_len, 4, "stored, verified, delivered twice");
        assert_eq!(
            server.version(request_id).await.unwrap(),
            Version(stream_len as u64)
        );
        let replayed = acm_core::audit::replay(log).unwrap();
        for (id, state) in &replayed {
            assert_eq!(&server.state(*id).await.unwrap(), state, "{id}");
        }
        // The views the store keeps agree with the log too.
        assert_eq!(store.inner.pending_for(&bob()).await.unwrap(), [request_id]);
    });
}

/// Two partner messages with one message id for two requests, racing: the first is still
/// inside its append when the second arrives. Only the first is stored.
#[test]
fn racing_messages_with_one_id_for_two_requests_store_only_one() {
    futures_executor::block_on(async {
        let (server, store) = partner_b().await;
        let a: SystemId = id("mc-a.example");
        let message_id = id("0190a000-0000-7000-8000-000000000001");
        let message = |request_id: &str| PartnerMessage::Request {
            message_id,
            request: Arc::new(AcmRequest {
                request_id: id(request_id),
                requester: alice(),
                requester_alias: None,
                partner: id("mc-b.example"),
                target: Target::User(bob()),
                body: AcmRequestBody::provision(groups(1)),
            }),
        };
        store.how.armed.store(3, Ordering::SeqCst);
        let (first, second) = futures_util::future::join(
            server.receive(&a, message("0190a000-0000-7000-8000-0000000000aa")),
            server.receive(&a, message("0190a000-0000-7000-8000-0000000000bb")),
        )
        .await;
        assert!(first.is_ok(), "{first:?}");
        assert!(
            matches!(
                second,
                Err(acm_core::ServiceError::Domain(
                    acm_core::DomainError::MessageIdReused { .. }
                ))
            ),
            "{second:?}"
        );
        let streams: std::collections::BTreeSet<_> =
            store.inner.snapshot().iter().map(|e| e.stream_id).collect();
        assert_eq!(streams.len(), 1, "one request stored");
    });
}
