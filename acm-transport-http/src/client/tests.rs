#![allow(clippy::unwrap_used)]

use super::sse::{Dispatch, Event, SseParser, TooLong};
use super::*;

fn parse(chunks: &[&[u8]]) -> Vec<Dispatch> {
    let mut parser = SseParser::default();
    for chunk in chunks {
        parser.feed(chunk).unwrap();
    }
    std::iter::from_fn(|| parser.next_dispatch()).collect()
}

fn event(id: &str, name: &str, data: &str) -> Dispatch {
    Dispatch {
        last_event_id: id.to_owned(),
        event: Some(Event {
            name: name.to_owned(),
            data: data.to_owned(),
        }),
    }
}

fn id_only(id: &str) -> Dispatch {
    Dispatch {
        last_event_id: id.to_owned(),
        event: None,
    }
}

#[test]
fn lf_crlf_and_cr_each_end_a_line() {
    let stream = b"data: lf\n\ndata: crlf\r\n\r\ndata: cr\r\rdata: mixed\r\n\n";
    assert_eq!(
        parse(&[stream]),
        vec![
            event("", "message", "lf"),
            event("", "message", "crlf"),
            event("", "message", "cr"),
            event("", "message", "mixed"),
        ]
    );
}

#[test]
fn a_crlf_split_between_chunks_is_one_line_end() {
    // Were the LF at the start of a chunk taken for a second line end, "a" would be
    // dispatched alone (a blank line) before "b".
    assert_eq!(
        parse(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]),
        vec![event("", "message", "a\nb")]
    );
}

#[test]
fn a_stream_fed_byte_by_byte_parses_as_a_whole() {
    let stream: &[u8] = b"\xEF\xBB\xBF: hello\r\nevent: pending-acm-data-notification\r\nid: 1\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\nid: 2\r\r: keep-alive\n\nevent: other\ndata: x\n\n";
    let whole = parse(&[stream]);
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(parse(&bytes), whole);
    assert_eq!(
        whole,
        vec![
            event("1", NOTIFICATION_EVENT_NAME, "{\"a\":\n1}"),
            id_only("2"),
            event("2", "other", "x"),
        ]
    );
}

const NOTIFICATION_EVENT_NAME: &str = crate::wire::client_routes::NOTIFICATION_EVENT;

#[test]
fn data_lines_join_with_newlines_and_lose_one_leading_space() {
    let stream = b"data: first\ndata:second\ndata\ndata:  two spaces\ndata: \n\n";
    assert_eq!(
        parse(&[stream]),
        vec![event("", "message", "first\nsecond\n\n two spaces\n")]
    );
}

#[test]
fn comments_and_unknown_fields_are_ignored() {
    let stream =
        b": keep-alive\n\n:\n\nfoo: bar\ndata : not data\nDATA: not data\n\n:x\ndata: 1\n\n";
    assert_eq!(parse(&[stream]), vec![event("", "message", "1")]);
}

#[test]
fn an_id_without_data_moves_the_last_event_id_and_dispatches_no_event() {
    let stream = b"id: 7\n\ndata: after\n\nid\n\ndata: cleared\n\n";
    assert_eq!(
        parse(&[stream]),
        vec![
            id_only("7"),
            // The id outlives the dispatch: an event without `id:` carries the last one.
            event("7", "message", "after"),
            // `id` with no value clears it.
            id_only(""),
            event("", "message", "cleared"),
        ]
    );
}

#[test]
fn an_id_with_nul_is_ignored() {
    assert_eq!(
        parse(&[b"id: 3\n\nid: 4\0\ndata: x\n\n"]),
        vec![id_only("3"), event("3", "message", "x")]
    );
}

#[test]
fn the_event_name_is_reset_after_each_dispatch() {
    assert_eq!(
        parse(&[b"event: a\ndata: 1\n\ndata: 2\n\nevent: b\n\ndata: 3\n\n"]),
        vec![
            event("", "a", "1"),
            event("", "message", "2"),
            // A name with no data dispatches nothing and is forgotten.
            event("", "message", "3"),
        ]
    );
}

#[test]
fn an_unfinished_event_is_not_dispatched() {
    assert_eq!(
        parse(&[b"data: 1\n\ndata: 2\n"]),
        vec![event("", "message", "1")]
    );
}

#[test]
fn a_byte_order_mark_is_skipped_only_at_the_start() {
    let mut parser = SseParser::default();
    parser.feed(b"\xEF\xBB").unwrap();
    parser
        .feed(b"\xBFdata: 1\n\n\xEF\xBB\xBFdata: 2\n\n")
        .unwrap();
    assert_eq!(
        std::iter::from_fn(|| parser.next_dispatch()).collect::<Vec<_>>(),
        // The second BOM makes the field name "\u{feff}data": unknown, ignored.
        vec![event("", "message", "1")]
    );
}

