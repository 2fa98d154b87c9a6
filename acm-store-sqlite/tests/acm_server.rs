// TODO(views): rewrite for the AcmStore API
#![cfg(any())]
//! The ACM server on SQLite stores: the outbox, inbox and pending-items projection are kept in
//! the events' transactions and agree with the log (and with the server's in-memory views) at
//! every step; failed sends are counted in the store, so back-off survives a restart.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use acm_core::Event;
use acm_core::OutboxLedger;
use acm_core::PartnerMessage;
use acm_core::testkit::intercept::{Append, Intercepted};
use acm_core::{Actor, Appended, EventStore, ExpectedVersion, NewEvent, StoreError};
use acm_core::{Command, RequestState, decide, evolve};
use acm_core::{Decision, Target};
use acm_core::{McServiceId, MessageId, RequestId, StreamId, SystemId, Version};
use acm_store_memory::fixture::{TwoSystems, alice, bob, carol, id};
use acm_store_sqlite::SqliteStore;
use async_trait::async_trait;
use chrono::Duration;
use futures_util::StreamExt;
use tempfile::TempDir;
use tokio::sync::oneshot;

type Systems = TwoSystems<SqliteStore<Event>>;

/// Appends that can be held after they committed (the caller descheduled between the store's
/// answer and its in-memory update) or made to fail before they are written.
#[derive(Debug, Default)]
struct Hold {
    gate: Mutex<Option<oneshot::Receiver<()>>>,
    fail_next: AtomicBool,
}

type Held = Intercepted<SqliteStore<Event>, Hold>;

#[async_trait]
impl Append<SqliteStore<Event>, Event> for Hold {
    async fn append(
        &self,
        inner: &SqliteStore<Event>,
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

async fn held_systems(dir: &TempDir) -> Arc<TwoSystems<Held>> {
    let systems = TwoSystems::with_stores(
        |c| c,
        |system| {
            let inner = SqliteStore::open_acm(dir.path().join(format!("{system}.db"))).unwrap();
            let ledger: Arc<dyn OutboxLedger> = Arc::new(inner.clone());
            let held = Intercepted {
                inner,
                how: Hold::default(),
            };
            (Arc::new(held), Some(ledger))
        },
    )
    .await
    .unwrap();
    Arc::new(systems)
}

/// The durable outbox is written in the events' transaction, so the relay can claim a
/// message before the server that decided it has folded the events into its cache. The relay
/// then re-reads the stream: the message is sent and its acknowledgement recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_may_claim_a_message_before_the_server_has_folded_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let sys = held_systems(&dir).await;
    let (release, gate) = oneshot::channel();
    *sys.a.store.how.gate.lock().unwrap() = Some(gate);
    let submitting = {
        let sys = sys.clone();
        tokio::spawn(async move { sys.alice_provides(Target::User(bob()), 1).await })
    };
    while sys.a.store.inner.outbox_owed().await.unwrap() == 0 {
        tokio::task::yield_now().await;
    }
    let report = sys.a.server.relay().await.unwrap();
    assert_eq!((report.acknowledged, report.failed), (1, 0));
    release.send(()).unwrap();
    let request = submitting.await.unwrap().unwrap();
    assert_eq!(sys.a.store.inner.outbox_owed().await.unwrap(), 0);
    assert!(matches!(
        sys.a.server.state(request),
        Some(RequestState::Primary(p)) if p.partner_stored
    ));
    assert_eq!(
        sys.b.store.inner.pending_for(&bob()).await.unwrap(),
        vec![request]
    );
}

/// One message's failure does not stop a relay pass: the messages claimed after it are sent,
/// the error is returned at the end, and the failed one goes again once its claim lapses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_mid_pass_does_not_strand_the_rest_of_the_claim() {
    let dir = tempfile::tempdir().unwrap();
    let sys = held_systems(&dir).await;
    let first = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
    let second = sys.alice_provides(Target::User(bob()), 2).await.unwrap();
    // Recording the first acknowledgement fails; the second goes through.
    sys.a.store.how.fail_next.store(true, Ordering::SeqCst);
    assert!(sys.a.server.relay().await.is_err());
    let stored =
        |id| matches!(sys.a.server.state(id), Some(RequestState::Primary(p)) if p.partner_stored);
    assert!(!stored(first));
    assert!(
        stored(second),
        "the second message was sent in the same pass"
    );
    assert_eq!(sys.a.store.inner.outbox_owed().await.unwrap(), 1);
    // After the claim's lease the first is sent again; B deduplicates and acknowledges.
    sys.clock.advance(Duration::minutes(2));
    let report = sys.a.server.relay().await.unwrap();
    assert_eq!(report.acknowledged, 1);
    assert!(stored(first));
    assert_eq!(sys.a.store.inner.outbox_owed().await.unwrap(), 0);
    assert_eq!(
        sys.b.store.inner.pending_for(&bob()).await.unwrap(),
        vec![first, second]
    );
}

