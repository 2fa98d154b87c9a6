//! From the file as written to a checked [`Config`]: defaults, identifiers, cross
//! references, ranges. The first fault found is reported, in file order within a table.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::hash::Hash;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration as StdDuration;

use acm_core::{
    AcmRequestKind, ConfigError, FunctionalAlias, GroupId, IdError, MAX_ID_LEN, MAX_PENDING_TTL,
    McServiceId, ServerConfig, SystemId,
};
use chrono::Duration;

use super::error::{ConfigFileError, Reason};
use super::file::{
    AliasEntry, File, LimitsTable, ListenTable, PartnerEntry, Seconds, TimingTable, TokensTable,
    UserEntry,
};
use super::{
    AliasHolders, ApiLimits, Config, Listen, MAX_LEEWAY_SECONDS, Partner, TOKEN_ALGORITHMS, Timing,
    TlsFiles, TokenKeys, Tokens, User, url,
};

type Built<T> = Result<T, ConfigFileError>;

fn fail<T>(key: impl Into<String>, reason: Reason) -> Built<T> {
    Err(ConfigFileError::new(key, reason))
}

pub(super) fn build(file: File, base: &Path) -> Built<Config> {
    let system: SystemId = id("system.id", &file.system.id)?;
    // Every home domain, ours and the partners', with the key that claims it first.
    let mut homes = Seen::default();
    let home_domains = domains(
        "system.home_domains",
        file.system.home_domains.as_deref(),
        &system,
        &mut homes,
    )?;
    let partners = partners(&file.partners, &system, &mut homes, base)?;
    let users = users(&file.users, &system, &partners)?;
    let functional_aliases = aliases(&file.functional_aliases, &system, &users)?;
    let mut server = ServerConfig::new(system.clone());
    server.home_domains = home_domains;
    limits_into(&file.limits, &mut server);
    timing_into(&file.timing, &mut server)?;
    validate(&server, &file.limits, &file.timing)?;
    let limits = api_limits(&file.limits, server.limits.max_groups)?;
    let timing = timing(&file.timing)?;
    let table = &file.processing;
    let processing = BTreeMap::from([
        (
            AcmRequestKind::InterconnectionGroupIdentityProvision,
            table
                .interconnection_group_identity_provision
                .unwrap_or_default(),
        ),
        (
            AcmRequestKind::GroupMembershipUpdate,
            table.group_membership_update.unwrap_or_default(),
        ),
        (
            AcmRequestKind::UserMigrationManagement,
            table.user_migration_management.unwrap_or_default(),
        ),
    ]);
    Ok(Config {
        listen: listen(&file.listen)?,
        tls: TlsFiles {
            cert: base.join(&file.tls.cert),
            key: base.join(&file.tls.key),
        },
        partners,
        users,
        functional_aliases,
        processing,
        store: file.store.path.map_or_else(
            || base.join("acm-data").join(format!("{system}.db")),
            |path| base.join(path),
        ),
        tokens: tokens(file.tokens, base)?,
        limits,
        timing,
        server,
    })
}

fn id<T: FromStr<Err = IdError>>(key: &str, text: &str) -> Built<T> {
    text.parse()
        .map_err(|e| ConfigFileError::new(key, Reason::InvalidId(e)))
}

/// Values already given, each with the key that gave it first.
struct Seen<T>(HashMap<T, String>);

impl<T> Default for Seen<T> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

impl<T: Hash + Eq + Display> Seen<T> {
    fn first(&mut self, value: T, key: &str) -> Built<()> {
        if let Some(first) = self.0.get(&value) {
            return fail(
                key,
                Reason::Duplicate {
                    value: value.to_string(),
                    first: first.clone(),
                },
            );
        }
        self.0.insert(value, key.to_owned());
        Ok(())
    }
}

