//! Crash safety with real processes. A child process (this test binary, re-executed) appends
//! continuously from several writer threads, each on its own streams, in batches of 1 to 5
//! events, and reports every acknowledged append on its stdout. The parent kills it with
//! SIGKILL at random moments, reopens the store, and checks that
//! - every acknowledged batch is there, at the position and version it was acknowledged with;
//! - no batch is partly there: each batch's events are all present, contiguous, or all absent;
//! - positions are gap-free from 1 to the head, each stream's versions from 1;
//! - what one reopen saw, every later reopen sees unchanged (the log only grows);
//! - the hash chain verifies whole.
//!
//! The next child carries on from what the store holds, so acknowledged-but-unreported and
//! committed-but-unacknowledged batches are exercised too.
// A failed unwrap is a failed test; the summary line is for whoever runs the test.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use acm_core::testkit::conformance::{TestEvent, event, event_id, stream};
use acm_core::{Envelope, EventStore, ExpectedVersion};
use acm_core::{EventId, GlobalPosition, StreamId, Version};
use acm_store_sqlite::SqliteStore;
use futures_executor::block_on;
use futures_util::StreamExt;

type Store = SqliteStore<TestEvent>;

/// Set in the child: the store it appends to.
const CHILD_DB: &str = "ACM_CRASH_CHILD_DB";
/// Overrides the parent's seed (for replaying a failure's kill schedule).
const SEED: &str = "ACM_CRASH_SEED";
/// Concurrent writers in the child (threads, each with two streams of its own).
const WRITERS: u64 = 4;
/// Kills while the child appends.
const KILLS: usize = 24;
/// Extra kills shortly after the child starts: during start-up, the first open (creating the
/// schema), or recovery of the previous kill's WAL.
const EARLY_KILLS: usize = 4;
/// The largest batch.
const MAX_BATCH: u64 = 5;
/// A child that is never killed stops by itself after this (the parent died).
const CHILD_DEADLINE: Duration = Duration::from_mins(1);

/// A small deterministic generator (xorshift64*).
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

/// What each event carries in its payload's `n`: its writer, the writer's batch number, the
/// batch's size and the event's index in the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Tag {
    writer: u64,
    batch: u64,
    size: u64,
    index: u64,
}

impl Tag {
    fn encode(self) -> u64 {
        ((self.writer * 1_000_000 + self.batch) * 8 + self.size) * 8 + self.index
    }

    fn decode(n: u64) -> Self {
        let rest = n / 64;
        Self {
            writer: rest / 1_000_000,
            batch: rest % 1_000_000,
            size: (n / 8) % 8,
            index: n % 8,
        }
    }

    /// The event's id: one per (writer, batch, index), never reused.
    fn event_id(self) -> u64 {
        (self.writer * 1_000_000 + self.batch) * 8 + self.index + 1
    }

    fn text(self) -> String {
        format!(
            "writer {} batch {} event {}/{}",
            self.writer,
            self.batch,
            self.index + 1,
            self.size
        )
    }
}

/// The stream of a writer's batch: each writer alternates between two streams of its own.
fn stream_of(writer: u64, batch: u64) -> StreamId {
    stream(1 + writer * 2 + batch % 2)
}

