//! A fixed-bucket, log-linear histogram that many tasks record into at once, lock-free.
//!
//! Values below 128 have a bucket each (exact). Above that, every power of two is cut into
//! 64 equal buckets, so a reported value is at most 1/64 (1.6 %) above the true one, for the
//! whole `u64` range, in 3,776 counters (30 KiB) — whatever the number of samples. The maximum
//! is kept exactly. Recording is one relaxed atomic add (plus a rare `fetch_max`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Buckets per power of two, as a power of two.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Values below this have a bucket of their own.
const LINEAR: u64 = 2 * SUB;
/// `LINEAR` exact buckets, then `SUB` buckets for each exponent from 7 to 63.
const BUCKETS: usize = (LINEAR + (63 - SUB_BITS as u64) * SUB) as usize;

/// A log-linear histogram of `u64` values; see the top of this file.
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
    max: AtomicU64,
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, value: u64) {
        self.buckets[index(value)].fetch_add(1, Ordering::Relaxed);
        if value > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(value, Ordering::Relaxed);
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    pub(crate) fn max(&self) -> Option<u64> {
        (self.count() > 0).then(|| self.max.load(Ordering::Relaxed))
    }

    /// The value at quantile `q` (0.0–1.0): the highest value of the bucket that holds the
    /// sample of rank ⌈q·count⌉, never above the maximum. `None` when empty.
    pub(crate) fn quantile(&self, q: f64) -> Option<u64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        // Float-to-int casts saturate; the rank is clamped to 1..=count anyway.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).clamp(1, count);
        let max = self.max.load(Ordering::Relaxed);
        let mut seen = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= rank {
                return Some(highest_in(i).min(max));
            }
        }
        Some(max)
    }
}

fn index(value: u64) -> usize {
    if value < LINEAR {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros(); // ≥ 7
    let shift = exponent - SUB_BITS;
    let top = value >> shift; // in SUB..2·SUB
    (LINEAR + u64::from(exponent - SUB_BITS - 1) * SUB + (top - SUB)) as usize
}

/// The highest value that lands in bucket `i`.
fn highest_in(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let j = i - LINEAR;
    let shift = j / SUB + 1;
    let top = SUB + j % SUB;
    (top << shift) + ((1 << shift) - 1)
}

/// p50, p90, p99 and max of a histogram of microseconds, in milliseconds (reports).
#[derive(Debug, serde::Serialize)]
pub(crate) struct PercentilesMs {
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

impl PercentilesMs {
    /// `None` when the histogram is empty.
    pub(crate) fn of(histogram: &Histogram) -> Option<Self> {
        let ms = |us: u64| us as f64 / 1000.0;
        Some(PercentilesMs {
            p50: ms(histogram.quantile(0.50)?),
            p90: ms(histogram.quantile(0.90)?),
            p99: ms(histogram.quantile(0.99)?),
            max: ms(histogram.max()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_u64_in_order() {
        assert_eq!(index(0), 0);
        assert_eq!(index(127), 127);
        assert_eq!(index(128), 128);
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        assert_eq!(highest_in(BUCKETS - 1), u64::MAX);
        for i in 0..BUCKETS - 1 {
            let high = highest_in(i);
            assert_eq!(index(high), i);
            assert_eq!(index(high + 1), i + 1);
        }
    }

    #[test]
    fn relative_error_is_below_one_sixty_fourth() {
        for v in (0..200_000u64).chain([1 << 40, (1 << 40) + 12_345, u64::MAX / 3]) {
            let high = highest_in(index(v));
            assert!(high >= v);
            assert!((high - v) as f64 <= v as f64 / 64.0, "{v} -> {high}");
        }
    }

    #[test]
    fn quantiles_of_a_uniform_range() {
        let h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        assert_eq!(h.max(), None);
        for v in 1..=10_000 {
            h.record(v);
        }
        assert_eq!(h.count(), 10_000);
        assert_eq!(h.max(), Some(10_000));
        for (q, exact) in [(0.5, 5_000.0), (0.9, 9_000.0), (0.99, 9_900.0)] {
            let got = h.quantile(q).unwrap() as f64;
            assert!(
                got >= exact && got <= exact * (1.0 + 1.0 / 64.0),
                "{q}: {got}"
            );
        }
        assert_eq!(h.quantile(1.0), Some(10_000));
        assert_eq!(h.quantile(0.0), Some(1));
    }

    #[test]
    fn concurrent_records_are_all_counted() {
        let h = std::sync::Arc::new(Histogram::new());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for v in 0..10_000 {
                        h.record(v * (t + 1));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(h.count(), 40_000);
        assert_eq!(h.max(), Some(9_999 * 4));
    }
}
