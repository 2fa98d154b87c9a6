//! The tamper-evident audit export: a log played through the whole procedure exports and
//! verifies, every kind of forgery an auditor must catch is named with its line, and the
//! joined timeline keeps causal order whatever the two clocks say.
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use acm_core::audit::{
    EventMeta, LineBreak, LineBreakKind, Step, export_log, joined_timeline, scan_export,
    verify_export,
};
use acm_core::chain;
use acm_core::{Decision, Target};
use acm_core::{Envelope, Event, PendingItem};
use acm_core::{GlobalPosition, RequestId};
use acm_store_memory::fixture::{TwoSystems, alice, bob};
use chrono::Duration;
use futures_executor::block_on;
use serde_json::Value;

/// Both systems' logs after the 14 steps: (A's, B's, the request).
fn played() -> (Vec<Envelope<Event>>, Vec<Envelope<Event>>, RequestId) {
    block_on(async {
        let sys = TwoSystems::new().await.unwrap();
        let request = sys.alice_provides(Target::User(bob()), 2).await.unwrap();
        sys.settle().await.unwrap();
        sys.clock.advance(Duration::hours(1));
        sys.bob_answers(request, Decision::Accept).await.unwrap();
        sys.clock.advance(Duration::hours(1));
        let data = sys.a.server.download_pending(&alice()).await.unwrap();
        let receipts: Vec<_> = data.items.iter().map(PendingItem::receipt).collect();
        let recorded = sys.a.server.acknowledge_download(&alice(), &receipts).await;
        assert_eq!(recorded.unwrap(), 1, "step 14 recorded");
        (sys.a.store.snapshot(), sys.b.store.snapshot(), request)
    })
}