/// A store opened without the ACM projection keeps no outbox; relaying from it is refused
/// with a typed error rather than silently sending nothing.
#[test]
fn a_store_without_the_projection_is_no_outbox() {
    futures_executor::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let plain = SqliteStore::<Event>::open(dir.path().join("plain.db")).unwrap();
        let claimed = plain
            .claim(chrono::Utc::now(), Duration::seconds(1), 10)
            .await;
        let Err(StoreError::Backend(e)) = claimed else {
            panic!("expected a backend error, got {claimed:?}")
        };
        assert!(matches!(
            e.downcast_ref::<acm_store_sqlite::BackendError>(),
            Some(acm_store_sqlite::BackendError::NoProjection)
        ));
    });
}

async fn systems(dir: &TempDir) -> Systems {
    TwoSystems::with_stores(
        |c| c,
        |system| {
            let store =
                Arc::new(SqliteStore::open_acm(dir.path().join(format!("{system}.db"))).unwrap());
            let ledger: Arc<dyn OutboxLedger> = store.clone();
            (store, Some(ledger))
        },
    )
    .await
    .unwrap()
}

async fn log(store: &SqliteStore<Event>) -> Vec<acm_core::Envelope<Event>> {
    let mut out = Vec::new();
    let mut events = store.read_all(acm_core::GlobalPosition::START);
    while let Some(e) = events.next().await {
        out.push(e.unwrap());
    }
    out
}

fn message_ids(log: &[acm_core::Envelope<Event>], want: &str) -> Vec<MessageId> {
    log.iter()
        .filter_map(|e| match (&e.payload, want) {
            (Event::Forwarded { message_id, .. }, "forwarded")
            | (Event::Responded { message_id, .. }, "responded") => Some(*message_id),
            _ => None,
        })
        .collect()
}

/// The store's pending table says what the server's in-memory projection says, for `users`.
async fn pending_agrees(
    store: &SqliteStore<Event>,
    server: &acm_core::AcmServer,
    users: &[McServiceId],
) {
    for user in users {
        assert_eq!(
            store.pending_for(user).await.unwrap(),
            server.pending_for(user),
            "pending items of {user}"
        );
    }
}

