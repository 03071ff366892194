//! Latency histograms that any thread can add to and read without a lock:
//! commit latency and end-to-end latency (Kafka timestamp → row committed)
//! of an ingest. Buckets follow a 1 – 1.25 – 1.6 – 2 – 2.5 – 3.2 – 4 – 5 –
//! 6.4 – 8 series per decade from 1 ms to 8,000 s, fine enough for
//! percentiles within a quarter of a bucket's width; Prometheus gets the
//! 1 – 2.5 – 5 bounds of that series, which are exact bucket edges.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

/// Steps of one decade.
const STEPS: [f64; 10] = [1.0, 1.25, 1.6, 2.0, 2.5, 3.2, 4.0, 5.0, 6.4, 8.0];
/// Bucket upper bounds: 1 ms to 8,000 s.
const BOUNDS: usize = 70;

static UPPER: LazyLock<[f64; BOUNDS]> = LazyLock::new(|| {
    let mut b = [0.0; BOUNDS];
    for (i, v) in b.iter_mut().enumerate() {
        *v = STEPS[i % 10] * 10f64.powi(i as i32 / 10 - 3);
    }
    b
});

/// A histogram of durations in seconds.
#[derive(Debug)]
pub struct Histogram {
    /// Observations per bucket; the last one is above every bound.
    counts: [AtomicU64; BOUNDS + 1],
    /// Sum of the observations, microseconds.
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }
}

fn bucket(seconds: f64) -> usize {
    UPPER.partition_point(|&b| b < seconds)
}

impl Histogram {
    /// Add one observation (negative durations, from clock skew, count as 0).
    pub fn observe(&self, seconds: f64) {
        let s = seconds.max(0.0);
        self.counts[bucket(s)].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add((s * 1e6) as u64, Ordering::Relaxed);
    }

    /// Add many observations with one atomic add per bucket touched.
    pub fn observe_all(&self, seconds: impl IntoIterator<Item = f64>) {
        let mut local = [0u64; BOUNDS + 1];
        let mut sum = 0.0;
        for s in seconds {
            let s = s.max(0.0);
            local[bucket(s)] += 1;
            sum += s;
        }
        for (c, n) in self.counts.iter().zip(local) {
            if n > 0 {
                c.fetch_add(n, Ordering::Relaxed);
            }
        }
        self.sum_us.fetch_add((sum * 1e6) as u64, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Sum of the observations, seconds.
    pub fn sum(&self) -> f64 {
        self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
    }

    /// The `q` quantile (0..=1), interpolated within its bucket; `None`
    /// before the first observation.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut below = 0u64;
        for (i, &n) in counts.iter().enumerate() {
            if n > 0 && (below + n) as f64 >= rank {
                let lo = if i == 0 { 0.0 } else { UPPER[i - 1] };
                let Some(&hi) = UPPER.get(i) else {
                    return Some(lo);
                };
                return Some(lo + (hi - lo) * (rank - below as f64) / n as f64);
            }
            below += n;
        }
        Some(UPPER[BOUNDS - 1])
    }

    /// Cumulative counts at the 1 – 2.5 – 5 bounds (Prometheus' `le`
    /// buckets, without `+Inf`, which is [`Histogram::count`]).
    pub fn prometheus_buckets(&self) -> Vec<(f64, u64)> {
        let mut out = Vec::new();
        let mut cumulative = 0;
        for (i, c) in self.counts.iter().take(BOUNDS).enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            if matches!(i % 10, 0 | 4 | 7) {
                out.push((UPPER[i], cumulative));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_run_from_a_millisecond_to_8000_seconds() {
        assert_eq!(UPPER[0], 0.001);
        assert!((UPPER[BOUNDS - 1] - 8000.0).abs() < 1e-9);
        assert!(UPPER.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(bucket(0.0), 0);
        assert_eq!(bucket(0.001), 0);
        assert_eq!(bucket(0.0011), 1);
        assert_eq!(bucket(1e9), BOUNDS);
    }

    #[test]
    fn quantiles_fall_within_a_bucket_of_the_truth() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        // 1 ms .. 10 s, evenly.
        let values: Vec<f64> = (1..=10_000).map(|i| i as f64 / 1000.0).collect();
        h.observe_all(values.iter().copied());
        assert_eq!(h.count(), 10_000);
        assert!((h.sum() - values.iter().sum::<f64>()).abs() < 0.01);
        for (q, truth) in [(0.5, 5.0), (0.99, 9.9), (0.01, 0.1)] {
            let got = h.quantile(q).unwrap();
            assert!((got - truth).abs() / truth < 0.25, "q{q}: {got} vs {truth}");
        }
        h.observe(-1.0);
        h.observe(1e6);
        assert_eq!(h.count(), 10_002);
        assert_eq!(h.quantile(1.0), Some(8000.0));
    }

    #[test]
    fn prometheus_buckets_are_cumulative_at_one_two_and_a_half_five() {
        let h = Histogram::default();
        for s in [0.0005, 0.002, 0.003, 0.7, 2.0, 20_000.0] {
            h.observe(s);
        }
        let b = h.prometheus_buckets();
        assert_eq!(b.len(), 21);
        let at = |le: f64| b.iter().find(|(x, _)| (x - le).abs() < 1e-12).unwrap().1;
        assert_eq!(at(0.001), 1);
        assert_eq!(at(0.0025), 2);
        assert_eq!(at(0.005), 3);
        assert_eq!(at(1.0), 4);
        assert_eq!(at(2.5), 5);
        assert_eq!(at(5000.0), 5);
        assert_eq!(h.count(), 6);
    }
}
