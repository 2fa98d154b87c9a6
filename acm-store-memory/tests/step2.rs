//! Step 2 at the primary: what the server checks itself (interconnection, home domains, the
//! requester's functional alias) whatever a vendor's `Authorizer` answers, and how each
//! refusal is recorded.
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use acm_core::{
    AcmRequest, AcmRequestBody, AcmServer, Authorization, AuthorizationRefusal, Authorizer,
    ComposedDirectory, FunctionalAlias, Lookup, ManualClock, PendingItem, Ports, RequestId,
    RequestState, SequentialIds, ServerConfig, ServiceError, StaticDirectory, Submission, SystemId,
    Target,
};
use acm_store_memory::fixture::{TwoSystems, alice, bob, id, provision};
use acm_store_memory::{InProcessNetwork, MemoryAcmStore};
use async_trait::async_trait;
use futures_executor::block_on;

/// A vendor authorizer that authorises everyone for everything, as the trait allows.
struct Everyone;

#[async_trait]
impl Authorizer for Everyone {
    async fn authorize(&self, _: &AcmRequest) -> Lookup<(), AuthorizationRefusal> {
        Ok(Ok(()))
    }
}

/// System A with B as its only partner, `sip:lead@mc-a.example` held by nobody yet, and the
/// vendor authorizer above.
fn primary() -> (AcmServer, Arc<StaticDirectory>, Arc<MemoryAcmStore>) {
    let (a, b): (SystemId, SystemId) = (id("mc-a.example"), id("mc-b.example"));
    let config = Arc::new(
        StaticDirectory::new(a.clone())
            .with_partner(b.clone(), vec![b])
            .with_user(alice(), false),
    );
    let directory = ComposedDirectory {
        authorizer: Arc::new(Everyone),
        ..ComposedDirectory::from(config.clone())
    };
    let store = Arc::new(MemoryAcmStore::new());
    let ports = Ports::builder(
        Arc::new(directory),
        InProcessNetwork::new().transport(a.clone()),
    )
    .clock(Arc::new(ManualClock::default()))
    .ids(Arc::new(SequentialIds::new(0xA)))
    .build();
    let server = block_on(AcmServer::open(ServerConfig::new(a), ports, store.clone())).unwrap();
    (server, config, store)
}

/// Submits and expects a recorded refusal; returns the request id.
fn refused(server: &AcmServer, submission: Submission, want: &AuthorizationRefusal) -> RequestId {
    match block_on(server.submit(&alice(), submission)) {
        Err(ServiceError::Refused { request_id, reason }) => {
            assert_eq!(&reason, want);
            match block_on(server.state(request_id)).unwrap() {
                RequestState::Primary(p) => {
                    assert_eq!(p.authorization, Authorization::Refused(want.clone()));
                    assert_eq!(p.forward, None, "nothing forwarded");
                }
                other => panic!("the refusal is recorded, got {other:?}"),
            }
            request_id
        }
        other => panic!("expected {want:?}, got {other:?}"),
    }
}

fn outbox_depth(server: &AcmServer) -> u64 {
    block_on(server.outbox_status()).unwrap().depth
}

fn lead() -> FunctionalAlias {
    id("sip:lead@mc-a.example")
}

#[test]
fn a_group_homed_elsewhere_is_refused_whatever_the_authorizer_says() {
    let (server, _, store) = primary();
    let submission = Submission::provision(
        id("mc-b.example"),
        Target::User(bob()),
        [id("sip:tac-1@mc-a.example"), id("sip:tac-9@mc-c.example")],
    );
    let want = AuthorizationRefusal::GroupNotHomedHere {
        group: id("sip:tac-9@mc-c.example"),
    };
    refused(&server, submission, &want);
    assert_eq!(outbox_depth(&server), 0, "nothing queued for the partner");
    let types: Vec<_> = store
        .snapshot()
        .iter()
        .map(|e| e.event_type.clone())
        .collect();
    assert_eq!(types, ["submitted", "authorization_refused"]);
}

#[test]
fn an_unconfigured_partner_is_refused_whatever_the_authorizer_says() {
    let (server, _, _) = primary();
    let submission = Submission::provision(
        id("mc-z.example"),
        Target::User(id("sip:zed@mc-z.example")),
        [id("sip:tac-1@mc-a.example")],
    );
    let want = AuthorizationRefusal::NotAPartner {
        partner: id("mc-z.example"),
    };
    refused(&server, submission, &want);
    assert_eq!(outbox_depth(&server), 0, "never retried forever");
}

#[test]
fn the_requester_must_hold_the_functional_alias_they_submit_as() {
    let (server, directory, _) = primary();
    let as_alias = |alias: FunctionalAlias| Submission {
        requester_alias: Some(alias),
        ..provision(Target::User(bob()), 1)
    };
    let not_held = |alias: FunctionalAlias| AuthorizationRefusal::AliasNotHeld {
        alias,
        user: alice(),
    };

    // Held by nobody, then by somebody else.
    refused(&server, as_alias(lead()), &not_held(lead()));
    directory.set_alias_holders(lead(), vec![id("sip:mallory@mc-a.example")]);
    refused(&server, as_alias(lead()), &not_held(lead()));
    // An alias of another system is never held here, whatever the directory's table says.
    let foreign: FunctionalAlias = id("sip:lead@mc-b.example");
    directory.set_alias_holders(foreign.clone(), vec![alice()]);
    refused(&server, as_alias(foreign.clone()), &not_held(foreign));

    directory.set_alias_holders(lead(), vec![alice()]);
    let request = block_on(server.submit(&alice(), as_alias(lead()))).unwrap();
    match block_on(server.state(request)).unwrap() {
        RequestState::Primary(p) => {
            assert_eq!(p.authorization, Authorization::Granted);
            assert_eq!(p.request.requester_alias, Some(lead()));
        }
        other => panic!("expected an authorised request, got {other:?}"),
    }
    assert_eq!(outbox_depth(&server), 1);
}

#[test]
fn the_partner_shows_the_alias_only_when_the_requester_holds_it() {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        sys.a.directory.set_alias_holders(lead(), vec![alice()]);
        let submission = Submission {
            requester_alias: Some(lead()),
            partner: id("mc-b.example"),
            target: Target::User(bob()),
            body: AcmRequestBody::provision([id("sip:tac-1@mc-a.example")]),
            idempotency_key: None,
        };
        sys.a.server.submit(&alice(), submission).await.unwrap();
        sys.settle().await.unwrap();
        let items = sys.b.server.download_pending(&bob()).await.unwrap().items;
        match items.as_slice() {
            [PendingItem::Request { request, .. }] => {
                assert_eq!(request.requester_alias, Some(lead()));
            }
            other => panic!("expected the request, got {other:?}"),
        }
    });
}
