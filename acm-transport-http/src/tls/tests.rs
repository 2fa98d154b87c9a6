//! Loading identities and CAs, telling partners apart by certificate, and the test PKI.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use acm_core::SystemId;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, UnixTime};

use super::pki::{SystemPki, files, token_keypair};
use super::{PartnerTrust, TlsError, TlsIdentity, partner_api_server_config};

fn sys(s: &str) -> SystemId {
    s.parse().unwrap()
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn intermediate(parent: &Issuer<'_, KeyPair>) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "intermediate");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.use_authority_key_identifier_extension = true;
    CertifiedIssuer::signed_by(params, KeyPair::generate().unwrap(), parent).unwrap()
}

/// A leaf for `names`, with `usages`, valid now unless `expired`.
fn leaf_with(
    issuer: &Issuer<'_, KeyPair>,
    names: &[&str],
    usages: Vec<ExtendedKeyUsagePurpose>,
    expired: bool,
) -> CertificateDer<'static> {
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    params.is_ca = IsCa::ExplicitNoCa;
    params.extended_key_usages = usages;
    params.use_authority_key_identifier_extension = true;
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    params.signed_by(&key, issuer).unwrap().der().clone()
}

fn leaf(issuer: &Issuer<'_, KeyPair>, names: &[&str]) -> CertificateDer<'static> {
    leaf_with(
        issuer,
        names,
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        false,
    )
}

fn trust(partners: &[(&str, &CertifiedIssuer<'static, KeyPair>)]) -> PartnerTrust {
    partners
        .iter()
        .fold(PartnerTrust::new(), |trust, (system, ca)| {
            trust
                .with_partner(sys(system), ca.pem().as_bytes())
                .unwrap()
        })
}

#[test]
fn a_partners_own_certificate_names_it() {
    let (ca_b, ca_c) = (ca("B"), ca("C"));
    let trust = trust(&[("mc-b.example", &ca_b), ("mc-c.example", &ca_c)]);
    let b = leaf(&ca_b, &["mc-b.example", "localhost"]);
    let c = leaf(&ca_c, &["mc-c.example"]);
    assert_eq!(
        trust.identify(std::slice::from_ref(&b)),
        Some(sys("mc-b.example"))
    );
    assert_eq!(trust.identify(&[c]), Some(sys("mc-c.example")));
    // As the partner API sees it.
    let api: Arc<dyn crate::PartnerIdentifier> = Arc::new(trust);
    assert_eq!(api.identify(&[b]), Some(sys("mc-b.example")));
}

#[test]
fn a_partners_ca_does_not_vouch_for_another_partners_id() {
    let (ca_b, ca_c) = (ca("B"), ca("C"));
    let trust = trust(&[("mc-b.example", &ca_b), ("mc-c.example", &ca_c)]);
    assert_eq!(trust.identify(&[leaf(&ca_b, &["mc-c.example"])]), None);
}

#[test]
fn a_known_ca_does_not_make_a_non_partner_a_partner() {
    let ca_b = ca("B");
    let trust = trust(&[("mc-b.example", &ca_b)]);
    assert_eq!(trust.identify(&[leaf(&ca_b, &["mc-x.example"])]), None);
}

#[test]
fn an_unknown_ca_vouches_for_no_one() {
    let trust = trust(&[("mc-b.example", &ca("B"))]);
    assert_eq!(trust.identify(&[leaf(&ca("B"), &["mc-b.example"])]), None);
}

#[test]
fn partners_sharing_a_ca_are_told_apart() {
    let shared = ca("shared");
    let trust = trust(&[("mc-b.example", &shared), ("mc-c.example", &shared)]);
    assert_eq!(
        trust.identify(&[leaf(&shared, &["mc-c.example"])]),
        Some(sys("mc-c.example"))
    );
    assert_eq!(
        trust.identify(&[leaf(&shared, &["mc-b.example"])]),
        Some(sys("mc-b.example"))
    );
}

#[test]
fn a_certificate_naming_two_partners_names_neither() {
    let shared = ca("shared");
    let trust = trust(&[("mc-b.example", &shared), ("mc-c.example", &shared)]);
    let both = leaf(&shared, &["mc-b.example", "mc-c.example"]);
    assert_eq!(trust.identify(&[both]), None);
}

#[test]
fn a_wildcard_name_does_not_name_a_partner() {
    let ca_b = ca("B");
    let trust = trust(&[("mc-b.acm.example", &ca_b)]);
    assert_eq!(trust.identify(&[leaf(&ca_b, &["*.acm.example"])]), None);
}

#[test]
fn a_certificate_only_for_servers_does_not_authenticate_a_client() {
    let ca_b = ca("B");
    let trust = trust(&[("mc-b.example", &ca_b)]);
    let server_only = leaf_with(
        &ca_b,
        &["mc-b.example"],
        vec![ExtendedKeyUsagePurpose::ServerAuth],
        false,
    );
    assert_eq!(trust.identify(&[server_only]), None);
}

#[test]
fn an_expired_certificate_names_no_one() {
    let ca_b = ca("B");
    let trust = trust(&[("mc-b.example", &ca_b)]);
    let expired = leaf_with(
        &ca_b,
        &["mc-b.example"],
        vec![ExtendedKeyUsagePurpose::ClientAuth],
        true,
    );
    assert_eq!(trust.identify(std::slice::from_ref(&expired)), None);
    // The same certificate while it was valid (late December 2000).
    let then = UnixTime::since_unix_epoch(std::time::Duration::from_hours(11_320 * 24));
    assert_eq!(
        trust.identify_at(&expired, &[], then),
        Some(sys("mc-b.example"))
    );
}

#[test]
fn intermediates_come_from_the_presented_chain() {
    let ca_b = ca("B");
    let issuing = intermediate(&ca_b);
    let trust = trust(&[("mc-b.example", &ca_b)]);
    let end_entity = leaf(&issuing, &["mc-b.example"]);
    assert_eq!(
        trust.identify(&[end_entity.clone(), issuing.der().clone()]),
        Some(sys("mc-b.example"))
    );
    assert_eq!(trust.identify(&[end_entity]), None, "no path without it");
}

#[test]
fn an_empty_or_garbled_chain_names_no_one() {
    let trust = trust(&[("mc-b.example", &ca("B"))]);
    assert_eq!(trust.identify(&[]), None);
    assert_eq!(
        trust.identify(&[CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])]),
        None
    );
}

#[test]
fn a_partner_configured_twice_keeps_both_cas() {
    let (old, new) = (ca("old"), ca("new"));
    let trust = trust(&[("mc-b.example", &old), ("mc-b.example", &new)]);
    assert_eq!(trust.systems().count(), 1);
    for ca in [&old, &new] {
        assert_eq!(
            trust.identify(&[leaf(ca, &["mc-b.example"])]),
            Some(sys("mc-b.example"))
        );
    }
}

#[test]
fn a_bad_ca_is_refused_naming_the_partner() {
    let err = PartnerTrust::new()
        .with_partner(sys("mc-b.example"), b"not a certificate")
        .unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate { .. }), "{err:?}");
    assert!(err.to_string().contains("mc-b.example"), "{err}");
    let damaged = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let err = PartnerTrust::new()
        .with_partner(sys("mc-b.example"), damaged)
        .unwrap_err();
    assert_eq!(err.code(), "tls_invalid_certificate", "{err}");
    assert!(err.to_string().contains("mc-b.example"), "{err}");
}

