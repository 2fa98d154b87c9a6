use super::*;
use proptest::prelude::*;

fn refused<T: FromStr<Err = IdError> + fmt::Debug>(s: &str) -> IdError {
    match s.parse::<T>() {
        Ok(v) => panic!("{s:?} was accepted as {v:?}"),
        Err(e) => e,
    }
}

#[test]
fn mc_service_id_parts() {
    let id: McServiceId = "sip:alice@mc-a.example".parse().unwrap();
    assert_eq!(id.as_str(), "sip:alice@mc-a.example");
    assert_eq!(id.host(), "mc-a.example");
    assert_eq!(id.system().as_str(), "mc-a.example");
    let secure: McServiceId = "sips:bob@mc-b.example".parse().unwrap();
    assert_eq!(secure.host(), "mc-b.example");
}

#[test]
fn each_bad_uri_gets_its_own_problem_and_names_the_field() {
    let cases: [(&str, IdProblem); 9] = [
        ("", IdProblem::Empty),
        ("http:alice@mc-a.example", IdProblem::WrongScheme),
        ("alice@mc-a.example", IdProblem::WrongScheme),
        ("sip:mc-a.example", IdProblem::NoUser),
        ("sip:@mc-a.example", IdProblem::NoUser),
        ("sip:alice@", IdProblem::NoHost),
        ("sip:alice@mc_a.example", IdProblem::InvalidHost),
        ("sip:alice@-mc.example", IdProblem::InvalidHost),
        (
            "sip:al ice@mc-a.example",
            IdProblem::ControlCharacter { at: 6 },
        ),
    ];
    for (input, problem) in cases {
        let e = refused::<McServiceId>(input);
        assert_eq!(e.problem, problem, "{input:?}");
        assert_eq!(e.field, IdField::McServiceId);
    }
    assert_eq!(refused::<GroupId>("").field, IdField::GroupId);
    assert_eq!(
        refused::<FunctionalAlias>("x").field,
        IdField::FunctionalAlias
    );
    assert_eq!(
        refused::<McServiceId>("sip:a@b\u{7}c").problem,
        IdProblem::ControlCharacter { at: 7 }
    );
}

#[test]
fn too_long_is_refused_with_its_length() {
    let long = format!("sip:{}@mc-a.example", "a".repeat(250));
    assert_eq!(
        refused::<McServiceId>(&long).problem,
        IdProblem::TooLong { len: long.len() }
    );
    let just = format!("sip:{}@mc-a.example", "a".repeat(MAX_ID_LEN - 17));
    assert_eq!(just.len(), MAX_ID_LEN);
    assert!(just.parse::<McServiceId>().is_ok());
}

#[test]
fn system_ids() {
    assert_eq!(
        "mc-a.example".parse::<SystemId>().unwrap().as_str(),
        "mc-a.example"
    );
    assert_eq!(refused::<SystemId>("").problem, IdProblem::Empty);
    assert_eq!(
        refused::<SystemId>("mc a").problem,
        IdProblem::ControlCharacter { at: 2 }
    );
    assert_eq!(
        refused::<SystemId>("sip:mc-a.example").problem,
        IdProblem::InvalidHost
    );
    assert_eq!(refused::<SystemId>("a..b").problem, IdProblem::InvalidHost);
}

#[test]
fn uuid_ids_must_be_version_7() {
    let v7 = uuid::Uuid::now_v7();
    assert_eq!(v7.to_string().parse::<RequestId>().unwrap().as_uuid(), v7);
    let v4 = uuid::Uuid::new_v4();
    let e = refused::<RequestId>(&v4.to_string());
    assert_eq!(
        (e.field, e.problem),
        (IdField::RequestId, IdProblem::NotUuidV7)
    );
    assert_eq!(refused::<EventId>("not-a-uuid").problem, IdProblem::NotUuid);
    assert_eq!(refused::<MessageId>("").problem, IdProblem::Empty);
    assert!(EventId::from_uuid(uuid::Uuid::nil()).is_err());
}

