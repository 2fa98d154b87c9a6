//! The ACM server on SQLite stores: the views (pending items, outbox, hooks, timers, inbox)
//! are kept in the events' transactions and agree with the log at every step; the relay
//! claims from the store's outbox and failed sends are counted there, so back-off survives a
//! restart; a message id is held for good by the store's inbox; and a server opened on
//! reopened stores reads no history, yet works on from their views.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use acm_core::testkit::fixture::{TwoSystems, alice, bob, carol, id};
use acm_core::testkit::intercept::{Append, Intercepted};
use acm_core::views::{self, TimerKind, ViewModel, request_digest};
use acm_core::{
    AcmRequest, AcmServer, AcmStore, Actor, Appended, Claim, Clock, Command, Decision, DomainError,
    Envelope, Event, EventStore, ExpectedVersion, GlobalPosition, McServiceId, MessageId, NewEvent,
    PartnerMessage, PendingItem, Ports, Processing, ReceiptFacts, RequestId, RequestState,
    SequentialIds, ServiceError, StoreError, StreamId, SystemId, Target, Version, decide, evolve,
};
use acm_store_sqlite::{SqliteAcmStore, SqliteStore};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use tempfile::TempDir;
use tokio::sync::oneshot;

type Systems = TwoSystems<SqliteAcmStore>;

/// How appends go in the race tests: held after they committed (the caller descheduled
/// between the store's answer and its cache update) or made to fail before they are
/// written; every read and view query goes straight to the store.
#[derive(Debug, Default)]
struct Hold {
    gate: Mutex<Option<oneshot::Receiver<()>>>,
    fail_next: AtomicBool,
}

/// A SQLite ACM store appending through [`Hold`].
type Held = Intercepted<SqliteAcmStore, Hold>;

#[async_trait]
impl Append<SqliteAcmStore, Event> for Hold {
    async fn append(
        &self,
        inner: &SqliteAcmStore,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent<Event>>,
    ) -> Result<Appended, StoreError> {
        if self.fail_next.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Backend("injected failure".into()));
        }
        let appended = inner.append(stream, expected, events).await;
        let gate = self.gate.lock().unwrap().take();
        if let Some(gate) = gate {
            let _ = gate.await;
        }
        appended
    }
}

fn db(dir: &TempDir, system: &SystemId) -> std::path::PathBuf {
    dir.path().join(format!("{system}.db"))
}

async fn held_systems(dir: &TempDir) -> Arc<TwoSystems<Held>> {
    let systems = TwoSystems::with_stores(
        |c| c,
        |system| {
            Arc::new(Held {
                inner: SqliteAcmStore::open(db(dir, system)).unwrap(),
                how: Hold::default(),
            })
        },
    )
    .await
    .unwrap();
    Arc::new(systems)
}

async fn depth(store: &impl AcmStore) -> u64 {
    store.outbox_status().await.unwrap().depth
}

/// Whether A recorded B's acknowledgement of `id` (step 4b).
async fn partner_stored(server: &AcmServer, id: RequestId) -> bool {
    matches!(server.state(id).await.unwrap(), RequestState::Primary(p) if p.partner_stored)
}

/// Whether `store`'s log of `id`, folded, holds B's acknowledgement (step 4b).
async fn logged_partner_stored(store: &SqliteAcmStore, id: RequestId) -> bool {
    let mut state = RequestState::Empty;
    let mut events = store.read_stream(StreamId(id), Version::NONE);
    while let Some(e) = events.next().await {
        state = evolve(state, &e.unwrap().payload);
    }
    matches!(state, RequestState::Primary(p) if p.partner_stored)
}

/// Alice's submission is held after its append committed; the relay claims the message
/// from A's outbox meanwhile and sends it. Returns the request once the submission is let go.
async fn relay_before_the_submitter_returns(sys: &Arc<TwoSystems<Held>>) -> RequestId {
    let (release, gate) = oneshot::channel();
    *sys.a.store.how.gate.lock().unwrap() = Some(gate);
    let submitting = {
        let sys = sys.clone();
        tokio::spawn(async move { sys.alice_provides(Target::User(bob()), 1).await })
    };
    while depth(&sys.a.store.inner).await == 0 {
        tokio::task::yield_now().await;
    }
    let report = sys.a.server.relay().await.unwrap();
    assert_eq!((report.acknowledged, report.unreachable), (1, 0));
    release.send(()).unwrap();
    submitting.await.unwrap().unwrap()
}

/// The outbox is written in the events' transaction, so the relay can claim a message from
/// the store before the server that decided it has put the new state in its cache. The
/// relay then reads the stream: the message is sent and its acknowledgement recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_may_claim_a_message_before_the_server_has_folded_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let sys = held_systems(&dir).await;
    let request = relay_before_the_submitter_returns(&sys).await;
    assert_eq!(depth(&sys.a.store.inner).await, 0);
    assert!(logged_partner_stored(&sys.a.store.inner, request).await);
    assert_eq!(
        sys.b.store.inner.pending_for(&bob()).await.unwrap(),
        vec![request]
    );
}

