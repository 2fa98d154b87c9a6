//! The `acm` binary: `serve` runs one MC system's ACM server over HTTPS; `demo` plays the
//! 14-step procedure between two of them on loopback; `client` plays an ACM client against a
//! running server; `load` measures full exchanges; `gen-certs` and `gen-token` make test
//! material; `audit` verifies, exports, replays and inspects ACM servers' logs; `store` backs
//! up an ACM server's store.
// The binary's standard output is its user interface.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod audit;
mod client_cmd;
mod config;
mod demo;
mod load;
mod material;
mod pair;
mod serve;
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
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true, env = "ACM_LOG_FORMAT")]
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
    /// Play interconnection group identity provision, steps 1–14, between MC systems A and B:
    /// two ACM servers over HTTPS on loopback (mutual TLS between them, access tokens for the
    /// clients, temporary SQLite stores), printing what each records, then the joined audit
    /// timeline. Exits non-zero if any step fails.
    Demo {
        /// Play it between two in-process servers instead (no network), as before.
        #[arg(long, env = "ACM_DEMO_IN_PROCESS")]
        in_process: bool,
        /// With --in-process: also write each system's event log as a tamper-evident audit
        /// export into this directory (`mc-a.example.jsonl`, `mc-b.example.jsonl`; they must
        /// not exist yet).
        #[arg(long, requires = "in_process", env = "ACM_DEMO_EXPORT")]
        export: Option<PathBuf>,
        /// With --in-process: run both ACM servers on durable SQLite stores in this directory
        /// (`mc-a.example.db`, `mc-b.example.db`; they must not exist yet), for `acm audit`.
        #[arg(long, requires = "in_process", env = "ACM_DEMO_DB")]
        db: Option<PathBuf>,
    },
    /// Run one MC system's ACM server: the client API (HTTPS, access tokens) and the partner
    /// API (mutual TLS), on its SQLite store, until SIGTERM or Ctrl-C (then it stops
    /// gracefully). A bad configuration is refused at start, naming the key.
    Serve {
        /// The configuration file (docs/configuration.md).
        #[arg(long, env = "ACM_CONFIG")]
        config: PathBuf,
    },
    /// Play an ACM client against a running ACM server.
    Client(client_cmd::ClientArgs),
    /// Measure full exchanges (submit, B stores, bob's notice, download, accept, A stores
    /// the response, alice's notice, download, acknowledge) by N virtual user pairs over
    /// HTTPS, between two servers it starts on loopback (or running ones, `--a-url` …);
    /// then a raw baseline hop (mutual TLS + one durable SQLite row) for comparison.
    Load(load::LoadArgs),
    /// Make test material: a CA and a certificate per MC system, and a token signing key
    /// (`OUT/<system>/{ca.pem,ca-key.pem,cert.pem,key.pem}`, `OUT/tokens/{token-key.pem,
    /// token-pub.pem}`); never overwrites.
    GenCerts {
        /// Where to write.
        #[arg(long, default_value = "certs", env = "ACM_CERTS_DIR")]
        out: PathBuf,
        /// The MC systems, e.g. `mc-a.example mc-b.example`.
        #[arg(required = true)]
        systems: Vec<acm_core::SystemId>,
    },
    /// Print an access token (ES256) for a user, as an MC identity management server would
    /// issue it.
    GenToken {
        /// The signing key (`token-key.pem` from gen-certs).
        #[arg(long, env = "ACM_TOKEN_KEY")]
        key: PathBuf,
        /// `iss`: the identity management server, as `[tokens] issuer` says.
        #[arg(long, env = "ACM_TOKEN_ISSUER")]
        issuer: String,
        /// `aud`: the ACM server, as `[tokens] audience` says.
        #[arg(long, env = "ACM_TOKEN_AUDIENCE")]
        audience: String,
        /// The user's MC service ID.
        #[arg(long, env = "ACM_TOKEN_USER")]
        user: acm_core::McServiceId,
        /// The claim that carries it.
        #[arg(long, default_value = "mcptt_id", env = "ACM_TOKEN_CLAIM")]
        claim: String,
        /// How long the token is valid, in seconds.
        #[arg(long, default_value_t = 3600, env = "ACM_TOKEN_VALID_FOR")]
        valid_for: u64,
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

/// A tokio runtime: multi-threaded for servers, single-threaded for one client.
fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, Failure> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| Failure::Open(e.to_string()))
}

// glibc's allocator keeps what a long-running server frees in per-thread arenas and rarely
// gives it back: under a steady soak the process grew by megabytes a minute while its live heap
// stayed flat (docs/performance.md, "Soak"). jemalloc returns freed pages on a time decay.
// The library crates leave the choice to the application that embeds them.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let result = match cli.command {
        Cmd::Demo {
            in_process: true,
            export,
            db,
        } => demo::in_process::check(export.as_deref(), db.as_deref()).and_then(|()| {
            runtime(false).and_then(|rt| {
                rt.block_on(demo::in_process::play(export.as_deref(), db.as_deref()))
            })
        }),
        Cmd::Demo { .. } => runtime(true).and_then(|rt| rt.block_on(demo::https::play())),
        Cmd::Serve { config } => runtime(true).and_then(|rt| rt.block_on(serve::run(&config))),
        Cmd::Client(args) => runtime(false).and_then(|rt| rt.block_on(client_cmd::run(args))),
        Cmd::Load(args) => runtime(true).and_then(|rt| rt.block_on(load::run(args))),
        Cmd::GenCerts { out, systems } => material::certs(&out, &systems).map(|dirs| {
            for dir in dirs {
                println!("wrote {dir}");
            }
        }),
        Cmd::GenToken {
            key,
            issuer,
            audience,
            user,
            claim,
            valid_for,
        } => material::token(&material::TokenArgs {
            key: &key,
            issuer: &issuer,
            audience: &audience,
            user: &user,
            claim: &claim,
            valid_for: std::time::Duration::from_secs(valid_for),
        })
        .map(|token| println!("{token}")),
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
