//! Why a configuration file was refused: the key it concerns and a typed reason.

use std::fmt;
use std::path::PathBuf;

use acm_core::{ConfigError, IdError, SystemId};

use super::UrlProblem;

/// A configuration file refused: which key, and why.
///
/// `key` is the dotted path of the offending key as it is written in the file
/// (`partners[1].url`, `users[0].id`, `tokens.public_keys[0]`), counted from 0 in the
/// order the entries appear; it is empty when the problem is the whole file (it cannot be
/// read, or is not TOML). `Display` prints `FILE: KEY: REASON`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFileError {
    /// The configuration file, when the text was read from one.
    pub file: Option<PathBuf>,
    /// Dotted path of the key concerned; empty for the whole file.
    pub key: String,
    /// What is wrong with it.
    pub reason: Reason,
}

impl ConfigFileError {
    pub(super) fn new(key: impl Into<String>, reason: Reason) -> Self {
        Self {
            file: None,
            key: key.into(),
            reason,
        }
    }

    /// The stable code of the reason, for scripts and tests.
    pub fn code(&self) -> &'static str {
        self.reason.code()
    }

    pub(super) fn in_file(mut self, file: PathBuf) -> Self {
        self.file = Some(file);
        self
    }
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}", self.reason)
    }
}

impl std::error::Error for ConfigFileError {}

/// Why a key was refused.
///
/// Non-exhaustive: new checks get their own reason rather than reusing one that means
/// something else.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The configuration file could not be read.
    CannotReadConfig {
        /// The I/O error.
        error: String,
    },
    /// The text is not TOML.
    Syntax {
        /// toml's description.
        message: String,
        /// 1-based line of the fault.
        line: usize,
        /// 1-based column of the fault.
        column: usize,
    },
    /// A key the file format does not have (a misspelling, or a key in the wrong table).
    UnknownKey {
        /// toml's description, which lists the keys expected there.
        message: String,
    },
    /// A key that has no default is missing.
    MissingKey,
    /// A value of the wrong type or out of its type's range (a string where a number is
    /// expected, a negative count, an unknown processing mode).
    Type {
        /// toml's description.
        message: String,
        /// 1-based line of the value.
        line: usize,
        /// 1-based column of the value.
        column: usize,
    },
    /// An identifier does not parse.
    InvalidId(IdError),
    /// A user or functional alias whose host is not this MC system.
    NotOfThisSystem {
        /// The identifier's host.
        host: String,
        /// This system.
        system: SystemId,
    },
    /// An interconnection group whose host is not a home domain of the partner it is
    /// listed under.
    NotHomedAtPartner {
        /// The group's host.
        host: String,
        /// The partner.
        partner: SystemId,
    },
    /// A system named that is not a configured partner.
    UnknownPartner {
        /// The system named.
        system: SystemId,
    },
    /// A user named that is not a configured user.
    UnknownUser {
        /// The user named.
        user: String,
    },
    /// The same value appears twice where each must be unique.
    Duplicate {
        /// The value, as written canonically.
        value: String,
        /// The key of its first occurrence.
        first: String,
    },
    /// This MC system is listed as its own partner.
    OwnSystemAsPartner,
    /// A domain claimed as home domain by two MC systems: a group has one home system.
    HomeDomainTaken {
        /// The domain.
        domain: SystemId,
        /// The key that claims it first.
        by: String,
    },
    /// A list or text that must not be empty is.
    Empty,
    /// A partner URL that is not an https base URL.
    BadUrl(UrlProblem),
    /// A socket address that does not parse.
    BadSocketAddress {
        /// The value given.
        value: String,
    },
    /// Both listeners on one address.
    SameListenAddress,
    /// An access-token signature algorithm acm does not accept.
    UnknownAlgorithm {
        /// The name given.
        name: String,
    },
    /// More leeway on token times than TS 33.180's tokens allow acm to grant.
    LeewayTooLong {
        /// The leeway given.
        seconds: u64,
    },
    /// Both `tokens.jwks` and `tokens.public_keys`.
    BothTokenKeySources,
    /// Neither `tokens.jwks` nor `tokens.public_keys`.
    NoTokenKeySource,
    /// A count or a time that must be positive is zero.
    Zero,
    /// 0 for a timer that may be off: `"never"` says off.
    ZeroIsNotNever,
    /// A time longer than acm accepts there (100 years for the pending time and the send
    /// deadline), or than can be represented.
    TooLong {
        /// The value given.
        value: u64,
        /// The most accepted.
        max: u64,
    },
    /// A `[[users]]` entry that is an ACM administrator but may not receive ACM requests:
    /// requests to the ACM server itself would never reach it.
    AdministratorMayNotReceive,
    /// The body limit is too small for a request of `limits.max_groups` group IDs.
    BodyTooSmall {
        /// The smallest limit that holds such a request.
        needed: usize,
    },
    /// The resulting server configuration is out of range.
    Server(ConfigError),
    /// A file named cannot be read.
    CannotReadFile {
        /// The path, resolved against the configuration file's directory.
        path: PathBuf,
        /// The I/O error.
        error: String,
    },
    /// A file named holds something else than expected.
    WrongContent {
        /// The path, resolved against the configuration file's directory.
        path: PathBuf,
        /// What it should hold.
        expected: &'static str,
    },
}