#[test]
fn the_whole_procedure_keeps_outbox_inbox_and_pending_in_step() {
    futures_executor::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sys = systems(&dir).await;
        let users = [alice(), bob(), carol()];

        // Steps 1–3: the request is owed to B until B acknowledges it.
        let request = sys.alice_provides(Target::User(bob()), 2).await.unwrap();
        assert_eq!(sys.a.store.outbox_owed().await.unwrap(), 1);
        assert_eq!(sys.b.store.outbox_owed().await.unwrap(), 0);

        // Steps 3–4: relayed; B stored it (inbox) and it is pending for bob; A's debt settled.
        sys.settle().await.unwrap();
        let a_log = log(&sys.a.store).await;
        let [forwarded] = message_ids(&a_log, "forwarded")[..] else {
            panic!("one request message")
        };
        assert!(sys.b.store.received(forwarded).await.unwrap().is_some());
        assert_eq!(sys.a.store.outbox_owed().await.unwrap(), 0);
        assert_eq!(
            sys.b.store.pending_for(&bob()).await.unwrap(),
            vec![request]
        );
        pending_agrees(&sys.b.store, &sys.b.server, &users).await;

        // Steps 6–9: bob downloads and accepts; the response is owed to A.
        sys.b.server.log_on(&bob()).await;
        let items = sys.b.server.download_pending(&bob()).await.unwrap();
        assert_eq!(items.items.len(), 1);
        assert_eq!(
            sys.b.store.pending_for(&bob()).await.unwrap(),
            vec![request]
        );
        sys.b
            .server
            .respond(&bob(), None, request, Decision::Accept)
            .await
            .unwrap();
        assert!(sys.b.store.pending_for(&bob()).await.unwrap().is_empty());
        assert_eq!(sys.b.store.outbox_owed().await.unwrap(), 1);

        // Steps 10–13: relayed; A stored the response (inbox), pending for alice.
        sys.settle().await.unwrap();
        let b_log = log(&sys.b.store).await;
        let [responded] = message_ids(&b_log, "responded")[..] else {
            panic!("one response message")
        };
        assert!(sys.a.store.received(responded).await.unwrap().is_some());
        assert_eq!(sys.b.store.outbox_owed().await.unwrap(), 0);
        assert_eq!(
            sys.a.store.pending_for(&alice()).await.unwrap(),
            vec![request]
        );
        pending_agrees(&sys.a.store, &sys.a.server, &users).await;

        // Step 14: delivered to alice; nothing pending anywhere.
        sys.a.server.download_pending(&alice()).await.unwrap();
        for user in &users {
            assert!(sys.a.store.pending_for(user).await.unwrap().is_empty());
            assert!(sys.b.store.pending_for(user).await.unwrap().is_empty());
        }
        assert!(sys.a.store.verify().await.unwrap().is_intact());
        assert!(sys.b.store.verify().await.unwrap().is_intact());
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
        assert_eq!((first.acknowledged, first.failed), (0, 1));
        // Not due again at once, and after a restart still not: the back-off is on disk.
        assert_eq!(sys.a.server.relay().await.unwrap().failed, 0);
        sys.a.restart(&sys.network).await.unwrap();
        assert_eq!(sys.a.server.relay().await.unwrap().failed, 0);

        // Due after the back-off; a second failure counts a second attempt.
        sys.clock.advance(Duration::seconds(1));
        assert_eq!(sys.a.server.relay().await.unwrap().failed, 1);
        sys.clock.advance(Duration::minutes(5));
        let owed = sys
            .a
            .store
            .claim_outbox(sys.clock_now(), Duration::zero(), 10)
            .await
            .unwrap();
        assert_eq!(owed.len(), 1);
        assert_eq!(owed[0].attempts, 2);

        // The link is back: delivered, acknowledged, settled.
        sys.network.set_link(&a, &b, true);
        let report = sys.a.server.relay().await.unwrap();
        assert_eq!((report.acknowledged, report.failed), (1, 0));
        assert_eq!(sys.a.store.outbox_owed().await.unwrap(), 0);
        assert!(
            sys.a
                .store
                .claim_outbox(sys.clock_now(), Duration::zero(), 10)
                .await
                .unwrap()
                .is_empty()
        );
    });
}

trait ClockNow {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc>;
}

impl ClockNow for Systems {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use acm_core::Clock;
        self.clock.now()
    }
}

/// Alice submits a request to bob; returns it with the message A owes B for it, that
/// message's id, and the request as sent.
async fn owed_request(
    sys: &Systems,
) -> (
    RequestId,
    PartnerMessage,
    MessageId,
    Arc<acm_core::AcmRequest>,
) {
    let request = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
    let (_, message) = sys.a.server.state(request).unwrap().outbound().unwrap();
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
        let (request, message, message_id, _) = owed_request(&sys).await;
        let message_id = &message_id;

        let first = sys.b.server.receive(&a, message.clone()).await.unwrap();
        let head = sys.b.store.head().await.unwrap();
        let second = sys.b.server.receive(&a, message.clone()).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(sys.b.store.head().await.unwrap(), head, "stored once");
        let at = sys.b.store.received(*message_id).await.unwrap().unwrap();
        assert_eq!(at.0, 1, "the inbox names the position that stored it");
        assert_eq!(
            sys.b.store.pending_for(&bob()).await.unwrap(),
            vec![request]
        );
    });
}

/// A message id that names one request is refused for another: nothing is stored, and the
/// inbox still names the position that stored the first.
#[test]
fn a_message_id_reused_for_another_request_is_refused_and_the_inbox_is_unchanged() {
    futures_executor::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sys = systems(&dir).await;
        let a: SystemId = id("mc-a.example");
        let (request, message, message_id, first) = owed_request(&sys).await;
        let (message_id, first) = (&message_id, &first);
        sys.b.server.receive(&a, message.clone()).await.unwrap();
        let head = sys.b.store.head().await.unwrap();
        let other: RequestId = id("01900000-0000-7000-8000-00000000c1de");
        let reused = PartnerMessage::Request {
            message_id: *message_id,
            request: Arc::new(acm_core::AcmRequest {
                request_id: other,
                ..(**first).clone()
            }),
        };
        match sys.b.server.receive(&a, reused).await {
            Err(acm_core::ServiceError::Domain(acm_core::DomainError::MessageIdReused {
                message_id: m,
            })) => assert_eq!(m, *message_id),
            got => panic!("expected a refusal, got {got:?}"),
        }
        assert_eq!(sys.b.store.head().await.unwrap(), head, "nothing stored");
        assert_eq!(
            sys.b
                .store
                .received(*message_id)
                .await
                .unwrap()
                .map(|p| p.0),
            Some(1),
            "the inbox names the first request's position"
        );
        let stream: Vec<_> = sys
            .b
            .store
            .read_stream(StreamId(other), Version::NONE)
            .collect()
            .await;
        assert!(stream.is_empty());
        assert!(sys.b.store.pending_for(&bob()).await.unwrap() == vec![request]);
    });
}

