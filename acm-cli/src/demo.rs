//! `acm demo`: the procedure between two in-process ACM servers.

use std::path::Path;

use acm_core::Event;
use acm_core::audit::{export_jsonl, summary};
use acm_core::id::GlobalPosition;
use acm_core::pending::PendingItem;
use acm_core::request::{Decision, Target};
use acm_store_memory::fixture::{System, TwoSystems, alice, bob, provision};
use chrono::Duration;

/// Prints what a system recorded since `seen`, and moves `seen` on.
fn recorded(system: &System, seen: &mut GlobalPosition) {
    let log = system.store.snapshot();
    let new: Vec<_> = log.iter().filter(|e| e.position > *seen).collect();
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
}

struct Show<'a> {
    sys: &'a TwoSystems,
    seen_a: GlobalPosition,
    seen_b: GlobalPosition,
}

impl Show<'_> {
    fn step(&mut self, step: &str, what: &str) {
        println!("\n[{step}] {what}");
        recorded(&self.sys.a, &mut self.seen_a);
        recorded(&self.sys.b, &mut self.seen_b);
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
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

#[allow(clippy::too_many_lines)] // the procedure, step by step, reads best in one place
pub async fn run(export: Option<&Path>) -> Result<(), String> {
    let sys = TwoSystems::new().await.map_err(err)?;
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
    );

    a.server.relay().await.map_err(err)?;
    show.step(
        "3-4b",
        "A forwards the request; B stores and verifies it and acknowledges 'stored'",
    );

    a.server.log_off(&alice());
    show.step("5", &format!("{} logs off", alice()));
    sys.clock.advance(Duration::hours(6));

    b.server.log_on(&bob()).await;
    show.step(
        "6-7a",
        &format!("{} logs on; B notifies the ACM client", bob()),
    );

    let data = b.server.download_pending(&bob()).await.map_err(err)?;
    show.step("7b-8", &format!("{} downloads pending ACM data", bob()));
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
    show.step("9", &format!("{} accepts", bob()));

    b.server.relay().await.map_err(err)?;
    show.step(
        "10-11",
        "B forwards the response; A stores it (alice is logged off: no notification)",
    );

    b.server.apply_acceptances().await.map_err(err)?;
    show.step(
        "hook",
        "B's acceptance hook adds the groups to the users' profiles",
    );
    sys.clock.advance(Duration::hours(12));

    a.server.log_on(&alice()).await;
    show.step(
        "12-13a",
        &format!("{} logs on; A notifies the ACM client", alice()),
    );

    let data = a.server.download_pending(&alice()).await.map_err(err)?;
    show.step("13b-14", &format!("{} downloads pending ACM data", alice()));
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
        a.store.len(),
        b.store.len()
    );
    if let Some(dir) = export {
        write_logs(dir, [a, b])?;
    }
    Ok(())
}

fn write_logs(dir: &Path, systems: [&System; 2]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for system in systems {
        let path = dir.join(format!("{}.jsonl", system.id));
        let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let log: Vec<acm_core::Envelope<Event>> = system.store.snapshot();
        export_jsonl(std::io::BufWriter::new(file), &log).map_err(err)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
