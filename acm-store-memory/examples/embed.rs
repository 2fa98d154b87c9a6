//! A vendor's ACM servers with its own user database, push channel and configuration
//! management hook. Run: `cargo run -p acm-store-memory --example embed`.
#![allow(clippy::print_stdout)] // an example talks to its reader

use std::sync::Arc;

use acm_core::Decision::Accept;
use acm_core::PendingItem;
use acm_core::{AcceptanceHook as Hook, Directory, HookError, Lookup, Recipients};
use acm_core::{AcmRequest, AcmRequestKind, AcmResponse, Target, VerificationFailure};
use acm_core::{AcmServer, Ports, ServerConfig, Session, Submission};
use acm_core::{ComposedDirectory, StaticDirectory};
use acm_core::{McServiceId, SystemId};
use acm_store_memory::{InProcessNetwork, MemoryAcmStore};
use async_trait::async_trait;

/// The vendor's user database: every user of mc-b.example may receive.
struct VendorUsers;
type Resolved = Lookup<Vec<McServiceId>, VerificationFailure>;
#[async_trait]
impl Recipients for VendorUsers {
    async fn resolve(&self, t: &Target, _: AcmRequestKind) -> Resolved {
        Ok(match t {
            Target::User(u) if u.host() == "mc-b.example" => Ok(vec![u.clone()]),
            Target::User(u) => Err(VerificationFailure::UnknownTarget { user: u.clone() }),
            _ => Err(VerificationFailure::NoAdministrator),
        })
    }
}

/// The vendor's push channel to its ACM clients: forwards a session's notice, if any.
fn push(session: &Session) {
    if let Some(n) = session.try_next() {
        println!("push to {}: pending ACM data", n.mc_service_id);
    }
}

/// The vendor's configuration management server.
struct AddToProfiles;
#[async_trait]
impl Hook for AddToProfiles {
    async fn accepted(&self, r: &AcmRequest, _: &AcmResponse) -> Result<(), HookError> {
        println!(
            "CMS: configure {} group(s) for {}",
            r.body.groups().len(),
            r.target
        );
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (a, b): (SystemId, SystemId) = ("mc-a.example".parse()?, "mc-b.example".parse()?);
    let alice: McServiceId = "sip:alice@mc-a.example".parse()?;
    let bob: McServiceId = "sip:bob@mc-b.example".parse()?;
    let dir_a = StaticDirectory::new(a.clone()).with_partner(b.clone(), vec![b.clone()]);
    let dir_a = Arc::new(dir_a.with_provider(alice.clone(), b.clone()));
    let dir_b = Arc::new(StaticDirectory::new(b.clone()).with_partner(a.clone(), vec![a.clone()]));
    let dir_b = Arc::new(ComposedDirectory {
        recipients: Arc::new(VendorUsers),
        ..dir_b.into()
    });
    let net = InProcessNetwork::new();
    let open = async |system: &SystemId, directory: Arc<dyn Directory>| {
        let ports = Ports::builder(directory, net.transport(system.clone()))
            .hook(Arc::new(AddToProfiles))
            .build();
        let store = Arc::new(MemoryAcmStore::new());
        let server =
            Arc::new(AcmServer::open(ServerConfig::new(system.clone()), ports, store).await?);
        net.register(system.clone(), &server);
        Ok::<_, acm_core::ServiceError>(server)
    };

    futures_executor::block_on(async {
        let (server_a, server_b) = (open(&a, dir_a).await?, open(&b, dir_b).await?);
        let groups = ["sip:tac-1@mc-a.example".parse()?];
        let submission = Submission::provision(b, Target::User(bob.clone()), groups);
        let request = server_a.submit(&alice, submission).await?; // steps 1-2
        server_a.relay().await?; // steps 3-4b: the relay forwards it
        let bob_session = server_b.log_on(&bob).await?; // steps 6-7a: the push fires
        push(&bob_session);
        let pending = server_b.download_pending(&bob).await?.items; // steps 7b-8
        println!("bob has {} pending item(s)", pending.len());
        server_b.respond(&bob, None, request, Accept).await?; // step 9
        server_b.relay().await?; // steps 10-11
        server_b.apply_acceptances().await?; // the acceptance hook
        let alice_session = server_a.log_on(&alice).await?; // steps 12-13a
        push(&alice_session);
        let items = server_a.download_pending(&alice).await?.items;
        for item in &items {
            if let PendingItem::Response { response: r, .. } = item {
                println!("alice learns: {} by {}", r.outcome, r.responder); // steps 13b-14
            }
        }
        let receipts: Vec<_> = items.iter().map(PendingItem::receipt).collect();
        server_a.acknowledge_download(&alice, &receipts).await?; // the client has it
        Ok(())
    })
}
