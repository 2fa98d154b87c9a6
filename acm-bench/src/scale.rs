//! A store holding R finished requests: how long it takes to open, what it costs in memory,
//! and how fast the pending query stays. The store is built by appending the 6 events of a
//! finished partner lifecycle per request (one append each, many in flight so that group
//! commit batches them), plus 3 requests still pending for bob; it is closed, then reopened
//! in the same process for the measurements.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acm_core::{
    AcmServer, EventStore, ExpectedVersion, IdSource, Ids, NewEvent, RequestState, SequentialIds,
    ServerConfig, StreamId, decide, evolve,
};
use acm_store_sqlite::SqliteAcmStore;
use chrono::{DateTime, Utc};
use tokio::task::JoinSet;

use crate::lifecycle::{bob, partner_steps, system_b};
use crate::util::{fresh_db, remove_db, rss_kib, runtime};

const QUERIES: usize = 1_000;
const OPEN: usize = 3;

/// The events of the first `steps` commands of a partner lifecycle, as the server would
/// append them (one batch: the stream is new).
fn batch(ids: &dyn IdSource, steps: usize) -> (StreamId, Vec<NewEvent<acm_core::Event>>) {
    let (id, lifecycle) = partner_steps(ids);
    let at: DateTime<Utc> = "2026-01-01T12:00:00Z".parse().expect("time");
    let mut state = RequestState::Empty;
    let mut out = Vec::with_capacity(6);
    for step in lifecycle.iter().take(steps) {
        let events = decide(&state, &step.command).expect("a lifecycle step decides");
        for event in events {
            state = evolve(state, &event);
            out.push(NewEvent {
                event_id: ids.event_id().expect("event id"),
                correlation_id: id,
                causation_id: step.causation,
                actor: step.actor.clone(),
                recorded_at: at,
                payload: event,
            });
        }
    }
    (StreamId(id), out)
}

fn file_bytes(path: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len())
        .sum()
}

async fn build(path: &Path, requests: usize, inflight: usize) -> (f64, u64) {
    let store = SqliteAcmStore::open(path).expect("opening the store to build");
    let ids = SequentialIds::new(1);
    let started = Instant::now();
    let mut appends = JoinSet::new();
    let mut events = 0_u64;
    for r in 0..requests + OPEN {
        let steps = if r < requests { 5 } else { 1 };
        let (stream, batch) = batch(&ids, steps);
        events += batch.len() as u64;
        while appends.len() >= inflight {
            appends
                .join_next()
                .await
                .expect("an append")
                .expect("append task");
        }
        let store = store.clone();
        appends.spawn(async move {
            store
                .append(stream, ExpectedVersion::NoStream, batch)
                .await
                .expect("append");
        });
        if (r + 1) % 50_000 == 0 {
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "scale: {} requests appended in {secs:.0} s ({:.0} requests/s, {:.0} events/s)",
                r + 1,
                (r + 1) as f64 / secs,
                events as f64 / secs
            );
        }
    }
    while let Some(done) = appends.join_next().await {
        done.expect("append task");
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = store.stats();
    eprintln!(
        "scale: built {requests} finished + {OPEN} open requests, {events} events in {secs:.1} s, \
         {} transactions ({:.1} appends each)",
        stats.transactions,
        stats.jobs as f64 / stats.transactions.max(1) as f64
    );
    let head = store.head().await.expect("head").0;
    assert_eq!(head, events, "every event stored");
    store.close().await.expect("closing the built store");
    (secs, events)
}

pub fn run(requests: usize, inflight: usize, dir: &Path, keep: bool, existing: Option<PathBuf>) {
    let rt = runtime();
    let (path, build_secs, events) = if let Some(path) = existing {
        (path, 0.0, 0)
    } else {
        let path = fresh_db(dir, &format!("scale-{requests}"));
        let (secs, events) = rt.block_on(build(&path, requests, inflight.max(1)));
        (path, secs, events)
    };
    let bytes = file_bytes(&path);
    let rss_before = rss_kib();

    let t = Instant::now();
    let store = Arc::new(SqliteAcmStore::open(&path).expect("reopening the store"));
    let store_open = t.elapsed();
    let (server_open, rss_open, first, median, p99, rss_queries) = rt.block_on(async {
        let ports = crate::lifecycle::ports_b();
        let t = Instant::now();
        let server = AcmServer::open(ServerConfig::new(system_b()), ports, store.clone())
            .await
            .expect("opening the server");
        let server_open = t.elapsed();
        let rss_open = rss_kib();
        let t = Instant::now();
        let pending = server.pending_for(&bob()).await.expect("pending_for");
        let first = t.elapsed();
        assert_eq!(pending.len(), OPEN, "bob has the open requests pending");
        let mut times: Vec<Duration> = Vec::with_capacity(QUERIES);
        for _ in 0..QUERIES {
            let t = Instant::now();
            let pending = server.pending_for(&bob()).await.expect("pending_for");
            times.push(t.elapsed());
            assert_eq!(pending.len(), OPEN);
        }
        times.sort();
        let rss_queries = rss_kib();
        drop(server);
        (*store).clone().close().await.expect("closing");
        (
            server_open,
            rss_open,
            first,
            times[QUERIES / 2],
            times[QUERIES * 99 / 100],
            rss_queries,
        )
    });
    if !keep {
        remove_db(&path);
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "contender=acm mode=scale requests={requests} events={events} build_secs={build_secs:.1} \
         db_bytes={bytes} store_open_ms={:.2} server_open_us={:.1} rss_before_open_kib={rss_before} \
         rss_after_open_kib={rss_open} rss_after_queries_kib={rss_queries} pending={OPEN} \
         first_pending_for_us={:.1} median_pending_for_us={:.1} p99_pending_for_us={:.1}",
        store_open.as_secs_f64() * 1e3,
        us(server_open),
        us(first),
        us(median),
        us(p99),
    );
}
