//! The public keys that verify access tokens: loaded from a JWKS (as an MC identity management
//! server publishes it) or from PEM public keys, checked once at start-up so that a bad key is
//! a configuration error and not a refusal of every token.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};
use rustls::pki_types::pem::{PemObject as _, SectionKind};

use super::error::{TokenConfigError, TokenError};

/// RSA moduli aws-lc-rs verifies (`RSA_*_2048_8192_*`); a key outside is refused at load time
/// rather than failing every signature later.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

// SubjectPublicKeyInfo DER up to the public key bytes. Each fixes the algorithm and the curve,
// so a prefix match identifies the key exactly (a key on another curve, e.g. secp256k1 with the
// same point length as P-256, does not match).
const SPKI_P256: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const SPKI_P384: &[u8] = &[
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];
const SPKI_ED25519: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// What a key can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyType {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyType {
    fn fits(self, alg: Algorithm) -> bool {
        match self {
            Self::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            Self::P256 => alg == Algorithm::ES256,
            Self::P384 => alg == Algorithm::ES384,
            Self::Ed25519 => alg == Algorithm::EdDSA,
        }
    }

    /// Length of the uncompressed EC point (`04 || x || y`), for the EC types.
    fn ec_point_len(self) -> Option<usize> {
        match self {
            Self::P256 => Some(65),
            Self::P384 => Some(97),
            Self::Rsa | Self::Ed25519 => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Rsa => "RSA",
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::Ed25519 => "Ed25519",
        }
    }
}

/// One verification key.
#[derive(Debug, Clone)]
pub(crate) struct VerifyKey {
    pub(crate) kid: Option<String>,
    key_type: KeyType,
    /// The JWK's `alg` when the JWKS pins the key to one algorithm (RFC 7517 §4.4).
    pinned: Option<Algorithm>,
    pub(crate) decoding: DecodingKey,
    /// How the key is named in configuration errors.
    label: String,
}

impl VerifyKey {
    /// Whether this key may verify a token signed with `alg`.
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        self.key_type.fits(alg) && self.pinned.is_none_or(|pinned| pinned == alg)
    }
}

/// The public keys that verify access tokens.
///
/// Build it from the identity management server's JWKS ([`TokenKeys::from_jwks`]) or from PEM
/// public keys ([`TokenKeys::from_pem`], [`TokenKeys::from_pem_with_kid`], combined with
/// [`TokenKeys::merge`]). Supported: RSA (2048 to 8192 bits), EC P-256 and P-384, Ed25519.
///
/// How a token selects its key: a token with a `kid` uses the key with that `kid`; a token
/// without one is accepted only when exactly one key is configured. One configured key without
/// a `kid` (a PEM key, typically) also verifies tokens that carry a `kid`, since the operator
/// named no key to match it against. Any other case is
/// [`TokenError::UnknownKey`](super::TokenError::UnknownKey).
#[derive(Debug, Clone, Default)]
pub struct TokenKeys {
    keys: Vec<VerifyKey>,
}

