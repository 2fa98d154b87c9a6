//! `acm gen-certs` and `acm gen-token`: test material for operators and tests — a CA and a
//! certificate per MC system, a token signing key, and access tokens signed with it.

use std::path::Path;
use std::time::Duration;

use acm_core::{McServiceId, SystemId};
use acm_transport_http::TokenIssuer;
use acm_transport_http::pki::{SystemPki, token_keypair};

use crate::Failure;

/// Where `gen-certs` puts the token signing key pair, under its output directory.
pub const TOKENS_DIR: &str = "tokens";
/// The token signing key (PKCS#8 PEM, private).
pub const TOKEN_KEY: &str = "token-key.pem";
/// The token verification key (SPKI PEM), for `[tokens] public_keys`.
pub const TOKEN_PUB: &str = "token-pub.pem";

/// Writes `out/<system>/{ca.pem, ca-key.pem, cert.pem, key.pem}` for each system and
/// `out/tokens/{token-key.pem, token-pub.pem}`; refuses to overwrite anything.
pub fn certs(out: &Path, systems: &[SystemId]) -> Result<Vec<String>, Failure> {
    if systems.is_empty() {
        return Err(Failure::Usage("name at least one MC system".into()));
    }
    let mut written = Vec::new();
    for system in systems {
        let dir = out.join(system.as_str());
        SystemPki::generate(system)
            .and_then(|pki| pki.write_to(&dir))
            .map_err(|e| Failure::Open(e.to_string()))?;
        written.push(dir.display().to_string());
    }
    let tokens = out.join(TOKENS_DIR);
    let (private, public) = token_keypair().map_err(|e| Failure::Open(e.to_string()))?;
    write_new(&tokens, TOKEN_KEY, &private)?;
    write_new(&tokens, TOKEN_PUB, &public)?;
    written.push(tokens.display().to_string());
    Ok(written)
}

fn write_new(dir: &Path, name: &str, text: &str) -> Result<(), Failure> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir).map_err(|e| Failure::Open(format!("{}: {e}", dir.display())))?;
    let path = dir.join(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Failure::Open(format!("{}: {e}", path.display())))
}

/// What a token is made of.
#[derive(Debug)]
pub struct TokenArgs<'a> {
    /// The signing key file.
    pub key: &'a Path,
    /// `iss`.
    pub issuer: &'a str,
    /// `aud`.
    pub audience: &'a str,
    /// The user.
    pub user: &'a McServiceId,
    /// The claim that names the user.
    pub claim: &'a str,
    /// How long the token is valid.
    pub valid_for: Duration,
}

/// An ES256 access token for `args.user`.
pub fn token(args: &TokenArgs<'_>) -> Result<String, Failure> {
    let key = std::fs::read(args.key)
        .map_err(|e| Failure::Open(format!("{}: {e}", args.key.display())))?;
    let issuer = TokenIssuer::from_pem(
        &key,
        jsonwebtoken::Algorithm::ES256,
        args.issuer,
        args.audience,
        args.claim,
    )
    .map_err(|e| Failure::Usage(format!("{}: {e}", args.key.display())))?;
    issuer
        .issue(args.user, args.valid_for)
        .map_err(|e| Failure::Usage(e.to_string()))
}
