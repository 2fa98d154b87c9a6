//! TLS for both listeners and for partner calls: identities loaded from PEM, the partners'
//! CAs and the mapping of a verified certificate to a partner [`SystemId`](acm_core::SystemId),
//! and the rustls configurations built from them.
//!
//! Everything uses one crypto provider, [`crypto_provider`] (aws-lc-rs), passed explicitly:
//! nothing depends on a process-wide default being installed.

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;

mod config;
mod error;
mod identity;
mod pem;
#[cfg(feature = "pki")]
pub mod pki;
mod trust;

#[cfg(all(test, feature = "pki"))]
mod tests;

pub use config::{
    client_api_client_config, client_api_server_config, partner_api_server_config,
    partner_client_config,
};
pub use error::TlsError;
pub use identity::TlsIdentity;
pub use trust::PartnerTrust;

/// The crypto provider of every TLS configuration acm builds (aws-lc-rs).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}
