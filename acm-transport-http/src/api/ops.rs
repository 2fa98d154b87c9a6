//! Operations routes: liveness, readiness, metrics and the `OpenAPI` document.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::ApiState;
use super::error::ApiError;

/// Liveness: the process answers.
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the store answers and the server is not shutting down.
pub(crate) async fn readyz(State(state): State<ApiState>) -> Result<&'static str, ApiError> {
    if *state.inner.stopping.borrow() {
        return Err(ApiError::Unavailable("not_ready", "shutting down".into()));
    }
    match state.inner.server.store().head().await {
        Ok(_) => Ok("ready"),
        Err(error) => Err(ApiError::Unavailable("not_ready", error.to_string())),
    }
}

/// Prometheus text exposition.
pub(crate) async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        super::metrics::render(&state.inner.server).await,
    )
}

/// The `OpenAPI` document of both APIs.
pub(crate) async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(super::openapi::document())
}

/// Any route that does not exist.
pub(crate) async fn not_found() -> ApiError {
    ApiError::http("not_found", "no such resource")
}

/// A route that exists, with another method.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::http("method_not_allowed", "method not allowed on this resource")
}
