//! The HTTPS [`PartnerTransport`]: each partner message is a `POST` to the partner's partner
//! API over mutual TLS, one pooled HTTP client per partner.

use std::collections::HashMap;
use std::error::Error as _;
use std::fmt::Write as _;
use std::time::Duration;

use acm_core::{
    AcmRequest, PartnerAck, PartnerMessage, PartnerTransport, SystemId, TransportError,
};
use async_trait::async_trait;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use crate::problem::PROBLEM_JSON;
use crate::tls::{TlsError, TlsIdentity, partner_client_config};
use crate::wire::{ForwardedRequest, ForwardedResponse, ForwardedWithdrawal, partner_routes};

mod answer;
#[cfg(test)]
mod tests;

use answer::{answer, unreachable};

/// The most of an answer body read: acknowledgements and problems are small, and a partner
/// that sends more is not answering the protocol.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A partner ACM server: its system, where its partner API is, and the CA that certifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerEndpoint {
    /// The partner MC system; its server's certificate must name it.
    pub system: SystemId,
    /// `https://host:port`, optionally with a path prefix; the partner routes are appended.
    pub base_url: String,
    /// The partner's CA certificate(s), PEM: the only CA trusted for this partner's server.
    pub ca_pem: Vec<u8>,
}

/// Connection settings shared by the partner clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportOptions {
    /// How long a TCP connect may take (default 2 s); the whole send is bounded by the
    /// relay's deadline anyway.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept (`None`: until the partner closes it;
    /// default 90 s).
    pub pool_idle_timeout: Option<Duration>,
    /// Idle connections kept per partner (default 64; with HTTP/2 one usually suffices).
    pub pool_max_idle_per_host: usize,
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            pool_idle_timeout: Some(Duration::from_secs(90)),
            pool_max_idle_per_host: 64,
        }
    }
}

/// Sends partner messages over HTTPS with mutual TLS.
///
/// Each partner has its own pooled client that trusts only that partner's CA and requires
/// the server's certificate to name the partner, so one partner (or its CA) cannot stand in
/// for another. Every answer that is not a usable acknowledgement or a refusal is
/// [`TransportError::Unreachable`], which the relay retries.
#[derive(Debug)]
pub struct HttpsPartnerTransport {
    partners: HashMap<SystemId, Partner>,
}

#[derive(Debug)]
struct Partner {
    client: reqwest::Client,
    base_url: String,
}

impl HttpsPartnerTransport {
    /// A transport that presents `identity` to each of `partners`.
    pub fn new(
        identity: &TlsIdentity,
        partners: Vec<PartnerEndpoint>,
        options: TransportOptions,
    ) -> Result<Self, TlsError> {
        let mut clients = HashMap::with_capacity(partners.len());
        for endpoint in partners {
            if clients.contains_key(&endpoint.system) {
                return Err(TlsError::DuplicatePartner {
                    system: endpoint.system,
                });
            }
            let base_url = base_url(&endpoint)?;
            let tls = partner_client_config(identity, &endpoint.system, &endpoint.ca_pem)?;
            let client = reqwest::Client::builder()
                .tls_backend_preconfigured(tls)
                .https_only(true)
                // A partner link is a direct interconnection: an environment proxy must not
                // reroute it, and a redirect would turn a POST into something else.
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(options.connect_timeout)
                .pool_idle_timeout(options.pool_idle_timeout)
                .pool_max_idle_per_host(options.pool_max_idle_per_host)
                .build()
                .map_err(|e| TlsError::Client {
                    system: endpoint.system.clone(),
                    detail: e.to_string(),
                })?;
            clients.insert(endpoint.system, Partner { client, base_url });
        }
        Ok(Self { partners: clients })
    }

    /// The configured partners.
    pub fn partners(&self) -> impl Iterator<Item = &SystemId> {
        self.partners.keys()
    }
}

