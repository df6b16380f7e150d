//! Latency samples and their summary: count, p50, p99, p999, max.
//!
//! Invariants: percentiles are nearest-rank on the sorted samples (a
//! percentile is always a measured sample, never an interpolation); an
//! empty set has no percentiles.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Summary of a set of latencies, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct LatencySummary {
    pub count: usize,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub p999_us: Option<f64>,
    pub max_us: Option<f64>,
}

/// The nearest-rank `q` quantile (0 < q <= 1) of sorted samples.
pub fn nearest_rank(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

impl LatencySummary {
    pub fn of(samples: &mut [Duration]) -> LatencySummary {
        samples.sort_unstable();
        let us = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e6);
        LatencySummary {
            count: samples.len(),
            p50_us: us(nearest_rank(samples, 0.50)),
            p99_us: us(nearest_rank(samples, 0.99)),
            p999_us: us(nearest_rank(samples, 0.999)),
            max_us: us(samples.last().copied()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<Duration> = (1..=1000).rev().map(Duration::from_micros).collect();
        let s = LatencySummary::of(&mut samples);
        let round = |v: Option<f64>| v.map(|v| (v * 1000.0).round() / 1000.0);
        assert_eq!(s.count, 1000);
        assert_eq!(
            [round(s.p50_us), round(s.p99_us), round(s.p999_us), round(s.max_us)],
            [Some(500.0), Some(990.0), Some(999.0), Some(1000.0)]
        );
        let one = LatencySummary::of(&mut [Duration::from_micros(7)]);
        assert_eq!((one.p50_us, one.p999_us), (Some(7.0), Some(7.0)));
        assert_eq!(LatencySummary::of(&mut []).p50_us, None);
    }
}
