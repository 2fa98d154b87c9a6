//! `acm demo`: the procedure between two in-process ACM servers.

use std::path::Path;
use std::sync::Arc;

use acm_core::Event;
use acm_core::audit::{export_jsonl, summary};
use acm_core::id::GlobalPosition;
use acm_core::pending::PendingItem;
use acm_core::ports::OutboxLedger;
use acm_core::request::{Decision, Target};
use acm_core::store::{Envelope, EventStore, StoreError};
use acm_store_memory::fixture::{System, TwoSystems, alice, bob, provision};
use acm_store_sqlite::SqliteStore;
use chrono::Duration;
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
) -> Result<(), String> {
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
}

impl<S: EventStore<Event>> Show<'_, S> {
    async fn step(&mut self, step: &str, what: &str) -> Result<(), String> {
        println!("\n[{step}] {what}");
        recorded(&self.sys.a, &mut self.seen_a).await?;
        recorded(&self.sys.b, &mut self.seen_b).await?;
        for (system, n) in [
            (&self.sys.a, self.sys.a.notifier.take()),
            (&self.sys.b, self.sys.b.notifier.take()),
        ] {
            for n in n {
                println!(
                    "      {:<13} -> pending ACM data notification to {}",
                    system.id, n.mc_service_id
                );
            }
        }
        Ok(())
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Plays the demo on memory stores, or on new SQLite stores in `db`.
pub async fn play(export: Option<&Path>, db: Option<&Path>) -> Result<(), String> {
    let Some(dir) = db else {
        return run(TwoSystems::new().await.map_err(err)?, export).await;
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut opened = Vec::new();
    for name in ["mc-a.example", "mc-b.example"] {
        let path = dir.join(format!("{name}.db"));
        if path.exists() {
            // The demo's ids are the same every run: a second run would collide with the first.
            return Err(format!(
                "{}: exists already; give the demo an empty directory",
                path.display()
            ));
        }
        opened.push((name, Arc::new(SqliteStore::open_acm(&path).map_err(err)?)));
    }
    let sys = TwoSystems::with_stores(
        |c| c,
        |system| {
            let store = opened
                .iter()
                .find(|(name, _)| *name == system.as_str())
                .map_or_else(
                    || unreachable!("the fixture has systems A and B only"),
                    |(_, store)| store.clone(),
                );
            let ledger: Arc<dyn OutboxLedger> = store.clone();
            (store, Some(ledger))
        },
    )
    .await
    .map_err(err)?;
    let played = run(sys, export).await;
    // Closed, not dropped, so that a failure to fold a WAL in is told: each `.db` alone is
    // then its system's whole store.
    for (name, store) in opened {
        SqliteStore::clone(&store)
            .close()
            .await
            .map_err(|e| format!("closing {name}'s store: {e}"))?;
    }
    played?;
    println!(
        "stores in {} (check them with `acm audit verify`)",
        dir.display()
    );
    Ok(())
}

#[allow(clippy::too_many_lines)] // the procedure, step by step, reads best in one place
pub async fn run<S: EventStore<Event> + 'static>(
    sys: TwoSystems<S>,
    export: Option<&Path>,
) -> Result<(), String> {
    let (a, b) = (&sys.a, &sys.b);
    println!("acm demo: interconnection group identity provision");
    println!(
        "  primary MC system {} (ACM server A), partner MC system {} (ACM server B)",
        a.id, b.id
    );
    let mut show = Show {
        sys: &sys,
        seen_a: GlobalPosition::START,
        seen_b: GlobalPosition::START,
    };

    a.server.log_on(&alice()).await;
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

    a.server.log_off(&alice());
    show.step("5", &format!("{} logs off", alice())).await?;
    sys.clock.advance(Duration::hours(6));

    b.server.log_on(&bob()).await;
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

    a.server.log_on(&alice()).await;
    show.step(
        "12-13a",
        &format!("{} logs on; A notifies the ACM client", alice()),
    )
    .await?;

    let data = a.server.download_pending(&alice()).await.map_err(err)?;
    show.step("13b-14", &format!("{} downloads pending ACM data", alice()))
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
    if let Some(dir) = export {
        write_logs(dir, [a, b]).await?;
    }
    Ok(())
}

async fn write_logs<S: EventStore<Event>>(
    dir: &Path,
    systems: [&System<S>; 2],
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for system in systems {
        let path = dir.join(format!("{}.jsonl", system.id));
        let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let log = log_after(system, GlobalPosition::START)
            .await
            .map_err(err)?;
        export_jsonl(std::io::BufWriter::new(file), &log).map_err(err)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
