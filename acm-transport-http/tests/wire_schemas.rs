//! The bodies' schemas in the `OpenAPI` document say what serde does.
//!
//! - Every body the servers read: for a sample of every variant, and for every change of one
//!   member (an unknown member added, a member removed, set to `null`, emptied), the document's
//!   schema accepts exactly what serde reads.
//! - Every body the servers write: serde's output of every variant is valid against its
//!   schema, and so is every change that serde still reads (the schemas may be narrower than
//!   what a client reads, never wider than what is written).
//! - The identifiers' patterns accept exactly what their parsers accept, over a corpus of
//!   good and bad spellings.
//! - Each problem response names only problem kinds of its own status.
//!
//! The validator below knows the keywords the document uses and fails on any other, so a
//! keyword it would ignore cannot make a test pass.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use acm_core::{
    AcmRequest, AcmRequestBody, AcmResponse, AuthorizationRefusal, Closure, DomainError,
    DownloadedItem, FunctionalAlias, GroupId, IdempotencyKey, McServiceId, MessageId, Outcome,
    PartnerAck, PendingAcmData, PendingAcmDataNotification, PendingItem, RejectionReason,
    RequestId, Responder, SystemId, Target, VerificationFailure,
};
use acm_transport_http::wire::{
    Acknowledgement, AcknowledgementRecorded, DecisionKind, ForwardedRequest, ForwardedResponse,
    ForwardedWithdrawal, MembershipSubmission, MigrationSubmission, PartnerAckBody,
    ProvisionSubmission, RequestStatus, ResponseSubmission, SubmissionAccepted, WithdrawalAccepted,
};
use acm_transport_http::{PROBLEM_KINDS, Problem, openapi_document};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Display,
{
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn to_json(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or_else(|e| panic!("{e}"))
}

/// The document as JSON, and a validator for the subset of JSON Schema it uses (with the
/// patterns compiled once).
struct Doc(Value, RefCell<HashMap<String, regex_lite::Regex>>);

/// Keywords that only annotate.
const ANNOTATIONS: &[&str] = &["description", "examples", "example", "title", "default"];

impl Doc {
    fn new() -> Self {
        Self(to_json(&openapi_document()), RefCell::default())
    }

    fn schema(&self, name: &str) -> &Value {
        let schema = &self.0["components"]["schemas"][name];
        assert!(schema.is_object(), "no schema {name}");
        schema
    }

    fn valid(&self, value: &Value, schema: &Value) -> bool {
        let Some(keywords) = schema.as_object() else {
            panic!("a schema that is not an object: {schema}");
        };
        keywords.iter().all(|(keyword, argument)| {
            self.keyword(keyword, argument, value, keywords)
                .unwrap_or_else(|| panic!("the validator does not know `{keyword}`: {schema}"))
        })
    }

    /// Whether `value` passes one keyword; `None` for a keyword this validator does not know.
    #[allow(clippy::too_many_lines)] // one arm per keyword
    fn keyword(
        &self,
        keyword: &str,
        argument: &Value,
        value: &Value,
        keywords: &Map<String, Value>,
    ) -> Option<bool> {
        let number = |v: &Value| v.as_f64().unwrap_or_else(|| panic!("{v}"));
        let length = |v: &Value| {
            usize::try_from(v.as_u64().unwrap_or_else(|| panic!("{v}")))
                .unwrap_or_else(|e| panic!("{v}: {e}"))
        };
        Some(match keyword {
            _ if ANNOTATIONS.contains(&keyword) => true,
            "$ref" => {
                let name = argument
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                    .unwrap_or_else(|| panic!("{argument}"));
                self.valid(value, self.schema(name))
            }
            "type" => match argument {
                Value::String(t) => has_type(value, t),
                Value::Array(types) => types
                    .iter()
                    .any(|t| has_type(value, t.as_str().unwrap_or_default())),
                _ => panic!("{argument}"),
            },
            "enum" => argument
                .as_array()
                .is_some_and(|options| options.contains(value)),
            "oneOf" => {
                argument
                    .as_array()
                    .map(|all| all.iter().filter(|s| self.valid(value, s)).count())
                    == Some(1)
            }
            "allOf" => argument
                .as_array()
                .is_some_and(|all| all.iter().all(|s| self.valid(value, s))),
            "properties" => match value.as_object() {
                Some(members) => argument
                    .as_object()
                    .unwrap_or_else(|| panic!("{argument}"))
                    .iter()
                    .all(|(name, schema)| {
                        members
                            .get(name)
                            .is_none_or(|member| self.valid(member, schema))
                    }),
                None => true,
            },
            "required" => match value.as_object() {
                Some(members) => argument
                    .as_array()
                    .unwrap_or_else(|| panic!("{argument}"))
                    .iter()
                    .all(|name| members.contains_key(name.as_str().unwrap_or_default())),
                None => true,
            },
            "additionalProperties" => match (value.as_object(), argument) {
                (None, _) | (_, Value::Bool(true)) => true,
                (Some(members), _) => {
                    let declared = keywords.get("properties").and_then(Value::as_object);
                    members
                        .iter()
                        .filter(|(name, _)| declared.is_none_or(|d| !d.contains_key(*name)))
                        .all(|(_, member)| match argument {
                            Value::Bool(false) => false,
                            Value::Object(_) => self.valid(member, argument),
                            _ => panic!("{argument}"),
                        })
                }
            },
            "items" => match value.as_array() {
                Some(items) => items.iter().all(|item| self.valid(item, argument)),
                None => true,
            },
            "pattern" => match value.as_str() {
                Some(text) => {
                    let pattern = argument.as_str().unwrap_or_default();
                    let mut compiled = self.1.borrow_mut();
                    compiled
                        .entry(pattern.to_owned())
                        .or_insert_with(|| {
                            regex_lite::Regex::new(pattern)
                                .unwrap_or_else(|e| panic!("{pattern}: {e}"))
                        })
                        .is_match(text)
                }
                None => true,
            },
            "minLength" => value
                .as_str()
                .is_none_or(|t| t.chars().count() >= length(argument)),
            "maxLength" => value
                .as_str()
                .is_none_or(|t| t.chars().count() <= length(argument)),
            "minimum" => value.as_f64().is_none_or(|n| n >= number(argument)),
            "maximum" => value.as_f64().is_none_or(|n| n <= number(argument)),
            "format" => match (argument.as_str(), value.as_str()) {
                (Some("date-time"), Some(text)) => {
                    chrono::DateTime::parse_from_rfc3339(text).is_ok()
                }
                (Some("date-time"), None) => true,
                // Annotations only (`int32`, `uint64`, …): the type and bounds say the rest.
                (Some(f), _) if f.starts_with("int") || f.starts_with("uint") => true,
                _ => return None,
            },
            _ => return None,
        })
    }

    fn valid_as(&self, value: &Value, name: &str) -> bool {
        self.valid(value, self.schema(name))
    }
}

fn has_type(value: &Value, t: &str) -> bool {
    match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        _ => panic!("unknown type {t}"),
    }
}