impl Reason {
    /// The stable code of the reason.
    pub fn code(&self) -> &'static str {
        match self {
            Self::CannotReadConfig { .. } => "cannot_read_config",
            Self::Syntax { .. } => "syntax",
            Self::UnknownKey { .. } => "unknown_key",
            Self::MissingKey => "missing_key",
            Self::Type { .. } => "wrong_type",
            Self::InvalidId(_) => "invalid_id",
            Self::NotOfThisSystem { .. } => "not_of_this_system",
            Self::NotHomedAtPartner { .. } => "not_homed_at_partner",
            Self::UnknownPartner { .. } => "unknown_partner",
            Self::UnknownUser { .. } => "unknown_user",
            Self::Duplicate { .. } => "duplicate",
            Self::OwnSystemAsPartner => "own_system_as_partner",
            Self::HomeDomainTaken { .. } => "home_domain_taken",
            Self::Empty => "empty",
            Self::BadUrl(_) => "bad_url",
            Self::BadSocketAddress { .. } => "bad_socket_address",
            Self::SameListenAddress => "same_listen_address",
            Self::UnknownAlgorithm { .. } => "unknown_algorithm",
            Self::LeewayTooLong { .. } => "leeway_too_long",
            Self::BothTokenKeySources => "both_token_key_sources",
            Self::NoTokenKeySource => "no_token_key_source",
            Self::Zero => "zero",
            Self::ZeroIsNotNever => "zero_is_not_never",
            Self::TooLong { .. } => "too_long",
            Self::AdministratorMayNotReceive => "administrator_may_not_receive",
            Self::BodyTooSmall { .. } => "body_too_small",
            Self::Server(_) => "server_config",
            Self::CannotReadFile { .. } => "cannot_read_file",
            Self::WrongContent { .. } => "wrong_content",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CannotReadConfig { error } => write!(f, "cannot read: {error}"),
            Self::Syntax {
                message,
                line,
                column,
            } => write!(f, "not TOML at line {line}, column {column}: {message}"),
            Self::UnknownKey { message } => f.write_str(message),
            Self::MissingKey => f.write_str("missing, and it has no default"),
            Self::Type {
                message,
                line,
                column,
            } => write!(f, "{message} (line {line}, column {column})"),
            Self::InvalidId(e) => write!(f, "{}: {}", e.field, e.problem),
            Self::NotOfThisSystem { host, system } => {
                write!(f, "belongs to {host}, not to this MC system {system}")
            }
            Self::NotHomedAtPartner { host, partner } => write!(
                f,
                "{host} is not one of the home domains of {partner} (partners.home_domains)"
            ),
            Self::UnknownPartner { system } => write!(
                f,
                "{system} is not a configured partner (add it to [[partners]])"
            ),
            Self::UnknownUser { user } => {
                write!(f, "{user} is not a configured user (add it to [[users]])")
            }
            Self::Duplicate { value, first } => write!(f, "{value} is already given at {first}"),
            Self::OwnSystemAsPartner => {
                f.write_str("this MC system cannot be its own interconnected partner")
            }
            Self::HomeDomainTaken { domain, by } => write!(
                f,
                "{domain} is already a home domain at {by}: a group has one group home MC system"
            ),
            Self::Empty => f.write_str("must not be empty"),
            Self::BadUrl(problem) => write!(f, "{problem}"),
            Self::BadSocketAddress { value } => write!(
                f,
                "{value:?} is not a socket address (such as \"127.0.0.1:8443\" or \"[::]:8443\")"
            ),
            Self::SameListenAddress => {
                f.write_str("the client and partner listeners need different addresses")
            }
            Self::UnknownAlgorithm { name } => write!(
                f,
                "{name:?} is not an accepted token signature algorithm (one of {})",
                super::TOKEN_ALGORITHMS.join(", ")
            ),
            Self::LeewayTooLong { seconds } => write!(
                f,
                "{seconds} s of leeway on token times is more than the {} s allowed",
                super::MAX_LEEWAY_SECONDS
            ),
            Self::BothTokenKeySources => f.write_str(
                "give the token verification keys either as `jwks` or as `public_keys`, not both",
            ),
            Self::NoTokenKeySource => f.write_str(
                "no token verification key: give `jwks` (a JWK set file) or `public_keys` (PEM files)",
            ),
            Self::Zero => f.write_str("must be at least 1"),
            Self::ZeroIsNotNever => f.write_str(
                "must be at least 1; for a timer that never runs out, write \"never\"",
            ),
            Self::TooLong { value, max } => {
                write!(f, "{value} is more than the {max} accepted here")
            }
            Self::AdministratorMayNotReceive => f.write_str(
                "an ACM administrator receives the requests addressed to the ACM server, so \
                 may_receive cannot be false",
            ),
            Self::BodyTooSmall { needed } => write!(
                f,
                "too small for a request of limits.max_groups group IDs: at least {needed} bytes"
            ),
            Self::Server(e) => write!(f, "{e}"),
            Self::CannotReadFile { path, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            Self::WrongContent { path, expected } => {
                write!(f, "{} is not {expected}", path.display())
            }
        }
    }
}

