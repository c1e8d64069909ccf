//! Summary statistics, computed exactly as `lvbench.py` does (`stats_ms`, `pct`).

use std::time::Duration;

use serde::Serialize;

/// Latency summary of a set of samples, in milliseconds.
#[derive(Debug, Serialize, PartialEq)]
pub struct LatencyMs {
    pub n: usize,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

/// Median of a sorted slice (mean of the two middle values for an even count), NaN if empty.
pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Nearest-rank percentile `p` (0-100) of a sorted slice, NaN if empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.saturating_sub(1).min(sorted.len() - 1)]
}

/// Median of unsorted values.
pub fn median_of(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    median(&v)
}

/// Rounds to 4 decimals, as the libvirt scripts report.
pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Summarises durations; `None` when there are none.
pub fn latency_ms(samples: &[Duration]) -> Option<LatencyMs> {
    let mut v: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(LatencyMs {
        n: v.len(),
        median_ms: round4(median(&v)),
        p90_ms: round4(percentile(&v, 90.0)),
        p95_ms: round4(percentile(&v, 95.0)),
        p99_ms: round4(percentile(&v, 99.0)),
        mean_ms: round4(v.iter().sum::<f64>() / v.len() as f64),
        min_ms: round4(v[0]),
        max_ms: round4(v[v.len() - 1]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_matches_lvbench() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        // ceil(0.95 * 20) - 1 = 18 -> 19.0
        assert_eq!(percentile(&v, 95.0), 19.0);
        assert_eq!(percentile(&v, 100.0), 20.0);
        assert_eq!(percentile(&[3.0], 95.0), 3.0);
        assert!(percentile(&[], 95.0).is_nan());
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 3.0, 9.0]), 2.5);
        assert_eq!(median_of(&[9.0, 1.0, 2.0]), 2.0);
    }

    #[test]
    fn summary_in_milliseconds() {
        let s = latency_ms(&[Duration::from_micros(500), Duration::from_millis(2)]).unwrap();
        assert_eq!(s.n, 2);
        assert_eq!(s.median_ms, 1.25);
        assert_eq!(s.min_ms, 0.5);
        assert_eq!(s.max_ms, 2.0);
        assert!(latency_ms(&[]).is_none());
    }
}
