//! [`AcmClient`]: a typed HTTPS client of the client API (an ACM client → its own ACM
//! server), for `acm client`, the demo, `acm load` and tests.
//!
//! One client holds one connection pool that trusts only the ACM server's CA; each user is a
//! token on that pool ([`AcmClient::with_token`]).

mod error;
mod sse;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use acm_core::{DownloadedItem, IdempotencyKey, PendingAcmData, PendingItem, RequestId};
use reqwest::header::{self, HeaderName, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::de::DeserializeOwned;

use crate::wire::{
    self, Acknowledgement, AcknowledgementRecorded, MembershipSubmission, MigrationSubmission,
    ProvisionSubmission, RequestStatus, ResponseSubmission, SubmissionAccepted, WithdrawalAccepted,
    client_routes,
};
use crate::{PROBLEM_JSON, Problem};

pub use error::ClientError;
pub use sse::{Notice, Notifications};

/// How long connecting (TCP and TLS) may take, for every call including the notification
/// stream, which has no overall time-out.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest success body read; the client API's answers are far smaller, and a server
/// that sends more must not exhaust the client's memory.
const MAX_BODY_BYTES: usize = 16 << 20;

/// The most of an error answer's body kept: enough for any problem details object.
const MAX_ERROR_BODY_BYTES: usize = 16 << 10;

/// The problem code of a submission refused at step 2.
const AUTHORIZATION_REFUSED: &str = "authorization_refused";

const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
const EVENT_STREAM: &str = "text/event-stream";

/// A typed HTTPS client of the ACM client API, acting for the user of its token.
///
/// Cloning it (or [`AcmClient::with_token`]) shares the connection pool.
#[derive(Clone)]
pub struct AcmClient {
    http: reqwest::Client,
    /// The base URL without a trailing `/`; routes start with one.
    base: Arc<str>,
    /// `Bearer <token>`, or `None` when the token cannot be a header value (said on use).
    authorization: Option<HeaderValue>,
    timeout: Duration,
}

/// What a submission got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Authorised and queued for the partner (steps 2–3).
    Queued(SubmissionAccepted),
    /// Refused at step 2: the refusal is recorded under `request_id`, and a retry with the
    /// same idempotency key gets the same answer.
    Refused {
        /// The refused request.
        request_id: RequestId,
        /// The refusal's kind: the tag of `acm_core::AuthorizationRefusal` (`not_a_partner`,
        /// `not_authorized`, …).
        refusal: String,
        /// The server's explanation.
        detail: Option<String>,
    },
}