/// The same race, seen through the server: its state of the request shows the
/// acknowledgement the relay recorded. The acknowledgement settles the request; the cache
/// keeps the settled version, so the submitter's put of its older state, arriving after, is
/// refused (it was kept, and `state()` answered it, before the cache remembered settled
/// versions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_that_race_the_servers_state_shows_the_acknowledgement() {
    let dir = tempfile::tempdir().unwrap();
    let sys = held_systems(&dir).await;
    let request = relay_before_the_submitter_returns(&sys).await;
    assert!(logged_partner_stored(&sys.a.store.inner, request).await);
    assert!(partner_stored(&sys.a.server, request).await);
}

/// One message's failure does not stop a relay pass: the other message claimed with it is
/// sent and recorded, the error is returned at the end, and the failed one goes again once
/// its claim lapses (B deduplicates it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_mid_pass_does_not_strand_the_rest_of_the_claim() {
    let dir = tempfile::tempdir().unwrap();
    let sys = held_systems(&dir).await;
    let first = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
    let second = sys.alice_provides(Target::User(bob()), 2).await.unwrap();
    // Recording one of the two acknowledgements fails; the other goes through.
    sys.a.store.how.fail_next.store(true, Ordering::SeqCst);
    assert!(sys.a.server.relay().await.is_err());
    let stored = [
        partner_stored(&sys.a.server, first).await,
        partner_stored(&sys.a.server, second).await,
    ];
    assert_eq!(
        stored.iter().filter(|s| **s).count(),
        1,
        "the other message was sent and recorded in the same pass: {stored:?}"
    );
    assert_eq!(depth(&sys.a.store.inner).await, 1);
    // After the claim's lease the failed one is sent again; B deduplicates and acknowledges.
    sys.clock
        .advance(sys.a.server.config().claim_lease + Duration::seconds(1));
    let report = sys.a.server.relay().await.unwrap();
    assert_eq!(report.acknowledged, 1);
    assert!(partner_stored(&sys.a.server, first).await);
    assert!(partner_stored(&sys.a.server, second).await);
    assert_eq!(depth(&sys.a.store.inner).await, 0);
    assert_eq!(
        sys.b.store.inner.pending_for(&bob()).await.unwrap(),
        vec![first, second]
    );
}

/// A store opened without the views is no ACM store: it is another type
/// ([`SqliteStore`] does not implement [`AcmStore`]), so a server cannot be opened on it and
/// there is no runtime "no outbox" error left to check; what is left is which is which.
#[test]
fn a_store_without_the_views_is_not_an_acm_store() {
    let dir = tempfile::tempdir().unwrap();
    let plain = SqliteStore::<Event>::open(dir.path().join("plain.db")).unwrap();
    assert!(!plain.is_projected());
    let acm = SqliteAcmStore::open(dir.path().join("acm.db")).unwrap();
    assert!(acm.as_store().is_projected());
    futures_executor::block_on(async {
        plain.close().await.unwrap();
        acm.close().await.unwrap();
    });
}

async fn systems(dir: &TempDir) -> Systems {
    TwoSystems::with_stores(
        |c| c,
        |system| Arc::new(SqliteAcmStore::open(db(dir, system)).unwrap()),
    )
    .await
    .unwrap()
}

/// Closes both systems' stores (every handle of each, the servers' included).
async fn close(sys: &Systems) {
    for store in [&sys.a.store, &sys.b.store] {
        SqliteAcmStore::clone(store).close().await.unwrap();
    }
}

async fn log(store: &SqliteAcmStore) -> Vec<Envelope<Event>> {
    let mut out = Vec::new();
    let mut events = store.read_all(GlobalPosition::START);
    while let Some(e) = events.next().await {
        out.push(e.unwrap());
    }
    out
}

fn message_ids(log: &[Envelope<Event>], want: &str) -> Vec<MessageId> {
    log.iter()
        .filter_map(|e| match (&e.payload, want) {
            (Event::Forwarded { message_id, .. }, "forwarded")
            | (Event::Responded { message_id, .. }, "responded") => Some(*message_id),
            _ => None,
        })
        .collect()
}

/// The views `log` folds to, by the core's model of them.
fn model_of(log: &[Envelope<Event>]) -> ViewModel {
    let mut states: HashMap<RequestId, RequestState> = HashMap::new();
    let mut model = ViewModel::new();
    for e in log {
        let id = e.stream_id.0;
        let before = states.remove(&id).unwrap_or_default();
        let after = evolve(before.clone(), &e.payload);
        model.apply(id, &views::changes(&before, &after), e.recorded_at);
        states.insert(id, after);
    }
    model
}

