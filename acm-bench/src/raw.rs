//! The disk's own rate, as a floor and ceiling for the durable modes: rusqlite on a fresh file
//! (WAL, `synchronous=FULL`), rows shaped like acm's `events` rows (ids, actor, a ~300-byte
//! JSON payload, a 32-byte hash), inserted one per `BEGIN IMMEDIATE … COMMIT` or B per
//! transaction.

use std::path::Path;
use std::time::Instant;

use rusqlite::{Connection, params};

use crate::util::{fresh_db, remove_db};

/// The columns of acm's `events` table (`acm-store-sqlite/src/schema/0001_events.sql`),
/// without its triggers.
const EVENTS: &str = "
CREATE TABLE events (
    position       INTEGER PRIMARY KEY,
    event_id       BLOB    NOT NULL UNIQUE,
    stream_id      BLOB    NOT NULL,
    version        INTEGER NOT NULL,
    recorded_at    INTEGER NOT NULL,
    correlation_id BLOB    NOT NULL,
    causation_id   BLOB,
    actor_kind     TEXT    NOT NULL,
    actor_id       TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        BLOB    NOT NULL,
    hash           BLOB    NOT NULL,
    UNIQUE (stream_id, version)
) STRICT;";

const INSERT: &str = "INSERT INTO events (position, event_id, stream_id, version, recorded_at, \
     correlation_id, causation_id, actor_kind, actor_id, event_type, schema_version, payload, hash) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

/// A payload the size of an acm `Received` event's JSON (~300 bytes).
fn payload(i: usize) -> Vec<u8> {
    format!(
        concat!(
            r#"{{"type":"Delivered","request_id":"0190a000-0000-7000-8000-{:012x}","#,
            r#""requester":"sip:alice@mc-a.example","partner":"mc-b.example","#,
            r#""target":{{"user":"sip:bob@mc-b.example"}},"#,
            r#""groups":["sip:tac-1@mc-a.example","sip:tac-2@mc-a.example","sip:tac-3@mc-a.example"],"#,
            r#""to":"sip:bob@mc-b.example","at":"2026-01-01T12:00:00Z"}}"#
        ),
        i
    )
    .into_bytes()
}

fn insert(tx: &Connection, i: usize) {
    let n = i as u128;
    let stream = (n / 6).to_be_bytes();
    tx.prepare_cached(INSERT)
        .expect("prepare")
        .execute(params![
            i64::try_from(i + 1).expect("position"),
            (n | (1 << 100)).to_be_bytes(),
            stream,
            i64::try_from(i % 6 + 1).expect("version"),
            1_767_268_800_000_000_000_i64 + i64::try_from(i).expect("time"),
            stream,
            None::<Vec<u8>>,
            "user",
            "sip:bob@mc-b.example",
            "Delivered",
            1,
            payload(i),
            [0x5a_u8; 32],
        ])
        .expect("insert");
}

pub fn run(n: usize, batch: usize, dir: &Path) {
    assert!(n > 0 && batch > 0, "--n and --batch must be positive");
    let path = fresh_db(dir, "raw");
    let conn = Connection::open(&path).expect("open");
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .expect("journal_mode");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("synchronous");
    let sync: i64 = conn
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .expect("synchronous");
    conn.execute_batch(EVENTS).expect("create table");
    let version: String = conn
        .query_row("SELECT sqlite_version()", [], |r| r.get(0))
        .expect("version");

    let started = Instant::now();
    let mut i = 0;
    let mut transactions = 0_usize;
    while i < n {
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        for _ in 0..batch.min(n - i) {
            insert(&conn, i);
            i += 1;
        }
        conn.execute_batch("COMMIT").expect("commit");
        transactions += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .expect("count");
    assert_eq!(usize::try_from(rows).ok(), Some(n), "rows stored");
    drop(conn);
    remove_db(&path);
    println!(
        "contender=acm mode=raw engine=rusqlite batch={batch} n={n} journal_mode={mode} synchronous={sync} sqlite={version} \
         payload_bytes={} transactions={transactions} secs={secs:.3} commits_per_s={:.0} rows_per_s={:.0}",
        payload(0).len(),
        transactions as f64 / secs,
        n as f64 / secs,
    );
}
