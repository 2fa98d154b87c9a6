//! The stable codes that wire formats (RFC 9457 problem types) are built from: each is the
//! value's serde tag, so a code and the structured form a partner reads never disagree.

use acm_core::{
    AuthorizationRefusal, Closure, DomainError, FunctionalAlias, GroupId, McServiceId, MessageId,
    SystemId,
};

fn tag(value: &impl serde::Serialize, name: &str) -> String {
    let json = serde_json::to_value(value).unwrap_or_else(|e| panic!("{e}"));
    json[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} tag in {json}"))
        .to_owned()
}

fn ids() -> (SystemId, McServiceId, GroupId, FunctionalAlias, MessageId) {
    fn parse<T: std::str::FromStr<Err = acm_core::IdError>>(s: &str) -> T {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }
    (
        parse("mc-b.example"),
        parse("sip:alice@mc-a.example"),
        parse("sip:fire@mc-a.example"),
        parse("sip:dispatcher@mc-a.example"),
        parse("018f0000-0000-7000-8000-000000000001"),
    )
}

#[test]
fn every_domain_error_code_is_its_serde_tag() {
    let (system, user, group, alias, message_id) = ids();
    let all = [
        DomainError::EmptyGroupList,
        DomainError::DuplicateGroup { group },
        DomainError::TooManyGroups { count: 2, max: 1 },
        DomainError::TargetOutsidePartner {
            partner: system.clone(),
        },
        DomainError::ReasonTooLong { len: 2, max: 1 },
        DomainError::RequestExists,
        DomainError::UnknownRequest,
        DomainError::NotStored,
        DomainError::WrongSide,
        DomainError::NotInterconnected {
            system: system.clone(),
        },
        DomainError::NotTheSender {
            system: system.clone(),
        },
        DomainError::RequestIdReused,
        DomainError::MessageIdReused { message_id },
        DomainError::ResponderNotOfSender { system },
        DomainError::AliasNotHeld {
            alias,
            user: user.clone(),
        },
        DomainError::NotARecipient { user: user.clone() },
        DomainError::NotDelivered { user: user.clone() },
        DomainError::Closed {
            closure: Closure::Answered,
        },
        DomainError::ResponseExists,
        DomainError::UnexpectedMessage { message_id },
        DomainError::NotTheRequester { user },
        DomainError::NoPendingResponse,
        DomainError::NotWithdrawable,
        DomainError::NotAccepted,
        DomainError::NotDue,
        DomainError::NotAwaitingAck,
    ];
    for error in &all {
        assert_eq!(error.code(), tag(error, "error"), "{error:?}");
    }
}

#[test]
fn every_authorization_refusal_code_is_its_serde_tag() {
    let (system, user, group, alias, _) = ids();
    let all = [
        AuthorizationRefusal::NotAPartner {
            partner: system.clone(),
        },
        AuthorizationRefusal::NotAuthorized {
            user: user.clone(),
            partner: system,
        },
        AuthorizationRefusal::GroupNotHomedHere { group },
        AuthorizationRefusal::AliasNotHeld { alias, user },
    ];
    for refusal in &all {
        assert_eq!(refusal.code(), tag(refusal, "refusal"), "{refusal:?}");
    }
}

/// What a partner sends is read strictly: a field acm does not know (a forged sender, a
/// misspelt member) is an error, not silently dropped.
#[test]
fn partner_facing_types_refuse_unknown_fields() {
    let request = serde_json::json!({
        "request_id": "018f0000-0000-7000-8000-000000000001",
        "requester": "sip:alice@mc-a.example",
        "requester_alias": null,
        "partner": "mc-b.example",
        "target": {"kind": "user", "id": "sip:bob@mc-b.example"},
        "body": {"kind": "interconnection_group_identity_provision", "groups": ["sip:fire@mc-a.example"]},
    });
    assert!(serde_json::from_value::<acm_core::AcmRequest>(request.clone()).is_ok());
    for (pointer, name) in [("", "sender"), ("/target", "system"), ("/body", "urgency")] {
        let mut forged = request.clone();
        forged
            .pointer_mut(pointer)
            .and_then(serde_json::Value::as_object_mut)
            .unwrap_or_else(|| panic!("{pointer}"))
            .insert(name.into(), "mc-x.example".into());
        assert!(
            serde_json::from_value::<acm_core::AcmRequest>(forged).is_err(),
            "{name} at {pointer:?} was accepted"
        );
    }
    let response = serde_json::json!({
        "responder": {"kind": "server", "system": "mc-b.example"},
        "outcome": {"result": "rejected", "reason": {"by": "user", "text": null}},
    });
    assert!(serde_json::from_value::<acm_core::AcmResponse>(response.clone()).is_ok());
    let mut forged = response;
    forged["outcome"]["reason"]["extra"] = true.into();
    assert!(serde_json::from_value::<acm_core::AcmResponse>(forged).is_err());
}