#[async_trait]
impl PartnerTransport for HttpsPartnerTransport {
    async fn send(
        &self,
        to: &SystemId,
        message: &PartnerMessage,
        deadline: Duration,
    ) -> Result<PartnerAck, TransportError> {
        let outcome = match self.partners.get(to) {
            // reqwest's own timeout bounds the call too; this one also covers reading the
            // answer and anything reqwest does not count.
            Some(partner) => tokio::time::timeout(deadline, partner.send(to, message, deadline))
                .await
                .unwrap_or_else(|_| Err(unreachable(to, format!("no answer within {deadline:?}")))),
            None => Err(unreachable(
                to,
                "not a configured partner of this server".into(),
            )),
        };
        log(to, message, &outcome);
        outcome
    }
}

impl Partner {
    async fn send(
        &self,
        to: &SystemId,
        message: &PartnerMessage,
        deadline: Duration,
    ) -> Result<PartnerAck, TransportError> {
        let request = match message {
            PartnerMessage::Request {
                message_id,
                request,
            } => self
                .post(partner_routes::PROVISION_REQUESTS)
                .json(&ForwardedRequest {
                    message_id: *message_id,
                    request: AcmRequest::clone(request),
                }),
            PartnerMessage::Response {
                message_id,
                request_id,
                response,
            } => self
                .post(partner_routes::PROVISION_RESPONSES)
                .json(&ForwardedResponse {
                    message_id: *message_id,
                    request_id: *request_id,
                    response: response.clone(),
                }),
            PartnerMessage::Withdrawal {
                message_id,
                request_id,
            } => self
                .post(partner_routes::WITHDRAWALS)
                .json(&ForwardedWithdrawal {
                    message_id: *message_id,
                    request_id: *request_id,
                }),
        };
        let mut response = request
            .timeout(deadline)
            .send()
            .await
            .map_err(|e| unreachable(to, describe(&e)))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = read_capped(&mut response)
            .await
            .map_err(|detail| unreachable(to, format!("HTTP {status}, {detail}")))?;
        answer(to, status, content_type.as_deref(), &body)
    }

    fn post(&self, route: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{route}", self.base_url))
            .header(ACCEPT, format!("application/json, {PROBLEM_JSON}"))
    }
}

/// The endpoint's base URL without a trailing `/`, checked to be an `https` URL with a host.
fn base_url(endpoint: &PartnerEndpoint) -> Result<String, TlsError> {
    let refuse = |detail: &str| TlsError::BaseUrl {
        system: endpoint.system.clone(),
        url: endpoint.base_url.clone(),
        detail: detail.into(),
    };
    let url = reqwest::Url::parse(&endpoint.base_url)
        .map_err(|e| refuse(&format!("is not a URL: {e}")))?;
    if url.scheme() != "https" {
        return Err(refuse("is not an https URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(refuse("has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("has a query or a fragment"));
    }
    Ok(endpoint.base_url.trim_end_matches('/').to_owned())
}

async fn read_capped(response: &mut reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("answer unreadable: {}", describe(&e)))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!("answer longer than {MAX_ANSWER_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A reqwest error with its causes: the TLS or connect failure is in the chain, not on top.
fn describe(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "no answer in time"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut detail = format!("{what}: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(detail, ": {cause}");
        source = cause.source();
    }
    detail
}

fn log(to: &SystemId, message: &PartnerMessage, outcome: &Result<PartnerAck, TransportError>) {
    let kind = match message {
        PartnerMessage::Request { .. } => "request",
        PartnerMessage::Response { .. } => "response",
        PartnerMessage::Withdrawal { .. } => "withdrawal",
    };
    let message_id = message.message_id();
    match outcome {
        Ok(ack) => tracing::debug!(partner = %to, %message_id, kind, ?ack, "partner acknowledged"),
        Err(TransportError::Refused { problem, .. }) => {
            tracing::debug!(partner = %to, %message_id, kind, problem = problem.code(), "partner refused");
        }
        Err(TransportError::Unreachable { detail, .. }) => {
            tracing::debug!(partner = %to, %message_id, kind, detail, "partner unreachable");
        }
        Err(error) => {
            tracing::debug!(partner = %to, %message_id, kind, %error, "partner send failed");
        }
    }
}
