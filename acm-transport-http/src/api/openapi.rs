//! The `OpenAPI` document, generated from the handlers; `docs/openapi.json` is a copy that a
//! test keeps current.
//!
//! The bodies' schemas are derived from the wire types and acm-core's (its `openapi` feature),
//! then made to say what serde does where the derive cannot: the struct variants of enums that
//! deny unknown fields are closed (serde lets a unit variant of an internally tagged enum
//! carry unknown members, so those stay open). The error answers are not in the handlers'
//! annotations: [`PROBLEMS`] lists, per operation, every problem kind it can answer with, and
//! each status gets a response whose schema names exactly those types.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use utoipa::OpenApi;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::AdditionalProperties;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    AllOfBuilder, Components, ContentBuilder, ObjectBuilder, OneOfBuilder, Ref, RefOr, Schema, Type,
};

use super::problems::{PROBLEM_KINDS, ProblemKind, problem_kind};
use super::{client, notify, partner};
use crate::problem::{PROBLEM_JSON, PROBLEM_TYPE_PREFIX};
use crate::wire::{client_routes, partner_routes};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "acm: administrative configuration management between interconnected MC systems",
        description = "The ACM client API (an ACM client and its own ACM server) and the partner API (ACM server to partner ACM server, mutual TLS) of TS 23.280: interconnection group identity provision, group membership update and user migration management."
    ),
    paths(
        client::submit,
        client::submit_membership,
        client::submit_migration,
        client::status,
        client::withdraw,
        client::respond,
        client::pending,
        client::acknowledge,
        notify::notifications,
        partner::request,
        partner::response,
        partner::withdrawal,
    ),
    components(schemas(
        crate::wire::ProvisionSubmission,
        crate::wire::MembershipSubmission,
        crate::wire::MigrationSubmission,
        crate::wire::SubmissionAccepted,
        crate::wire::ResponseSubmission,
        crate::wire::DecisionKind,
        crate::wire::WithdrawalAccepted,
        crate::wire::Acknowledgement,
        crate::wire::AcknowledgementRecorded,
        crate::wire::RequestStatus,
        crate::wire::ForwardedRequest,
        crate::wire::ForwardedResponse,
        crate::wire::ForwardedWithdrawal,
        crate::wire::PartnerAckBody,
        acm_core::PendingAcmData,
        acm_core::PendingAcmDataNotification,
        acm_core::DomainError,
        acm_core::AuthorizationRefusal,
        acm_core::RequestId,
        acm_core::IdempotencyKey,
    )),
    tags(
        (name = "client", description = "ACM client → its own ACM server (HTTPS, bearer access token)"),
        (name = "partner", description = "ACM server → partner ACM server (HTTPS, mutual TLS; the sender is the system its certificate names)"),
    )
)]
struct ApiDoc;

/// The token problems: every 401.
const TOKEN: &str = "token_*";
/// What the call limit and its time-out answer, on either listener.
const ADMISSION: &[&str] = &["overloaded", "timeout"];
/// What a store failure is answered with.
const STORE: &[&str] = &["store_unavailable", "storage_full"];
/// A failure that is nobody's mistake but the server's (an id source that broke its promise).
const INTERNAL: &[&str] = &["internal"];
/// What reading a JSON body can fail with.
const JSON_BODY: &[&str] = &[
    "malformed_json",
    "unsupported_media_type",
    "body_too_large",
    "body_timeout",
    "invalid_body",
];
/// A `{request_id}` in the path that does not parse.
const PATH_ID: &[&str] = &["invalid_request_id"];
/// What every message of the partner API can be answered with.
const PARTNER: &[&str] = &[
    "unknown_partner",
    "directory_unavailable",
    "busy",
    "not_interconnected",
    "message_id_reused",
    "wrong_side",
];

/// What every submission (of any kind) can be answered besides its body's own refusals.
const SUBMISSION: &[&str] = &[
    "idempotency_key_missing",
    "idempotency_key_invalid",
    "requester_mismatch",
    "authorization_refused",
    "idempotency_key_reused",
    "target_outside_partner",
    "request_exists",
    "directory_unavailable",
    "busy",
];

/// The refusals of a membership update's or a migration's user list.
const USER_LIST: &[&str] = &["empty_user_list", "duplicate_user", "too_many_users"];

