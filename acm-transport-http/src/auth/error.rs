//! Why a token is refused, why a verifier cannot be configured, and why a token cannot be
//! issued. Each has a stable `code()`: clients and the API layer match on the code, never on
//! the text.

use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;

/// Why an access token is refused. Every refusal is answered 401 with the problem type
/// `urn:acm:problem:<code>` and `WWW-Authenticate: Bearer error="invalid_token"`.
///
/// Non-exhaustive: a new check gets its own variant (possibly sharing a code) rather than
/// reusing one that means something else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The request has no `Authorization` header.
    #[error("no access token: the request has no Authorization header")]
    Missing,
    /// The `Authorization` header uses another scheme than `Bearer` (e.g. `Basic`). RFC 6750
    /// §3.1 treats an unsupported scheme as a request without authentication, hence the same
    /// code as [`TokenError::Missing`].
    #[error("no access token: the Authorization header does not use the Bearer scheme")]
    NotBearer,
    /// The token is not a signed JWT in compact form (wrong number of parts, bad base64url or
    /// JSON, a missing or empty signature, a header this server does not understand, …).
    #[error("malformed access token: {reason}")]
    Malformed {
        /// What is wrong, for the problem's detail.
        reason: String,
    },
    /// The signature does not verify with the key the token selects.
    #[error("the access token's signature does not verify")]
    BadSignature,
    /// The header's `alg` is not on the allow-list, is `none`, or does not fit the key the
    /// token selects.
    #[error("access token algorithm {alg} is not allowed{}", key_note(*.for_key))]
    AlgorithmNotAllowed {
        /// The header's `alg` (`?` when it is not a short printable name).
        alg: String,
        /// `true` when the algorithm is allowed in general but not with the selected key.
        for_key: bool,
    },
    /// `exp` is further in the past than the leeway.
    #[error("the access token has expired")]
    Expired,
    /// `nbf` is further in the future than the leeway.
    #[error("the access token is not valid yet")]
    NotYetValid,
    /// `aud` does not name this server's audience.
    #[error("the access token is meant for another audience")]
    WrongAudience,
    /// `iss` is not the configured MC identity management server.
    #[error("the access token was issued by another issuer")]
    WrongIssuer,
    /// A claim that must be present is absent.
    #[error("the access token has no {claim} claim")]
    MissingClaim {
        /// The claim's name.
        claim: String,
    },
    /// A claim is present but its value is unusable (wrong JSON type, not an MC service ID, …).
    #[error("the access token's {claim} claim is invalid: {reason}")]
    InvalidClaim {
        /// The claim's name.
        claim: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No configured key is the one the token names (`kid`), or the token names none and more
    /// than one key is configured.
    #[error("no configured key matches the access token{}", kid_note(.kid.as_deref()))]
    UnknownKey {
        /// The header's `kid`, if it has one.
        kid: Option<String>,
    },
}

fn key_note(for_key: bool) -> &'static str {
    if for_key {
        " with the key it selects"
    } else {
        ""
    }
}

fn kid_note(kid: Option<&str>) -> String {
    kid.map_or_else(
        || " (it has no kid and several keys are configured)".to_owned(),
        |kid| format!(" (kid {kid:?})"),
    )
}

impl TokenError {
    /// The stable code, one of `token_missing`, `token_malformed`, `token_bad_signature`,
    /// `token_algorithm_not_allowed`, `token_expired`, `token_not_yet_valid`,
    /// `token_wrong_audience`, `token_wrong_issuer`, `token_missing_claim`,
    /// `token_invalid_claim`, `token_unknown_key`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing | Self::NotBearer => "token_missing",
            Self::Malformed { .. } => "token_malformed",
            Self::BadSignature => "token_bad_signature",
            Self::AlgorithmNotAllowed { .. } => "token_algorithm_not_allowed",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::WrongAudience => "token_wrong_audience",
            Self::WrongIssuer => "token_wrong_issuer",
            Self::MissingClaim { .. } => "token_missing_claim",
            Self::InvalidClaim { .. } => "token_invalid_claim",
            Self::UnknownKey { .. } => "token_unknown_key",
        }
    }

    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        Self::Malformed {
            reason: reason.into(),
        }
    }
}

