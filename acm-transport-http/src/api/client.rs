//! The client API's handlers: what an ACM client asks of its own ACM server.

use acm_core::{Authorization, Decision, RequestState, Submission, Withdrawal};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::ApiState;
use super::error::ApiError;
use super::extract::{Body, Id, Key, User};
use crate::wire::{
    Acknowledgement, AcknowledgementRecorded, DecisionKind, MembershipSubmission,
    MigrationSubmission, ProvisionSubmission, RequestStatus, ResponseSubmission,
    SubmissionAccepted, WithdrawalAccepted,
};

/// Step 1: submit an interconnection group identity provision request.
#[utoipa::path(
    post,
    path = "/acm/v1/interconnection-group-identity-provision/requests",
    tag = "client",
    request_body = ProvisionSubmission,
    params(("Idempotency-Key" = acm_core::IdempotencyKey, Header, description = "The client's key for this submission (1–255 visible ASCII); a retry with the same key and content gets the first answer")),
    responses(
        (status = 202, description = "Authorised (step 2) and queued for the partner (step 3)", body = SubmissionAccepted),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn submit(
    State(state): State<ApiState>,
    User(user): User,
    Key(key): Key,
    Body(body): Body<ProvisionSubmission>,
) -> Result<(StatusCode, Json<SubmissionAccepted>), ApiError> {
    let mut submission = Submission::provision(body.partner, body.target, body.groups);
    submission.requester_alias = body.requester_alias;
    submit_as(&state, &user, body.requester.as_ref(), key, submission).await
}

/// Step 1: submit a group membership update request.
#[utoipa::path(
    post,
    path = "/acm/v1/group-membership-update/requests",
    tag = "client",
    request_body = MembershipSubmission,
    params(("Idempotency-Key" = acm_core::IdempotencyKey, Header, description = "The client's key for this submission (1–255 visible ASCII); a retry with the same key and content gets the first answer")),
    responses(
        (status = 202, description = "Authorised (step 2) and queued for the partner (step 3)", body = SubmissionAccepted),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn submit_membership(
    State(state): State<ApiState>,
    User(user): User,
    Key(key): Key,
    Body(body): Body<MembershipSubmission>,
) -> Result<(StatusCode, Json<SubmissionAccepted>), ApiError> {
    let mut submission = Submission::new(body.partner.clone(), body.target.clone(), body.body());
    submission.requester_alias = body.requester_alias;
    submit_as(&state, &user, body.requester.as_ref(), key, submission).await
}

/// Step 1: submit a user migration management request (add or remove user configuration
/// request).
#[utoipa::path(
    post,
    path = "/acm/v1/user-migration-management/requests",
    tag = "client",
    request_body = MigrationSubmission,
    params(("Idempotency-Key" = acm_core::IdempotencyKey, Header, description = "The client's key for this submission (1–255 visible ASCII); a retry with the same key and content gets the first answer")),
    responses(
        (status = 202, description = "Authorised (step 2) and queued for the partner (step 3)", body = SubmissionAccepted),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn submit_migration(
    State(state): State<ApiState>,
    User(user): User,
    Key(key): Key,
    Body(body): Body<MigrationSubmission>,
) -> Result<(StatusCode, Json<SubmissionAccepted>), ApiError> {
    let mut submission = Submission::new(body.partner.clone(), body.target.clone(), body.body());
    submission.requester_alias = body.requester_alias;
    submit_as(&state, &user, body.requester.as_ref(), key, submission).await
}

/// Steps 1–3 for any kind: the body's requester, when it names one, must be the token's.
async fn submit_as(
    state: &ApiState,
    user: &acm_core::McServiceId,
    requester: Option<&acm_core::McServiceId>,
    key: acm_core::IdempotencyKey,
    submission: Submission,
) -> Result<(StatusCode, Json<SubmissionAccepted>), ApiError> {
    if let Some(requester) = requester
        && requester != user
    {
        return Err(ApiError::http(
            "requester_mismatch",
            format!("the token is {user}'s, the body names {requester}"),
        ));
    }
    let request_id = state
        .inner
        .server
        .submit(user, submission.with_key(key))
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SubmissionAccepted {
            request_id,
            status: "queued".into(),
        }),
    ))
}

