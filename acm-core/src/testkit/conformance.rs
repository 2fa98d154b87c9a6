//! The conformance suite every [`EventStore`] implementation must pass.
//!
//! Use [`conformance_tests!`](crate::conformance_tests) in an adapter crate's tests to get one
//! `#[test]` per guarantee, plus a property test against a reference model:
//!
//! ```text
//! acm_core::conformance_tests!(acm_store_memory::MemoryStore::new());
//! ```

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use futures_util::StreamExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::id::{EventId, GlobalPosition, McServiceId, RequestId, StreamId, Version};
use crate::store::{
    Actor, Appended, DomainEvent, Envelope, EventStore, ExpectedVersion, NewEvent, StoreError,
};

/// The event type the suite appends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestEvent {
    /// A number.
    pub n: u64,
    /// Some text.
    pub text: String,
}

impl DomainEvent for TestEvent {
    fn event_type(&self) -> &'static str {
        "test_event"
    }
}

pub(crate) fn v7(n: u64, salt: u16) -> Uuid {
    let mut random = [0u8; 10];
    random[..2].copy_from_slice(&salt.to_be_bytes());
    random[2..].copy_from_slice(&n.to_be_bytes());
    uuid::Builder::from_unix_timestamp_millis(n, &random).into_uuid()
}

/// The stream numbered `n`.
pub fn stream(n: u64) -> StreamId {
    StreamId(RequestId::from_uuid(v7(n, 0xAAAA)).unwrap_or_else(|_| unreachable!()))
}

/// The event id numbered `n`.
pub fn event_id(n: u64) -> EventId {
    EventId::from_uuid(v7(n, 0xEEEE)).unwrap_or_else(|_| unreachable!())
}

fn at(n: u64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + i64::try_from(n).unwrap_or(0), 0)
        .single()
        .unwrap_or_default()
}

