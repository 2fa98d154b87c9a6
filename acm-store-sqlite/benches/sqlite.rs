//! Benchmarks of the `SQLite` event store, each beside a baseline measured in the same run, on
//! the same rows and pragmas.
//!
//! Run: `cargo bench -p acm-store-sqlite` (about 80 s after the build on 2 cores).
//! `ACM_BENCH_QUICK=1` shrinks every size about tenfold for a smoke run; arguments
//! `latency`, `concurrent`, `replay`, `pending` run only those sections
//! (`cargo bench -p acm-store-sqlite -- replay`). The databases live in a temporary directory
//! under `ACM_BENCH_DIR` (default `target/bench-tmp`, on the real disk: on a tmpfs an fsync
//! costs nothing and the figures mean nothing), removed at the end.
//!
//! 1. **latency**: one caller appends one event at a time, each `append` awaited before the
//!    next; p50/p99 beside one fsync of a small file in the same directory (write 100 bytes,
//!    `File::sync_all`) and beside raw rusqlite, one `BEGIN IMMEDIATE … COMMIT` per insert.
//! 2. **concurrent**: W tasks on a tokio multi-thread runtime, each appending one-event
//!    batches to its own stream (`NoStream`, then `Exact`), for a fixed total of events;
//!    beside raw rusqlite inserting the same rows in transactions of W rows each (an ideal
//!    group commit of W appenders: one fsync per W events).
//! 3. **replay**: `read_all(GlobalPosition::START)` of a 1,000,000-event store, fully
//!    consumed; beside bare `serde_json::from_slice` of the same payloads held in memory (and,
//!    for information, a raw rusqlite scan of the same `SELECT` decoding each payload).
//! 4. **pending**: `pending_for(user)` on two ACM stores (`open_acm`) holding 10,000 and
//!    1,000,000 requests pending at the partner side (`Stored` then `Verified`), almost all
//!    for other users, the same 10 for the measured user, the two stores' queries taking turns
//!    in blocks of 50; p50 beside the same `SELECT` on a rusqlite connection of its own.
//!
//! Raw baselines insert rows prepared before the clock starts (payload JSON encoded, a dummy
//! 32-byte hash), into a database made from the store's own schema file with the store's
//! pragmas (WAL, `synchronous=FULL`), with the store's own `INSERT` statement. Our figures
//! include everything `append` does: JSON encoding on the caller's task, the channel to the
//! writer thread, the version check, the savepoint, the SHA-256 link, the chain head update.
//! The test payload is a `TestEvent` whose JSON is about the size of an ACM `Submitted` or
//! `Stored` event (about 380 bytes).
//!
//! The raw `pending_for` baseline prepares its statement once and keeps it. Run through
//! rusqlite's `prepare_cached`, as the store runs its statements, the same `SELECT` is
//! re-prepared by `SQLite` on every call: rusqlite clears the bindings when a statement goes
//! back to its cache, and `SQLite` expires on `sqlite3_clear_bindings` every statement whose
//! plan may depend on a bound value (here: `column = ?1` on a non-unique index). Section 4
//! prints that variant too.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::too_many_lines,
    clippy::many_single_char_names
)]

use std::fs::File;
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acm_core::testkit::conformance::{TestEvent, event, event_id, stream};
use acm_core::{AcmRequest, AcmRequestBody, Target};
use acm_core::{AcmStore, Event};
use acm_core::{Actor, CausationId, EventStore, ExpectedVersion, NewEvent};
use acm_core::{GlobalPosition, GroupId, McServiceId, MessageId, RequestId, SystemId, Version};
use acm_store_sqlite::SqliteStore;
use futures_util::StreamExt;
use rusqlite::{CachedStatement, Connection, OpenFlags, params};
use tokio::runtime::Runtime;

const SCHEMA: &str = include_str!("../src/schema/0001_events.sql");
const INSERT_EVENT: &str = include_str!("../src/writer/insert_event.sql");
const READ_ALL: &str = include_str!("../src/store/read_all.sql");
const PENDING_FOR: &str = include_str!("../src/acm/pending_for.sql");

