//! Sampling the machine and closing its usage into windows.

pub mod rate;
pub mod sampler;
pub mod window;

use crate::record::UnixMillis;

/// One reading of the machine: levels at a moment and counter growth since the previous reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// When the reading was taken.
    pub at: UnixMillis,
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
    /// Measured time since the previous reading.
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

    /// Rate of a counter delta of this reading, per second.
    pub fn per_second(&self, count: u64) -> f64 {
        rate::per_second(count, std::time::Duration::from_millis(self.elapsed_millis)).unwrap_or(0.0)
    }
}
