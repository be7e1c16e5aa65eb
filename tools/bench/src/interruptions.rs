//! How often the machine takes the CPU away from a running thread, and for how long: the
//! baseline that says what a handler's p99 can mean on this machine.
//!
//! A thread reads the clock in a tight loop; a gap between two reads longer than
//! [`THRESHOLD`] is an interruption (the kernel's tick, an interrupt, or the hypervisor running
//! something else on this virtual CPU, which the guest does not see as steal time). A request
//! that takes `d` is interrupted at least once with probability `1 - e^(-rate × d)`; once
//! that passes 1%, a p99 measures the machine's interruptions as much as the code.

use crate::stats::{summarize, Summary};
use std::time::{Duration, Instant};

/// A gap between two clock reads longer than this is an interruption (two reads take
/// about 20 ns).
pub const THRESHOLD: Duration = Duration::from_micros(5);

/// What a measurement found.
#[derive(Debug, Clone, Copy)]
pub struct Interruptions {
    /// Interruptions per second of busy time.
    pub per_second: f64,
    /// Their lengths.
    pub lengths: Summary,
    /// The share of the busy time they took.
    pub share: f64,
}

impl Interruptions {
    /// From the gaps seen over `elapsed` of busy looping.
    pub fn from_gaps(gaps: &[Duration], elapsed: Duration) -> Interruptions {
        let secs = elapsed.as_secs_f64();
        let per_busy_second = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
        let lost: Duration = gaps.iter().sum();
        Interruptions {
            per_second: per_busy_second(gaps.len() as f64),
            lengths: summarize(gaps),
            share: per_busy_second(lost.as_secs_f64()),
        }
    }

    /// The probability that something taking `d` is interrupted at least once (interruptions
    /// taken as arriving at random, at the measured rate).
    pub fn chance_within(&self, d: Duration) -> f64 {
        1.0 - (-self.per_second * d.as_secs_f64()).exp()
    }
}

/// Interruptions sampled in short windows spread over a run (so that a noisy stretch in
/// the middle of it is seen too).
#[derive(Debug, Default, Clone)]
pub struct Meter {
    gaps: Vec<Duration>,
    busy: Duration,
}

impl Meter {
    /// Busy-loops on the clock for `span`, keeping the gaps longer than [`THRESHOLD`].
    pub fn sample(&mut self, span: Duration) {
        let start = Instant::now();
        let mut last = start;
        loop {
            let now = Instant::now();
            let gap = now - last;
            if gap > THRESHOLD {
                self.gaps.push(gap);
            }
            last = now;
            if now - start >= span {
                break;
            }
        }
        self.busy += last - start;
    }

    /// Every window so far.
    pub fn found(&self) -> Interruptions {
        Interruptions::from_gaps(&self.gaps, self.busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_lengths_and_share_come_from_the_gaps() {
        let gaps: Vec<Duration> = (1..=400).map(|i| Duration::from_micros(10 + i % 40)).collect();
        let found = Interruptions::from_gaps(&gaps, Duration::from_secs(2));
        assert!((found.per_second - 200.0).abs() < 1e-9);
        assert_eq!(found.lengths.n, 400);
        let lost: f64 = gaps.iter().map(Duration::as_secs_f64).sum();
        assert!((found.share - lost / 2.0).abs() < 1e-12);
    }

    #[test]
    fn a_meter_adds_up_its_windows() {
        let mut meter = Meter::default();
        assert_eq!(meter.found().per_second, 0.0);
        meter.sample(Duration::from_millis(5));
        meter.sample(Duration::from_millis(5));
        assert!(meter.busy >= Duration::from_millis(10), "{:?}", meter.busy);
        assert!(meter.gaps.iter().all(|g| *g > THRESHOLD));
    }

    #[test]
    fn the_chance_of_an_interruption_grows_with_the_length_of_a_request() {
        let found = Interruptions::from_gaps(&vec![Duration::from_micros(30); 400], Duration::from_secs(1));
        // 400 per second: a 25 µs request is interrupted about 1% of the time.
        let p = found.chance_within(Duration::from_micros(25));
        assert!((p - (1.0 - (-0.01f64).exp())).abs() < 1e-12, "{p}");
        assert!(found.chance_within(Duration::from_micros(50)) > p);
        assert_eq!(found.chance_within(Duration::ZERO), 0.0);
        assert_eq!(Interruptions::from_gaps(&[], Duration::ZERO).per_second, 0.0);
    }
}
