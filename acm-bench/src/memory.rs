//! The peer-bench workload on the memory store.

use std::sync::Arc;
use std::time::Instant;

use acm_core::{AcmServer, EventStore, SequentialIds, ServerConfig};
use acm_store_memory::MemoryAcmStore;
use futures_executor::block_on;

use crate::lifecycle::{partner_steps, run_step, system_b};

/// Commands per lifecycle.
const COMMANDS: usize = 5;

pub fn run(n: usize, cold: bool) {
    let ports = crate::lifecycle::ports_b();
    let config = ServerConfig {
        // One entry, and commands interleaved across requests: every command misses and
        // reads its stream, as a store without a state cache does.
        cache_capacity: if cold { 1 } else { 10_000 },
        ..ServerConfig::new(system_b())
    };
    let store = Arc::new(MemoryAcmStore::new());
    let server = block_on(AcmServer::open(config, ports, store.clone()))
        .unwrap_or_else(|e| panic!("opening the server: {e}"));
    let ids = SequentialIds::new(1);
    let lifecycles: Vec<_> = (0..n).map(|_| partner_steps(&ids)).collect();

    let started = Instant::now();
    block_on(async {
        if cold {
            for k in 0..COMMANDS {
                for (id, steps) in &lifecycles {
                    run_step(&server, *id, &steps[k]).await;
                }
            }
        } else {
            for (id, steps) in &lifecycles {
                for step in steps {
                    run_step(&server, *id, step).await;
                }
            }
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let events = block_on(store.head()).map_or(0, |h| h.0);
    assert_eq!(events, (n * 6) as u64, "6 events per lifecycle");
    let commands = n * COMMANDS;
    println!(
        "contender=acm mode=memory cache={} n={n} commands={commands} events={events} secs={secs:.4} commands_per_sec={:.0}",
        if cold { "cold" } else { "warm" },
        commands as f64 / secs
    );
}