/// A home domain list (`None`: the system's own domain alone). A domain claimed in another
/// list is refused as `HomeDomainTaken`, one repeated in the same list as a duplicate.
fn domains(
    key: &str,
    given: Option<&[String]>,
    owner: &SystemId,
    homes: &mut Seen<SystemId>,
) -> Built<Vec<SystemId>> {
    let Some(given) = given else {
        // The default is named by the list's key, which the file does not hold.
        claim(key, key, owner.clone(), homes)?;
        return Ok(vec![owner.clone()]);
    };
    if given.is_empty() {
        return fail(key, Reason::Empty);
    }
    let mut out = Vec::with_capacity(given.len());
    for (i, text) in given.iter().enumerate() {
        let here = format!("{key}[{i}]");
        let domain: SystemId = id(&here, text)?;
        claim(key, &here, domain.clone(), homes)?;
        out.push(domain);
    }
    Ok(out)
}

fn claim(list: &str, here: &str, domain: SystemId, homes: &mut Seen<SystemId>) -> Built<()> {
    if let Some(by) = homes.0.get(&domain)
        && !by.starts_with(&format!("{list}["))
    {
        return fail(
            here,
            Reason::HomeDomainTaken {
                domain,
                by: by.clone(),
            },
        );
    }
    homes.first(domain, here)
}

fn partners(
    entries: &[PartnerEntry],
    system: &SystemId,
    homes: &mut Seen<SystemId>,
    base: &Path,
) -> Built<Vec<Partner>> {
    let mut seen = Seen::default();
    let mut out = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let key = format!("partners[{i}]");
        let partner: SystemId = id(&format!("{key}.system"), &entry.system)?;
        if &partner == system {
            return fail(format!("{key}.system"), Reason::OwnSystemAsPartner);
        }
        seen.first(partner.clone(), &format!("{key}.system"))?;
        let url = url::https_base(&entry.url)
            .map_err(|p| ConfigFileError::new(format!("{key}.url"), Reason::BadUrl(p)))?;
        let home_domains = domains(
            &format!("{key}.home_domains"),
            entry.home_domains.as_deref(),
            &partner,
            homes,
        )?;
        let mut groups = Seen::default();
        let mut interconnection_groups = Vec::with_capacity(entry.interconnection_groups.len());
        for (j, text) in entry.interconnection_groups.iter().enumerate() {
            let here = format!("{key}.interconnection_groups[{j}]");
            let group: GroupId = id(&here, text)?;
            if !home_domains.iter().any(|d| d.as_str() == group.host()) {
                return fail(
                    here,
                    Reason::NotHomedAtPartner {
                        host: group.host().to_owned(),
                        partner: partner.clone(),
                    },
                );
            }
            groups.first(group.clone(), &here)?;
            interconnection_groups.push(group);
        }
        out.push(Partner {
            system: partner,
            url,
            ca: base.join(&entry.ca),
            home_domains,
            interconnection_groups,
        });
    }
    Ok(out)
}

fn of_this_system(key: &str, host: &str, system: &SystemId) -> Built<()> {
    if host == system.as_str() {
        Ok(())
    } else {
        fail(
            key,
            Reason::NotOfThisSystem {
                host: host.to_owned(),
                system: system.clone(),
            },
        )
    }
}

fn users(entries: &[UserEntry], system: &SystemId, partners: &[Partner]) -> Built<Vec<User>> {
    let mut seen = Seen::default();
    let mut out = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let key = format!("users[{i}]");
        let user: McServiceId = id(&format!("{key}.id"), &entry.id)?;
        of_this_system(&format!("{key}.id"), user.host(), system)?;
        seen.first(user.clone(), &format!("{key}.id"))?;
        let administrator = entry.administrator.unwrap_or(false);
        let may_receive = entry.may_receive.unwrap_or(true);
        if administrator && !may_receive {
            return fail(
                format!("{key}.may_receive"),
                Reason::AdministratorMayNotReceive,
            );
        }
        out.push(User {
            id: user,
            may_receive,
            provides_to: partner_list(&format!("{key}.provides_to"), &entry.provides_to, partners)?,
            membership_updates_to: partner_list(
                &format!("{key}.group_membership_update_to"),
                &entry.group_membership_update_to,
                partners,
            )?,
            migrations_to: partner_list(
                &format!("{key}.user_migration_management_to"),
                &entry.user_migration_management_to,
                partners,
            )?,
            administrator,
        });
    }
    Ok(out)
}

