//! The HTTP APIs of one ACM server: the client API (its own ACM clients, bearer access
//! tokens) and the partner API (partner ACM servers, mutual TLS), with problem details,
//! limits, metrics and the `OpenAPI` document.
//!
//! - `client`, `notify`: the client API's handlers; `partner`: the partner API's;
//! - `extract`: the authenticated user, the sending partner, strict bodies;
//! - `error`, `problems`: every failure as a problem of a stable type;
//! - `ops`, `metrics`, `openapi`: operations routes.

mod client;
mod drain;
mod error;
mod extract;
mod metrics;
mod notify;
mod openapi;
mod ops;
mod partner;
mod problems;
mod seams;

use std::sync::Arc;
use std::time::Duration;

use acm_core::{AcmServer, McServiceId, SystemId};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rustls::pki_types::CertificateDer;
use tokio::sync::{Semaphore, watch};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyDeadlineLayer;
use tower_http::trace::TraceLayer;

pub use openapi::document as openapi_document;
pub use problems::{PROBLEM_KINDS, ProblemKind};

use crate::wire::{client_routes, ops_routes, partner_routes};
use error::ApiError;

/// Why an access token was refused: a stable `token_*` code and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    /// One of the `token_*` problem codes ([`PROBLEM_KINDS`]).
    pub code: &'static str,
    /// What was wrong, for the client.
    pub detail: String,
}

/// Checks a client's `Authorization` header and names its user; implemented by
/// [`TokenVerifier`](crate::TokenVerifier), or by a vendor's own token validation.
pub trait Authenticator: Send + Sync + 'static {
    /// The user the header's access token names.
    fn authenticate(&self, authorization: Option<&str>) -> Result<McServiceId, AuthFailure>;
}

/// Names the interconnected partner whose certificate chain a TLS client presented;
/// implemented by [`PartnerTrust`](crate::PartnerTrust).
pub trait PartnerIdentifier: Send + Sync + 'static {
    /// The partner, or `None` when the chain names none.
    fn identify(&self, chain: &[CertificateDer<'_>]) -> Option<SystemId>;
}

/// Limits and timings of the APIs.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
    /// How long a call may take before it is answered `timeout` (503).
    pub request_timeout: Duration,
    /// Calls in flight (per API) before more are answered `overloaded` (503).
    pub concurrency: usize,
    /// Notification streams open at once.
    pub max_streams: usize,
    /// How often an idle notification stream carries a keep-alive comment.
    pub keep_alive: Duration,
}

impl Default for ApiConfig {
    /// 64 KiB bodies arriving within 5 s, calls answered within 10 s, 256 calls in flight,
    /// 10,000 streams with a keep-alive every 15 s.
    fn default() -> Self {
        Self {
            body_limit: 64 * 1024,
            body_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            concurrency: 256,
            max_streams: 10_000,
            keep_alive: Duration::from_secs(15),
        }
    }
}

pub(crate) struct Inner {
    pub(crate) server: Arc<AcmServer>,
    pub(crate) tokens: Arc<dyn Authenticator>,
    pub(crate) partners: Arc<dyn PartnerIdentifier>,
    pub(crate) config: ApiConfig,
    pub(crate) client_calls: Arc<Semaphore>,
    pub(crate) partner_calls: Arc<Semaphore>,
    pub(crate) streams: Arc<Semaphore>,
    pub(crate) stopping: watch::Receiver<bool>,
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct ApiState {
    pub(crate) inner: Arc<Inner>,
}

/// The two APIs of one ACM server, ready to be served.
///
/// ```no_run
/// # fn wire(server: std::sync::Arc<acm_core::AcmServer>,
/// #         tokens: std::sync::Arc<dyn acm_transport_http::Authenticator>,
/// #         partners: std::sync::Arc<dyn acm_transport_http::PartnerIdentifier>) {
/// use acm_transport_http::{Api, ApiConfig};
/// let api = Api::new(server, tokens, partners, ApiConfig::default());
/// let client_api: axum::Router = api.client_router();   // serve over TLS
/// let partner_api: axum::Router = api.partner_router(); // serve over mutual TLS
/// # }
/// ```
pub struct Api {
    state: ApiState,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("config", &self.state.inner.config)
            .finish_non_exhaustive()
    }
}

