//! PEM decoding shared by identities and partner trust, with errors that name the input.

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// Every `CERTIFICATE` block of `pem`, in order; at least one.
pub(super) fn certificates(
    pem: &[u8],
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, &e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { what: what.into() });
    }
    Ok(certs)
}

/// The first private key block of `pem` (PKCS#8, PKCS#1 or SEC1).
pub(super) fn private_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey { what: what.into() },
        e => pem_error(what, &e),
    })
}

fn pem_error(what: &str, e: &pem::Error) -> TlsError {
    TlsError::Pem {
        what: what.into(),
        detail: e.to_string(),
    }
}
