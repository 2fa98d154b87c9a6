//! What a partner's HTTP answer means for the relay: an acknowledgement, a refusal (retrying
//! the same message will not help), or no usable answer (try again later).

use acm_core::{DomainError, PartnerAck, PartnerProblem, SystemId, TransportError};
use reqwest::StatusCode;

use crate::problem::{PROBLEM_JSON, Problem};
use crate::wire::PartnerAckBody;

/// The problem type of a refusal that carries no problem details (RFC 9457 §4.2.1: an
/// absent type means `about:blank`).
pub(super) const BLANK_PROBLEM_TYPE: &str = "about:blank";

/// The meaning of an answer with `status`, `content_type` and `body` from partner `system`.
pub(super) fn answer(
    system: &SystemId,
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<PartnerAck, TransportError> {
    if status == StatusCode::OK {
        return serde_json::from_slice::<PartnerAckBody>(body)
            .map(|body| body.ack)
            .map_err(|e| {
                unreachable(
                    system,
                    format!("HTTP {status} with an unreadable acknowledgement: {e}"),
                )
            });
    }
    let problem = problem(content_type, body);
    // A time-out or a rate limit says nothing about the message itself: the relay retries.
    let retry_later =
        status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS;
    if status.is_client_error() && !retry_later {
        return Err(TransportError::Refused {
            system: system.clone(),
            problem: refusal(problem),
        });
    }
    let summary = problem.map_or_else(String::new, |p| {
        let said = p.detail.as_deref().unwrap_or(&p.title);
        format!(": {} ({said})", p.problem_type)
    });
    Err(unreachable(system, format!("HTTP {status}{summary}")))
}

/// A refusal's reason: the domain error the partner's problem carries in its `error`
/// extension, else the problem's type.
fn refusal(problem: Option<Problem>) -> PartnerProblem {
    let Some(problem) = problem else {
        return PartnerProblem::Other {
            problem_type: BLANK_PROBLEM_TYPE.into(),
        };
    };
    match problem
        .extensions
        .get("error")
        .map(|error| serde_json::from_value::<DomainError>(error.clone()))
    {
        Some(Ok(error)) => PartnerProblem::Domain(error),
        _ => PartnerProblem::Other {
            problem_type: problem.problem_type,
        },
    }
}

/// The problem details of a body labelled `application/problem+json`, if it parses.
fn problem(content_type: Option<&str>, body: &[u8]) -> Option<Problem> {
    let media_type = content_type?.split(';').next()?.trim();
    if !media_type.eq_ignore_ascii_case(PROBLEM_JSON) {
        return None;
    }
    serde_json::from_slice(body).ok()
}

pub(super) fn unreachable(system: &SystemId, detail: String) -> TransportError {
    TransportError::Unreachable {
        system: system.clone(),
        detail,
    }
}
