//! Windows: readings accumulate into the open window until it is closed into a usage record.
//! A window spans exactly the record time its readings cover, so the next window starts where the
//! last one ended and the windows of a machine tile time.

use super::Reading;
use super::rate::TimeWeighted;
use super::timeline::UnlivedSpan;
use crate::record::{RecordKind, Trigger, UnixMillis, UsageRecord};

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
    /// Where the covered time ends: the end of the last reading added.
    end: UnixMillis,
    cpu_pct: TimeWeighted,
    mem_used_bytes: TimeWeighted,
    disk_read_bytes: u64,
    disk_write_bytes: u64,
    net_rx_bytes: u64,
    net_tx_bytes: u64,
    samples: u32,
    late_millis: u64,
    clock_steps: u32,
    /// Memory in use at the latest reading: what an asleep span keeps reserved.
    last_mem_used_bytes: u64,
}

impl OpenWindow {
    /// A window opening at `start`.
    pub fn new(start: UnixMillis) -> Self {
        OpenWindow {
            start,
            end: start,
            cpu_pct: TimeWeighted::default(),
            mem_used_bytes: TimeWeighted::default(),
            disk_read_bytes: 0,
            disk_write_bytes: 0,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
            samples: 0,
            late_millis: 0,
            clock_steps: 0,
            last_mem_used_bytes: 0,
        }
    }

    /// Where the open window began.
    pub fn start(&self) -> UnixMillis {
        self.start
    }

    /// Where the time its readings cover ends.
    pub fn end(&self) -> UnixMillis {
        self.end
    }

    /// Readings in the open window.
    pub fn samples(&self) -> u32 {
        self.samples
    }

    /// Counts a wall-clock step seen while the window is open.
    pub fn note_clock_step(&mut self) {
        self.clock_steps += 1;
    }

    /// Adds a reading whose lived time lies at `[self.end(), to)`; `late_millis` of it came late.
    /// Levels are weighted by the time the reading covers, so readings bunched after a stall count
    /// for the milliseconds they cover, not one each.
    pub fn add(&mut self, reading: &Reading, to: UnixMillis, late_millis: u64) {
        let covered = to.millis_since(self.end).max(0) as f64;
        self.cpu_pct.add(reading.cpu_pct, covered);
        self.mem_used_bytes.add(reading.mem_used_bytes as f64, covered);
        self.disk_read_bytes += reading.disk_read_bytes;
        self.disk_write_bytes += reading.disk_write_bytes;
        self.net_rx_bytes += reading.net_rx_bytes;
        self.net_tx_bytes += reading.net_tx_bytes;
        self.samples += 1;
        self.late_millis += late_millis;
        self.last_mem_used_bytes = reading.mem_used_bytes;
        self.end = self.end.max(to);
    }

    /// Closes the window at the end of what its readings cover into record `seq`, and opens the
    /// next one there. `None` (the window stays as it is) when it covers no time yet.
    pub fn close(&mut self, seq: u64, facts: &MachineFacts, trigger: Trigger) -> Option<UsageRecord> {
        if self.end <= self.start {
            return None;
        }
        let cpu_pct = self.cpu_pct.value().unwrap_or(0.0).clamp(0.0, 100.0);
        let mem_used = self.mem_used_bytes.value().map_or(0, |mean| mean.round() as u64);
        let window_millis = self.end.millis_since(self.start) as u64;
        let record = UsageRecord {
            machine_id: facts.machine_id.clone(),
            seq,
            start: self.start,
            end: self.end,
            cpu_pct: round_to_thousandths(cpu_pct),
            cpu_cores: facts.cpu_cores,
            mem_used_bytes: mem_used.min(facts.mem_total_bytes),
            mem_total_bytes: facts.mem_total_bytes,
            disk_read_bytes: self.disk_read_bytes,
            disk_write_bytes: self.disk_write_bytes,
            net_rx_bytes: self.net_rx_bytes,
            net_tx_bytes: self.net_tx_bytes,
            samples: self.samples,
            trigger,
            kind: RecordKind::Usage,
            late_millis: self.late_millis.min(window_millis),
            clock_steps: self.clock_steps,
        };
        self.restart_at(self.end);
        Some(record)
    }

    /// Records for a span the machine did not live, split at UTC hours so each lands in the hour,
    /// day and month it belongs to; the open window (which must be closed first) moves past it.
    /// An asleep span keeps the memory in use when the machine went to sleep (a rate card may price
    /// it); a clock step keeps nothing, since no time passed.
    pub fn unlived_records(&mut self, span: UnlivedSpan, first_seq: u64, facts: &MachineFacts) -> Vec<UsageRecord> {
        let mut records = Vec::new();
        let mut start = span.start;
        while start < span.end {
            let next_hour = UnixMillis(start.0 - start.0.rem_euclid(HOUR_MILLIS) + HOUR_MILLIS);
            let end = next_hour.min(span.end);
            let held = UsageRecord {
                machine_id: facts.machine_id.clone(),
                seq: first_seq + records.len() as u64,
                start,
                end,
                cpu_pct: 0.0,
                cpu_cores: facts.cpu_cores,
                mem_used_bytes: self.last_mem_used_bytes.min(facts.mem_total_bytes),
                mem_total_bytes: facts.mem_total_bytes,
                disk_read_bytes: 0,
                disk_write_bytes: 0,
                net_rx_bytes: 0,
                net_tx_bytes: 0,
                samples: 0,
                trigger: Trigger::Interval,
                kind: RecordKind::Usage,
                late_millis: 0,
                clock_steps: 0,
            };
            records.push(held.unlived(span.kind));
            start = end;
        }
        self.restart_at(self.end.max(span.end));
        records
    }

    fn restart_at(&mut self, start: UnixMillis) {
        let last_mem_used_bytes = self.last_mem_used_bytes;
        *self = OpenWindow::new(start);
        self.last_mem_used_bytes = last_mem_used_bytes;
    }
}

const HOUR_MILLIS: i64 = 3_600_000;

/// Keeps records short and their decimal form exact: 37.125 rather than 37.12499999.
fn round_to_thousandths(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests;
