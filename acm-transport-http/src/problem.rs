//! RFC 9457 problem details: the body of every error answer, with a stable `type` per kind of
//! error, so that clients and partner servers match on the type and never on the text.

use serde::{Deserialize, Serialize};

/// The media type of a problem body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The prefix of every problem type acm uses; the rest is the error's stable code.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:acm:problem:";

/// A problem details object (RFC 9457) as acm writes and reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:acm:problem:<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the kind of problem (the same for every problem of one type).
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What happened this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Members that depend on the type: `request_id`, `refusal`, `error` (a domain error's
    /// structured form), `retry_after_seconds`, …
    #[serde(flatten)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

impl Problem {
    /// A problem of type `code` with `status` and `title`.
    pub fn new(code: &str, status: u16, title: impl Into<String>) -> Self {
        Self {
            problem_type: format!("{PROBLEM_TYPE_PREFIX}{code}"),
            title: title.into(),
            status,
            detail: None,
            extensions: serde_json::Map::new(),
        }
    }

    /// The same problem with a detail.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The same problem with an extension member.
    #[must_use]
    pub fn with(mut self, name: &str, value: impl Serialize) -> Self {
        // A value that does not serialise is left out rather than failing the answer.
        if let Ok(value) = serde_json::to_value(value) {
            self.extensions.insert(name.to_owned(), value);
        }
        self
    }

    /// The stable code: the type without [`PROBLEM_TYPE_PREFIX`] (the whole type when it is
    /// not one of acm's).
    pub fn code(&self) -> &str {
        self.problem_type
            .strip_prefix(PROBLEM_TYPE_PREFIX)
            .unwrap_or(&self.problem_type)
    }
}
