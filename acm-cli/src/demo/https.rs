//! The demo over HTTPS: two ACM servers on loopback with temporary SQLite stores, test
//! certificates and tokens made on the fly, and the ACM clients as real HTTP clients.

use std::time::Duration;

use acm_core::audit::{joined_timeline, summary};
use acm_core::{
    DownloadedItem, Envelope, Event, EventStore, GlobalPosition, PendingItem, RequestId, Target,
};
use acm_store_sqlite::SqliteAcmStore;
use acm_transport_http::wire::{DecisionKind, ProvisionSubmission, ResponseSubmission};
use acm_transport_http::{AcmClient, Notifications, Submitted};
use futures_util::TryStreamExt;

use crate::Failure;
use crate::pair::{self, Pair, PairOptions};

/// How long the demo waits for something the other server does.
const PATIENCE: Duration = Duration::from_secs(10);

fn err(e: impl std::fmt::Display) -> Failure {
    Failure::Open(e.to_string())
}

async fn log(store: &SqliteAcmStore) -> Result<Vec<Envelope<Event>>, Failure> {
    store
        .read_all(GlobalPosition::START)
        .try_collect()
        .await
        .map_err(err)
}

/// What each side recorded since the last step.
struct Show<'a> {
    pair: &'a Pair,
    seen: [GlobalPosition; 2],
}

impl Show<'_> {
    async fn step(&mut self, step: &str, what: &str) -> Result<(), Failure> {
        println!("\n[{step}] {what}");
        for (i, running) in [&self.pair.a, &self.pair.b].into_iter().enumerate() {
            let system = [pair::A, pair::B][i];
            let new: Vec<Envelope<Event>> = running
                .store()
                .read_all(self.seen[i])
                .try_collect()
                .await
                .map_err(err)?;
            if new.is_empty() {
                println!("      {system:<13} (records nothing)");
            }
            for e in new {
                println!(
                    "      {system:<13} #{:<2} {:<20} {}",
                    e.position,
                    e.event_type,
                    summary(&e.payload)
                );
                self.seen[i] = e.position;
            }
        }
        Ok(())
    }
}