/// A new event with id `id`, in stream `s`, carrying `n`.
pub fn event(s: StreamId, id: u64, n: u64) -> NewEvent<TestEvent> {
    NewEvent {
        event_id: event_id(id),
        correlation_id: s.0,
        causation_id: None,
        actor: Actor::User(
            "sip:auditor@mc-a.example"
                .parse::<McServiceId>()
                .unwrap_or_else(|_| unreachable!()),
        ),
        recorded_at: at(id),
        payload: TestEvent {
            n,
            text: format!("event {id}"),
        },
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures_executor::block_on(f)
}

async fn read_stream<S: EventStore<TestEvent> + ?Sized>(
    store: &S,
    s: StreamId,
    after: Version,
) -> Vec<Envelope<TestEvent>> {
    let mut out = Vec::new();
    let mut events = store.read_stream(s, after);
    while let Some(e) = events.next().await {
        out.push(e.unwrap_or_else(|e| panic!("read_stream failed: {e}")));
    }
    out
}

async fn read_all<S: EventStore<TestEvent> + ?Sized>(
    store: &S,
    after: GlobalPosition,
) -> Vec<Envelope<TestEvent>> {
    let mut out = Vec::new();
    let mut events = store.read_all(after);
    while let Some(e) = events.next().await {
        out.push(e.unwrap_or_else(|e| panic!("read_all failed: {e}")));
    }
    out
}

async fn head<S: EventStore<TestEvent> + ?Sized>(store: &S) -> GlobalPosition {
    store
        .head()
        .await
        .unwrap_or_else(|e| panic!("head failed: {e}"))
}

/// An empty store has nothing to read and head at the start.
pub async fn empty_store<S: EventStore<TestEvent> + ?Sized>(store: &S) {
    assert_eq!(head(store).await, GlobalPosition::START);
    assert!(read_all(store, GlobalPosition::START).await.is_empty());
    assert!(
        read_stream(store, stream(1), Version::NONE)
            .await
            .is_empty()
    );
}

/// A first append lands at version 1 and position 1, and reads back with its envelope.
pub async fn append_and_read_back<S: EventStore<TestEvent> + ?Sized>(store: &S) {
    let s = stream(1);
    let batch = vec![event(s, 1, 10), event(s, 2, 20), event(s, 3, 30)];
    let appended = store
        .append(s, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap_or_else(|e| panic!("append failed: {e}"));
    assert_eq!(
        appended,
        Appended {
            first_version: Version(1),
            first_position: GlobalPosition(1),
            count: 3,
            replayed: false
        }
    );
    assert_eq!(appended.last_version(), Version(3));
    let read = read_stream(store, s, Version::NONE).await;
    assert_eq!(read.len(), 3);
    for (i, (e, new)) in read.iter().zip(&batch).enumerate() {
        let i = i as u64;
        assert_eq!(e.version, Version(i + 1));
        assert_eq!(e.position, GlobalPosition(i + 1));
        assert_eq!(e.stream_id, s);
        assert_eq!(e.event_type, "test_event");
        assert_eq!(e.schema_version, 1);
        assert!(
            e.same_as(s, new),
            "envelope {i} differs from what was appended"
        );
    }
    assert_eq!(head(store).await, GlobalPosition(3));
}

/// `NoStream` on a stream with events is a conflict that writes nothing.
pub async fn no_stream_conflict<S: EventStore<TestEvent> + ?Sized>(store: &S) {
    let s = stream(1);
    must(
        store
            .append(s, ExpectedVersion::NoStream, vec![event(s, 1, 1)])
            .await,
    );
    let err = store
        .append(s, ExpectedVersion::NoStream, vec![event(s, 2, 2)])
        .await;
    match err {
        Err(StoreError::Conflict {
            stream: cs,
            expected,
            actual,
        }) => {
            assert_eq!(cs, s);
            assert_eq!(expected, ExpectedVersion::NoStream);
            assert_eq!(actual, Version(1));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(head(store).await, GlobalPosition(1));
}

/// `Exact` must match the stream's version; a mismatch names both.
pub async fn exact_version<S: EventStore<TestEvent> + ?Sized>(store: &S) {
    let s = stream(1);
    must(
        store
            .append(
                s,
                ExpectedVersion::NoStream,
                vec![event(s, 1, 1), event(s, 2, 2)],
            )
            .await,
    );
    for wrong in [0, 1, 3] {
        match store
            .append(
                s,
                ExpectedVersion::Exact(Version(wrong)),
                vec![event(s, 3, 3)],
            )
            .await
        {
            Err(StoreError::Conflict {
                expected, actual, ..
            }) => {
                assert_eq!(expected, ExpectedVersion::Exact(Version(wrong)));
                assert_eq!(actual, Version(2));
            }
            other => panic!("expected a conflict at {wrong}, got {other:?}"),
        }
    }
    let ok = must(
        store
            .append(s, ExpectedVersion::Exact(Version(2)), vec![event(s, 3, 3)])
            .await,
    );
    assert_eq!(ok.first_version, Version(3));
    assert_eq!(head(store).await, GlobalPosition(3));
}

/// `Any` appends to new and existing streams.
pub async fn any_version<S: EventStore<TestEvent> + ?Sized>(store: &S) {
    let s = stream(1);
    let a = must(
        store
            .append(s, ExpectedVersion::Any, vec![event(s, 1, 1)])
            .await,
    );
    let b = must(
        store
            .append(s, ExpectedVersion::Any, vec![event(s, 2, 2)])
            .await,
    );
    assert_eq!((a.first_version, b.first_version), (Version(1), Version(2)));
}

/// Re-appending stored events returns the original positions and writes nothing, whatever
/// the expected version.
pub async fn idempotent_reappend<S: EventStore<TestEvent> + ?Sized>(store: &S) {
    let (s, t) = (stream(1), stream(2));
    must(
        store
            .append(t, ExpectedVersion::Any, vec![event(t, 9, 9)])
            .await,
    );
    let batch = vec![event(s, 1, 1), event(s, 2, 2)];
    let first = must(
        store
            .append(s, ExpectedVersion::NoStream, batch.clone())
            .await,
    );
    must(
        store
            .append(t, ExpectedVersion::Any, vec![event(t, 10, 10)])
            .await,
    );
    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Any,
        ExpectedVersion::Exact(Version(7)),
    ] {
        let again = must(store.append(s, expected, batch.clone()).await);
        assert!(again.replayed, "a re-append must say it changed nothing");
        assert_eq!(
            (again.first_version, again.first_position, again.count),
            (first.first_version, first.first_position, first.count)
        );
    }
    assert_eq!(head(store).await, GlobalPosition(4));
    assert_eq!(read_stream(store, s, Version::NONE).await.len(), 2);
}

/// The same event id with other content, or a batch mixing stored and new ids, or one id
/// twice in a batch, is an idempotency conflict that writes nothing.
pub async fn idempotency_conflicts<S: EventStore<TestEvent> + ?Sized>(store: &S) {
    let s = stream(1);
    must(
        store
            .append(s, ExpectedVersion::NoStream, vec![event(s, 1, 1)])
            .await,
    );
    let mut changed = event(s, 1, 1);
    changed.payload.n = 2;
    let cases = [
        (vec![changed], event_id(1)),
        (vec![event(s, 1, 1), event(s, 2, 2)], event_id(2)),
        (vec![event(s, 3, 3), event(s, 1, 1)], event_id(1)),
        (vec![event(s, 4, 4), event(s, 4, 4)], event_id(4)),
        (vec![event(stream(2), 1, 1)], event_id(1)),
    ];
    for (batch, id) in cases {
        match store.append(s, ExpectedVersion::Any, batch).await {
            Err(StoreError::IdempotencyConflict { event_id }) => assert_eq!(event_id, id),
            other => panic!("expected an idempotency conflict on {id}, got {other:?}"),
        }
    }
    assert_eq!(head(store).await, GlobalPosition(1));
}

/// An empty batch is refused.
pub async fn empty_append<S: EventStore<TestEvent> + ?Sized>(store: &S) {
    assert!(matches!(
        store.append(stream(1), ExpectedVersion::Any, vec![]).await,
        Err(StoreError::EmptyAppend)
    ));
    assert_eq!(head(store).await, GlobalPosition::START);
}

/// Interleaved streams: versions contiguous per stream, positions gap-free overall, reads
/// after a version or position start right after it.
pub async fn interleaved_positions<S: EventStore<TestEvent> + ?Sized>(store: &S) {
    let mut id = 0;
    for round in 0..5u64 {
        for n in 1..=3u64 {
            let s = stream(n);
            id += 1;
            must(
                store
                    .append(
                        s,
                        ExpectedVersion::Exact(Version(round)),
                        vec![event(s, id, id)],
                    )
                    .await,
            );
        }
    }
    let all = read_all(store, GlobalPosition::START).await;
    assert_eq!(all.len(), 15);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.position, GlobalPosition(i as u64 + 1));
        assert_eq!(
            e.payload.n,
            i as u64 + 1,
            "read_all must be in commit order"
        );
    }
    let tail = read_all(store, GlobalPosition(10)).await;
    assert_eq!(
        tail.iter().map(|e| e.position.0).collect::<Vec<_>>(),
        (11..=15).collect::<Vec<_>>()
    );
    assert!(read_all(store, GlobalPosition(15)).await.is_empty());
    for n in 1..=3 {
        let events = read_stream(store, stream(n), Version(2)).await;
        assert_eq!(
            events.iter().map(|e| e.version.0).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert!(events.iter().all(|e| e.stream_id == stream(n)));
    }
}

/// Reads of more events than a page (or a chunk, or a batch) come back whole and in order,
/// from any starting point.
pub async fn long_reads<S: EventStore<TestEvent> + ?Sized>(store: &S) {
    const N: u64 = 9_000;
    let s = stream(1);
    for chunk in 0..N / 100 {
        let batch = (0..100)
            .map(|i| event(s, chunk * 100 + i + 1, chunk * 100 + i + 1))
            .collect();
        must(
            store
                .append(s, ExpectedVersion::Exact(Version(chunk * 100)), batch)
                .await,
        );
    }
    let all = read_all(store, GlobalPosition::START).await;
    assert_eq!(all.len() as u64, N);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, e)| e.position.0 == i as u64 + 1)
    );
    for after in [0, 1, 255, 256, 4095, 4096, 4097, 8191, 8192, N - 1, N] {
        let tail = read_stream(store, s, Version(after)).await;
        assert_eq!(tail.len() as u64, N - after, "read_stream after {after}");
        assert!(
            tail.iter()
                .enumerate()
                .all(|(i, e)| e.version.0 == after + i as u64 + 1
                    && e.payload.n == after + i as u64 + 1),
            "read_stream after {after}: out of order"
        );
        let tail = read_all(store, GlobalPosition(after)).await;
        assert_eq!(tail.len() as u64, N - after, "read_all after {after}");
        assert_eq!(
            tail.first().map(|e| e.position.0),
            (after < N).then_some(after + 1)
        );
    }
}