impl AcmClient {
    /// The default time-out of one call, from connecting until the whole answer is read.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A client of the ACM server at `base_url` (`https://host:port`), trusting only the
    /// CA certificates in `ca_pem`, acting for the user of `token` (a JWT access token).
    pub fn new(
        base_url: &str,
        ca_pem: &[u8],
        token: impl Into<String>,
    ) -> Result<Self, ClientError> {
        let base = parse_base(base_url)?;
        let tls = tls_config(ca_pem)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(true)
            // The API never redirects; following one would send the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            // No client-wide time-out: it would cut the notification stream. Each call sets
            // its own.
            .build()
            .map_err(|e| ClientError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: base.into(),
            authorization: bearer(&token.into()),
            timeout: Self::DEFAULT_TIMEOUT,
        })
    }

    /// The same client with another time-out per call (from connecting until the answer is
    /// read; for the notification stream, until its headers arrive).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A client for another user on the same connection pool.
    #[must_use]
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Self {
            authorization: bearer(&token.into()),
            ..self.clone()
        }
    }

    /// Step 1: submits an interconnection group identity provision request. Retry after a
    /// [`ClientError::Transport`] with the same `idempotency_key`: the server answers a retry
    /// as it answered the first and records nothing.
    pub async fn submit(
        &self,
        submission: &ProvisionSubmission,
        idempotency_key: &IdempotencyKey,
    ) -> Result<Submitted, ClientError> {
        self.submit_to(
            client_routes::PROVISION_REQUESTS,
            submission,
            idempotency_key,
        )
        .await
    }

    /// Step 1: submits a group membership update request; retried as [`Self::submit`].
    pub async fn submit_membership(
        &self,
        submission: &MembershipSubmission,
        idempotency_key: &IdempotencyKey,
    ) -> Result<Submitted, ClientError> {
        self.submit_to(
            client_routes::MEMBERSHIP_REQUESTS,
            submission,
            idempotency_key,
        )
        .await
    }

    /// Step 1: submits a user migration management request; retried as [`Self::submit`].
    pub async fn submit_migration(
        &self,
        submission: &MigrationSubmission,
        idempotency_key: &IdempotencyKey,
    ) -> Result<Submitted, ClientError> {
        self.submit_to(
            client_routes::MIGRATION_REQUESTS,
            submission,
            idempotency_key,
        )
        .await
    }

    async fn submit_to(
        &self,
        route: &str,
        submission: &impl serde::Serialize,
        idempotency_key: &IdempotencyKey,
    ) -> Result<Submitted, ClientError> {
        let key = HeaderValue::from_str(idempotency_key.as_str())
            .map_err(|e| ClientError::Config(format!("idempotency key: {e}")))?;
        let response = self
            .send(
                self.request(Method::POST, route)?
                    .header(wire::IDEMPOTENCY_KEY, key)
                    .json(submission),
            )
            .await?;
        match json(response).await {
            Ok(accepted) => Ok(Submitted::Queued(accepted)),
            Err(ClientError::Problem(problem))
                if problem.status == StatusCode::FORBIDDEN.as_u16()
                    && problem.code() == AUTHORIZATION_REFUSED =>
            {
                refused(problem)
            }
            Err(e) => Err(e),
        }
    }

    /// One of the user's own requests as the server reports it; another user's request is a
    /// 404 `unknown_request`.
    pub async fn status(&self, request_id: RequestId) -> Result<RequestStatus, ClientError> {
        let path = with_request_id(client_routes::REQUEST, request_id);
        json(self.send(self.request(Method::GET, &path)?).await?).await
    }

    /// Withdraws one of the user's own requests; the partner's answer comes later as pending
    /// ACM data.
    pub async fn withdraw(&self, request_id: RequestId) -> Result<WithdrawalAccepted, ClientError> {
        let path = with_request_id(client_routes::WITHDRAWAL, request_id);
        json(self.send(self.request(Method::POST, &path)?).await?).await
    }

    /// Step 9: answers a partner's request delivered to the user.
    pub async fn respond(
        &self,
        request_id: RequestId,
        response: &ResponseSubmission,
    ) -> Result<(), ClientError> {
        let path = with_request_id(client_routes::RESPONSE, request_id);
        let answer = self
            .send(self.request(Method::POST, &path)?.json(response))
            .await?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(failure(answer).await)
        }
    }

    /// Steps 7b–8 / 13b–14: downloads everything pending for the user.
    pub async fn pending(&self) -> Result<PendingAcmData, ClientError> {
        json(
            self.send(self.request(Method::GET, client_routes::PENDING)?)
                .await?,
        )
        .await
    }

    /// Acknowledges downloaded items: they are no longer pending (a partner request stays
    /// pending until answered).
    pub async fn acknowledge(
        &self,
        items: &[DownloadedItem],
    ) -> Result<AcknowledgementRecorded, ClientError> {
        let body = Acknowledgement {
            items: items.to_vec(),
        };
        json(
            self.send(
                self.request(Method::POST, client_routes::ACKNOWLEDGEMENT)?
                    .json(&body),
            )
            .await?,
        )
        .await
    }

    /// Acknowledges every item of a download; nothing to acknowledge is no call.
    pub async fn acknowledge_all(
        &self,
        pending: &PendingAcmData,
    ) -> Result<AcknowledgementRecorded, ClientError> {
        if pending.items.is_empty() {
            return Ok(AcknowledgementRecorded { recorded: 0 });
        }
        let items: Vec<DownloadedItem> = pending.items.iter().map(PendingItem::receipt).collect();
        self.acknowledge(&items).await
    }

    /// Steps 6/12: logs on to the pending ACM data notifications, from after
    /// `last_event_id` when reconnecting. Only connecting and the answer's headers are
    /// timed; the stream itself stays open as long as the server keeps it.
    pub async fn notifications(
        &self,
        last_event_id: Option<&str>,
    ) -> Result<Notifications, ClientError> {
        let mut request = self
            .request(Method::GET, client_routes::NOTIFICATIONS)?
            .header(header::ACCEPT, EVENT_STREAM)
            .header(header::CACHE_CONTROL, "no-cache");
        if let Some(id) = last_event_id.filter(|id| !id.is_empty()) {
            let id = HeaderValue::from_str(id)
                .map_err(|e| ClientError::Config(format!("last event id: {e}")))?;
            request = request.header(LAST_EVENT_ID, id);
        }
        let response = tokio::time::timeout(self.timeout, request.send())
            .await
            .map_err(|_| {
                ClientError::Transport(format!(
                    "no answer to the notification stream request within {:?}",
                    self.timeout
                ))
            })?
            .map_err(|e| ClientError::transport(&e))?;
        if !response.status().is_success() {
            return Err(failure(response).await);
        }
        let content_type = content_type(&response);
        if !content_type.starts_with(EVENT_STREAM) {
            return Err(ClientError::Decode(format!(
                "the notification stream is {content_type:?}, not {EVENT_STREAM}"
            )));
        }
        Ok(Notifications::new(response, last_event_id))
    }

    fn request(&self, method: Method, path: &str) -> Result<RequestBuilder, ClientError> {
        let authorization = self.authorization.clone().ok_or_else(|| {
            ClientError::Config("the access token is not a valid HTTP header value".to_owned())
        })?;
        Ok(self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(header::AUTHORIZATION, authorization))
    }

    async fn send(&self, request: RequestBuilder) -> Result<Response, ClientError> {
        request
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| ClientError::transport(&e))
    }
}