/// The store's views say what its log folds to: pending items of `users`, the outbox, the
/// due hooks and timers, the inbox.
async fn views_agree(store: &SqliteAcmStore, users: &[McServiceId]) {
    let model = model_of(&log(store).await);
    for user in users {
        let mut stored = store.pending_for(user).await.unwrap();
        let mut folded = model.pending_for(user);
        stored.sort_unstable();
        folded.sort_unstable();
        assert_eq!(stored, folded, "pending items of {user}");
    }
    let (status, folded) = (store.outbox_status().await.unwrap(), model.outbox_status());
    assert_eq!(
        (status.depth, status.parked, status.oldest_queued_at),
        (folded.depth, folded.parked, folded.oldest_queued_at),
        "outbox"
    );
    let sorted = |mut ids: Vec<RequestId>| {
        ids.sort_unstable();
        ids
    };
    assert_eq!(
        sorted(store.due_hooks(1000).await.unwrap()),
        sorted(model.due_hooks(1000)),
        "hooks"
    );
    for kind in [TimerKind::Expiry, TimerKind::SendDeadline] {
        assert_eq!(
            sorted(
                store
                    .due_timers(kind, DateTime::<Utc>::MAX_UTC, 1000)
                    .await
                    .unwrap()
            ),
            sorted(model.due_timers(kind, DateTime::<Utc>::MAX_UTC, 1000)),
            "{kind:?} timers"
        );
    }
    for (message_id, entry) in model.inbox() {
        assert_eq!(
            store.received(message_id).await.unwrap(),
            Some(entry),
            "inbox"
        );
    }
}

/// Acknowledges every item of a download (step 14); how many deliveries it recorded.
async fn acknowledge(server: &AcmServer, user: &McServiceId, items: &[PendingItem]) -> usize {
    let receipts: Vec<_> = items.iter().map(PendingItem::receipt).collect();
    server.acknowledge_download(user, &receipts).await.unwrap()
}

#[test]
fn the_whole_procedure_keeps_outbox_inbox_and_pending_in_step() {
    futures_executor::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sys = systems(&dir).await;
        let users = [alice(), bob(), carol()];

        // Steps 1–3: the request is owed to B until B acknowledges it.
        let request = sys.alice_provides(Target::User(bob()), 2).await.unwrap();
        assert_eq!(depth(&*sys.a.store).await, 1);
        assert_eq!(depth(&*sys.b.store).await, 0);
        views_agree(&sys.a.store, &users).await;

        // Steps 3–4: relayed; B stored it (inbox) and it is pending for bob; A's debt settled.
        sys.settle().await.unwrap();
        let a_log = log(&sys.a.store).await;
        let [forwarded] = message_ids(&a_log, "forwarded")[..] else {
            panic!("one request message")
        };
        let entry = sys.b.store.received(forwarded).await.unwrap().unwrap();
        assert_eq!(entry.request_id, request);
        assert_eq!(depth(&*sys.a.store).await, 0);
        assert_eq!(
            sys.b.store.pending_for(&bob()).await.unwrap(),
            vec![request]
        );
        views_agree(&sys.a.store, &users).await;
        views_agree(&sys.b.store, &users).await;

        // Steps 6–9: bob downloads (step 8 recorded) and accepts; the response is owed to A.
        let _session = sys.b.server.log_on(&bob()).await.unwrap();
        let items = sys.b.server.download_pending(&bob()).await.unwrap();
        assert_eq!(items.items.len(), 1);
        assert_eq!(
            sys.b.store.pending_for(&bob()).await.unwrap(),
            vec![request],
            "a request stays pending until answered"
        );
        views_agree(&sys.b.store, &users).await;
        sys.b
            .server
            .respond(&bob(), None, request, Decision::Accept)
            .await
            .unwrap();
        assert!(sys.b.store.pending_for(&bob()).await.unwrap().is_empty());
        assert_eq!(depth(&*sys.b.store).await, 1);
        views_agree(&sys.b.store, &users).await;

        // Steps 10–13: relayed; A stored the response (inbox), pending for alice; B's hook
        // ran.
        sys.settle().await.unwrap();
        let b_log = log(&sys.b.store).await;
        let [responded] = message_ids(&b_log, "responded")[..] else {
            panic!("one response message")
        };
        let entry = sys.a.store.received(responded).await.unwrap().unwrap();
        assert_eq!(entry.request_id, request);
        assert_eq!(depth(&*sys.b.store).await, 0);
        assert!(sys.b.store.due_hooks(10).await.unwrap().is_empty());
        assert_eq!(sys.b.hook.calls(), [request]);
        assert_eq!(
            sys.a.store.pending_for(&alice()).await.unwrap(),
            vec![request]
        );
        views_agree(&sys.a.store, &users).await;
        views_agree(&sys.b.store, &users).await;

        // Steps 13b–14: the download alone records nothing for a response; the
        // acknowledgement delivers it. Nothing is pending anywhere.
        let data = sys.a.server.download_pending(&alice()).await.unwrap();
        assert_eq!(
            sys.a.store.pending_for(&alice()).await.unwrap(),
            vec![request],
            "downloaded, not yet acknowledged"
        );
        assert_eq!(acknowledge(&sys.a.server, &alice(), &data.items).await, 1);
        for user in &users {
            assert!(sys.a.store.pending_for(user).await.unwrap().is_empty());
            assert!(sys.b.store.pending_for(user).await.unwrap().is_empty());
        }
        views_agree(&sys.a.store, &users).await;
        views_agree(&sys.b.store, &users).await;
        assert!(sys.a.store.verify().await.unwrap().is_intact());
        assert!(sys.b.store.verify().await.unwrap().is_intact());
        close(&sys).await;
    });
}