/// Concurrent appends with the same expected version: exactly one wins per round.
pub fn concurrent_writers<S: EventStore<TestEvent>>(store: &S) {
    let s = stream(1);
    for round in 0..20u64 {
        let wins: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4u64)
                .map(|w| {
                    scope.spawn(move || {
                        let id = 1000 + round * 10 + w;
                        block_on(store.append(
                            s,
                            ExpectedVersion::Exact(Version(round)),
                            vec![event(s, id, id)],
                        ))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h.join() {
                    Ok(Ok(_)) => 1,
                    Ok(Err(StoreError::Conflict { .. })) => 0,
                    Ok(Err(e)) => panic!("unexpected error: {e}"),
                    Err(payload) => std::panic::resume_unwind(payload),
                })
                .sum()
        });
        assert_eq!(wins, 1, "round {round}: exactly one writer must win");
    }
    assert_eq!(block_on(head(store)), GlobalPosition(20));
}

fn must(r: Result<Appended, StoreError>) -> Appended {
    r.unwrap_or_else(|e| panic!("append failed: {e}"))
}

/// Runs every deterministic check, each on a fresh store.
pub fn run_all<S: EventStore<TestEvent>>(fresh: impl Fn() -> S) {
    block_on(empty_store(&fresh()));
    block_on(append_and_read_back(&fresh()));
    block_on(no_stream_conflict(&fresh()));
    block_on(exact_version(&fresh()));
    block_on(any_version(&fresh()));
    block_on(idempotent_reappend(&fresh()));
    block_on(idempotency_conflicts(&fresh()));
    block_on(empty_append(&fresh()));
    block_on(interleaved_positions(&fresh()));
    block_on(long_reads(&fresh()));
    concurrent_writers(&fresh());
}

