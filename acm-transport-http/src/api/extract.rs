//! What handlers take from a request: the authenticated user, the partner system a client
//! certificate names, a strictly read JSON body, the idempotency key, a request id.

use std::sync::Arc;

use acm_core::{IdempotencyKey, McServiceId, RequestId, SystemId};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use rustls::pki_types::CertificateDer;
use serde::de::DeserializeOwned;

use super::ApiState;
use super::error::ApiError;
use super::problems::problem_kind;
use crate::wire::IDEMPOTENCY_KEY;

/// The user an access token names: the requester and the actor of every client call.
#[derive(Debug, Clone)]
pub(crate) struct User(pub McServiceId);

impl FromRequestParts<ApiState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let header = match single(parts, header::AUTHORIZATION.as_str()) {
            Err(()) => {
                // A proxy may have checked one of them and the server would read another.
                return Err(ApiError::Token(
                    "token_malformed",
                    "more than one Authorization header".into(),
                ));
            }
            Ok(None) => None,
            Ok(Some(value)) => Some(value.to_str().map_err(|_| {
                ApiError::Token(
                    "token_malformed",
                    "the Authorization header is not text".into(),
                )
            })?),
        };
        match state.inner.tokens.authenticate(header) {
            Ok(user) => Ok(Self(user)),
            Err(failure) => {
                // A vendor's authenticator naming no token problem is still a 401.
                let code = if problem_kind(failure.code).status == 401 {
                    failure.code
                } else {
                    "token_malformed"
                };
                Err(ApiError::Token(code, failure.detail))
            }
        }
    }
}

/// The interconnected partner system whose certificate the TLS client presented: never taken
/// from the body.
#[derive(Debug, Clone)]
pub(crate) struct Sender(pub SystemId);

impl FromRequestParts<ApiState> for Sender {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let unknown =
            || ApiError::http("unknown_partner", "no interconnected partner's certificate");
        let info = parts
            .extensions
            .get::<Arc<axum_server::tls::TlsInfo>>()
            .ok_or_else(unknown)?;
        let chain: Vec<CertificateDer<'_>> = info
            .peer_certificates
            .iter()
            .map(|der| CertificateDer::from(der.as_slice()))
            .collect();
        state
            .inner
            .partners
            .identify(&chain)
            .map(Self)
            .ok_or_else(unknown)
    }
}

/// A JSON body read strictly (unknown fields are refused by the wire types), with each
/// failure answered by its own problem type.
#[derive(Debug)]
pub(crate) struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    let detail = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => ApiError::Http("invalid_body", detail),
        JsonRejection::JsonSyntaxError(_) => ApiError::Http("malformed_json", detail),
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::Http("unsupported_media_type", detail)
        }
        _ if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::Http("body_too_large", detail)
        }
        _ if caused_by_timeout(rejection) => {
            ApiError::http("body_timeout", "the body did not arrive in time")
        }
        _ => ApiError::Http("malformed_json", detail),
    }
}

fn caused_by_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// The client's `Idempotency-Key` header, required on a submission.
#[derive(Debug, Clone)]
pub(crate) struct Key(pub IdempotencyKey);

impl<S: Send + Sync> FromRequestParts<S> for Key {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let value = single(parts, IDEMPOTENCY_KEY)
            .map_err(|()| {
                // Which of two keys a retry's answer is looked up by must not be a guess.
                ApiError::http(
                    "idempotency_key_invalid",
                    "more than one Idempotency-Key header",
                )
            })?
            .ok_or_else(|| {
                ApiError::http("idempotency_key_missing", "send an Idempotency-Key header")
            })?;
        let text = value.to_str().map_err(|_| {
            ApiError::http("idempotency_key_invalid", "the key is not visible ASCII")
        })?;
        text.parse().map(Self).map_err(|e: acm_core::IdError| {
            ApiError::http("idempotency_key_invalid", e.to_string())
        })
    }
}

/// The one value of header `name`, if any; `Err` when it is given more than once (RFC 9110
/// allows a list only for fields defined as lists, and these two are single values).
fn single<'a>(parts: &'a Parts, name: &str) -> Result<Option<&'a HeaderValue>, ()> {
    let mut values = parts.headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (first, None) => Ok(first),
        _ => Err(()),
    }
}

/// The `{request_id}` of the path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Id(pub RequestId);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(text) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::http("invalid_request_id", e.body_text()))?;
        text.parse().map(Self).map_err(|e| ApiError::invalid_id(&e))
    }
}