/// Every change of one member, anywhere in `value`: an unknown member added to each object,
/// each member removed and set to `null`, each array emptied and (with `strings`) each string
/// emptied.
fn mutations(value: &Value, strings: bool) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    mutate(value, "", strings, &mut |path, changed| {
        out.push((path, changed));
    });
    out
}

fn mutate(value: &Value, path: &str, strings: bool, out: &mut dyn FnMut(String, Value)) {
    match value {
        Value::Object(members) => {
            let mut added = members.clone();
            added.insert("zz_unknown".into(), json!(0));
            out(format!("{path} + zz_unknown"), Value::Object(added));
            for (name, member) in members {
                let mut removed = members.clone();
                removed.remove(name);
                out(format!("{path}/{name} removed"), Value::Object(removed));
                let mut nulled = members.clone();
                nulled.insert(name.clone(), Value::Null);
                out(format!("{path}/{name} = null"), Value::Object(nulled));
                mutate(
                    member,
                    &format!("{path}/{name}"),
                    strings,
                    &mut |p, changed| {
                        let mut whole = members.clone();
                        whole.insert(name.clone(), changed);
                        out(p, Value::Object(whole));
                    },
                );
            }
        }
        Value::Array(items) => {
            if !items.is_empty() {
                out(format!("{path} = []"), json!([]));
            }
            for (i, item) in items.iter().enumerate() {
                mutate(item, &format!("{path}/{i}"), strings, &mut |p, changed| {
                    let mut whole = items.clone();
                    whole[i] = changed;
                    out(p, Value::Array(whole));
                });
            }
        }
        Value::String(text) if strings && !text.is_empty() => {
            out(format!("{path} = \"\""), json!(""));
        }
        _ => {}
    }
}