/// One operation of the model-based property test.
#[derive(Debug, Clone)]
pub enum Op {
    /// Append `len` fresh events to stream `stream`.
    Append {
        /// Stream number.
        stream: u64,
        /// Expectation.
        expected: ExpectedMode,
        /// Batch size.
        len: u64,
    },
    /// Re-append the `nth` earlier batch (mod the number of batches), maybe altered.
    Reappend {
        /// Which batch.
        nth: usize,
        /// Change the payload of its first event.
        altered: bool,
    },
    /// Read a stream after a version.
    ReadStream {
        /// Stream number.
        stream: u64,
        /// After this version.
        after: u64,
    },
    /// Read all after a position.
    ReadAll {
        /// After this position.
        after: u64,
    },
}

/// How an [`Op::Append`] sets its expected version.
#[derive(Debug, Clone, Copy)]
pub enum ExpectedMode {
    /// `Any`.
    Any,
    /// `NoStream`.
    NoStream,
    /// `Exact` of the model's current version.
    Current,
    /// `Exact` of a version that may be wrong.
    Exact(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let mode = prop_oneof![
        Just(ExpectedMode::Any),
        Just(ExpectedMode::NoStream),
        Just(ExpectedMode::Current),
        (0u64..6).prop_map(ExpectedMode::Exact),
    ];
    prop_oneof![
        4 => (1u64..4, mode, 1u64..4).prop_map(|(stream, expected, len)| Op::Append { stream, expected, len }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(nth, altered)| Op::Reappend { nth, altered }),
        1 => (1u64..4, 0u64..8).prop_map(|(stream, after)| Op::ReadStream { stream, after }),
        1 => (0u64..20).prop_map(|after| Op::ReadAll { after }),
    ]
}

#[derive(Default)]
struct Model {
    log: Vec<(StreamId, NewEvent<TestEvent>)>,
    versions: HashMap<StreamId, u64>,
    batches: Vec<(StreamId, Vec<NewEvent<TestEvent>>, Appended)>,
    next_id: u64,
}

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if cond {
        Ok(())
    } else {
        Err(TestCaseError::fail(what()))
    }
}

