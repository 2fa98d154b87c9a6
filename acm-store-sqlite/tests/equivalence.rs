//! Random append and read sequences give the same results on the memory store and on SQLite:
//! the same `Appended` or the same error, and the same envelopes on every read.
#![allow(clippy::unwrap_used)]

mod support;

use acm_core::testkit::conformance::{TestEvent, event, stream};
use acm_core::{Appended, Envelope, EventStore, ExpectedVersion, StoreError};
use acm_core::{GlobalPosition, Version};
use acm_store_memory::MemoryStore;
use futures_util::StreamExt;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append {
        stream: u64,
        expected: ExpectedVersion,
        len: u64,
    },
    /// Re-append batch `nth` (mod the batches so far), with its first payload altered or not,
    /// under another expectation.
    Reappend {
        nth: usize,
        altered: bool,
        expected: ExpectedVersion,
    },
    /// A batch whose second event repeats the id of an earlier stored event.
    Mixed {
        stream: u64,
        old: usize,
    },
    ReadStream {
        stream: u64,
        after: u64,
    },
    ReadAll {
        after: u64,
    },
}

fn expected() -> impl Strategy<Value = ExpectedVersion> {
    prop_oneof![
        Just(ExpectedVersion::Any),
        Just(ExpectedVersion::NoStream),
        (0u64..8).prop_map(|v| ExpectedVersion::Exact(Version(v))),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (1u64..5, expected(), 1u64..5).prop_map(|(stream, expected, len)| Op::Append { stream, expected, len }),
        2 => (any::<usize>(), any::<bool>(), expected()).prop_map(|(nth, altered, expected)| Op::Reappend { nth, altered, expected }),
        1 => (1u64..5, any::<usize>()).prop_map(|(stream, old)| Op::Mixed { stream, old }),
        1 => (1u64..5, 0u64..10).prop_map(|(stream, after)| Op::ReadStream { stream, after }),
        1 => (0u64..30).prop_map(|after| Op::ReadAll { after }),
    ]
}

/// An outcome with errors reduced to what the contract fixes.
#[derive(Debug, PartialEq)]
enum Outcome {
    Appended(Appended),
    Conflict { actual: Version },
    IdempotencyConflict(acm_core::EventId),
    Other(String),
}

fn outcome(r: Result<Appended, StoreError>) -> Outcome {
    match r {
        Ok(a) => Outcome::Appended(a),
        Err(StoreError::Conflict { actual, .. }) => Outcome::Conflict { actual },
        Err(StoreError::IdempotencyConflict { event_id }) => Outcome::IdempotencyConflict(event_id),
        Err(e) => Outcome::Other(e.to_string()),
    }
}

async fn collect(mut s: acm_core::EventStream<'_, TestEvent>) -> Vec<Envelope<TestEvent>> {
    let mut out = Vec::new();
    while let Some(e) = s.next().await {
        out.push(e.unwrap());
    }
    out
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    futures_executor::block_on(async {
        let memory = MemoryStore::<TestEvent>::new();
        let sqlite = support::temp_store::<TestEvent>();
        let mut batches = Vec::new();
        let mut next_id = 0u64;
        for op in ops {
            match op {
                Op::Append {
                    stream: n,
                    expected,
                    len,
                } => {
                    let s = stream(*n);
                    let batch: Vec<_> = (0..*len)
                        .map(|_| {
                            next_id += 1;
                            event(s, next_id, next_id * 3)
                        })
                        .collect();
                    let m = outcome(memory.append(s, *expected, batch.clone()).await);
                    let q = outcome(sqlite.append(s, *expected, batch.clone()).await);
                    prop_assert_eq!(&m, &q, "append {:?}", op);
                    if matches!(m, Outcome::Appended(_)) {
                        batches.push((s, batch));
                    }
                }
                Op::Reappend {
                    nth,
                    altered,
                    expected,
                } => {
                    if batches.is_empty() {
                        continue;
                    }
                    let (s, mut batch) = batches[nth % batches.len()].clone();
                    if *altered {
                        batch[0].payload.text.push('!');
                    }
                    let m = outcome(memory.append(s, *expected, batch.clone()).await);
                    let q = outcome(sqlite.append(s, *expected, batch).await);
                    prop_assert_eq!(m, q, "re-append {:?}", op);
                }
                Op::Mixed { stream: n, old } => {
                    if batches.is_empty() {
                        continue;
                    }
                    let s = stream(*n);
                    let (os, ob) = &batches[old % batches.len()];
                    next_id += 1;
                    let mut stale = ob[0].clone();
                    stale.correlation_id = os.0;
                    let batch = vec![event(s, next_id, 1), stale];
                    let m = outcome(memory.append(s, ExpectedVersion::Any, batch.clone()).await);
                    let q = outcome(sqlite.append(s, ExpectedVersion::Any, batch).await);
                    prop_assert_eq!(m, q, "mixed batch {:?}", op);
                }
                Op::ReadStream { stream: n, after } => {
                    let m = collect(memory.read_stream(stream(*n), Version(*after))).await;
                    let q = collect(sqlite.read_stream(stream(*n), Version(*after))).await;
                    prop_assert_eq!(m, q, "read_stream {:?}", op);
                }
                Op::ReadAll { after } => {
                    let m = collect(memory.read_all(GlobalPosition(*after))).await;
                    let q = collect(sqlite.read_all(GlobalPosition(*after))).await;
                    prop_assert_eq!(m, q, "read_all {:?}", op);
                }
            }
            prop_assert_eq!(memory.head().await.unwrap(), sqlite.head().await.unwrap());
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn memory_and_sqlite_agree(ops in proptest::collection::vec(op(), 1..40)) {
        run(&ops)?;
    }
}
