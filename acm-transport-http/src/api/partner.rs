//! The partner API's handlers: messages from partner ACM servers, acknowledged once stored.

use acm_core::PartnerMessage;
use axum::Json;
use axum::extract::State;

use super::ApiState;
use super::error::ApiError;
use super::extract::{Body, Sender};
use crate::wire::{ForwardedRequest, ForwardedResponse, ForwardedWithdrawal, PartnerAckBody};

async fn receive(
    state: &ApiState,
    Sender(from): Sender,
    message: PartnerMessage,
) -> Result<Json<PartnerAckBody>, ApiError> {
    let ack = state.inner.server.receive(&from, message).await?;
    Ok(Json(PartnerAckBody { ack }))
}

/// Steps 3 → 4a/4b: a primary forwards an interconnection group identity provision request.
/// The answer is TS 23.280's process indication: received and stored (a replay is
/// acknowledged again and stored once).
#[utoipa::path(
    post,
    path = "/acm-partner/v1/interconnection-group-identity-provision/requests",
    tag = "partner",
    request_body = ForwardedRequest,
    responses(
        (status = 200, description = "Stored", body = PartnerAckBody),
    ),
    security(("mutual_tls" = []))
)]
pub(crate) async fn request(
    State(state): State<ApiState>,
    sender: Sender,
    Body(body): Body<ForwardedRequest>,
) -> Result<Json<PartnerAckBody>, ApiError> {
    receive(&state, sender, body.into()).await
}

/// Steps 10 → 11: a partner forwards its response.
#[utoipa::path(
    post,
    path = "/acm-partner/v1/interconnection-group-identity-provision/responses",
    tag = "partner",
    request_body = ForwardedResponse,
    responses(
        (status = 200, description = "Stored", body = PartnerAckBody),
    ),
    security(("mutual_tls" = []))
)]
pub(crate) async fn response(
    State(state): State<ApiState>,
    sender: Sender,
    Body(body): Body<ForwardedResponse>,
) -> Result<Json<PartnerAckBody>, ApiError> {
    receive(&state, sender, body.into()).await
}

/// A requester's withdrawal: withdrawn, or too late.
#[utoipa::path(
    post,
    path = "/acm-partner/v1/withdrawals",
    tag = "partner",
    request_body = ForwardedWithdrawal,
    responses(
        (status = 200, description = "`withdrawn` or `too_late`", body = PartnerAckBody),
    ),
    security(("mutual_tls" = []))
)]
pub(crate) async fn withdrawal(
    State(state): State<ApiState>,
    sender: Sender,
    Body(body): Body<ForwardedWithdrawal>,
) -> Result<Json<PartnerAckBody>, ApiError> {
    receive(&state, sender, body.into()).await
}