/// One request as its requester sees it.
#[utoipa::path(
    get,
    path = "/acm/v1/requests/{request_id}",
    tag = "client",
    params(("request_id" = acm_core::RequestId, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The request as its requester sees it", body = RequestStatus),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn status(
    State(state): State<ApiState>,
    User(user): User,
    Id(id): Id,
) -> Result<Json<RequestStatus>, ApiError> {
    match state.inner.server.state(id).await? {
        RequestState::Primary(p) if p.request.requester == user => Ok(Json(status_of(&p))),
        // Another user's request, or one of another system, is not shown: it is unknown.
        _ => Err(ApiError::Domain(acm_core::DomainError::UnknownRequest)),
    }
}

fn status_of(p: &acm_core::PrimaryState) -> RequestStatus {
    let refusal = match &p.authorization {
        Authorization::Refused(reason) => Some(reason.code().to_owned()),
        _ => None,
    };
    let withdrawal = match p.withdrawal {
        Withdrawal::None => "none",
        Withdrawal::Requested(_) => "requested",
        Withdrawal::Withdrawn(_) => "withdrawn",
        Withdrawal::Refused(_) => "too_late",
    };
    let stage = if refusal.is_some() {
        "refused"
    } else if p.response.is_some() {
        "answered"
    } else if matches!(p.withdrawal, Withdrawal::Withdrawn(_)) {
        "withdrawn"
    } else if p.undeliverable {
        "undeliverable"
    } else if p.partner_stored {
        "stored_at_partner"
    } else {
        "queued"
    };
    RequestStatus {
        request_id: p.request.request_id,
        kind: p.request.body.kind(),
        stage: stage.into(),
        partner: p.request.partner.clone(),
        target: p.request.target.clone(),
        groups: p.request.body.groups().to_vec(),
        users: p.request.body.users().to_vec(),
        submitted_at: p.submitted_at,
        refusal,
        withdrawal: withdrawal.into(),
        response: p.response.as_ref().map(|(_, r)| r.clone()),
        delivered: p.response_delivered || p.undeliverable_delivered,
    }
}

/// The requester withdraws their request; the partner's answer arrives as pending ACM data.
#[utoipa::path(
    post,
    path = "/acm/v1/requests/{request_id}/withdrawal",
    tag = "client",
    params(("request_id" = acm_core::RequestId, Path, description = "The request's id")),
    responses(
        (status = 202, description = "The withdrawal is owed to the partner; its answer arrives as pending ACM data", body = WithdrawalAccepted),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn withdraw(
    State(state): State<ApiState>,
    User(user): User,
    Id(id): Id,
) -> Result<(StatusCode, Json<WithdrawalAccepted>), ApiError> {
    state.inner.server.withdraw(&user, id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(WithdrawalAccepted {
            request_id: id,
            status: "withdrawal_requested".into(),
        }),
    ))
}

/// Step 9: a recipient answers a delivered request. The same answer again is harmless.
#[utoipa::path(
    post,
    path = "/acm/v1/requests/{request_id}/response",
    tag = "client",
    request_body = ResponseSubmission,
    params(("request_id" = acm_core::RequestId, Path, description = "The request's id")),
    responses(
        (status = 204, description = "Recorded (or recorded before)"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn respond(
    State(state): State<ApiState>,
    User(user): User,
    Id(id): Id,
    Body(body): Body<ResponseSubmission>,
) -> Result<StatusCode, ApiError> {
    let decision = match (body.decision, body.reason) {
        (DecisionKind::Accept, None) => Decision::Accept,
        (DecisionKind::Accept, Some(_)) => {
            return Err(ApiError::http(
                "invalid_body",
                "a reason is given with a rejection only",
            ));
        }
        (DecisionKind::Reject, reason) => Decision::Reject { reason },
    };
    state
        .inner
        .server
        .respond(&user, body.responder_alias, id, decision)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Steps 7b–8 and 13b–14: the pending ACM data download. Responses stay pending until the
/// acknowledgement, so a lost answer loses nothing.
#[utoipa::path(
    get,
    path = "/acm/v1/pending-acm-data",
    tag = "client",
    responses((status = 200, description = "The pending ACM data download response: the user and everything pending for them", body = acm_core::PendingAcmData)),
    security(("bearer" = []))
)]
pub(crate) async fn pending(
    State(state): State<ApiState>,
    User(user): User,
) -> Result<Json<acm_core::PendingAcmData>, ApiError> {
    Ok(Json(state.inner.server.download_pending(&user).await?))
}

/// The client has the items of a download: they are no longer pending.
#[utoipa::path(
    post,
    path = "/acm/v1/pending-acm-data/acknowledgement",
    tag = "client",
    request_body = Acknowledgement,
    responses((status = 200, description = "What the acknowledgement recorded", body = AcknowledgementRecorded)),
    security(("bearer" = []))
)]
pub(crate) async fn acknowledge(
    State(state): State<ApiState>,
    User(user): User,
    Body(body): Body<Acknowledgement>,
) -> Result<Json<AcknowledgementRecorded>, ApiError> {
    let recorded = state
        .inner
        .server
        .acknowledge_download(&user, &body.items)
        .await?;
    Ok(Json(AcknowledgementRecorded { recorded }))
}
