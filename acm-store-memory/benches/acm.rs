//! Benchmarks of acm on the memory store, one thread, with divan.
//!
//! Run: `cargo bench -p acm-store-memory --bench acm` (add a filter such as `b_service` to run
//! one group).
//!
//! How to read the figures: the time is per iteration, and the `item/s` line under it counts
//! what the benchmark's name says (`…_commands`: commands; `c_rebuild`: events of the log;
//! `d_exchange`: exchanges or events, as the argument says). The `alloc`/`dealloc`/`grow` rows
//! are per iteration: allocations per command are those of `b_service::one_command`, or those
//! of `b_service::partner_5_commands` divided by 5.
//!
//! - `a_lifecycle`: `decide` + `evolve` alone over a whole partner-side lifecycle (5 commands)
//!   and a whole primary-side lifecycle (4 commands);
//! - `b_service`: [`AcmServer::execute`] on a [`MemoryAcmStore`] for the same partner lifecycle,
//!   on a fresh request per iteration, whole and one command kind at a time. The server and
//!   its store keep every request, as a running server does, so the figures include the
//!   store's growth (its log, its indexes, first touches of new memory). In `one_command` the
//!   earlier steps of 200 requests run before each timed sample, so each timed command finds
//!   its request's state out of the cache: those times add up to more than
//!   `partner_5_commands`, where one request's commands run back to back;
//! - `c_rebuild`: [`replay`] of a log of 100 002 events written by 16 667 such lifecycles, and
//!   [`AcmServer::open`] on a memory store holding the same log;
//! - `d_exchange`: the 14-step procedure between two in-process servers (`TwoSystems`).
//!
//! Every benchmark runs under divan's [`AllocProfiler`]; its thread-local tally costs less
//! than the run-to-run noise here.

use std::fmt;
use std::sync::{Arc, LazyLock};

use acm_core::Command;
use acm_core::RequestId;
use acm_core::audit::replay;
use acm_core::testkit::workload::{Step, partner_steps, ports_b, run_step, system_b};
use acm_core::{
    AcmRequest, AcmRequestBody, AcmResponse, Decision, Limits, Outcome, Responder, Target,
};
use acm_core::{
    AcmServer, Event, PendingItem, RequestState, ServerConfig, Submission, decide, evolve,
};
use acm_core::{Envelope, EventStore};
use acm_core::{IdSource, Ids, SequentialIds};
use acm_store_memory::MemoryAcmStore;
use acm_store_memory::fixture::{TwoSystems, alice, bob, groups, id, provision};
use chrono::{DateTime, Utc};
use divan::counter::ItemsCount;
use divan::{AllocProfiler, Bencher, black_box};
use futures_executor::block_on;

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::main();
}

// ------------------------------------------------------------------------------- fixtures

/// Events one partner lifecycle records: stored, verified, delivered, responded,
/// response forwarded, acceptance applied.
const PARTNER_EVENTS: usize = 6;

/// Size of the log that `c_rebuild` replays.
const REPLAY_EVENTS: usize = 100_000;

fn noon() -> DateTime<Utc> {
    id("2026-01-01T12:00:00Z")
}

/// A provision of two groups from alice in A to bob in B; cloned with a fresh request id, so
/// that every request shares the identifiers' `Arc`s as requests decoded once would.
static TEMPLATE: LazyLock<AcmRequest> = LazyLock::new(|| AcmRequest {
    request_id: id("0190a000-0000-7000-8000-0000000000aa"),
    requester: alice(),
    requester_alias: None,
    partner: system_b(),
    target: Target::User(bob()),
    body: AcmRequestBody::provision(groups(2)),
});

fn request(request_id: RequestId) -> AcmRequest {
    AcmRequest {
        request_id,
        ..TEMPLATE.clone()
    }
}

