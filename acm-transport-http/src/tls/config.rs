//! rustls configurations: the two listeners' server configurations and the client
//! configurations that call them, all on [`crypto_provider`].

use std::sync::Arc;

use acm_core::SystemId;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    ServerConfig, SignatureScheme,
};
use webpki::EndEntityCert;

use super::trust::names_system;
use super::{PartnerTrust, TlsError, TlsIdentity, crypto_provider, pem};

/// The ALPN protocols both listeners offer and partner clients ask for, HTTP/2 first.
fn alpn() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
}

/// The client API listener: server authentication only (clients prove who they are with an
/// access token, not a certificate).
pub fn client_api_server_config(identity: &TlsIdentity) -> Result<Arc<ServerConfig>, TlsError> {
    let context = "the client API listener";
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| config_error(context, source))?
        .with_no_client_auth()
        .with_single_cert(identity.cert_chain().to_vec(), identity.private_key())
        .map_err(|source| config_error(context, source))?;
    config.alpn_protocols = alpn();
    Ok(Arc::new(config))
}

/// The partner API listener: a client certificate is required, and the handshake fails
/// unless [`PartnerTrust::identify`] names the partner it belongs to. A certificate of an
/// unknown CA, or of a partner's CA for a system that is not that partner, never reaches a
/// handler.
pub fn partner_api_server_config(
    identity: &TlsIdentity,
    trust: Arc<PartnerTrust>,
) -> Result<Arc<ServerConfig>, TlsError> {
    if trust.is_empty() {
        return Err(TlsError::NoPartners);
    }
    let mut roots = RootCertStore::empty();
    roots.extend(trust.anchors().cloned());
    let webpki =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crypto_provider()).build()?;
    let verifier = Arc::new(PartnerClientVerifier { webpki, trust });
    let context = "the partner API listener";
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| config_error(context, source))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.cert_chain().to_vec(), identity.private_key())
        .map_err(|source| config_error(context, source))?;
    config.alpn_protocols = alpn();
    Ok(Arc::new(config))
}

/// A client of partner `partner`'s partner API: presents `identity` as client certificate,
/// trusts only the CA certificate(s) in `partner_ca_pem`, and accepts the server only if its
/// certificate also names `partner` by a DNS name (besides the URL's host), so that neither
/// another partner's CA nor another system certified by a shared CA can stand in for it.
/// HTTP/2 is offered by ALPN.
pub fn partner_client_config(
    identity: &TlsIdentity,
    partner: &SystemId,
    partner_ca_pem: &[u8],
) -> Result<ClientConfig, TlsError> {
    let roots = roots(partner_ca_pem, &format!("the CA PEM of partner {partner}"))?;
    let webpki =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), crypto_provider()).build()?;
    let verifier = Arc::new(PartnerServerVerifier {
        webpki,
        partner: partner.clone(),
    });
    let context = format!("calls to partner {partner}");
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| config_error(&context, source))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(identity.cert_chain().to_vec(), identity.private_key())
        .map_err(|source| config_error(&context, source))?;
    config.alpn_protocols = alpn();
    Ok(config)
}

/// A client of an ACM server's client API: trusts only the CA certificate(s) in
/// `server_ca_pem`, presents no certificate. HTTP/2 is offered by ALPN.
pub fn client_api_client_config(server_ca_pem: &[u8]) -> Result<ClientConfig, TlsError> {
    let roots = roots(server_ca_pem, "the server CA PEM")?;
    let context = "calls to the client API";
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| config_error(context, source))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn();
    Ok(config)
}

fn roots(ca_pem: &[u8], what: &str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for der in pem::certificates(ca_pem, what)? {
        roots.add(der).map_err(|e| TlsError::InvalidCertificate {
            what: what.into(),
            detail: e.to_string(),
        })?;
    }
    Ok(roots)
}

fn config_error(context: &str, source: rustls::Error) -> TlsError {
    TlsError::Config {
        context: context.into(),
        source,
    }
}

/// rustls' verifier (the chain reaches one of the partners' CAs, for client
/// authentication), then [`PartnerTrust::identify`].
#[derive(Debug)]
struct PartnerClientVerifier {
    webpki: Arc<dyn ClientCertVerifier>,
    trust: Arc<PartnerTrust>,
}

impl ClientCertVerifier for PartnerClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .webpki
            .verify_client_cert(end_entity, intermediates, now)?;
        if self
            .trust
            .identify_at(end_entity, intermediates, now)
            .is_none()
        {
            tracing::debug!(
                "client certificate refused: it reaches a partner CA but names no partner that CA vouches for"
            );
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// rustls' verifier (the chain reaches the partner's CA, the certificate is valid for the
/// URL's host), then: the certificate names the partner's system ID.
#[derive(Debug)]
struct PartnerServerVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    partner: SystemId,
}

impl ServerCertVerifier for PartnerServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let cert = EndEntityCert::try_from(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if !names_system(&cert, &self.partner) {
            tracing::debug!(
                partner = %self.partner,
                "server certificate refused: it does not name the partner"
            );
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            ));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.webpki.root_hint_subjects()
    }
}
