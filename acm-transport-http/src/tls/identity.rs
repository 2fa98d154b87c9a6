//! A system's own certificate chain and private key: the server certificate of both
//! listeners and the client certificate of outgoing partner calls.

use std::fmt;
use std::path::Path;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::{TlsError, crypto_provider, pem};

/// A certificate chain (end-entity first) and the private key of its end-entity certificate.
pub struct TlsIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl TlsIdentity {
    /// An identity from PEM: `cert_chain_pem` holds the end-entity certificate first, then
    /// any intermediates; `key_pem` holds its private key (PKCS#8, PKCS#1 or SEC1).
    ///
    /// The key is checked against the certificate here, so that a mismatched pair is refused
    /// at start-up rather than at the first handshake.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        let (cert_what, key_what) = ("the certificate chain PEM", "the private key PEM");
        let chain = pem::certificates(cert_chain_pem, cert_what)?;
        let key = pem::private_key(key_pem, key_what)?;
        Self::matched(chain, key, cert_what, key_what)
    }

    /// An identity from a certificate chain file and a private key file (PEM).
    pub fn from_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, TlsError> {
        let (cert, key) = (cert.as_ref(), key.as_ref());
        let (cert_what, key_what) = (cert.display().to_string(), key.display().to_string());
        let chain = pem::certificates(&read(cert)?, &cert_what)?;
        let key = pem::private_key(&read(key)?, &key_what)?;
        Self::matched(chain, key, &cert_what, &key_what)
    }

    fn matched(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        cert_what: &str,
        key_what: &str,
    ) -> Result<Self, TlsError> {
        CertifiedKey::from_der(chain.clone(), key.clone_key(), &crypto_provider()).map_err(
            |e| TlsError::KeyMismatch {
                cert: cert_what.into(),
                key: key_what.into(),
                detail: e.to_string(),
            },
        )?;
        Ok(Self { chain, key })
    }

    /// An identity from DER parts known to belong together (a certificate just issued for
    /// the key).
    #[cfg(feature = "pki")]
    pub(super) fn from_der_parts(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Self {
        Self { chain, key }
    }

    /// The certificate chain, end-entity first.
    pub fn cert_chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    pub(super) fn private_key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }
}

impl Clone for TlsIdentity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for TlsIdentity {
    // The key stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}
