//! `acm audit`: verify, export, replay and inspect an ACM server's log, from its SQLite store
//! (read-only, safe beside a running server) or from a tamper-evident JSON Lines export.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};

use acm_core::RequestId;
use acm_core::audit::{
    ExportReport, LineBreak, LineBreakKind, TimelineEntry, joined_timeline, replay, scan_export,
    timeline,
};
use acm_core::chain::{self, Hash};
use acm_core::{Authorization, RequestState, Verification, Withdrawal};
use acm_core::{Envelope, Event};
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::json;

use crate::Failure;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Print one JSON document on standard output instead of text (shapes in docs/audit.md).
    #[arg(long, global = true, env = "ACM_JSON")]
    json: bool,
    #[command(subcommand)]
    command: AuditCmd,
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Check a log's hash chain: every event's link, positions, versions, and (for an export)
    /// each payload against its type and the closing line. Names the first break.
    Verify {
        /// An ACM server's SQLite store (.db) or an audit export (.jsonl).
        source: PathBuf,
        /// Also fail unless the log's head is this one (64 hex digits, as published).
        #[arg(long, value_name = "HEX", env = "ACM_EXPECT_HEAD")]
        expect_head: Option<String>,
    },
    /// Write a SQLite store's log as a tamper-evident JSON Lines export, read-only (safe
    /// beside a running server).
    Export {
        /// The ACM server's SQLite store (.db).
        store: PathBuf,
        /// The export to write; must not exist.
        out: PathBuf,
    },
    /// Verify a log, then rebuild every request's final state from it.
    Replay {
        /// An ACM server's SQLite store (.db) or an audit export (.jsonl).
        source: PathBuf,
    },
    /// Print one request's timeline: `timeline LOG REQUEST_ID` for one system, or
    /// `timeline LOG_A LOG_B REQUEST_ID` joined across both systems in causal order.
    Timeline {
        /// One or two logs (stores or exports), then the request id (UUID v7).
        #[arg(num_args = 2..=3, value_names = ["LOG", "LOG_B|REQUEST_ID"], required = true)]
        args: Vec<String>,
    },
}

/// What a path holds, told from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Store,
    Export,
}

impl Form {
    fn name(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Export => "export",
        }
    }
}

fn form(path: &Path) -> Result<Form, Failure> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| {
        Failure::Open(if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "{shown}: no such file; give an ACM server's store file (.db) or an audit export (.jsonl)"
            )
        } else {
            format!("{shown}: {e}")
        })
    })?;
    if meta.is_dir() {
        return Err(Failure::Open(format!(
            "{shown} is a directory; give an ACM server's store file (.db) or an audit export (.jsonl)"
        )));
    }
    let mut head = [0u8; 16];
    let mut file = File::open(path).map_err(|e| Failure::Open(format!("{shown}: {e}")))?;
    let n = file
        .read(&mut head)
        .map_err(|e| Failure::Open(format!("{shown}: {e}")))?;
    if &head[..n] == b"SQLite format 3\0" {
        return Ok(Form::Store);
    }
    if head[..n].first() == Some(&b'{') {
        return Ok(Form::Export);
    }
    Err(Failure::Open(format!(
        "{shown}: not a SQLite database, nor an acm audit export (JSON Lines written by \
         `acm audit export` or `acm demo --export`)"
    )))
}

/// A log's verification, in one shape for both forms.
#[derive(Debug, Serialize)]
struct Verdict {
    source: String,
    form: &'static str,
    events: u64,
    head: String,
    intact: bool,
    #[serde(rename = "break")]
    broken: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_head: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    head_matches: Option<bool>,
    #[serde(skip)]
    message: Option<String>,
}

fn verify_source(path: &Path) -> Result<Verdict, Failure> {
    let source = path.display().to_string();
    match form(path)? {
        Form::Store => {
            let report = acm_store_sqlite::verify_file(path).map_err(open_error)?;
            let broken = report.broken.map(|b| {
                (
                    json!({"position": b.position, "kind": b.kind.code(), "detail": b.kind.to_string()}),
                    format!("position {}: {}", b.position, b.kind),
                )
            });
            Ok(Verdict::new(
                source,
                Form::Store,
                report.checked,
                &report.head,
                broken,
            ))
        }
        Form::Export => {
            let report = read_export(path, |_| {})?;
            let broken = match &report.broken {
                None => None,
                Some(b) => match broken(path, b) {
                    Failure::Open(message) => return Err(Failure::Open(message)),
                    _ => Some((
                        json!({"line": b.line, "kind": b.kind.code(), "detail": b.kind.to_string()}),
                        b.to_string(),
                    )),
                },
            };
            Ok(Verdict::new(
                source,
                Form::Export,
                report.events,
                &report.head,
                broken,
            ))
        }
    }
}