/// Waits until `check` holds, polling; fails after [`PATIENCE`].
async fn until<F, Fut>(what: &str, mut check: F) -> Result<(), Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, Failure>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await? {
        if tokio::time::Instant::now() > deadline {
            return Err(Failure::Broken(format!("gave up waiting: {what}")));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

async fn stage_is(client: &AcmClient, id: RequestId, stage: &str) -> Result<bool, Failure> {
    Ok(client.status(id).await.map_err(err)?.stage == stage)
}

async fn notice(stream: &mut Notifications, who: &str) -> Result<(), Failure> {
    match tokio::time::timeout(PATIENCE, stream.next()).await {
        Ok(Some(Ok(notice))) => {
            println!(
                "      -> pending ACM data notification to {} (event id {})",
                notice.notification.mc_service_id,
                notice.id.as_deref().unwrap_or("-")
            );
            Ok(())
        }
        Ok(Some(Err(e))) => Err(err(format!("{who}'s notification stream: {e}"))),
        Ok(None) => Err(Failure::Broken(format!(
            "{who}'s notification stream ended"
        ))),
        Err(_) => Err(Failure::Broken(format!("no notification reached {who}"))),
    }
}

/// Plays the 14 steps over HTTPS; fails (non-zero exit) if any step does not go as TS 23.280
/// says.
pub async fn play() -> Result<(), Failure> {
    let dir = tempfile::tempdir().map_err(err)?;
    let options = PairOptions::default();
    let pair = pair::start(dir.path(), options.clone()).await?;
    let played = steps(&pair).await;
    let stopped = pair.stop().await;
    played.and(stopped)
}

#[allow(clippy::too_many_lines)] // the procedure, step by step, reads best in one place
async fn steps(pair: &Pair) -> Result<(), Failure> {
    let alice = pair::requester(&pair.options, 0);
    let bob = pair::recipient(&pair.options, 0);
    let alice_client = pair.client(0, &alice)?;
    let bob_client = pair.client(1, &bob)?;
    println!("acm demo: interconnection group identity provision over HTTPS");
    println!(
        "  ACM server A ({}): client API https://{}, partner API https://{} (mutual TLS)",
        pair::A,
        pair.a.client_addr(),
        pair.a.partner_addr()
    );
    println!(
        "  ACM server B ({}): client API https://{}, partner API https://{} (mutual TLS)",
        pair::B,
        pair.b.client_addr(),
        pair.b.partner_addr()
    );
    let mut show = Show {
        pair,
        seen: [GlobalPosition::START; 2],
    };

    let submission = ProvisionSubmission {
        partner: pair::B.parse().map_err(err)?,
        target: Target::User(bob.clone()),
        groups: vec![
            "sip:fire-ops@mc-a.example".parse().map_err(err)?,
            "sip:tactical-2@mc-a.example".parse().map_err(err)?,
        ],
        requester_alias: None,
        requester: None,
    };
    let key = "demo-1".parse().map_err(err)?;
    let request = match alice_client.submit(&submission, &key).await.map_err(err)? {
        Submitted::Queued(accepted) => accepted.request_id,
        Submitted::Refused { refusal, .. } => {
            return Err(Failure::Broken(format!("step 2 refused: {refusal}")));
        }
    };
    until("B acknowledges the request", || {
        stage_is(&alice_client, request, "stored_at_partner")
    })
    .await?;
    show.step(
        "1-4b",
        &format!("{alice} submits 2 interconnection group IDs for {bob} (POST with Idempotency-Key demo-1); A authorises and queues it; A's relay forwards it over mutual TLS; B verifies and stores it and acknowledges 'stored'"),
    )
    .await?;

    let mut bob_stream = bob_client.notifications(None).await.map_err(err)?;
    show.step(
        "5-7a",
        &format!("{bob} logs on (opens the notification stream); B notifies at once"),
    )
    .await?;
    notice(&mut bob_stream, "bob").await?;

    let data = bob_client.pending().await.map_err(err)?;
    show.step("7b-8", &format!("{bob} downloads pending ACM data"))
        .await?;
    let mut offered = false;
    for item in &data.items {
        if let PendingItem::Request { request: r, .. } = item
            && r.request_id == request
        {
            offered = true;
            let groups: Vec<_> = r.body.groups().iter().map(ToString::to_string).collect();
            println!("      {bob} learns the group IDs: {}", groups.join(", "));
        }
    }
    if !offered {
        return Err(Failure::Broken(
            "the download did not offer the request".into(),
        ));
    }
    bob_client
        .acknowledge(&[DownloadedItem::Request(request)])
        .await
        .map_err(err)?;

    bob_client
        .respond(
            request,
            &ResponseSubmission {
                decision: DecisionKind::Accept,
                reason: None,
                responder_alias: None,
            },
        )
        .await
        .map_err(err)?;
    drop(bob_stream);
    until("A stores the response", || {
        stage_is(&alice_client, request, "answered")
    })
    .await?;
    // B records A's acknowledgement (step 10) and its acceptance hook after A has stored the
    // response; the step shows them once they are in.
    until("B records the acknowledgement and the hook", || async {
        let types: Vec<String> = log(pair.b.store())
            .await?
            .into_iter()
            .map(|e| e.event_type.to_string())
            .collect();
        Ok(["response_forwarded", "acceptance_applied"]
            .iter()
            .all(|t| types.iter().any(|have| have == t)))
    })
    .await?;
    show.step(
        "9-11",
        &format!("{bob} accepts (and logs off); B's relay forwards the response; A stores it"),
    )
    .await?;

    let mut alice_stream = alice_client.notifications(None).await.map_err(err)?;
    show.step(
        "12-13a",
        &format!("{alice} logs on; A notifies her ACM client at once"),
    )
    .await?;
    notice(&mut alice_stream, "alice").await?;

    let data = alice_client.pending().await.map_err(err)?;
    let mut answered = false;
    for item in &data.items {
        if let PendingItem::Response { response, .. } = item {
            answered = response.outcome.is_accepted();
            println!(
                "      {alice} learns: {} by {}",
                response.outcome, response.responder
            );
        }
    }
    let recorded = alice_client.acknowledge_all(&data).await.map_err(err)?;
    show.step(
        "13b-14",
        &format!(
            "{alice} downloads pending ACM data and acknowledges it ({} event recorded)",
            recorded.recorded
        ),
    )
    .await?;
    if !answered || !alice_client.status(request).await.map_err(err)?.delivered {
        return Err(Failure::Broken("the acceptance did not reach alice".into()));
    }

    let a_log = log(pair.a.store()).await?;
    let b_log = log(pair.b.store()).await?;
    let entries = joined_timeline(&a_log, &b_log, request).map_err(err)?;
    println!();
    crate::audit::print_timeline(request, &entries);
    println!(
        "\nrequest {request}: {} events at A, {} at B; both hash chains verify: {}",
        a_log.len(),
        b_log.len(),
        pair.a.store().verify().await.is_ok() && pair.b.store().verify().await.is_ok()
    );
    Ok(())
}
