//! Percentiles and formatting of durations, rates and sizes.

use std::time::Duration;

/// Summary of a sample of durations.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub n: usize,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// Nearest-rank percentile of a sorted sample (`q` in 0..=1).
fn rank(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

pub fn summarize(sample: &[Duration]) -> Summary {
    let mut sorted = sample.to_vec();
    sorted.sort();
    Summary {
        n: sorted.len(),
        p50: rank(&sorted, 0.50),
        p90: rank(&sorted, 0.90),
        p99: rank(&sorted, 0.99),
        max: sorted.last().copied().unwrap_or_default(),
    }
}

/// A duration in the most readable unit: `850 µs`, `12.3 ms`, `1.42 s`.
pub fn dur(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 100_000.0 {
        format!("{:.1} ms", us / 1e3)
    } else if us < 10_000_000.0 {
        format!("{:.0} ms", us / 1e3)
    } else {
        format!("{:.1} s", us / 1e6)
    }
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn ratio(value: f64, baseline: f64) -> f64 {
    if baseline > 0.0 {
        value / baseline
    } else {
        f64::INFINITY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sample: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = summarize(&sample);
        assert_eq!(
            (s.p50, s.p90, s.p99),
            (
                Duration::from_millis(50),
                Duration::from_millis(90),
                Duration::from_millis(99)
            )
        );
        assert_eq!((s.max, s.n), (Duration::from_millis(100), 100));
        assert_eq!(
            summarize(&[Duration::from_millis(7)]).p99,
            Duration::from_millis(7)
        );
    }

    #[test]
    fn durations_read_in_a_sensible_unit() {
        assert_eq!(dur(Duration::from_micros(850)), "850 µs");
        assert_eq!(dur(Duration::from_micros(12_345)), "12.3 ms");
        assert_eq!(dur(Duration::from_millis(420)), "420 ms");
        assert_eq!(dur(Duration::from_millis(12_400)), "12.4 s");
    }
}
