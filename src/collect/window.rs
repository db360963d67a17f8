//! Windows: readings accumulate into the open window until it is closed into a usage record.
//! The next window starts where the last one ended, so the windows of a machine tile time.

use super::Reading;
use super::rate::Mean;
use crate::record::{Trigger, UnixMillis, UsageRecord};

/// The machine facts every record repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineFacts {
    /// Stable machine id.
    pub machine_id: String,
    /// Logical CPU cores.
    pub cpu_cores: u32,
    /// Installed memory.
    pub mem_total_bytes: u64,
}

/// The open window of one machine.
#[derive(Debug, Clone)]
pub struct OpenWindow {
    start: UnixMillis,
    cpu_pct: Mean,
    mem_used_bytes: Mean,
    disk_read_bytes: u64,
    disk_write_bytes: u64,
    net_rx_bytes: u64,
    net_tx_bytes: u64,
    /// The latest reading, so a window closed before any reading arrived still carries honest levels.
    last_levels: Option<(f64, u64)>,
}

impl OpenWindow {
    /// A window opening at `start`.
    pub fn new(start: UnixMillis) -> Self {
        OpenWindow {
            start,
            cpu_pct: Mean::default(),
            mem_used_bytes: Mean::default(),
            disk_read_bytes: 0,
            disk_write_bytes: 0,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
            last_levels: None,
        }
    }

    /// Where the open window began.
    pub fn start(&self) -> UnixMillis {
        self.start
    }

    /// Readings in the open window.
    pub fn samples(&self) -> u32 {
        self.cpu_pct.count()
    }

    /// Adds a reading to the open window.
    pub fn add(&mut self, reading: &Reading) {
        self.cpu_pct.add(reading.cpu_pct);
        self.mem_used_bytes.add(reading.mem_used_bytes as f64);
        self.disk_read_bytes += reading.disk_read_bytes;
        self.disk_write_bytes += reading.disk_write_bytes;
        self.net_rx_bytes += reading.net_rx_bytes;
        self.net_tx_bytes += reading.net_tx_bytes;
        self.last_levels = Some((reading.cpu_pct, reading.mem_used_bytes));
    }

    /// Closes the window at `end` into record `seq` and opens the next one at `end`.
    /// Returns `None` (and keeps the window open) when `end` is not after the start.
    pub fn close(&mut self, end: UnixMillis, seq: u64, facts: &MachineFacts, trigger: Trigger) -> Option<UsageRecord> {
        if end <= self.start {
            return None;
        }
        let (last_cpu, last_mem) = self.last_levels.unwrap_or((0.0, 0));
        let cpu_pct = self.cpu_pct.value().unwrap_or(last_cpu).clamp(0.0, 100.0);
        let mem_used = self.mem_used_bytes.value().map_or(last_mem, |mean| mean.round() as u64);
        let record = UsageRecord {
            machine_id: facts.machine_id.clone(),
            seq,
            start: self.start,
            end,
            cpu_pct: round_to_thousandths(cpu_pct),
            cpu_cores: facts.cpu_cores,
            mem_used_bytes: mem_used.min(facts.mem_total_bytes),
            mem_total_bytes: facts.mem_total_bytes,
            disk_read_bytes: self.disk_read_bytes,
            disk_write_bytes: self.disk_write_bytes,
            net_rx_bytes: self.net_rx_bytes,
            net_tx_bytes: self.net_tx_bytes,
            samples: self.cpu_pct.count(),
            trigger,
        };
        let last_levels = self.last_levels;
        *self = OpenWindow::new(end);
        self.last_levels = last_levels;
        Some(record)
    }
}

/// Keeps records short and their decimal form exact: 37.125 rather than 37.12499999.
fn round_to_thousandths(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> MachineFacts {
        MachineFacts { machine_id: "m1".into(), cpu_cores: 4, mem_total_bytes: 8_000 }
    }

    fn reading(cpu_pct: f64, mem_used_bytes: u64, bytes: u64) -> Reading {
        Reading {
            at: UnixMillis(0),
            cpu_pct,
            mem_used_bytes,
            mem_total_bytes: 8_000,
            disk_read_bytes: bytes,
            disk_write_bytes: bytes * 2,
            net_rx_bytes: bytes * 3,
            net_tx_bytes: bytes * 4,
            elapsed_millis: 1_000,
        }
    }

    #[test]
    fn averages_levels_and_sums_counts() {
        let mut window = OpenWindow::new(UnixMillis(1_000));
        window.add(&reading(10.0, 1_000, 5));
        window.add(&reading(30.0, 3_000, 7));
        let record = window.close(UnixMillis(3_000), 1, &facts(), Trigger::Interval).unwrap();
        assert_eq!((record.start, record.end), (UnixMillis(1_000), UnixMillis(3_000)));
        assert_eq!(record.cpu_pct, 20.0);
        assert_eq!(record.mem_used_bytes, 2_000);
        assert_eq!((record.disk_read_bytes, record.disk_write_bytes), (12, 24));
        assert_eq!((record.net_rx_bytes, record.net_tx_bytes), (36, 48));
        assert_eq!(record.samples, 2);
    }

    #[test]
    fn consecutive_windows_tile_time() {
        let mut window = OpenWindow::new(UnixMillis(1_000));
        window.add(&reading(10.0, 1_000, 5));
        let first = window.close(UnixMillis(2_500), 1, &facts(), Trigger::Manual).unwrap();
        let second = window.close(UnixMillis(4_000), 2, &facts(), Trigger::Manual).unwrap();
        assert_eq!(first.end, second.start);
        assert_eq!(second.samples, 0);
        assert_eq!(second.cpu_pct, 10.0, "an empty window carries the last level");
        assert_eq!(second.disk_read_bytes, 0);
    }

    #[test]
    fn an_empty_interval_closes_nothing() {
        let mut window = OpenWindow::new(UnixMillis(1_000));
        assert!(window.close(UnixMillis(1_000), 1, &facts(), Trigger::Manual).is_none());
        assert_eq!(window.start(), UnixMillis(1_000));
    }
}