#[test]
fn retry_takes_digits_only() {
    let mut parser = SseParser::default();
    parser
        .feed(b"retry: 1500\n\nretry: 2s\nretry: -1\nretry:\n\n")
        .unwrap();
    assert_eq!(parser.retry(), Some(Duration::from_millis(1500)));
}

#[test]
fn invalid_utf8_is_replaced_not_refused() {
    assert_eq!(
        parse(&[b"data: a\xFFb\n\n"]),
        vec![event("", "message", "a\u{fffd}b")]
    );
}

#[test]
fn a_line_without_end_cannot_grow_without_bound() {
    let mut parser = SseParser::default();
    let chunk = vec![b'x'; 64 << 10];
    let result = (0..32).try_for_each(|_| parser.feed(&chunk));
    assert_eq!(result, Err(TooLong));
}

#[test]
fn data_cannot_grow_without_bound() {
    let mut parser = SseParser::default();
    let line = [b"data: ".as_slice(), &[b'x'; 1000], b"\n"].concat();
    let result = (0..2000).try_for_each(|_| parser.feed(&line));
    assert_eq!(result, Err(TooLong));
}

#[test]
fn a_resumed_parser_keeps_the_last_event_id_for_events_without_one() {
    let mut parser = SseParser::resuming("41");
    parser.feed(b"data: x\n\nid: 42\ndata: y\n\n").unwrap();
    assert_eq!(
        std::iter::from_fn(|| parser.next_dispatch()).collect::<Vec<_>>(),
        vec![event("41", "message", "x"), event("42", "message", "y")]
    );
}

fn refusal_problem(refusal: serde_json::Value) -> Problem {
    Problem::new(AUTHORIZATION_REFUSED, 403, "Refused")
        .with_detail("bob may not")
        .with("request_id", "0190a3e5-8f6b-7cc2-9d41-3c1f1f2b9a10")
        .with("refusal", refusal)
}

#[test]
fn a_refusal_is_read_from_its_tag_or_its_whole_serde_form() {
    let request_id: RequestId = "0190a3e5-8f6b-7cc2-9d41-3c1f1f2b9a10".parse().unwrap();
    let expected = Submitted::Refused {
        request_id,
        refusal: "not_authorized".to_owned(),
        detail: Some("bob may not".to_owned()),
    };
    assert_eq!(
        refused(refusal_problem(serde_json::json!("not_authorized"))).unwrap(),
        expected
    );
    assert_eq!(
        refused(refusal_problem(serde_json::json!({
            "refusal": "not_authorized", "user": "sip:bob@mc-a.example", "partner": "mc-b.example"
        })))
        .unwrap(),
        expected
    );
}

#[test]
fn a_refusal_without_its_members_is_a_decode_error() {
    let err = refused(refusal_problem(serde_json::json!(7))).unwrap_err();
    assert_eq!(err.code(), "decode");
    let mut problem = refusal_problem(serde_json::json!("not_authorized"));
    problem
        .extensions
        .insert("request_id".into(), "nope".into());
    assert_eq!(refused(problem).unwrap_err().code(), "decode");
}

#[test]
fn the_base_url_must_be_https_and_loses_its_trailing_slash() {
    assert_eq!(
        parse_base("https://acm.mc-a.example:8443/").unwrap(),
        "https://acm.mc-a.example:8443"
    );
    assert_eq!(
        parse_base("https://proxy.example/acm-a/").unwrap(),
        "https://proxy.example/acm-a"
    );
    for bad in [
        "http://acm.mc-a.example",
        "acm.mc-a.example",
        "https://a.example/?q=1",
    ] {
        assert_eq!(parse_base(bad).unwrap_err().code(), "config", "{bad}");
    }
}

#[test]
fn a_ca_file_without_certificates_is_refused() {
    let err = AcmClient::new("https://localhost", b"not a PEM", "token").unwrap_err();
    assert_eq!(err.code(), "config");
}

#[test]
fn a_token_that_is_no_header_value_gives_no_authorization() {
    assert!(bearer("eyJ.a.b").is_some());
    assert!(bearer("two\nlines").is_none());
}

#[test]
fn request_ids_fill_the_route() {
    let request_id: RequestId = "0190a3e5-8f6b-7cc2-9d41-3c1f1f2b9a10".parse().unwrap();
    assert_eq!(
        with_request_id(client_routes::WITHDRAWAL, request_id),
        "/acm/v1/requests/0190a3e5-8f6b-7cc2-9d41-3c1f1f2b9a10/withdrawal"
    );
}