/// A list of configured partners, each once.
fn partner_list(key: &str, texts: &[String], partners: &[Partner]) -> Built<Vec<SystemId>> {
    let mut seen = Seen::default();
    let mut out = Vec::with_capacity(texts.len());
    for (j, text) in texts.iter().enumerate() {
        let here = format!("{key}[{j}]");
        let partner: SystemId = id(&here, text)?;
        if !partners.iter().any(|p| p.system == partner) {
            return fail(here, Reason::UnknownPartner { system: partner });
        }
        seen.first(partner.clone(), &here)?;
        out.push(partner);
    }
    Ok(out)
}

fn aliases(entries: &[AliasEntry], system: &SystemId, users: &[User]) -> Built<Vec<AliasHolders>> {
    let mut seen = Seen::default();
    let mut out = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let key = format!("functional_aliases[{i}]");
        let alias: FunctionalAlias = id(&format!("{key}.alias"), &entry.alias)?;
        of_this_system(&format!("{key}.alias"), alias.host(), system)?;
        seen.first(alias.clone(), &format!("{key}.alias"))?;
        let mut held = Seen::default();
        let mut holders = Vec::with_capacity(entry.holders.len());
        for (j, text) in entry.holders.iter().enumerate() {
            let here = format!("{key}.holders[{j}]");
            let holder: McServiceId = id(&here, text)?;
            of_this_system(&here, holder.host(), system)?;
            if !users.iter().any(|u| u.id == holder) {
                return fail(
                    here,
                    Reason::UnknownUser {
                        user: holder.to_string(),
                    },
                );
            }
            held.first(holder.clone(), &here)?;
            holders.push(holder);
        }
        out.push(AliasHolders { alias, holders });
    }
    Ok(out)
}

fn tokens(table: TokensTable, base: &Path) -> Built<Tokens> {
    if table.issuer.trim().is_empty() {
        return fail("tokens.issuer", Reason::Empty);
    }
    if table.audience.trim().is_empty() {
        return fail("tokens.audience", Reason::Empty);
    }
    let algorithms = table.algorithms.unwrap_or_else(|| vec!["ES256".to_owned()]);
    if algorithms.is_empty() {
        return fail("tokens.algorithms", Reason::Empty);
    }
    let mut seen = Seen::default();
    for (i, name) in algorithms.iter().enumerate() {
        let here = format!("tokens.algorithms[{i}]");
        // Exact case, as the JWS header spells them: `es256` is not a JWS algorithm name.
        if !TOKEN_ALGORITHMS.contains(&name.as_str()) {
            return fail(here, Reason::UnknownAlgorithm { name: name.clone() });
        }
        seen.first(name.clone(), &here)?;
    }
    let claim = table.claim.unwrap_or_else(|| "mcptt_id".to_owned());
    if claim.trim().is_empty() {
        return fail("tokens.claim", Reason::Empty);
    }
    let leeway_seconds = table.leeway_seconds.unwrap_or(MAX_LEEWAY_SECONDS);
    if leeway_seconds > MAX_LEEWAY_SECONDS {
        return fail(
            "tokens.leeway_seconds",
            Reason::LeewayTooLong {
                seconds: leeway_seconds,
            },
        );
    }
    let keys = match (table.jwks, table.public_keys) {
        (Some(_), Some(_)) => return fail("tokens", Reason::BothTokenKeySources),
        (None, None) => return fail("tokens", Reason::NoTokenKeySource),
        (Some(jwks), None) => TokenKeys::Jwks(base.join(jwks)),
        (None, Some(paths)) => {
            if paths.is_empty() {
                return fail("tokens.public_keys", Reason::Empty);
            }
            let mut seen = Seen::default();
            let mut keys = Vec::with_capacity(paths.len());
            for (i, path) in paths.iter().enumerate() {
                let path = base.join(path);
                seen.first(
                    path.display().to_string(),
                    &format!("tokens.public_keys[{i}]"),
                )?;
                keys.push(path);
            }
            TokenKeys::PublicKeys(keys)
        }
    };
    Ok(Tokens {
        issuer: table.issuer,
        audience: table.audience,
        algorithms,
        claim,
        leeway_seconds,
        keys,
    })
}

