//! The `Authorization: Bearer` header and the JWS compact form, read here rather than by
//! jsonwebtoken: its header type cannot represent `alg: none` or an unknown `alg`, so it
//! fails on them with a JSON error that says nothing about why. Reading the header first gives
//! every such token one deterministic answer.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::TokenError;

/// Longest token accepted, in bytes. An identity management server's access token is well
/// under 2 KiB; the bound keeps decoding cheap whatever a client sends.
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The token of an `Authorization` header value: `Bearer` (any case, RFC 7235 §2.1) and the
/// token after one or more spaces.
pub(crate) fn bearer_token(value: Option<&str>) -> Result<&str, TokenError> {
    let value = value.ok_or(TokenError::Missing)?.trim_matches([' ', '\t']);
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::NotBearer);
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() {
        return Err(TokenError::malformed("the Bearer scheme carries no token"));
    }
    if token.contains(|c: char| c.is_ascii_whitespace()) {
        return Err(TokenError::malformed("the token holds white space"));
    }
    Ok(token)
}

/// What the verifier needs from the protected header before it picks a key.
#[derive(Debug)]
pub(crate) struct JoseHeader {
    pub(crate) alg: String,
    pub(crate) kid: Option<String>,
    /// Whether the signature part is empty (an unsecured JWS).
    pub(crate) unsigned: bool,
}

/// The header of a signed JWT in compact form (three base64url parts).
pub(crate) fn read_header(token: &str) -> Result<JoseHeader, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::malformed(format!(
            "longer than {MAX_TOKEN_LEN} bytes"
        )));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        // Five parts would be a JWE: an encrypted token is not what an access token is here.
        return Err(TokenError::malformed(
            "a signed JWT has three dot-separated parts",
        ));
    };
    if header.is_empty() || payload.is_empty() {
        return Err(TokenError::malformed(
            "the header or the claims part is empty",
        ));
    }
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::malformed("the header is not base64url"))?;
    let serde_json::Value::Object(header) = serde_json::from_slice(&json)
        .map_err(|_| TokenError::malformed("the header is not JSON"))?
    else {
        return Err(TokenError::malformed("the header is not a JSON object"));
    };
    let alg = match header.get("alg") {
        Some(serde_json::Value::String(alg)) => alg.clone(),
        Some(_) => return Err(TokenError::malformed("the header's alg is not a string")),
        None => return Err(TokenError::malformed("the header has no alg")),
    };
    let kid = match header.get("kid") {
        Some(serde_json::Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(TokenError::malformed("the header's kid is not a string")),
        None => None,
    };
    // RFC 7515 §4.1.11: a recipient that does not understand a critical extension must refuse
    // the token, and acm understands none.
    if header.contains_key("crit") {
        return Err(TokenError::malformed(
            "critical header extensions (crit) are not supported",
        ));
    }
    Ok(JoseHeader {
        alg,
        kid,
        unsigned: signature.is_empty(),
    })
}

/// `alg` as it may be quoted back to the client: a short printable name, else `?`.
pub(crate) fn quotable_alg(alg: &str) -> String {
    if !alg.is_empty() && alg.len() <= 16 && alg.bytes().all(|b| b.is_ascii_graphic()) {
        alg.to_owned()
    } else {
        "?".to_owned()
    }
}
