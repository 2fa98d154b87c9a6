//! `acm demo`: the procedure between two in-process ACM servers.

use std::path::Path;
use std::sync::Arc;

use acm_core::audit::{export_log, summary};
use acm_core::testkit::fixture::{System, TwoSystems, alice, bob, provision};
use acm_core::{
    AcmStore, Decision, Envelope, Event, EventStore, GlobalPosition, PendingItem, Session,
    StoreError, SystemId, Target,
};
use acm_store_memory::MemoryAcmStore;
use acm_store_sqlite::SqliteAcmStore;
use chrono::Duration;

use crate::Failure;
use futures_util::TryStreamExt;

/// Every event `system` recorded after `after`.
async fn log_after<S: EventStore<Event>>(
    system: &System<S>,
    after: GlobalPosition,
) -> Result<Vec<Envelope<Event>>, StoreError> {
    system.store.read_all(after).try_collect().await
}

/// Prints what a system recorded since `seen`, and moves `seen` on.
async fn recorded<S: EventStore<Event>>(
    system: &System<S>,
    seen: &mut GlobalPosition,
) -> Result<(), Failure> {
    let new = log_after(system, *seen).await.map_err(err)?;
    if new.is_empty() {
        println!("      {:<13} (records nothing)", system.id);
    }
    for e in new {
        println!(
            "      {:<13} #{:<2} {:<20} {}",
            system.id,
            e.position,
            e.event_type,
            summary(&e.payload)
        );
        *seen = e.position;
    }
    Ok(())
}

struct Show<'a, S> {
    sys: &'a TwoSystems<S>,
    seen_a: GlobalPosition,
    seen_b: GlobalPosition,
    /// The ACM clients logged on, by system.
    sessions: Vec<(SystemId, Session)>,
}

impl<S: EventStore<Event>> Show<'_, S> {
    async fn step(&mut self, step: &str, what: &str) -> Result<(), Failure> {
        println!("\n[{step}] {what}");
        recorded(&self.sys.a, &mut self.seen_a).await?;
        recorded(&self.sys.b, &mut self.seen_b).await?;
        for (system, session) in &self.sessions {
            if let Some(n) = session.try_next() {
                println!(
                    "      {system:<13} -> pending ACM data notification to {}",
                    n.mc_service_id
                );
            }
        }
        Ok(())
    }
}

fn err(e: impl std::fmt::Display) -> Failure {
    Failure::Open(e.to_string())
}

const SYSTEMS: [&str; 2] = ["mc-a.example", "mc-b.example"];

