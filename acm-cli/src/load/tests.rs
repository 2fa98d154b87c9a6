// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::parse_duration;
use super::stats::{BUCKETS, Histogram, MAX_TRACKED, bucket_bounds, bucket_of, fraction};

#[test]
fn values_below_128_us_have_a_bucket_each() {
    for v in 0..128 {
        assert_eq!(bucket_of(v), usize::try_from(v).unwrap());
        assert_eq!(bucket_bounds(bucket_of(v)), (v, v));
    }
}

#[test]
fn every_bucket_holds_its_values_and_the_buckets_tile_the_range() {
    let mut expected_low = 0_u64;
    for index in 0..BUCKETS {
        let (low, high) = bucket_bounds(index);
        assert_eq!(
            low, expected_low,
            "bucket {index} does not start where {index}-1 ended"
        );
        assert!(high >= low);
        assert_eq!(bucket_of(low), index);
        assert_eq!(bucket_of(high), index);
        // At most 1/64 of its values wide: two significant digits.
        assert!(
            (high - low) * 64 <= low.max(64),
            "bucket {index} is too wide: {low}..={high}"
        );
        expected_low = high + 1;
    }
    assert_eq!(
        expected_low,
        MAX_TRACKED + 1,
        "the last bucket ends at MAX_TRACKED"
    );
}

#[test]
fn values_past_the_range_land_in_the_last_bucket() {
    assert_eq!(bucket_of(MAX_TRACKED), BUCKETS - 1);
    assert_eq!(bucket_of(MAX_TRACKED + 1), BUCKETS - 1);
    assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    // An index past the end is the last bucket, not a panic.
    assert_eq!(bucket_bounds(usize::MAX), bucket_bounds(BUCKETS - 1));
    let mut h = Histogram::new();
    h.record(Duration::MAX);
    assert_eq!(h.max(), u64::MAX);
    assert_eq!(h.percentile(1000), u64::MAX);
}

#[test]
fn percentiles_of_1_to_100_are_exact() {
    let mut h = Histogram::new();
    // Recorded in reverse, so the order of recording cannot matter.
    for v in (1..=100).rev() {
        h.record_micros(v);
    }
    assert_eq!(h.count(), 100);
    assert_eq!(h.percentile(500), 50);
    assert_eq!(h.percentile(950), 95);
    assert_eq!(h.percentile(990), 99);
    assert_eq!(h.percentile(1000), 100);
    assert_eq!(h.percentile(0), 1, "p0 is the smallest value");
    assert_eq!(h.min(), 1);
    assert_eq!(h.max(), 100);
    assert_eq!(h.mean(), 50);
}

#[test]
fn percentiles_of_large_values_stay_within_a_bucket_and_below_the_max() {
    let mut h = Histogram::new();
    // 1,000 values: 990 of 1 ms, 9 of 20 ms, one of 250 ms.
    for _ in 0..990 {
        h.record(Duration::from_millis(1));
    }
    for _ in 0..9 {
        h.record(Duration::from_millis(20));
    }
    h.record(Duration::from_millis(250));
    let p50 = h.percentile(500);
    assert!((1000..=1000 + 1000 / 64).contains(&p50), "p50 {p50}");
    assert_eq!(h.percentile(990), p50, "the 990th value is still 1 ms");
    let p999 = h.percentile(999);
    assert!(
        (20_000..=20_000 + 20_000 / 64).contains(&p999),
        "p99.9 {p999}"
    );
    assert_eq!(h.percentile(1000), 250_000, "the maximum is exact");
    let l = h.latency();
    assert!((l.max_ms - 250.0).abs() < 1e-9);
}

#[test]
fn an_empty_histogram_reports_zeros() {
    let h = Histogram::new();
    assert_eq!(h.percentile(500), 0);
    assert_eq!(h.min(), 0);
    assert_eq!(h.max(), 0);
    assert_eq!(h.mean(), 0);
}

#[test]
fn merging_adds_counts_and_keeps_the_extremes() {
    let mut a = Histogram::new();
    let mut b = Histogram::new();
    for v in 1..=50 {
        a.record_micros(v);
    }
    for v in 51..=100 {
        b.record_micros(v);
    }
    a.merge(&b);
    assert_eq!(a.count(), 100);
    assert_eq!(a.percentile(500), 50);
    assert_eq!(a.percentile(990), 99);
    assert_eq!(a.min(), 1);
    assert_eq!(a.max(), 100);
    // Merging an empty one changes nothing, its min included.
    a.merge(&Histogram::new());
    assert_eq!(a.min(), 1);
    assert_eq!(a.count(), 100);
}

#[test]
fn fractions_do_not_divide_by_zero() {
    assert!((fraction(7, 2) - 3.5).abs() < 1e-12);
    assert!(fraction(7, 0).abs() < 1e-12);
}

#[test]
fn durations_parse_with_units_and_refuse_nonsense() {
    assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_mins(2)));
    assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
    assert!(parse_duration("0s").is_err());
    assert!(parse_duration("s").is_err());
    assert!(parse_duration("10 parsecs").is_err());
    assert!(parse_duration("-1s").is_err());
    assert!(parse_duration(&format!("{}h", u64::MAX)).is_err());
}
