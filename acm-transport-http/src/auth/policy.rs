//! What a token must say to be accepted.

use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::error::TokenConfigError;

/// The longest clock-skew leeway a verifier accepts: a token is usable at most this long after
/// its `exp` (and before its `nbf`).
pub const MAX_LEEWAY: Duration = Duration::from_secs(30);

/// The leeway of [`TokenPolicy::new`].
pub const DEFAULT_LEEWAY: Duration = MAX_LEEWAY;

/// The claim that holds the user's MC service ID by default (`mcptt_id`, as in the ID token of
/// TS 24.482).
pub const DEFAULT_CLAIM: &str = "mcptt_id";

/// The signature algorithms a policy may allow: the asymmetric ones. HMAC (HS*) would need a
/// secret shared with every resource server, which is not the TS 33.180 model.
pub const SUPPORTED_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// What an access token must say to be accepted (TS 33.180: the MC identity management server
/// issues it for this ACM server).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenPolicy {
    /// The identity management server: `iss` must equal it exactly.
    pub issuer: String,
    /// This ACM server: `aud` (a string or an array) must contain it.
    pub audience: String,
    /// The `alg`s accepted; each must be in [`SUPPORTED_ALGORITHMS`].
    pub algorithms: Vec<Algorithm>,
    /// Clock-skew allowance on `exp` and `nbf`, at most [`MAX_LEEWAY`]; whole seconds count.
    pub leeway: Duration,
    /// The claim holding the user's MC service ID.
    pub claim: String,
}

impl TokenPolicy {
    /// A policy for tokens from `issuer` for `audience`: ES256 only, a leeway of
    /// [`DEFAULT_LEEWAY`], the MC service ID in [`DEFAULT_CLAIM`].
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            algorithms: vec![Algorithm::ES256],
            leeway: DEFAULT_LEEWAY,
            claim: DEFAULT_CLAIM.to_owned(),
        }
    }

    /// The same policy allowing `algorithms` instead.
    #[must_use]
    pub fn with_algorithms(mut self, algorithms: impl Into<Vec<Algorithm>>) -> Self {
        self.algorithms = algorithms.into();
        self
    }

    /// The same policy with another leeway.
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The same policy reading the MC service ID from another claim.
    #[must_use]
    pub fn with_claim(mut self, claim: impl Into<String>) -> Self {
        self.claim = claim.into();
        self
    }

    /// Checks the policy on its own (the keys are checked by the verifier).
    pub(crate) fn check(&self) -> Result<(), TokenConfigError> {
        if self.leeway > MAX_LEEWAY {
            return Err(TokenConfigError::LeewayTooLong {
                leeway: self.leeway,
                max: MAX_LEEWAY,
            });
        }
        for (field, value) in [
            ("issuer", &self.issuer),
            ("audience", &self.audience),
            ("claim", &self.claim),
        ] {
            if value.is_empty() {
                return Err(TokenConfigError::EmptyField { field });
            }
        }
        if self.algorithms.is_empty() {
            return Err(TokenConfigError::NoAlgorithms);
        }
        if let Some(&alg) = self
            .algorithms
            .iter()
            .find(|alg| !SUPPORTED_ALGORITHMS.contains(alg))
        {
            return Err(TokenConfigError::AlgorithmNotSupported { alg });
        }
        Ok(())
    }
}