impl fmt::Debug for AcmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token: debug output ends up in logs.
        f.debug_struct("AcmClient")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn parse_base(base_url: &str) -> Result<String, ClientError> {
    let url = reqwest::Url::parse(base_url)
        .map_err(|e| ClientError::Config(format!("base URL {base_url:?}: {e}")))?;
    if url.scheme() != "https" {
        return Err(ClientError::Config(format!(
            "base URL {base_url:?}: the client API is HTTPS only"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ClientError::Config(format!(
            "base URL {base_url:?}: no query or fragment"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// A TLS client configuration on aws-lc-rs, named explicitly: the process's default
/// provider may be unset or another, and one crypto provider is the rule.
fn tls_config(ca_pem: &[u8]) -> Result<rustls::ClientConfig, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| ClientError::Config(format!("CA certificates: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| ClientError::Config(format!("CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(ClientError::Config(
            "CA certificates: no certificate in the PEM".to_owned(),
        ));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // A preconfigured config is used as given: without ALPN the pool would never use h2.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn bearer(token: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

fn with_request_id(route: &str, request_id: RequestId) -> String {
    route.replace("{request_id}", &request_id.to_string())
}

fn content_type(response: &Response) -> String {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// A success answer's JSON body, or the failure the answer is.
async fn json<T: DeserializeOwned>(response: Response) -> Result<T, ClientError> {
    if !response.status().is_success() {
        return Err(failure(response).await);
    }
    let (body, complete) = read_body(response, MAX_BODY_BYTES).await?;
    if !complete {
        return Err(ClientError::Decode(format!(
            "an answer longer than {MAX_BODY_BYTES} bytes"
        )));
    }
    serde_json::from_slice(&body).map_err(|e| ClientError::Decode(e.to_string()))
}

/// The error a non-success answer is: its problem details when it has them.
async fn failure(response: Response) -> ClientError {
    let status = response.status().as_u16();
    let is_problem = content_type(&response).starts_with(PROBLEM_JSON);
    let (body, _) = match read_body(response, MAX_ERROR_BODY_BYTES).await {
        Ok(body) => body,
        Err(e) => {
            return ClientError::Transport(format!("HTTP {status}, then reading the body: {e}"));
        }
    };
    if is_problem && let Ok(problem) = serde_json::from_slice::<Problem>(&body) {
        return ClientError::Problem(problem);
    }
    ClientError::Status {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Up to `limit` bytes of the body, and whether that is all of it.
async fn read_body(mut response: Response, limit: usize) -> Result<(Vec<u8>, bool), ClientError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ClientError::transport(&e))?
    {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, false));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, true))
}

/// The recorded refusal a 403 `authorization_refused` problem carries.
fn refused(problem: Problem) -> Result<Submitted, ClientError> {
    let request_id = problem
        .extensions
        .get("request_id")
        .and_then(|id| serde_json::from_value::<RequestId>(id.clone()).ok());
    // The tag alone, or the whole serde form of the refusal (whose tag is `refusal`).
    let refusal = match problem.extensions.get("refusal") {
        Some(serde_json::Value::String(tag)) => Some(tag.clone()),
        Some(serde_json::Value::Object(fields)) => fields
            .get("refusal")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
        _ => None,
    };
    match (request_id, refusal) {
        (Some(request_id), Some(refusal)) => Ok(Submitted::Refused {
            request_id,
            refusal,
            detail: problem.detail,
        }),
        _ => Err(ClientError::Decode(format!(
            "an {AUTHORIZATION_REFUSED} problem without a request_id and a refusal: {problem:?}"
        ))),
    }
}
