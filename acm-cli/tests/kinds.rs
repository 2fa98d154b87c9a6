//! Group membership update and user migration management between two `acm serve`
//! processes, through their client APIs: the 14 steps of each kind, a result per listed user,
//! a kind the partner is configured not to accept, and the submissions each kind refuses.
// A scenario reads best as one function.
#![allow(clippy::too_many_lines)]

mod common;

use acm_core::{
    AcmRequestBody, AcmRequestKind, IdempotencyKey, MembershipOperation, MigrationOperation,
    Outcome, PendingItem, RejectionReason, RequestId, Target, Urgency, UserRefusal, UserResult,
    VerificationFailure,
};
use acm_transport_http::wire::{
    DecisionKind, MembershipSubmission, MigrationSubmission, ResponseSubmission,
};
use acm_transport_http::{AcmClient, ClientError, Submitted};
use common::{A, ALICE, B, BOB, Systems, Tweaks, id, until_stage, within};

const ACCEPT: ResponseSubmission = ResponseSubmission {
    decision: DecisionKind::Accept,
    reason: None,
    responder_alias: None,
};
const ERIN: &str = "sip:erin@mc-a.example";
const NOBODY: &str = "sip:nobody@mc-b.example";

fn key(text: &str) -> IdempotencyKey {
    id(text)
}

fn membership(users: &[&str], urgency: Option<Urgency>) -> MembershipSubmission {
    MembershipSubmission {
        partner: id(B),
        target: Target::User(id(BOB)),
        group: id(&format!("sip:tac-1@{A}")),
        users: users.iter().map(|u| id(u)).collect(),
        operation: MembershipOperation::Add,
        urgency,
        requester_alias: None,
        requester: None,
    }
}

fn migration(users: &[&str]) -> MigrationSubmission {
    MigrationSubmission {
        partner: id(B),
        target: Target::User(id(BOB)),
        users: users.iter().map(|u| id(u)).collect(),
        operation: MigrationOperation::Add,
        requester_alias: None,
        requester: None,
    }
}

fn queued(answer: Result<Submitted, ClientError>) -> RequestId {
    match answer {
        Ok(Submitted::Queued(accepted)) => accepted.request_id,
        other => panic!("submission not queued: {other:?}"),
    }
}

/// Bob downloads until `request` is among his items, answers it, and the answer reaches A.
async fn bob_accepts(bob: &AcmClient, alice: &AcmClient, request: RequestId) -> Vec<PendingItem> {
    let items = within(&format!("{request} pending for bob"), async {
        loop {
            let pending = bob
                .pending()
                .await
                .unwrap_or_else(|e| panic!("download: {e}"));
            if pending
                .items
                .iter()
                .any(|i| i.request().request_id == request)
            {
                return pending.items;
            }
            tokio::time::sleep(common::POLL).await;
        }
    })
    .await;
    bob.respond(request, &ACCEPT)
        .await
        .unwrap_or_else(|e| panic!("bob's answer: {e}"));
    until_stage(alice, request, "answered").await;
    items
}

#[tokio::test]
async fn a_membership_update_and_a_migration_walk_the_procedure() {
    let mut systems = Systems::start().await;
    let alice = systems.a.client(ALICE);
    let bob = systems.b.client(BOB);

    // A provision first, then an emergency membership update: bob's download lists the update
    // first.
    let provision = queued(
        alice
            .submit(&common::provision(&["tac-1"]), &key("kinds-provision"))
            .await,
    );
    until_stage(&alice, provision, "stored_at_partner").await;
    let update = queued(
        alice
            .submit_membership(
                &membership(&[BOB, NOBODY], Some(Urgency::Emergency)),
                &key("kinds-membership"),
            )
            .await,
    );
    until_stage(&alice, update, "stored_at_partner").await;
    let items = bob_accepts(&bob, &alice, update).await;
    let order: Vec<_> = items.iter().map(|i| i.request().request_id).collect();
    assert_eq!(
        order,
        [update, provision],
        "the emergency update comes first"
    );
    assert!(matches!(&items[0], PendingItem::Request { request, .. }
    if matches!(&request.body, AcmRequestBody::GroupMembershipUpdate {
        operation: MembershipOperation::Add, urgency: Some(Urgency::Emergency), ..
    })));

    let status = until_stage(&alice, update, "answered").await;
    assert_eq!(status.kind, AcmRequestKind::GroupMembershipUpdate);
    assert_eq!(status.users.len(), 2);
    let response = status.response.unwrap_or_else(|| panic!("no response"));
    assert_eq!(response.outcome, Outcome::Accepted);
    assert_eq!(
        &response.user_results[..],
        [
            UserResult::Applied { user: id(BOB) },
            UserResult::Refused {
                user: id(NOBODY),
                reason: UserRefusal::UnknownUser
            },
        ]
    );

    // User migration management: erin of A authorised to migrate to B.
    let moving = queued(
        alice
            .submit_migration(&migration(&[ERIN]), &key("kinds-migration"))
            .await,
    );
    bob_accepts(&bob, &alice, moving).await;
    let status = until_stage(&alice, moving, "answered").await;
    assert_eq!(status.kind, AcmRequestKind::UserMigrationManagement);
    assert!(
        status
            .response
            .is_some_and(|r| r.outcome.is_accepted() && r.user_results.is_empty())
    );

    // B recorded the common events for each, its hook applied each acceptance.
    for request in [update, moving] {
        // The hook and the relay run apart: their two events come in either order.
        common::partner::until_events(&systems.b, request, "B's hook", |types| {
            let mut types = types.to_vec();
            if let Some(last_two) = types.get_mut(4..) {
                last_two.sort();
            }
            types
                == [
                    "stored",
                    "verified",
                    "delivered",
                    "responded",
                    "acceptance_applied",
                    "response_forwarded",
                ]
        })
        .await;
    }
    systems.a.terminate().await;
    systems.b.terminate().await;
}