/// Every operation's problems, as groups of codes ([`TOKEN`] stands for every `token_*`
/// kind): the error answers the document lists. Each code is one of [`PROBLEM_KINDS`].
const PROBLEMS: &[(&str, Method, &[&[&str]])] = &[
    (
        client_routes::PROVISION_REQUESTS,
        Method::Post,
        &[
            &[TOKEN],
            ADMISSION,
            STORE,
            INTERNAL,
            JSON_BODY,
            SUBMISSION,
            &["empty_group_list", "duplicate_group", "too_many_groups"],
        ],
    ),
    (
        client_routes::MEMBERSHIP_REQUESTS,
        Method::Post,
        &[
            &[TOKEN],
            ADMISSION,
            STORE,
            INTERNAL,
            JSON_BODY,
            SUBMISSION,
            USER_LIST,
            &["user_outside_partner", "target_must_be_user_or_alias"],
        ],
    ),
    (
        client_routes::MIGRATION_REQUESTS,
        Method::Post,
        &[
            &[TOKEN],
            ADMISSION,
            STORE,
            INTERNAL,
            JSON_BODY,
            SUBMISSION,
            USER_LIST,
            &["user_not_of_requester_system"],
        ],
    ),
    (
        client_routes::REQUEST,
        Method::Get,
        &[
            &[TOKEN],
            ADMISSION,
            STORE,
            INTERNAL,
            PATH_ID,
            &["unknown_request"],
        ],
    ),
    (
        client_routes::WITHDRAWAL,
        Method::Post,
        &[
            &[TOKEN],
            ADMISSION,
            STORE,
            INTERNAL,
            PATH_ID,
            &[
                "unknown_request",
                "wrong_side",
                "not_the_requester",
                "closed",
                "not_withdrawable",
                "busy",
            ],
        ],
    ),
    (
        client_routes::RESPONSE,
        Method::Post,
        &[
            &[TOKEN],
            ADMISSION,
            STORE,
            INTERNAL,
            PATH_ID,
            JSON_BODY,
            &[
                "alias_not_held",
                "directory_unavailable",
                "reason_too_long",
                "not_stored",
                "wrong_side",
                "closed",
                "not_a_recipient",
                "not_delivered",
                "busy",
            ],
        ],
    ),
    (
        client_routes::PENDING,
        Method::Get,
        &[&[TOKEN], ADMISSION, STORE, INTERNAL, &["busy"]],
    ),
    (
        client_routes::ACKNOWLEDGEMENT,
        Method::Post,
        &[&[TOKEN], ADMISSION, STORE, INTERNAL, JSON_BODY, &["busy"]],
    ),
    (
        client_routes::NOTIFICATIONS,
        Method::Get,
        // Outside the call limit: its own limit answers `overloaded`.
        &[
            &[TOKEN],
            STORE,
            INTERNAL,
            &["invalid_last_event_id", "overloaded"],
        ],
    ),
    (
        partner_routes::PROVISION_REQUESTS,
        Method::Post,
        &[
            ADMISSION,
            STORE,
            INTERNAL,
            JSON_BODY,
            PARTNER,
            &["request_id_reused"],
        ],
    ),
    (
        partner_routes::PROVISION_RESPONSES,
        Method::Post,
        &[
            ADMISSION,
            STORE,
            INTERNAL,
            JSON_BODY,
            PARTNER,
            &[
                "unknown_request",
                "not_the_sender",
                "closed",
                "responder_not_of_sender",
                "reason_too_long",
                "response_exists",
                "user_results_mismatch",
            ],
        ],
    ),
    (
        partner_routes::WITHDRAWALS,
        Method::Post,
        &[
            ADMISSION,
            STORE,
            INTERNAL,
            JSON_BODY,
            PARTNER,
            &["unknown_request", "not_the_sender"],
        ],
    ),
];

/// The methods of [`PROBLEMS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

/// The schemas whose serde form denies unknown fields, with their tag member: their struct
/// variants are closed. `Target` is adjacently tagged and closed whole (see [`close`]).
const CLOSED_VARIANTS: &[(&str, &str)] = &[
    ("AcmRequestBody", "kind"),
    ("Responder", "kind"),
    ("VerificationFailure", "failure"),
    ("RejectionReason", "by"),
    ("Outcome", "result"),
    ("DomainError", "error"),
    ("UserResult", "result"),
];

/// The codes of a group list, [`TOKEN`] expanded.
fn codes(groups: &[&[&'static str]]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for code in groups.iter().flat_map(|group| group.iter().copied()) {
        let expanded: Vec<&'static str> = if code == TOKEN {
            PROBLEM_KINDS
                .iter()
                .map(|k| k.code)
                .filter(|c| c.starts_with("token_"))
                .collect()
        } else {
            vec![code]
        };
        for code in expanded {
            if !out.contains(&code) {
                out.push(code);
            }
        }
    }
    out
}