fn listen(table: &ListenTable) -> Built<Listen> {
    let addr = |key: &str, text: &str| -> Built<SocketAddr> {
        text.parse().map_err(|_| {
            ConfigFileError::new(
                key,
                Reason::BadSocketAddress {
                    value: text.to_owned(),
                },
            )
        })
    };
    let client = addr("listen.client", &table.client)?;
    let partner = addr("listen.partner", &table.partner)?;
    // Port 0 asks the system for a free port, a different one for each listener.
    if client == partner && client.port() != 0 {
        return fail("listen.partner", Reason::SameListenAddress);
    }
    Ok(Listen { client, partner })
}

fn limits_into(table: &LimitsTable, server: &mut ServerConfig) {
    if let Some(n) = table.max_groups {
        server.limits.max_groups = n;
    }
    if let Some(n) = table.sends_per_partner {
        server.sends_per_partner = n;
    }
    if let Some(n) = table.partners_at_once {
        server.partners_at_once = n;
    }
    if let Some(n) = table.cache_capacity {
        server.cache_capacity = n;
    }
}

/// Most seconds or milliseconds a chrono duration holds.
const MAX_SECONDS: u64 = i64::MAX.unsigned_abs() / 1000;
const MAX_MILLIS: u64 = i64::MAX.unsigned_abs();

fn seconds(key: &str, value: u64) -> Built<Duration> {
    i64::try_from(value)
        .ok()
        .and_then(Duration::try_seconds)
        .ok_or_else(|| {
            ConfigFileError::new(
                key,
                Reason::TooLong {
                    value,
                    max: MAX_SECONDS,
                },
            )
        })
}

fn millis(key: &str, value: u64) -> Built<Duration> {
    i64::try_from(value)
        .ok()
        .and_then(Duration::try_milliseconds)
        .ok_or_else(|| {
            ConfigFileError::new(
                key,
                Reason::TooLong {
                    value,
                    max: MAX_MILLIS,
                },
            )
        })
}

/// A timer that may be off: `"never"` is `None`; 0 is refused here, since the core's
/// message for it would say to leave the key out, which in this file means the default.
fn timer(key: &str, given: Option<Seconds>, default: Option<Duration>) -> Built<Option<Duration>> {
    match given {
        None => Ok(default),
        Some(Seconds::Never) => Ok(None),
        Some(Seconds::After(0)) => fail(key, Reason::ZeroIsNotNever),
        Some(Seconds::After(n)) => {
            let d = seconds(key, n)?;
            if d > MAX_PENDING_TTL {
                return fail(
                    key,
                    Reason::TooLong {
                        value: n,
                        max: MAX_PENDING_TTL.num_seconds().unsigned_abs(),
                    },
                );
            }
            Ok(Some(d))
        }
    }
}

fn timing_into(table: &TimingTable, server: &mut ServerConfig) -> Built<()> {
    server.pending_ttl = timer(
        "timing.pending_ttl_seconds",
        table.pending_ttl_seconds,
        server.pending_ttl,
    )?;
    server.send_deadline = timer(
        "timing.send_deadline_seconds",
        table.send_deadline_seconds,
        server.send_deadline,
    )?;
    if let Some(n) = table.max_backoff_seconds {
        server.max_backoff = seconds("timing.max_backoff_seconds", n)?;
    }
    if let Some(n) = table.refused_retry_seconds {
        server.refused_retry = seconds("timing.refused_retry_seconds", n)?;
    }
    if let Some(n) = table.send_timeout_ms {
        server.send_timeout = millis("timing.send_timeout_ms", n)?;
    }
    if let Some(n) = table.claim_lease_seconds {
        server.claim_lease = seconds("timing.claim_lease_seconds", n)?;
    }
    Ok(())
}

