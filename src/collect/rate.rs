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

/// Mean of a series weighted by the time each value covers, kept as sums until the window closes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TimeWeighted {
    weighted_sum: f64,
    weight: f64,
}

impl TimeWeighted {
    /// Adds `value`, which held for `weight` (milliseconds); a value that covers no time counts nothing.
    pub fn add(&mut self, value: f64, weight: f64) {
        if weight > 0.0 {
            self.weighted_sum += value * weight;
            self.weight += weight;
        }
    }

    /// The weighted mean, or `None` before any value covered time.
    pub fn value(&self) -> Option<f64> {
        (self.weight > 0.0).then(|| self.weighted_sum / self.weight)
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
    fn a_mean_weights_each_value_by_the_time_it_covers() {
        let mut mean = TimeWeighted::default();
        assert_eq!(mean.value(), None);
        mean.add(10.0, 90_000.0);
        for _ in 0..99 {
            // Readings bunched a few milliseconds apart after a stall barely move it.
            mean.add(90.0, 5.0);
        }
        mean.add(50.0, 0.0);
        let value = mean.value().unwrap();
        assert!((value - 10.44).abs() < 0.01, "{value}");
    }
}