impl TokenKeys {
    /// The signature keys of a JWK set (RFC 7517), as JSON text.
    ///
    /// Keys that are not for verifying signatures (`use` other than `sig`, `key_ops` without
    /// `verify`, an encryption `alg`) and key types acm does not support (e.g. P-521) are
    /// skipped with a warning; a symmetric (`oct`) key, private key material, a key that does
    /// not decode, two keys with one `kid`, or a set with no usable key is an error.
    ///
    /// # Errors
    ///
    /// [`TokenConfigError::BadJwks`], [`TokenConfigError::BadKey`],
    /// [`TokenConfigError::DuplicateKid`].
    pub fn from_jwks(json: &str) -> Result<Self, TokenConfigError> {
        let set: serde_json::Value =
            serde_json::from_str(json).map_err(|e| TokenConfigError::BadJwks {
                reason: format!("not JSON: {e}"),
            })?;
        let Some(entries) = set.get("keys").and_then(serde_json::Value::as_array) else {
            return Err(TokenConfigError::BadJwks {
                reason: "not a JWK set: no \"keys\" array".to_owned(),
            });
        };
        let mut keys = Self::default();
        let mut skipped = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let label = match entry.get("kid").and_then(serde_json::Value::as_str) {
                Some(kid) => format!("JWKS key kid {kid:?}"),
                None => format!("JWKS key #{}", i + 1),
            };
            match key_from_jwk(entry, label)? {
                Loaded::Key(key) => keys.push(key)?,
                Loaded::Skipped { label, reason } => {
                    tracing::warn!(key = %label, %reason, "token key skipped");
                    skipped.push(format!("{label}: {reason}"));
                }
            }
        }
        if keys.is_empty() {
            let reason = if skipped.is_empty() {
                "it holds no key".to_owned()
            } else {
                format!("it holds no usable signature key ({})", skipped.join("; "))
            };
            return Err(TokenConfigError::BadJwks { reason });
        }
        Ok(keys)
    }

    /// [`TokenKeys::from_jwks`] on the contents of a file.
    ///
    /// # Errors
    ///
    /// [`TokenConfigError::Io`] when the file cannot be read, else as
    /// [`TokenKeys::from_jwks`].
    pub fn from_jwks_file(path: impl AsRef<Path>) -> Result<Self, TokenConfigError> {
        let text = read(path.as_ref())?;
        let text = String::from_utf8(text).map_err(|_| TokenConfigError::BadJwks {
            reason: format!("{} is not UTF-8", path.as_ref().display()),
        })?;
        Self::from_jwks(&text)
    }

    /// One public key without a `kid`, from PEM: exactly one `PUBLIC KEY` block
    /// (`SubjectPublicKeyInfo`) holding an RSA, EC P-256, EC P-384 or Ed25519 key; the type is
    /// detected.
    ///
    /// # Errors
    ///
    /// [`TokenConfigError::BadKey`]: no or several PEM blocks, a private key or a certificate
    /// instead of a public key, an unsupported key type or curve, an RSA modulus outside 2048
    /// to 8192 bits.
    pub fn from_pem(pem: &[u8]) -> Result<Self, TokenConfigError> {
        let key = key_from_pem(pem, None)?;
        Ok(Self { keys: vec![key] })
    }

    /// [`TokenKeys::from_pem`], the key named `kid` (so that it can stand with other keys).
    ///
    /// # Errors
    ///
    /// As [`TokenKeys::from_pem`]; an empty `kid` is a [`TokenConfigError::BadKey`].
    pub fn from_pem_with_kid(pem: &[u8], kid: impl Into<String>) -> Result<Self, TokenConfigError> {
        let kid = kid.into();
        if kid.is_empty() {
            return Err(TokenConfigError::BadKey {
                key: "PEM key".to_owned(),
                reason: "the kid is empty".to_owned(),
            });
        }
        let key = key_from_pem(pem, Some(kid))?;
        Ok(Self { keys: vec![key] })
    }

    /// [`TokenKeys::from_pem`] on the contents of a file.
    ///
    /// # Errors
    ///
    /// [`TokenConfigError::Io`] when the file cannot be read, else as [`TokenKeys::from_pem`].
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Self, TokenConfigError> {
        Self::from_pem(&read(path.as_ref())?)
    }

    /// These keys and `other`'s.
    ///
    /// # Errors
    ///
    /// [`TokenConfigError::DuplicateKid`] when both hold a key with the same `kid`.
    pub fn merge(mut self, other: Self) -> Result<Self, TokenConfigError> {
        for key in other.keys {
            self.push(key)?;
        }
        Ok(self)
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn push(&mut self, key: VerifyKey) -> Result<(), TokenConfigError> {
        if let Some(kid) = &key.kid
            && self.keys.iter().any(|k| k.kid.as_ref() == Some(kid))
        {
            return Err(TokenConfigError::DuplicateKid { kid: kid.clone() });
        }
        self.keys.push(key);
        Ok(())
    }

    /// Checks that every key can be selected by some token and that some key verifies one of
    /// `algorithms`.
    pub(crate) fn check(&self, algorithms: &[Algorithm]) -> Result<(), TokenConfigError> {
        if self.keys.is_empty() {
            return Err(TokenConfigError::NoKeys);
        }
        if self.keys.len() > 1
            && let Some(unnamed) = self.keys.iter().find(|k| k.kid.is_none())
        {
            return Err(TokenConfigError::UnnamedKeyAmongMany {
                key: unnamed.label.clone(),
                count: self.keys.len(),
            });
        }
        if !self
            .keys
            .iter()
            .any(|k| algorithms.iter().any(|&alg| k.fits(alg)))
        {
            return Err(TokenConfigError::NoUsableKey {
                algorithms: algorithms.to_vec(),
            });
        }
        Ok(())
    }

    /// The key a token with header `kid` selects (see the type's documentation).
    pub(crate) fn select(&self, kid: Option<&str>) -> Result<&VerifyKey, TokenError> {
        let only = match self.keys.as_slice() {
            [only] => Some(only),
            _ => None,
        };
        let found = match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .or(only.filter(|k| k.kid.is_none())),
            None => only,
        };
        found.ok_or_else(|| TokenError::UnknownKey {
            kid: kid.map(str::to_owned),
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TokenConfigError> {
    std::fs::read(path).map_err(|source| TokenConfigError::Io {
        path: path.to_owned(),
        source,
    })
}

fn bad_key(label: &str, reason: impl Into<String>) -> TokenConfigError {
    TokenConfigError::BadKey {
        key: label.to_owned(),
        reason: reason.into(),
    }
}

fn key_from_pem(pem: &[u8], kid: Option<String>) -> Result<VerifyKey, TokenConfigError> {
    let label = match &kid {
        Some(kid) => format!("PEM key kid {kid:?}"),
        None => "PEM key".to_owned(),
    };
    // One block only: the RSA path below hands the whole text to jsonwebtoken, which reads the
    // first block whatever its label, so it must be the block checked here.
    let blocks = pem.windows(11).filter(|w| w == b"-----BEGIN ").count();
    if blocks != 1 {
        return Err(bad_key(
            &label,
            format!("expected exactly one PEM block (one PUBLIC KEY per key), found {blocks}"),
        ));
    }
    let sections = <(SectionKind, Vec<u8>)>::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_key(&label, format!("bad PEM: {e}")))?;
    let der = match sections.into_iter().next() {
        Some((SectionKind::PublicKey, der)) => der,
        Some((
            SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey,
            _,
        )) => {
            return Err(bad_key(
                &label,
                "this is a private key: configure the public key (a PUBLIC KEY block)",
            ));
        }
        Some((SectionKind::Certificate, _)) => {
            return Err(bad_key(
                &label,
                "this is a certificate: configure its public key (a PUBLIC KEY block)",
            ));
        }
        _ => {
            return Err(bad_key(
                &label,
                "expected a PUBLIC KEY block (SubjectPublicKeyInfo)",
            ));
        }
    };
    let (key_type, decoding) = if let Some(point) = spki_body(&der, SPKI_P256, 65) {
        (KeyType::P256, DecodingKey::from_ec_der(point))
    } else if let Some(point) = spki_body(&der, SPKI_P384, 97) {
        (KeyType::P384, DecodingKey::from_ec_der(point))
    } else if let Some(x) = spki_body(&der, SPKI_ED25519, 32) {
        (KeyType::Ed25519, DecodingKey::from_ed_der(x))
    } else {
        (KeyType::Rsa, rsa_from_pem(pem, &label)?)
    };
    Ok(VerifyKey {
        kid,
        key_type,
        pinned: None,
        decoding,
        label,
    })
}

/// The key bytes after `prefix`, when `der` is exactly `prefix` and `len` more bytes.
fn spki_body<'a>(der: &'a [u8], prefix: &[u8], len: usize) -> Option<&'a [u8]> {
    der.strip_prefix(prefix).filter(|rest| rest.len() == len)
}