/// The primary side of one accepted request, as A's server runs it: Submit →
/// `RecordPartnerAck` → `ReceiveResponse` → `DeliverResponse`.
fn primary_commands(ids: &dyn IdSource) -> [Command; 4] {
    let forward = ids.message_id().expect("sequential ids");
    [
        Command::Submit {
            request: Arc::new(request(ids.request_id().expect("sequential ids"))),
            authorization: Ok(()),
            limits: Limits::default(),
            message_id: forward,
            at: noon(),
            idempotency_key: None,
        },
        Command::RecordPartnerAck {
            message_id: forward,
        },
        Command::ReceiveResponse {
            from: system_b(),
            message_id: ids.message_id().expect("sequential ids"),
            response: AcmResponse {
                responder: Responder::User {
                    id: bob(),
                    alias: None,
                },
                outcome: Outcome::Accepted,
                user_results: Arc::default(),
            },
        },
        Command::DeliverResponse {
            to: alice(),
            response: true,
            undeliverable: false,
            withdrawal_outcome: false,
        },
    ]
}

fn open_b(store: Arc<MemoryAcmStore>) -> AcmServer {
    block_on(AcmServer::open(
        ServerConfig::new(system_b()),
        ports_b(),
        store,
    ))
    .expect("opening a server on a memory store")
}

/// Runs `steps` through the service, as the server's own entry points would.
async fn execute_all(server: &AcmServer, request_id: RequestId, steps: &[Step]) {
    for step in steps {
        run_step(server, request_id, step).await;
    }
}

/// Pure lifecycle: decide, then fold the decided events, for each command.
fn decide_evolve(commands: &[Command]) -> RequestState {
    commands.iter().fold(RequestState::Empty, |state, command| {
        let events = decide(&state, command).expect("every command is accepted");
        events.iter().fold(state, evolve)
    })
}

// ----------------------------------------------------------- (a) decide + evolve alone

/// `decide` + `evolve` over whole lifecycles, without store or service. Each iteration drops
/// its final state, so that the allocator recycles the same few blocks: holding thousands of
/// states until the end of a sample (divan's default for returned values) makes the figure
/// swing by half with the heap's layout.
mod a_lifecycle {
    use super::{
        Bencher, Command, ItemsCount, RequestState, SequentialIds, black_box, decide_evolve,
        partner_steps, primary_commands,
    };

    /// Receive, Deliver, Respond, `RecordResponseAck`, `RecordAcceptanceApplied`.
    #[divan::bench(sample_size = 1000)]
    fn partner_5_commands(bencher: Bencher) {
        let commands: Vec<Command> = partner_steps(&SequentialIds::new(1))
            .1
            .into_iter()
            .map(|s| s.command)
            .collect();
        match decide_evolve(&commands) {
            RequestState::Partner(p) => assert!(p.acceptance_applied && p.response_forwarded),
            other => panic!("the partner lifecycle did not complete: {other:?}"),
        }
        bencher
            .counter(ItemsCount::new(commands.len()))
            .bench_local(|| drop(black_box(decide_evolve(black_box(&commands)))));
    }

    /// Submit, `RecordPartnerAck`, `ReceiveResponse`, `DeliverResponse`.
    #[divan::bench(sample_size = 1000)]
    fn primary_4_commands(bencher: Bencher) {
        let commands = primary_commands(&SequentialIds::new(1));
        match decide_evolve(&commands) {
            RequestState::Primary(p) => assert!(p.response_delivered),
            other => panic!("the primary lifecycle did not complete: {other:?}"),
        }
        bencher
            .counter(ItemsCount::new(commands.len()))
            .bench_local(|| drop(black_box(decide_evolve(black_box(&commands)))));
    }
}

// ------------------------------------------------ (b) commands through the service

/// [`AcmServer::execute`] on a [`MemoryAcmStore`](super::MemoryAcmStore): state from the cache,
/// decide, append with the expected version, evolve, projections.
mod b_service {
    use super::{
        Arc, Bencher, EventStore, ItemsCount, MemoryAcmStore, PARTNER_EVENTS, RequestState,
        SequentialIds, block_on, execute_all, open_b, partner_steps,
    };

