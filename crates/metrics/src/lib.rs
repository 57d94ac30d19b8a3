//! Tallies kept for the metrics endpoint by code that must never wait for a reader:
//! the signalling loop, the store's writers. Relaxed atomics only, so a scrape on
//! another thread reads them without a lock that the writer could meet. (The
//! `prometheus-client` crate, which encodes them, keeps its own histograms behind a
//! lock its encoder also takes.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The most buckets a [`LatencyHistogram`] has (its bounds, then one unbounded).
const MAX_BOUNDS: usize = 15;

/// Upper bounds (seconds) for call set-up delays: from a node's own ringback
/// (milliseconds) to phones ringing a minute.
pub const CALL_DELAY_BOUNDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

/// Upper bounds (seconds) for store commits: an fsync on a good disk (sub-millisecond)
/// to a stalled database.
pub const COMMIT_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A histogram of durations: one relaxed add to a bucket and one to the sum per
/// observation.
#[derive(Debug)]
pub struct LatencyHistogram {
    bounds: &'static [f64],
    /// Per bucket of `bounds` (not cumulative), then the overflow; the rest unused.
    buckets: [AtomicU64; MAX_BOUNDS + 1],
    sum_micros: AtomicU64,
}

impl LatencyHistogram {
    /// A histogram with these bucket bounds, ascending; beyond [`MAX_BOUNDS`] are
    /// ignored.
    pub fn with_bounds(bounds: &'static [f64]) -> LatencyHistogram {
        LatencyHistogram {
            bounds: &bounds[..bounds.len().min(MAX_BOUNDS)],
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// One more observation.
    pub fn observe(&self, span: Duration) {
        let micros = u64::try_from(span.as_micros()).unwrap_or(u64::MAX);
        let seconds = span.as_secs_f64();
        let bucket = self
            .bounds
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(self.bounds.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// (sum in seconds, count, per-bucket counts with their upper bounds, the last
    /// one `f64::MAX`: the encoder's `+Inf`).
    pub fn read(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let counts: Vec<u64> = self.buckets[..=self.bounds.len()]
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let bounds = self.bounds.iter().copied().chain([f64::MAX]);
        let buckets: Vec<(f64, u64)> = bounds.zip(counts.iter().copied()).collect();
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (sum, counts.iter().sum(), buckets)
    }
}

impl Default for LatencyHistogram {
    /// Call set-up delays ([`CALL_DELAY_BOUNDS`]).
    fn default() -> Self {
        LatencyHistogram::with_bounds(CALL_DELAY_BOUNDS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = LatencyHistogram::with_bounds(&[0.01, 1.0]);
        h.observe(Duration::from_millis(10)); // on the bound: in it
        h.observe(Duration::from_millis(500));
        h.observe(Duration::from_secs(3));
        let (sum, count, buckets) = h.read();
        assert_eq!(count, 3);
        assert!((sum - 3.51).abs() < 1e-9, "{sum}");
        assert_eq!(buckets, [(0.01, 1), (1.0, 1), (f64::MAX, 1)]);
    }

    #[test]
    fn bounds_beyond_the_capacity_are_ignored_not_out_of_range() {
        const MANY: &[f64] = &[
            1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0,
            17.0,
        ];
        let h = LatencyHistogram::with_bounds(MANY);
        h.observe(Duration::from_secs(100));
        let (_, count, buckets) = h.read();
        assert_eq!((count, buckets.len()), (1, MAX_BOUNDS + 1));
    }
}