fn export(log: &[Envelope<Event>]) -> String {
    let mut buf = Vec::new();
    export_log(&mut buf, log).unwrap();
    String::from_utf8(buf).unwrap()
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

fn joined(lines: &[String]) -> String {
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn broken(text: &str) -> LineBreak {
    let report = verify_export(text.as_bytes()).unwrap();
    report.broken.expect("the forgery is caught")
}

/// The line (1-based) of the first event of `event_type`.
fn line_of(lines: &[String], event_type: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(&format!("\"event_type\":\"{event_type}\"")))
        .unwrap()
        + 1
}

/// Replaces `from` by `to` on line `n` (1-based), exactly once.
fn edit(lines: &[String], n: usize, from: &str, to: &str) -> String {
    let mut lines = lines.to_vec();
    assert!(lines[n - 1].contains(from), "{from} on line {n}");
    lines[n - 1] = lines[n - 1].replacen(from, to, 1);
    joined(&lines)
}

/// Rewrites line `n` through `f` and recomputes its link, as a forger who knows the chain
/// would.
fn forge(lines: &[String], n: usize, f: impl FnOnce(&mut Value)) -> String {
    let mut lines = lines.to_vec();
    let prev = if n == 2 {
        chain::GENESIS
    } else {
        let v: Value = serde_json::from_str(&lines[n - 2]).unwrap();
        chain::from_hex(v["link"].as_str().unwrap()).unwrap()
    };
    let mut v: Value = serde_json::from_str(&lines[n - 1]).unwrap();
    f(&mut v);
    let meta: EventMeta = serde_json::from_value(v.clone()).unwrap();
    let payload = serde_json::to_string(&v["payload"]).unwrap();
    v["link"] = Value::String(chain::to_hex(
        &meta.link(&prev, payload.as_bytes()).unwrap(),
    ));
    lines[n - 1] = serde_json::to_string(&v).unwrap();
    joined(&lines)
}

#[test]
fn an_export_of_the_whole_procedure_verifies_and_reads_back_as_the_log() {
    let (a, b, _) = played();
    for log in [a, b] {
        let text = export(&log);
        let mut back = Vec::new();
        let report = scan_export(text.as_bytes(), |e| back.push(e)).unwrap();
        assert!(report.is_intact(), "{:?}", report.broken);
        assert_eq!(report.events, log.len() as u64);
        assert_eq!(back, log);
        // Every line carries its link, and the trailer the head.
        let lines = lines(&text);
        assert_eq!(lines.len(), log.len() + 2);
        let last: Value = serde_json::from_str(&lines[lines.len() - 2]).unwrap();
        let trailer: Value = serde_json::from_str(&lines[lines.len() - 1]).unwrap();
        assert_eq!(trailer["end"]["head"], last["link"]);
        assert_eq!(trailer["end"]["head"], chain::to_hex(&report.head));
        assert_eq!(trailer["end"]["count"], log.len());
    }
}

#[test]
fn every_edit_of_an_event_line_is_named_with_its_line() {
    let (a, _, _) = played();
    let lines = lines(&export(&a));
    let submitted = line_of(&lines, "submitted");
    let response = line_of(&lines, "response_received");
    let cases = [
        (
            "outcome accepted → rejected",
            edit(
                &lines,
                response,
                r#"{"result":"accepted"}"#,
                r#"{"result":"rejected","reason":{"by":"policy"}}"#,
            ),
            response,
        ),
        (
            "a group ID",
            edit(
                &lines,
                submitted,
                "sip:tac-1@mc-a.example",
                "sip:tac-9@mc-a.example",
            ),
            submitted,
        ),
        (
            "the responder",
            edit(
                &lines,
                response,
                "\"id\":\"sip:bob@mc-b.example\"",
                "\"id\":\"sip:carol@mc-b.example\"",
            ),
            response,
        ),
        (
            "the actor",
            edit(
                &lines,
                submitted,
                "\"kind\":\"user\",\"id\":\"sip:alice@mc-a.example\"",
                "\"kind\":\"user\",\"id\":\"sip:mallory@mc-a.example\"",
            ),
            submitted,
        ),
        (
            "recorded_at",
            edit(
                &lines,
                submitted,
                "\"recorded_at\":\"2026-01-01T08:00:00Z\"",
                "\"recorded_at\":\"2026-01-01T07:00:00Z\"",
            ),
            submitted,
        ),
        (
            "event_type",
            edit(
                &lines,
                response,
                "\"event_type\":\"response_received\"",
                "\"event_type\":\"response_delivered\"",
            ),
            response,
        ),
    ];
    for (what, text, line) in cases {
        assert_eq!(
            broken(&text),
            LineBreak {
                line,
                kind: LineBreakKind::Edited
            },
            "{what}"
        );
    }
}

#[test]
fn a_time_rewritten_as_a_leap_second_does_not_verify() {
    // 07:59:60 counts the same nanoseconds as 08:00:00, so the link alone would not change.
    let (a, _, _) = played();
    let lines = lines(&export(&a));
    let n = line_of(&lines, "submitted");
    let text = edit(
        &lines,
        n,
        "\"recorded_at\":\"2026-01-01T08:00:00Z\"",
        "\"recorded_at\":\"2026-01-01T07:59:60Z\"",
    );
    match broken(&text) {
        LineBreak {
            line,
            kind: LineBreakKind::Malformed { detail },
        } => {
            assert_eq!(line, n);
            assert!(detail.contains("leap second"), "{detail}");
        }
        other => panic!("expected a malformed line, got {other:?}"),
    }
}

#[test]
fn a_type_that_contradicts_its_payload_is_caught_even_with_a_recomputed_link() {
    let (a, _, _) = played();
    let lines = lines(&export(&a));
    let n = line_of(&lines, "authorized");
    let text = forge(&lines, n, |v| v["event_type"] = "forwarded".into());
    assert_eq!(
        broken(&text),
        LineBreak {
            line: n,
            kind: LineBreakKind::TypeContradictsPayload {
                event_type: "forwarded".into(),
                payload_type: "authorized".into()
            }
        }
    );
    // A line re-linked by a forger breaks the next line's link.
    let text = forge(&lines, n, |v| {
        v["recorded_at"] = "2026-01-01T07:00:00Z".into();
    });
    assert_eq!(
        broken(&text),
        LineBreak {
            line: n + 1,
            kind: LineBreakKind::Edited
        }
    );
}

#[test]
fn missing_reordered_repeated_and_cut_lines_are_named() {
    let (a, _, _) = played();
    let lines = lines(&export(&a));
    let events = lines.len() - 2;
    let trailer = lines.len();
    let without = |drop: &[usize]| {
        let kept: Vec<String> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| !drop.contains(&(i + 1)))
            .map(|(_, l)| l.clone())
            .collect();
        joined(&kept)
    };
    let pos = |p| GlobalPosition(p);

    // A middle line deleted: positions jump.
    assert_eq!(
        broken(&without(&[3])),
        LineBreak {
            line: 3,
            kind: LineBreakKind::Missing {
                from: pos(2),
                to: pos(2)
            }
        }
    );
    // Two lines swapped.
    let mut swapped = lines.clone();
    swapped.swap(2, 3);
    assert_eq!(
        broken(&joined(&swapped)),
        LineBreak {
            line: 3,
            kind: LineBreakKind::Reordered {
                found: pos(3),
                expected: pos(2)
            }
        }
    );
    // A line repeated.
    let mut repeated = lines.clone();
    repeated.insert(3, lines[2].clone());
    assert_eq!(
        broken(&joined(&repeated)),
        LineBreak {
            line: 4,
            kind: LineBreakKind::Reordered {
                found: pos(2),
                expected: pos(3)
            }
        }
    );
    // The last event deleted whole, trailer kept.
    assert_eq!(
        broken(&without(&[trailer - 1])),
        LineBreak {
            line: trailer - 1,
            kind: LineBreakKind::TrailerMismatch {
                count: events as u64,
                found: events as u64 - 1
            }
        }
    );
    // The trailer deleted, with or without the last event.
    for drop in [vec![trailer], vec![trailer - 1, trailer]] {
        assert_eq!(
            broken(&without(&drop)),
            LineBreak {
                line: trailer + 1 - drop.len(),
                kind: LineBreakKind::MissingTrailer
            },
            "{drop:?}"
        );
    }
    // Cut inside a line.
    let full = joined(&lines);
    let cut_at = full.find(&lines[3]).unwrap() + lines[3].len() / 2;
    assert_eq!(
        broken(&full[..cut_at]),
        LineBreak {
            line: 4,
            kind: LineBreakKind::Truncated
        }
    );
    // Cut just before the trailer's newline.
    assert_eq!(
        broken(full.trim_end()),
        LineBreak {
            line: trailer,
            kind: LineBreakKind::Truncated
        }
    );
    // Anything after the trailer.
    let mut after = lines.clone();
    after.push(lines[1].clone());
    assert_eq!(
        broken(&joined(&after)),
        LineBreak {
            line: trailer + 1,
            kind: LineBreakKind::AfterTrailer
        }
    );
}

