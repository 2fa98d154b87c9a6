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