/// Checks the demo's options before anything runs: the files it would write must not exist
/// (the demo's ids repeat from run to run, and an export or a store is never overwritten).
pub fn check(export: Option<&Path>, db: Option<&Path>) -> Result<(), Failure> {
    let planned = [(export, "jsonl"), (db, "db")];
    for (dir, extension) in planned {
        let Some(dir) = dir else { continue };
        // The directory, or the nearest of its ancestors that exists (the demo creates the
        // rest), must be a directory.
        let existing = dir
            .ancestors()
            .find(|a| a.as_os_str().is_empty() || a.exists())
            .filter(|a| !a.as_os_str().is_empty());
        if let Some(existing) = existing
            && !existing.is_dir()
        {
            return Err(Failure::Usage(format!(
                "{}: {} is not a directory; give the demo a directory to write into",
                dir.display(),
                existing.display()
            )));
        }
        for name in SYSTEMS {
            let path = dir.join(format!("{name}.{extension}"));
            if path.exists() {
                return Err(Failure::Open(format!(
                    "{}: exists already and is never overwritten; give the demo an empty directory",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// Plays the demo on memory stores, or on new SQLite stores in `db`.
pub async fn play(export: Option<&Path>, db: Option<&Path>) -> Result<(), Failure> {
    let Some(dir) = db else {
        let sys = TwoSystems::<MemoryAcmStore>::new().await.map_err(err)?;
        run(&sys).await?;
        if let Some(dir) = export {
            export_memory(dir, [&sys.a, &sys.b]).await?;
        }
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
    let mut opened = Vec::new();
    for name in SYSTEMS {
        let path = dir.join(format!("{name}.db"));
        opened.push((name, Arc::new(SqliteAcmStore::open(&path).map_err(err)?)));
    }
    let sys = TwoSystems::with_stores(
        |c| c,
        |system| {
            opened
                .iter()
                .find(|(name, _)| *name == system.as_str())
                .map_or_else(
                    || unreachable!("the fixture has systems A and B only"),
                    |(_, store)| store.clone(),
                )
        },
    )
    .await
    .map_err(err)?;
    let played = run(&sys).await;
    drop(sys);
    // Closed, not dropped, so that a failure to fold a WAL in is told: each `.db` alone is
    // then its system's whole store.
    for (name, store) in opened {
        SqliteAcmStore::clone(&store)
            .close()
            .await
            .map_err(|e| err(format!("closing {name}'s store: {e}")))?;
    }
    played?;
    if let Some(out) = export {
        // From the stores themselves: each export carries its store's own chain.
        create_dir(out)?;
        for name in SYSTEMS {
            let path = out.join(format!("{name}.jsonl"));
            let file = create_new(&path)?;
            acm_store_sqlite::export_file(dir.join(format!("{name}.db")), file)
                .map_err(|e| err(format!("{}: {e}", path.display())))?;
            println!("wrote {}", path.display());
        }
    }
    println!(
        "stores in {} (check them with `acm audit verify`)",
        dir.display()
    );
    Ok(())
}

fn create_dir(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))
}

fn create_new(path: &Path) -> Result<std::io::BufWriter<std::fs::File>, Failure> {
    std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map(std::io::BufWriter::new)
        .map_err(|e| err(format!("{}: {e}", path.display())))
}

#[allow(clippy::too_many_lines)] // the procedure, step by step, reads best in one place
pub async fn run<S: AcmStore + 'static>(sys: &TwoSystems<S>) -> Result<(), Failure> {
    let (a, b) = (&sys.a, &sys.b);
    println!("acm demo: interconnection group identity provision");
    println!(
        "  primary MC system {} (ACM server A), partner MC system {} (ACM server B)",
        a.id, b.id
    );
    let mut show = Show {
        sys,
        seen_a: GlobalPosition::START,
        seen_b: GlobalPosition::START,
        sessions: Vec::new(),
    };

    let session = a.server.log_on(&alice()).await.map_err(err)?;
    show.sessions.push((a.id.clone(), session));
    let request = a
        .server
        .submit(&alice(), provision(Target::User(bob()), 2))
        .await
        .map_err(err)?;
    show.step(
        "1-2",
        &format!(
            "{} submits 2 interconnection group IDs for {}; A checks authorisation",
            alice(),
            bob()
        ),
    )
    .await?;

    a.server.relay().await.map_err(err)?;
    show.step(
        "3-4b",
        "A forwards the request; B stores and verifies it and acknowledges 'stored'",
    )
    .await?;

    show.sessions.clear(); // dropping alice's session logs her off
    show.step("5", &format!("{} logs off", alice())).await?;
    sys.clock.advance(Duration::hours(6));

    let session = b.server.log_on(&bob()).await.map_err(err)?;
    show.sessions.push((b.id.clone(), session));
    show.step(
        "6-7a",
        &format!("{} logs on; B notifies the ACM client", bob()),
    )
    .await?;

    let data = b.server.download_pending(&bob()).await.map_err(err)?;
    show.step("7b-8", &format!("{} downloads pending ACM data", bob()))
        .await?;
    for item in &data.items {
        if let PendingItem::Request { request, .. } = item {
            let groups: Vec<_> = request
                .body
                .groups()
                .iter()
                .map(ToString::to_string)
                .collect();
            println!(
                "      {:<13} {} learns the group IDs: {}",
                b.id,
                bob(),
                groups.join(", ")
            );
        }
    }

    b.server
        .respond(&bob(), None, request, Decision::Accept)
        .await
        .map_err(err)?;
    show.step("9", &format!("{} accepts", bob())).await?;

    b.server.relay().await.map_err(err)?;
    show.step(
        "10-11",
        "B forwards the response; A stores it (alice is logged off: no notification)",
    )
    .await?;

    b.server.apply_acceptances().await.map_err(err)?;
    show.step(
        "hook",
        "B's acceptance hook adds the groups to the users' profiles",
    )
    .await?;
    sys.clock.advance(Duration::hours(12));

    let session = a.server.log_on(&alice()).await.map_err(err)?;
    show.sessions.push((a.id.clone(), session));
    show.step(
        "12-13a",
        &format!("{} logs on; A notifies the ACM client", alice()),
    )
    .await?;

    let data = a.server.download_pending(&alice()).await.map_err(err)?;
    let receipts: Vec<_> = data.items.iter().map(PendingItem::receipt).collect();
    a.server
        .acknowledge_download(&alice(), &receipts)
        .await
        .map_err(err)?;
    show.step(
        "13b-14",
        &format!(
            "{} downloads pending ACM data; the client acknowledges it",
            alice()
        ),
    )
    .await?;
    for item in &data.items {
        if let PendingItem::Response { response, .. } = item {
            println!(
                "      {:<13} {} learns: {} by {}",
                a.id,
                alice(),
                response.outcome,
                response.responder
            );
        }
    }

    println!(
        "\nrequest {request}: {} events at A, {} at B",
        a.store.head().await.map_err(err)?,
        b.store.head().await.map_err(err)?
    );
    Ok(())
}

/// Exports the memory stores' logs, computing the chain a durable store would hold.
async fn export_memory<S: EventStore<Event>>(
    dir: &Path,
    systems: [&System<S>; 2],
) -> Result<(), Failure> {
    create_dir(dir)?;
    for system in systems {
        let path = dir.join(format!("{}.jsonl", system.id));
        let file = create_new(&path)?;
        let log = log_after(system, GlobalPosition::START)
            .await
            .map_err(err)?;
        export_log(file, &log).map_err(err)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