/// Turns toml's error into one naming the key, found from the error's position in the text.
pub(super) fn from_toml(text: &str, error: &toml::de::Error) -> ConfigFileError {
    let message = error.message().to_owned();
    let Some(span) = error.span() else {
        return missing_or_type(String::new(), message, 1, 1);
    };
    let (line, column) = line_column(text, span.start);
    // A text that does not parse as TOML has no keys to name.
    let Ok(doc) = toml::de::DeTable::parse(text) else {
        return ConfigFileError::new(
            "",
            Reason::Syntax {
                message,
                line,
                column,
            },
        );
    };
    let key = key_at(doc.get_ref(), "", span.start).unwrap_or_default();
    missing_or_type(key, message, line, column)
}

fn missing_or_type(key: String, message: String, line: usize, column: usize) -> ConfigFileError {
    // serde's own wording for these two (serde::de::Error::{unknown_field, missing_field}),
    // the only way toml reports them.
    if message.starts_with("unknown field") {
        return ConfigFileError::new(key, Reason::UnknownKey { message });
    }
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return ConfigFileError::new(join(&key, field), Reason::MissingKey);
    }
    ConfigFileError::new(
        key,
        Reason::Type {
            message,
            line,
            column,
        },
    )
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The dotted path of the key or value at byte `at`. A table's own span is its header
/// only (`[[partners]]`), so every table is searched, not just those whose span holds `at`.
fn key_at(table: &toml::de::DeTable<'_>, prefix: &str, at: usize) -> Option<String> {
    for (key, value) in table {
        let path = join(prefix, key.get_ref());
        if key.span().contains(&at) {
            return Some(path);
        }
        if let Some(found) = value_at(value, &path, at) {
            return Some(found);
        }
    }
    None
}

fn value_at(value: &toml::Spanned<toml::de::DeValue<'_>>, path: &str, at: usize) -> Option<String> {
    match value.get_ref() {
        toml::de::DeValue::Table(inner) => {
            if let Some(found) = key_at(inner, path, at) {
                return Some(found);
            }
        }
        toml::de::DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(found) = value_at(item, &format!("{path}[{i}]"), at) {
                    return Some(found);
                }
            }
        }
        _ => {}
    }
    value.span().contains(&at).then(|| path.to_owned())
}

fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before, |nl| &before[nl + 1..])
        .chars()
        .count()
        + 1;
    (line, column)
}