/// The document: the derived paths and schemas, the problems of every operation, the two
/// security schemes, and the table of problem types.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    for (path, method, groups) in PROBLEMS {
        let Some(item) = doc.paths.paths.get_mut(*path) else {
            continue;
        };
        let operation = match method {
            Method::Get => item.get.as_mut(),
            Method::Post => item.post.as_mut(),
        };
        if let Some(operation) = operation {
            add_problems(operation, &codes(groups));
        }
    }
    add_links(&mut doc);
    let components = doc.components.get_or_insert_with(Components::new);
    if let Some(RefOr::T(schema)) = components.schemas.get_mut("ResponseSubmission") {
        split_by_decision(schema);
    }
    components
        .schemas
        .insert("Problem".into(), problem_schema().into());
    for (name, tag) in CLOSED_VARIANTS {
        if let Some(RefOr::T(schema)) = components.schemas.get_mut(*name) {
            close(schema, Some(tag));
        }
    }
    if let Some(RefOr::T(schema)) = components.schemas.get_mut("Target") {
        close(schema, None);
        allow_null_id_on_unit_targets(schema);
    }
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "An access token from the MC identity management server; its MC service ID claim names the user",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "mutual_tls",
        SecurityScheme::MutualTls {
            description: Some(
                "A client certificate from a configured partner's CA that names the partner's MC system".into(),
            ),
            deprecated: None,
            extensions: None,
        },
    );
    let mut table = String::from(
        "\n\nErrors are RFC 9457 `application/problem+json`; `type` is `urn:acm:problem:<code>`:\n\n| code | status | title |\n|---|---|---|\n",
    );
    for kind in PROBLEM_KINDS {
        let _ = writeln!(
            table,
            "| `{}` | {} | {} |",
            kind.code, kind.status, kind.title
        );
    }
    let description = doc.info.description.get_or_insert_with(String::new);
    description.push_str(&table);
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc
}

/// Links from the answers that name a request to the operations on it, so a tool that
/// follows them (schemathesis's stateful phase) reaches requests that exist.
/// Each: the operation and status of the answer, where its request id is, and the ids of the
/// operations it links to.
const LINKS: &[(&str, Method, &str, &str, &[&str])] = &[
    (
        client_routes::PROVISION_REQUESTS,
        Method::Post,
        "202",
        "$response.body#/request_id",
        &["status", "withdraw"],
    ),
    (
        client_routes::MEMBERSHIP_REQUESTS,
        Method::Post,
        "202",
        "$response.body#/request_id",
        &["status", "withdraw"],
    ),
    (
        client_routes::MIGRATION_REQUESTS,
        Method::Post,
        "202",
        "$response.body#/request_id",
        &["status", "withdraw"],
    ),
    (
        client_routes::PENDING,
        Method::Get,
        "200",
        "$response.body#/items/0/request/request_id",
        &["respond"],
    ),
];

fn add_links(doc: &mut utoipa::openapi::OpenApi) {
    for (path, method, status, request_id, links) in LINKS {
        let Some(item) = doc.paths.paths.get_mut(*path) else {
            continue;
        };
        let operation = match method {
            Method::Get => item.get.as_mut(),
            Method::Post => item.post.as_mut(),
        };
        let Some(RefOr::T(response)) =
            operation.and_then(|o| o.responses.responses.get_mut(*status))
        else {
            continue;
        };
        for operation_id in *links {
            response.links.insert(
                (*operation_id).into(),
                LinkBuilder::new()
                    .operation_id(*operation_id)
                    .parameter("request_id", *request_id)
                    .build()
                    .into(),
            );
        }
    }
}

/// The handler refuses a reason with an acceptance, so the body is one of two shapes: an
/// acceptance, whose `reason` can only be `null` (serde reads that as none), or a rejection.
fn split_by_decision(schema: &mut Schema) {
    let Schema::Object(object) = schema else {
        return;
    };
    let description = object.description.take();
    let variant = |decision: &str, reason: Option<RefOr<Schema>>| {
        let mut variant = object.clone();
        variant.properties.insert(
            "decision".into(),
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([decision]))
                .into(),
        );
        if let Some(reason) = reason {
            variant.properties.insert("reason".into(), reason);
        }
        RefOr::T(Schema::Object(variant))
    };
    let accept = variant(
        "accept",
        Some(
            ObjectBuilder::new()
                .schema_type(Type::Null)
                .description(Some("An acceptance gives no reason"))
                .into(),
        ),
    );
    let reject = variant("reject", None);
    let mut one_of = OneOfBuilder::new().item(accept).item(reject);
    one_of = one_of.description(description);
    *schema = one_of.build().into();
}

