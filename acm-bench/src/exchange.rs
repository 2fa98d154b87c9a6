//! Whole exchanges between two ACM servers on SQLite stores, as a deployment runs them: A
//! (`mc-a.example`) and B (`mc-b.example`) joined by an `InProcessNetwork`, each driven by a
//! `Runner` ticking every `tick_ms`. F tasks each run exchanges one after another: submit at
//! A (steps 1–3), the relay forwards to B (4–6), wait until it is pending at B for the task's
//! own target user, download (7–8), respond (9), the relay answers A (10–11), wait until A
//! has the response pending for the task's own requester, download and acknowledge (12–14).
//! Each task has its own requester `sip:r{i}@mc-a.example` and its own target
//! `sip:u{i}@mc-b.example`, so no download lists another task's items.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acm_core::{
    AcmServer, Decision, EventStore, GroupId, McServiceId, Ports, RequestId, ServerConfig, Session,
    StaticDirectory, Submission, SystemId, Target,
};
use acm_store_memory::InProcessNetwork;
use acm_store_sqlite::SqliteAcmStore;
use acm_transport_http::Runner;

use crate::lifecycle::{system_a, system_b};
use crate::util::{fresh_db, remove_db, runtime};

fn user(s: &str) -> McServiceId {
    s.parse()
        .unwrap_or_else(|e| panic!("benchmark user {s}: {e:?}"))
}

fn groups() -> Vec<GroupId> {
    (1..=3)
        .map(|i| {
            format!("sip:tac-{i}@mc-a.example")
                .parse()
                .expect("group id")
        })
        .collect()
}

/// Waits until `id` is pending for `session`'s user at `server`: on each notification, and
/// at least every 50 ms (a notification coalesces with others).
async fn until_pending(server: &AcmServer, session: &Session, id: RequestId) {
    loop {
        let pending = server
            .pending_for(session.user())
            .await
            .expect("pending_for");
        if pending.contains(&id) {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), session.next()).await;
    }
}

async fn exchange(a: &AcmServer, b: &AcmServer, at_a: &Session, at_b: &Session) {
    let requester = at_a.user();
    let target = at_b.user();
    let id = a
        .submit(
            requester,
            Submission::provision(system_b(), Target::User(target.clone()), groups()),
        )
        .await
        .expect("submit at A");
    until_pending(b, at_b, id).await;
    let data = b.download_pending(target).await.expect("download at B");
    assert!(
        data.items
            .iter()
            .any(|i| i.receipt() == acm_core::DownloadedItem::Request(id)),
        "B's download lists the request"
    );
    b.respond(target, None, id, Decision::Accept)
        .await
        .expect("respond at B");
    until_pending(a, at_a, id).await;
    let data = a.download_pending(requester).await.expect("download at A");
    let receipts: Vec<_> = data
        .items
        .iter()
        .map(acm_core::PendingItem::receipt)
        .collect();
    assert!(
        receipts.contains(&acm_core::DownloadedItem::Response(id)),
        "A's download lists the response"
    );
    a.acknowledge_download(requester, &receipts)
        .await
        .expect("acknowledge at A");
}

async fn open_server(
    system: SystemId,
    directory: StaticDirectory,
    network: &InProcessNetwork,
    store: Arc<SqliteAcmStore>,
) -> Arc<AcmServer> {
    let ports = Ports::builder(Arc::new(directory), network.transport(system.clone())).build();
    let server = Arc::new(
        AcmServer::open(ServerConfig::new(system.clone()), ports, store)
            .await
            .expect("opening a server"),
    );
    network.register(system, &server);
    server
}