/// Text of every test event (with its number appended): its JSON is about 380 bytes.
const FILLER: &str = "Interconnection group identity provision of sip:tac-1@mc-a.example and \
    sip:tac-2@mc-a.example from sip:alice@mc-a.example to sip:bob@mc-b.example, forwarded by \
    mc-a.example, stored by mc-b.example and pending for its recipient until answered; \
    lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt \
    ut labore et dolore";

// ---------------------------------------------------------------------------------- sizes

struct Sizes {
    quick: bool,
    /// Samples per latency figure.
    latency: usize,
    /// Events per concurrency figure.
    concurrent: usize,
    /// Events of the replayed store.
    replay: u64,
    /// Requests of the two pending-items stores.
    pending: [u64; 2],
}

impl Sizes {
    fn from_env() -> Self {
        let quick = std::env::var("ACM_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        if quick {
            Self {
                quick,
                latency: 400,
                concurrent: 1_000,
                replay: 100_000,
                pending: [10_000, 100_000],
            }
        } else {
            Self {
                quick,
                latency: 3_000,
                concurrent: 10_000,
                replay: 1_000_000,
                pending: [10_000, 1_000_000],
            }
        }
    }
}

// -------------------------------------------------------------------------------- helpers

/// One line of the summary.
struct Line {
    benchmark: String,
    ours: String,
    baseline: String,
    ratio: String,
    target: String,
}

fn line(benchmark: &str, ours: String, baseline: String, ratio: String, target: String) -> Line {
    Line {
        benchmark: benchmark.to_owned(),
        ours,
        baseline,
        ratio,
        target,
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M", r / 1e6)
    } else {
        format!("{:.1} k", r / 1e3)
    }
}

/// The `p`-quantile (0..=1) of `samples`, sorting them.
fn quantile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let i = ((samples.len() - 1) as f64 * p).round() as usize;
    samples[i]
}

fn median(mut v: Vec<Duration>) -> Duration {
    quantile(&mut v, 0.5)
}

fn expected(version: u64) -> ExpectedVersion {
    if version == 0 {
        ExpectedVersion::NoStream
    } else {
        ExpectedVersion::Exact(Version(version))
    }
}

fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().unwrap()
}

/// The file system type of the mount holding `dir` (from `/proc/self/mountinfo`).
fn fs_type(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return "unknown".to_owned();
    };
    info.lines()
        .filter_map(|l| {
            let mut fields = l.split(' ');
            let mount_point = fields.nth(4)?;
            let fs = l.split(" - ").nth(1)?.split(' ').next()?;
            dir.starts_with(mount_point)
                .then(|| (mount_point.len(), fs.to_owned()))
        })
        .max()
        .map_or_else(|| "unknown".to_owned(), |(_, fs)| fs)
}

// ------------------------------------------------------------------------ test events, rows

/// Event number `id` of stream `s`.
fn test_event(s: acm_core::StreamId, id: u64) -> NewEvent<TestEvent> {
    let mut e = event(s, id, id);
    e.payload.text = format!("{FILLER} #{id}");
    e
}

/// The columns the store writes for an event, prepared for a raw insert.
struct RawRow {
    position: i64,
    event_id: [u8; 16],
    stream_id: [u8; 16],
    version: i64,
    recorded_at: i64,
    correlation_id: [u8; 16],
    actor_id: String,
    payload: Vec<u8>,
}

fn raw_row(position: u64, version: u64, e: &NewEvent<TestEvent>) -> RawRow {
    let Actor::User(user) = &e.actor else {
        unreachable!("test events are recorded by a user")
    };
    RawRow {
        position: position as i64,
        event_id: *e.event_id.as_uuid().as_bytes(),
        // The test events' correlation id is their stream's request id.
        stream_id: *e.correlation_id.as_uuid().as_bytes(),
        version: version as i64,
        recorded_at: e.recorded_at.timestamp_nanos_opt().unwrap(),
        correlation_id: *e.correlation_id.as_uuid().as_bytes(),
        actor_id: user.as_str().to_owned(),
        payload: serde_json::to_vec(&e.payload).unwrap(),
    }
}