    /// The five-command partner lifecycle on a fresh request id per iteration; the server
    /// and its store keep every earlier request, as a running server does.
    #[divan::bench(sample_count = 100, sample_size = 200)]
    fn partner_5_commands(bencher: Bencher) {
        let store = Arc::new(MemoryAcmStore::new());
        let server = open_b(store.clone());
        let ids = SequentialIds::new(0xC);

        // Check once that the lifecycle completes and records what it should.
        let (request_id, steps) = partner_steps(&ids);
        block_on(execute_all(&server, request_id, &steps));
        match block_on(server.state(request_id)).expect("state") {
            RequestState::Partner(p) => assert!(p.acceptance_applied),
            other => panic!("the partner lifecycle did not complete: {other:?}"),
        }
        let head = block_on(store.head()).expect("head of a memory store");
        assert_eq!(head.0, PARTNER_EVENTS as u64);
        let outbox = block_on(server.outbox_status()).expect("outbox status");
        assert_eq!(outbox.depth, 0);

        bencher
            .counter(ItemsCount::new(5usize))
            .with_inputs(|| partner_steps(&ids))
            .bench_local_refs(|(request_id, steps)| {
                block_on(execute_all(&server, *request_id, &steps[..]));
            });
    }

    /// One command kind at a time: each iteration is one command, so divan's allocation
    /// counts are per command. The earlier steps of each request run untimed, when divan
    /// makes the inputs.
    #[divan::bench(
        args = ["1_receive", "2_deliver", "3_respond", "4_record_response_ack", "5_record_acceptance_applied"],
        sample_count = 100,
        sample_size = 200,
    )]
    fn one_command(bencher: Bencher, step: &str) {
        let index = usize::from(step.as_bytes()[0] - b'1');
        let server = open_b(Arc::new(MemoryAcmStore::new()));
        let ids = SequentialIds::new(0xC);
        bencher
            .counter(ItemsCount::new(1usize))
            .with_inputs(|| {
                let (request_id, steps) = partner_steps(&ids);
                block_on(execute_all(&server, request_id, &steps[..index]));
                (request_id, steps)
            })
            .bench_local_refs(|(request_id, steps)| {
                block_on(execute_all(&server, *request_id, &steps[index..=index]));
            });
    }
}

// ------------------------------------------------------- (c) rebuilding from a log

/// A store holding [`REPLAY_EVENTS`] events or a few more, written by whole partner
/// lifecycles through the service, and a copy of its log.
struct Log {
    store: Arc<MemoryAcmStore>,
    envelopes: Vec<Envelope<Event>>,
}

static LOG: LazyLock<Log> = LazyLock::new(|| {
    let store = Arc::new(MemoryAcmStore::new());
    let server = open_b(store.clone());
    let ids = SequentialIds::new(0xD);
    block_on(async {
        for _ in 0..REPLAY_EVENTS.div_ceil(PARTNER_EVENTS) {
            let (request_id, steps) = partner_steps(&ids);
            execute_all(&server, request_id, &steps).await;
        }
    });
    let envelopes = store.snapshot();
    Log { store, envelopes }
});

/// Rebuilding every request's state from a log of about 100k events (16 667 requests).
mod c_rebuild {
    use super::{
        AcmServer, Bencher, ItemsCount, LOG, Log, PARTNER_EVENTS, REPLAY_EVENTS, ServerConfig,
        block_on, ports_b, replay, system_b,
    };

    /// `audit::replay` over an owned log (the clone is made outside the timing).
    #[divan::bench(sample_count = 30, sample_size = 1)]
    fn replay_owned(bencher: Bencher) {
        let log = &LOG.envelopes;
        let states = replay(log.clone()).expect("the log replays");
        assert_eq!(states.len(), REPLAY_EVENTS.div_ceil(PARTNER_EVENTS));
        bencher
            .counter(ItemsCount::new(log.len()))
            .with_inputs(|| log.clone())
            .bench_local_values(|log| replay(log).expect("the log replays"));
    }