#[test]
fn failed_sends_are_counted_in_the_store_and_back_off_survives_a_restart() {
    futures_executor::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut sys = systems(&dir).await;
        let (a, b): (SystemId, SystemId) = (id("mc-a.example"), id("mc-b.example"));
        sys.network.set_link(&a, &b, false);
        sys.alice_provides(Target::User(bob()), 1).await.unwrap();

        let first = sys.a.server.relay().await.unwrap();
        assert_eq!((first.acknowledged, first.unreachable), (0, 1));
        // Not due again at once, and after a restart still not: the back-off is on disk.
        assert_eq!(sys.a.server.relay().await.unwrap().unreachable, 0);
        sys.a.restart(&sys.network).await.unwrap();
        assert_eq!(sys.a.server.relay().await.unwrap().unreachable, 0);

        // Due after the back-off; a second failure counts a second attempt.
        sys.clock.advance(Duration::seconds(1));
        assert_eq!(sys.a.server.relay().await.unwrap().unreachable, 1);
        assert_eq!(sys.a.store.outbox_status().await.unwrap().max_attempts, 2);
        sys.clock.advance(Duration::minutes(5));
        let owed = sys
            .a
            .store
            .claim_outbox(sys.clock.now(), Duration::zero(), 10)
            .await
            .unwrap();
        assert_eq!(owed.len(), 1);
        assert_eq!(owed[0].attempts, 2);

        // The link is back: delivered, acknowledged, settled.
        sys.network.set_link(&a, &b, true);
        let report = sys.a.server.relay().await.unwrap();
        assert_eq!((report.acknowledged, report.unreachable), (1, 0));
        assert_eq!(depth(&*sys.a.store).await, 0);
        assert!(
            sys.a
                .store
                .claim_outbox(sys.clock.now(), Duration::zero(), 10)
                .await
                .unwrap()
                .is_empty()
        );
        close(&sys).await;
    });
}

/// A relay killed mid-send leaves its claim in the file; the next open releases it (the file
/// is locked to one process, so the claim's owner is gone) and the message is due at once,
/// not when the lease would have run out.
#[test]
fn a_claim_left_by_a_process_that_is_gone_is_released_at_the_next_open() {
    futures_executor::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sys = systems(&dir).await;
        sys.alice_provides(Target::User(bob()), 1).await.unwrap();
        let lease = Duration::minutes(10);
        let claimed = sys
            .a
            .store
            .claim_outbox(sys.clock.now(), lease, 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        // Held by the lease while this store is open.
        let again = sys.a.store.claim_outbox(sys.clock.now(), lease, 10).await;
        assert!(again.unwrap().is_empty());

        close(&sys).await;
        let reopened = SqliteAcmStore::open(db(&dir, &sys.a.id)).unwrap();
        let after = reopened
            .claim_outbox(sys.clock.now(), lease, 10)
            .await
            .unwrap();
        assert_eq!(after.len(), 1, "the dead claim still holds the message");
        assert_eq!(after[0].message_id, claimed[0].message_id);
        reopened.close().await.unwrap();
    });
}

/// Alice submits a request to bob; returns it with the message A owes B for it, that
/// message's id, and the request as sent.
async fn owed_request(sys: &Systems) -> (RequestId, PartnerMessage, MessageId, Arc<AcmRequest>) {
    let request = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
    let (_, message) = sys
        .a
        .server
        .state(request)
        .await
        .unwrap()
        .outbound()
        .unwrap();
    let PartnerMessage::Request {
        message_id,
        request: sent,
    } = &message
    else {
        panic!("a request message is owed")
    };
    let (message_id, sent) = (*message_id, sent.clone());
    (request, message, message_id, sent)
}