/// A fresh database with the store's schema and pragmas.
fn raw_db(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .unwrap();
    assert!(mode.eq_ignore_ascii_case("wal"));
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    conn
}

fn raw_insert(stmt: &mut CachedStatement<'_>, r: &RawRow) {
    let mut hash = [0u8; 32];
    hash[..8].copy_from_slice(&r.position.to_be_bytes());
    stmt.execute(params![
        r.position,
        &r.event_id[..],
        &r.stream_id[..],
        r.version,
        r.recorded_at,
        &r.correlation_id[..],
        None::<&[u8]>,
        "user",
        r.actor_id,
        "test_event",
        1,
        r.payload,
        &hash[..],
    ])
    .unwrap();
}

/// One transaction inserting `rows`.
fn raw_transaction(conn: &Connection, rows: &[RawRow]) {
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    {
        let mut stmt = conn.prepare_cached(INSERT_EVENT).unwrap();
        for r in rows {
            raw_insert(&mut stmt, r);
        }
    }
    conn.execute_batch("COMMIT").unwrap();
}

// ------------------------------------------------------------------------------ 1. latency

fn latency(rt: &Runtime, dir: &Path, samples: usize, out: &mut Vec<Line>) {
    const WARM_UP: usize = 30;
    const ROUNDS: usize = 5;
    println!("\n## 1. durable single append latency ({samples} samples each, interleaved)");
    let store = SqliteStore::<TestEvent>::open(dir.join("latency-ours.db")).unwrap();
    let raw = raw_db(&dir.join("latency-raw.db"));
    let mut file = File::create(dir.join("fsync.bin")).unwrap();
    let s = stream(1);
    let (mut ours_v, mut raw_v) = (0u64, 0u64);
    let (mut ours, mut raws, mut fsyncs) = (Vec::new(), Vec::new(), Vec::new());
    let per_round = samples / ROUNDS;
    for round in 0..=ROUNDS {
        // Round 0 warms each up and is not recorded.
        let n = if round == 0 { WARM_UP } else { per_round };
        let record = round > 0;
        for _ in 0..n {
            let t = Instant::now();
            file.write_all(&[b'x'; 100]).unwrap();
            file.sync_all().unwrap();
            let d = t.elapsed();
            if record {
                fsyncs.push(d);
            }
        }
        for _ in 0..n {
            let row = raw_row(raw_v + 1, raw_v + 1, &test_event(s, raw_v + 1));
            let t = Instant::now();
            raw_transaction(&raw, std::slice::from_ref(&row));
            let d = t.elapsed();
            raw_v += 1;
            if record {
                raws.push(d);
            }
        }
        rt.block_on(async {
            for _ in 0..n {
                let e = test_event(s, ours_v + 1);
                let t = Instant::now();
                store.append(s, expected(ours_v), vec![e]).await.unwrap();
                let d = t.elapsed();
                ours_v += 1;
                if record {
                    ours.push(d);
                }
            }
        });
    }
    let f50 = quantile(&mut fsyncs, 0.5);
    let f99 = quantile(&mut fsyncs, 0.99);
    let r50 = quantile(&mut raws, 0.5);
    let r99 = quantile(&mut raws, 0.99);
    let o50 = quantile(&mut ours, 0.5);
    let o99 = quantile(&mut ours, 0.99);
    println!("| | p50 | p99 |");
    println!("|---|---|---|");
    println!(
        "| fsync (write 100 B + sync_all) | {} | {} |",
        us(f50),
        us(f99)
    );
    println!(
        "| raw rusqlite, 1 insert per transaction | {} | {} |",
        us(r50),
        us(r99)
    );
    println!(
        "| SqliteStore::append, 1 event | {} | {} |",
        us(o50),
        us(o99)
    );
    let vs_fsync = o50.as_secs_f64() / f50.as_secs_f64();
    let vs_raw = o50.as_secs_f64() / r50.as_secs_f64();
    println!(
        "ours / fsync: p50 {vs_fsync:.2}×, p99 {:.2}×; ours / raw: p50 {vs_raw:.2}×, p99 {:.2}×",
        o99.as_secs_f64() / f99.as_secs_f64(),
        o99.as_secs_f64() / r99.as_secs_f64(),
    );
    out.push(line(
        "1. append latency p50 (vs fsync)",
        us(o50),
        format!("fsync {}", us(f50)),
        format!("{vs_fsync:.2}×"),
        format!("≤ 3× fsync: {}", verdict(vs_fsync <= 3.0)),
    ));
    out.push(line(
        "1. append latency p99 (vs fsync)",
        us(o99),
        format!("fsync {}", us(f99)),
        format!("{:.2}×", o99.as_secs_f64() / f99.as_secs_f64()),
        "—".to_owned(),
    ));
    out.push(line(
        "1. append latency p50 (vs raw)",
        us(o50),
        format!("raw 1 insert/tx {}", us(r50)),
        format!("{vs_raw:.2}×"),
        "—".to_owned(),
    ));
}