    /// `audit::replay` over envelopes cloned from the `Vec` as they are read.
    #[divan::bench(sample_count = 30, sample_size = 1)]
    fn replay_cloned(bencher: Bencher) {
        let log = &LOG.envelopes;
        bencher
            .counter(ItemsCount::new(log.len()))
            .bench_local(|| replay(log.iter().cloned()).expect("the log replays"));
    }

    /// `AcmServer::open` on the memory store holding the log: paged `read_all`, `evolve`,
    /// projections.
    #[divan::bench(sample_count = 30, sample_size = 1)]
    fn server_open(bencher: Bencher) {
        let Log {
            store,
            envelopes: log,
        } = &*LOG;
        let config = ServerConfig::new(system_b());
        let ports = ports_b();
        bencher.counter(ItemsCount::new(log.len())).bench_local(|| {
            block_on(AcmServer::open(
                config.clone(),
                ports.clone(),
                store.clone(),
            ))
            .expect("opening a server on a memory store")
        });
    }
}

// --------------------------------------------- (d) the whole procedure, A and B

/// What a figure of [`d_exchange::fourteen_steps`] counts.
#[derive(Debug, Clone, Copy)]
enum Per {
    Exchange,
    Event,
}

impl fmt::Display for Per {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Exchange => "exchanges",
            Self::Event => "events",
        })
    }
}

/// One accepted request from alice in A to bob in B, steps 1–14, both users logged off at
/// the start and at the end.
async fn exchange(sys: &TwoSystems, submission: Submission) {
    let (a, b) = (&sys.a.server, &sys.b.server);
    let (alice, bob) = (alice(), bob());
    // Steps 1–3, and step 5: alice logs off.
    let alice_session = a.log_on(&alice).await.expect("logged on");
    let request = a.submit(&alice, submission).await.expect("submitted");
    drop(alice_session);
    // Steps 3–4b.
    assert_eq!(a.relay().await.expect("relayed").acknowledged, 1);
    // Steps 6–8.
    let bob_session = b.log_on(&bob).await.expect("logged on");
    assert!(bob_session.try_next().is_some(), "bob is notified");
    let data = b.download_pending(&bob).await.expect("downloaded");
    assert_eq!(data.items.len(), 1);
    // Step 9.
    b.respond(&bob, None, request, Decision::Accept)
        .await
        .expect("responded");
    drop(bob_session);
    // Steps 10–11, then the acceptance hook at B.
    assert_eq!(b.relay().await.expect("relayed").acknowledged, 1);
    assert_eq!(b.apply_acceptances().await.expect("hook ran"), 1);
    // Steps 12–14.
    let alice_session = a.log_on(&alice).await.expect("logged on");
    assert!(alice_session.try_next().is_some(), "alice is notified");
    let data = a.download_pending(&alice).await.expect("downloaded");
    assert_eq!(data.items.len(), 1);
    let receipts: Vec<_> = data.items.iter().map(PendingItem::receipt).collect();
    let recorded = a.acknowledge_download(&alice, &receipts).await;
    assert_eq!(recorded.expect("acknowledged"), 1);
    drop(alice_session);
}

/// Full exchanges between two in-process servers ([`TwoSystems`]).
mod d_exchange {
    use super::{Bencher, ItemsCount, Per, Target, TwoSystems, block_on, bob, exchange, provision};

    /// Submit, relay, log on, download, respond, relay, hook, log on, download: 6 events
    /// at A and 6 at B per exchange.
    #[divan::bench(args = [Per::Exchange, Per::Event], sample_count = 100, sample_size = 20)]
    fn fourteen_steps(bencher: Bencher, per: Per) {
        let sys = block_on(TwoSystems::new()).expect("two systems");
        block_on(exchange(&sys, provision(Target::User(bob()), 2)));
        let events = sys.a.store.len() + sys.b.store.len();
        assert_eq!(events, 12, "one exchange records 6 events at A and 6 at B");
        let items = match per {
            Per::Exchange => 1,
            Per::Event => events,
        };
        bencher
            .counter(ItemsCount::new(items))
            .with_inputs(|| provision(Target::User(bob()), 2))
            .bench_local_values(|submission| block_on(exchange(&sys, submission)));
    }
}