/// The size of a writer's batch, from 1 to `MAX_BATCH` (the same in every child).
fn batch_size(writer: u64, batch: u64) -> u64 {
    let mut rng = Rng((writer << 32 | batch).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    rng.next();
    rng.between(1, MAX_BATCH)
}

fn read_all(store: &Store) -> Vec<Envelope<TestEvent>> {
    block_on(
        store
            .read_all(GlobalPosition::START)
            .map(Result::unwrap)
            .collect::<Vec<_>>(),
    )
}

/// The child: appends until killed. Does nothing in a normal test run.
#[test]
#[ignore = "run as a child process by acknowledged_appends_survive_sigkill"]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let store = Store::open(&path).unwrap();
    // Carry on from what the store holds, acknowledged or not.
    let mut next_batch = vec![0u64; usize::try_from(WRITERS).unwrap()];
    let mut versions: HashMap<StreamId, u64> = HashMap::new();
    for e in read_all(&store) {
        let tag = Tag::decode(e.payload.n);
        let w = usize::try_from(tag.writer).unwrap();
        next_batch[w] = next_batch[w].max(tag.batch + 1);
        versions.insert(e.stream_id, e.version.0);
    }
    let head = block_on(store.head()).unwrap().0;
    {
        let mut out = std::io::stdout().lock();
        // On a line of its own: the harness's "test crash_child ... " has no newline yet.
        writeln!(out, "\nREADY {head}").unwrap();
        out.flush().unwrap();
    }
    let started = Instant::now();
    let threads: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = store.clone();
            let mut batch = next_batch[usize::try_from(writer).unwrap()];
            let mut versions = [
                versions.get(&stream_of(writer, 0)).copied().unwrap_or(0),
                versions.get(&stream_of(writer, 1)).copied().unwrap_or(0),
            ];
            std::thread::spawn(move || {
                while started.elapsed() < CHILD_DEADLINE {
                    let s = stream_of(writer, batch);
                    let size = batch_size(writer, batch);
                    let version = &mut versions[usize::try_from(batch % 2).unwrap()];
                    let events = (0..size)
                        .map(|index| {
                            let tag = Tag {
                                writer,
                                batch,
                                size,
                                index,
                            };
                            let mut e = event(s, tag.event_id(), tag.encode());
                            e.payload.text = tag.text();
                            e
                        })
                        .collect();
                    let appended = match block_on(store.append(
                        s,
                        ExpectedVersion::Exact(Version(*version)),
                        events,
                    )) {
                        Ok(a) => a,
                        Err(e) => {
                            eprintln!("writer {writer} batch {batch}: append failed: {e:?}");
                            std::process::exit(2);
                        }
                    };
                    // Reported only now that it is acknowledged; one write per line.
                    let line = format!(
                        "ACK {writer} {batch} {size} {} {} {} {} .\n",
                        appended.first_version.0,
                        appended.first_position.0,
                        appended.count,
                        appended.replayed,
                    );
                    let mut out = std::io::stdout().lock();
                    if out
                        .write_all(line.as_bytes())
                        .and_then(|()| out.flush())
                        .is_err()
                    {
                        // The parent is gone.
                        std::process::exit(3);
                    }
                    *version += size;
                    batch += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// An acknowledged append, as the child reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ack {
    size: u64,
    first_version: u64,
    first_position: u64,
}

/// Parses an `ACK` line; `None` for any other line (the test harness prints its own).
fn parse_ack(line: &str) -> Option<((u64, u64), Ack)> {
    let rest = line.strip_prefix("ACK ")?;
    if !rest.ends_with(" .") {
        // Cut short by the kill (a line is one write, so this should not happen; it would
        // only mean one acknowledgement less to check).
        return None;
    }
    let fields: Vec<&str> = rest.split(' ').collect();
    assert!(
        fields.len() == 8 && fields[7] == ".",
        "malformed ack line {line:?}"
    );
    let num = |i: usize| fields[i].parse::<u64>().unwrap();
    assert_eq!(num(5), num(2), "count differs from the batch size: {line}");
    assert_eq!(fields[6], "false", "a fresh batch was replayed: {line}");
    Some((
        (num(0), num(1)),
        Ack {
            size: num(2),
            first_version: num(3),
            first_position: num(4),
        },
    ))
}

/// A child process, killed (if still running) when dropped: a failing parent leaves none.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one kill left: lines the child printed, and how it ended.
struct Killed {
    acks: Vec<((u64, u64), Ack)>,
    ready: bool,
}

/// Runs a child on `path`, kills it `delay` after it is ready (or after it is spawned, when
/// `early`), and returns its acknowledgements.
fn run_and_kill(path: &Path, delay: Duration, early: bool) -> Killed {
    let mut child = ChildGuard(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let spawned = Instant::now();
    let stdout = child.0.stdout.take().unwrap();
    let mut stderr = child.0.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    let out_reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut ready = false;
    let mut early_lines = Vec::new();
    if early {
        std::thread::sleep(delay.saturating_sub(spawned.elapsed()));
    } else {
        let wait_until = Instant::now() + Duration::from_secs(30);
        while !ready {
            let left = wait_until.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.starts_with("READY") => ready = true,
                Ok(line) => early_lines.push(line),
                Err(_) => break,
            }
        }
        // The kill comes `delay` after the first acknowledgement, not after READY: on two
        // loaded cores a first commit can take longer than the shortest delay, and a round
        // that killed the child before it appended anything would prove nothing.
        while ready && !early_lines.iter().any(|l| parse_ack(l).is_some()) {
            let left = wait_until.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => early_lines.push(line),
                Err(_) => break,
            }
        }
        if ready {
            std::thread::sleep(delay);
        }
    }
    // The child never stops by itself: it must still be running now.
    let exited = child.0.try_wait().unwrap();
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    out_reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    assert!(
        exited.is_none() && status.signal() == Some(9) && (early || ready),
        "the child ended by itself or never got ready ({status}; ready {ready}); \
         stdout before READY: {:?}\nstderr:\n{stderr}",
        &early_lines[..early_lines.len().min(10)]
    );
    let all: Vec<String> = early_lines.into_iter().chain(lines.try_iter()).collect();
    ready |= all.iter().any(|l| l.starts_with("READY"));
    Killed {
        acks: all.iter().filter_map(|l| parse_ack(l)).collect(),
        ready,
    }
}

/// Reopens the store after a kill and checks it against everything acknowledged so far and
/// against what the previous check saw; returns the log's event ids in position order.
fn check(
    path: &Path,
    acked: &BTreeMap<(u64, u64), Ack>,
    seen: &[EventId],
    context: &str,
) -> Vec<EventId> {
    let store = Store::open(path).unwrap();
    let head = block_on(store.head()).unwrap().0;
    let events = read_all(&store);

    // Gap-free positions 1..=head.
    let positions: Vec<u64> = events.iter().map(|e| e.position.0).collect();
    assert_eq!(
        positions,
        (1..=head).collect::<Vec<_>>(),
        "{context}: positions are not 1..={head}"
    );

    // What an earlier reopen saw is still there, unchanged.
    let ids: Vec<EventId> = events.iter().map(|e| e.event_id).collect();
    assert!(
        ids.len() >= seen.len() && ids[..seen.len()] == *seen,
        "{context}: the log lost or changed events seen by an earlier reopen ({} then, {} now)",
        seen.len(),
        ids.len()
    );

    // Each event is the one its tag names, in the stream its batch goes to; its stream's
    // versions run from 1 without gaps.
    let mut batches: BTreeMap<(u64, u64), Vec<&Envelope<TestEvent>>> = BTreeMap::new();
    let mut stream_versions: HashMap<StreamId, u64> = HashMap::new();
    for e in &events {
        let tag = Tag::decode(e.payload.n);
        assert!(
            tag.writer < WRITERS && tag.index < tag.size && tag.size <= MAX_BATCH,
            "{context}: event at {} has a bad tag {tag:?}",
            e.position.0
        );
        assert_eq!(tag.size, batch_size(tag.writer, tag.batch), "{context}");
        assert_eq!(e.event_id, event_id(tag.event_id()), "{context}: {tag:?}");
        assert_eq!(e.stream_id, stream_of(tag.writer, tag.batch), "{context}");
        assert_eq!(e.payload.text, tag.text(), "{context}");
        let v = stream_versions.entry(e.stream_id).or_default();
        *v += 1;
        assert_eq!(
            e.version.0, *v,
            "{context}: event at {} breaks its stream's versions",
            e.position.0
        );
        batches.entry((tag.writer, tag.batch)).or_default().push(e);
    }

    // No partial batch: all of a batch's events, contiguous in position and version.
    for (&(writer, batch), evs) in &batches {
        let size = Tag::decode(evs[0].payload.n).size;
        assert_eq!(
            evs.len() as u64,
            size,
            "{context}: writer {writer} batch {batch} is partly stored"
        );
        for (i, e) in evs.iter().enumerate() {
            let i = i as u64;
            assert_eq!(Tag::decode(e.payload.n).index, i, "{context}");
            assert_eq!(e.position.0, evs[0].position.0 + i, "{context}");
            assert_eq!(e.version.0, evs[0].version.0 + i, "{context}");
        }
    }

    // Each writer's batches run from 0 without a hole (it waits for each before the next).
    for writer in 0..WRITERS {
        let numbers: Vec<u64> = batches
            .range((writer, 0)..(writer + 1, 0))
            .map(|(&(_, b), _)| b)
            .collect();
        assert_eq!(
            numbers,
            (0..numbers.len() as u64).collect::<Vec<_>>(),
            "{context}: writer {writer}'s batches have a hole"
        );
    }

    // Every acknowledged batch is there, where it was acknowledged.
    for (&(writer, batch), ack) in acked {
        let Some(evs) = batches.get(&(writer, batch)) else {
            panic!("{context}: acknowledged writer {writer} batch {batch} {ack:?} is lost");
        };
        assert_eq!(
            (evs.len() as u64, evs[0].version.0, evs[0].position.0),
            (ack.size, ack.first_version, ack.first_position),
            "{context}: writer {writer} batch {batch} is not where it was acknowledged"
        );
    }

    let report = block_on(store.verify()).unwrap();
    assert!(report.is_intact(), "{context}: {report:?}");
    assert_eq!(report.checked, head, "{context}");
    // Closed, not dropped: the next child opens the file at once.
    block_on(store.close()).unwrap();
    ids
}

/// See the module documentation.
#[test]
fn acknowledged_appends_survive_sigkill() {
    let seed = std::env::var(SEED)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00AC_C0DE_5EED_u64);
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acm.db");
    let started = Instant::now();

    // Mid-append kills, with the early ones spread among them (the first round is always
    // early: it may land in the creation of the schema).
    let mut rounds = vec![false; KILLS];
    for i in 0..EARLY_KILLS {
        let at = if i == 0 {
            0
        } else {
            usize::try_from(rng.between(0, rounds.len() as u64)).unwrap()
        };
        rounds.insert(at, true);
    }

    let mut acked: BTreeMap<(u64, u64), Ack> = BTreeMap::new();
    let mut log: Vec<EventId> = Vec::new();
    let mut unacknowledged_commits = 0;
    for (round, early) in rounds.into_iter().enumerate() {
        let delay = if early {
            Duration::from_millis(rng.between(0, 40))
        } else {
            Duration::from_millis(rng.between(5, 150))
        };
        let context = format!("round {round} (seed {seed}, early {early}, delay {delay:?})");
        let killed = run_and_kill(&path, delay, early);
        for (key, ack) in killed.acks {
            assert!(
                acked.insert(key, ack).is_none(),
                "{context}: batch {key:?} acknowledged twice"
            );
        }
        let before = log.len();
        log = check(&path, &acked, &log, &context);
        let acked_events: u64 = acked.values().map(|a| a.size).sum();
        unacknowledged_commits = log.len() as u64 - acked_events;
        assert!(
            early || log.len() > before,
            "{context}: the child appended nothing (ready {})",
            killed.ready
        );
    }
    assert!(
        acked.len() >= KILLS,
        "too few acknowledged appends to mean anything: {}",
        acked.len()
    );
    eprintln!(
        "crash: {} kills, {} acknowledged batches, {} events ({} committed but never \
         acknowledged), {:?}",
        KILLS + EARLY_KILLS,
        acked.len(),
        log.len(),
        unacknowledged_commits,
        started.elapsed()
    );
}