/// One response per status among `codes`, whose schema is a [`problem_schema`] of exactly
/// those types; a 503 carries `Retry-After`, a 401 `WWW-Authenticate`.
fn add_problems(operation: &mut Operation, codes: &[&'static str]) {
    let mut by_status: BTreeMap<u16, Vec<ProblemKind>> = BTreeMap::new();
    for code in codes {
        // A code that is no kind stays as it is, so the document shows the mistake (under
        // 500, as the error mapping would answer it).
        let kind = PROBLEM_KINDS
            .iter()
            .find(|k| k.code == *code)
            .copied()
            .unwrap_or(ProblemKind {
                code,
                ..problem_kind("internal")
            });
        by_status.entry(kind.status).or_default().push(kind);
    }
    for (status, kinds) in by_status {
        let description = kinds
            .iter()
            .map(|k| format!("`{}`: {}", k.code, k.title))
            .collect::<Vec<_>>()
            .join("; ");
        let narrowed = ObjectBuilder::new()
            .property(
                "type",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(
                        kinds
                            .iter()
                            .map(|k| format!("{PROBLEM_TYPE_PREFIX}{}", k.code)),
                    )),
            )
            .property(
                "title",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(kinds.iter().map(|k| k.title))),
            )
            .property(
                "status",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .enum_values(Some([status])),
            );
        let schema = AllOfBuilder::new()
            .item(Ref::from_schema_name("Problem"))
            .item(narrowed);
        let mut response = ResponseBuilder::new().description(description).content(
            PROBLEM_JSON,
            ContentBuilder::new().schema(Some(schema)).build(),
        );
        if status == 503 {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .pattern(Some("^[0-9]+$")),
                    ))
                    .description(Some("Seconds to wait before trying again"))
                    .build(),
            );
        }
        if status == 401 {
            response = response.header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .description(Some("`Bearer error=\"invalid_token\"`"))
                    .build(),
            );
        }
        operation
            .responses
            .responses
            .insert(status.to_string(), response.build().into());
    }
}

/// A problem details object (RFC 9457) as acm writes it: the members every problem has, and
/// the members that depend on its type.
fn problem_schema() -> Schema {
    ObjectBuilder::new()
        .description(Some(
            "A problem details object (RFC 9457) as acm writes it; each response narrows `type`, `title` and `status` to its problem kinds",
        ))
        .property(
            "type",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(format!("^{PROBLEM_TYPE_PREFIX}[a-z_]+$")))
                .description(Some("`urn:acm:problem:<code>`")),
        )
        .required("type")
        .property(
            "title",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("The same for every problem of one type")),
        )
        .required("title")
        .property(
            "status",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .description(Some("The HTTP status code")),
        )
        .required("status")
        .property(
            "detail",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("What happened this time")),
        )
        .required("detail")
        .property(
            "error",
            RefOr::Ref(Ref::from_schema_name("DomainError")),
        )
        .property(
            "request_id",
            RefOr::Ref(Ref::from_schema_name("RequestId")),
        )
        .property("refusal", crate::wire::refusal_codes())
        .property(
            "reason",
            RefOr::Ref(Ref::from_schema_name("AuthorizationRefusal")),
        )
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .build()
        .into()
}

/// Closes the variants of a `oneOf` to unknown members: all of them without a `tag`, else
/// those with members besides the tag (serde reads a unit variant's unknown members).
fn close(schema: &mut Schema, tag: Option<&str>) {
    let Schema::OneOf(one_of) = schema else {
        return;
    };
    for variant in &mut one_of.items {
        if let RefOr::T(Schema::Object(object)) = variant {
            let unit = tag.is_some_and(|tag| object.properties.keys().all(|k| k == tag));
            if !unit {
                object.additional_properties =
                    Some(Box::new(AdditionalProperties::FreeForm(false)));
            }
        }
    }
}

/// serde reads `{"kind": "partner_server", "id": null}` as the unit target too.
fn allow_null_id_on_unit_targets(schema: &mut Schema) {
    let Schema::OneOf(one_of) = schema else {
        return;
    };
    for variant in &mut one_of.items {
        if let RefOr::T(Schema::Object(object)) = variant
            && !object.properties.contains_key("id")
        {
            object.properties.insert(
                "id".into(),
                ObjectBuilder::new().schema_type(Type::Null).into(),
            );
        }
    }
}
