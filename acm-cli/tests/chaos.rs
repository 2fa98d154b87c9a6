//! kill -9 of either `acm serve` process, again and again, at random points of the procedure
//! while alice and bob work through it with many requests in flight: after the last restart
//! every request has reached its end (answered, and the answer acknowledged by alice), each
//! server recorded each of its events exactly once, nothing a server answered with success
//! was lost by a kill after the answer, both hash chains verify and every request's audit
//! timeline joined across both stores is whole.
//!
//! `ACM_CHAOS_SEED` replays a run's choices of what to kill and when (the seed is printed),
//! `ACM_CHAOS_KILLS` sets how many kills (30 by default).
// A scenario reads best as one function; the seed and where the kills landed are the run's
// report.
#![allow(clippy::too_many_lines, clippy::print_stdout)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use acm_core::audit::{Step, joined_timeline};
use acm_core::{DownloadedItem, Envelope, Event, IdempotencyKey, PendingItem, RequestId};
use acm_transport_http::wire::{DecisionKind, ResponseSubmission};
use acm_transport_http::{AcmClient, Submitted};
use common::chaos::{
    Answered, Call, Calls, Ledger, Phase, Rng, Stage, by_request, duplicate_event_ids, persist,
    phases,
};
use common::{A, ALICE, B, BOB, Systems, Tweaks, id, provision};
use futures_util::future::join_all;

/// Alice's submitters working at once.
const SUBMITTERS: usize = 4;
/// The most requests open (submitted and not yet acknowledged by alice) at once: enough to
/// keep every stage of the procedure busy, few enough that a run stays short.
const MAX_OPEN: usize = 24;
/// The longest wait for the workload to finish after the last kill: only a bound.
const DRAIN: Duration = Duration::from_mins(2);
/// How many requests' timelines are also printed by `acm audit timeline` and compared.
const TIMELINE_SAMPLE: usize = 12;
/// The longest the killer waits for the phase it aims at before killing anyway.
const AIM: Duration = Duration::from_secs(2);

/// A's six events for each request, in the order A must record them.
const AT_A: [&str; 6] = [
    "submitted",
    "authorized",
    "forwarded",
    "partner_stored",
    "response_received",
    "response_delivered",
];
/// B's first four events for each request, in order.
const AT_B_FIRST: [&str; 4] = ["stored", "verified", "delivered", "responded"];
/// B's last two, in either order: the relay and the acceptance hook are separate duties.
const AT_B_LAST: [&str; 2] = ["acceptance_applied", "response_forwarded"];

const ACCEPT: ResponseSubmission = ResponseSubmission {
    decision: DecisionKind::Accept,
    reason: None,
    responder_alias: None,
};

/// What the workload's tasks and the killer share.
#[derive(Debug, Default)]
struct Shared {
    ledger: Mutex<Ledger>,
    calls: Calls,
    /// Whether submitters start new requests.
    submitting: AtomicBool,
    /// The number of the next request.
    next: AtomicUsize,
}