fn reads<T: DeserializeOwned>(value: &Value) -> bool {
    serde_json::from_value::<T>(value.clone()).is_ok()
}

/// A body the servers read: the schema accepts each sample and each change of it exactly
/// when serde reads it as `T`.
fn read_exactly<T: DeserializeOwned + Serialize>(doc: &Doc, name: &str, samples: &[T]) -> usize {
    let mut checked = 0;
    for sample in samples {
        let value = to_json(sample);
        assert!(doc.valid_as(&value, name), "{name}: serde wrote {value}");
        for (path, changed) in mutations(&value, true) {
            assert_eq!(
                doc.valid_as(&changed, name),
                reads::<T>(&changed),
                "{name} {path}: schema valid vs serde reads, for {changed}"
            );
            checked += 1;
        }
    }
    checked
}

/// A body the servers write: the schema accepts each sample, and what it accepts of each
/// change serde reads too.
fn written<T: DeserializeOwned + Serialize>(doc: &Doc, name: &str, samples: &[T]) -> usize {
    let mut checked = 0;
    for sample in samples {
        let value = to_json(sample);
        assert!(doc.valid_as(&value, name), "{name}: serde wrote {value}");
        for (path, changed) in mutations(&value, false) {
            if doc.valid_as(&changed, name) {
                assert!(
                    reads::<T>(&changed),
                    "{name} {path}: the schema accepts what serde does not read: {changed}"
                );
            }
            checked += 1;
        }
    }
    checked
}

fn request_id(n: u8) -> RequestId {
    id(&format!("01890a5d-ac96-7{n:03x}-bcce-b302099a8057"))
}

fn message_id(n: u8) -> MessageId {
    id(&format!("01890a5d-ac96-7{n:03x}-8b4e-6c2a5d1f0e33"))
}

fn targets() -> Vec<Target> {
    vec![
        Target::User(id("sip:bob@mc-b.example")),
        Target::FunctionalAlias(id("sip:duty-officer@mc-b.example")),
        Target::PartnerServer,
    ]
}

fn requests() -> Vec<AcmRequest> {
    let bodies = [
        AcmRequestBody::provision([
            id("sip:fire-ops@mc-a.example"),
            id("sip:%61lice%2f1@MC-A.example"),
        ]),
        AcmRequestBody::membership(
            id("sip:fire-ops@mc-a.example"),
            [id("sip:carol@mc-b.example")],
            acm_core::MembershipOperation::Delete,
            Some(acm_core::Urgency::Urgent),
        ),
        AcmRequestBody::migration(
            [id("sip:erin@mc-a.example")],
            acm_core::MigrationOperation::Remove,
        ),
    ];
    targets()
        .into_iter()
        .zip([Some(id("sip:dispatcher@mc-a.example")), None, None])
        .enumerate()
        .flat_map(|(i, (target, requester_alias))| {
            bodies.clone().into_iter().map(move |body| AcmRequest {
                request_id: request_id(u8::try_from(i).unwrap_or(0)),
                requester: id("sip:alice@mc-a.example"),
                requester_alias: requester_alias.clone(),
                partner: id("mc-b.example"),
                target: target.clone(),
                body,
            })
        })
        .collect()
}

