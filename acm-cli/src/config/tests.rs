//! The configuration file: the documented examples, the defaults, and one refusal per check,
//! each matched on its key and typed reason, and shown with its key.
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use acm_core::{
    AcmRequest, AcmRequestBody, AcmRequestKind, AuthorizationRefusal, Authorizer, ConfigError,
    IdField, IdProblem, Interconnections, McServiceId, Processing, ProcessingPolicy, Recipients,
    ServerConfig, SystemId, Target, VerificationFailure,
};
use chrono::Duration;
use futures_executor::block_on;

use super::{Config, ConfigFileError, Reason, TokenKeys, UrlProblem};

/// A valid configuration that the refusal tests break one key at a time.
const BASE: &str = r#"
[system]
id = "mc-a.example"

[listen]
client = "127.0.0.1:8443"
partner = "127.0.0.1:8444"

[tls]
cert = "certs/cert.pem"
key = "certs/key.pem"

[[partners]]
system = "mc-b.example"
url = "https://mc-b.example:9444"
ca = "certs/b-ca.pem"

[[partners]]
system = "mc-c.example"
url = "https://mc-c.example"
ca = "certs/c-ca.pem"

[[users]]
id = "sip:alice@mc-a.example"
provides_to = ["mc-b.example"]

[[users]]
id = "sip:admin@mc-a.example"
administrator = true

[[functional_aliases]]
alias = "sip:dispatcher@mc-a.example"
holders = ["sip:alice@mc-a.example"]

[tokens]
issuer = "https://idms.mc-a.example"
audience = "acm.mc-a.example"
algorithms = ["ES256", "RS256"]
public_keys = ["certs/token-pub.pem"]
"#;

fn base_dir() -> &'static Path {
    Path::new("/etc/acm")
}

fn sys(s: &str) -> SystemId {
    s.parse().unwrap()
}

fn user(s: &str) -> McServiceId {
    s.parse().unwrap()
}

/// `BASE` with `from` replaced by `to`; `from` must be there, or the test would test `BASE`.
fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} is not in BASE");
    BASE.replacen(from, to, 1)
}

fn with(extra: &str) -> String {
    format!("{BASE}\n{extra}\n")
}