/// The core's own check, its refusal put on the key it came from.
fn validate(server: &ServerConfig, limits: &LimitsTable, timing: &TimingTable) -> Built<()> {
    let Err(error) = server.validate() else {
        return Ok(());
    };
    let key = match &error {
        ConfigError::PendingTtlOutOfRange { .. } => "timing.pending_ttl_seconds",
        ConfigError::SendDeadlineOutOfRange { .. } => "timing.send_deadline_seconds",
        ConfigError::MaxBackoffOutOfRange { .. } => "timing.max_backoff_seconds",
        ConfigError::RefusedRetryOutOfRange { .. } => "timing.refused_retry_seconds",
        // Blame the key the operator wrote: a longer send timeout under the default lease
        // is the send timeout's fault.
        ConfigError::ClaimLeaseTooShort { .. } if timing.claim_lease_seconds.is_some() => {
            "timing.claim_lease_seconds"
        }
        ConfigError::SendTimeoutOutOfRange { .. } | ConfigError::ClaimLeaseTooShort { .. } => {
            "timing.send_timeout_ms"
        }
        ConfigError::NoSendsAllowed if limits.sends_per_partner == Some(0) => {
            "limits.sends_per_partner"
        }
        ConfigError::NoSendsAllowed => "limits.partners_at_once",
        ConfigError::NoCache => "limits.cache_capacity",
        ConfigError::NoGroupsAllowed => "limits.max_groups",
        ConfigError::NoHomeDomain => "system.home_domains",
        // A check the core added after this file format: no key to name.
        _ => "",
    };
    fail(key, Reason::Server(error))
}

/// Room for a request's fixed part in JSON (request and message ids, requester, partner,
/// target, alias and the keys), each identifier at its longest.
const REQUEST_OVERHEAD: usize = 2048;

fn positive(key: &str, value: Option<u64>, default: u64) -> Built<u64> {
    match value.unwrap_or(default) {
        0 => fail(key, Reason::Zero),
        n => Ok(n),
    }
}

fn api_limits(table: &LimitsTable, max_groups: usize) -> Built<ApiLimits> {
    let body_bytes = table.body_bytes.unwrap_or(65_536);
    // Each group ID is a JSON string: quotes and a comma around at most MAX_ID_LEN bytes
    // (no identifier character needs escaping in JSON).
    let needed = max_groups
        .saturating_mul(MAX_ID_LEN + 3)
        .saturating_add(REQUEST_OVERHEAD);
    if body_bytes < needed {
        return fail("limits.body_bytes", Reason::BodyTooSmall { needed });
    }
    let concurrency = table.concurrency.unwrap_or(256);
    if concurrency == 0 {
        return fail("limits.concurrency", Reason::Zero);
    }
    Ok(ApiLimits {
        body_bytes,
        concurrency,
        request_timeout: StdDuration::from_millis(positive(
            "limits.request_timeout_ms",
            table.request_timeout_ms,
            10_000,
        )?),
        body_timeout: StdDuration::from_millis(positive(
            "limits.body_timeout_ms",
            table.body_timeout_ms,
            5_000,
        )?),
    })
}

fn timing(table: &TimingTable) -> Built<Timing> {
    Ok(Timing {
        tick: StdDuration::from_millis(positive("timing.tick_ms", table.tick_ms, 200)?),
        sse_keepalive: StdDuration::from_secs(positive(
            "timing.sse_keepalive_seconds",
            table.sse_keepalive_seconds,
            15,
        )?),
    })
}