fn domain_errors() -> Vec<DomainError> {
    let user: McServiceId = id("sip:bob@mc-b.example");
    let system: SystemId = id("mc-b.example");
    vec![
        DomainError::EmptyUserList,
        DomainError::DuplicateUser { user: user.clone() },
        DomainError::TooManyUsers {
            count: 257,
            max: 256,
        },
        DomainError::UserOutsidePartner {
            user: user.clone(),
            partner: system.clone(),
        },
        DomainError::UserNotOfRequesterSystem { user: user.clone() },
        DomainError::TargetMustBeUserOrAlias,
        DomainError::UserResultsMismatch,
        DomainError::EmptyGroupList,
        DomainError::DuplicateGroup {
            group: id("sip:fire-ops@mc-a.example"),
        },
        DomainError::TooManyGroups { count: 65, max: 64 },
        DomainError::TargetOutsidePartner {
            partner: system.clone(),
        },
        DomainError::ReasonTooLong {
            len: 2000,
            max: 1024,
        },
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
        DomainError::MessageIdReused {
            message_id: message_id(1),
        },
        DomainError::ResponderNotOfSender {
            system: system.clone(),
        },
        DomainError::AliasNotHeld {
            alias: id("sip:duty-officer@mc-b.example"),
            user: user.clone(),
        },
        DomainError::NotARecipient { user: user.clone() },
        DomainError::NotDelivered { user: user.clone() },
        DomainError::Closed {
            closure: Closure::Answered,
        },
        DomainError::Closed {
            closure: Closure::VerificationFailed,
        },
        DomainError::ResponseExists,
        DomainError::UnexpectedMessage {
            message_id: message_id(2),
        },
        DomainError::NotTheRequester { user },
        DomainError::NoPendingResponse,
        DomainError::NotWithdrawable,
        DomainError::NotAccepted,
        DomainError::NotDue,
        DomainError::NotAwaitingAck,
    ]
}

fn failures() -> Vec<VerificationFailure> {
    let user: McServiceId = id("sip:bob@mc-b.example");
    let mut all = vec![
        VerificationFailure::UnknownTarget { user: user.clone() },
        VerificationFailure::TargetMayNotReceive { user },
        VerificationFailure::AliasNotHeld {
            alias: id("sip:duty-officer@mc-b.example"),
        },
        VerificationFailure::NoAdministrator,
        VerificationFailure::NoEligibleRecipient,
        VerificationFailure::TargetNotInThisSystem,
        VerificationFailure::NotAddressedToThisSystem {
            partner: id("mc-c.example"),
        },
        VerificationFailure::RequesterNotOfSender,
        VerificationFailure::GroupNotHomedAtPrimary {
            group: id("sip:fire-ops@mc-a.example"),
        },
    ];
    all.extend(
        domain_errors()
            .into_iter()
            .take(3)
            .map(|error| VerificationFailure::Malformed { error }),
    );
    all
}

fn responses() -> Vec<AcmResponse> {
    let mut reasons = vec![
        RejectionReason::User {
            text: Some("not today".into()),
        },
        RejectionReason::User { text: None },
        RejectionReason::Policy,
        RejectionReason::Expired,
    ];
    reasons.extend(
        failures()
            .into_iter()
            .map(|failure| RejectionReason::Verification { failure }),
    );
    let mut outcomes = vec![Outcome::Accepted];
    outcomes.extend(
        reasons
            .into_iter()
            .map(|reason| Outcome::Rejected { reason }),
    );
    let responders = [
        Responder::User {
            id: id("sip:bob@mc-b.example"),
            alias: Some(id("sip:duty-officer@mc-b.example")),
        },
        Responder::User {
            id: id("sip:bob@mc-b.example"),
            alias: None,
        },
        Responder::Server {
            system: id("mc-b.example"),
        },
    ];
    outcomes
        .into_iter()
        .enumerate()
        .map(|(i, outcome)| AcmResponse {
            responder: responders[i % responders.len()].clone(),
            user_results: if outcome.is_accepted() && i % 2 == 0 {
                std::sync::Arc::from([
                    acm_core::UserResult::Applied {
                        user: id("sip:carol@mc-b.example"),
                    },
                    acm_core::UserResult::Refused {
                        user: id("sip:zoe@mc-b.example"),
                        reason: acm_core::UserRefusal::UnknownUser,
                    },
                ])
            } else {
                std::sync::Arc::default()
            },
            outcome,
        })
        .collect()
}

fn refusals() -> Vec<AuthorizationRefusal> {
    vec![
        AuthorizationRefusal::NotAPartner {
            partner: id("mc-c.example"),
        },
        AuthorizationRefusal::NotAuthorized {
            user: id("sip:mallory@mc-a.example"),
            partner: id("mc-b.example"),
        },
        AuthorizationRefusal::GroupNotHomedHere {
            group: id("sip:x@mc-c.example"),
        },
        AuthorizationRefusal::AliasNotHeld {
            alias: id("sip:dispatcher@mc-a.example"),
            user: id("sip:alice@mc-a.example"),
        },
    ]
}

