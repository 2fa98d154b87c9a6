//! `acm audit`: replay and inspect an exported event log.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use acm_core::audit::{AuditError, import_jsonl, replay, timeline};
use acm_core::id::RequestId;
use acm_core::lifecycle::RequestState;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Replay a log: check positions and versions, and print each request's final state.
    Replay {
        /// JSON Lines log, as written by `acm demo --export`.
        log: PathBuf,
    },
    /// Verify the hash chain of an ACM server's SQLite store, read-only (safe beside a running
    /// server); exits with failure and names the first broken position if it does not verify.
    Verify {
        /// The store's database file.
        db: PathBuf,
    },
    /// Print one request's timeline.
    Timeline {
        /// JSON Lines log.
        log: PathBuf,
        /// The request id (UUID v7).
        request: RequestId,
    },
}

fn load(path: &PathBuf) -> Result<Vec<acm_core::Envelope<acm_core::Event>>, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    import_jsonl(BufReader::new(file))
        .collect::<Result<Vec<_>, AuditError>>()
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn describe(state: &RequestState) -> String {
    match state {
        RequestState::Empty => "empty".into(),
        RequestState::Primary(p) => format!(
            "primary; to {}; partner stored: {}; response: {}; delivered: {}; withdrawal: {:?}",
            p.request.partner,
            p.partner_stored,
            p.response
                .as_ref()
                .map_or("none".into(), |(_, r)| r.outcome.to_string()),
            p.response_delivered,
            p.withdrawal
        ),
        RequestState::Partner(p) => format!(
            "partner; from {}; delivered to {}; response: {}; forwarded: {}",
            p.from,
            p.delivered_to.len(),
            p.response
                .as_ref()
                .map_or("none".into(), |(_, r)| r.outcome.to_string()),
            p.response_forwarded
        ),
    }
}

pub fn run(command: &AuditCmd) -> Result<(), String> {
    match command {
        AuditCmd::Replay { log } => {
            let events = load(log)?;
            let n = events.len();
            let states = replay(events).map_err(|e| format!("{}: {e}", log.display()))?;
            println!(
                "{n} events, {} requests, positions and versions contiguous",
                states.len()
            );
            for (id, state) in &states {
                println!("{id}  {}", describe(state));
            }
        }
        AuditCmd::Verify { db } => {
            let report = acm_store_sqlite::verify_file(db).map_err(|e| e.to_string())?;
            let head = report.head.iter().fold(String::new(), |mut hex, b| {
                use std::fmt::Write;
                let _ = write!(hex, "{b:02x}");
                hex
            });
            match report.broken {
                None => println!("{} events, hash chain intact, head {head}", report.checked),
                Some(b) => {
                    return Err(format!(
                        "{}: hash chain broken at position {} ({:?}); {} events before it verify",
                        db.display(),
                        b.position,
                        b.kind,
                        report.checked
                    ));
                }
            }
        }
        AuditCmd::Timeline { log, request } => {
            let events = load(log)?;
            let text = timeline(&events, *request);
            if text.is_empty() {
                return Err(format!("request {request} is not in {}", log.display()));
            }
            print!("{text}");
        }
    }
    Ok(())
}
