//! The `OpenAPI` document, generated from the handlers; `docs/openapi.json` is a copy that a
//! test keeps current.

use std::fmt::Write as _;

use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::problems::PROBLEM_KINDS;
use super::{client, notify, partner};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "acm: administrative configuration management between interconnected MC systems",
        description = "The ACM client API (an ACM client and its own ACM server) and the partner API (ACM server to partner ACM server, mutual TLS) of TS 23.280 interconnection group identity provision."
    ),
    paths(
        client::submit,
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
        crate::problem::Problem,
        crate::wire::ProvisionSubmission,
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
    )),
    tags(
        (name = "client", description = "ACM client → its own ACM server (HTTPS, bearer access token)"),
        (name = "partner", description = "ACM server → partner ACM server (HTTPS, mutual TLS; the sender is the system its certificate names)"),
    )
)]
struct ApiDoc;

/// The document: the derived paths and schemas, the two security schemes, and the table of
/// problem types.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    if let Some(components) = doc.components.as_mut() {
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
    }
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
