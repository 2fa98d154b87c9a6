//! `acm-bench`: acm's side of the peer benchmarks (`../shared/peers`), one configuration per
//! process, one `key=value` line on stdout, so that `scripts/bench-vs-peers.sh` can alternate
//! it with the peer's program on the same machine and disk.
//!
//! - `memory`: the peer-bench workload — N partner lifecycles of 5 commands and 6 events
//!   (receive, deliver, respond, response acknowledged, acceptance hook) through the ACM
//!   server on the memory store; `--cold` reads the stream and folds it for every command
//!   (as cqrs-es does), instead of the server's cache.
#![allow(clippy::print_stdout)] // the figures are this program's output

mod lifecycle;
mod memory;

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
}

fn main() {
    let cli = Cli::parse();
    match cli.mode {
        Mode::Memory { n, cold } => memory::run(n, cold),
    }
}
