use super::*;
use crate::id::{EventId, McServiceId, RequestId, StreamId};
use crate::lifecycle::{Command, decide};
use crate::request::{AcmRequest, AcmRequestBody, Limits, Target};
use crate::store::{Actor, NewEvent};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().unwrap()
}

fn uuid(n: u64, salt: u16) -> uuid::Uuid {
    let mut random = [0u8; 10];
    random[..2].copy_from_slice(&salt.to_be_bytes());
    random[2..].copy_from_slice(&n.to_be_bytes());
    uuid::Builder::from_unix_timestamp_millis(n, &random).into_uuid()
}

fn request_id(n: u64) -> RequestId {
    RequestId::from_uuid(uuid(n, 1)).unwrap()
}

fn submit(n: u64, authorised: bool) -> Command {
    let alice: McServiceId = id("sip:alice@mc-a.example");
    Command::Submit {
        request: std::sync::Arc::new(AcmRequest {
            request_id: request_id(n),
            requester: alice.clone(),
            requester_alias: None,
            partner: id("mc-b.example"),
            target: Target::User(id("sip:bob@mc-b.example")),
            body: AcmRequestBody::provision([id(&format!("sip:g{n}@mc-a.example"))]),
        }),
        authorization: if authorised {
            Ok(())
        } else {
            Err(crate::request::AuthorizationRefusal::NotAuthorized {
                user: alice,
                partner: id("mc-b.example"),
            })
        },
        limits: Limits::default(),
        message_id: MessageIdGen::get(n),
        at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        idempotency_key: None,
    }
}

struct MessageIdGen;
impl MessageIdGen {
    fn get(n: u64) -> crate::id::MessageId {
        crate::id::MessageId::from_uuid(uuid(n, 2)).unwrap()
    }
}

/// Runs commands live (decide + evolve per stream) and writes the log as a store would.
fn live(commands: &[(u64, Command)]) -> (Vec<Envelope<Event>>, BTreeMap<RequestId, RequestState>) {
    let mut log = Vec::new();
    let mut states: BTreeMap<RequestId, (RequestState, u64)> = BTreeMap::new();
    for (stream, command) in commands {
        let rid = request_id(*stream);
        let (state, version) = states.entry(rid).or_default();
        if let Ok(events) = decide(state, command) {
            for e in events {
                *state = evolve(std::mem::take(state), &e);
                *version += 1;
                let n = log.len() as u64 + 1;
                log.push(Envelope::seal(
                    StreamId(rid),
                    Version(*version),
                    GlobalPosition(n),
                    NewEvent {
                        event_id: EventId::from_uuid(uuid(n, 3)).unwrap(),
                        correlation_id: rid,
                        causation_id: None,
                        actor: Actor::System(id("mc-a.example")),
                        recorded_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
                        payload: e,
                    },
                ));
            }
        }
    }
    (
        log,
        states
            .into_iter()
            .filter(|(_, (_, v))| *v > 0)
            .map(|(k, (s, _))| (k, s))
            .collect(),
    )
}

fn command(stream: u64, kind: u8) -> Command {
    match kind % 4 {
        0 => submit(stream, true),
        1 => submit(stream, false),
        2 => Command::RecordPartnerAck {
            message_id: MessageIdGen::get(stream),
        },
        _ => Command::RequestWithdrawal {
            by: id("sip:alice@mc-a.example"),
            message_id: MessageIdGen::get(stream + 100),
        },
    }
}

fn export(log: &[Envelope<Event>]) -> Vec<u8> {
    let mut buf = Vec::new();
    export_log(&mut buf, log).unwrap();
    buf
}

fn read(buf: &[u8]) -> (Vec<Envelope<Event>>, ExportReport) {
    let mut events = Vec::new();
    let report = scan_export(buf, |e| events.push(e)).unwrap();
    (events, report)
}

proptest! {
    #[test]
    fn replay_equals_live_state_and_survives_the_export(ops in proptest::collection::vec((0u64..5, any::<u8>()), 0..60)) {
        let commands: Vec<_> = ops.iter().map(|(s, k)| (*s, command(*s, *k))).collect();
        let (log, live_states) = live(&commands);
        prop_assert_eq!(replay(log.clone()).unwrap(), live_states.clone());
        let buf = export(&log);
        let (back, report) = read(&buf);
        prop_assert!(report.is_intact(), "{:?}", report.broken);
        prop_assert_eq!(report.events, log.len() as u64);
        prop_assert_eq!(&back, &log);
        prop_assert_eq!(replay(back).unwrap(), live_states);
    }
}

#[test]
fn replay_refuses_gaps() {
    let (log, _) = live(&[
        (1, submit(1, true)),
        (1, command(1, 2)),
        (2, submit(2, true)),
    ]);
    let mut gap = log.clone();
    gap.remove(1);
    match replay(gap) {
        Err(AuditError::PositionGap { expected, found }) => {
            assert_eq!((expected, found), (GlobalPosition(2), GlobalPosition(3)));
        }
        other => panic!("expected a position gap, got {other:?}"),
    }
    let mut version_gap = log;
    version_gap[1].version = Version(7);
    assert!(matches!(
        replay(version_gap),
        Err(AuditError::VersionGap {
            found: Version(7),
            ..
        })
    ));
}

#[test]
fn timeline_lists_one_request_in_order() {
    let (log, _) = live(&[
        (1, submit(1, true)),
        (2, submit(2, false)),
        (1, command(1, 2)),
    ]);
    let entries = timeline(&log, request_id(1)).unwrap();
    let types: Vec<_> = entries.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["submitted", "authorized", "forwarded", "partner_stored"]
    );
    let steps: Vec<_> = entries.iter().map(|e| e.step.as_str()).collect();
    assert_eq!(steps, ["1", "2", "3", "4b"]);
    assert!(entries.iter().all(|e| e.system.as_str() == "mc-a.example"));
    assert!(entries[0].summary.contains("sip:alice@mc-a.example asks"));
    assert_eq!(
        timeline(&log, request_id(9)),
        Err(TimelineError::UnknownRequest(request_id(9)))
    );
}