#[test]
fn serde_refuses_what_parsing_refuses() {
    let ok: McServiceId = serde_json::from_str("\"sip:alice@mc-a.example\"").unwrap();
    assert_eq!(
        serde_json::to_string(&ok).unwrap(),
        "\"sip:alice@mc-a.example\""
    );
    assert!(serde_json::from_str::<McServiceId>("\"tel:+123\"").is_err());
    assert!(serde_json::from_str::<SystemId>("\"\"").is_err());
    let v4 = format!("\"{}\"", uuid::Uuid::new_v4());
    assert!(serde_json::from_str::<RequestId>(&v4).is_err());
}

proptest! {
    #[test]
    fn valid_uris_round_trip(user in "[a-z0-9._-]{1,40}", host in "[a-z0-9]{1,20}(\\.[a-z0-9]{1,20}){0,3}") {
        let s = format!("sip:{user}@{host}");
        let id: McServiceId = s.parse().unwrap();
        prop_assert_eq!(id.host(), host.as_str());
        prop_assert_eq!(id.to_string(), s.clone());
        let back: McServiceId = serde_json::from_str(&serde_json::to_string(&id).unwrap()).unwrap();
        prop_assert_eq!(back, id);
    }

    #[test]
    fn parsing_never_panics(s in "\\PC{0,300}") {
        let _ = s.parse::<McServiceId>();
        let _ = s.parse::<SystemId>();
        let _ = s.parse::<RequestId>();
    }

    #[test]
    fn accepted_ids_hold_no_control_characters_or_overlong_text(s in ".{0,300}") {
        if let Ok(id) = s.parse::<GroupId>() {
            prop_assert!(id.as_str().len() <= MAX_ID_LEN);
            prop_assert!(!id.as_str().chars().any(|c| c.is_control() || c.is_whitespace()));
            prop_assert!(id.as_str().starts_with("sip:") || id.as_str().starts_with("sips:"));
        }
    }
}

#[test]
fn hosts_are_held_in_lower_case() {
    let id: McServiceId = "sip:Alice@MC-A.Example".parse().unwrap();
    assert_eq!(id.as_str(), "sip:Alice@mc-a.example");
    assert_eq!(id.host(), "mc-a.example");
    let g1: GroupId = "sip:tac-1@MC-A.example".parse().unwrap();
    let g2: GroupId = "sip:tac-1@mc-a.example".parse().unwrap();
    assert_eq!(g1, g2);
    assert_eq!(
        "MC-B.example".parse::<SystemId>().unwrap().as_str(),
        "mc-b.example"
    );
}

// RFC 3261 §25.1, spelled out here rather than taken from the parser, so the tests check the
// parser against the grammar and not against itself.
const ALPHANUM: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const MARK: &str = "-_.!~*'()";
const USER_UNRESERVED: &str = "&=+$,;?/";

fn in_grammar(c: char) -> bool {
    ALPHANUM.contains(c) || MARK.contains(c) || USER_UNRESERVED.contains(c)
}

/// Decoded when escaped: `unreserved` (RFC 3261 §19.1.4).
fn unreserved(c: char) -> bool {
    ALPHANUM.contains(c) || MARK.contains(c)
}