fn refusal(text: &str) -> ConfigFileError {
    match Config::parse(text, base_dir()) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

/// The refusal names `key` with the reason `code`, and says so in its message.
fn assert_refused(error: &ConfigFileError, key: &str, code: &str) {
    assert_eq!(error.key, key, "{error}");
    assert_eq!(error.code(), code, "{error}");
    assert!(
        error.to_string().starts_with(&format!("{key}: ")),
        "the message does not start with the key: {error}"
    );
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples")
}

fn example(name: &str) -> String {
    std::fs::read_to_string(examples().join(name)).unwrap()
}

fn request_to(partner: &str, requester: &str) -> AcmRequest {
    AcmRequest {
        request_id: "0190b2a4-7d1c-7b3e-8f00-000000000001".parse().unwrap(),
        requester: user(requester),
        requester_alias: None,
        partner: sys(partner),
        target: Target::PartnerServer,
        body: AcmRequestBody::provision(["sip:tac-1@mc-a.example".parse().unwrap()]),
    }
}

// --- the examples of docs/configuration.md ---

#[test]
fn example_a_gives_its_server_config_and_paths() {
    let dir = Path::new("/srv/acm");
    let c = Config::parse(&example("mc-a.example.toml"), dir).unwrap();
    assert_eq!(c.server.system, sys("mc-a.example"));
    assert_eq!(c.server.home_domains, vec![sys("mc-a.example")]);
    assert_eq!(c.server.limits.max_groups, 64);
    assert_eq!(c.server.pending_ttl, Some(Duration::days(30)));
    assert_eq!(c.server.send_deadline, None);
    assert_eq!(c.server.send_timeout, Duration::seconds(10));
    assert_eq!(c.server.claim_lease, Duration::seconds(30));
    c.server.validate().unwrap();
    assert_eq!(c.listen.client, "127.0.0.1:8443".parse().unwrap());
    assert_eq!(c.listen.partner, "127.0.0.1:8444".parse().unwrap());
    assert_eq!(c.tls.cert, dir.join("certs/mc-a.example/cert.pem"));
    assert_eq!(c.tls.key, dir.join("certs/mc-a.example/key.pem"));
    assert_eq!(c.partners.len(), 1);
    assert_eq!(c.partners[0].system, sys("mc-b.example"));
    assert_eq!(c.partners[0].url, "https://localhost:9444");
    assert_eq!(c.partners[0].ca, dir.join("certs/mc-b.example/ca.pem"));
    assert_eq!(c.partners[0].home_domains, vec![sys("mc-b.example")]);
    assert_eq!(c.store, dir.join("acm-data/mc-a.example.db"));
    assert_eq!(c.tokens.issuer, "https://idms.mc-a.example");
    assert_eq!(c.tokens.audience, "acm.mc-a.example");
    assert_eq!(c.tokens.algorithms, vec!["ES256".to_owned()]);
    assert_eq!(c.tokens.claim, "mcptt_id");
    assert_eq!(c.tokens.leeway_seconds, 30);
    assert_eq!(
        c.tokens.keys,
        TokenKeys::PublicKeys(vec![dir.join("certs/tokens/token-pub.pem")])
    );
    assert_eq!(c.limits.body_bytes, 65_536);
    assert_eq!(c.limits.concurrency, 256);
    assert_eq!(c.limits.request_timeout, StdDuration::from_secs(10));
    assert_eq!(c.limits.body_timeout, StdDuration::from_secs(5));
    assert_eq!(c.timing.tick, StdDuration::from_millis(200));
    assert_eq!(c.timing.sse_keepalive, StdDuration::from_secs(15));
}

#[test]
fn example_a_directory_authorizes_alice_only_and_knows_b() {
    let c = Config::parse(&example("mc-a.example.toml"), base_dir()).unwrap();
    let d = c.directory();
    assert_eq!(
        block_on(d.partner_home_domains(&sys("mc-b.example"))).unwrap(),
        Some(vec![sys("mc-b.example")])
    );
    assert_eq!(
        block_on(d.partner_home_domains(&sys("mc-c.example"))).unwrap(),
        None
    );
    let alice = request_to("mc-b.example", "sip:alice@mc-a.example");
    assert_eq!(block_on(d.authorize(&alice)).unwrap(), Ok(()));
    let mallory = request_to("mc-b.example", "sip:mallory@mc-a.example");
    assert!(matches!(
        block_on(d.authorize(&mallory)).unwrap(),
        Err(AuthorizationRefusal::NotAuthorized { .. })
    ));
    let kind = AcmRequestKind::InterconnectionGroupIdentityProvision;
    // may_receive = false reaches the directory.
    assert_eq!(
        block_on(d.resolve(&Target::User(user("sip:alice@mc-a.example")), kind)).unwrap(),
        Err(VerificationFailure::TargetMayNotReceive {
            user: user("sip:alice@mc-a.example")
        })
    );
    assert_eq!(
        block_on(d.resolve(
            &Target::FunctionalAlias("sip:dispatcher@mc-a.example".parse().unwrap()),
            kind
        ))
        .unwrap(),
        Ok(vec![user("sip:alice@mc-a.example")])
    );
}

#[test]
fn example_b_takes_the_defaults_and_gives_its_directory() {
    let dir = Path::new("/srv/acm");
    let c = Config::parse(&example("mc-b.example.toml"), dir).unwrap();
    assert_eq!(c.server.home_domains, vec![sys("mc-b.example")]);
    assert_eq!(c.partners[0].home_domains, vec![sys("mc-a.example")]);
    assert_eq!(c.store, dir.join("acm-data/mc-b.example.db"));
    assert_eq!(c.tokens.algorithms, vec!["ES256".to_owned()]);
    assert_eq!(c.tokens.claim, "mcptt_id");
    assert_eq!(c.tokens.leeway_seconds, 30);
    let kind = AcmRequestKind::InterconnectionGroupIdentityProvision;
    assert_eq!(c.processing.get(&kind), Some(&Processing::Manual));

    let d = c.directory();
    assert_eq!(
        block_on(d.partner_home_domains(&sys("mc-a.example"))).unwrap(),
        Some(vec![sys("mc-a.example")])
    );
    assert_eq!(
        block_on(d.resolve(
            &Target::FunctionalAlias("sip:duty-officer@mc-b.example".parse().unwrap()),
            kind
        ))
        .unwrap(),
        Ok(vec![
            user("sip:bob@mc-b.example"),
            user("sip:carol@mc-b.example")
        ])
    );
    assert_eq!(
        block_on(d.resolve(&Target::PartnerServer, kind)).unwrap(),
        Ok(vec![user("sip:admin@mc-b.example")])
    );
    assert_eq!(
        block_on(d.resolve(&Target::User(user("sip:dave@mc-b.example")), kind)).unwrap(),
        Err(VerificationFailure::TargetMayNotReceive {
            user: user("sip:dave@mc-b.example")
        })
    );
    assert_eq!(
        block_on(d.resolve(&Target::User(user("sip:carol@mc-b.example")), kind)).unwrap(),
        Ok(vec![user("sip:carol@mc-b.example")])
    );
    let bob = request_to("mc-a.example", "sip:bob@mc-b.example");
    assert_eq!(block_on(d.authorize(&bob)).unwrap(), Ok(()));
    assert_eq!(
        block_on(d.processing(kind, &sys("mc-a.example"))).unwrap(),
        Processing::Manual
    );
}

#[test]
fn the_examples_shown_in_the_configuration_doc_are_the_example_files() {
    let doc = std::fs::read_to_string(examples().join("../configuration.md")).unwrap();
    let blocks: Vec<&str> = doc
        .split("```toml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 2, "the doc shows two example files");
    for (block, name) in blocks
        .iter()
        .zip(["mc-a.example.toml", "mc-b.example.toml"])
    {
        let shown = Config::parse(block, base_dir()).unwrap();
        let file = Config::parse(&example(name), base_dir()).unwrap();
        // Config has no PartialEq (ServerConfig has none); Debug shows every field.
        assert_eq!(format!("{shown:?}"), format!("{file:?}"), "{name}");
    }
}

/// Each file a configuration names, with content of the kind `check_files` wants; the TLS
/// and token loaders parse the real thing.
fn lay_out(dir: &Path, files: &[&str]) {
    for name in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let label = if name.ends_with("key.pem") {
            "PRIVATE KEY"
        } else if name.ends_with("pub.pem") {
            "PUBLIC KEY"
        } else {
            "CERTIFICATE"
        };
        std::fs::write(
            path,
            format!("-----BEGIN {label}-----\nAAAA\n-----END {label}-----\n"),
        )
        .unwrap();
    }
}

const GEN_CERTS_FILES: [&str; 6] = [
    "certs/mc-a.example/ca.pem",
    "certs/mc-a.example/cert.pem",
    "certs/mc-a.example/key.pem",
    "certs/mc-b.example/ca.pem",
    "certs/mc-b.example/cert.pem",
    "certs/mc-b.example/key.pem",
];

#[test]
fn examples_load_beside_the_gen_certs_layout_and_refuse_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    lay_out(dir.path(), &GEN_CERTS_FILES);
    lay_out(dir.path(), &["certs/tokens/token-pub.pem"]);
    for name in ["mc-a.example.toml", "mc-b.example.toml"] {
        std::fs::copy(examples().join(name), dir.path().join(name)).unwrap();
        let c = Config::load(&dir.path().join(name)).unwrap();
        assert!(
            c.tls.cert.starts_with(dir.path()),
            "{}",
            c.tls.cert.display()
        );
    }

    std::fs::remove_file(dir.path().join("certs/mc-b.example/ca.pem")).unwrap();
    let config = dir.path().join("mc-a.example.toml");
    let e = Config::load(&config).unwrap_err();
    assert_eq!(e.key, "partners[0].ca");
    assert_eq!(e.code(), "cannot_read_file");
    assert_eq!(e.file.as_deref(), Some(config.as_path()));
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!(
            "{}: partners[0].ca: cannot read ",
            config.display()
        )),
        "{shown}"
    );
}

