//! The files a configuration names: each can be read and holds what its key says, so that
//! `acm serve` refuses at start rather than at the first handshake or token.

use std::io::Read;
use std::path::Path;

use super::error::{ConfigFileError, Reason};
use super::{Config, TokenKeys};

/// Largest file read; certificates, keys and key sets are a few kilobytes.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// What a named file must hold.
#[derive(Debug, Clone, Copy)]
enum Content {
    /// At least one PEM block with one of these labels.
    Pem(&'static [&'static str], &'static str),
    /// A JSON object with a `keys` array.
    Jwks,
}

const CERTIFICATE: Content = Content::Pem(&["CERTIFICATE"], "a PEM certificate file");
const PKCS8_KEY: Content = Content::Pem(&["PRIVATE KEY"], "a PEM PKCS#8 private key");
const PUBLIC_KEY: Content = Content::Pem(
    &["PUBLIC KEY", "RSA PUBLIC KEY"],
    "a PEM public key (SPKI, or PKCS#1 for RSA)",
);

pub(super) fn check(config: &Config) -> Result<(), ConfigFileError> {
    let mut named: Vec<(String, &Path, Content)> = vec![
        ("tls.cert".to_owned(), &config.tls.cert, CERTIFICATE),
        ("tls.key".to_owned(), &config.tls.key, PKCS8_KEY),
    ];
    for (i, partner) in config.partners.iter().enumerate() {
        named.push((format!("partners[{i}].ca"), &partner.ca, CERTIFICATE));
    }
    match &config.tokens.keys {
        TokenKeys::Jwks(path) => named.push(("tokens.jwks".to_owned(), path, Content::Jwks)),
        TokenKeys::PublicKeys(paths) => {
            for (i, path) in paths.iter().enumerate() {
                named.push((format!("tokens.public_keys[{i}]"), path, PUBLIC_KEY));
            }
        }
    }
    for (key, path, content) in named {
        check_one(path, content).map_err(|reason| ConfigFileError::new(key, reason))?;
    }
    Ok(())
}

fn check_one(path: &Path, content: Content) -> Result<(), Reason> {
    let cannot = |error: std::io::Error| Reason::CannotReadFile {
        path: path.to_path_buf(),
        error: error.to_string(),
    };
    let wrong = |expected| Reason::WrongContent {
        path: path.to_path_buf(),
        expected,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(wrong("a file of at most 1 MiB"));
    }
    match content {
        Content::Pem(labels, expected) => {
            let text = String::from_utf8_lossy(&bytes);
            if labels
                .iter()
                .any(|label| text.contains(&format!("-----BEGIN {label}-----")))
            {
                Ok(())
            } else {
                Err(wrong(expected))
            }
        }
        Content::Jwks => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(value) if value.get("keys").is_some_and(serde_json::Value::is_array) => Ok(()),
            _ => Err(wrong("a JWK set (a JSON object with a \"keys\" array)")),
        },
    }
}
