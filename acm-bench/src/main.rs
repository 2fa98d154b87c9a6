//! `acm-bench`: acm's side of the peer benchmarks (`../shared/peers`), one configuration per
//! process, one `key=value` line on stdout, so that `scripts/bench-vs-peers.sh` can alternate
//! it with the peer's program on the same machine and disk.
//!
//! - `memory`: the peer-bench workload — N partner lifecycles of 5 commands and 6 events
//!   (receive, deliver, respond, response acknowledged, acceptance hook) through the ACM
//!   server on the memory store; `--cold` reads the stream and folds it for every command
//!   (as cqrs-es does), instead of the server's cache.
//! - `durable`: the same lifecycles on a fresh SQLite store on disk, split over T tokio tasks
//!   on a 2-worker runtime, as `peer-bench-durable` runs cqrs-es + sqlite-es.
//! - `raw`: the disk's own rate: one-row rusqlite transactions (WAL, `synchronous=FULL`), or
//!   rows inserted B per transaction, rows shaped like acm's `events` rows.
//! - `exchange`: two servers on SQLite stores, joined in process, each driven by a `Runner`;
//!   F tasks each run whole exchanges (submit at A … acknowledge the response at A).
//! - `scale`: a store holding R finished requests: open times, RSS, `pending_for` latency.
#![allow(clippy::print_stdout, clippy::print_stderr)] // the figures and progress are the output
#![allow(clippy::cast_precision_loss)] // counts shown as rates

mod durable;
mod exchange;
mod lifecycle;
mod memory;
mod raw;
mod scale;
mod util;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "acm's side of the peer benchmarks")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Partner lifecycles through the service on the memory store.
    Memory {
        /// Lifecycles.
        #[arg(long, default_value_t = 20_000)]
        n: usize,
        /// Read the stream and fold it for every command instead of using the cache.
        #[arg(long)]
        cold: bool,
    },
    /// Partner lifecycles through the service on a fresh SQLite store in DIR.
    Durable {
        /// Lifecycles (a multiple of --tasks).
        #[arg(long, default_value_t = 1_280)]
        n: usize,
        /// Concurrent tokio tasks, each running its lifecycles one after another.
        #[arg(long, default_value_t = 1)]
        tasks: usize,
        /// Directory for the database (on a real disk).
        #[arg(long)]
        dir: PathBuf,
    },
    /// Raw rusqlite inserts of event-shaped rows (WAL, synchronous=FULL) in DIR.
    Raw {
        /// Rows.
        #[arg(long, default_value_t = 2_000)]
        n: usize,
        /// Rows per transaction (1: one-row commits).
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Directory for the database (on a real disk).
        #[arg(long)]
        dir: PathBuf,
    },
    /// Whole exchanges between two servers on SQLite stores, each driven by a Runner.
    Exchange {
        /// Exchanges (a multiple of --inflight).
        #[arg(long, default_value_t = 2_000)]
        n: usize,
        /// Concurrent tasks, each running its exchanges one after another.
        #[arg(long, default_value_t = 64)]
        inflight: usize,
        /// Runner tick interval in milliseconds.
        #[arg(long, default_value_t = 1)]
        tick_ms: u64,
        /// Directory for the databases (on a real disk).
        #[arg(long)]
        dir: PathBuf,
    },
    /// A store holding R finished requests: open times, RSS and `pending_for` latency.
    Scale {
        /// Finished requests in the store.
        #[arg(long, default_value_t = 10_000)]
        requests: usize,
        /// Appends in flight while building.
        #[arg(long, default_value_t = 512)]
        inflight: usize,
        /// Directory for the database (on a real disk).
        #[arg(long)]
        dir: PathBuf,
        /// Keep the database file afterwards.
        #[arg(long)]
        keep: bool,
        /// Measure this existing store instead of building one (e.g. one kept by --keep).
        #[arg(long)]
        existing: Option<PathBuf>,
    },
}

fn main() {
    let cli = Cli::parse();
    match cli.mode {
        Mode::Memory { n, cold } => memory::run(n, cold),
        Mode::Durable { n, tasks, dir } => durable::run(n, tasks, &dir),
        Mode::Raw { n, batch, dir } => raw::run(n, batch, &dir),
        Mode::Exchange {
            n,
            inflight,
            tick_ms,
            dir,
        } => exchange::run(n, inflight, tick_ms, &dir),
        Mode::Scale {
            requests,
            inflight,
            dir,
            keep,
            existing,
        } => scale::run(requests, inflight, &dir, keep, existing),
    }
}