impl Verdict {
    /// `broken`: the break as JSON and in words.
    fn new(
        source: String,
        form: Form,
        events: u64,
        head: &Hash,
        broken: Option<(serde_json::Value, String)>,
    ) -> Self {
        let (broken, message) = broken.unzip();
        Self {
            source,
            form: form.name(),
            events,
            head: chain::to_hex(head),
            intact: broken.is_none(),
            broken,
            expected_head: None,
            head_matches: None,
            message,
        }
    }
}

#[allow(clippy::needless_pass_by_value)] // the shape map_err hands over
fn open_error(e: acm_store_sqlite::OpenError) -> Failure {
    Failure::Open(e.to_string())
}

fn read_export(path: &Path, each: impl FnMut(Envelope<Event>)) -> Result<ExportReport, Failure> {
    let file = File::open(path).map_err(|e| Failure::Open(format!("{}: {e}", path.display())))?;
    scan_export(BufReader::new(file), each)
        .map_err(|e| Failure::Open(format!("{}: {e}", path.display())))
}

/// Every event of a log, verified first; a break is the log's failure.
fn load(path: &Path) -> Result<Vec<Envelope<Event>>, Failure> {
    let mut events = Vec::new();
    let report = match form(path)? {
        Form::Export => read_export(path, |e| events.push(e))?,
        Form::Store => {
            // One read of the store: its export, verified as it is scanned. Only when that
            // fails is the store itself verified, to name the break by position.
            let mut buf = Vec::new();
            let exported = acm_store_sqlite::export_file(path, &mut buf)
                .map_err(|e| Failure::Open(format!("{}: {e}", path.display())));
            let scanned = exported.and_then(|_| {
                scan_export(&buf[..], |e| events.push(e))
                    .map_err(|e| Failure::Open(format!("{}: {e}", path.display())))
            });
            match scanned {
                Ok(report) if report.is_intact() => report,
                failed => {
                    if let Some(message) = verify_source(path)?.message {
                        return Err(Failure::Broken(format!("{}: {message}", path.display())));
                    }
                    failed?
                }
            }
        }
    };
    match report.broken {
        None => Ok(events),
        Some(b) => Err(broken(path, &b)),
    }
}

