//! Time over its whole range: no clock reading and no pending time makes a server panic, and a
//! pending time out of range is refused when the server is built.
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use acm_core::{
    ConfigError, Decision, MAX_PENDING_TTL, PendingItem, RequestState, ServiceError, Target,
};
use acm_store_memory::fixture::{TwoSystems, alice, bob};
use chrono::{DateTime, Duration, Utc};
use futures_executor::block_on;
use proptest::prelude::*;

/// Any instant chrono can name, with the ends of its range drawn often.
fn any_instant() -> impl Strategy<Value = DateTime<Utc>> {
    let (min, max) = (
        DateTime::<Utc>::MIN_UTC.timestamp(),
        DateTime::<Utc>::MAX_UTC.timestamp(),
    );
    prop_oneof![
        1 => Just(DateTime::<Utc>::MIN_UTC),
        1 => Just(DateTime::<Utc>::MAX_UTC),
        2 => (max - 86_400 * 400..=max).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap()),
        4 => (min..=max).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap()),
    ]
}

/// Any pending time chrono can hold, or none; the largest ones are drawn often (a "never
/// expire" setting is typically written as the largest value at hand).
fn any_ttl() -> impl Strategy<Value = Option<Duration>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Duration::MAX)),
        1 => Just(Some(Duration::MIN)),
        1 => Just(Some(Duration::zero())),
        1 => Just(Some(MAX_PENDING_TTL)),
        4 => any::<i64>().prop_map(Duration::try_milliseconds),
        2 => (1..=i64::from(i32::MAX)).prop_map(|s| Some(Duration::seconds(s))),
    ]
}

fn in_range(ttl: Option<Duration>) -> bool {
    ttl.is_none_or(|t| t > Duration::zero() && t <= MAX_PENDING_TTL)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// The whole procedure, expiry and a failing relay, at any instant and with any pending
    /// time: a server either refuses the configuration up front or never panics.
    #[test]
    fn no_clock_and_no_pending_time_panics(
        start in any_instant(),
        ttl in any_ttl(),
        later in any_instant(),
        answer in any::<bool>(),
    ) {
        let built = block_on(TwoSystems::with_config(|mut c| {
            c.pending_ttl = ttl;
            c
        }));
        let sys = match built {
            Err(ServiceError::Config(ConfigError::PendingTtlOutOfRange { ttl: refused })) => {
                prop_assert!(!in_range(ttl), "refused an in-range pending time {refused}");
                return Ok(());
            }
            Err(other) => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
            Ok(sys) => sys,
        };
        prop_assert!(in_range(ttl), "accepted {ttl:?}");
        sys.clock.set(start);
        block_on(async {
            let request = sys.alice_provides(Target::User(bob()), 1).await.unwrap();
            // A failed send computes the next attempt's time from this clock.
            sys.network.set_link(&sys.a.id, &sys.b.id, false);
            let report = sys.a.server.relay().await.unwrap();
            assert_eq!((report.unreachable, report.refused), (1, 0));
            sys.network.set_link(&sys.a.id, &sys.b.id, true);
            sys.clock.set(DateTime::<Utc>::MAX_UTC);
            sys.settle().await.unwrap();
            sys.clock.set(start);
            // Stored, verified and (step 8) delivered: the expiry index is kept at each.
            sys.b.server.download_pending(&bob()).await.unwrap();
            if answer {
                sys.b
                    .server
                    .respond(&bob(), None, request, Decision::Accept)
                    .await
                    .unwrap();
            }
            sys.clock.set(later);
            sys.settle().await.unwrap();
            sys.b.server.expire_due().await.unwrap();
            sys.settle().await.unwrap();
            let data = sys.a.server.download_pending(&alice()).await.unwrap();
            let receipts: Vec<_> = data.items.iter().map(PendingItem::receipt).collect();
            sys.a.server.acknowledge_download(&alice(), &receipts).await.unwrap();
            // A restart reads the store's views, kept with the same arithmetic.
            let mut sys = sys;
            sys.b.restart(&sys.network).await.unwrap();
            let RequestState::Partner(p) = sys.b.server.state(request).await.unwrap() else {
                panic!("request stored at B");
            };
            let due = ttl.and_then(|t| p.stored_at.checked_add_signed(t));
            if !answer {
                // Expired exactly when its due time is reachable and reached.
                assert_eq!(p.expired, due.is_some_and(|d| later >= d), "due {due:?}, now {later}");
            }
        });
    }
}

#[test]
fn out_of_range_pending_times_are_refused_with_a_typed_error() {
    for ttl in [
        Duration::MAX,
        Duration::zero(),
        Duration::seconds(-1),
        MAX_PENDING_TTL + Duration::days(1),
    ] {
        match block_on(TwoSystems::with_config(|mut c| {
            c.pending_ttl = Some(ttl);
            c
        })) {
            Err(ServiceError::Config(ConfigError::PendingTtlOutOfRange { ttl: got })) => {
                assert_eq!(got, ttl);
            }
            other => panic!("expected {ttl} refused, got {other:?}"),
        }
    }
    for max_backoff in [Duration::zero(), Duration::days(2)] {
        match block_on(TwoSystems::with_config(|mut c| {
            c.max_backoff = max_backoff;
            c
        })) {
            Err(ServiceError::Config(ConfigError::MaxBackoffOutOfRange { .. })) => {}
            other => panic!("expected back-off {max_backoff} refused, got {other:?}"),
        }
    }
    match block_on(TwoSystems::with_config(|mut c| {
        c.home_domains.clear();
        c
    })) {
        Err(ServiceError::Config(ConfigError::NoHomeDomain)) => {}
        other => panic!("expected no home domain refused, got {other:?}"),
    }
    // No expiry is an explicit setting, and the largest pending time is accepted.
    for ttl in [None, Some(MAX_PENDING_TTL)] {
        assert!(
            block_on(TwoSystems::with_config(|mut c| {
                c.pending_ttl = ttl;
                c
            }))
            .is_ok()
        );
    }
}