fn rsa_from_pem(pem: &[u8], label: &str) -> Result<DecodingKey, TokenConfigError> {
    let unsupported = || {
        bad_key(
            label,
            "not an RSA, EC P-256, EC P-384 or Ed25519 public key",
        )
    };
    let key = DecodingKey::from_rsa_pem(pem).map_err(|_| unsupported())?;
    let DecodingKeyKind::SecretOrDer(pkcs1) = key.kind() else {
        return Err(unsupported());
    };
    let (n, e) = (jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER
        .key_utils
        .rsa_pub_components_from_public_key)(pkcs1)
    .map_err(|e| bad_key(label, format!("bad RSA public key: {e}")))?;
    rsa_key(&n, &e, label)
}

fn rsa_key(n: &[u8], e: &[u8], label: &str) -> Result<DecodingKey, TokenConfigError> {
    let bits = rsa_bits(n);
    if !RSA_BITS.contains(&bits) {
        return Err(bad_key(
            label,
            format!(
                "RSA modulus of {bits} bits: {} to {} are supported",
                RSA_BITS.start(),
                RSA_BITS.end()
            ),
        ));
    }
    if e.iter().all(|&b| b == 0) {
        return Err(bad_key(label, "RSA public exponent is zero"));
    }
    Ok(DecodingKey::from_rsa_raw_components(n, e))
}

fn rsa_bits(n: &[u8]) -> usize {
    let n = &n[n.iter().take_while(|&&b| b == 0).count()..];
    n.first().map_or(0, |&first| {
        (n.len() - 1) * 8 + (8 - first.leading_zeros() as usize)
    })
}

enum Loaded {
    Key(VerifyKey),
    Skipped { label: String, reason: String },
}