impl Shared {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // A poisoned lock means a task panicked; that panic is what the test reports.
        self.ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Alice submitting one request after another (each with its own idempotency key, retried
/// with it until answered) while the killer is at work, keeping at most [`MAX_OPEN`] open.
async fn submitter(alice: AcmClient, shared: Arc<Shared>, mut rng: Rng, run: u64) {
    while shared.submitting.load(Ordering::SeqCst) {
        if shared.ledger().open() >= MAX_OPEN {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let n = shared.next.fetch_add(1, Ordering::SeqCst);
        let key = format!("chaos-{run:x}-{n}");
        shared.ledger().keys.insert(key.clone(), None);
        let submission = provision(&[&format!("chaos-{n}")]);
        let idempotency_key: IdempotencyKey = id(&key);
        let answer = persist(
            &shared.calls,
            Call::Submit,
            &format!("alice's submission {key}"),
            || alice.submit(&submission, &idempotency_key),
        )
        .await;
        let Submitted::Queued(accepted) = answer else {
            panic!("submission {key} refused: {answer:?}");
        };
        let request = accepted.request_id;
        {
            let mut ledger = shared.ledger();
            ledger.keys.insert(key.clone(), Some(request));
            ledger.advance(request, Stage::Queued);
            ledger.answered.push(Answered::Submitted { key, request });
        }
        tokio::time::sleep(rng.millis(0, 40)).await;
    }
}

/// Bob logged on to B (step 6), again after every kill: at each notice (7a) he downloads
/// (7b–8) and accepts every request listed (9), all at once, retrying each call until
/// answered.
async fn bob_desk(bob: AcmClient, shared: Arc<Shared>) {
    let calls = &shared.calls;
    loop {
        let mut stream = persist(calls, Call::BobLogOn, "bob's log-on", || {
            bob.notifications(None)
        })
        .await;
        // The stream ends or fails when B is killed: log on again.
        while let Some(Ok(_notice)) = stream.next().await {
            let pending =
                persist(calls, Call::BobDownload, "bob's download", || bob.pending()).await;
            let requests: Vec<RequestId> = pending
                .items
                .iter()
                .map(|item| match item {
                    PendingItem::Request { request, .. } => request.request_id,
                    other => panic!("bob was offered {other:?}"),
                })
                .collect();
            {
                let mut ledger = shared.ledger();
                for request in &requests {
                    ledger.answered.push(Answered::Delivered(*request));
                    ledger.advance(*request, Stage::AtBob);
                }
            }
            join_all(requests.iter().map(|request| async {
                let request = *request;
                persist(
                    calls,
                    Call::Respond,
                    &format!("bob's response to {request}"),
                    || bob.respond(request, &ACCEPT),
                )
                .await;
                let mut ledger = shared.ledger();
                ledger.answered.push(Answered::Responded(request));
                ledger.advance(request, Stage::Answered);
            }))
            .await;
        }
    }
}

/// Alice logged on to A (step 12), again after every kill: at each notice (13a) she
/// downloads (13b) and acknowledges each response listed (14), all at once.
async fn alice_desk(alice: AcmClient, shared: Arc<Shared>) {
    let calls = &shared.calls;
    loop {
        let mut stream = persist(calls, Call::AliceLogOn, "alice's log-on", || {
            alice.notifications(None)
        })
        .await;
        while let Some(Ok(_notice)) = stream.next().await {
            let pending = persist(calls, Call::AliceDownload, "alice's download", || {
                alice.pending()
            })
            .await;
            let responses: Vec<RequestId> = pending
                .items
                .iter()
                .map(|item| match item {
                    PendingItem::Response { request, response } => {
                        assert!(
                            response.outcome.is_accepted(),
                            "{}: {response:?}",
                            request.request_id
                        );
                        request.request_id
                    }
                    other => panic!("alice was offered {other:?}"),
                })
                .collect();
            {
                let mut ledger = shared.ledger();
                for request in &responses {
                    ledger.advance(*request, Stage::Acknowledging);
                }
            }
            join_all(responses.iter().map(|request| async {
                let request = *request;
                let receipt = [DownloadedItem::Response(request)];
                persist(
                    calls,
                    Call::Acknowledge,
                    &format!("alice's acknowledgement of {request}"),
                    || alice.acknowledge(&receipt),
                )
                .await;
                let mut ledger = shared.ledger();
                ledger.answered.push(Answered::ResponseDelivered(request));
                ledger.advance(request, Stage::Done);
            }))
            .await;
        }
    }
}

/// What the killer aims at before a kill: a call in flight to the server, or requests at a
/// stage that involves it.
#[derive(Debug, Clone, Copy)]
enum Aim {
    Call(Call),
    Stage(Stage),
    /// Whatever is going on.
    Anything,
}

impl Aim {
    fn reached(self, shared: &Shared) -> bool {
        match self {
            Self::Call(call) => shared.calls.in_flight(call) > 0,
            Self::Stage(stage) => shared.ledger().at(stage) > 0,
            Self::Anything => true,
        }
    }
}

/// What one kill found.
#[derive(Debug)]
struct Kill {
    at_a: bool,
    after: Duration,
    aim: Aim,
    phases: BTreeMap<Phase, usize>,
    /// Success answers of the killed server checked against its store after the kill.
    checked: usize,
}

/// Every answer of `answered` that the killed server gave is in its store `events` after the
/// kill: a success answer means the store has it, whatever happens next.
fn answered_is_stored(system: &str, answered: &[Answered], events: &[Envelope<Event>]) {
    let mut recorded: BTreeSet<(RequestId, &str)> = BTreeSet::new();
    let mut keys: BTreeMap<String, RequestId> = BTreeMap::new();
    for e in events {
        recorded.insert((e.correlation_id, e.event_type.as_ref()));
        if let Event::Submitted {
            idempotency_key: Some(key),
            ..
        } = &e.payload
        {
            keys.insert(key.as_str().to_owned(), e.correlation_id);
        }
    }
    for answer in answered {
        assert!(
            recorded.contains(&(answer.request(), answer.event_type())),
            "{system} answered {answer:?} with success before it was killed, and its store has no {} for it",
            answer.event_type()
        );
        if let Answered::Submitted { key, request } = answer {
            assert_eq!(
                keys.get(key),
                Some(request),
                "{system}: the key {key} of an answered submission is not stored with its request"
            );
        }
    }
}

/// Both stores' logs (their chains checked), read side by side off the runtime's workers:
/// with two workers, a worker busy reading would hold up half the workload.
fn both_logs(systems: &Systems) -> (Vec<Envelope<Event>>, Vec<Envelope<Event>>) {
    tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let a = scope.spawn(|| systems.a.events());
            let b = systems.b.events();
            let a = a.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            (a, b)
        })
    })
}

