//! Group membership update and user migration management between systems A and B in one
//! process: the same common procedure as a provision, with each kind's own checks, a result
//! per listed user, urgency order in the download, and a kind the partner does not accept.
// A failed unwrap is a failed test; a scenario reads best as one function.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use acm_core::{
    AcmRequestKind, Decision, GroupId, McServiceId, MembershipOperation, MigrationOperation,
    Outcome, PendingItem, Processing, RejectionReason, Submission, SystemId, Target, Urgency,
    UserRefusal, UserResult, VerificationFailure,
};
use acm_store_memory::fixture::{TwoSystems, alice, bob, carol, id, provision};
use futures_executor::block_on;

fn b() -> SystemId {
    id("mc-b.example")
}
fn tac1() -> GroupId {
    id("sip:tac-1@mc-a.example")
}

async fn systems() -> TwoSystems {
    let sys = TwoSystems::new().await.unwrap();
    for kind in [
        AcmRequestKind::GroupMembershipUpdate,
        AcmRequestKind::UserMigrationManagement,
    ] {
        sys.a.directory.grant(alice(), b(), kind);
    }
    sys.b.directory.add_interconnection_group(tac1());
    sys
}

async fn response_at_a(sys: &TwoSystems, request: acm_core::RequestId) -> acm_core::AcmResponse {
    sys.a
        .response(request)
        .await
        .unwrap()
        .expect("a response at A")
}

#[test]
fn a_membership_update_comes_back_with_a_result_per_user_and_runs_the_hook() {
    block_on(async {
        let sys = systems().await;
        let unknown: McServiceId = id("sip:nobody@mc-b.example");
        let update = Submission::membership(
            b(),
            Target::User(bob()),
            tac1(),
            [carol(), unknown.clone()],
            MembershipOperation::Add,
            Some(Urgency::Emergency),
        );
        // A normal provision first, then the emergency update: bob's download lists the
        // update first.
        let provision_id = sys
            .a
            .server
            .submit(&alice(), provision(Target::User(bob()), 1))
            .await
            .unwrap();
        let update_id = sys.a.server.submit(&alice(), update).await.unwrap();
        sys.settle().await.unwrap();
        let download = sys.b.server.download_pending(&bob()).await.unwrap();
        let order: Vec<_> = download
            .items
            .iter()
            .map(|i| i.request().request_id)
            .collect();
        assert_eq!(order, [update_id, provision_id], "most urgent first");
        assert!(
            matches!(&download.items[0], PendingItem::Request { request, .. }
            if request.body.urgency() == Urgency::Emergency)
        );

        sys.b
            .server
            .respond(&bob(), None, update_id, Decision::Accept)
            .await
            .unwrap();
        sys.settle().await.unwrap();
        let response = response_at_a(&sys, update_id).await;
        assert_eq!(response.outcome, Outcome::Accepted);
        assert_eq!(
            &response.user_results[..],
            [
                UserResult::Applied { user: carol() },
                UserResult::Refused {
                    user: unknown,
                    reason: UserRefusal::UnknownUser
                },
            ]
        );
        assert_eq!(sys.b.hook.calls(), [update_id], "B's hook got the change");
    });
}

#[test]
fn an_update_of_a_group_unknown_at_the_partner_is_rejected_with_the_reason() {
    block_on(async {
        let sys = systems().await;
        let other: GroupId = id("sip:tac-2@mc-a.example");
        let update = Submission::membership(
            b(),
            Target::User(bob()),
            other.clone(),
            [carol()],
            MembershipOperation::Delete,
            None,
        );
        let request = sys.a.server.submit(&alice(), update).await.unwrap();
        sys.settle().await.unwrap();
        let response = response_at_a(&sys, request).await;
        assert_eq!(
            response.outcome,
            Outcome::Rejected {
                reason: RejectionReason::Verification {
                    failure: VerificationFailure::NotAnInterconnectionGroup { group: other }
                }
            }
        );
        assert!(sys.b.server.pending_for(&bob()).await.unwrap().is_empty());
    });
}

#[test]
fn a_migration_is_answered_and_a_kind_not_accepted_is_refused_with_its_reason() {
    block_on(async {
        let sys = systems().await;
        let erin: McServiceId = id("sip:erin@mc-a.example");
        let migration = || {
            Submission::migration(
                b(),
                Target::User(bob()),
                [erin.clone()],
                MigrationOperation::Add,
            )
        };
        let accepted = sys.a.server.submit(&alice(), migration()).await.unwrap();
        sys.settle().await.unwrap();
        sys.bob_answers(accepted, Decision::Accept).await.unwrap();
        let response = response_at_a(&sys, accepted).await;
        assert_eq!(response.outcome, Outcome::Accepted);
        assert!(response.user_results.is_empty());
        assert_eq!(sys.b.hook.calls(), [accepted]);

        sys.b.directory.set_processing(
            AcmRequestKind::UserMigrationManagement,
            Processing::NotAccepted,
        );
        let refused = sys.a.server.submit(&alice(), migration()).await.unwrap();
        sys.settle().await.unwrap();
        let response = response_at_a(&sys, refused).await;
        assert_eq!(
            response.outcome,
            Outcome::Rejected {
                reason: RejectionReason::Verification {
                    failure: VerificationFailure::KindNotAccepted {
                        kind: AcmRequestKind::UserMigrationManagement
                    }
                }
            }
        );
    });
}

#[test]
fn step_2_authorises_each_kind_on_its_own() {
    block_on(async {
        // Alice may provide group IDs to B, and nothing else until granted.
        let sys = TwoSystems::new().await.unwrap();
        let refused = sys
            .a
            .server
            .submit(
                &alice(),
                Submission::migration(
                    b(),
                    Target::User(bob()),
                    [id("sip:erin@mc-a.example")],
                    MigrationOperation::Remove,
                ),
            )
            .await;
        assert!(
            matches!(
                refused,
                Err(acm_core::ServiceError::Refused {
                    reason: acm_core::AuthorizationRefusal::NotAuthorized { .. },
                    ..
                })
            ),
            "{refused:?}"
        );
    });
}