#[test]
#[allow(clippy::too_many_lines)] // one sample list per body
fn the_bodies_the_servers_read_have_the_schemas_serde_reads() {
    let doc = Doc::new();
    let mut checked = 0;
    let submissions: Vec<ProvisionSubmission> = targets()
        .into_iter()
        .enumerate()
        .map(|(i, target)| ProvisionSubmission {
            partner: id("mc-b.example"),
            target,
            groups: vec![id("sip:fire-ops@mc-a.example")],
            requester_alias: (i == 0).then(|| id("sip:dispatcher@mc-a.example")),
            requester: (i == 1).then(|| id("sip:alice@mc-a.example")),
        })
        .collect();
    checked += read_exactly(&doc, "ProvisionSubmission", &submissions);
    let memberships: Vec<MembershipSubmission> = targets()
        .into_iter()
        .enumerate()
        .map(|(i, target)| MembershipSubmission {
            partner: id("mc-b.example"),
            target,
            group: id("sip:fire-ops@mc-a.example"),
            users: vec![id("sip:carol@mc-b.example"), id("sip:dave@mc-b.example")],
            operation: if i == 0 {
                acm_core::MembershipOperation::Add
            } else {
                acm_core::MembershipOperation::Delete
            },
            urgency: (i == 1).then_some(acm_core::Urgency::Emergency),
            requester_alias: (i == 0).then(|| id("sip:dispatcher@mc-a.example")),
            requester: (i == 2).then(|| id("sip:alice@mc-a.example")),
        })
        .collect();
    checked += read_exactly(&doc, "MembershipSubmission", &memberships);
    let migrations: Vec<MigrationSubmission> = targets()
        .into_iter()
        .enumerate()
        .map(|(i, target)| MigrationSubmission {
            partner: id("mc-b.example"),
            target,
            users: vec![id("sip:erin@mc-a.example")],
            operation: if i == 0 {
                acm_core::MigrationOperation::Add
            } else {
                acm_core::MigrationOperation::Remove
            },
            requester_alias: (i == 0).then(|| id("sip:dispatcher@mc-a.example")),
            requester: (i == 1).then(|| id("sip:alice@mc-a.example")),
        })
        .collect();
    checked += read_exactly(&doc, "MigrationSubmission", &migrations);
    // Members a variant does not have, which the mutations above never add.
    for (target, note) in [
        (
            json!({"kind": "partner_server", "id": null}),
            "a unit target with a null id",
        ),
        (
            json!({"kind": "partner_server", "id": "sip:bob@mc-b.example"}),
            "a unit target with an id",
        ),
        (json!({"kind": "user"}), "a user target without an id"),
    ] {
        let mut changed = to_json(&submissions[0]);
        changed["target"] = target;
        assert_eq!(
            doc.valid_as(&changed, "ProvisionSubmission"),
            reads::<ProvisionSubmission>(&changed),
            "{note}: {changed}"
        );
        checked += 1;
    }
    let answers = [
        ResponseSubmission {
            decision: DecisionKind::Accept,
            reason: None,
            responder_alias: Some(id("sip:duty-officer@mc-b.example")),
        },
        ResponseSubmission {
            decision: DecisionKind::Reject,
            reason: Some("not today".into()),
            responder_alias: None,
        },
        ResponseSubmission {
            decision: DecisionKind::Reject,
            reason: None,
            responder_alias: None,
        },
    ];
    // The handler refuses a reason with an acceptance; the schema says so, serde does not.
    let handler_reads = |value: &Value| {
        serde_json::from_value::<ResponseSubmission>(value.clone())
            .is_ok_and(|body| !(body.decision == DecisionKind::Accept && body.reason.is_some()))
    };
    for answer in &answers {
        let value = to_json(answer);
        assert!(doc.valid_as(&value, "ResponseSubmission"), "{value}");
        let mut accept_with_reason = value.clone();
        accept_with_reason["decision"] = json!("accept");
        accept_with_reason["reason"] = json!("why");
        let mut changes = mutations(&value, true);
        changes.push(("accept with a reason".into(), accept_with_reason));
        for (path, changed) in changes {
            assert_eq!(
                doc.valid_as(&changed, "ResponseSubmission"),
                handler_reads(&changed),
                "ResponseSubmission {path}: {changed}"
            );
            checked += 1;
        }
    }
    let items: Vec<DownloadedItem> = vec![
        DownloadedItem::Request(request_id(1)),
        DownloadedItem::Response(request_id(2)),
        DownloadedItem::Undeliverable(request_id(3)),
        DownloadedItem::WithdrawalOutcome(request_id(4)),
    ];
    checked += read_exactly(&doc, "Acknowledgement", &[Acknowledgement { items }]);
    let forwarded: Vec<ForwardedRequest> = requests()
        .into_iter()
        .enumerate()
        .map(|(i, request)| ForwardedRequest {
            message_id: message_id(u8::try_from(i).unwrap_or(0)),
            request,
        })
        .collect();
    checked += read_exactly(&doc, "ForwardedRequest", &forwarded);
    let answered: Vec<ForwardedResponse> = responses()
        .into_iter()
        .map(|response| ForwardedResponse {
            message_id: message_id(9),
            request_id: request_id(9),
            response,
        })
        .collect();
    checked += read_exactly(&doc, "ForwardedResponse", &answered);
    checked += read_exactly(
        &doc,
        "ForwardedWithdrawal",
        &[ForwardedWithdrawal {
            message_id: message_id(3),
            request_id: request_id(3),
        }],
    );
    assert!(checked > 800, "only {checked} changes checked");
}