#[test]
fn relative_paths_are_resolved_against_the_config_files_directory() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("etc");
    lay_out(
        &sub,
        &[
            "certs/cert.pem",
            "certs/key.pem",
            "certs/b-ca.pem",
            "certs/c-ca.pem",
            "certs/token-pub.pem",
        ],
    );
    std::fs::write(sub.join("acm.toml"), BASE).unwrap();
    let c = Config::load(&sub.join("acm.toml")).unwrap();
    assert_eq!(c.tls.key, sub.join("certs/key.pem"));
    assert_eq!(c.store, sub.join("acm-data/mc-a.example.db"));
}

#[test]
fn every_default_is_the_cores_and_the_documented_one() {
    let c = Config::parse(BASE, base_dir()).unwrap();
    let core = ServerConfig::new(sys("mc-a.example"));
    // ServerConfig has no PartialEq; its Debug shows every field.
    assert_eq!(format!("{:?}", c.server), format!("{core:?}"));
    assert_eq!(c.limits.body_bytes, 65_536);
    assert_eq!(c.limits.concurrency, 256);
    assert_eq!(c.limits.request_timeout, StdDuration::from_secs(10));
    assert_eq!(c.limits.body_timeout, StdDuration::from_secs(5));
    assert_eq!(c.timing.tick, StdDuration::from_millis(200));
    assert_eq!(c.timing.sse_keepalive, StdDuration::from_secs(15));
    let u = &c.users[0];
    assert!(u.may_receive && !u.administrator);
}

