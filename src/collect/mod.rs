//! Sampling the machine and closing its usage into windows.

pub mod clock;
pub mod rate;
pub mod sampler;
pub mod timeline;
pub mod window;

use self::clock::ClockReading;
use crate::record::UnixMillis;

/// One reading of the machine: levels at a moment and counter growth since the previous reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// When the reading was taken: the wall clock, until the agent places the reading on the record
    /// timeline (see `timeline`) and sets this to where its lived time ends.
    pub at: UnixMillis,
    /// The clocks when the reading was taken.
    pub clocks: ClockReading,
    /// CPU busy since the previous reading, 0–100 of the whole machine.
    pub cpu_pct: f64,
    /// Memory in use (total − available).
    pub mem_used_bytes: u64,
    /// Installed memory.
    pub mem_total_bytes: u64,
    /// Bytes read from disks since the previous reading.
    pub disk_read_bytes: u64,
    /// Bytes written to disks since the previous reading.
    pub disk_write_bytes: u64,
    /// Bytes received since the previous reading.
    pub net_rx_bytes: u64,
    /// Bytes sent since the previous reading.
    pub net_tx_bytes: u64,
    /// Time since the previous reading on the monotonic clock (which does not count a suspend).
    pub elapsed_millis: u64,
}

impl Reading {
    /// Memory in use as a percentage of installed memory.
    pub fn mem_pct(&self) -> f64 {
        if self.mem_total_bytes == 0 { 0.0 } else { self.mem_used_bytes as f64 * 100.0 / self.mem_total_bytes as f64 }
    }

    /// A one-second reading at `at` with `cpu_pct` busy, half of a tiny memory in use and no I/O:
    /// the fixture the policy and chart tests share.
    #[cfg(test)]
    pub(crate) fn steady_for_tests(at: UnixMillis, cpu_pct: f64) -> Reading {
        Reading {
            at,
            clocks: ClockReading { wall: at, monotonic_millis: at.0, boot_millis: Some(at.0) },
            cpu_pct,
            mem_used_bytes: 1,
            mem_total_bytes: 2,
            disk_read_bytes: 0,
            disk_write_bytes: 0,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
            elapsed_millis: 1000,
        }
    }

    /// The reading cut in two at `first_share` (0–1) of its covered time: levels stay, counter
    /// growth is shared out so the two halves add up to the whole exactly.
    pub fn split(&self, first_share: f64) -> (Reading, Reading) {
        let share = first_share.clamp(0.0, 1.0);
        let cut = |count: u64| {
            let first = ((count as f64 * share).round() as u64).min(count);
            (first, count - first)
        };
        let (read_first, read_rest) = cut(self.disk_read_bytes);
        let (write_first, write_rest) = cut(self.disk_write_bytes);
        let (rx_first, rx_rest) = cut(self.net_rx_bytes);
        let (tx_first, tx_rest) = cut(self.net_tx_bytes);
        let (elapsed_first, elapsed_rest) = cut(self.elapsed_millis);
        let first = Reading {
            disk_read_bytes: read_first,
            disk_write_bytes: write_first,
            net_rx_bytes: rx_first,
            net_tx_bytes: tx_first,
            elapsed_millis: elapsed_first,
            ..*self
        };
        let rest = Reading {
            disk_read_bytes: read_rest,
            disk_write_bytes: write_rest,
            net_rx_bytes: rx_rest,
            net_tx_bytes: tx_rest,
            elapsed_millis: elapsed_rest,
            ..*self
        };
        (first, rest)
    }

    /// Rate of a counter delta of this reading, per second.
    pub fn per_second(&self, count: u64) -> f64 {
        rate::per_second(count, std::time::Duration::from_millis(self.elapsed_millis)).unwrap_or(0.0)
    }
}
