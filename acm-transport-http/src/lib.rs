//! # acm-transport-http
//!
//! The networked side of acm: the ACM client API and the partner API over HTTPS (axum,
//! rustls), the HTTPS [`PartnerTransport`](acm_core::PartnerTransport) between ACM servers
//! (mutual TLS: a partner is known by its certificate), access tokens as an MC identity
//! management server issues them, RFC 9457 problem details, and the [`Runner`] that drives
//! an ACM server's duties on tokio.
#![warn(missing_docs)]

mod api;
mod auth;
mod client;
mod problem;
mod runner;
mod serve;
mod tls;
mod transport;
pub mod wire;

pub use api::{
    Api, ApiConfig, AuthFailure, Authenticator, PROBLEM_KINDS, PartnerIdentifier, ProblemKind,
    openapi_document,
};
pub use auth::{
    DEFAULT_CLAIM, DEFAULT_LEEWAY, MAX_LEEWAY, SUPPORTED_ALGORITHMS, TokenConfigError, TokenError,
    TokenIssueError, TokenIssuer, TokenKeys, TokenPolicy, TokenVerifier,
};
pub use client::{AcmClient, ClientError, Notice, Notifications, Submitted};
pub use problem::{PROBLEM_JSON, PROBLEM_TYPE_PREFIX, Problem};
pub use runner::{Runner, run_until};
pub use serve::{HttpsServer, TlsListener};
#[cfg(feature = "pki")]
pub use tls::pki;
pub use tls::{
    PartnerTrust, TlsError, TlsIdentity, client_api_client_config, client_api_server_config,
    crypto_provider, partner_api_server_config, partner_client_config,
};
pub use transport::{HttpsPartnerTransport, PartnerEndpoint, TransportOptions};
