//! Which interconnected partner a verified certificate belongs to.
//!
//! A chain that reaches some trusted CA proves little on its own: every partner's CA is
//! trusted, partners may share a CA, and a CA may have certified systems that are not
//! partners. A certificate names partner `P` only when `P`'s own CA verifies it for client
//! authentication and `P`'s system ID is one of its DNS names.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use acm_core::SystemId;
use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyUsage};

use super::{TlsError, crypto_provider, pem};

/// The configured partner MC systems and the CA certificates that vouch for each.
#[derive(Clone, Default)]
pub struct PartnerTrust {
    partners: BTreeMap<SystemId, Vec<TrustAnchor<'static>>>,
}

impl PartnerTrust {
    /// No partners yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same trust with `system` vouched for by the CA certificate(s) in `ca_pem`. A
    /// partner configured twice keeps the CAs of both calls (a CA roll-over).
    pub fn with_partner(self, system: SystemId, ca_pem: &[u8]) -> Result<Self, TlsError> {
        let what = format!("the CA PEM of partner {system}");
        self.add(system, ca_pem, &what)
    }

    /// [`with_partner`](Self::with_partner) with the CA certificate(s) read from a PEM file.
    pub fn with_partner_file(
        self,
        system: SystemId,
        ca_pem_file: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        let path = ca_pem_file.as_ref();
        let ca_pem = std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.add(system, &ca_pem, &path.display().to_string())
    }

    fn add(mut self, system: SystemId, ca_pem: &[u8], what: &str) -> Result<Self, TlsError> {
        let anchors = anchors(ca_pem, what)?;
        self.partners.entry(system).or_default().extend(anchors);
        Ok(self)
    }

    /// The configured partners, in order.
    pub fn systems(&self) -> impl Iterator<Item = &SystemId> {
        self.partners.keys()
    }

    /// Whether no partner is configured.
    pub fn is_empty(&self) -> bool {
        self.partners.is_empty()
    }

    /// The partner that `peer_chain_der` (end-entity first, then intermediates, as presented
    /// in a handshake) belongs to, now; `None` when it belongs to no partner, or to more
    /// than one (a certificate naming two partners that share a CA identifies neither).
    pub fn identify(&self, peer_chain_der: &[CertificateDer<'_>]) -> Option<SystemId> {
        let (end_entity, intermediates) = peer_chain_der.split_first()?;
        self.identify_at(end_entity, intermediates, UnixTime::now())
    }

    pub(super) fn identify_at(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Option<SystemId> {
        let cert = EndEntityCert::try_from(end_entity).ok()?;
        let algorithms = crypto_provider().signature_verification_algorithms.all;
        let mut found = None;
        for (system, anchors) in &self.partners {
            if !names_system(&cert, system) {
                continue;
            }
            // Only this partner's CA: another partner's CA must not vouch for this ID.
            let verified = cert.verify_for_usage(
                algorithms,
                anchors,
                intermediates,
                now,
                KeyUsage::client_auth(),
                None,
                None,
            );
            if verified.is_err() {
                continue;
            }
            if found.is_some() {
                return None;
            }
            found = Some(system.clone());
        }
        found
    }

    pub(super) fn anchors(&self) -> impl Iterator<Item = &TrustAnchor<'static>> {
        self.partners.values().flatten()
    }
}

/// The partner API names a message's sender this way.
impl crate::PartnerIdentifier for PartnerTrust {
    fn identify(&self, chain: &[CertificateDer<'_>]) -> Option<SystemId> {
        PartnerTrust::identify(self, chain)
    }
}

impl fmt::Debug for PartnerTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.partners
                    .iter()
                    .map(|(system, cas)| (system.as_str(), cas.len())),
            )
            .finish()
    }
}

/// Whether `cert` names `system` by a DNS subject alternative name. A wildcard does not
/// name a system: `*.example` from a CA that two partners share would otherwise let one
/// speak for the other.
pub(super) fn names_system(cert: &EndEntityCert<'_>, system: &SystemId) -> bool {
    let Ok(name) = ServerName::try_from(system.as_str()) else {
        return false;
    };
    cert.verify_is_valid_for_subject_name(&name).is_ok()
        && cert
            .valid_dns_names()
            .any(|dns| dns.eq_ignore_ascii_case(system.as_str()))
}

fn anchors(ca_pem: &[u8], what: &str) -> Result<Vec<TrustAnchor<'static>>, TlsError> {
    pem::certificates(ca_pem, what)?
        .iter()
        .map(|der| {
            webpki::anchor_from_trusted_cert(der)
                .map(|anchor| anchor.to_owned())
                .map_err(|e| TlsError::InvalidCertificate {
                    what: what.into(),
                    detail: e.to_string(),
                })
        })
        .collect()
}