#[test]
#[allow(clippy::too_many_lines)] // one sample list per body
fn the_bodies_the_servers_write_match_their_schemas() {
    let doc = Doc::new();
    let mut checked = 0;
    let bob: McServiceId = id("sip:bob@mc-b.example");
    let at = chrono::DateTime::parse_from_rfc3339("2026-05-01T10:00:00.123456789Z")
        .unwrap_or_else(|e| panic!("{e}"))
        .to_utc();
    let requests: Vec<std::sync::Arc<AcmRequest>> =
        requests().into_iter().map(std::sync::Arc::new).collect();
    let mut items = Vec::new();
    for request in &requests {
        items.push(PendingItem::Request {
            request: request.clone(),
            from: id("mc-a.example"),
            stored_at: at,
        });
        items.push(PendingItem::Undeliverable {
            request: request.clone(),
        });
        items.push(PendingItem::WithdrawalOutcome {
            request: request.clone(),
            withdrawn: true,
        });
    }
    for response in responses() {
        items.push(PendingItem::Response {
            request: requests[0].clone(),
            response,
        });
    }
    checked += written(
        &doc,
        "PendingAcmData",
        &[
            PendingAcmData {
                mc_service_id: bob.clone(),
                items,
            },
            PendingAcmData {
                mc_service_id: bob.clone(),
                items: vec![],
            },
        ],
    );
    checked += written(
        &doc,
        "PendingAcmDataNotification",
        &[PendingAcmDataNotification { mc_service_id: bob }],
    );
    checked += written(
        &doc,
        "SubmissionAccepted",
        &[SubmissionAccepted {
            request_id: request_id(1),
            status: "queued".into(),
        }],
    );
    checked += written(
        &doc,
        "WithdrawalAccepted",
        &[WithdrawalAccepted {
            request_id: request_id(1),
            status: "withdrawal_requested".into(),
        }],
    );
    checked += written(
        &doc,
        "AcknowledgementRecorded",
        &[AcknowledgementRecorded { recorded: 2 }],
    );
    let acks = [
        PartnerAck::Stored,
        PartnerAck::Withdrawn,
        PartnerAck::TooLate,
    ];
    let acks: Vec<PartnerAckBody> = acks.into_iter().map(|ack| PartnerAckBody { ack }).collect();
    checked += written(&doc, "PartnerAckBody", &acks);
    let request = &requests[0];
    let statuses: Vec<RequestStatus> = [
        ("refused", Some(refusals()[1].code()), None),
        ("queued", None, None),
        ("answered", None, responses().into_iter().next()),
    ]
    .into_iter()
    .map(|(stage, refusal, response)| RequestStatus {
        request_id: request.request_id,
        kind: request.body.kind(),
        stage: stage.into(),
        partner: request.partner.clone(),
        target: request.target.clone(),
        groups: request.body.groups().to_vec(),
        users: request.body.users().to_vec(),
        submitted_at: at,
        refusal: refusal.map(str::to_owned),
        withdrawal: "none".into(),
        response,
        delivered: false,
    })
    .collect();
    checked += written(&doc, "RequestStatus", &statuses);
    checked += written(&doc, "AuthorizationRefusal", &refusals());
    checked += written(&doc, "DomainError", &domain_errors());
    assert!(checked > 500, "only {checked} changes checked");
}