fn key_from_jwk(entry: &serde_json::Value, label: String) -> Result<Loaded, TokenConfigError> {
    let skipped = |reason: String| {
        Ok(Loaded::Skipped {
            label: label.clone(),
            reason,
        })
    };
    let Some(object) = entry.as_object() else {
        return Err(bad_key(&label, "not a JSON object"));
    };
    // jsonwebtoken's Jwk drops members it does not know, so private parts are looked for here:
    // a private key in the verifier's configuration is a leak to stop, not to ignore.
    if let Some(private) = ["d", "p", "q", "dp", "dq", "qi"]
        .iter()
        .find(|m| object.contains_key(**m))
    {
        return Err(bad_key(
            &label,
            format!("holds private key material ({private:?}): publish only public keys"),
        ));
    }
    let jwk: Jwk = serde_json::from_value(entry.clone())
        .map_err(|e| bad_key(&label, format!("not a JWK: {e}")))?;
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(other) => return skipped(format!("not a signature key (use {other:?})")),
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return skipped("its key_ops do not include verify".to_owned());
    }
    let pinned = match jwk.common.key_algorithm {
        None => None,
        Some(KeyAlgorithm::HS256 | KeyAlgorithm::HS384 | KeyAlgorithm::HS512) => {
            return Err(bad_key(
                &label,
                "an HMAC key: only asymmetric signature keys are supported",
            ));
        }
        Some(alg) => match Algorithm::try_from(alg) {
            Ok(alg) => Some(alg),
            Err(_) => return skipped(format!("alg {alg} is not a supported signature algorithm")),
        },
    };
    let (key_type, decoding) = match key_material(&jwk.algorithm, object, &label)? {
        Ok(material) => material,
        Err(reason) => return skipped(reason),
    };
    if let Some(alg) = pinned
        && !key_type.fits(alg)
    {
        return Err(bad_key(
            &label,
            format!("alg {alg:?} does not fit a {} key", key_type.name()),
        ));
    }
    Ok(Loaded::Key(VerifyKey {
        kid: jwk.common.key_id,
        key_type,
        pinned,
        decoding,
        label,
    }))
}

/// The key type and verification key of a JWK's parameters; `Ok(Err(reason))` for a key
/// type acm skips.
fn key_material(
    algorithm: &AlgorithmParameters,
    object: &serde_json::Map<String, serde_json::Value>,
    label: &str,
) -> Result<Result<(KeyType, DecodingKey), String>, TokenConfigError> {
    let material = match algorithm {
        AlgorithmParameters::EllipticCurve(ec) => {
            let key_type = match &ec.curve {
                EllipticCurve::P256 => KeyType::P256,
                EllipticCurve::P384 => KeyType::P384,
                EllipticCurve::Ed25519 => {
                    return Err(bad_key(label, "kty EC with curve Ed25519 (use kty OKP)"));
                }
                other => return Ok(Err(format!("curve {other:?} is not supported"))),
            };
            let x = b64(&ec.x, "x", label)?;
            let y = b64(&ec.y, "y", label)?;
            let mut point = Vec::with_capacity(1 + x.len() + y.len());
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            if Some(point.len()) != key_type.ec_point_len() {
                return Err(bad_key(
                    label,
                    format!(
                        "x and y do not have the length of a {} key",
                        key_type.name()
                    ),
                ));
            }
            (key_type, DecodingKey::from_ec_der(&point))
        }
        AlgorithmParameters::RSA(rsa) => {
            let n = b64(&rsa.n, "n", label)?;
            let e = b64(&rsa.e, "e", label)?;
            (KeyType::Rsa, rsa_key(&n, &e, label)?)
        }
        AlgorithmParameters::OctetKeyPair(okp) => {
            if okp.curve != EllipticCurve::Ed25519 {
                return Ok(Err(format!("OKP curve {:?} is not supported", okp.curve)));
            }
            let x = b64(&okp.x, "x", label)?;
            if x.len() != 32 {
                return Err(bad_key(
                    label,
                    "x does not have the length of an Ed25519 key",
                ));
            }
            (KeyType::Ed25519, DecodingKey::from_ed_der(&x))
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err(bad_key(
                label,
                "a symmetric (oct) key: only asymmetric signature keys are supported",
            ));
        }
        _ => {
            let kty = object
                .get("kty")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?");
            return Ok(Err(format!("key type {kty:?} is not supported")));
        }
    };
    Ok(Ok(material))
}

fn b64(value: &str, member: &str, label: &str) -> Result<Vec<u8>, TokenConfigError> {
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|e| bad_key(label, format!("{member} is not base64url: {e}")))
}
