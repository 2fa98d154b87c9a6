//! Access tokens on the client API (TS 33.180): an ACM client presents
//! `Authorization: Bearer <JWT>`, a token the MC identity management server issued; the ACM
//! server checks it with [`TokenVerifier`] and learns the user's [`McServiceId`].
//!
//! What is checked: the signature against configured public keys ([`TokenKeys`]: a JWKS or
//! PEM public keys), `alg` against an allow-list of asymmetric algorithms (never `none`, no
//! HMAC), `iss` exactly, `aud` containing this server, `exp` (required) and `nbf` (if present)
//! with at most [`MAX_LEEWAY`] of clock skew, and the claim naming the user (`mcptt_id` by
//! default, as in TS 24.482's ID token). Every refusal is a [`TokenError`] with a stable
//! `token_*` code. [`TokenIssuer`] signs tokens for tests, tools and the demo.
//!
//! [`McServiceId`]: acm_core::McServiceId

mod compact;
mod error;
mod issue;
mod keys;
mod policy;
mod verify;

#[cfg(test)]
mod tests;

pub use error::{TokenConfigError, TokenError, TokenIssueError};
pub use issue::TokenIssuer;
pub use keys::TokenKeys;
pub use policy::{DEFAULT_CLAIM, DEFAULT_LEEWAY, MAX_LEEWAY, SUPPORTED_ALGORITHMS, TokenPolicy};
pub use verify::TokenVerifier;
