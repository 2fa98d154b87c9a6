//! Verifying an access token and reading the user it was issued to.

use std::str::FromStr as _;

use acm_core::McServiceId;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};

use super::compact::{bearer_token, quotable_alg, read_header};
use super::error::{TokenConfigError, TokenError};
use super::keys::TokenKeys;
use super::policy::TokenPolicy;

/// Checks access tokens against a [`TokenPolicy`] and [`TokenKeys`], and answers the
/// authenticated user.
///
/// The checks, in order (the first failing one is the answer):
/// 1. the compact form and the protected header (`token_malformed`; a `crit` header is
///    refused, as acm understands no extension);
/// 2. `alg` on the policy's allow-list — `none` never is, so an unsecured token
///    (`alg: none`, with or without a signature part) is `token_algorithm_not_allowed`; a
///    token with an allowed `alg` but no signature is `token_malformed`;
/// 3. the key the `kid` selects (`token_unknown_key`), and that its type fits `alg`
///    (`token_algorithm_not_allowed`);
/// 4. the signature (`token_bad_signature`); nothing in the claims is looked at before this
///    passes;
/// 5. `exp` and `nbf`, when present, are `NumericDate`s within the leeway
///    (`token_expired`, `token_not_yet_valid`, `token_invalid_claim`), and `aud`, when
///    present, contains the audience (`token_wrong_audience`);
/// 6. `exp` and `aud` are present (`token_missing_claim`), `aud` is a string or an array of
///    strings (`token_invalid_claim`);
/// 7. `iss` is present and a string equal to the issuer (`token_wrong_issuer`);
/// 8. the MC service ID claim is present and a string that parses as an [`McServiceId`]
///    (`token_missing_claim`, `token_invalid_claim`).
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    policy: TokenPolicy,
    keys: TokenKeys,
    /// One per allowed algorithm: jsonwebtoken wants every algorithm of a `Validation` to be
    /// of the key's family, and a token is checked against its own `alg` only.
    validations: Vec<(Algorithm, Validation)>,
}

impl TokenVerifier {
    /// A verifier of tokens that `policy` accepts, signed by one of `keys`.
    ///
    /// # Errors
    ///
    /// A [`TokenConfigError`] when the policy is unusable (leeway above
    /// [`MAX_LEEWAY`](super::MAX_LEEWAY), an empty field, no or an unsupported algorithm) or
    /// the keys are (none, none usable with the algorithms, a key without `kid` among several).
    pub fn new(policy: TokenPolicy, keys: TokenKeys) -> Result<Self, TokenConfigError> {
        policy.check()?;
        keys.check(&policy.algorithms)?;
        let mut validations: Vec<(Algorithm, Validation)> = Vec::new();
        for &alg in &policy.algorithms {
            if validations.iter().any(|(a, _)| *a == alg) {
                continue;
            }
            let mut validation = Validation::new(alg);
            validation.leeway = policy.leeway.as_secs();
            validation.validate_exp = true;
            validation.validate_nbf = true;
            validation.validate_aud = true;
            validation.set_audience(&[&policy.audience]);
            // Presence is checked below, after the signature: jsonwebtoken reports a present
            // but malformed `exp` or `aud` as missing when they are required, and a malformed
            // `aud` that is not required as fine.
            validation.required_spec_claims.clear();
            // `iss` is checked below: jsonwebtoken also accepts an array that contains the
            // issuer, and `iss` is one StringOrURI (RFC 7519 §4.1.1).
            validation.iss = None;
            validations.push((alg, validation));
        }
        Ok(Self {
            policy,
            keys,
            validations,
        })
    }

    /// The policy this verifier applies.
    pub fn policy(&self) -> &TokenPolicy {
        &self.policy
    }

    /// The user of an `Authorization` header value (`None` when the request has none):
    /// `Bearer <token>`, the scheme in any case.
    ///
    /// # Errors
    ///
    /// [`TokenError::Missing`] without a header, [`TokenError::NotBearer`] for another scheme
    /// (both `token_missing`), [`TokenError::Malformed`] for `Bearer` without a token, else as
    /// [`TokenVerifier::verify`].
    pub fn verify_header(&self, authorization: Option<&str>) -> Result<McServiceId, TokenError> {
        self.verify(bearer_token(authorization)?)
    }

