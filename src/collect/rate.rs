//! Counter arithmetic: deltas of cumulative counters and per-second rates. Pure, so it is tested without sysinfo.

use std::time::Duration;

/// Growth of a cumulative counter; a counter that went backwards (reset, device removed) counts as 0.
pub fn counter_delta(previous: u64, current: u64) -> u64 {
    current.saturating_sub(previous)
}

/// Per-second rate of `count` events over `elapsed`; `None` when no time has passed.
pub fn per_second(count: u64, elapsed: Duration) -> Option<f64> {
    let seconds = elapsed.as_secs_f64();
    (seconds > 0.0).then(|| count as f64 / seconds)
}

/// Running mean of a series, kept as a sum so a window can be averaged when it closes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Mean {
    sum: f64,
    count: u32,
}

impl Mean {
    /// Adds one reading.
    pub fn add(&mut self, value: f64) {
        self.sum += value;
        self.count += 1;
    }

    /// Readings added so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The mean, or `None` before the first reading.
    pub fn value(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / f64::from(self.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_of_a_growing_counter() {
        assert_eq!(counter_delta(1_000, 4_500), 3_500);
    }

    #[test]
    fn a_counter_that_went_backwards_counts_nothing() {
        assert_eq!(counter_delta(4_500, 1_000), 0);
    }

    #[test]
    fn rate_uses_the_measured_elapsed_time() {
        assert_eq!(per_second(3_000, Duration::from_millis(1_500)), Some(2_000.0));
        assert_eq!(per_second(3_000, Duration::ZERO), None);
    }

    #[test]
    fn mean_of_nothing_is_none() {
        let mut mean = Mean::default();
        assert_eq!(mean.value(), None);
        mean.add(10.0);
        mean.add(20.0);
        assert_eq!(mean.value(), Some(15.0));
        assert_eq!(mean.count(), 2);
    }
}