#[test]
fn the_partner_api_needs_a_partner() {
    let pki = SystemPki::generate(&sys("mc-a.example")).unwrap();
    let err =
        partner_api_server_config(&pki.identity(), Arc::new(PartnerTrust::new())).unwrap_err();
    assert!(matches!(err, TlsError::NoPartners), "{err:?}");
}

#[test]
fn an_identity_refuses_a_key_of_another_certificate() {
    let a = SystemPki::generate(&sys("mc-a.example")).unwrap();
    let b = SystemPki::generate(&sys("mc-b.example")).unwrap();
    let err = TlsIdentity::from_pem(a.cert_pem().as_bytes(), b.key_pem().as_bytes()).unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
    assert!(TlsIdentity::from_pem(a.cert_pem().as_bytes(), a.key_pem().as_bytes()).is_ok());
}

#[test]
fn an_identity_says_which_part_is_missing() {
    let a = SystemPki::generate(&sys("mc-a.example")).unwrap();
    let err = TlsIdentity::from_pem(a.key_pem().as_bytes(), a.key_pem().as_bytes()).unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate { .. }), "{err:?}");
    assert!(err.to_string().contains("certificate chain"), "{err}");
    let err = TlsIdentity::from_pem(a.cert_pem().as_bytes(), a.cert_pem().as_bytes()).unwrap_err();
    assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err:?}");
    assert!(err.to_string().contains("private key"), "{err}");
}

