//! The `acm` binary: `demo` plays the 14-step procedure between two in-process ACM servers;
//! `audit` verifies, exports, replays and inspects ACM servers' logs; `store` backs up an
//! ACM server's store.
// The binary's standard output is its user interface.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod audit;
mod config;
mod demo;
mod store_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// ACM between interconnected MC systems.
#[derive(Debug, Parser)]
#[command(name = "acm", version, about)]
struct Cli {
    /// How the library's log lines are written to standard error (the level comes from
    /// `RUST_LOG`, default `warn`).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Play interconnection group identity provision, steps 1–14, between MC systems A and B
    /// in one process, printing what each ACM server records.
    Demo {
        /// Also write each system's event log as a tamper-evident audit export into this
        /// directory (`mc-a.example.jsonl`, `mc-b.example.jsonl`; they must not exist yet).
        #[arg(long)]
        export: Option<PathBuf>,
        /// Run both ACM servers on durable SQLite stores in this directory
        /// (`mc-a.example.db`, `mc-b.example.db`; they must not exist yet), for
        /// `acm audit`. Without it the stores are in memory.
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Audit an ACM server's log, from its SQLite store or from an audit export. Exit codes:
    /// 0 the log verifies, 1 the log is broken (or its head is not the expected one),
    /// 2 usage error, 3 cannot open, read or write.
    Audit(audit::AuditArgs),
    /// Look after an ACM server's SQLite store.
    Store {
        #[command(subcommand)]
        command: store_cmd::StoreCmd,
    },
}

/// How a command failed; each kind has its exit code (docs/audit.md).
#[derive(Debug)]
pub enum Failure {
    /// The log does not verify: exit 1.
    Broken(String),
    /// The command was not given what it needs: exit 2 (clap's own usage errors exit 2 too).
    Usage(String),
    /// A file could not be opened, read or written, or is not what the command reads: exit 3.
    Open(String),
    /// One of the above, already reported on standard output as JSON.
    Reported(Box<Failure>),
}

impl Failure {
    /// The exit code.
    pub fn code(&self) -> u8 {
        match self {
            Self::Broken(_) => 1,
            Self::Usage(_) => 2,
            Self::Open(_) => 3,
            Self::Reported(f) => f.code(),
        }
    }

    /// What went wrong, and what to do.
    pub fn message(&self) -> &str {
        match self {
            Self::Broken(m) | Self::Usage(m) | Self::Open(m) => m,
            Self::Reported(f) => f.message(),
        }
    }

    /// The stable name of the failure's kind, as `--json` prints it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Broken(_) => "broken_log",
            Self::Usage(_) => "usage",
            Self::Open(_) => "cannot_open",
            Self::Reported(f) => f.kind(),
        }
    }

    /// Marks the failure as reported on standard output already.
    #[must_use]
    pub fn reported(self) -> Self {
        match self {
            Self::Reported(_) => self,
            other => Self::Reported(Box::new(other)),
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // A second subscriber cannot be installed; there is only this one.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let result = match cli.command {
        Cmd::Demo { export, db } => demo::check(export.as_deref(), db.as_deref()).and_then(|()| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Failure::Open(e.to_string()))
                .and_then(|rt| rt.block_on(demo::play(export.as_deref(), db.as_deref())))
        }),
        Cmd::Audit(args) => audit::run(&args),
        Cmd::Store { command } => store_cmd::run(&command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("acm: {}", failure.message());
            ExitCode::from(failure.code())
        }
    }
}
