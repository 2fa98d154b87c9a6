//! Latency recording bounded in memory (a log-bucket histogram in the manner of HDR
//! histograms), percentiles, the per-second progress line and the summary (a table, or JSON).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Values below this are counted exactly, one bucket each; above it every power of two is
/// split into [`HALF`] buckets, so a bucket is at most 1/64 of its values wide (HDR's
/// "two significant digits").
const SUB: u64 = 128;
const HALF: u64 = SUB / 2;
/// Bits of `SUB`.
const SUB_BITS: u32 = 7;
/// The largest value told apart, in microseconds (about 19 hours); larger ones are counted
/// in the last bucket (the exact maximum is kept beside).
pub const MAX_TRACKED: u64 = (1 << 36) - 1;
/// Buckets: `SUB` exact ones, then `HALF` for each power of two from 2^7 to 2^35.
pub const BUCKETS: usize = 128 + 29 * 64;

/// A fixed-size histogram of durations in microseconds: 1,984 counters (16 KB) whatever is
/// recorded.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    count: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min", &self.min)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// The bucket of `value` (µs).
pub fn bucket_of(value: u64) -> usize {
    let v = value.min(MAX_TRACKED);
    let index = if v < SUB {
        v
    } else {
        // v ≥ 128: its highest bit is at 7 or above; `shift` brings it to [64, 128).
        let msb = 63 - u64::from(v.leading_zeros());
        let shift = msb - u64::from(SUB_BITS - 1);
        let top = v >> shift;
        SUB + (shift - 1) * HALF + (top - HALF)
    };
    // Below BUCKETS by construction (v ≤ MAX_TRACKED); the conversion cannot fail on 64 bits.
    usize::try_from(index).unwrap_or(BUCKETS - 1)
}

/// The lowest and highest value (µs) bucket `index` holds (an index past the last bucket
/// is the last bucket).
pub fn bucket_bounds(index: usize) -> (u64, u64) {
    let i = u64::try_from(index.min(BUCKETS - 1)).unwrap_or(0);
    if i < SUB {
        return (i, i);
    }
    let k = i - SUB;
    let shift = k / HALF + 1;
    let top = HALF + k % HALF;
    let low = top << shift;
    let high = ((top + 1) << shift) - 1;
    (low, high)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: Box::new([0; BUCKETS]),
            count: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }

    /// Records one duration.
    pub fn record(&mut self, d: Duration) {
        self.record_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// Records one value in microseconds.
    pub fn record_micros(&mut self, us: u64) {
        let slot = &mut self.counts[bucket_of(us)];
        *slot = slot.saturating_add(1);
        self.count = self.count.saturating_add(1);
        self.min = self.min.min(us);
        self.max = self.max.max(us);
        self.sum = self.sum.saturating_add(u128::from(us));
    }

    /// Adds everything `other` recorded.
    pub fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
        self.count = self.count.saturating_add(other.count);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum = self.sum.saturating_add(other.sum);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest value recorded (µs), exactly; 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The smallest value recorded (µs), exactly; 0 when empty.
    pub fn min(&self) -> u64 {
        if self.count == 0 { 0 } else { self.min }
    }

    /// The mean (µs), rounded down; 0 when empty.
    pub fn mean(&self) -> u64 {
        self.sum
            .checked_div(u128::from(self.count))
            .and_then(|m| u64::try_from(m).ok())
            .unwrap_or(0)
    }

    /// The value (µs) at or below which `per_mille`/1000 of the values lie: the highest
    /// value of the bucket holding the value of that rank (as HDR histograms report it),
    /// never above the exact maximum. 0 when empty.
    pub fn percentile(&self, per_mille: u32) -> u64 {
        if self.count == 0 {
            return 0;
        }
        // rank = ceil(count × p / 1000), at least 1, at most count.
        let wanted = u128::from(self.count) * u128::from(per_mille.min(1000));
        let rank = u64::try_from(wanted.div_ceil(1000))
            .unwrap_or(self.count)
            .clamp(1, self.count);
        let mut seen: u64 = 0;
        for (index, &n) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(n);
            if seen >= rank {
                return bucket_bounds(index).1.min(self.max).max(self.min());
            }
        }
        self.max
    }

    /// p50, p95, p99 and the maximum, in milliseconds.
    pub fn latency(&self) -> Latency {
        Latency {
            count: self.count,
            p50_ms: ms(self.percentile(500)),
            p95_ms: ms(self.percentile(950)),
            p99_ms: ms(self.percentile(990)),
            max_ms: ms(self.max()),
            mean_ms: ms(self.mean()),
        }
    }
}

/// Microseconds as milliseconds, to three decimals.
pub fn ms(us: u64) -> f64 {
    // Latencies are far below 2^52 µs, where f64 stops being exact.
    #[allow(clippy::cast_precision_loss)]
    let us = us as f64;
    us / 1000.0
}

/// `n` per second over `elapsed`; 0 for no time.
pub fn per_second(n: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    // Counts far below 2^52.
    #[allow(clippy::cast_precision_loss)]
    let n = n as f64;
    n / secs
}

/// A latency distribution's summary.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Values recorded.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
    /// Mean, ms.
    pub mean_ms: f64,
}

/// Counters shared by every virtual user pair and read by the progress line.
#[derive(Debug, Default)]
pub struct Counters {
    /// Exchanges (or hops) done.
    pub done: AtomicU64,
    /// Exchanges (or hops) that failed.
    pub errors: AtomicU64,
    /// Latencies since the last [`Counters::take_window`] (the soak's samples).
    window: std::sync::Mutex<Histogram>,
}

impl Counters {
    /// Counts one exchange done in `took`.
    pub fn done(&self, took: Duration) {
        self.done.fetch_add(1, Ordering::Relaxed);
        self.window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .record(took);
    }

    /// The latencies recorded since the last call, and a fresh window.
    pub fn take_window(&self) -> Histogram {
        std::mem::take(
            &mut *self
                .window
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// Prints one line a second on standard error (elapsed, done in the last second, total,
/// errors) until `stop` is dropped or fires.
pub async fn progress(
    what: &'static str,
    counters: Arc<Counters>,
    started: Instant,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval_at(
        tokio::time::Instant::from_std(started) + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = 0_u64;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let done = counters.done.load(Ordering::Relaxed);
        let errors = counters.errors.load(Ordering::Relaxed);
        eprintln!(
            "  [{:>5.1} s] {what}: {:>6} in the last second, {:>8} in all, {} errors",
            started.elapsed().as_secs_f64(),
            done.saturating_sub(last),
            done,
            errors
        );
        last = done;
    }
}

/// `n / d` as a float; 0 for `d` = 0.
pub fn fraction(n: u64, d: u64) -> f64 {
    // Counts far below 2^52.
    #[allow(clippy::cast_precision_loss)]
    let (n, d) = (n as f64, d as f64);
    ratio(n, d)
}

/// `part / whole`; 0 for nothing to divide by.
pub fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole } else { 0.0 }
}
