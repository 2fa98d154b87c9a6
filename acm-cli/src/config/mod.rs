//! The configuration file of `acm serve` (TOML; every key in `docs/configuration.md`).
//!
//! [`Config::load`] reads a file, checks it and every file it names, and gives a typed
//! [`Config`]: the core's [`ServerConfig`], the directory's tables (built by
//! [`Config::directory`]), the listeners, TLS and token files, the HTTP limits and the duty
//! timing. A refusal is a [`ConfigFileError`] naming the key (`partners[1].url`) and a typed
//! [`Reason`], so that `acm serve` refuses to start with a message that says what to fix.
//!
//! [`Config::parse`] checks the text alone and [`Config::check_files`] the files it names,
//! so that a configuration can be checked on a machine that does not hold its keys.

mod build;
mod error;
mod file;
mod files;
mod url;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use acm_core::{
    AcmRequestKind, FunctionalAlias, GroupId, McServiceId, Processing, ServerConfig,
    StaticDirectory, SystemId,
};

pub use error::{ConfigFileError, Reason};
pub use url::UrlProblem;

/// The access-token signature algorithms acm accepts (JWS names, RFC 7518 and RFC 8037).
/// `none` and the HMAC algorithms are not among them: a token must be signed by the
/// identity management server's private key (TS 33.180), not with a secret acm would share.
pub const TOKEN_ALGORITHMS: [&str; 9] = [
    "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA",
];

/// Most leeway granted on a token's `exp` and `nbf`, in seconds.
pub const MAX_LEEWAY_SECONDS: u64 = 30;

/// A checked configuration of one ACM server.
#[derive(Debug, Clone)]
pub struct Config {
    /// The core's configuration (system, home domains, `max_groups`, the timers of
    /// `[timing]`, the send limits of `[limits]`); it passes [`ServerConfig::validate`].
    pub server: ServerConfig,
    /// Where the two APIs listen.
    pub listen: Listen,
    /// This server's certificate and key.
    pub tls: TlsFiles,
    /// The interconnected partner MC systems, in file order.
    pub partners: Vec<Partner>,
    /// The users of this MC system, in file order.
    pub users: Vec<User>,
    /// The functional aliases of this MC system and who holds them, in file order.
    pub functional_aliases: Vec<AliasHolders>,
    /// How each ACM request kind is processed here; every kind is present.
    pub processing: BTreeMap<AcmRequestKind, Processing>,
    /// The SQLite store.
    pub store: PathBuf,
    /// How client access tokens are verified.
    pub tokens: Tokens,
    /// The HTTP limits of `[limits]` (`max_groups` and the send limits are in `server`).
    pub limits: ApiLimits,
    /// The timing of `[timing]` that is not the core's (the rest is in `server`).
    pub timing: Timing,
}

/// `[listen]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    /// The client API (HTTPS, server-authenticated).
    pub client: SocketAddr,
    /// The partner API (HTTPS, mutual TLS).
    pub partner: SocketAddr,
}

/// `[tls]`: this server's identity, for both listeners and as the client certificate
/// towards partners. Paths are resolved against the configuration file's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM PKCS#8 private key of the leaf.
    pub key: PathBuf,
}

/// One interconnected partner MC system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    /// The partner's system ID; also a DNS name in its certificate.
    pub system: SystemId,
    /// Base URL of its partner API: `https://host[:port][/path]`, lower-case scheme and
    /// host, no trailing `/`; the API paths (`/acm-partner/v1/…`) are appended to it.
    pub url: String,
    /// PEM file of the CA that issues the partner's certificates.
    pub ca: PathBuf,
    /// The domains the partner is group home system for.
    pub home_domains: Vec<SystemId>,
    /// The partner's groups known here as interconnection groups (a group membership
    /// update from the partner may name only these).
    pub interconnection_groups: Vec<GroupId>,
}

/// One user of this MC system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's MC service ID.
    pub id: McServiceId,
    /// Whether ACM requests may be offered to the user.
    pub may_receive: bool,
    /// The partners the user may provide interconnection group IDs to.
    pub provides_to: Vec<SystemId>,
    /// The partners the user may send group membership updates to.
    pub membership_updates_to: Vec<SystemId>,
    /// The partners the user may send user migration management requests to.
    pub migrations_to: Vec<SystemId>,
    /// Whether the user is an ACM administrator (receives requests to the ACM server).
    pub administrator: bool,
}