#[test]
fn user_part_grammar_accepts_every_rfc_3261_character_class() {
    for c in ALPHANUM
        .chars()
        .chain(MARK.chars())
        .chain(USER_UNRESERVED.chars())
    {
        for s in [
            format!("sip:a{c}b@mc-a.example"),
            format!("sip:{c}@mc-a.example"),
        ] {
            let id: McServiceId = s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"));
            assert_eq!(id.as_str(), s);
            assert_eq!(id.host(), "mc-a.example");
        }
    }
    // (user part as given, canonical user part)
    let escapes = [
        ("%61", "a"),
        ("%41", "A"),
        ("%39", "9"),
        ("%7e", "~"),
        ("%7E", "~"),
        ("%2d", "-"),
        ("%27", "'"),
        ("%28%29", "()"),
        ("tac%2D1", "tac-1"),
        ("%2f", "%2F"),
        ("%2F", "%2F"),
        ("%3b", "%3B"),
        ("%26%3d%2b%24%2c%3f", "%26%3D%2B%24%2C%3F"),
        ("%40", "%40"),
        ("%3a", "%3A"),
        ("%25", "%25"),
        ("%2541", "%2541"),
        ("%3c%3e%22", "%3C%3E%22"),
        ("%20", "%20"),
        ("%01", "%01"),
        ("%7f", "%7F"),
        ("%c3%a9", "%C3%A9"),
        ("%e2%80%8b", "%E2%80%8B"),
        ("%ff", "%FF"),
    ];
    for (user, canonical) in escapes {
        let s = format!("sip:{user}@MC-A.example");
        let id: McServiceId = s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!(
            id.as_str(),
            format!("sip:{canonical}@mc-a.example"),
            "{s:?}"
        );
        assert_eq!(id.host(), "mc-a.example", "{s:?}");
    }
}

#[test]
fn user_part_grammar_refuses_each_character_rfc_3261_forbids() {
    use IdProblem::{ControlCharacter, EscapedNul, InvalidEscape, InvalidUserCharacter};
    let cases = [
        // Invisible format characters.
        (
            "sip:tac-1\u{200b}@mc-a.example",
            InvalidUserCharacter { at: 9 },
        ),
        (
            "sip:\u{202e}1-cat@mc-a.example",
            InvalidUserCharacter { at: 4 },
        ),
        (
            "sip:\u{feff}tac-1@mc-a.example",
            InvalidUserCharacter { at: 4 },
        ),
        (
            "sip:tac\u{2060}-1@mc-a.example",
            InvalidUserCharacter { at: 7 },
        ),
        // Letters from other scripts, one that looks like Latin 'a'.
        (
            "sip:\u{430}lice@mc-a.example",
            InvalidUserCharacter { at: 4 },
        ),
        ("sip:b\u{430}d@mc-a.example", InvalidUserCharacter { at: 5 }),
        ("sip:caf\u{e9}@mc-a.example", InvalidUserCharacter { at: 7 }),
        // The first offending character is named, not a later one.
        (
            "sip:tac-1\u{200b}\u{430}@mc-a.example",
            InvalidUserCharacter { at: 9 },
        ),
        // A second '@': the last one separates the host, so the earlier one is in the user part.
        (
            "sip:tac-1@mc-b.example@mc-a.example",
            InvalidUserCharacter { at: 9 },
        ),
        ("sip:a@@mc-a.example", InvalidUserCharacter { at: 5 }),
        ("sip:@a@mc-a.example", InvalidUserCharacter { at: 4 }),
        // Delimiters of SIP headers.
        ("sip:<tac-1>@mc-a.example", InvalidUserCharacter { at: 4 }),
        ("sip:tac-1>@mc-a.example", InvalidUserCharacter { at: 9 }),
        ("sip:\"tac-1\"@mc-a.example", InvalidUserCharacter { at: 4 }),
        // A password is not part of an MC identity.
        (
            "sip:alice:secret@mc-a.example",
            InvalidUserCharacter { at: 9 },
        ),
        ("sips:a#b@mc-a.example", InvalidUserCharacter { at: 6 }),
        // Escapes.
        ("sip:tac%00@mc-a.example", EscapedNul { at: 7 }),
        ("sip:%00@mc-a.example", EscapedNul { at: 4 }),
        ("sip:tac%4@mc-a.example", InvalidEscape { at: 7 }),
        ("sip:tac%zz@mc-a.example", InvalidEscape { at: 7 }),
        ("sip:tac%4g@mc-a.example", InvalidEscape { at: 7 }),
        ("sip:tac%g4@mc-a.example", InvalidEscape { at: 7 }),
        ("sip:tac%@mc-a.example", InvalidEscape { at: 7 }),
        ("sip:%%41@mc-a.example", InvalidEscape { at: 4 }),
        ("sip:a%2@b@mc-a.example", InvalidEscape { at: 5 }),
        ("sip:a%\u{e9}@mc-a.example", InvalidEscape { at: 5 }),
        ("sip:a%41%0@mc-a.example", InvalidEscape { at: 8 }),
        // Control characters and white space keep their own problem.
        ("sip:tac 1@mc-a.example", ControlCharacter { at: 7 }),
        ("sip:tac\t1@mc-a.example", ControlCharacter { at: 7 }),
        ("sip:tac\u{a0}1@mc-a.example", ControlCharacter { at: 7 }),
        ("sip:tac\u{2028}1@mc-a.example", ControlCharacter { at: 7 }),
        ("sip:a<b c@mc-a.example", ControlCharacter { at: 7 }),
        // The user part is checked before the host.
        ("sip:a<b@-mc.example", InvalidUserCharacter { at: 5 }),
    ];
    for (input, problem) in cases {
        let e = refused::<McServiceId>(input);
        assert_eq!(e.problem, problem, "{input:?}");
        assert_eq!(e.field, IdField::McServiceId, "{input:?}");
    }
    // Every other printable ASCII character.
    for c in (b'!'..=b'~').map(char::from) {
        if in_grammar(c) || c == '%' {
            continue;
        }
        let input = format!("sip:a{c}b@mc-a.example");
        assert_eq!(
            refused::<McServiceId>(&input).problem,
            InvalidUserCharacter { at: 5 },
            "{input:?}"
        );
    }
    let e = refused::<GroupId>("sip:tac-1\u{200b}@mc-a.example");
    assert_eq!(
        (e.field, &e.problem),
        (IdField::GroupId, &InvalidUserCharacter { at: 9 })
    );
    assert_eq!(
        e.to_string(),
        "invalid MC service group ID: character at byte 9 is not allowed in a SIP URI user part"
    );
    assert_eq!(
        refused::<FunctionalAlias>("sip:duty%4@mc-b.example").to_string(),
        "invalid functional alias: % at byte 8 is not followed by two hexadecimal digits"
    );
    assert_eq!(
        refused::<GroupId>("sip:tac%00@mc-a.example").to_string(),
        "invalid MC service group ID: escaped NUL (%00) at byte 7"
    );
}