#[test]
fn identity_files_are_named_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let err = TlsIdentity::from_files(&missing, &missing).unwrap_err();
    assert!(matches!(err, TlsError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.pem"), "{err}");
    let empty = dir.path().join("empty-cert.pem");
    std::fs::write(&empty, "").unwrap();
    let err = TlsIdentity::from_files(&empty, &missing).unwrap_err();
    assert!(err.to_string().contains("empty-cert.pem"), "{err}");
}

#[test]
fn an_identity_does_not_show_its_key() {
    let a = SystemPki::generate(&sys("mc-a.example")).unwrap();
    let shown = format!("{:?} {:?} {a:?}", a.identity(), a.leaf());
    let key_body = a.key_pem().lines().nth(1).unwrap();
    assert!(!shown.contains(key_body), "{shown}");
    assert!(!shown.contains("PRIVATE"), "{shown}");
}

#[test]
fn the_pki_leaf_is_a_partner_of_its_ca_and_other_leaves_are_not() {
    let b = SystemPki::generate(&sys("mc-b.example")).unwrap();
    let trust = PartnerTrust::new()
        .with_partner(sys("mc-b.example"), b.ca_pem().as_bytes())
        .unwrap();
    assert_eq!(
        trust.identify(b.identity().cert_chain()),
        Some(sys("mc-b.example"))
    );
    let other = b.generate_leaf_for(&sys("mc-x.example")).unwrap();
    assert_eq!(other.system(), &sys("mc-x.example"));
    assert_eq!(trust.identify(other.identity().cert_chain()), None);
    let with_x = trust
        .with_partner(sys("mc-x.example"), b.ca_pem().as_bytes())
        .unwrap();
    assert_eq!(
        with_x.identify(other.identity().cert_chain()),
        Some(sys("mc-x.example"))
    );
}

#[test]
fn the_pki_writes_its_files_once_and_they_load_back() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("mc-b");
    let b = SystemPki::generate(&sys("mc-b.example")).unwrap();
    b.write_to(&target).unwrap();
    assert_eq!(
        std::fs::read_to_string(target.join(files::CA)).unwrap(),
        b.ca_pem()
    );
    assert_eq!(
        std::fs::read_to_string(target.join(files::CA_KEY)).unwrap(),
        b.ca_key_pem()
    );
    assert!(
        b.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"),
        "PKCS#8"
    );
    let identity =
        TlsIdentity::from_files(target.join(files::CERT), target.join(files::KEY)).unwrap();
    assert_eq!(identity.cert_chain().len(), 1, "the leaf only");
    let trust = PartnerTrust::new()
        .with_partner_file(sys("mc-b.example"), target.join(files::CA))
        .unwrap();
    assert_eq!(
        trust.identify(identity.cert_chain()),
        Some(sys("mc-b.example"))
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(target.join(files::KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "key.pem is the owner's only: {mode:o}");
    }

    // A second PKI into the same directory: refused, and nothing of it written.
    let again = SystemPki::generate(&sys("mc-b.example")).unwrap();
    let err = again.write_to(&target).unwrap_err();
    assert_eq!(err.code(), "pki_file_exists", "{err}");
    assert_eq!(
        std::fs::read_to_string(target.join(files::KEY)).unwrap(),
        b.key_pem()
    );
    // One file in the way is enough to write none.
    let partial = dir.path().join("partial");
    std::fs::create_dir(&partial).unwrap();
    std::fs::write(partial.join(files::KEY), "mine").unwrap();
    assert!(again.write_to(&partial).is_err());
    assert!(!partial.join(files::CA).exists());
}

#[test]
fn token_keys_sign_and_verify_es256() {
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

    let (private, public) = token_keypair().unwrap();
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8");
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "SPKI");
    let claims = serde_json::json!({"sub": "sip:alice@mc-a.example", "exp": 4_000_000_000_u64});
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &claims,
        &EncodingKey::from_ec_pem(private.as_bytes()).unwrap(),
    )
    .unwrap();
    let decoded = jsonwebtoken::decode::<serde_json::Value>(
        &token,
        &DecodingKey::from_ec_pem(public.as_bytes()).unwrap(),
        &Validation::new(Algorithm::ES256),
    )
    .unwrap();
    assert_eq!(decoded.claims, claims);
    let (_, other_public) = token_keypair().unwrap();
    assert!(
        jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_ec_pem(other_public.as_bytes()).unwrap(),
            &Validation::new(Algorithm::ES256),
        )
        .is_err(),
        "each call makes a new key"
    );
}