/// A functional alias and who holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasHolders {
    /// The functional alias.
    pub alias: FunctionalAlias,
    /// The users who hold it; may be empty.
    pub holders: Vec<McServiceId>,
}

/// `[tokens]`: the checks on client access tokens, as plain data for the token verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// Required `iss`: the identity management server.
    pub issuer: String,
    /// Required `aud`: this ACM server.
    pub audience: String,
    /// Accepted `alg` values, each one of [`TOKEN_ALGORITHMS`].
    pub algorithms: Vec<String>,
    /// The claim holding the user's MC service ID.
    pub claim: String,
    /// Leeway on `exp` and `nbf`, at most [`MAX_LEEWAY_SECONDS`].
    pub leeway_seconds: u64,
    /// Where the verification keys are.
    pub keys: TokenKeys,
}

/// Where the token verification keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKeys {
    /// A JWK set file (RFC 7517).
    Jwks(PathBuf),
    /// PEM public keys (SPKI).
    PublicKeys(Vec<PathBuf>),
}

/// The HTTP limits of `[limits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiLimits {
    /// Largest request body accepted.
    pub body_bytes: usize,
    /// Requests in flight before the server answers 503.
    pub concurrency: usize,
    /// Longest a request may take, body included.
    pub request_timeout: Duration,
    /// Longest a request body may take to arrive.
    pub body_timeout: Duration,
}

/// The timing of `[timing]` that is not the core's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How often the server's duties (relay, hooks, timers) run.
    pub tick: Duration,
    /// Interval of the keep-alive comments on a notification stream.
    pub sse_keepalive: Duration,
}

impl Config {
    /// Reads, checks and converts the configuration file at `path`, and checks that every
    /// file it names can be read ([`check_files`](Self::check_files)). Relative paths in it
    /// are resolved against its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigFileError> {
        let file = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let text = std::fs::read_to_string(&file).map_err(|e| {
            ConfigFileError::new(
                "",
                Reason::CannotReadConfig {
                    error: e.to_string(),
                },
            )
            .in_file(file.clone())
        })?;
        let base = file.parent().unwrap_or_else(|| Path::new("."));
        let config = Self::parse(&text, base).map_err(|e| e.in_file(file.clone()))?;
        config.check_files().map_err(|e| e.in_file(file.clone()))?;
        Ok(config)
    }

    /// Checks and converts configuration text; relative paths in it are resolved against
    /// `base_dir`. Reads no file: see [`check_files`](Self::check_files).
    pub fn parse(text: &str, base_dir: &Path) -> Result<Self, ConfigFileError> {
        let file: file::File = toml::from_str(text).map_err(|e| error::from_toml(text, &e))?;
        build::build(file, base_dir)
    }

    /// Checks that every file named (`tls.cert`, `tls.key`, each `partners[i].ca`, the
    /// token keys) can be read and holds the kind of content expected (a PEM block with
    /// the right label, a JWK set). The TLS and token loaders parse the contents when the
    /// server starts.
    pub fn check_files(&self) -> Result<(), ConfigFileError> {
        files::check(self)
    }

    /// The directory of this MC system: the partners with their home domains, the users
    /// and whether they may receive, who may provide to which partner, the administrators,
    /// the functional alias holders and the processing of each request kind.
    pub fn directory(&self) -> StaticDirectory {
        let mut directory = StaticDirectory::new(self.server.system.clone());
        for partner in &self.partners {
            directory =
                directory.with_partner(partner.system.clone(), partner.home_domains.clone());
            for group in &partner.interconnection_groups {
                directory.add_interconnection_group(group.clone());
            }
        }
        for user in &self.users {
            directory = if user.administrator {
                directory.with_administrator(user.id.clone())
            } else {
                directory.with_user(user.id.clone(), user.may_receive)
            };
            for (kind, partners) in [
                (
                    AcmRequestKind::InterconnectionGroupIdentityProvision,
                    &user.provides_to,
                ),
                (
                    AcmRequestKind::GroupMembershipUpdate,
                    &user.membership_updates_to,
                ),
                (AcmRequestKind::UserMigrationManagement, &user.migrations_to),
            ] {
                for partner in partners {
                    directory.grant(user.id.clone(), partner.clone(), kind);
                }
            }
        }
        for alias in &self.functional_aliases {
            directory.set_alias_holders(alias.alias.clone(), alias.holders.clone());
        }
        for (kind, processing) in &self.processing {
            directory.set_processing(*kind, *processing);
        }
        directory
    }
}