#[allow(clippy::too_many_lines, clippy::many_single_char_names)]
pub fn run(n: usize, inflight: usize, tick_ms: u64, dir: &Path) {
    assert!(
        n >= inflight && inflight > 0,
        "--n must be at least --inflight"
    );
    let (path_a, path_b) = (fresh_db(dir, "exchange-a"), fresh_db(dir, "exchange-b"));
    let store_a = Arc::new(SqliteAcmStore::open(&path_a).expect("opening A's store"));
    let store_b = Arc::new(SqliteAcmStore::open(&path_b).expect("opening B's store"));
    let requesters: Vec<McServiceId> = (0..inflight)
        .map(|i| user(&format!("sip:r{i}@mc-a.example")))
        .collect();
    let targets: Vec<McServiceId> = (0..inflight)
        .map(|i| user(&format!("sip:u{i}@mc-b.example")))
        .collect();
    let mut dir_a = StaticDirectory::new(system_a()).with_partner(system_b(), vec![system_b()]);
    for r in &requesters {
        dir_a = dir_a
            .with_user(r.clone(), false)
            .with_provider(r.clone(), system_b());
    }
    let mut dir_b = StaticDirectory::new(system_b()).with_partner(system_a(), vec![system_a()]);
    for u in &targets {
        dir_b = dir_b.with_user(u.clone(), true);
    }

    let rt = runtime();
    let report = rt.block_on(async {
        let network = InProcessNetwork::new();
        let a = open_server(system_a(), dir_a, &network, store_a.clone()).await;
        let b = open_server(system_b(), dir_b, &network, store_b.clone()).await;
        let runner_a = Runner::start(a.clone(), Duration::from_millis(tick_ms));
        let runner_b = Runner::start(b.clone(), Duration::from_millis(tick_ms));
        let (head_a, head_b) = (
            store_a.head().await.expect("head").0,
            store_b.head().await.expect("head").0,
        );
        let (stats_a, stats_b) = (store_a.stats(), store_b.stats());

        let started = Instant::now();
        let handles: Vec<_> = requesters
            .iter()
            .zip(&targets)
            .enumerate()
            .map(|(i, (r, u))| {
                // n need not be a multiple of F: the first n % F tasks run one more.
                let per = n / inflight + usize::from(i < n % inflight);
                let (a, b, r, u) = (a.clone(), b.clone(), r.clone(), u.clone());
                tokio::spawn(async move {
                    let at_a = a.log_on(&r).await.expect("log on at A");
                    let at_b = b.log_on(&u).await.expect("log on at B");
                    let mut slowest = Duration::ZERO;
                    for _ in 0..per {
                        let t = Instant::now();
                        exchange(&a, &b, &at_a, &at_b).await;
                        slowest = slowest.max(t.elapsed());
                    }
                    slowest
                })
            })
            .collect();
        let mut slowest = Duration::ZERO;
        for h in handles {
            slowest = slowest.max(h.await.expect("an exchange task panicked"));
        }
        let secs = started.elapsed().as_secs_f64();
        runner_a.shutdown().await;
        runner_b.shutdown().await;
        // Let both servers finish what follows the last acknowledgement (acceptance hooks).
        for _ in 0..8 {
            let (ra, rb) = (a.tick().await, b.tick().await);
            if ra.relay.acknowledged + rb.relay.acknowledged + ra.hooks + rb.hooks == 0 {
                break;
            }
        }
        for (r, u) in requesters.iter().zip(&targets) {
            assert!(
                a.pending_for(r).await.expect("pending").is_empty(),
                "A settled"
            );
            assert!(
                b.pending_for(u).await.expect("pending").is_empty(),
                "B settled"
            );
        }
        let events_a = store_a.head().await.expect("head").0 - head_a;
        let events_b = store_b.head().await.expect("head").0 - head_b;
        let (sa, sb) = (store_a.stats(), store_b.stats());
        let tx_a = sa.transactions - stats_a.transactions;
        let tx_b = sb.transactions - stats_b.transactions;
        let jobs_a = sa.jobs - stats_a.jobs;
        let jobs_b = sb.jobs - stats_b.jobs;
        drop((a, b));
        (*store_a).clone().close().await.expect("closing A's store");
        (*store_b).clone().close().await.expect("closing B's store");
        (
            secs, slowest, events_a, events_b, tx_a, tx_b, jobs_a, jobs_b,
        )
    });
    drop(rt);
    remove_db(&path_a);
    remove_db(&path_b);
    let (secs, slowest, events_a, events_b, tx_a, tx_b, jobs_a, jobs_b) = report;
    let nf = n as f64;
    println!(
        "contender=acm mode=exchange n={n} inflight={inflight} tick_ms={tick_ms} secs={secs:.3} \
         exchanges_per_s={:.0} events_a_per_exchange={:.2} events_b_per_exchange={:.2} \
         events_per_s={:.0} tx_a={tx_a} tx_b={tx_b} jobs_per_tx_a={:.1} jobs_per_tx_b={:.1} \
         mean_exchange_ms={:.1} slowest_exchange_ms={:.1}",
        nf / secs,
        events_a as f64 / nf,
        events_b as f64 / nf,
        (events_a + events_b) as f64 / secs,
        jobs_a as f64 / tx_a.max(1) as f64,
        jobs_b as f64 / tx_b.max(1) as f64,
        secs * 1e3 * inflight as f64 / nf,
        slowest.as_secs_f64() * 1e3,
    );
}