impl Api {
    /// The APIs of `server`, authenticating clients with `tokens` and partners with
    /// `partners`.
    pub fn new(
        server: Arc<AcmServer>,
        tokens: Arc<dyn Authenticator>,
        partners: Arc<dyn PartnerIdentifier>,
        config: ApiConfig,
    ) -> Self {
        // Installed now, so the first scrape already sees the first requests.
        let _ = metrics::prometheus();
        let (stop, stopping) = watch::channel(false);
        let inner = Inner {
            client_calls: Arc::new(Semaphore::new(config.concurrency)),
            partner_calls: Arc::new(Semaphore::new(config.concurrency)),
            streams: Arc::new(Semaphore::new(config.max_streams)),
            server,
            tokens,
            partners,
            config,
            stopping,
        };
        Self {
            state: ApiState {
                inner: Arc::new(inner),
            },
            stop,
        }
    }

    /// The server the APIs serve.
    pub fn server(&self) -> &Arc<AcmServer> {
        &self.state.inner.server
    }

    /// Starts shutting down: notification streams end, readiness fails. Calls in flight
    /// finish; the listeners stop accepting separately.
    pub fn begin_shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// The client API, with the operations routes (`/healthz`, `/readyz`, `/metrics`,
    /// `/openapi.json`).
    pub fn client_router(&self) -> Router {
        let state = self.state.clone();
        let calls = Router::new()
            .route(client_routes::PROVISION_REQUESTS, post(client::submit))
            .route(
                client_routes::MEMBERSHIP_REQUESTS,
                post(client::submit_membership),
            )
            .route(
                client_routes::MIGRATION_REQUESTS,
                post(client::submit_migration),
            )
            .route(client_routes::REQUEST, get(client::status))
            .route(client_routes::WITHDRAWAL, post(client::withdraw))
            .route(client_routes::RESPONSE, post(client::respond))
            .route(client_routes::PENDING, get(client::pending))
            .route(client_routes::ACKNOWLEDGEMENT, post(client::acknowledge))
            .route_layer(middleware::from_fn_with_state(
                (state.clone(), state.inner.client_calls.clone()),
                admit,
            ));
        // Long-lived: outside the call limit and its timeout, under a limit of its own.
        let streams = Router::new().route(client_routes::NOTIFICATIONS, get(notify::notifications));
        let ops = Router::new()
            .route(ops_routes::HEALTHZ, get(ops::healthz))
            .route(ops_routes::READYZ, get(ops::readyz))
            .route(ops_routes::METRICS, get(ops::metrics))
            .route(ops_routes::OPENAPI, get(ops::openapi));
        self.common(calls.merge(streams).merge(ops), state)
    }

    /// The partner API.
    pub fn partner_router(&self) -> Router {
        let state = self.state.clone();
        let calls = Router::new()
            .route(partner_routes::PROVISION_REQUESTS, post(partner::request))
            .route(partner_routes::PROVISION_RESPONSES, post(partner::response))
            .route(partner_routes::WITHDRAWALS, post(partner::withdrawal))
            .route_layer(middleware::from_fn_with_state(
                (state.clone(), state.inner.partner_calls.clone()),
                admit,
            ));
        self.common(calls, state)
    }

    fn common(&self, routes: Router<ApiState>, state: ApiState) -> Router {
        let config = &self.state.inner.config;
        routes
            .fallback(ops::not_found)
            .method_not_allowed_fallback(ops::method_not_allowed)
            .layer(middleware::from_fn_with_state(
                config.body_timeout,
                drain::rest_of_body,
            ))
            .layer(DefaultBodyLimit::max(config.body_limit))
            .layer(RequestBodyDeadlineLayer::new(config.body_timeout))
            .layer(middleware::from_fn(metrics::record))
            .layer(
                TraceLayer::new_for_http().make_span_with(|request: &Request| {
                    let id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!(
                        "http",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id = %id,
                    )
                }),
            )
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .with_state(state)
    }
}

/// Admits a call when a place is free (503 `overloaded` otherwise: a queue would only add
/// latency), and answers 503 `timeout` when it takes too long. A call cut short by the
/// timeout may still have been recorded; retried with the same key, it gets the first answer.
async fn admit(
    State((state, calls)): State<(ApiState, Arc<Semaphore>)>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(_place) = calls.try_acquire_owned() else {
        ::metrics::counter!("acm_http_overloaded_total").increment(1);
        return ApiError::http("overloaded", "too many calls in flight").into_response();
    };
    match tokio::time::timeout(state.inner.config.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable("timeout", "the call took too long".into()).into_response(),
    }
}