#[test]
fn problems_as_the_servers_write_them_match_the_problem_schema() {
    let doc = Doc::new();
    let mut problems: Vec<Problem> = domain_errors()
        .iter()
        .map(|error| {
            Problem::new(error.code(), 409, "title")
                .with_detail(error.to_string())
                .with("error", error)
        })
        .collect();
    for reason in refusals() {
        problems.push(
            Problem::new("authorization_refused", 403, "title")
                .with_detail(reason.to_string())
                .with("request_id", request_id(1))
                .with("refusal", reason.code())
                .with("reason", &reason),
        );
    }
    problems.push(
        Problem::new("idempotency_key_reused", 422, "title")
            .with_detail("again")
            .with("request_id", request_id(2)),
    );
    for problem in &problems {
        let value = to_json(problem);
        assert!(doc.valid_as(&value, "Problem"), "{value}");
    }
    // Members the servers never write are refused, so a new one has to be documented.
    let mut stray = to_json(&problems[0]);
    stray["retry_after_seconds"] = json!(1);
    assert!(!doc.valid_as(&stray, "Problem"));
    let mut untyped = to_json(&problems[0]);
    untyped["type"] = json!("about:blank");
    assert!(!doc.valid_as(&untyped, "Problem"));
}

#[test]
fn each_problem_response_names_only_kinds_of_its_status() {
    let doc = Doc::new();
    let mut responses = 0;
    let mut codes_seen = BTreeSet::new();
    for (path, item) in doc.0["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            for (status, response) in operation["responses"].as_object().into_iter().flatten() {
                let Some(schema) =
                    response.pointer("/content/application~1problem+json/schema/allOf/1")
                else {
                    assert!(
                        status.starts_with('2'),
                        "{method} {path} {status}: not a problem"
                    );
                    continue;
                };
                responses += 1;
                let status: u16 = status.parse().unwrap_or_else(|e| panic!("{status}: {e}"));
                assert_eq!(schema["properties"]["status"]["enum"], json!([status]));
                for t in schema["properties"]["type"]["enum"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let code = t
                        .as_str()
                        .and_then(|t| t.strip_prefix("urn:acm:problem:"))
                        .unwrap_or_else(|| panic!("{t}"));
                    let kind = PROBLEM_KINDS
                        .iter()
                        .find(|k| k.code == code)
                        .unwrap_or_else(|| panic!("{method} {path}: `{code}` is no problem kind"));
                    assert_eq!(kind.status, status, "{method} {path}: {code}");
                    let titles = &schema["properties"]["title"]["enum"];
                    assert!(
                        titles
                            .as_array()
                            .is_some_and(|t| t.contains(&json!(kind.title))),
                        "{method} {path}: {code}'s title"
                    );
                    codes_seen.insert(code);
                }
                if status == 503 {
                    assert!(response["headers"]["Retry-After"].is_object());
                }
            }
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| r.contains_key("500")),
                "{method} {path} documents no 500"
            );
        }
    }
    assert!(responses > 40, "{responses} problem responses");
    // Every kind is answered by some operation but those of the routing and the operations
    // routes, and the lifecycle's refusals of commands no call gives (the duties' and the
    // acknowledgement's, which skips what is not pending).
    let no_operation = [
        "not_found",
        "method_not_allowed",
        "not_ready",
        "unexpected_message",
        "no_pending_response",
        "not_accepted",
        "not_due",
        "not_awaiting_ack",
    ];
    for kind in PROBLEM_KINDS {
        if !no_operation.contains(&kind.code) {
            assert!(
                codes_seen.contains(kind.code),
                "no operation lists {}",
                kind.code
            );
        }
    }
}

/// Whether serde reads a JSON value as one identifier type.
type Parses = fn(&Value) -> bool;