#[test]
fn never_turns_the_timers_off_and_numbers_set_them() {
    let c = Config::parse(
        &with("[timing]\npending_ttl_seconds = \"never\"\nsend_deadline_seconds = 600"),
        base_dir(),
    )
    .unwrap();
    assert_eq!(c.server.pending_ttl, None);
    assert_eq!(c.server.send_deadline, Some(Duration::minutes(10)));
}

#[test]
fn processing_auto_accept_reaches_the_directory() {
    let c = Config::parse(
        &with("[processing]\ninterconnection_group_identity_provision = \"auto_accept\""),
        base_dir(),
    )
    .unwrap();
    let kind = AcmRequestKind::InterconnectionGroupIdentityProvision;
    assert_eq!(
        block_on(c.directory().processing(kind, &sys("mc-b.example"))).unwrap(),
        Processing::AutoAccept
    );
}

#[test]
fn a_partner_url_is_normalised_for_appending_paths() {
    let c = Config::parse(
        &edit(
            "url = \"https://mc-b.example:9444\"",
            "url = \"HTTPS://MC-B.example:9444/acm/\"",
        ),
        base_dir(),
    )
    .unwrap();
    assert_eq!(c.partners[0].url, "https://mc-b.example:9444/acm");
}

#[test]
fn partner_urls_must_be_https_base_urls() {
    let good = [
        ("https://mc-b.example", "https://mc-b.example"),
        ("https://10.0.0.2:9444/", "https://10.0.0.2:9444"),
        ("https://[::1]:9444", "https://[::1]:9444"),
    ];
    for (url, base) in good {
        assert_eq!(super::url::https_base(url).as_deref(), Ok(base), "{url}");
    }
    let bad = [
        ("http://mc-b.example", UrlProblem::NotHttps),
        ("mc-b.example:9444", UrlProblem::NotHttps),
        ("https://", UrlProblem::NoHost),
        ("https://:9444", UrlProblem::NoHost),
        ("https://mc b.example", UrlProblem::BadHost),
        ("https://[::zz]:9444", UrlProblem::BadHost),
        ("https://mc-b.example:0", UrlProblem::BadPort),
        ("https://mc-b.example:99999", UrlProblem::BadPort),
        ("https://mc-b.example:", UrlProblem::BadPort),
        ("https://acm:secret@mc-b.example", UrlProblem::UserInfo),
        ("https://mc-b.example/?x=1", UrlProblem::QueryOrFragment),
        ("https://mc-b.example/a b", UrlProblem::BadPath),
    ];
    for (url, problem) in bad {
        assert_eq!(super::url::https_base(url), Err(problem), "{url}");
    }
}

// --- refusals: one per check, matched on key and reason ---

#[test]
fn an_unknown_key_is_refused_with_its_path() {
    let e = refusal(&with("[limits]\nmax_group = 10"));
    assert_refused(&e, "limits.max_group", "unknown_key");
    assert!(e.to_string().contains("max_groups"), "lists the keys: {e}");
}

#[test]
fn a_misspelt_key_in_a_partner_entry_names_the_entry() {
    let e = refusal(&edit(
        "ca = \"certs/c-ca.pem\"",
        "cafile = \"certs/c-ca.pem\"",
    ));
    assert_refused(&e, "partners[1].cafile", "unknown_key");
}

#[test]
fn an_unknown_table_is_refused() {
    let e = refusal(&with("[storage]\npath = \"x.db\""));
    assert_refused(&e, "storage", "unknown_key");
}

#[test]
fn a_missing_key_without_default_is_named() {
    let e = refusal(&edit("key = \"certs/key.pem\"\n", ""));
    assert_refused(&e, "tls.key", "missing_key");
}

#[test]
fn a_value_of_the_wrong_type_names_its_key_and_line() {
    let e = refusal(&edit("url = \"https://mc-c.example\"", "url = 443"));
    assert_refused(&e, "partners[1].url", "wrong_type");
    assert!(matches!(e.reason, Reason::Type { line: 20, .. }), "{e:?}");
}