#[test]
fn bytes_that_are_not_utf8_are_an_edit_and_line_endings_do_not_matter() {
    let (a, _, _) = played();
    let text = export(&a);
    let lines = lines(&text);
    let mut bytes = joined(&lines).into_bytes();
    let at = text.find(&lines[2]).unwrap() + 10;
    bytes[at] = 0xFF;
    let report = verify_export(&bytes[..]).unwrap();
    match report.broken {
        Some(LineBreak {
            line: 3,
            kind: LineBreakKind::Malformed { detail },
        }) => assert!(detail.contains("not UTF-8"), "{detail}"),
        other => panic!("expected line 3 malformed, got {other:?}"),
    }
    assert_eq!(report.events, 1, "the line before it verifies");
    // A copy whose line endings were converted to CRLF still holds the same events.
    let crlf = text.replace('\n', "\r\n");
    let report = verify_export(crlf.as_bytes()).unwrap();
    assert!(report.is_intact(), "{:?}", report.broken);
    assert_eq!(report.events, a.len() as u64);
}

#[test]
fn what_is_not_an_export_is_named_at_line_one() {
    let (a, _, _) = played();
    let lines = lines(&export(&a));
    let plain = serde_json::to_string(&a[0]).unwrap();
    for text in [String::new(), format!("{plain}\n"), "not json\n".into()] {
        assert_eq!(
            broken(&text),
            LineBreak {
                line: 1,
                kind: LineBreakKind::NotAnExport
            },
            "{text:?}"
        );
    }
    let newer = edit(&lines, 1, "\"version\":1", "\"version\":2");
    assert_eq!(
        broken(&newer).kind,
        LineBreakKind::UnsupportedVersion { version: 2 }
    );
}

#[test]
fn the_joined_timeline_keeps_causal_order_whatever_the_clocks_say() {
    let (a, mut b, request) = played();
    // B's clock runs two hours behind A's: by time alone, B's receipt would precede A's
    // submission.
    for e in &mut b {
        e.recorded_at -= Duration::hours(2);
    }
    for (x, y) in [(&a, &b), (&b, &a)] {
        let entries = joined_timeline(x, y, request).unwrap();
        assert_eq!(entries.len(), a.len() + b.len());
        let order: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (e.system.as_str(), e.event_type.as_str()))
            .collect();
        let at = |system: &str, event_type: &str| {
            order
                .iter()
                .position(|o| *o == (system, event_type))
                .unwrap_or_else(|| panic!("{system} {event_type} in {order:?}"))
        };
        let (pa, pb) = ("mc-a.example", "mc-b.example");
        assert!(at(pa, "forwarded") < at(pb, "stored"));
        assert!(at(pb, "verified") < at(pa, "partner_stored"));
        assert!(at(pb, "responded") < at(pa, "response_received"));
        assert!(at(pa, "response_received") < at(pb, "response_forwarded"));
        assert!(at(pa, "response_received") < at(pa, "response_delivered"));
        // Each system's own events stay in log order.
        for system in [pa, pb] {
            let positions: Vec<u64> = entries
                .iter()
                .filter(|e| e.system.as_str() == system)
                .map(|e| e.position.0)
                .collect();
            assert!(
                positions.windows(2).all(|w| w[0] < w[1]),
                "{system}: {positions:?}"
            );
        }
        let stored = &entries[at(pb, "stored")];
        assert_eq!(stored.step, Step::StoreAndVerify);
        let cause = stored.caused_by.as_ref().unwrap();
        assert_eq!(
            cause.system.as_ref().map(acm_core::SystemId::as_str),
            Some(pa)
        );
        assert_eq!(cause.step, Some(Step::Forward));
    }
    // One server's log given twice is refused.
    assert!(joined_timeline(&a, &a, request).is_err());
}