/// Spellings of identifiers, good and bad: each id type's pattern must take exactly those its
/// parser takes.
fn spellings() -> Vec<String> {
    let long_label = "a".repeat(63);
    let mut all: Vec<String> = [
        "sip:alice@mc-a.example",
        "sips:alice@mc-a.example",
        "sip:%61lice%2f1@MC-A.example",
        "sip:a-_.!~*'()&=+$,;?/@x.y",
        "sip:al%00ice@mc-a.example",
        "sip:al%0Gice@mc-a.example",
        "sip:al%4@mc-a.example",
        "sip:al ice@mc-a.example",
        "sip:al\u{7f}ice@mc-a.example",
        "sip:álice@mc-a.example",
        "sip:alice@@mc-a.example",
        "sip:a@b@mc-a.example",
        "sip:alice:pw@mc-a.example",
        "sip:<alice>@mc-a.example",
        "sip:\"a\"@mc-a.example",
        "sip:@mc-a.example",
        "sip:alice@",
        "sip:alice",
        "sip:mc-a.example",
        "tel:alice@mc-a.example",
        "SIP:alice@mc-a.example",
        "alice@mc-a.example",
        "sip:alice@-mc.example",
        "sip:alice@mc-.example",
        "sip:alice@mc..example",
        "sip:alice@mc.example.",
        "sip:alice@mc_a.example",
        "sip:alice@10.0.0.1",
        "sip:alice@[::1]",
        "sip:alice@mc-a.example;transport=tcp",
        "sip:alice@mc-a.example:5060",
        "mc-a.example",
        "MC-B.Example",
        "localhost",
        "a",
        "-a",
        "a-",
        "a.b-c.d",
        "a b",
        "",
        " ",
        "a\n",
        "01890a5d-ac96-774b-bcce-b302099a8057",
        "01890A5D-AC96-774B-BCCE-B302099A8057",
        "{01890a5d-ac96-774b-bcce-b302099a8057}",
        "urn:uuid:01890a5d-ac96-774b-bcce-b302099a8057",
        "URN:UUID:01890a5d-ac96-774b-bcce-b302099a8057",
        "01890a5dac96774bbcceb302099a8057",
        "01890a5d-ac96-474b-bcce-b302099a8057",
        "01890a5d-ac96-774b-bcce-b302099a805",
        "01890a5d-ac96-774b-bcce-b302099a80577",
        "01890a5d-ac96-774b-bcce-b302099a805g",
        "01890a5dac96-774b-bcce-b302099a8057",
        "{01890a5d-ac96-774b-bcce-b302099a8057",
        "00000000-0000-7000-0000-000000000000",
        "retry-7f3a",
        "!~",
        "tab\there",
        "\u{e9}",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    all.push(format!("sip:a@{long_label}.example"));
    all.push(format!("sip:a@{long_label}a.example"));
    all.push(format!("{long_label}.example"));
    all.push(format!("{long_label}a.example"));
    all.push(format!("sip:{}@mc-a.example", "u".repeat(239)));
    all.push(format!("sip:{}@mc-a.example", "u".repeat(240)));
    let labels = |n: usize| vec![long_label.as_str(); n].join(".");
    all.push(labels(4));
    all.push(format!("{}.ab", labels(3)));
    all.push(format!("{}.a", labels(3)));
    all.push("k".repeat(255));
    all.push("k".repeat(256));
    all
}

#[test]
fn the_identifier_patterns_take_what_the_parsers_take() {
    let doc = Doc::new();
    let cases: &[(&str, Parses)] = &[
        ("McServiceId", reads::<McServiceId>),
        ("GroupId", reads::<GroupId>),
        ("FunctionalAlias", reads::<FunctionalAlias>),
        ("SystemId", reads::<SystemId>),
        ("RequestId", reads::<RequestId>),
        ("MessageId", reads::<MessageId>),
        ("IdempotencyKey", reads::<IdempotencyKey>),
    ];
    for (name, parses) in cases {
        let mut accepted = 0;
        for spelling in spellings() {
            let value = json!(spelling);
            let parsed = parses(&value);
            assert_eq!(
                doc.valid_as(&value, name),
                parsed,
                "{name}: {spelling:?} (the parser says {parsed})"
            );
            accepted += usize::from(parsed);
        }
        assert!(
            accepted >= 2,
            "{name}: the corpus has too few good spellings"
        );
    }
    // What serde writes is the canonical form, which the pattern takes too.
    let canonical: McServiceId = id("sip:%61lice%2f1@MC-A.example");
    assert!(doc.valid_as(&to_json(&canonical), "McServiceId"));
}