#[test]
fn escaped_and_unescaped_forms_are_one_identifier() {
    use std::cmp::Ordering;
    use std::hash::{BuildHasher, RandomState};
    let hasher = RandomState::new();
    let same = [
        ("sip:a%62c@mc-a.example", "sip:abc@mc-a.example"),
        ("sip:%74%61%63%2d%31@MC-A.example", "sip:tac-1@mc-a.example"),
        ("sip:%7e%2A%27@mc-a.example", "sip:~*'@mc-a.example"),
        ("sip:a%2fb@mc-a.example", "sip:a%2Fb@mc-a.example"),
        ("sips:%c3%A9@mc-a.example", "sips:%C3%a9@mc-a.example"),
    ];
    for (a, b) in same {
        let (x, y): (GroupId, GroupId) = (a.parse().unwrap(), b.parse().unwrap());
        assert_eq!(x, y, "{a:?} {b:?}");
        assert_eq!(x.cmp(&y), Ordering::Equal, "{a:?} {b:?}");
        assert_eq!(hasher.hash_one(&x), hasher.hash_one(&y), "{a:?} {b:?}");
        assert_eq!(x.as_str(), y.as_str());
        assert_eq!(x.to_string(), y.to_string());
        assert_eq!(x.host(), "mc-a.example");
        assert_eq!(x.system(), y.system());
    }
    let different = [
        // Escaping a reserved character makes a different user part (RFC 3261 §19.1.4).
        ("sip:a%2Fb@mc-a.example", "sip:a/b@mc-a.example"),
        ("sip:a%3Bb@mc-a.example", "sip:a;b@mc-a.example"),
        // User parts are case-sensitive; only escapes' hex digits are not.
        ("sip:Alice@mc-a.example", "sip:alice@mc-a.example"),
        ("sip:%41lice@mc-a.example", "sip:alice@mc-a.example"),
    ];
    for (a, b) in different {
        let (x, y): (GroupId, GroupId) = (a.parse().unwrap(), b.parse().unwrap());
        assert_ne!(x, y, "{a:?} {b:?}");
        assert_ne!(x.cmp(&y), Ordering::Equal, "{a:?} {b:?}");
    }
}