/// `seen` (what `who` holds) names exactly the requests alice was answered with: none
/// missing, none more (a second request made by a retry).
fn same_requests<'a>(
    who: &str,
    seen: impl IntoIterator<Item = &'a RequestId>,
    requests: &BTreeSet<RequestId>,
) {
    let seen: BTreeSet<RequestId> = seen.into_iter().copied().collect();
    let more: Vec<_> = seen.difference(requests).collect();
    let missing: Vec<_> = requests.difference(&seen).collect();
    assert!(
        more.is_empty() && missing.is_empty(),
        "{who}: {} requests alice was not answered with {more:?}, {} of hers missing {missing:?}",
        more.len(),
        missing.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_any_step_loses_and_repeats_nothing() {
    let seed = common::chaos::seed();
    let kills = common::chaos::kills();
    // Printed first, so that a run that fails or hangs can be replayed.
    println!("chaos: seed {seed} (replay with ACM_CHAOS_SEED={seed}), {kills} kills");
    let mut rng = Rng::new(seed);
    let started = Instant::now();

    // A relay killed with messages claimed leaves them to the claim's lease (30 s by
    // default, docs/configuration.md) before its next start sends them: a short lease keeps a
    // run short, and a short send time-out is what lets the lease be short.
    let timing = Tweaks {
        timing: vec![
            "send_timeout_ms = 1000".to_owned(),
            "claim_lease_seconds = 2".to_owned(),
        ],
        ..Tweaks::default()
    };
    let mut systems = Systems::start_with(&timing, &timing).await;
    let up = started.elapsed();
    let shared = Arc::new(Shared::default());
    shared.submitting.store(true, Ordering::SeqCst);
    let alice = systems.a.client(ALICE);
    let bob = systems.b.client(BOB);
    let mut submitters = Vec::new();
    for _ in 0..SUBMITTERS {
        submitters.push(tokio::spawn(submitter(
            alice.clone(),
            shared.clone(),
            rng.fork(),
            seed,
        )));
    }
    let mut desks = [
        tokio::spawn(bob_desk(bob.clone(), shared.clone())),
        tokio::spawn(alice_desk(alice.clone(), shared.clone())),
    ];

    // The killer.
    let aims_a = [
        Aim::Call(Call::Submit),
        Aim::Stage(Stage::Queued),
        Aim::Stage(Stage::Answered),
        Aim::Call(Call::Acknowledge),
        Aim::Call(Call::AliceDownload),
        Aim::Anything,
    ];
    let aims_b = [
        Aim::Stage(Stage::Queued),
        Aim::Call(Call::BobDownload),
        Aim::Call(Call::Respond),
        Aim::Stage(Stage::Answered),
        Aim::Anything,
    ];
    let mut log: Vec<Kill> = Vec::new();
    let mut down = Duration::ZERO;
    let mut reading = Duration::ZERO;
    for k in 0..kills {
        tokio::time::sleep(rng.millis(30, 300)).await;
        let at_a = rng.below(2) == 0;
        let aims: &[Aim] = if at_a { &aims_a } else { &aims_b };
        let aim = aims[usize::try_from(rng.below(aims.len() as u64)).unwrap_or(0)];
        let aiming = Instant::now();
        while !aim.reached(&shared) && aiming.elapsed() < AIM {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let calls: BTreeMap<Call, usize> = Call::ALL
            .into_iter()
            .filter(|c| c.to_a() == at_a)
            .map(|c| (c, shared.calls.in_flight(c)))
            .collect();
        let killed_at = Instant::now();
        let server = if at_a { &mut systems.a } else { &mut systems.b };
        let status = server.kill().await;
        assert_eq!(status.signal(), Some(9), "kill {k}: {status}");
        // Everything the killed server answered with success came before it died.
        let answered: Vec<Answered> = shared
            .ledger()
            .answered
            .iter()
            .filter(|a| a.at_a() == at_a)
            .cloned()
            .collect();
        let read = Instant::now();
        let (a_events, b_events) = both_logs(&systems);
        let system = if at_a { A } else { B };
        answered_is_stored(system, &answered, if at_a { &a_events } else { &b_events });
        log.push(Kill {
            at_a,
            after: killed_at.duration_since(started),
            aim,
            phases: phases(&a_events, &b_events, &calls),
            checked: answered.len(),
        });
        reading += read.elapsed();
        tokio::time::sleep(rng.millis(0, 250)).await;
        let server = if at_a { &mut systems.a } else { &mut systems.b };
        server.restart().await;
        down += killed_at.elapsed();
    }
    let killing = started.elapsed().saturating_sub(up);

    // The last restart is done: no new requests; every open one must reach its end.
    shared.submitting.store(false, Ordering::SeqCst);
    for s in submitters {
        s.await
            .unwrap_or_else(|e| panic!("a submitter failed: {e}"));
    }
    let drained = Instant::now();
    loop {
        for desk in &mut desks {
            if desk.is_finished() {
                let stopped = desk.await;
                panic!("a desk stopped: {stopped:?}");
            }
        }
        // Requests nobody was answered with are found below, from what the stores hold.
        let done = shared.ledger().open() == 0;
        if done {
            let b_done = by_request(&tokio::task::block_in_place(|| systems.b.events()))
                .values()
                .all(|t| AT_B_LAST.iter().all(|last| t.iter().any(|x| x == last)));
            if b_done {
                break;
            }
        }
        if drained.elapsed() > DRAIN {
            let ledger = shared.ledger();
            let stuck: Vec<_> = ledger
                .stages
                .iter()
                .filter(|(_, s)| **s != Stage::Done)
                .collect();
            let (a_events, b_events) = both_logs(&systems);
            let live = phases(&a_events, &b_events, &BTreeMap::new());
            panic!(
                "requests not at their end {DRAIN:?} after the last restart: {stuck:?}\n\
                 the stores: {live:?}\nA:\n{}\nB:\n{}",
                systems.a.stderr(),
                systems.b.stderr()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for desk in &desks {
        desk.abort();
    }
    let drain = drained.elapsed();
    let checking = Instant::now();

    // A graceful stop of what the last restarts left: both exit 0.
    for server in [&mut systems.a, &mut systems.b] {
        let exit = server.terminate().await;
        assert_eq!(
            exit.code(),
            Some(0),
            "{}: {exit}\n{}",
            server.system,
            server.stderr()
        );
    }

    // Every request, from what alice was answered.
    let ledger = shared.ledger();
    let keys: BTreeMap<String, RequestId> = ledger
        .keys
        .iter()
        .map(|(k, id)| (k.clone(), id.unwrap_or_else(|| panic!("{k}: no answer"))))
        .collect();
    let requests: BTreeSet<RequestId> = keys.values().copied().collect();
    assert_eq!(
        requests.len(),
        keys.len(),
        "two keys answered with one request"
    );

    // Both logs: the chain verifies (events() checks it), no event id twice, every answered
    // call stored, and per request exactly the expected events.
    let (a_events, b_events) = both_logs(&systems);
    assert_eq!(duplicate_event_ids(&a_events), Vec::<String>::new(), "A");
    assert_eq!(duplicate_event_ids(&b_events), Vec::<String>::new(), "B");
    answered_is_stored(
        A,
        &ledger
            .answered
            .iter()
            .filter(|a| a.at_a())
            .cloned()
            .collect::<Vec<_>>(),
        &a_events,
    );
    answered_is_stored(
        B,
        &ledger
            .answered
            .iter()
            .filter(|a| !a.at_a())
            .cloned()
            .collect::<Vec<_>>(),
        &b_events,
    );
    let stored_keys: Vec<(String, RequestId)> = a_events
        .iter()
        .filter_map(|e| match &e.payload {
            Event::Submitted {
                idempotency_key, ..
            } => Some((
                idempotency_key
                    .as_ref()
                    .map(|k| k.as_str().to_owned())
                    .unwrap_or_default(),
                e.correlation_id,
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        stored_keys.len(),
        keys.len(),
        "A recorded {} submissions for {} keys: a retry made a second request, or one was lost",
        stored_keys.len(),
        keys.len()
    );
    assert_eq!(
        stored_keys.into_iter().collect::<BTreeMap<_, _>>(),
        keys,
        "A's submissions are not the keys alice was answered"
    );
    let at_a = by_request(&a_events);
    let at_b = by_request(&b_events);
    same_requests("bob and alice", ledger.stages.keys(), &requests);
    same_requests("A's store", at_a.keys(), &requests);
    same_requests("B's store", at_b.keys(), &requests);
    for request in &requests {
        assert_eq!(at_a[request], AT_A, "A's events of {request}");
        let b = &at_b[request];
        assert_eq!(b.len(), 6, "B's events of {request}: {b:?}");
        assert_eq!(b[..4], AT_B_FIRST, "B's events of {request}");
        let mut last = b[4..].to_vec();
        last.sort();
        assert_eq!(last, AT_B_LAST, "B's events of {request}");
    }
    for e in &a_events {
        if let Event::ResponseReceived { response, .. } = &e.payload {
            assert!(
                response.outcome.is_accepted(),
                "{}: {response:?}",
                e.correlation_id
            );
        }
    }

    // The hash chains, verified by the product's own command, as an auditor would.
    for server in [&systems.a, &systems.b] {
        let store = server.store.to_string_lossy().into_owned();
        let (status, out, err) = common::acm(&["audit", "verify", &store]);
        assert_eq!(status.code(), Some(0), "audit verify {store}: {out}{err}");
    }

    // Each request's audit timeline joined across both stores has every step, once, in
    // causal order; `acm audit timeline` prints the same.
    let want_steps = {
        let mut steps = vec![
            (A, "1"),
            (A, "2"),
            (A, "3"),
            (B, "4a"),
            (B, "4a"),
            (A, "4b"),
            (B, "8"),
            (B, "9"),
            (B, "10"),
            (A, "11"),
            (A, "14"),
            (B, "hook"),
        ];
        steps.sort_unstable();
        steps
    };
    // `acm audit timeline` is a process per request: a sample keeps the run short.
    let sampled: BTreeSet<RequestId> = {
        let all: Vec<RequestId> = requests.iter().copied().collect();
        (0..TIMELINE_SAMPLE)
            .map(|_| all[usize::try_from(rng.below(all.len() as u64)).unwrap_or(0)])
            .collect()
    };
    let a_store = systems.a.store.to_string_lossy().into_owned();
    let b_store = systems.b.store.to_string_lossy().into_owned();
    // Each request's events apart first: the timeline reads the whole log it is given, and a
    // whole log per request would make this quadratic in the run's length.
    let split = |events: &[Envelope<Event>]| {
        let mut map: BTreeMap<RequestId, Vec<Envelope<Event>>> = BTreeMap::new();
        for e in events {
            map.entry(e.correlation_id).or_default().push(e.clone());
        }
        map
    };
    let (a_split, b_split) = (split(&a_events), split(&b_events));
    for request in &requests {
        let entries = joined_timeline(&a_split[request], &b_split[request], *request)
            .unwrap_or_else(|e| panic!("timeline of {request}: {e}"));
        let mut steps: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (if e.system.as_str() == A { A } else { B }, e.step.as_str()))
            .collect();
        let index = |event_type: &str| {
            entries
                .iter()
                .position(|e| e.event_type == event_type)
                .unwrap_or_else(|| panic!("timeline of {request} has no {event_type}"))
        };
        for (before, after) in [
            ("submitted", "authorized"),
            ("authorized", "forwarded"),
            ("forwarded", "stored"),
            ("stored", "verified"),
            ("verified", "delivered"),
            ("delivered", "responded"),
            ("responded", "response_received"),
            ("response_received", "response_forwarded"),
            ("response_received", "response_delivered"),
            ("responded", "acceptance_applied"),
        ] {
            assert!(
                index(before) < index(after),
                "timeline of {request}: {before} not before {after}: {entries:#?}"
            );
        }
        assert_eq!(entries[0].step, Step::Submit, "timeline of {request}");
        steps.sort_unstable();
        assert_eq!(steps, want_steps, "timeline of {request}");

        if !sampled.contains(request) {
            continue;
        }
        let id_text = request.to_string();
        let (status, out, err) =
            common::acm(&["audit", "timeline", "--json", &a_store, &b_store, &id_text]);
        assert_eq!(status.code(), Some(0), "audit timeline {request}: {err}");
        let printed: serde_json::Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("audit timeline {request} --json: {e}: {out}"));
        let printed: Vec<(String, String, u64)> = printed["entries"]
            .as_array()
            .unwrap_or_else(|| panic!("audit timeline {request}: no entries: {out}"))
            .iter()
            .map(|e| {
                (
                    e["system"].as_str().unwrap_or_default().to_owned(),
                    e["event_type"].as_str().unwrap_or_default().to_owned(),
                    e["position"].as_u64().unwrap_or_default(),
                )
            })
            .collect();
        let computed: Vec<(String, String, u64)> = entries
            .iter()
            .map(|e| (e.system.to_string(), e.event_type.clone(), e.position.0))
            .collect();
        assert_eq!(printed, computed, "acm audit timeline of {request}");
    }

    // What the kills found, so that a note can say where they landed.
    let total = started.elapsed();
    println!(
        "chaos: start {:.1} s, kills {:.1} s, drain {:.1} s, checks {:.1} s",
        up.as_secs_f64(),
        killing.as_secs_f64(),
        drain.as_secs_f64(),
        checking.elapsed().as_secs_f64()
    );
    let on_a = log.iter().filter(|k| k.at_a).count();
    println!(
        "chaos: {} kills (A {on_a}, B {}) in {:.1} s, {:.2} s a kill (down and back, {:.2} s of it reading the stores), {} requests, all steps 1-14 each; {:.1} s in all",
        log.len(),
        log.len() - on_a,
        killing.as_secs_f64(),
        (down / u32::try_from(log.len().max(1)).unwrap_or(u32::MAX)).as_secs_f64(),
        (reading / u32::try_from(log.len().max(1)).unwrap_or(u32::MAX)).as_secs_f64(),
        requests.len(),
        total.as_secs_f64()
    );
    let retried: Vec<String> = Call::ALL
        .iter()
        .map(|c| format!("{} {}", c.label(), shared.calls.retried(*c)))
        .collect();
    println!("chaos: calls retried: {}", retried.join(", "));
    println!(
        "chaos: success answers checked in the killed server's store after each kill: {}",
        log.iter().map(|k| k.checked).sum::<usize>()
    );
    println!("chaos: kills that found each phase live (one kill counts for each it found):");
    println!("  {:<40} {:>3} {:>3}", "phase", "A", "B");
    for phase in Phase::ALL {
        let on = |a: bool| {
            if phase.call_to_a().is_some_and(|to_a| to_a != a) {
                // A call to the other server: no kill of this one can find it.
                return "-".to_owned();
            }
            log.iter()
                .filter(|k| k.at_a == a && k.phases.contains_key(&phase))
                .count()
                .to_string()
        };
        println!("  {:<40} {:>3} {:>3}", phase.label(), on(true), on(false));
    }
    for (k, kill) in log.iter().enumerate() {
        let found: Vec<String> = kill
            .phases
            .iter()
            .map(|(p, n)| format!("{} x{n}", p.label()))
            .collect();
        println!(
            "  kill {k:>2}: {} at {:>5.1} s, aimed at {:?}: {}",
            if kill.at_a { A } else { B },
            kill.after.as_secs_f64(),
            kill.aim,
            found.join("; ")
        );
    }
}