// --------------------------------------------------------------------------- 2. concurrent

async fn ours_concurrent(store: &SqliteStore<TestEvent>, writers: u64, per: u64) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let s = stream(w + 1);
                for v in 0..per {
                    let e = test_event(s, w * per + v + 1);
                    store.append(s, expected(v), vec![e]).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

fn raw_concurrent(path: &Path, writers: u64, per: u64) -> Duration {
    let conn = raw_db(path);
    // Transaction v holds event v of each writer, as a group commit of W appenders would.
    let mut position = 0;
    let transactions: Vec<Vec<RawRow>> = (0..per)
        .map(|v| {
            (0..writers)
                .map(|w| {
                    position += 1;
                    raw_row(position, v + 1, &test_event(stream(w + 1), w * per + v + 1))
                })
                .collect()
        })
        .collect();
    let start = Instant::now();
    for rows in &transactions {
        raw_transaction(&conn, rows);
    }
    start.elapsed()
}

fn concurrent(rt: &Runtime, dir: &Path, total: u64, out: &mut Vec<Line>) {
    println!("\n## 2. concurrent appends (about {total} events per figure)");
    println!(
        "| writers | events | ours, events/s | raw, W rows per transaction, events/s | ours / raw |"
    );
    println!("|---|---|---|---|---|");
    for writers in [1u64, 8, 64] {
        let per = total.div_ceil(writers);
        let events = per * writers;
        let store = SqliteStore::<TestEvent>::open(dir.join(format!("conc-{writers}.db"))).unwrap();
        let ours = rt.block_on(ours_concurrent(&store, writers, per));
        drop(store);
        let raw = raw_concurrent(&dir.join(format!("conc-raw-{writers}.db")), writers, per);
        let (o, r) = (per_sec(events, ours), per_sec(events, raw));
        let ratio = o / r;
        println!(
            "| {writers} | {events} | {} | {} | {:.0} % |",
            rate(o),
            rate(r),
            ratio * 100.0
        );
        out.push(line(
            &format!("2. concurrent appends, {writers} writers"),
            format!("{} events/s", rate(o)),
            format!("raw, {writers} rows/tx: {} events/s", rate(r)),
            format!("{:.0} %", ratio * 100.0),
            format!("≥ 50 % of raw: {}", verdict(ratio >= 0.5)),
        ));
    }
}

// ------------------------------------------------------------------------------- 3. replay

const REPLAY_BATCH: u64 = 1_000;

/// Batch `b` of the replayed store: events `b * 1000 + 1 ..= b * 1000 + 1000` of stream `b + 1`.
fn replay_batch(b: u64) -> Vec<NewEvent<TestEvent>> {
    let s = stream(b + 1);
    (1..=REPLAY_BATCH)
        .map(|i| test_event(s, b * REPLAY_BATCH + i))
        .collect()
}

fn replay(rt: &Runtime, dir: &Path, events: u64, out: &mut Vec<Line>) {
    const PASSES: usize = 3;
    const BUILDERS: u64 = 4;
    println!("\n## 3. replay of {events} events (median of {PASSES} passes)");
    let path = dir.join("replay.db");
    let store = SqliteStore::<TestEvent>::open(&path).unwrap();
    let batches = events / REPLAY_BATCH;
    let start = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..BUILDERS)
            .map(|t| {
                let store = store.clone();
                tokio::spawn(async move {
                    for b in (t..batches).step_by(BUILDERS as usize) {
                        store
                            .append(stream(b + 1), ExpectedVersion::NoStream, replay_batch(b))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let built = start.elapsed();
    println!(
        "built in {:.1} s ({} events/s, batches of {REPLAY_BATCH}, {BUILDERS} appenders)",
        built.as_secs_f64(),
        rate(per_sec(events, built)),
    );

    let mut ours = Vec::new();
    for _ in 0..PASSES {
        let start = Instant::now();
        let n = rt.block_on(async {
            let mut all = store.read_all(GlobalPosition::START);
            let mut n = 0u64;
            while let Some(e) = all.next().await {
                black_box(e.unwrap());
                n += 1;
            }
            n
        });
        ours.push(start.elapsed());
        assert_eq!(n, events);
    }
    let ours = median(ours);

    // The same payloads, as the store encoded them, in one buffer.
    let mut buffer = Vec::new();
    let mut ends = Vec::with_capacity(events as usize);
    for b in 0..batches {
        for e in replay_batch(b) {
            serde_json::to_writer(&mut buffer, &e.payload).unwrap();
            ends.push(buffer.len());
        }
    }
    let mut serde = Vec::new();
    for _ in 0..PASSES {
        let start = Instant::now();
        let mut from = 0;
        for &end in &ends {
            black_box(serde_json::from_slice::<TestEvent>(&buffer[from..end]).unwrap());
            from = end;
        }
        serde.push(start.elapsed());
    }
    let serde = median(serde);
    drop(buffer);

    // For information: the same SELECT on a plain connection, each payload decoded.
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut scan = Vec::new();
    for _ in 0..PASSES {
        let start = Instant::now();
        let mut stmt = conn.prepare_cached(READ_ALL).unwrap();
        let mut rows = stmt.query(params![0, i64::MAX]).unwrap();
        let mut n = 0u64;
        while let Some(row) = rows.next().unwrap() {
            for i in 0..11 {
                black_box(row.get_ref(i).unwrap());
            }
            let payload = row.get_ref(11).unwrap().as_blob().unwrap();
            black_box(serde_json::from_slice::<TestEvent>(payload).unwrap());
            n += 1;
        }
        scan.push(start.elapsed());
        assert_eq!(n, events);
    }
    let scan = median(scan);

    let (o, s, r) = (
        per_sec(events, ours),
        per_sec(events, serde),
        per_sec(events, scan),
    );
    println!("| | events/s | time |");
    println!("|---|---|---|");
    println!(
        "| read_all, fully consumed | {} | {:.2} s |",
        rate(o),
        ours.as_secs_f64()
    );
    println!(
        "| serde_json::from_slice of the payloads in memory | {} | {:.2} s |",
        rate(s),
        serde.as_secs_f64()
    );
    println!(
        "| raw rusqlite scan + serde_json (information) | {} | {:.2} s |",
        rate(r),
        scan.as_secs_f64()
    );
    println!(
        "ours / serde: {:.0} %; ours / raw scan: {:.0} %",
        o / s * 100.0,
        o / r * 100.0
    );
    out.push(line(
        &format!("3. replay of {events} events"),
        format!("{} events/s", rate(o)),
        format!("serde_json only: {}/s; raw scan: {}/s", rate(s), rate(r)),
        format!("{:.0} % / {:.0} %", o / s * 100.0, o / r * 100.0),
        format!("≥ 500 k/s: {}", verdict(o >= 500_000.0)),
    ));
}

// ------------------------------------------------------------------------------ 4. pending

/// The measured user.
fn measured() -> McServiceId {
    id("sip:measured@mc-b.example")
}

/// Other users' ids: requests are spread over this many of them.
const OTHER_USERS: u64 = 50_000;

/// Fixed parts of the partner-side requests.
struct AcmFixture {
    a: SystemId,
    b: SystemId,
    alice: McServiceId,
    groups: Vec<GroupId>,
    /// Requests `1..=small` whose number is `≡ step / 2 (mod step)` are the measured user's.
    small: u64,
}

impl AcmFixture {
    fn new(small: u64) -> Self {
        Self {
            a: id("mc-a.example"),
            b: id("mc-b.example"),
            alice: id("sip:alice@mc-a.example"),
            groups: vec![id("sip:tac-1@mc-a.example"), id("sip:tac-2@mc-a.example")],
            small,
        }
    }

    fn is_measured(&self, n: u64) -> bool {
        let step = self.small / 10;
        n <= self.small && n % step == step / 2
    }

    fn recipient(&self, n: u64) -> McServiceId {
        if self.is_measured(n) {
            measured()
        } else {
            id(&format!("sip:user-{}@mc-b.example", n % OTHER_USERS))
        }
    }

    /// Request `n` as the partner stores it: `Stored`, then `Verified` for one recipient.
    fn request(&self, n: u64) -> Vec<NewEvent<Event>> {
        let s = stream(n);
        let mut random = [0x33u8; 10];
        random[2..].copy_from_slice(&n.to_be_bytes());
        let message_id =
            MessageId::from_uuid(uuid::Builder::from_unix_timestamp_millis(n, &random).into_uuid())
                .unwrap();
        let recipient = self.recipient(n);
        let stored = event(s, 2 * n, 0).recorded_at;
        let request = Arc::new(AcmRequest {
            request_id: s.0,
            requester: self.alice.clone(),
            requester_alias: None,
            partner: self.b.clone(),
            target: Target::User(recipient.clone()),
            body: AcmRequestBody::provision(self.groups.iter().cloned()),
        });
        vec![
            NewEvent {
                event_id: event_id(2 * n),
                correlation_id: s.0,
                causation_id: Some(CausationId::from(message_id)),
                actor: Actor::System(self.a.clone()),
                recorded_at: stored,
                payload: Event::Stored {
                    from: self.a.clone(),
                    message_id,
                    request,
                    at: stored,
                },
            },
            NewEvent {
                event_id: event_id(2 * n + 1),
                correlation_id: s.0,
                causation_id: Some(CausationId::from(event_id(2 * n))),
                actor: Actor::System(self.b.clone()),
                recorded_at: stored,
                payload: Event::Verified {
                    recipients: Arc::from([recipient]),
                    user_results: Arc::from([]),
                },
            },
        ]
    }
}

/// Appends requests `from..=to`, one append per request, from many concurrent tasks.
fn build_requests(
    rt: &Runtime,
    store: &SqliteStore<Event>,
    fixture: &Arc<AcmFixture>,
    from: u64,
    to: u64,
) -> Duration {
    const BUILDERS: u64 = 256;
    let start = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..BUILDERS)
            .map(|t| {
                let store = store.clone();
                let fixture = fixture.clone();
                tokio::spawn(async move {
                    for n in (from + t..=to).step_by(BUILDERS as usize) {
                        store
                            .append(stream(n), ExpectedVersion::NoStream, fixture.request(n))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    start.elapsed()
}

/// A thread waiting on a job queue, as a store's reader thread does: measures the round trip
/// `pending_for` pays on top of its query (a job sent through `std::sync::mpsc` to a parked
/// thread, the answer sent back through a tokio oneshot channel).
struct Hop {
    jobs: Option<std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Hop {
    /// `threads` threads sharing one job queue behind a mutex, as the store's readers do.
    fn start(threads: usize) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let threads = (0..threads)
            .map(|_| {
                let rx = rx.clone();
                std::thread::spawn(move || {
                    loop {
                        let job = rx.lock().unwrap().recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        Self {
            jobs: Some(tx),
            threads,
        }
    }

    async fn round_trip(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Box<dyn FnOnce() + Send> = Box::new(move || {
            let _ = tx.send(());
        });
        self.jobs.as_ref().unwrap().send(job).unwrap();
        rx.await.unwrap();
    }
}

impl Drop for Hop {
    fn drop(&mut self) {
        self.jobs.take();
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

/// The raw baseline of `pending_for`: the same `SELECT`, prepared once on a connection of its
/// own and kept (see the module notes on `prepare_cached`).
fn raw_pending(stmt: &mut rusqlite::Statement<'_>, user: &McServiceId) -> Vec<[u8; 16]> {
    let mut rows = stmt.query([user.as_str()]).unwrap();
    let mut ids = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        ids.push(row.get::<_, [u8; 16]>(0).unwrap());
    }
    ids
}

fn pending(rt: &Runtime, dir: &Path, sizes: [u64; 2], out: &mut Vec<Line>) {
    const QUERIES: usize = 3_000;
    const BLOCK: usize = 50;
    println!(
        "\n## 4. pending items of one user ({} and {} stored requests)",
        sizes[0], sizes[1]
    );
    let fixture = Arc::new(AcmFixture::new(sizes[0]));
    let sample = fixture.request(1);
    println!(
        "each request: `Stored` ({} B of JSON) then `Verified` ({} B), one append per request \
         from 256 concurrent tasks; recipients spread over {OTHER_USERS} other users, 10 \
         requests for the measured user",
        serde_json::to_vec(&sample[0].payload).unwrap().len(),
        serde_json::to_vec(&sample[1].payload).unwrap().len(),
    );
    let want: Vec<RequestId> = (1..=sizes[0])
        .filter(|n| fixture.is_measured(*n))
        .map(|n| stream(n).0)
        .collect();
    let user = measured();
    let mut stores = Vec::new();
    for requests in sizes {
        let path = dir.join(format!("pending-{requests}.db"));
        let store = SqliteStore::<Event>::open_acm(&path).unwrap();
        let build = build_requests(rt, store.as_store(), &fixture, 1, requests);
        println!(
            "built {requests} requests in {:.1} s ({} requests/s, {} events/s)",
            build.as_secs_f64(),
            rate(per_sec(requests, build)),
            rate(per_sec(2 * requests, build)),
        );
        let got = rt.block_on(store.pending_for(&user)).unwrap();
        assert_eq!(got, want, "the measured user's pending requests");
        let other = rt
            .block_on(store.pending_for(&fixture.recipient(1)))
            .unwrap();
        assert!(other.contains(&stream(1).0));
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        stores.push((requests, store, conn));
    }
    let mut stmts: Vec<_> = stores
        .iter()
        .map(|(_, _, conn)| conn.prepare(PENDING_FOR).unwrap())
        .collect();
    let mut ours = [Vec::new(), Vec::new()];
    let mut raws = [Vec::new(), Vec::new()];
    let mut cached = [Vec::new(), Vec::new()];
    let hops = [Hop::start(1), Hop::start(2)];
    let mut hop_times = [Vec::new(), Vec::new()];
    // Blocks of BLOCK queries of one kind, the kinds taking turns: each query follows one of
    // its own kind (a steady stream of requests) and both sizes see the same conditions. A
    // query right after other work pays more: on this VM, waking a thread whose vCPU went idle
    // costs 10 to 50 µs more than waking one that has just run.
    let mut block = |record: bool| {
        for (k, (_, store, conn)) in stores.iter().enumerate() {
            rt.block_on(async {
                for _ in 0..BLOCK {
                    let t = Instant::now();
                    black_box(store.pending_for(&user).await.unwrap());
                    let d = t.elapsed();
                    if record {
                        ours[k].push(d);
                    }
                }
            });
            for _ in 0..BLOCK {
                let t = Instant::now();
                black_box(raw_pending(&mut stmts[k], &user));
                let d = t.elapsed();
                if record {
                    raws[k].push(d);
                }
            }
            for _ in 0..BLOCK {
                let t = Instant::now();
                black_box(raw_pending(
                    &mut conn.prepare_cached(PENDING_FOR).unwrap(),
                    &user,
                ));
                let d = t.elapsed();
                if record {
                    cached[k].push(d);
                }
            }
        }
        rt.block_on(async {
            for (hop, times) in hops.iter().zip(&mut hop_times) {
                for _ in 0..BLOCK {
                    let t = Instant::now();
                    hop.round_trip().await;
                    let d = t.elapsed();
                    if record {
                        times.push(d);
                    }
                }
            }
        });
    };
    block(false);
    for _ in 0..QUERIES / BLOCK {
        block(true);
    }
    drop(hops);
    println!(
        "| stored requests | ours p50 | ours p99 | raw SELECT p50 | raw p99 | ours / raw (p50) \
         | raw through prepare_cached p50 |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut p50s = Vec::new();
    for (k, (requests, _, _)) in stores.iter().enumerate() {
        let (o50, o99) = (quantile(&mut ours[k], 0.5), quantile(&mut ours[k], 0.99));
        let (r50, r99) = (quantile(&mut raws[k], 0.5), quantile(&mut raws[k], 0.99));
        println!(
            "| {requests} | {} | {} | {} | {} | {:.2}× | {} |",
            us(o50),
            us(o99),
            us(r50),
            us(r99),
            o50.as_secs_f64() / r50.as_secs_f64(),
            us(quantile(&mut cached[k], 0.5)),
        );
        p50s.push((*requests, o50, r50));
        out.push(line(
            &format!("4. pending_for, {requests} requests, p50"),
            us(o50),
            format!("raw SELECT {}", us(r50)),
            format!("{:.2}×", o50.as_secs_f64() / r50.as_secs_f64()),
            "—".to_owned(),
        ));
    }
    for (threads, times) in [1, 2].iter().zip(&mut hop_times) {
        println!(
            "thread round trip alone (job through mpsc to {threads} parked thread(s) sharing the \
             queue, answer through a oneshot): p50 {}, p99 {}",
            us(quantile(times, 0.5)),
            us(quantile(times, 0.99))
        );
    }
    let growth = p50s[1].1.as_secs_f64() / p50s[0].1.as_secs_f64();
    let raw_growth = p50s[1].2.as_secs_f64() / p50s[0].2.as_secs_f64();
    println!(
        "p50 {} / {}: ours {growth:.2}×, raw {raw_growth:.2}×",
        p50s[1].0, p50s[0].0
    );
    out.push(line(
        &format!("4. pending_for p50, {} / {}", p50s[1].0, p50s[0].0),
        format!("{growth:.2}×"),
        format!("raw {raw_growth:.2}×"),
        "—".to_owned(),
        format!("≤ 1.5: {}", verdict(growth <= 1.5)),
    ));
}

// ---------------------------------------------------------------------------------- main

fn main() {
    let sizes = Sizes::from_env();
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let base = std::env::var_os("ACM_BENCH_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-tmp"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&base).unwrap();
    let tmp = tempfile::tempdir_in(&base).unwrap();
    let dir = tmp.path();
    let fs = fs_type(dir);
    let payload = serde_json::to_vec(&test_event(stream(1), 1).payload)
        .unwrap()
        .len();
    println!(
        "# acm-store-sqlite benchmarks{}\n\ndatabases in {} ({fs}); test payload {payload} B of JSON; {} cores",
        if sizes.quick { " (QUICK sizes)" } else { "" },
        dir.display(),
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
    );
    if fs == "tmpfs" || fs == "ramfs" {
        println!("WARNING: {fs} ignores fsync; durable figures are meaningless here");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    if run("latency") {
        latency(&rt, dir, sizes.latency, &mut out);
    }
    if run("concurrent") {
        concurrent(&rt, dir, sizes.concurrent as u64, &mut out);
    }
    if run("replay") {
        replay(&rt, dir, sizes.replay, &mut out);
    }
    if run("pending") {
        pending(&rt, dir, sizes.pending, &mut out);
    }
    println!("\n## Summary ({:.0} s)", started.elapsed().as_secs_f64());
    println!("| benchmark | ours | baseline | ours / baseline | target |");
    println!("|---|---|---|---|---|");
    for l in out {
        println!(
            "| {} | {} | {} | {} | {} |",
            l.benchmark, l.ours, l.baseline, l.ratio, l.target
        );
    }
}