#[tokio::test]
async fn a_kind_the_partner_does_not_accept_comes_back_rejected_with_its_reason() {
    let b = Tweaks {
        kind_processing: vec![("user_migration_management", "not_accepted")],
        ..Tweaks::default()
    };
    let mut systems = Systems::start_with(&Tweaks::default(), &b).await;
    let alice = systems.a.client(ALICE);
    let request = queued(
        alice
            .submit_migration(&migration(&[ERIN]), &key("kinds-not-accepted"))
            .await,
    );
    let status = until_stage(&alice, request, "answered").await;
    assert_eq!(
        status.response.map(|r| r.outcome),
        Some(Outcome::Rejected {
            reason: RejectionReason::Verification {
                failure: VerificationFailure::KindNotAccepted {
                    kind: AcmRequestKind::UserMigrationManagement
                }
            }
        })
    );
    systems.a.terminate().await;
    systems.b.terminate().await;
}

#[tokio::test]
async fn each_kinds_bad_submissions_are_refused_and_record_nothing() {
    let mut systems = Systems::start().await;
    let alice = systems.a.client(ALICE);
    let before = systems.a.events().len();
    let mut to_server = membership(&[BOB], None);
    to_server.target = Target::PartnerServer;
    let mut delete_from_b = membership(&[ALICE], None);
    delete_from_b.operation = MembershipOperation::Delete;
    let too_many: Vec<String> = (0..257).map(|i| format!("sip:u{i}@{B}")).collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    let cases: Vec<(&str, Result<Submitted, ClientError>, &str)> = vec![
        (
            "membership, no users",
            alice
                .submit_membership(&membership(&[], None), &key("bad-1"))
                .await,
            "empty_user_list",
        ),
        (
            "membership, a user twice",
            alice
                .submit_membership(&membership(&[BOB, BOB], None), &key("bad-2"))
                .await,
            "duplicate_user",
        ),
        (
            "membership, 257 users",
            alice
                .submit_membership(&membership(&too_many, None), &key("bad-3"))
                .await,
            "too_many_users",
        ),
        (
            "membership, a user of A",
            alice.submit_membership(&delete_from_b, &key("bad-4")).await,
            "user_outside_partner",
        ),
        (
            "membership, to the partner server",
            alice.submit_membership(&to_server, &key("bad-5")).await,
            "target_must_be_user_or_alias",
        ),
        (
            "migration, a user of B",
            alice
                .submit_migration(&migration(&[ERIN, BOB]), &key("bad-6"))
                .await,
            "user_not_of_requester_system",
        ),
        (
            "migration, no users",
            alice.submit_migration(&migration(&[]), &key("bad-7")).await,
            "empty_user_list",
        ),
    ];
    for (what, answer, code) in cases {
        match answer {
            Err(ClientError::Problem(problem)) => {
                assert_eq!((problem.status, problem.code()), (422, code), "{what}");
            }
            other => panic!("{what}: expected a 422 {code}, got {other:?}"),
        }
    }
    assert_eq!(systems.a.events().len(), before, "nothing recorded");
    systems.a.terminate().await;
    systems.b.terminate().await;
}

/// `acm client membership` and `acm client migration` submit to a running server, print the
/// request id, and the request is of its kind.
#[tokio::test]
async fn acm_client_submits_each_kind() {
    let mut systems = Systems::start().await;
    let alice = systems.a.client(ALICE);
    let ca = systems.certs(A).join("ca.pem");
    let token = systems.a.token(ALICE);
    let server = systems.a.client_url();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "client".to_owned(),
            "--server".to_owned(),
            server.clone(),
            "--ca".to_owned(),
            ca.to_string_lossy().into_owned(),
            "--token".to_owned(),
            token.clone(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            common::acm(&args)
        })
    };
    let group = format!("sip:tac-1@{A}");
    let to = ["--partner", B, "--target-user", BOB];
    for (kind, extra, expected) in [
        (
            "membership",
            vec![
                "--group",
                &group,
                "--user",
                BOB,
                "--operation",
                "add",
                "--urgency",
                "urgent",
            ],
            AcmRequestKind::GroupMembershipUpdate,
        ),
        (
            "migration",
            vec!["--user", ERIN, "--operation", "remove"],
            AcmRequestKind::UserMigrationManagement,
        ),
    ] {
        let mut args = vec![kind];
        args.extend(to);
        args.extend(extra);
        let (status, out, err) = run(&args).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(status.success(), "acm client {kind}: {err}");
        let printed: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out}: {e}"));
        assert_eq!(printed["status"], "queued", "{out}");
        let request: RequestId = id(printed["request_id"].as_str().unwrap_or_default());
        let status = until_stage(&alice, request, "stored_at_partner").await;
        assert_eq!(status.kind, expected);
    }
    // A migration without its operation is a usage error, and nothing is sent.
    let mut args = vec!["migration"];
    args.extend(to);
    args.extend(["--user", ERIN]);
    let (status, _, err) = run(&args).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.code(), Some(2), "{err}");
    systems.a.terminate().await;
    systems.b.terminate().await;
}