#[test]
fn clones_share_the_canonical_text() {
    for s in ["sip:tac-1@mc-a.example", "sip:tac%2d1@MC-A.example"] {
        let id: GroupId = s.parse().unwrap();
        assert!(Arc::ptr_eq(&id.uri, &id.clone().uri), "{s:?}");
    }
}

#[test]
fn serde_goes_through_the_grammar_and_writes_the_canonical_form() {
    let id: GroupId = serde_json::from_str("\"sip:tac%2d1%3b@MC-A.example\"").unwrap();
    assert_eq!(id, "sip:tac-1%3B@mc-a.example".parse::<GroupId>().unwrap());
    let json = serde_json::to_string(&id).unwrap();
    assert_eq!(json, "\"sip:tac-1%3B@mc-a.example\"");
    assert_eq!(serde_json::from_str::<GroupId>(&json).unwrap(), id);
    for bad in [
        "\"sip:tac-1\\u200b@mc-a.example\"",
        "\"sip:\\u0430lice@mc-a.example\"",
        "\"sip:tac%00@mc-a.example\"",
        "\"sip:tac-1@mc-b.example@mc-a.example\"",
    ] {
        assert!(serde_json::from_str::<GroupId>(bad).is_err(), "{bad}");
    }
    let problems = [
        (
            IdProblem::InvalidUserCharacter { at: 9 },
            serde_json::json!({ "problem": "invalid_user_character", "at": 9 }),
        ),
        (
            IdProblem::InvalidEscape { at: 7 },
            serde_json::json!({ "problem": "invalid_escape", "at": 7 }),
        ),
        (
            IdProblem::EscapedNul { at: 7 },
            serde_json::json!({ "problem": "escaped_nul", "at": 7 }),
        ),
    ];
    for (problem, json) in problems {
        assert_eq!(serde_json::to_value(&problem).unwrap(), json);
        assert_eq!(serde_json::from_value::<IdProblem>(json).unwrap(), problem);
    }
}

/// One `user` element of RFC 3261's grammar.
#[derive(Debug, Clone)]
enum UserToken {
    Plain(char),
    Escape { byte: u8, lower: bool },
}

impl UserToken {
    fn text(&self) -> String {
        match *self {
            Self::Plain(c) => c.to_string(),
            Self::Escape { byte, lower: true } => format!("%{byte:02x}"),
            Self::Escape { byte, lower: false } => format!("%{byte:02X}"),
        }
    }

    fn canonical(&self) -> String {
        match *self {
            Self::Plain(c) => c.to_string(),
            Self::Escape { byte, .. } if unreserved(char::from(byte)) => {
                char::from(byte).to_string()
            }
            Self::Escape { byte, .. } => format!("%{byte:02X}"),
        }
    }
}

fn user_token() -> impl Strategy<Value = UserToken> {
    let plain: Vec<char> = ALPHANUM
        .chars()
        .chain(MARK.chars())
        .chain(USER_UNRESERVED.chars())
        .collect();
    prop_oneof![
        3 => proptest::sample::select(plain).prop_map(UserToken::Plain),
        1 => (1u8..=255, any::<bool>()).prop_map(|(byte, lower)| UserToken::Escape { byte, lower }),
    ]
}