#[test]
fn a_replayed_partner_message_is_acknowledged_again_and_stored_once() {
    futures_executor::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sys = systems(&dir).await;
        let a: SystemId = id("mc-a.example");
        let (request, message, message_id, sent) = owed_request(&sys).await;

        let first = sys.b.server.receive(&a, message.clone()).await.unwrap();
        let head = sys.b.store.head().await.unwrap();
        let second = sys.b.server.receive(&a, message.clone()).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(sys.b.store.head().await.unwrap(), head, "stored once");
        let entry = sys.b.store.received(message_id).await.unwrap().unwrap();
        assert_eq!(
            (entry.request_id, entry.digest),
            (request, request_digest(&a, &sent)),
            "the inbox names the request and the content that stored it"
        );
        assert_eq!(
            sys.b.store.pending_for(&bob()).await.unwrap(),
            vec![request]
        );
        close(&sys).await;
    });
}

/// A message id that names one request is refused for another: by the server (its inbox
/// check), and by the store itself when an append claims it (the inbox holds a message id
/// for good): nothing is stored, and the inbox still names the first request.
#[test]
fn a_message_id_reused_for_another_request_is_refused_and_the_inbox_is_unchanged() {
    futures_executor::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sys = systems(&dir).await;
        let a: SystemId = id("mc-a.example");
        let (request, message, message_id, first) = owed_request(&sys).await;
        sys.b.server.receive(&a, message.clone()).await.unwrap();
        let head = sys.b.store.head().await.unwrap();
        let other: RequestId = id("01900000-0000-7000-8000-00000000c1de");
        let reused = Arc::new(AcmRequest {
            request_id: other,
            ..(*first).clone()
        });
        let message = PartnerMessage::Request {
            message_id,
            request: reused.clone(),
        };
        match sys.b.server.receive(&a, message).await {
            Err(ServiceError::Domain(DomainError::MessageIdReused { message_id: m })) => {
                assert_eq!(m, message_id);
            }
            got => panic!("expected a refusal, got {got:?}"),
        }

        // Past the server's check, the store's inbox refuses the append on its own.
        let receive = Command::Receive {
            from: a.clone(),
            message_id,
            request: reused,
            facts: ReceiptFacts {
                local: sys.b.id.clone(),
                interconnected: true,
                home_domains: vec![a.clone()],
                recipients: Ok(Arc::from([bob()])),
                processing: Processing::Manual,
                group_known: true,
                unknown_users: Vec::new(),
                limits: sys.b.server.config().limits,
            },
            response_message_id: MessageId::from_uuid(uuid::Uuid::now_v7()).unwrap(),
            at: sys.clock.now(),
        };
        let actor = Actor::System(a.clone());
        match acm_core::testkit::execute(&sys.b.server, other, &receive, &actor, None).await {
            Err(ServiceError::Store(StoreError::Taken(Claim::Message(m)))) => {
                assert_eq!(m, message_id);
            }
            got => panic!("expected the store to refuse the claim, got {got:?}"),
        }

        assert_eq!(sys.b.store.head().await.unwrap(), head, "nothing stored");
        let entry = sys.b.store.received(message_id).await.unwrap().unwrap();
        assert_eq!(
            entry.request_id, request,
            "the inbox names the first request"
        );
        let stream: Vec<_> = sys
            .b
            .store
            .read_stream(StreamId(other), Version::NONE)
            .collect()
            .await;
        assert!(stream.is_empty());
        assert_eq!(
            sys.b.store.pending_for(&bob()).await.unwrap(),
            vec![request]
        );
        close(&sys).await;
    });
}

/// The store's views survive closing and reopening the file, and an append after the
/// reopen (the projection's cache cold) updates them from the stream's history.
#[test]
fn projections_survive_a_reopen_and_follow_later_appends() {
    futures_executor::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let b_path = dir.path().join("mc-b.example.db");
        let request: RequestId = {
            let sys = systems(&dir).await;
            let request = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
            sys.settle().await.unwrap();
            close(&sys).await;
            request
        };

        let store = SqliteAcmStore::open(&b_path).unwrap();
        assert_eq!(store.pending_for(&bob()).await.unwrap(), vec![request]);
        assert!(store.verify().await.unwrap().is_intact());

        // Deliver and respond by appending decided events directly, as a server would.
        let stream = StreamId(request);
        let mut state = RequestState::Empty;
        let mut version = Version::NONE;
        let mut events = store.read_stream(stream, Version::NONE);
        while let Some(e) = events.next().await {
            let e = e.unwrap();
            state = evolve(state, &e.payload);
            version = e.version;
        }
        drop(events);
        let commands = [
            Command::Deliver { to: bob() },
            Command::Respond {
                by: bob(),
                alias: None,
                decision: Decision::Accept,
                message_id: MessageId::from_uuid(uuid::Uuid::now_v7()).unwrap(),
            },
        ];
        for command in &commands {
            let decided = decide(&state, command).unwrap();
            let batch = decided
                .iter()
                .map(|payload| NewEvent {
                    event_id: acm_core::EventId::from_uuid(uuid::Uuid::now_v7()).unwrap(),
                    correlation_id: request,
                    causation_id: None,
                    actor: Actor::User(bob()),
                    recorded_at: Utc::now(),
                    payload: payload.clone(),
                })
                .collect();
            let appended = store
                .append(stream, ExpectedVersion::Exact(version), batch)
                .await
                .unwrap();
            version = appended.last_version();
            state = decided.iter().fold(state, evolve);
        }
        assert!(store.pending_for(&bob()).await.unwrap().is_empty());
        assert_eq!(depth(&store).await, 1, "the response is owed to A");
        assert_eq!(store.due_hooks(10).await.unwrap(), [request]);
        views_agree(&store, &[bob()]).await;
        assert!(store.verify().await.unwrap().is_intact());
        store.close().await.unwrap();
    });
}