#[test]
fn an_unknown_processing_mode_is_refused() {
    let e = refusal(&with(
        "[processing]\ninterconnection_group_identity_provision = \"automatic\"",
    ));
    assert_refused(
        &e,
        "processing.interconnection_group_identity_provision",
        "wrong_type",
    );
}

#[test]
fn text_that_is_not_toml_is_refused_with_its_position() {
    let e = refusal("[system]\nid = \"mc-a.example\n");
    assert_eq!(e.key, "");
    assert!(matches!(e.reason, Reason::Syntax { line: 2, .. }), "{e:?}");
}

#[test]
fn a_bad_system_id_is_refused() {
    let e = refusal(&edit("id = \"mc-a.example\"", "id = \"mc a.example\""));
    assert_refused(&e, "system.id", "invalid_id");
    assert!(
        matches!(&e.reason, Reason::InvalidId(id) if id.field == IdField::SystemId),
        "{e:?}"
    );
}

#[test]
fn a_user_id_without_user_part_says_so() {
    let e = refusal(&edit(
        "id = \"sip:admin@mc-a.example\"",
        "id = \"sip:mc-a.example\"",
    ));
    assert_refused(&e, "users[1].id", "invalid_id");
    assert!(
        matches!(&e.reason, Reason::InvalidId(id) if id.problem == IdProblem::NoUser),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "users[1].id: MC service ID: no user part (user@host)"
    );
}

#[test]
fn a_user_of_another_system_is_refused() {
    let e = refusal(&edit(
        "id = \"sip:admin@mc-a.example\"",
        "id = \"sip:admin@mc-b.example\"",
    ));
    assert_refused(&e, "users[1].id", "not_of_this_system");
}

#[test]
fn a_duplicate_user_is_refused() {
    let e = refusal(&edit(
        "id = \"sip:admin@mc-a.example\"",
        "id = \"sip:alice@MC-A.example\"",
    ));
    assert_refused(&e, "users[1].id", "duplicate");
    assert!(
        matches!(&e.reason, Reason::Duplicate { first, .. } if first == "users[0].id"),
        "{e:?}"
    );
}

#[test]
fn provides_to_an_unknown_partner_is_refused() {
    let e = refusal(&edit(
        "provides_to = [\"mc-b.example\"]",
        "provides_to = [\"mc-b.example\", \"mc-d.example\"]",
    ));
    assert_refused(&e, "users[0].provides_to[1]", "unknown_partner");
}

#[test]
fn an_administrator_who_may_not_receive_is_refused() {
    let e = refusal(&edit(
        "administrator = true",
        "administrator = true\nmay_receive = false",
    ));
    assert_refused(&e, "users[1].may_receive", "administrator_may_not_receive");
}

#[test]
fn a_duplicate_partner_is_refused() {
    let e = refusal(&edit(
        "system = \"mc-c.example\"",
        "system = \"MC-B.example\"",
    ));
    assert_refused(&e, "partners[1].system", "duplicate");
}

#[test]
fn this_system_as_its_own_partner_is_refused() {
    let e = refusal(&edit(
        "system = \"mc-c.example\"",
        "system = \"mc-a.example\"",
    ));
    assert_refused(&e, "partners[1].system", "own_system_as_partner");
}

#[test]
fn an_http_partner_url_is_refused() {
    let e = refusal(&edit(
        "url = \"https://mc-b.example:9444\"",
        "url = \"http://mc-b.example:9444\"",
    ));
    assert_refused(&e, "partners[0].url", "bad_url");
    assert_eq!(e.reason, Reason::BadUrl(UrlProblem::NotHttps));
    assert_eq!(e.to_string(), "partners[0].url: not an https URL");
}

#[test]
fn a_home_domain_of_two_systems_is_refused() {
    let e = refusal(&edit(
        "ca = \"certs/c-ca.pem\"",
        "ca = \"certs/c-ca.pem\"\nhome_domains = [\"mc-c.example\", \"mc-b.example\"]",
    ));
    assert_refused(&e, "partners[1].home_domains[1]", "home_domain_taken");
    assert!(
        matches!(&e.reason, Reason::HomeDomainTaken { by, .. } if by == "partners[0].home_domains"),
        "{e:?}"
    );
}

#[test]
fn a_partners_default_home_domain_claimed_here_is_refused() {
    let e = refusal(&edit(
        "id = \"mc-a.example\"",
        "id = \"mc-a.example\"\nhome_domains = [\"mc-a.example\", \"mc-b.example\"]",
    ));
    assert_refused(&e, "partners[0].home_domains", "home_domain_taken");
    assert!(
        matches!(&e.reason, Reason::HomeDomainTaken { by, .. } if by == "system.home_domains[1]"),
        "{e:?}"
    );
}

