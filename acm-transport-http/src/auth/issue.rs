//! Issuing access tokens as an MC identity management server would: for tests, `acm
//! gen-token` and the demo. A deployment gets its tokens from the real server.

use std::fmt;
use std::time::Duration;

use acm_core::McServiceId;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, OctetKeyPairParameters,
    OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, AlgorithmFamily, EncodingKey, Header};

use super::error::TokenIssueError;
use super::policy::SUPPORTED_ALGORITHMS;

/// Signs access tokens with a private key.
#[derive(Clone)]
pub struct TokenIssuer {
    key: EncodingKey,
    alg: Algorithm,
    issuer: String,
    audience: String,
    claim: String,
    kid: Option<String>,
    /// The public half, for [`TokenIssuer::jwks`].
    public: Jwk,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs.
        f.debug_struct("TokenIssuer")
            .field("alg", &self.alg)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("claim", &self.claim)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// An issuer signing with `private_key_pem` (PKCS#8, `PRIVATE KEY`) under `alg`, writing
    /// `iss` = `issuer`, `aud` = `audience` and the user's MC service ID in `claim`.
    ///
    /// # Errors
    ///
    /// [`TokenIssueError::AlgorithmNotSupported`] for an algorithm outside
    /// [`SUPPORTED_ALGORITHMS`]; [`TokenIssueError::BadKey`] when the key is not a private key
    /// that signs under `alg` (e.g. a P-256 key for ES384).
    pub fn from_pem(
        private_key_pem: &[u8],
        alg: Algorithm,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        claim: impl Into<String>,
    ) -> Result<Self, TokenIssueError> {
        if !SUPPORTED_ALGORITHMS.contains(&alg) {
            return Err(TokenIssueError::AlgorithmNotSupported { alg });
        }
        let bad_key = |reason: String| TokenIssueError::BadKey { alg, reason };
        let key = match alg.family() {
            AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(private_key_pem),
            AlgorithmFamily::Ec => EncodingKey::from_ec_pem(private_key_pem),
            AlgorithmFamily::Ed => EncodingKey::from_ed_pem(private_key_pem),
            AlgorithmFamily::Hmac => return Err(TokenIssueError::AlgorithmNotSupported { alg }),
        }
        .map_err(|e| bad_key(format!("not a PKCS#8 private key of this type ({e})")))?;
        // The PEM readers only look at the label and the OID; signing once proves that the key
        // parses and fits the algorithm (curve included) before the first real token.
        jsonwebtoken::crypto::sign(b"probe", &key, alg)
            .map_err(|e| bad_key(format!("cannot sign with it ({e})")))?;
        let public = public_jwk(&key, alg)
            .map_err(|e| bad_key(format!("cannot derive its public key ({e})")))?;
        Ok(Self {
            key,
            alg,
            issuer: issuer.into(),
            audience: audience.into(),
            claim: claim.into(),
            kid: None,
            public,
        })
    }

    /// The same issuer writing `kid` in every token's header (and in [`TokenIssuer::jwks`]).
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The signing algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// A token for `user`, valid from now for `valid_for` (whole seconds): `iss`, `aud`,
    /// `iat`, `nbf` = now, `exp` = now + `valid_for`, and the MC service ID claim.
    ///
    /// # Errors
    ///
    /// [`TokenIssueError::Signing`] when signing fails.
    pub fn issue(
        &self,
        user: &McServiceId,
        valid_for: Duration,
    ) -> Result<String, TokenIssueError> {
        let now = jsonwebtoken::get_current_timestamp();
        let mut claims = serde_json::Map::new();
        claims.insert("iss".to_owned(), self.issuer.clone().into());
        claims.insert("aud".to_owned(), self.audience.clone().into());
        claims.insert("iat".to_owned(), now.into());
        claims.insert("nbf".to_owned(), now.into());
        claims.insert(
            "exp".to_owned(),
            now.saturating_add(valid_for.as_secs()).into(),
        );
        claims.insert(self.claim.clone(), user.as_str().into());
        self.sign(&serde_json::Value::Object(claims))
    }

    /// A token with exactly `claims` (nothing added), signed like the others: for tests that
    /// need a token missing a claim, with an odd value, or expired.
    ///
    /// # Errors
    ///
    /// [`TokenIssueError::ClaimsNotAnObject`] unless `claims` is a JSON object;
    /// [`TokenIssueError::Signing`] when signing fails.
    pub fn issue_claims(&self, claims: &serde_json::Value) -> Result<String, TokenIssueError> {
        if !claims.is_object() {
            return Err(TokenIssueError::ClaimsNotAnObject);
        }
        self.sign(claims)
    }

    /// The public key as a JWK set (`{"keys":[…]}` with `use: sig`, `alg` and the `kid` if
    /// any), which [`TokenKeys::from_jwks`](super::TokenKeys::from_jwks) reads.
    pub fn jwks(&self) -> String {
        let mut public = self.public.clone();
        public.common.key_id.clone_from(&self.kid);
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        let set = JwkSet { keys: vec![public] };
        // A JwkSet is strings and enums: serialising it cannot fail.
        serde_json::to_string_pretty(&set).unwrap_or_default()
    }

    fn sign(&self, claims: &serde_json::Value) -> Result<String, TokenIssueError> {
        let mut header = Header::new(self.alg);
        header.kid.clone_from(&self.kid);
        jsonwebtoken::encode(&header, claims, &self.key).map_err(|e| TokenIssueError::Signing {
            reason: e.to_string(),
        })
    }
}

/// The public JWK of a private key.
fn public_jwk(key: &EncodingKey, alg: Algorithm) -> jsonwebtoken::errors::Result<Jwk> {
    if alg.family() != AlgorithmFamily::Ed {
        return Jwk::from_encoding_key(key, alg);
    }
    // jsonwebtoken only takes a PKCS#8 v1 Ed25519 key (48 bytes) here; rcgen (aws-lc-rs)
    // writes v2, with the public key, which aws-lc-rs reads as well.
    let x = (jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER
        .key_utils
        .ed_pub_components_from_private_key)(key.as_bytes(), &EllipticCurve::Ed25519)?;
    Ok(Jwk {
        common: CommonParameters {
            key_algorithm: Some(alg.into()),
            ..CommonParameters::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: URL_SAFE_NO_PAD.encode(x),
        }),
    })
}