/// The view tables as rows of text, for comparing two closed stores: what the log decides
/// (an outbox row's attempts, retry and claim are the relay's bookkeeping, not the log's).
fn view_tables(path: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT hex(message_id), hex(request_id), partner, queued_at FROM outbox ORDER BY message_id",
        "SELECT hex(message_id), hex(request_id), hex(digest) FROM inbox ORDER BY message_id",
        "SELECT mc_service_id, hex(request_id) FROM pending ORDER BY 1, 2",
        "SELECT hex(request_id) FROM hooks ORDER BY 1",
        "SELECT hex(request_id), kind, since FROM timers ORDER BY 1",
        "SELECT requester, key, hex(request_id), hex(digest) FROM submissions ORDER BY 1, 2",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        out.extend(rows.map(|r| r.unwrap().join(" ")));
    }
    out
}

/// Plays a request to bob's answer, and a second one left pending, on SQLite ACM stores in
/// `dir`, and closes them.
async fn play(dir: &TempDir) {
    let sys = systems(dir).await;
    let first = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
    sys.alice_provides(Target::User(carol()), 2).await.unwrap();
    sys.settle().await.unwrap();
    sys.b.server.download_pending(&bob()).await.unwrap();
    sys.b
        .server
        .respond(&bob(), None, first, Decision::Accept)
        .await
        .unwrap();
    sys.settle().await.unwrap();
    close(&sys).await;
}

/// Appends made while a store was opened without the views are projected when it is next
/// opened with them: the tables come out exactly as if the views had been kept throughout.
/// (A server needs an ACM store, so the log played on one is copied, event by event, into
/// a store opened without the views.)
#[test]
fn a_store_opened_without_the_views_is_caught_up_on_the_next_acm_open() {
    futures_executor::block_on(async {
        let (with, without) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        play(&with).await;
        for system in ["mc-a.example", "mc-b.example"] {
            let (w, wo) = (
                with.path().join(format!("{system}.db")),
                without.path().join(format!("{system}.db")),
            );
            let source = SqliteAcmStore::open(&w).unwrap();
            let plain = SqliteStore::<Event>::open(&wo).unwrap();
            for e in log(&source).await {
                let expected = if e.version.0 == 1 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(Version(e.version.0 - 1))
                };
                let event = NewEvent {
                    event_id: e.event_id,
                    correlation_id: e.correlation_id,
                    causation_id: e.causation_id,
                    actor: e.actor,
                    recorded_at: e.recorded_at,
                    payload: e.payload,
                };
                let appended = plain
                    .append(e.stream_id, expected, vec![event])
                    .await
                    .unwrap();
                assert_eq!(appended.first_position, e.position);
            }
            source.close().await.unwrap();
            plain.close().await.unwrap();
            assert!(view_tables(&wo).is_empty(), "nothing projected yet");
            SqliteAcmStore::open(&wo).unwrap().close().await.unwrap();
            let caught_up = view_tables(&wo);
            assert!(!caught_up.is_empty());
            assert_eq!(caught_up, view_tables(&w), "{system}");
        }
        let b = SqliteAcmStore::open(without.path().join("mc-b.example.db")).unwrap();
        assert_eq!(b.pending_for(&carol()).await.unwrap().len(), 1);
        b.close().await.unwrap();
    });
}

/// A store of schema version 1 (the outbox, inbox and pending tables of then, before the
/// projection's state was recorded) migrates to the current schema on open, and its view
/// tables are rebuilt from the log.
#[test]
fn a_version_1_store_migrates_and_rebuilds_its_views() {
    futures_executor::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        play(&dir).await;
        let path = dir.path().join("mc-b.example.db");
        let before = view_tables(&path);
        assert!(!before.is_empty());
        let v1 = include_str!("../src/schema/0001_events.sql");
        let start = v1.find("CREATE TABLE outbox").unwrap();
        let end = v1.find("PRAGMA application_id").unwrap();
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(&format!(
                "DROP TABLE projection_state; DROP TABLE pending; DROP TABLE inbox; \
                 DROP TABLE outbox; DROP TABLE hooks; DROP TABLE timers; \
                 DROP TABLE submissions; {} PRAGMA user_version = 1;",
                &v1[start..end]
            ))
            .unwrap();
        let store = SqliteAcmStore::open(&path).unwrap();
        assert!(store.verify().await.unwrap().is_intact());
        store.close().await.unwrap();
        let version: i32 = rusqlite::Connection::open(&path)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, acm_store_sqlite::SCHEMA_VERSION);
        assert_eq!(view_tables(&path), before);
    });
}

