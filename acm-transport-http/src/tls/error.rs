//! Why a TLS identity, a partner's trust or a TLS configuration could not be set up.

use std::path::PathBuf;

use acm_core::SystemId;

/// A TLS set-up failure. Each message names the file or the partner concerned, so that an
/// operator can fix the configuration without reading code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A PEM input is not PEM, or one of its blocks is damaged.
    #[error("{what} is not valid PEM: {detail}")]
    Pem {
        /// The input: a file name or what the bytes were meant to be.
        what: String,
        /// What the PEM parser said.
        detail: String,
    },
    /// A PEM input holds no `CERTIFICATE` block.
    #[error("{what} holds no certificate (no `BEGIN CERTIFICATE` block)")]
    NoCertificate {
        /// The input.
        what: String,
    },
    /// A PEM input holds no private key block.
    #[error(
        "{what} holds no private key (no `BEGIN PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)"
    )]
    NoPrivateKey {
        /// The input.
        what: String,
    },
    /// A certificate that cannot serve as what it was given for (e.g. a CA certificate
    /// that is not a valid X.509 certificate).
    #[error("{what}: unusable certificate: {detail}")]
    InvalidCertificate {
        /// The input.
        what: String,
        /// Why it is unusable.
        detail: String,
    },
    /// The private key cannot be used, or does not belong to the certificate.
    #[error("{key} does not fit {cert}: {detail}")]
    KeyMismatch {
        /// The certificate input.
        cert: String,
        /// The key input.
        key: String,
        /// What rustls said.
        detail: String,
    },
    /// The partner API needs at least one partner to authenticate clients against.
    #[error("no partner is configured: the partner API would accept no client certificate")]
    NoPartners,
    /// rustls refused a configuration.
    #[error("TLS configuration for {context}: {source}")]
    Config {
        /// The configuration being built.
        context: String,
        /// What rustls said.
        source: rustls::Error,
    },
    /// The client certificate verifier could not be built.
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// A partner endpoint's base URL is unusable.
    #[error("partner {system}: base URL {url:?} {detail}")]
    BaseUrl {
        /// The partner.
        system: SystemId,
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The same partner is configured twice.
    #[error("partner {system} is configured twice")]
    DuplicatePartner {
        /// The partner.
        system: SystemId,
    },
    /// The HTTP client for a partner could not be built.
    #[error("HTTPS client for partner {system}: {detail}")]
    Client {
        /// The partner.
        system: SystemId,
        /// What reqwest said.
        detail: String,
    },
}

impl TlsError {
    /// A stable code for the kind of failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Read { .. } => "tls_read",
            Self::Pem { .. } => "tls_pem",
            Self::NoCertificate { .. } => "tls_no_certificate",
            Self::NoPrivateKey { .. } => "tls_no_private_key",
            Self::InvalidCertificate { .. } => "tls_invalid_certificate",
            Self::KeyMismatch { .. } => "tls_key_mismatch",
            Self::NoPartners => "tls_no_partners",
            Self::Config { .. } => "tls_config",
            Self::Verifier(_) => "tls_verifier",
            Self::BaseUrl { .. } => "tls_base_url",
            Self::DuplicatePartner { .. } => "tls_duplicate_partner",
            Self::Client { .. } => "tls_client",
        }
    }
}
