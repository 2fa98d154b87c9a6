//! The `acm` binary: `demo` plays the 14-step procedure between two in-process ACM servers;
//! `audit` replays and inspects exported event logs; `store` backs up an ACM server's store.
// The binary's standard output is its user interface.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod audit;
mod demo;
mod store_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// ACM between interconnected MC systems.
#[derive(Debug, Parser)]
#[command(name = "acm", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Play interconnection group identity provision, steps 1–14, between MC systems A and B
    /// in one process, printing what each ACM server records.
    Demo {
        /// Also write each system's event log as JSON Lines into this directory
        /// (`mc-a.example.jsonl`, `mc-b.example.jsonl`), for `acm audit`.
        #[arg(long)]
        export: Option<PathBuf>,
        /// Run both ACM servers on durable SQLite stores in this directory
        /// (`mc-a.example.db`, `mc-b.example.db`; they must not exist yet), for
        /// `acm audit verify`. Without it the stores are in memory.
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Audit an exported event log (JSON Lines) or an ACM server's SQLite store.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCmd,
    },
    /// Look after an ACM server's SQLite store.
    Store {
        #[command(subcommand)]
        command: store_cmd::StoreCmd,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Demo { export, db } => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(demo::play(export.as_deref(), db.as_deref()))),
        Cmd::Audit { command } => audit::run(&command),
        Cmd::Store { command } => store_cmd::run(&command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("acm: {message}");
            ExitCode::FAILURE
        }
    }
}