/// A server on `store`, in place of `system`'s (same directory, hook, clock and network;
/// ids that cannot collide with the first server's).
async fn reopened(
    sys: &Systems,
    system: &acm_core::testkit::fixture::System<SqliteAcmStore>,
    store: Arc<SqliteAcmStore>,
    seed: u16,
) -> Arc<AcmServer> {
    let ports = Ports::builder(
        system.directory.clone(),
        sys.network.transport(system.id.clone()),
    )
    .hook(system.hook.clone())
    .clock(sys.clock.clone())
    .ids(Arc::new(SequentialIds::new(seed)))
    .build();
    let server = AcmServer::open(system.server.config().clone(), ports, store)
        .await
        .unwrap();
    let server = Arc::new(server);
    sys.network.register(system.id.clone(), &server);
    server
}

/// Both stores closed and reopened (a restart of both processes) and new servers opened on
/// them: opening reads no history, yet bob's pending list, A's outbox and the send of the
/// response work from the stores' views, and the procedure finishes at A.
#[test]
fn after_both_stores_restart_the_servers_work_on_from_the_views() {
    futures_executor::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sys = systems(&dir).await;
        let (a, b) = (sys.a.id.clone(), sys.b.id.clone());
        // One request relayed and stored at B, one owed by A (B out of reach).
        let request = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
        sys.settle().await.unwrap();
        assert!(partner_stored(&sys.a.server, request).await);
        sys.network.set_link(&a, &b, false);
        let owed = sys.alice_provides(Target::User(carol()), 2).await.unwrap();
        assert_eq!(sys.a.server.relay().await.unwrap().unreachable, 1);
        let heads = (
            sys.a.store.head().await.unwrap(),
            sys.b.store.head().await.unwrap(),
        );
        close(&sys).await;

        // The restart: new stores on the files, new servers on the stores.
        let store_a = Arc::new(SqliteAcmStore::open(db(&dir, &a)).unwrap());
        let store_b = Arc::new(SqliteAcmStore::open(db(&dir, &b)).unwrap());
        let server_a = reopened(&sys, &sys.a, store_a.clone(), 0xA1).await;
        let server_b = reopened(&sys, &sys.b, store_b.clone(), 0xB1).await;
        assert_eq!(
            (server_a.cached(), server_b.cached()),
            (0, 0),
            "nothing read"
        );
        assert_eq!(
            (store_a.head().await.unwrap(), store_b.head().await.unwrap()),
            heads
        );
        assert_eq!(
            (store_a.stats().transactions, store_b.stats().transactions),
            (0, 0),
            "nothing written by opening"
        );

        // Bob's pending list and A's outbox, from the views.
        assert_eq!(server_b.pending_for(&bob()).await.unwrap(), [request]);
        assert!(server_b.pending_for(&carol()).await.unwrap().is_empty());
        let outbox = server_a.outbox_status().await.unwrap();
        assert_eq!((outbox.depth, outbox.max_attempts), (1, 1));
        let session = server_b.log_on(&bob()).await.unwrap();
        assert_eq!(session.try_next().map(|n| n.mc_service_id), Some(bob()));

        // Bob downloads and answers; B's relay sends the response from its outbox.
        let data = server_b.download_pending(&bob()).await.unwrap();
        assert!(matches!(
            &data.items[..],
            [PendingItem::Request { request: r, .. }] if r.request_id == request
        ));
        server_b
            .respond(&bob(), None, request, Decision::Accept)
            .await
            .unwrap();
        assert_eq!(depth(&*store_b).await, 1);
        let report = server_b.tick().await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!((report.relay.acknowledged, report.hooks), (1, 1));
        assert_eq!(depth(&*store_b).await, 0);
        assert_eq!(sys.b.hook.calls(), [request]);

        // A has the response; alice downloads and acknowledges it (step 14).
        assert_eq!(server_a.pending_for(&alice()).await.unwrap(), [request]);
        let data = server_a.download_pending(&alice()).await.unwrap();
        match &data.items[..] {
            [
                PendingItem::Response {
                    request: r,
                    response,
                },
            ] => {
                assert_eq!(r.request_id, request);
                assert!(response.outcome.is_accepted());
            }
            other => panic!("expected the response, got {other:?}"),
        }
        assert_eq!(acknowledge(&server_a, &alice(), &data.items).await, 1);
        assert!(server_a.pending_for(&alice()).await.unwrap().is_empty());
        assert!(matches!(
            server_a.state(request).await.unwrap(),
            RequestState::Primary(p) if !p.response_pending()
        ));

        // The message A owed since before the restart goes once B is reachable.
        sys.network.set_link(&a, &b, true);
        sys.clock.advance(Duration::minutes(5));
        assert_eq!(server_a.relay().await.unwrap().acknowledged, 1);
        assert_eq!(depth(&*store_a).await, 0);
        assert_eq!(server_b.pending_for(&carol()).await.unwrap(), [owed]);
        for store in [&store_a, &store_b] {
            views_agree(store, &[alice(), bob(), carol()]).await;
            assert!(store.verify().await.unwrap().is_intact());
        }
        drop(session);
        for store in [store_a, store_b] {
            SqliteAcmStore::clone(&store).close().await.unwrap();
        }
    });
}