#[test]
fn a_home_domain_twice_in_one_list_is_a_duplicate() {
    let e = refusal(&edit(
        "id = \"mc-a.example\"",
        "id = \"mc-a.example\"\nhome_domains = [\"mc-a.example\", \"MC-A.example\"]",
    ));
    assert_refused(&e, "system.home_domains[1]", "duplicate");
}

#[test]
fn no_home_domain_is_refused() {
    let e = refusal(&edit(
        "id = \"mc-a.example\"",
        "id = \"mc-a.example\"\nhome_domains = []",
    ));
    assert_refused(&e, "system.home_domains", "empty");
}

#[test]
fn an_alias_holder_who_is_not_a_user_is_refused() {
    let e = refusal(&edit(
        "holders = [\"sip:alice@mc-a.example\"]",
        "holders = [\"sip:alice@mc-a.example\", \"sip:bob@mc-a.example\"]",
    ));
    assert_refused(&e, "functional_aliases[0].holders[1]", "unknown_user");
}

#[test]
fn an_alias_of_another_system_is_refused() {
    let e = refusal(&edit(
        "alias = \"sip:dispatcher@mc-a.example\"",
        "alias = \"sip:dispatcher@mc-b.example\"",
    ));
    assert_refused(&e, "functional_aliases[0].alias", "not_of_this_system");
}

#[test]
fn a_bad_listen_address_is_refused() {
    let e = refusal(&edit(
        "client = \"127.0.0.1:8443\"",
        "client = \"localhost:8443\"",
    ));
    assert_refused(&e, "listen.client", "bad_socket_address");
}

#[test]
fn both_listeners_on_one_address_are_refused() {
    let e = refusal(&edit(
        "partner = \"127.0.0.1:8444\"",
        "partner = \"127.0.0.1:8443\"",
    ));
    assert_refused(&e, "listen.partner", "same_listen_address");
}

#[test]
fn leeway_of_sixty_seconds_is_refused() {
    let e = refusal(&edit(
        "audience = \"acm.mc-a.example\"",
        "audience = \"acm.mc-a.example\"\nleeway_seconds = 60",
    ));
    assert_refused(&e, "tokens.leeway_seconds", "leeway_too_long");
    assert_eq!(e.reason, Reason::LeewayTooLong { seconds: 60 });
}

#[test]
fn both_jwks_and_public_keys_are_refused() {
    let e = refusal(&edit(
        "public_keys = [\"certs/token-pub.pem\"]",
        "public_keys = [\"certs/token-pub.pem\"]\njwks = \"certs/jwks.json\"",
    ));
    assert_refused(&e, "tokens", "both_token_key_sources");
}

#[test]
fn neither_jwks_nor_public_keys_is_refused() {
    let e = refusal(&edit("public_keys = [\"certs/token-pub.pem\"]\n", ""));
    assert_refused(&e, "tokens", "no_token_key_source");
}

#[test]
fn the_algorithm_none_is_refused() {
    let e = refusal(&edit(
        "algorithms = [\"ES256\", \"RS256\"]",
        "algorithms = [\"ES256\", \"none\"]",
    ));
    assert_refused(&e, "tokens.algorithms[1]", "unknown_algorithm");
    assert_eq!(
        e.reason,
        Reason::UnknownAlgorithm {
            name: "none".to_owned()
        }
    );
}

#[test]
fn an_hmac_algorithm_is_refused() {
    let e = refusal(&edit(
        "algorithms = [\"ES256\", \"RS256\"]",
        "algorithms = [\"HS256\"]",
    ));
    assert_refused(&e, "tokens.algorithms[0]", "unknown_algorithm");
}

#[test]
fn an_empty_issuer_is_refused() {
    let e = refusal(&edit(
        "issuer = \"https://idms.mc-a.example\"",
        "issuer = \"\"",
    ));
    assert_refused(&e, "tokens.issuer", "empty");
}

#[test]
fn max_groups_zero_is_refused_by_the_core_check_on_its_key() {
    let e = refusal(&with("[limits]\nmax_groups = 0"));
    assert_refused(&e, "limits.max_groups", "server_config");
    assert_eq!(e.reason, Reason::Server(ConfigError::NoGroupsAllowed));
}

#[test]
fn concurrency_zero_is_refused() {
    let e = refusal(&with("[limits]\nconcurrency = 0"));
    assert_refused(&e, "limits.concurrency", "zero");
}

