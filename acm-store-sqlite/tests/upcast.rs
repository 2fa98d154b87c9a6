//! Upcasting on read: old payloads stay byte-for-byte as written (the chain still verifies)
//! and reach the current event type through a chain of raw-JSON transforms.
#![allow(clippy::unwrap_used)]

use acm_core::testkit::conformance::{TestEvent, event, stream};
use acm_core::{DomainEvent, EventStore, ExpectedVersion, NewEvent, StoreError};
use acm_core::{GlobalPosition, Version};
use acm_store_sqlite::{BackendError, SqliteOptions, SqliteStore, Upcasters};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

/// Version 3 of `test_event`: v2 renamed `n` to `number`; v3 split `text` into words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TestEventV3 {
    number: u64,
    words: Vec<String>,
}

impl DomainEvent for TestEventV3 {
    fn event_type(&self) -> &'static str {
        "test_event"
    }
    fn schema_version(&self) -> u32 {
        3
    }
}

fn upcasters() -> Upcasters {
    Upcasters::new()
        .register("test_event", 1, |mut v| {
            let n = v
                .as_object_mut()
                .and_then(|o| o.remove("n"))
                .ok_or("no field n")?;
            v["number"] = n;
            Ok::<_, String>(v)
        })
        .register("test_event", 2, |mut v| {
            let text = v
                .as_object_mut()
                .and_then(|o| o.remove("text"))
                .and_then(|t| t.as_str().map(str::to_owned))
                .ok_or("no field text")?;
            v["words"] = text.split(' ').collect::<Vec<_>>().into();
            Ok::<_, String>(v)
        })
}

async fn all<E: DomainEvent>(
    store: &SqliteStore<E>,
) -> Vec<Result<acm_core::Envelope<E>, StoreError>> {
    store.read_all(GlobalPosition::START).collect().await
}

#[test]
fn old_payloads_are_upcast_on_read_and_stay_as_written() {
    futures_executor::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acm.db");
        let s = stream(1);
        {
            let v1 = SqliteStore::<TestEvent>::open(&path).unwrap();
            v1.append(
                s,
                ExpectedVersion::NoStream,
                vec![event(s, 1, 7), event(s, 2, 8)],
            )
            .await
            .unwrap();
            v1.close().await.unwrap();
        }
        let raw_before = raw_payloads(&path);

        let v3 = SqliteStore::<TestEventV3>::open_with(
            &path,
            SqliteOptions {
                upcasters: upcasters(),
                ..SqliteOptions::default()
            },
        )
        .unwrap();
        // A new event is written at the current version and read without transforms.
        let new = TestEventV3 {
            number: 9,
            words: vec!["new".into()],
        };
        let template = event(s, 3, 0);
        v3.append(
            s,
            ExpectedVersion::Exact(Version(2)),
            vec![NewEvent {
                event_id: template.event_id,
                correlation_id: template.correlation_id,
                causation_id: None,
                actor: template.actor,
                recorded_at: template.recorded_at,
                payload: new.clone(),
            }],
        )
        .await
        .unwrap();

        let read: Vec<_> = all(&v3).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(read.len(), 3);
        assert_eq!(
            read[0].payload,
            TestEventV3 {
                number: 7,
                words: vec!["event".into(), "1".into()]
            }
        );
        assert_eq!(read[0].schema_version, 3, "reported at the version reached");
        assert_eq!(read[1].payload.number, 8);
        assert_eq!(read[2].payload, new);
        assert_eq!(
            &raw_payloads(&path)[..2],
            &raw_before[..],
            "old bytes untouched"
        );
        assert!(v3.verify().await.unwrap().is_intact(), "the chain survives");
    });
}

#[test]
fn a_failing_upcaster_is_a_typed_error_naming_the_event() {
    futures_executor::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acm.db");
        let s = stream(1);
        let v1 = SqliteStore::<TestEvent>::open(&path).unwrap();
        v1.append(s, ExpectedVersion::NoStream, vec![event(s, 1, 7)])
            .await
            .unwrap();
        v1.close().await.unwrap();
        let store = SqliteStore::<TestEventV3>::open_with(
            &path,
            SqliteOptions {
                upcasters: Upcasters::new().register("test_event", 1, |_| Err("refused")),
                ..SqliteOptions::default()
            },
        )
        .unwrap();
        let read = all(&store).await;
        let Some(Err(StoreError::Backend(e))) = read.first() else {
            panic!("expected a backend error, got {read:?}")
        };
        match e.downcast_ref::<BackendError>() {
            Some(BackendError::Upcast {
                position,
                event_type,
                version,
                message,
            }) => {
                assert_eq!(
                    (*position, event_type.as_str(), *version),
                    (1, "test_event", 1)
                );
                assert_eq!(message, "refused");
            }
            other => panic!("expected an upcast error, got {other:?}"),
        }
    });
}

fn raw_payloads(path: &std::path::Path) -> Vec<Vec<u8>> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT payload FROM events ORDER BY position")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}
