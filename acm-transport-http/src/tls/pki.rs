//! A test PKI made in memory (rcgen): one CA per MC system and the system's leaf certificate,
//! for `acm gen-certs`, the demo and tests; and ES256 key pairs for access tokens.
//!
//! Certificates are valid from 1975 to 4096 (rcgen's defaults): this PKI is for tests and
//! demonstrations, not for production.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use acm_core::SystemId;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::TlsIdentity;

/// Why a test PKI could not be made or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// rcgen could not make a key or a certificate.
    #[error("cannot generate {what}: {source}")]
    Generate {
        /// What was being made.
        what: String,
        /// What rcgen said.
        source: rcgen::Error,
    },
    /// A file to write exists already; nothing was written.
    #[error("{path} exists already: refusing to overwrite it")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl PkiError {
    /// A stable code for the kind of failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Generate { .. } => "pki_generate",
            Self::Exists { .. } => "pki_file_exists",
            Self::Write { .. } => "pki_write",
        }
    }
}

/// The file names [`SystemPki::write_to`] writes.
pub mod files {
    /// The CA certificate (the file partners configure as this system's CA).
    pub const CA: &str = "ca.pem";
    /// The CA's private key (PKCS#8).
    pub const CA_KEY: &str = "ca-key.pem";
    /// The system's leaf certificate (the leaf only).
    pub const CERT: &str = "cert.pem";
    /// The leaf's private key (PKCS#8).
    pub const KEY: &str = "key.pem";
}

/// A system's CA and its leaf certificate.
pub struct SystemPki {
    ca: CertifiedIssuer<'static, KeyPair>,
    ca_key_pem: String,
    leaf: Leaf,
}

impl SystemPki {
    /// A new CA (self-signed, CA:true) for `system`, and `system`'s leaf certificate signed
    /// by it.
    pub fn generate(system: &SystemId) -> Result<Self, PkiError> {
        let ca_what = || format!("the CA of {system}");
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| {
            PkiError::Generate {
                what: ca_what(),
                source,
            }
        })?;
        let ca_key_pem = ca_key.serialize_pem();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("acm test CA of {system}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca =
            CertifiedIssuer::self_signed(params, ca_key).map_err(|source| PkiError::Generate {
                what: ca_what(),
                source,
            })?;
        let leaf = Leaf::issue(system, &ca)?;
        Ok(Self {
            ca,
            ca_key_pem,
            leaf,
        })
    }

    /// A leaf certificate for `other_system`, signed by this system's CA: a certificate
    /// that a known CA issued, for a system that may not be the one the CA vouches for.
    pub fn generate_leaf_for(&self, other_system: &SystemId) -> Result<Leaf, PkiError> {
        Leaf::issue(other_system, &self.ca)
    }

    /// The system.
    pub fn system(&self) -> &SystemId {
        &self.leaf.system
    }

    /// The CA certificate (PEM).
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// The CA's private key (PKCS#8 PEM).
    pub fn ca_key_pem(&self) -> &str {
        &self.ca_key_pem
    }

    /// The system's leaf certificate.
    pub fn leaf(&self) -> &Leaf {
        &self.leaf
    }

    /// The leaf certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        self.leaf.cert_pem()
    }

    /// The leaf's private key (PKCS#8 PEM).
    pub fn key_pem(&self) -> &str {
        self.leaf.key_pem()
    }

    /// The leaf certificate and its key as a TLS identity.
    pub fn identity(&self) -> TlsIdentity {
        self.leaf.identity()
    }

    /// Writes [`files::CA`], [`files::CA_KEY`], [`files::CERT`] and [`files::KEY`] into
    /// `dir` (made if missing). If any of them exists, nothing is written. The key files are
    /// readable by their owner only (on Unix).
    pub fn write_to(&self, dir: impl AsRef<Path>) -> Result<(), PkiError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| PkiError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let ca_pem = self.ca_pem();
        let contents = [
            (files::CA, ca_pem.as_str(), false),
            (files::CA_KEY, self.ca_key_pem.as_str(), true),
            (files::CERT, self.leaf.cert_pem.as_str(), false),
            (files::KEY, self.leaf.key_pem.as_str(), true),
        ];
        // Checked first so that a second run does not leave a mixed set behind.
        for (name, _, _) in &contents {
            let path = dir.join(name);
            if path.exists() {
                return Err(PkiError::Exists { path });
            }
        }
        for (name, text, secret) in contents {
            write_new(&dir.join(name), text, secret)?;
        }
        Ok(())
    }
}

impl fmt::Debug for SystemPki {
    // The keys stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemPki")
            .field("system", &self.leaf.system)
            .finish_non_exhaustive()
    }
}

/// A leaf certificate: DNS names [system ID, `localhost`], IP address 127.0.0.1, extended
/// key usages serverAuth and clientAuth.
#[derive(Clone)]
pub struct Leaf {
    system: SystemId,
    cert_pem: String,
    key_pem: String,
    identity: TlsIdentity,
}

impl Leaf {
    fn issue(system: &SystemId, ca: &Issuer<'_, KeyPair>) -> Result<Self, PkiError> {
        let generate = |source| PkiError::Generate {
            what: format!("the certificate of {system}"),
            source,
        };
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate)?;
        let mut params = CertificateParams::new(vec![
            system.as_str().to_owned(),
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .map_err(generate)?;
        params
            .distinguished_name
            .push(DnType::CommonName, system.as_str());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, ca).map_err(generate)?;
        let identity = TlsIdentity::from_der_parts(
            vec![CertificateDer::clone(cert.der())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        );
        Ok(Self {
            system: system.clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            identity,
        })
    }

    /// The system it names.
    pub fn system(&self) -> &SystemId {
        &self.system
    }

    /// The certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Its private key (PKCS#8 PEM).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The certificate and its key as a TLS identity.
    pub fn identity(&self) -> TlsIdentity {
        self.identity.clone()
    }
}

impl fmt::Debug for Leaf {
    // The key stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leaf")
            .field("system", &self.system)
            .finish_non_exhaustive()
    }
}

/// A new ES256 (P-256) key pair for signing access tokens: the private key as PKCS#8 PEM
/// and the public key as SPKI PEM.
pub fn token_keypair() -> Result<(String, String), PkiError> {
    let key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| PkiError::Generate {
            what: "a token signing key".into(),
            source,
        })?;
    Ok((key.serialize_pem(), key.public_key_pem()))
}

fn write_new(path: &Path, text: &str, secret: bool) -> Result<(), PkiError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => PkiError::Exists {
            path: path.to_path_buf(),
        },
        _ => PkiError::Write {
            path: path.to_path_buf(),
            source,
        },
    })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| PkiError::Write {
            path: path.to_path_buf(),
            source,
        })
}