/// Why a [`TokenVerifier`](super::TokenVerifier) or [`TokenKeys`](super::TokenKeys) cannot be
/// built from the configuration. Found at start-up, so that a misconfigured server does not
/// start and refuse every client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenConfigError {
    /// The leeway is longer than [`MAX_LEEWAY`](super::MAX_LEEWAY).
    #[error("token leeway {}s is longer than the {}s allowed", .leeway.as_secs_f64(), .max.as_secs())]
    LeewayTooLong {
        /// The configured leeway.
        leeway: Duration,
        /// The longest allowed.
        max: Duration,
    },
    /// A policy text field (issuer, audience, claim name) is empty.
    #[error("the token policy's {field} is empty")]
    EmptyField {
        /// `issuer`, `audience` or `claim`.
        field: &'static str,
    },
    /// The allow-list of algorithms is empty.
    #[error(
        "no token algorithm is allowed: list at least one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"
    )]
    NoAlgorithms,
    /// An algorithm that is not supported was allowed (the HMAC ones: a shared secret is not
    /// how an MC identity management server signs for many resource servers).
    #[error(
        "token algorithm {alg:?} is not supported: only the asymmetric RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 and EdDSA are"
    )]
    AlgorithmNotSupported {
        /// The algorithm.
        alg: Algorithm,
    },
    /// No key is configured.
    #[error("no token verification key is configured")]
    NoKeys,
    /// None of the configured keys can verify any allowed algorithm.
    #[error("none of the token keys can verify the allowed algorithms {algorithms:?}")]
    NoUsableKey {
        /// The allowed algorithms.
        algorithms: Vec<Algorithm>,
    },
    /// Several keys are configured and one of them has no `kid`: a token can never select it.
    #[error("{key} has no kid, but {count} keys are configured: give every key a kid")]
    UnnamedKeyAmongMany {
        /// Which key.
        key: String,
        /// How many keys are configured.
        count: usize,
    },
    /// Two keys have the same `kid`.
    #[error("two token keys have the kid {kid:?}")]
    DuplicateKid {
        /// The kid.
        kid: String,
    },
    /// A key is unusable (a private key where a public key belongs, an unsupported type or
    /// curve, a short RSA modulus, bad encoding, …).
    #[error("{key}: {reason}")]
    BadKey {
        /// Which key (`PEM key`, `JWKS key kid "…"`, `JWKS key #2`).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The JWKS text is not a JWK set, or holds no usable signature key.
    #[error("bad JWKS: {reason}")]
    BadJwks {
        /// What is wrong with it.
        reason: String,
    },
    /// A key file cannot be read.
    #[error("cannot read token key file {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl TokenConfigError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::LeewayTooLong { .. } => "token_leeway_too_long",
            Self::EmptyField { .. } => "token_policy_empty_field",
            Self::NoAlgorithms => "token_no_algorithms",
            Self::AlgorithmNotSupported { .. } => "token_algorithm_not_supported",
            Self::NoKeys => "token_no_keys",
            Self::NoUsableKey { .. } => "token_no_usable_key",
            Self::UnnamedKeyAmongMany { .. } => "token_unnamed_key_among_many",
            Self::DuplicateKid { .. } => "token_duplicate_kid",
            Self::BadKey { .. } => "token_bad_key",
            Self::BadJwks { .. } => "token_bad_jwks",
            Self::Io { .. } => "token_key_file_unreadable",
        }
    }
}

/// Why a [`TokenIssuer`](super::TokenIssuer) cannot be built or cannot sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenIssueError {
    /// The algorithm is not one of the supported asymmetric ones.
    #[error("token algorithm {alg:?} is not supported for issuing")]
    AlgorithmNotSupported {
        /// The algorithm.
        alg: Algorithm,
    },
    /// The private key is not a PKCS#8 PEM key of the algorithm's type.
    #[error("bad token signing key for {alg:?}: {reason}")]
    BadKey {
        /// The algorithm.
        alg: Algorithm,
        /// What is wrong with the key.
        reason: String,
    },
    /// The claims given to [`TokenIssuer::issue_claims`](super::TokenIssuer::issue_claims) are
    /// not a JSON object.
    #[error("token claims must be a JSON object")]
    ClaimsNotAnObject,
    /// Signing failed.
    #[error("signing the token failed: {reason}")]
    Signing {
        /// Why.
        reason: String,
    },
}

impl TokenIssueError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::AlgorithmNotSupported { .. } => "token_issue_algorithm_not_supported",
            Self::BadKey { .. } => "token_issue_bad_key",
            Self::ClaimsNotAnObject => "token_issue_claims_not_an_object",
            Self::Signing { .. } => "token_issue_signing_failed",
        }
    }
}
