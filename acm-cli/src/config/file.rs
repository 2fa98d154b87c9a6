//! The configuration file as written: every table and key, with `Option` where a default
//! applies, so that `build` knows what was given. Identifiers, addresses and URLs are
//! text here and parsed in `build`, so that a refusal names the key with acm's reason.
//! Every table refuses unknown keys: a misspelt key is an error, not a silent default.

use std::path::PathBuf;

use acm_core::Processing;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    pub system: SystemTable,
    pub listen: ListenTable,
    pub tls: TlsTable,
    #[serde(default)]
    pub partners: Vec<PartnerEntry>,
    #[serde(default)]
    pub users: Vec<UserEntry>,
    #[serde(default)]
    pub functional_aliases: Vec<AliasEntry>,
    #[serde(default)]
    pub processing: ProcessingTable,
    #[serde(default)]
    pub store: StoreTable,
    pub tokens: TokensTable,
    #[serde(default)]
    pub limits: LimitsTable,
    #[serde(default)]
    pub timing: TimingTable,
}

/// `[system]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SystemTable {
    pub id: String,
    pub home_domains: Option<Vec<String>>,
}

/// `[listen]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListenTable {
    pub client: String,
    pub partner: String,
}

/// `[tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsTable {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One `[[partners]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PartnerEntry {
    pub system: String,
    pub url: String,
    pub ca: PathBuf,
    pub home_domains: Option<Vec<String>>,
    #[serde(default)]
    pub interconnection_groups: Vec<String>,
}

/// One `[[users]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UserEntry {
    pub id: String,
    pub may_receive: Option<bool>,
    #[serde(default)]
    pub provides_to: Vec<String>,
    #[serde(default)]
    pub group_membership_update_to: Vec<String>,
    #[serde(default)]
    pub user_migration_management_to: Vec<String>,
    pub administrator: Option<bool>,
}

/// One `[[functional_aliases]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AliasEntry {
    pub alias: String,
    pub holders: Vec<String>,
}

/// `[processing]`: one key per ACM request kind.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProcessingTable {
    pub interconnection_group_identity_provision: Option<Processing>,
    pub group_membership_update: Option<Processing>,
    pub user_migration_management: Option<Processing>,
}

/// `[store]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoreTable {
    pub path: Option<PathBuf>,
}

/// `[tokens]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TokensTable {
    pub issuer: String,
    pub audience: String,
    pub algorithms: Option<Vec<String>>,
    pub claim: Option<String>,
    pub leeway_seconds: Option<u64>,
    pub jwks: Option<PathBuf>,
    pub public_keys: Option<Vec<PathBuf>>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LimitsTable {
    pub max_groups: Option<usize>,
    pub body_bytes: Option<usize>,
    pub concurrency: Option<usize>,
    pub request_timeout_ms: Option<u64>,
    pub body_timeout_ms: Option<u64>,
    pub sends_per_partner: Option<usize>,
    pub partners_at_once: Option<usize>,
    pub cache_capacity: Option<usize>,
}

/// `[timing]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TimingTable {
    pub pending_ttl_seconds: Option<Seconds>,
    pub send_deadline_seconds: Option<Seconds>,
    pub max_backoff_seconds: Option<u64>,
    pub refused_retry_seconds: Option<u64>,
    pub send_timeout_ms: Option<u64>,
    pub claim_lease_seconds: Option<u64>,
    pub tick_ms: Option<u64>,
    pub sse_keepalive_seconds: Option<u64>,
}

/// A time in seconds, or `"never"` for a timer that never runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seconds {
    After(u64),
    Never,
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecondsVisitor;

        impl Visitor<'_> for SecondsVisitor {
            type Value = Seconds;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number of seconds or \"never\"")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds::After(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                u64::try_from(v)
                    .map(Seconds::After)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Seconds, E> {
                if v == "never" {
                    Ok(Seconds::Never)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
        }

        deserializer.deserialize_any(SecondsVisitor)
    }
}