#[allow(clippy::too_many_lines)] // one arm per operation, each checked against the model
fn run_ops<S: EventStore<TestEvent>>(store: &S, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut m = Model::default();
    for op in ops {
        match op {
            Op::Append {
                stream: n,
                expected,
                len,
            } => {
                let s = stream(*n);
                let actual = m.versions.get(&s).copied().unwrap_or(0);
                let expected = match expected {
                    ExpectedMode::Any => ExpectedVersion::Any,
                    ExpectedMode::NoStream => ExpectedVersion::NoStream,
                    ExpectedMode::Current => ExpectedVersion::Exact(Version(actual)),
                    ExpectedMode::Exact(v) => ExpectedVersion::Exact(Version(*v)),
                };
                let batch: Vec<_> = (0..*len)
                    .map(|_| {
                        m.next_id += 1;
                        event(s, m.next_id, m.next_id * 7)
                    })
                    .collect();
                let result = block_on(store.append(s, expected, batch.clone()));
                if expected.admits(Version(actual)) {
                    let a = result.map_err(|e| TestCaseError::fail(format!("append: {e}")))?;
                    let want = Appended {
                        first_version: Version(actual + 1),
                        first_position: GlobalPosition(m.log.len() as u64 + 1),
                        count: *len,
                        replayed: false,
                    };
                    check(a == want, || format!("appended {a:?}, model {want:?}"))?;
                    m.versions.insert(s, actual + len);
                    m.log.extend(batch.iter().cloned().map(|e| (s, e)));
                    m.batches.push((s, batch, a));
                } else {
                    let ok = matches!(result, Err(StoreError::Conflict { actual: a, .. }) if a == Version(actual));
                    check(ok, || {
                        format!("expected conflict at {actual}, got {result:?}")
                    })?;
                }
            }
            Op::Reappend { nth, altered } => {
                if m.batches.is_empty() {
                    continue;
                }
                let (s, mut batch, original) = m.batches[nth % m.batches.len()].clone();
                if *altered {
                    batch[0].payload.n += 1;
                }
                let result = block_on(store.append(s, ExpectedVersion::Any, batch.clone()));
                if *altered {
                    let ok = matches!(result, Err(StoreError::IdempotencyConflict { event_id }) if event_id == batch[0].event_id);
                    check(ok, || {
                        format!("expected idempotency conflict, got {result:?}")
                    })?;
                } else {
                    let a = result.map_err(|e| TestCaseError::fail(format!("re-append: {e}")))?;
                    check(
                        a.replayed
                            && (a.first_version, a.first_position, a.count)
                                == (
                                    original.first_version,
                                    original.first_position,
                                    original.count,
                                ),
                        || format!("re-append gave {a:?}, original {original:?}"),
                    )?;
                }
            }
            Op::ReadStream { stream: n, after } => {
                let s = stream(*n);
                let got = block_on(read_stream(store, s, Version(*after)));
                let want: Vec<_> = m
                    .log
                    .iter()
                    .filter(|(es, _)| *es == s)
                    .skip(usize::try_from(*after).unwrap_or(usize::MAX))
                    .collect();
                check(got.len() == want.len(), || {
                    format!(
                        "read_stream {n} after {after}: {} events, model {}",
                        got.len(),
                        want.len()
                    )
                })?;
                for (i, (g, (_, w))) in got.iter().zip(want).enumerate() {
                    check(
                        g.same_as(s, w) && g.version.0 == after + i as u64 + 1,
                        || format!("read_stream {n}: event {i} differs"),
                    )?;
                }
            }
            Op::ReadAll { after } => {
                let got = block_on(read_all(store, GlobalPosition(*after)));
                let want: Vec<_> = m
                    .log
                    .iter()
                    .skip(usize::try_from(*after).unwrap_or(usize::MAX))
                    .collect();
                check(got.len() == want.len(), || {
                    format!(
                        "read_all after {after}: {} events, model {}",
                        got.len(),
                        want.len()
                    )
                })?;
                for (i, (g, (s, w))) in got.iter().zip(want).enumerate() {
                    check(
                        g.same_as(*s, w) && g.position.0 == after + i as u64 + 1,
                        || format!("read_all: event {i} differs"),
                    )?;
                }
            }
        }
        let h = block_on(store.head()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check(h.0 == m.log.len() as u64, || {
            format!("head {h}, model {}", m.log.len())
        })?;
    }
    Ok(())
}

/// Property test: random sequences of appends (all expectation modes), re-appends (exact and
/// altered) and reads give the same results on the store as on a reference model.
pub fn check_against_model<S: EventStore<TestEvent>>(fresh: impl Fn() -> S, cases: u32) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(op(), 1..40), |ops| {
        run_ops(&fresh(), &ops)
    });
    if let Err(e) = result {
        panic!("store disagrees with the model: {e}");
    }
}

