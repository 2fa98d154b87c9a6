//! Why an API call failed, and the problem details it is answered with.

use std::time::Duration;

use acm_core::{AuthorizationRefusal, DomainError, IdError, RequestId, ServiceError, StoreError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::problems::problem_kind;
use crate::problem::{PROBLEM_JSON, Problem};

/// How long a client is asked to wait before retrying a 503.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long before retrying a 507: space comes back when an operator frees it, not in a second.
const RETRY_AFTER_FULL: Duration = Duration::from_secs(30);

/// A failed API call. Every variant is answered with a problem of a stable type; a client's
/// mistake is never a 5xx.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// A problem of the HTTP layer, by code, with a detail.
    Http(&'static str, String),
    /// The access token was refused.
    Token(&'static str, String),
    /// The lifecycle refused the command.
    Domain(DomainError),
    /// Step 2 refused the submission (recorded).
    Refused {
        request_id: RequestId,
        reason: AuthorizationRefusal,
    },
    /// The idempotency key names another submission.
    KeyReused { request_id: RequestId },
    /// The server cannot answer now; nothing was recorded, or a retry is harmless.
    Unavailable(&'static str, String),
    /// A failure that is nobody's mistake but ours.
    Internal(String),
}

impl ApiError {
    pub(crate) fn http(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Http(code, detail.into())
    }

    pub(crate) fn invalid_id(error: &IdError) -> Self {
        Self::http("invalid_request_id", error.to_string())
    }

    /// The stable code.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::Http(code, _) | Self::Token(code, _) | Self::Unavailable(code, _) => code,
            Self::Domain(error) => error.code(),
            Self::Refused { .. } => "authorization_refused",
            Self::KeyReused { .. } => "idempotency_key_reused",
            Self::Internal(_) => "internal",
        }
    }

    /// The problem details.
    pub(crate) fn problem(&self) -> Problem {
        let kind = problem_kind(self.code());
        let problem = Problem::new(kind.code, kind.status, kind.title);
        match self {
            Self::Http(_, detail)
            | Self::Token(_, detail)
            | Self::Unavailable(_, detail)
            | Self::Internal(detail) => problem.with_detail(detail.clone()),
            Self::Domain(error) => problem.with_detail(error.to_string()).with("error", error),
            Self::Refused { request_id, reason } => problem
                .with_detail(reason.to_string())
                .with("request_id", request_id)
                .with("refusal", reason.code())
                .with("reason", reason),
            Self::KeyReused { request_id } => problem
                .with_detail(format!(
                    "the key was used for request {request_id}, with other content"
                ))
                .with("request_id", request_id),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Domain(error) => Self::Domain(error),
            ServiceError::Refused { request_id, reason } => Self::Refused { request_id, reason },
            ServiceError::IdempotencyConflict { request_id, .. } => Self::KeyReused { request_id },
            ServiceError::Unavailable(error) => {
                Self::Unavailable("directory_unavailable", error.to_string())
            }
            ServiceError::Store(error) => error.into(),
            ServiceError::Contention(id) => {
                Self::Unavailable("busy", format!("request {id} is busy; try again"))
            }
            other => {
                tracing::error!(error = %other, "service failure");
                Self::Internal(other.to_string())
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        if let StoreError::StorageFull { .. } = &error {
            tracing::error!(%error, "storage full: the write is refused (507)");
            return Self::Unavailable(
                "storage_full",
                "the server's storage is full; nothing was recorded".to_owned(),
            );
        }
        tracing::warn!(%error, "store failure answered as 503");
        // The text of a backend failure may name files; the client learns only the kind.
        let detail = match &error {
            StoreError::Halted { .. } => "the store stopped after an I/O failure",
            _ => "the store failed; retry with the same key",
        };
        Self::Unavailable("store_unavailable", detail.to_owned())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        let retry_after = match status {
            StatusCode::SERVICE_UNAVAILABLE => Some(RETRY_AFTER),
            StatusCode::INSUFFICIENT_STORAGE => Some(RETRY_AFTER_FULL),
            _ => None,
        };
        if let Some(after) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(after.as_secs()));
        }
        if matches!(self, Self::Token(..)) {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        response
    }
}