    /// The user of an access token (the compact JWT, without `Bearer `).
    ///
    /// # Errors
    ///
    /// The [`TokenError`] of the first check that fails (see the type's documentation).
    pub fn verify(&self, token: &str) -> Result<McServiceId, TokenError> {
        let header = read_header(token)?;
        let not_allowed = |for_key| TokenError::AlgorithmNotAllowed {
            alg: quotable_alg(&header.alg),
            for_key,
        };
        // `Algorithm::from_str` knows no `none`, so an unsecured token fails here.
        let alg = Algorithm::from_str(&header.alg).map_err(|_| not_allowed(false))?;
        let Some((_, validation)) = self.validations.iter().find(|(a, _)| *a == alg) else {
            return Err(not_allowed(false));
        };
        if header.unsigned {
            return Err(TokenError::malformed("the token has no signature"));
        }
        let key = self.keys.select(header.kid.as_deref())?;
        if !key.fits(alg) {
            return Err(not_allowed(true));
        }
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, validation)
            .map_err(|e| refusal(e.kind(), &header.alg))?
            .claims;
        if !claims.is_object() {
            return Err(TokenError::malformed("the claims are not a JSON object"));
        }
        match claims.get("exp") {
            // jsonwebtoken has checked a present `exp` (NumericDate, not past the leeway).
            Some(_) => {}
            None => {
                return Err(TokenError::MissingClaim {
                    claim: "exp".to_owned(),
                });
            }
        }
        match claims.get("aud") {
            // jsonwebtoken has checked that a string or an array of strings names us.
            Some(serde_json::Value::String(_)) => {}
            Some(serde_json::Value::Array(auds))
                if auds.iter().all(serde_json::Value::is_string) => {}
            Some(_) => {
                return Err(TokenError::InvalidClaim {
                    claim: "aud".to_owned(),
                    reason: "not a string or an array of strings".to_owned(),
                });
            }
            None => {
                return Err(TokenError::MissingClaim {
                    claim: "aud".to_owned(),
                });
            }
        }
        match claims.get("iss") {
            None => {
                return Err(TokenError::MissingClaim {
                    claim: "iss".to_owned(),
                });
            }
            Some(serde_json::Value::String(iss)) if *iss == self.policy.issuer => {}
            Some(serde_json::Value::String(_)) => return Err(TokenError::WrongIssuer),
            Some(_) => {
                return Err(TokenError::InvalidClaim {
                    claim: "iss".to_owned(),
                    reason: "not a string".to_owned(),
                });
            }
        }
        let claim = &self.policy.claim;
        match claims.get(claim) {
            None => Err(TokenError::MissingClaim {
                claim: claim.clone(),
            }),
            Some(serde_json::Value::String(id)) => {
                id.parse::<McServiceId>()
                    .map_err(|e| TokenError::InvalidClaim {
                        claim: claim.clone(),
                        reason: e.to_string(),
                    })
            }
            Some(_) => Err(TokenError::InvalidClaim {
                claim: claim.clone(),
                reason: "not a string".to_owned(),
            }),
        }
    }
}

/// The refusal for what jsonwebtoken reports. By kind, never by message text.
fn refusal(kind: &ErrorKind, alg: &str) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature
        // The key was checked at start-up and fits `alg`; a key error now means that this
        // token cannot be verified with the key it selects.
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::Provider(_) => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm => TokenError::AlgorithmNotAllowed {
            alg: quotable_alg(alg),
            for_key: false,
        },
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim {
            claim: claim.clone(),
        },
        ErrorKind::InvalidClaimFormat(claim) => TokenError::InvalidClaim {
            claim: claim.clone(),
            reason: "not a NumericDate".to_owned(),
        },
        ErrorKind::InvalidSubject => TokenError::InvalidClaim {
            claim: "sub".to_owned(),
            reason: "unexpected subject".to_owned(),
        },
        ErrorKind::Base64(_) => TokenError::malformed("a part is not base64url"),
        ErrorKind::Json(_) => TokenError::malformed("the header or the claims are not valid"),
        ErrorKind::Utf8(_) => TokenError::malformed("a part is not UTF-8"),
        // `InvalidToken` (the shape) and whatever a later jsonwebtoken adds: a refusal that
        // says the token could not be processed.
        _ => TokenError::malformed("not a valid JWT"),
    }
}