/// The store's projections survive closing and reopening the file, and an append after the
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
            request
            // Every handle on both stores is dropped here: the files are closed and unlocked.
        };

        let store = SqliteStore::open_acm(&b_path).unwrap();
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
                    recorded_at: chrono::Utc::now(),
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
        assert_eq!(
            store.outbox_owed().await.unwrap(),
            1,
            "the response is owed to A"
        );
        assert!(store.verify().await.unwrap().is_intact());
    });
}

/// The projection tables as rows of text, for comparing two stores: what the log decides (an
/// outbox row's attempts and due time are the relay's bookkeeping, not the log's).
fn projection_tables(path: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT hex(message_id), hex(stream_id), partner, hex(message), queued_position, settled_position FROM outbox ORDER BY message_id",
        "SELECT hex(message_id), sender, hex(stream_id), position FROM inbox ORDER BY message_id",
        "SELECT mc_service_id, hex(stream_id), since_position FROM pending ORDER BY 1, 2",
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

/// Plays a request to bob's answer, and a second one left pending, on stores from `open`.
async fn play(
    dir: &TempDir,
    open: fn(&std::path::Path) -> SqliteStore<Event>,
    durable_outbox: bool,
) {
    let sys = TwoSystems::with_stores(
        |c| c,
        |system| {
            let store = Arc::new(open(&dir.path().join(format!("{system}.db"))));
            let ledger: Option<Arc<dyn OutboxLedger>> =
                durable_outbox.then(|| store.clone() as Arc<dyn OutboxLedger>);
            (store, ledger)
        },
    )
    .await
    .unwrap();
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
}

/// Appends made while a store was opened without the projection are projected when it is
/// next opened with it: the tables come out exactly as if the projection had run throughout.
#[test]
fn a_store_opened_without_the_projection_is_caught_up_on_the_next_open_acm() {
    futures_executor::block_on(async {
        let (with, without) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        play(&with, |p| SqliteStore::open_acm(p).unwrap(), true).await;
        play(&without, |p| SqliteStore::open(p).unwrap(), false).await;
        for system in ["mc-a.example", "mc-b.example"] {
            let (w, wo) = (
                with.path().join(format!("{system}.db")),
                without.path().join(format!("{system}.db")),
            );
            assert!(projection_tables(&wo).is_empty(), "nothing projected yet");
            drop(SqliteStore::open_acm(&wo).unwrap());
            let caught_up = projection_tables(&wo);
            assert!(!caught_up.is_empty());
            assert_eq!(caught_up, projection_tables(&w), "{system}");
        }
        let b = SqliteStore::open_acm(without.path().join("mc-b.example.db")).unwrap();
        assert_eq!(b.pending_for(&carol()).await.unwrap().len(), 1);
    });
}

/// A store of schema version 1 (before the projection's state was recorded) migrates to the
/// current schema on open, and its projection tables are rebuilt from the log.
#[test]
fn a_version_1_store_migrates_and_rebuilds_its_projection() {
    futures_executor::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        play(&dir, |p| SqliteStore::open_acm(p).unwrap(), true).await;
        let path = dir.path().join("mc-b.example.db");
        let before = projection_tables(&path);
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(
                "DROP TABLE projection_state; DELETE FROM pending; DELETE FROM inbox; \
                 DELETE FROM outbox; PRAGMA user_version = 1;",
            )
            .unwrap();
        let store = SqliteStore::open_acm(&path).unwrap();
        assert!(store.verify().await.unwrap().is_intact());
        drop(store);
        let version: i32 = rusqlite::Connection::open(&path)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, acm_store_sqlite::SCHEMA_VERSION);
        assert_eq!(projection_tables(&path), before);
    });
}
