//! The sysinfo sampler: one reading of CPU, memory, disk and network per tick, on its own thread.

use std::collections::HashSet;
use std::thread;
use std::time::{Duration, Instant};

use sysinfo::{DiskRefreshKind, Disks, Networks, System};

use super::Reading;
use super::clock::ClockReading;
use super::rate::counter_delta;

/// Cumulative counters of one moment.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    disk_read_bytes: u64,
    disk_write_bytes: u64,
    net_rx_bytes: u64,
    net_tx_bytes: u64,
}

/// Reads the machine through sysinfo; the first reading only sets the baseline.
pub struct Sampler {
    system: System,
    disks: Disks,
    networks: Networks,
    previous: Option<(ClockReading, Counters)>,
}

impl Sampler {
    /// Opens the sysinfo handles and takes the baseline (since-boot CPU and counters give no rate).
    pub fn new() -> Result<Self, sysinfo::Error> {
        let mut sampler = Sampler {
            system: System::new()?,
            disks: Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing().with_io_usage())?,
            networks: Networks::new_with_refreshed_list()?,
            previous: None,
        };
        sampler.read();
        Ok(sampler)
    }

    /// Logical CPU cores.
    pub fn cpu_cores(&self) -> u32 {
        self.system.cpus().len().max(1) as u32
    }

    /// Installed memory.
    pub fn mem_total_bytes(&mut self) -> u64 {
        self.system.refresh_memory();
        self.system.total_memory()
    }

    /// One reading; `None` on the first call (baseline only).
    pub fn read(&mut self) -> Option<Reading> {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        self.disks.refresh_specifics(true, DiskRefreshKind::nothing().with_io_usage());
        self.networks.refresh(true);
        let now = ClockReading::now();
        let counters = self.counters();
        let previous = self.previous.replace((now, counters));
        let (then, before) = previous?;
        let total = self.system.total_memory();
        Some(Reading {
            at: now.wall,
            clocks: now,
            cpu_pct: f64::from(self.system.global_cpu_usage()).clamp(0.0, 100.0),
            mem_used_bytes: total.saturating_sub(self.system.available_memory()),
            mem_total_bytes: total,
            disk_read_bytes: counter_delta(before.disk_read_bytes, counters.disk_read_bytes),
            disk_write_bytes: counter_delta(before.disk_write_bytes, counters.disk_write_bytes),
            net_rx_bytes: counter_delta(before.net_rx_bytes, counters.net_rx_bytes),
            net_tx_bytes: counter_delta(before.net_tx_bytes, counters.net_tx_bytes),
            elapsed_millis: (now.monotonic_millis - then.monotonic_millis).max(0) as u64,
        })
    }

    fn counters(&self) -> Counters {
        let mut counters = Counters::default();
        // One device mounted at several points (bind mounts, containers) must count once.
        let mut seen_devices = HashSet::new();
        for disk in self.disks.iter() {
            if seen_devices.insert(disk.name().to_owned()) {
                let usage = disk.usage();
                counters.disk_read_bytes += usage.total_read_bytes;
                counters.disk_write_bytes += usage.total_written_bytes;
            }
        }
        for data in self.networks.values() {
            // Loopback traffic never leaves the machine, so it is not billed.
            if is_loopback(data.ip_networks().iter().map(|network| network.addr)) {
                continue;
            }
            counters.net_rx_bytes += data.total_received();
            counters.net_tx_bytes += data.total_transmitted();
        }
        counters
    }
}

/// Whether an interface with these addresses is a loopback one (`lo` on Linux, `lo0` on macOS, any
/// name elsewhere): it has addresses and every one is a loopback address.
fn is_loopback(addresses: impl Iterator<Item = std::net::IpAddr>) -> bool {
    let mut any = false;
    for address in addresses {
        if !address.is_loopback() {
            return false;
        }
        any = true;
    }
    any
}

/// Runs a sampler on its own thread, handing one reading per `interval` to `deliver` until it returns false.
pub fn spawn(
    mut sampler: Sampler,
    interval: Duration,
    deliver: impl Fn(Reading) -> bool + Send + 'static,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().name("sampler".into()).spawn(move || {
        let mut next = Instant::now() + interval;
        loop {
            thread::sleep(next.saturating_duration_since(Instant::now()));
            next = next_tick(next, interval, Instant::now());
            if let Some(reading) = sampler.read()
                && !deliver(reading)
            {
                return;
            }
        }
    })
}

/// The tick after `due`. Ticks missed while the process was stopped or starved are skipped, not
/// fired back to back: the next reading covers the whole elapsed time, and the window weights it
/// by that time.
pub fn next_tick(due: Instant, interval: Duration, now: Instant) -> Instant {
    let next = due + interval;
    if next > now { next } else { now + interval }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interface_is_loopback_by_its_addresses_not_its_name() {
        let loopback = ["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        assert!(is_loopback(loopback.into_iter()));
        let ethernet = ["10.1.2.3".parse().unwrap(), "fe80::1".parse().unwrap()];
        assert!(!is_loopback(ethernet.into_iter()));
        assert!(!is_loopback(std::iter::empty()), "an interface without addresses is counted");
    }

    #[test]
    fn ticks_missed_in_a_stall_are_skipped() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        assert_eq!(next_tick(start, second, start + Duration::from_millis(3)), start + second, "on time");
        let after_stall = start + Duration::from_secs(90);
        assert_eq!(next_tick(start, second, after_stall), after_stall + second, "one tick after a 90 s stall, not 90");
    }
}