/// The projection's cache of request states is bounded (`SqliteOptions::projection_cache`):
/// with room for one state, or none, every event of a request not kept rebuilds it from its
/// stream, and the views come out as with the default bound.
#[test]
fn a_small_projection_cache_changes_nothing_but_speed() {
    futures_executor::block_on(async {
        for capacity in [0, 1] {
            let dir = tempfile::tempdir().unwrap();
            let sys = TwoSystems::with_stores(
                |c| c,
                |system| {
                    let options = acm_store_sqlite::SqliteOptions {
                        projection_cache: capacity,
                        ..acm_store_sqlite::SqliteOptions::default()
                    };
                    Arc::new(SqliteAcmStore::open_with(db(&dir, system), options).unwrap())
                },
            )
            .await
            .unwrap();
            let first = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
            let second = sys.alice_provides(Target::User(carol()), 2).await.unwrap();
            sys.settle().await.unwrap();
            sys.bob_answers(first, Decision::Accept).await.unwrap();
            let users = [alice(), bob(), carol()];
            views_agree(&sys.a.store, &users).await;
            views_agree(&sys.b.store, &users).await;
            assert_eq!(sys.a.server.pending_for(&alice()).await.unwrap(), [first]);
            assert_eq!(sys.b.server.pending_for(&carol()).await.unwrap(), [second]);
            assert_eq!(sys.b.hook.calls(), [first], "capacity {capacity}");
            close(&sys).await;
        }
    });
}

/// A group membership update on SQLite: B's per-user results are kept in its `Verified`
/// event and A's in `ResponseReceived`, so servers restarted with empty caches (every state
/// read back from the files) answer and report them, urgency and all.
#[test]
fn a_membership_updates_results_survive_restarts_on_sqlite() {
    use acm_core::{
        AcmRequestKind, GroupId, MembershipOperation, Outcome, Submission, Urgency, UserRefusal,
        UserResult,
    };
    futures_executor::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut sys = systems(&dir).await;
        let b_id = sys.b.id.clone();
        let group: GroupId = id("sip:tac-1@mc-a.example");
        sys.a
            .directory
            .grant(alice(), b_id.clone(), AcmRequestKind::GroupMembershipUpdate);
        sys.b.directory.add_interconnection_group(group.clone());
        let stranger: McServiceId = id("sip:zoe@mc-b.example");
        let request = sys
            .a
            .server
            .submit(
                &alice(),
                Submission::membership(
                    b_id,
                    Target::User(bob()),
                    group,
                    [carol(), stranger.clone()],
                    MembershipOperation::Delete,
                    Some(Urgency::Urgent),
                ),
            )
            .await
            .unwrap();
        sys.settle().await.unwrap();

        sys.b.restart(&sys.network).await.unwrap();
        assert_eq!(sys.b.server.cached(), 0);
        let download = sys.b.server.download_pending(&bob()).await.unwrap();
        assert!(
            matches!(&download.items[..], [PendingItem::Request { request: r, .. }]
            if r.request_id == request && r.body.urgency() == Urgency::Urgent)
        );
        sys.b
            .server
            .respond(&bob(), None, request, Decision::Accept)
            .await
            .unwrap();
        sys.settle().await.unwrap();

        sys.a.restart(&sys.network).await.unwrap();
        let response = sys
            .a
            .response(request)
            .await
            .unwrap()
            .expect("a response at A");
        assert_eq!(response.outcome, Outcome::Accepted);
        assert_eq!(
            &response.user_results[..],
            [
                UserResult::Applied { user: carol() },
                UserResult::Refused {
                    user: stranger,
                    reason: UserRefusal::UnknownUser
                }
            ]
        );
        assert!(sys.a.store.verify().await.unwrap().is_intact());
        assert!(sys.b.store.verify().await.unwrap().is_intact());
        close(&sys).await;
    });
}