/// The canonical user part holds grammar characters and upper-case escapes of anything but
/// NUL and unreserved characters.
fn is_canonical_user(user: &str) -> bool {
    let mut bytes = user.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let digits: Vec<u8> = bytes.by_ref().take(2).collect();
            let upper_hex = digits.len() == 2
                && digits
                    .iter()
                    .all(|d| matches!(d, b'0'..=b'9' | b'A'..=b'F'));
            let Some(byte) = std::str::from_utf8(&digits)
                .ok()
                .filter(|_| upper_hex)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
            else {
                return false;
            };
            if byte == 0 || unreserved(char::from(byte)) {
                return false;
            }
        } else if !in_grammar(char::from(b)) {
            return false;
        }
    }
    !user.is_empty()
}

/// Text that is mostly a SIP URI, with now and then a malformed escape, a character the grammar
/// refuses, or a bad host, so that both outcomes are common.
fn messy_uri() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        8 => "[a-zA-Z0-9&=+$,;?/!~*'()._-]",
        3 => "%[0-9a-fA-F]{2}",
        1 => "%[0-9a-fA-Fg@]{0,2}",
        1 => "[%@<>\":# \u{200b}\u{202e}\u{feff}\u{430}]",
    ];
    (
        "sips?:",
        proptest::collection::vec(piece, 0..12),
        "@[a-zA-Z0-9]{1,10}(\\.[a-zA-Z0-9-]{1,10}){0,2}",
    )
        .prop_map(|(scheme, user, host)| format!("{scheme}{}{host}", user.concat()))
}

fn user_part(uri: &str) -> &str {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))
        .unwrap();
    rest.rsplit_once('@').unwrap().0
}

proptest! {
    #[test]
    fn grammar_user_parts_round_trip_in_canonical_form(
        secure in any::<bool>(),
        user in proptest::collection::vec(user_token(), 1..40),
        host in "[a-zA-Z0-9]{1,20}(\\.[a-zA-Z0-9]{1,20}){0,3}",
    ) {
        let scheme = if secure { "sips:" } else { "sip:" };
        let text: String = user.iter().map(UserToken::text).collect();
        let canonical: String = user.iter().map(UserToken::canonical).collect();
        let s = format!("{scheme}{text}@{host}");
        let id: GroupId = s
            .parse()
            .map_err(|e| TestCaseError::fail(format!("{s:?} refused: {e}")))?;
        let host = host.to_ascii_lowercase();
        prop_assert_eq!(id.as_str(), format!("{scheme}{canonical}@{host}"));
        prop_assert_eq!(id.host(), host.as_str());
        prop_assert!(is_canonical_user(user_part(id.as_str())), "{}", id);
        let shown = id.to_string();
        let again: GroupId = shown.parse().unwrap();
        prop_assert_eq!(&again, &id);
        prop_assert_eq!(again.to_string(), shown);
        let back: GroupId = serde_json::from_str(&serde_json::to_string(&id).unwrap()).unwrap();
        prop_assert_eq!(back, id);
    }

    #[test]
    fn any_accepted_uri_round_trips(s in prop_oneof![
        4 => messy_uri(),
        1 => "sips?:\\PC{0,30}@mc-a\\.example",
        1 => ".{0,80}",
    ]) {
        if let Ok(id) = s.parse::<McServiceId>() {
            prop_assert!(is_canonical_user(user_part(id.as_str())), "{:?} -> {}", s, id);
            let shown = id.to_string();
            let again: McServiceId = shown.parse().unwrap();
            prop_assert_eq!(&again, &id);
            prop_assert_eq!(again.to_string(), shown);
            let back: McServiceId =
                serde_json::from_str(&serde_json::to_string(&id).unwrap()).unwrap();
            prop_assert_eq!(back, id);
        }
    }
}
