//! `docs/openapi.json` is the `OpenAPI` document the servers serve at `/openapi.json`; this
//! test fails when the copy is stale. `ACM_BLESS=1 cargo test -p acm-transport-http --test
//! openapi` rewrites it.

use std::path::Path;

use acm_transport_http::{PROBLEM_KINDS, openapi_document};

fn current() -> String {
    let doc = serde_json::to_value(openapi_document()).unwrap_or_else(|e| panic!("{e}"));
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|e| panic!("{e}"));
    text.push('\n');
    text
}

#[test]
fn docs_openapi_json_is_the_served_document() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let now = current();
    if std::env::var_os("ACM_BLESS").is_some() {
        std::fs::write(&path, &now).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let kept = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        kept == now,
        "docs/openapi.json is stale: run `ACM_BLESS=1 cargo test -p acm-transport-http --test openapi`"
    );
}

#[test]
fn the_document_lists_every_route_and_every_problem_type() {
    let doc = serde_json::to_value(openapi_document()).unwrap_or_else(|e| panic!("{e}"));
    let paths = doc["paths"]
        .as_object()
        .map(serde_json::Map::len)
        .unwrap_or_default();
    assert_eq!(paths, 12, "nine client routes and three partner routes");
    let description = doc["info"]["description"].as_str().unwrap_or_default();
    for kind in PROBLEM_KINDS {
        assert!(
            description.contains(&format!("| `{}` | {} |", kind.code, kind.status)),
            "{} is not documented",
            kind.code
        );
    }
    for scheme in ["bearer", "mutual_tls"] {
        assert!(
            doc["components"]["securitySchemes"][scheme].is_object(),
            "{scheme}"
        );
    }
}

#[test]
fn docs_http_md_lists_every_problem_type() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/http.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for kind in PROBLEM_KINDS {
        assert!(
            text.contains(&format!(
                "| `{}` | {} | {} |",
                kind.code, kind.status, kind.title
            )),
            "docs/http.md does not list {}",
            kind.code
        );
    }
}
