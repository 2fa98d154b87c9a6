//! What each kind of partner answer becomes, and which endpoints are refused at start-up.
#![allow(clippy::unwrap_used)]

use acm_core::{DomainError, PartnerAck, PartnerProblem, SystemId, TransportError};
use reqwest::StatusCode;

use super::answer::{BLANK_PROBLEM_TYPE, answer};
use super::{HttpsPartnerTransport, PartnerEndpoint, TransportOptions};
use crate::problem::{PROBLEM_JSON, Problem};
use crate::tls::TlsError;

fn b() -> SystemId {
    "mc-b.example".parse().unwrap()
}

fn problem_body(problem: &Problem) -> Vec<u8> {
    serde_json::to_vec(problem).unwrap()
}

fn is_unreachable(outcome: &Result<PartnerAck, TransportError>) -> bool {
    matches!(outcome, Err(TransportError::Unreachable { system, .. }) if *system == b())
}

#[test]
fn an_ack_body_is_the_acknowledgement() {
    for (body, ack) in [
        (r#"{"ack":"stored"}"#, PartnerAck::Stored),
        (r#"{"ack":"withdrawn"}"#, PartnerAck::Withdrawn),
        (r#"{"ack":"too_late"}"#, PartnerAck::TooLate),
    ] {
        let outcome = answer(
            &b(),
            StatusCode::OK,
            Some("application/json"),
            body.as_bytes(),
        );
        assert_eq!(outcome, Ok(ack));
    }
}

#[test]
fn an_unreadable_ack_is_no_answer() {
    for body in [&b""[..], b"{}", br#"{"ack":"maybe"}"#, b"<html>"] {
        let outcome = answer(&b(), StatusCode::OK, Some("application/json"), body);
        assert!(is_unreachable(&outcome), "{outcome:?}");
    }
    let outcome = answer(&b(), StatusCode::NO_CONTENT, None, b"");
    assert!(
        is_unreachable(&outcome),
        "only 200 acknowledges: {outcome:?}"
    );
}

#[test]
fn a_domain_problem_is_a_domain_refusal() {
    let error = DomainError::NotInterconnected {
        system: "mc-a.example".parse().unwrap(),
    };
    let problem = Problem::new(error.code(), 403, "refused").with("error", &error);
    let outcome = answer(
        &b(),
        StatusCode::FORBIDDEN,
        Some("application/problem+json; charset=utf-8"),
        &problem_body(&problem),
    );
    assert_eq!(
        outcome,
        Err(TransportError::Refused {
            system: b(),
            problem: PartnerProblem::Domain(error),
        })
    );
}

#[test]
fn another_problem_is_refused_by_its_type() {
    let problem = Problem::new("something_new", 422, "new").with("error", "not a domain error");
    let outcome = answer(
        &b(),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(PROBLEM_JSON),
        &problem_body(&problem),
    );
    assert_eq!(
        outcome,
        Err(TransportError::Refused {
            system: b(),
            problem: PartnerProblem::Other {
                problem_type: "urn:acm:problem:something_new".into(),
            },
        })
    );
}

#[test]
fn a_4xx_without_problem_details_is_refused_as_blank() {
    let problem = problem_body(&Problem::new("x", 404, "x"));
    // Problem details are only read from a body labelled as such.
    for (content_type, body) in [
        (Some("text/plain"), &b"not found"[..]),
        (Some("application/json"), &problem[..]),
        (Some(PROBLEM_JSON), b"{not json"),
        (None, b""),
    ] {
        let outcome = answer(&b(), StatusCode::NOT_FOUND, content_type, body);
        assert_eq!(
            outcome,
            Err(TransportError::Refused {
                system: b(),
                problem: PartnerProblem::Other {
                    problem_type: BLANK_PROBLEM_TYPE.into(),
                },
            }),
            "{content_type:?}"
        );
    }
}

#[test]
fn time_outs_rate_limits_and_server_errors_are_retried() {
    let problem = Problem::new("timeout", 503, "busy").with_detail("call limit reached");
    for status in [
        StatusCode::REQUEST_TIMEOUT,
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::MOVED_PERMANENTLY,
    ] {
        let outcome = answer(&b(), status, Some(PROBLEM_JSON), &problem_body(&problem));
        assert!(is_unreachable(&outcome), "{status}: {outcome:?}");
    }
    let Err(TransportError::Unreachable { detail, .. }) = answer(
        &b(),
        StatusCode::SERVICE_UNAVAILABLE,
        Some(PROBLEM_JSON),
        &problem_body(&problem),
    ) else {
        unreachable!()
    };
    assert!(detail.contains("503"), "{detail}");
    assert!(detail.contains("call limit reached"), "{detail}");
}

#[cfg(feature = "pki")]
fn endpoint(system: &str, base_url: &str, ca_pem: &str) -> PartnerEndpoint {
    PartnerEndpoint {
        system: system.parse().unwrap(),
        base_url: base_url.into(),
        ca_pem: ca_pem.as_bytes().to_vec(),
    }
}

#[cfg(feature = "pki")]
#[test]
fn endpoints_are_checked_at_start_up() {
    use crate::pki::SystemPki;

    let a = SystemPki::generate(&"mc-a.example".parse().unwrap()).unwrap();
    let ca = SystemPki::generate(&b()).unwrap().ca_pem();
    let new =
        |partners| HttpsPartnerTransport::new(&a.identity(), partners, TransportOptions::default());

    let ok = new(vec![endpoint(
        "mc-b.example",
        "https://127.0.0.1:8443/",
        &ca,
    )])
    .unwrap();
    assert_eq!(ok.partners().collect::<Vec<_>>(), vec![&b()]);
    assert_eq!(
        ok.partners[&b()].base_url,
        "https://127.0.0.1:8443",
        "routes are appended to a base without its trailing slash"
    );
    for url in [
        "http://127.0.0.1:8443",
        "127.0.0.1:8443",
        "https://127.0.0.1:8443/?x=1",
    ] {
        let err = new(vec![endpoint("mc-b.example", url, &ca)]).unwrap_err();
        assert!(matches!(err, TlsError::BaseUrl { .. }), "{url}: {err:?}");
        assert!(err.to_string().contains(url), "{err}");
    }
    let err = new(vec![
        endpoint("mc-b.example", "https://127.0.0.1:1", &ca),
        endpoint("mc-b.example", "https://127.0.0.1:2", &ca),
    ])
    .unwrap_err();
    assert!(matches!(err, TlsError::DuplicatePartner { .. }), "{err:?}");
    let err = new(vec![endpoint(
        "mc-b.example",
        "https://127.0.0.1:1",
        "no CA",
    )])
    .unwrap_err();
    assert!(err.to_string().contains("mc-b.example"), "{err}");
}