/// Generates one `#[test]` per conformance check for a store expression (evaluated afresh for
/// each test), plus the model-based property test.
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:expr) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;
            use $crate::testkit::conformance as c;

            fn block_on<F: ::std::future::Future>(f: F) -> F::Output {
                $crate::testkit::block_on(f)
            }

            #[test]
            fn empty_store() {
                block_on(c::empty_store(&$fresh));
            }
            #[test]
            fn append_and_read_back() {
                block_on(c::append_and_read_back(&$fresh));
            }
            #[test]
            fn no_stream_conflict() {
                block_on(c::no_stream_conflict(&$fresh));
            }
            #[test]
            fn exact_version() {
                block_on(c::exact_version(&$fresh));
            }
            #[test]
            fn any_version() {
                block_on(c::any_version(&$fresh));
            }
            #[test]
            fn idempotent_reappend() {
                block_on(c::idempotent_reappend(&$fresh));
            }
            #[test]
            fn idempotency_conflicts() {
                block_on(c::idempotency_conflicts(&$fresh));
            }
            #[test]
            fn empty_append() {
                block_on(c::empty_append(&$fresh));
            }
            #[test]
            fn interleaved_positions() {
                block_on(c::interleaved_positions(&$fresh));
            }
            #[test]
            fn long_reads() {
                block_on(c::long_reads(&$fresh));
            }
            #[test]
            fn concurrent_writers() {
                c::concurrent_writers(&$fresh);
            }
            #[test]
            fn agrees_with_model() {
                c::check_against_model(|| $fresh, 256);
            }
        }
    };
}