/// A break in an export; a file that is no export at all is one the command cannot read.
fn broken(path: &Path, b: &LineBreak) -> Failure {
    let message = format!("{}: {b}", path.display());
    match b.kind {
        LineBreakKind::NotAnExport | LineBreakKind::UnsupportedVersion { .. } => {
            Failure::Open(message)
        }
        _ => Failure::Broken(message),
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// One request's final state, in one shape for text and JSON.
#[derive(Debug, Serialize)]
struct RequestSummary {
    request_id: RequestId,
    /// `primary` (sent from this system) or `partner` (received here).
    role: &'static str,
    /// The other MC system.
    counterpart: String,
    /// Where the request stands, in words.
    status: String,
    /// The response, if one is recorded here.
    response: Option<String>,
}

fn summarize(id: RequestId, state: &RequestState) -> RequestSummary {
    let outcome = |r: &Option<(acm_core::MessageId, acm_core::AcmResponse)>| {
        r.as_ref()
            .map(|(_, r)| format!("{} by {}", r.outcome, r.responder))
    };
    match state {
        RequestState::Empty => RequestSummary {
            request_id: id,
            role: "none",
            counterpart: String::new(),
            status: "no events".into(),
            response: None,
        },
        RequestState::Primary(p) => {
            let mut status = match &p.authorization {
                Authorization::Refused(reason) => format!("refused at step 2: {reason}"),
                Authorization::Pending => "submitted".into(),
                Authorization::Granted => format!(
                    "authorised; partner stored it: {}; response delivered: {}",
                    yes(p.partner_stored),
                    yes(p.response_delivered)
                ),
            };
            match p.withdrawal {
                Withdrawal::None => {}
                Withdrawal::Requested(_) => status.push_str("; withdrawal asked for"),
                Withdrawal::Refused(_) => status.push_str("; withdrawal too late"),
                Withdrawal::Withdrawn(_) => status.push_str("; withdrawn"),
            }
            RequestSummary {
                request_id: id,
                role: "primary",
                counterpart: p.request.partner.to_string(),
                status,
                response: outcome(&p.response),
            }
        }
        RequestState::Partner(p) => {
            let status = match &p.verification {
                Verification::Failed(f) => format!("verification failed: {f}"),
                Verification::Unverified => "stored".into(),
                Verification::Passed(recipients) => {
                    let mut s = format!(
                        "verified for {} recipient{}; delivered to {}; response forwarded: {}",
                        recipients.len(),
                        if recipients.len() == 1 { "" } else { "s" },
                        p.delivered_to.len(),
                        yes(p.response_forwarded)
                    );
                    if p.expired {
                        s.push_str("; expired");
                    }
                    if p.withdrawn {
                        s.push_str("; withdrawn");
                    }
                    if p.acceptance_applied {
                        s.push_str("; acceptance hook applied");
                    }
                    s
                }
            };
            RequestSummary {
                request_id: id,
                role: "partner",
                counterpart: p.from.to_string(),
                status,
                response: outcome(&p.response),
            }
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn print_json(value: &impl Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::Open(format!("cannot encode the output: {e}")))?;
    println!("{text}");
    Ok(())
}

fn parse_head(hex: &str) -> Result<Hash, Failure> {
    chain::from_hex(hex).ok_or_else(|| {
        Failure::Usage(format!(
            "--expect-head {hex:?}: give the published head as 64 hex digits"
        ))
    })
}

pub fn run(args: &AuditArgs) -> Result<(), Failure> {
    let json = args.json;
    let result = match &args.command {
        AuditCmd::Verify {
            source,
            expect_head,
        } => verify_cmd(source, expect_head.as_deref(), json),
        AuditCmd::Export { store, out } => export_cmd(store, out, json),
        AuditCmd::Replay { source } => replay_cmd(source, json),
        AuditCmd::Timeline { args } => timeline_cmd(args, json),
    };
    match result {
        // With --json a failure is one JSON document on standard output too.
        Err(failure) if json && !matches!(failure, Failure::Reported(_)) => {
            print_json(&json!({"error": {
                "exit_code": failure.code(),
                "kind": failure.kind(),
                "message": failure.message(),
            }}))?;
            Err(failure.reported())
        }
        other => other,
    }
}

fn verify_cmd(source: &Path, expect_head: Option<&str>, json: bool) -> Result<(), Failure> {
    let expected = expect_head.map(parse_head).transpose()?;
    let mut verdict = verify_source(source)?;
    if let Some(want) = expected {
        let matches = verdict.intact && chain::to_hex(&want) == verdict.head;
        verdict.expected_head = Some(chain::to_hex(&want));
        verdict.head_matches = Some(matches);
        if verdict.intact && !matches {
            verdict.message = Some(format!(
                "the log verifies, but its head {} is not the expected {}: it was rewritten, or is another log",
                verdict.head,
                chain::to_hex(&want)
            ));
        }
    }
    let report = |failure: Failure| if json { failure.reported() } else { failure };
    if json {
        print_json(&verdict)?;
    } else if verdict.message.is_none() {
        println!(
            "{}: {}, {}, hash chain intact, head {}{}",
            verdict.source,
            if verdict.form == "store" {
                "SQLite store"
            } else {
                "audit export"
            },
            plural(
                usize::try_from(verdict.events).unwrap_or(usize::MAX),
                "event",
                "events"
            ),
            verdict.head,
            if verdict.head_matches == Some(true) {
                " (as expected)"
            } else {
                ""
            }
        );
    }
    match (verdict.message, verdict.intact) {
        (None, _) => Ok(()),
        (Some(message), true) => Err(report(Failure::Broken(format!(
            "{}: {message}",
            verdict.source
        )))),
        (Some(message), false) => Err(report(Failure::Broken(format!(
            "{}: {message}; {} before it verify",
            verdict.source,
            plural(
                usize::try_from(verdict.events).unwrap_or(usize::MAX),
                "event",
                "events"
            )
        )))),
    }
}

fn export_cmd(store: &Path, out: &Path, json: bool) -> Result<(), Failure> {
    match form(store)? {
        Form::Store => {}
        Form::Export => {
            return Err(Failure::Usage(format!(
                "{} is an audit export already; `acm audit export` reads an ACM server's store (.db)",
                store.display()
            )));
        }
    }
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(|e| {
            Failure::Open(if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!(
                    "{} exists already; an export is never overwritten: give a new file",
                    out.display()
                )
            } else {
                format!("{}: {e}", out.display())
            })
        })?;
    let summary = acm_store_sqlite::export_file(store, BufWriter::new(file)).map_err(|e| {
        let _ = std::fs::remove_file(out);
        Failure::Open(format!(
            "{}: {e}; `acm audit verify {}` names the first break",
            store.display(),
            store.display()
        ))
    })?;
    if json {
        print_json(&json!({
            "source": store.display().to_string(),
            "out": out.display().to_string(),
            "events": summary.count,
            "head": chain::to_hex(&summary.head),
        }))?;
    } else {
        println!(
            "wrote {} to {}, head {}",
            plural(
                usize::try_from(summary.count).unwrap_or(usize::MAX),
                "event",
                "events"
            ),
            out.display(),
            chain::to_hex(&summary.head)
        );
    }
    Ok(())
}

fn replay_cmd(source: &Path, json: bool) -> Result<(), Failure> {
    let events = load(source)?;
    let n = events.len();
    let states =
        replay(events).map_err(|e| Failure::Broken(format!("{}: {e}", source.display())))?;
    let requests: Vec<RequestSummary> = states.iter().map(|(id, s)| summarize(*id, s)).collect();
    if json {
        print_json(&json!({
            "source": source.display().to_string(),
            "events": n,
            "requests": requests,
        }))?;
    } else {
        println!(
            "{}, {}; hash chain, positions and versions intact",
            plural(n, "event", "events"),
            plural(requests.len(), "request", "requests")
        );
        for r in &requests {
            println!(
                "{}  {} with {}: {}; response: {}",
                r.request_id,
                r.role,
                r.counterpart,
                r.status,
                r.response.as_deref().unwrap_or("none")
            );
        }
    }
    Ok(())
}

fn timeline_cmd(args: &[String], json: bool) -> Result<(), Failure> {
    let (request, logs) = match args {
        [logs @ .., request] if !logs.is_empty() => (request, logs),
        _ => {
            return Err(Failure::Usage(
                "give one or two logs, then the request id".into(),
            ));
        }
    };
    let request: RequestId = request
        .parse()
        .map_err(|e| Failure::Usage(format!("{request:?}: {e} (the request id comes last)")))?;
    let loaded: Vec<Vec<Envelope<Event>>> = logs
        .iter()
        .map(|l| load(Path::new(l)))
        .collect::<Result<_, _>>()?;
    let entries = match loaded.as_slice() {
        [one] => timeline(one, request),
        [a, b] => joined_timeline(a, b, request),
        _ => unreachable!("clap takes two or three arguments"),
    }
    .map_err(|e| Failure::Usage(format!("{e} ({})", logs.join(", "))))?;
    if json {
        print_json(&json!({ "request_id": request, "entries": entries }))?;
    } else {
        print_timeline(request, &entries);
    }
    Ok(())
}

pub(crate) fn print_timeline(request: RequestId, entries: &[TimelineEntry]) {
    let mut systems: Vec<String> = entries.iter().map(|e| e.system.to_string()).collect();
    systems.sort();
    systems.dedup();
    println!(
        "request {request}: {} on {}, in causal order",
        plural(entries.len(), "event", "events"),
        systems.join(" and ")
    );
    let rows: Vec<[String; 7]> = entries
        .iter()
        .map(|e| {
            let cause = e.caused_by.as_ref().map_or_else(
                || "-".to_string(),
                |c| match (&c.system, c.step) {
                    (Some(system), Some(step)) => format!("{system} step {step}"),
                    _ => format!("message {}", c.message_id),
                },
            );
            [
                e.system.to_string(),
                e.step.to_string(),
                e.position.to_string(),
                e.recorded_at
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                e.actor.to_string(),
                e.event_type.clone(),
                cause,
            ]
        })
        .collect();
    let header = [
        "SYSTEM",
        "STEP",
        "POS",
        "TIME",
        "ACTOR",
        "EVENT",
        "CAUSED BY",
    ];
    // Each column as wide as its widest cell, so nothing runs into the next.
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[&str], last: &str| {
        let mut out = String::new();
        for (cell, width) in cells.iter().zip(&widths) {
            let _ = write!(out, "{cell:<width$}  ");
        }
        out.push_str(last);
        out
    };
    println!("{}", line(&header, "WHAT"));
    for (row, e) in rows.iter().zip(entries) {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        println!("{}", line(&cells, &e.summary));
    }
}