#[test]
fn no_sends_per_partner_is_refused() {
    let e = refusal(&with("[limits]\nsends_per_partner = 0"));
    assert_refused(&e, "limits.sends_per_partner", "server_config");
    assert_eq!(e.reason, Reason::Server(ConfigError::NoSendsAllowed));
}

#[test]
fn a_body_limit_too_small_for_max_groups_is_refused() {
    let e = refusal(&with("[limits]\nmax_groups = 1000\nbody_bytes = 65536"));
    assert_refused(&e, "limits.body_bytes", "body_too_small");
}

#[test]
fn a_send_timeout_longer_than_the_default_claim_lease_is_the_send_timeouts_fault() {
    let e = refusal(&with("[timing]\nsend_timeout_ms = 60000"));
    assert_refused(&e, "timing.send_timeout_ms", "server_config");
    assert!(
        matches!(
            e.reason,
            Reason::Server(ConfigError::ClaimLeaseTooShort { .. })
        ),
        "{e:?}"
    );
}

#[test]
fn a_claim_lease_set_shorter_than_the_send_timeout_is_the_leases_fault() {
    let e = refusal(&with("[timing]\nclaim_lease_seconds = 5"));
    assert_refused(&e, "timing.claim_lease_seconds", "server_config");
}

#[test]
fn a_pending_time_of_zero_is_refused_with_never_as_the_way_to_turn_it_off() {
    let e = refusal(&with("[timing]\npending_ttl_seconds = 0"));
    assert_refused(&e, "timing.pending_ttl_seconds", "zero_is_not_never");
    assert!(e.to_string().contains("\"never\""), "{e}");
}

#[test]
fn a_pending_time_over_a_hundred_years_is_refused() {
    let e = refusal(&with("[timing]\npending_ttl_seconds = 4000000000"));
    assert_refused(&e, "timing.pending_ttl_seconds", "too_long");
}

#[test]
fn a_back_off_over_a_day_is_refused_by_the_core_check_on_its_key() {
    let e = refusal(&with("[timing]\nmax_backoff_seconds = 172800"));
    assert_refused(&e, "timing.max_backoff_seconds", "server_config");
    assert!(
        matches!(
            e.reason,
            Reason::Server(ConfigError::MaxBackoffOutOfRange { .. })
        ),
        "{e:?}"
    );
}

#[test]
fn a_tick_of_zero_is_refused() {
    let e = refusal(&with("[timing]\ntick_ms = 0"));
    assert_refused(&e, "timing.tick_ms", "zero");
}

// --- the files named ---

/// BASE laid out in a temporary directory with every file it names.
fn base_on_disk() -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    lay_out(
        dir.path(),
        &[
            "certs/cert.pem",
            "certs/key.pem",
            "certs/b-ca.pem",
            "certs/c-ca.pem",
            "certs/token-pub.pem",
        ],
    );
    let c = Config::parse(BASE, dir.path()).unwrap();
    c.check_files().unwrap();
    (dir, c)
}

#[test]
fn a_missing_tls_file_is_refused() {
    let (dir, c) = base_on_disk();
    std::fs::remove_file(dir.path().join("certs/cert.pem")).unwrap();
    let e = c.check_files().unwrap_err();
    assert_refused(&e, "tls.cert", "cannot_read_file");
}

#[test]
fn a_certificate_where_the_key_belongs_is_refused() {
    let (dir, c) = base_on_disk();
    std::fs::copy(
        dir.path().join("certs/cert.pem"),
        dir.path().join("certs/key.pem"),
    )
    .unwrap();
    let e = c.check_files().unwrap_err();
    assert_refused(&e, "tls.key", "wrong_content");
}

#[test]
fn a_missing_token_key_is_refused() {
    let (dir, c) = base_on_disk();
    std::fs::remove_file(dir.path().join("certs/token-pub.pem")).unwrap();
    let e = c.check_files().unwrap_err();
    assert_refused(&e, "tokens.public_keys[0]", "cannot_read_file");
}

