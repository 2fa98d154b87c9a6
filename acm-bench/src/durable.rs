//! The peer-bench-durable workload on acm's SQLite store: N partner lifecycles (5 commands,
//! 6 events, 5 appends each) split over T tokio tasks on a 2-worker runtime.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use acm_core::{AcmServer, EventStore, SequentialIds, ServerConfig};
use acm_store_sqlite::SqliteAcmStore;

use crate::lifecycle::{partner_steps, run_step, system_b};
use crate::util::{fresh_db, remove_db, runtime};

/// Commands per lifecycle.
const COMMANDS: usize = 5;

pub fn run(n: usize, tasks: usize, dir: &Path) {
    assert!(
        n > 0 && tasks > 0 && n.is_multiple_of(tasks),
        "--n must be a multiple of --tasks"
    );
    let path = fresh_db(dir, "durable");
    let store = Arc::new(SqliteAcmStore::open(&path).expect("opening the SQLite store"));
    let rt = runtime();
    let (secs, events, stats) = rt.block_on(async {
        let ports = crate::lifecycle::ports_b();
        let config = ServerConfig {
            cache_capacity: n.max(10_000),
            ..ServerConfig::new(system_b())
        };
        let server = Arc::new(
            AcmServer::open(config, ports, store.clone())
                .await
                .expect("opening the server"),
        );
        let ids = SequentialIds::new(1);
        let per = n / tasks;
        let mut chunks: Vec<Vec<_>> = (0..tasks)
            .map(|_| (0..per).map(|_| partner_steps(&ids)).collect())
            .collect();

        let started = Instant::now();
        let handles: Vec<_> = chunks
            .drain(..)
            .map(|chunk| {
                let server = server.clone();
                tokio::spawn(async move {
                    for (id, steps) in &chunk {
                        for step in steps {
                            run_step(&server, *id, step).await;
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.expect("a lifecycle task panicked");
        }
        let secs = started.elapsed().as_secs_f64();
        let events = store.head().await.map_or(0, |h| h.0);
        let stats = store.stats();
        drop(server);
        (*store)
            .clone()
            .close()
            .await
            .expect("closing the SQLite store");
        (secs, events, stats)
    });
    drop(rt);
    remove_db(&path);
    assert_eq!(events, (n * 6) as u64, "6 events per lifecycle");
    let commands = n * COMMANDS;
    println!(
        "contender=acm mode=durable tasks={tasks} n={n} synchronous=FULL commands={commands} events={events} \
         transactions={} jobs_per_tx={:.1} secs={secs:.3} commands_per_s={:.0} events_per_s={:.0} lifecycles_per_s={:.0}",
        stats.transactions,
        stats.jobs as f64 / stats.transactions.max(1) as f64,
        commands as f64 / secs,
        events as f64 / secs,
        n as f64 / secs,
    );
}