#[test]
fn a_jwks_file_must_hold_a_key_set() {
    let dir = tempfile::tempdir().unwrap();
    lay_out(
        dir.path(),
        &[
            "certs/cert.pem",
            "certs/key.pem",
            "certs/b-ca.pem",
            "certs/c-ca.pem",
        ],
    );
    let text = edit(
        "public_keys = [\"certs/token-pub.pem\"]",
        "jwks = \"certs/jwks.json\"",
    );
    let c = Config::parse(&text, dir.path()).unwrap();
    std::fs::write(dir.path().join("certs/jwks.json"), r#"{"kid": "x"}"#).unwrap();
    assert_refused(
        &c.check_files().unwrap_err(),
        "tokens.jwks",
        "wrong_content",
    );
    std::fs::write(dir.path().join("certs/jwks.json"), r#"{"keys": []}"#).unwrap();
    c.check_files().unwrap();
}

#[test]
fn a_config_file_that_cannot_be_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = Config::load(&dir.path().join("absent.toml")).unwrap_err();
    assert_eq!(e.key, "");
    assert_eq!(e.code(), "cannot_read_config");
}

#[test]
fn each_kind_has_its_processing_key() {
    let c = Config::parse(
        &with(
            "[processing]\ngroup_membership_update = \"auto_accept\"\n\
             user_migration_management = \"not_accepted\"",
        ),
        base_dir(),
    )
    .unwrap();
    let d = c.directory();
    let from = sys("mc-b.example");
    for (kind, expected) in [
        (
            AcmRequestKind::InterconnectionGroupIdentityProvision,
            Processing::Manual,
        ),
        (
            AcmRequestKind::GroupMembershipUpdate,
            Processing::AutoAccept,
        ),
        (
            AcmRequestKind::UserMigrationManagement,
            Processing::NotAccepted,
        ),
    ] {
        assert_eq!(
            block_on(d.processing(kind, &from)).unwrap(),
            expected,
            "{kind}"
        );
    }
}

#[test]
fn each_kind_is_authorised_by_its_own_key() {
    let c = Config::parse(
        &edit(
            "provides_to = [\"mc-b.example\"]",
            "provides_to = [\"mc-b.example\"]\ngroup_membership_update_to = [\"mc-c.example\"]",
        ),
        base_dir(),
    )
    .unwrap();
    let d = c.directory();
    let alice: McServiceId = "sip:alice@mc-a.example".parse().unwrap();
    let body = |kind| match kind {
        AcmRequestKind::GroupMembershipUpdate => AcmRequestBody::membership(
            "sip:tac@mc-a.example".parse().unwrap(),
            [],
            acm_core::MembershipOperation::Add,
            None,
        ),
        AcmRequestKind::UserMigrationManagement => {
            AcmRequestBody::migration([], acm_core::MigrationOperation::Add)
        }
        _ => AcmRequestBody::provision([]),
    };
    let asks = |partner: &str, kind| {
        let mut request = request_to(partner, alice.as_str());
        request.body = body(kind);
        block_on(d.authorize(&request)).unwrap().is_ok()
    };
    assert!(asks(
        "mc-b.example",
        AcmRequestKind::InterconnectionGroupIdentityProvision
    ));
    assert!(!asks(
        "mc-c.example",
        AcmRequestKind::InterconnectionGroupIdentityProvision
    ));
    assert!(asks("mc-c.example", AcmRequestKind::GroupMembershipUpdate));
    assert!(!asks("mc-b.example", AcmRequestKind::GroupMembershipUpdate));
    assert!(!asks(
        "mc-b.example",
        AcmRequestKind::UserMigrationManagement
    ));
    let e = refusal(&edit(
        "provides_to = [\"mc-b.example\"]",
        "user_migration_management_to = [\"mc-b.example\", \"mc-b.example\"]",
    ));
    assert_refused(&e, "users[0].user_migration_management_to[1]", "duplicate");
}

#[test]
fn a_partners_interconnection_groups_reach_the_directory() {
    let c = Config::parse(
        &edit(
            "ca = \"certs/b-ca.pem\"",
            "ca = \"certs/b-ca.pem\"\ninterconnection_groups = [\"sip:fire-1@mc-b.example\"]",
        ),
        base_dir(),
    )
    .unwrap();
    let d = c.directory();
    let known = |group: &str, from: &str| {
        block_on(d.is_interconnection_group(&group.parse().unwrap(), &sys(from))).unwrap()
    };
    assert!(known("sip:fire-1@mc-b.example", "mc-b.example"));
    assert!(!known("sip:fire-2@mc-b.example", "mc-b.example"));
    assert!(!known("sip:fire-1@mc-b.example", "mc-c.example"));
    let e = refusal(&edit(
        "ca = \"certs/b-ca.pem\"",
        "ca = \"certs/b-ca.pem\"\ninterconnection_groups = [\"sip:fire-1@mc-c.example\"]",
    ));
    assert_refused(
        &e,
        "partners[0].interconnection_groups[0]",
        "not_homed_at_partner",
    );
}
