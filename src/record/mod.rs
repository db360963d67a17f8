//! The usage record: one type, one JSON form (a CloudEvents 1.0 structured event), validated on parse.
//!
//! Every boundary (outbox, Kafka, ledger, feed) goes through [`UsageRecord::to_json`] and
//! [`UsageRecord::parse`], so a record that is accepted anywhere is accepted everywhere.

mod time;
mod wire;

use std::fmt;

pub use self::time::{EARLIEST, LATEST, TimeRange, UnixMillis};

/// CloudEvents `type` of a usage record as this version writes it; the suffix is the version of `data`.
pub const EVENT_TYPE: &str = "usagebill.usage.v2";
/// The `type` of the first version, still read: its records have no kind, late time or clock steps.
pub const EVENT_TYPE_V1: &str = "usagebill.usage.v1";
/// Longest window accepted from a version-1 record. Version 1 agents timed windows by the wall clock
/// alone, so a long one may span a sleep or a clock step that would be billed as usage.
pub const MAX_V1_WINDOW_MILLIS: i64 = 3_600_000;
/// CloudEvents spec version we write and accept.
pub const SPEC_VERSION: &str = "1.0";
/// The `content-type` header of a record on Kafka: the CloudEvents Kafka protocol binding's mark of
/// a structured-mode event.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";
/// Largest encoded record accepted; real ones are about 450 bytes.
pub const MAX_RECORD_BYTES: usize = 8 * 1024;
/// Longest machine id accepted.
pub const MAX_MACHINE_ID_LEN: usize = 128;
/// Longest window accepted (31 days): longer ones come from a broken clock.
pub const MAX_WINDOW_MILLIS: i64 = 31 * 24 * 3_600_000;
/// Largest plausible core count.
pub const MAX_CPU_CORES: u32 = 65_536;

/// Why a window was closed and sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// The person pressed "send now" (or the agent is stopping).
    Manual,
    /// The auto-send interval elapsed, or the window reached its longest allowed length.
    Interval,
    /// A threshold rule held for its duration.
    Threshold,
    /// Re-emitted from storage (simulation, outbox merges).
    Replay,
}

impl Trigger {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Interval => "interval",
            Trigger::Threshold => "threshold",
            Trigger::Replay => "replay",
        }
    }

    /// Parses the JSON spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "manual" => Trigger::Manual,
            "interval" => Trigger::Interval,
            "threshold" => Trigger::Threshold,
            "replay" => Trigger::Replay,
            _ => return None,
        })
    }
}

/// What a window was: time the machine lived and used, or time it did not live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RecordKind {
    /// The machine ran: levels and counters measured over the window.
    #[default]
    Usage,
    /// The machine was suspended: the wall clock and the boot clock moved, the monotonic clock did not.
    Asleep,
    /// The wall clock was stepped forward: only the wall clock moved, so no time passed at all.
    ClockStep,
}

impl RecordKind {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Usage => "usage",
            RecordKind::Asleep => "asleep",
            RecordKind::ClockStep => "clock_step",
        }
    }

    /// Parses the JSON spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "usage" => RecordKind::Usage,
            "asleep" => RecordKind::Asleep,
            "clock_step" => RecordKind::ClockStep,
            _ => return None,
        })
    }

    /// Whether the machine lived (and used) the window.
    pub fn is_lived(self) -> bool {
        self == RecordKind::Usage
    }
}

/// What one machine used over the window `[start, end)`.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRecord {
    /// Stable id of the machine (the CloudEvents `source`).
    pub machine_id: String,
    /// Per-machine sequence number, from 1, without holes.
    pub seq: u64,
    /// First instant covered.
    pub start: UnixMillis,
    /// First instant not covered; the next record of the machine starts here.
    pub end: UnixMillis,
    /// Average CPU busy over the window, 0–100 of the whole machine.
    pub cpu_pct: f64,
    /// Logical CPU cores of the machine.
    pub cpu_cores: u32,
    /// Average memory in use (total − available) over the window.
    pub mem_used_bytes: u64,
    /// Installed memory.
    pub mem_total_bytes: u64,
    /// Bytes read from disks during the window.
    pub disk_read_bytes: u64,
    /// Bytes written to disks during the window.
    pub disk_write_bytes: u64,
    /// Bytes received on network interfaces during the window.
    pub net_rx_bytes: u64,
    /// Bytes sent on network interfaces during the window.
    pub net_tx_bytes: u64,
    /// Readings averaged into the window.
    pub samples: u32,
    /// Why the window was closed.
    pub trigger: Trigger,
    /// Usage, or a span the machine did not live (asleep, a forward clock step) with zero usage.
    pub kind: RecordKind,
    /// Part of the window covered by readings that came late (the agent stalled: SIGSTOP, a paused
    /// VM, overload): billed, since the machine lived it, and shown so a report can flag it.
    pub late_millis: u64,
    /// Wall-clock steps (forward or back) the agent saw while the window was open.
    pub clock_steps: u32,
}

/// A record that does not parse or validate; names the field and the value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    /// The bytes are larger than [`MAX_RECORD_BYTES`].
    #[error("record is {size} bytes, more than the {MAX_RECORD_BYTES}-byte limit")]
    TooLarge {
        /// Size of the rejected message.
        size: usize,
    },
    /// Not JSON, or JSON of the wrong shape.
    #[error("not a usage record: {0}")]
    Malformed(String),
    /// A field holds a value outside its range.
    #[error("field `{field}` = {value}: {reason}")]
    Invalid {
        /// Dotted path of the field, e.g. `data.cpu_pct`.
        field: &'static str,
        /// The offending value as it was read.
        value: String,
        /// What was expected.
        reason: &'static str,
    },
}

impl RecordError {
    /// The field named by the error, when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            RecordError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

fn invalid(field: &'static str, value: impl fmt::Display, reason: &'static str) -> RecordError {
    RecordError::Invalid { field, value: value.to_string(), reason }
}

impl UsageRecord {
    /// The stable record id, `machine_id/seq`: the same across re-sends.
    pub fn id(&self) -> String {
        record_id(&self.machine_id, self.seq)
    }

    /// A steady window (the simulator's constant profile, and the tests' usual record): window `seq`
    /// of `machine` when every window lasts `window_millis` and the first starts at `first_start`;
    /// 50 % of 8 cores, 4 GiB of 16 GiB in use, and 1 MB/s each of disk reads, disk writes, received
    /// and sent. Override fields with struct update syntax.
    pub fn steady(machine: &str, seq: u64, first_start: UnixMillis, window_millis: i64) -> UsageRecord {
        let start = first_start.plus_millis((seq as i64 - 1) * window_millis);
        let bytes_at_1_mb_per_second = 1_000 * window_millis as u64;
        UsageRecord {
            machine_id: machine.into(),
            seq,
            start,
            end: start.plus_millis(window_millis),
            cpu_pct: 50.0,
            cpu_cores: 8,
            mem_used_bytes: 4 << 30,
            mem_total_bytes: 16 << 30,
            disk_read_bytes: bytes_at_1_mb_per_second,
            disk_write_bytes: bytes_at_1_mb_per_second,
            net_rx_bytes: bytes_at_1_mb_per_second,
            net_tx_bytes: bytes_at_1_mb_per_second,
            samples: (window_millis / 1000).max(1) as u32,
            trigger: Trigger::Interval,
            kind: RecordKind::Usage,
            late_millis: 0,
            clock_steps: 0,
        }
    }

    /// This window as a span the machine did not live, of `kind`: no CPU, counts, readings or late
    /// time. An asleep span keeps the memory in use (a rate card may price reserved memory); a
    /// clock step keeps none, since no time passed.
    pub fn unlived(self, kind: RecordKind) -> UsageRecord {
        let mem_used_bytes = if kind == RecordKind::Asleep { self.mem_used_bytes } else { 0 };
        UsageRecord {
            kind,
            cpu_pct: 0.0,
            mem_used_bytes,
            disk_read_bytes: 0,
            disk_write_bytes: 0,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
            samples: 0,
            late_millis: 0,
            ..self
        }
    }

    /// Window length in milliseconds.
    pub fn window_millis(&self) -> i64 {
        self.end.millis_since(self.start)
    }

    /// Encodes the record as its CloudEvents JSON form.
    pub fn to_json(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Parses and validates a CloudEvents JSON usage record.
    pub fn parse(bytes: &[u8]) -> Result<UsageRecord, RecordError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge { size: bytes.len() });
        }
        let (record, claimed_id) = wire::decode(bytes)?;
        record.validate()?;
        if claimed_id != record.id() {
            return Err(invalid("id", claimed_id, "must be `source/seq`"));
        }
        Ok(record)
    }

    /// Checks every field's range; the error names the first bad field.
    pub fn validate(&self) -> Result<(), RecordError> {
        validate_machine_id(&self.machine_id).map_err(|reason| invalid("source", &self.machine_id, reason))?;
        if self.seq == 0 || self.seq > i64::MAX as u64 {
            return Err(invalid("data.seq", self.seq, "must be between 1 and 2^63-1"));
        }
        if self.start < EARLIEST || self.start > LATEST {
            return Err(invalid("data.start", self.start, "must lie between 2000 and 2200"));
        }
        if self.end <= self.start {
            return Err(invalid("data.end", self.end, "must be later than data.start"));
        }
        if self.window_millis() > MAX_WINDOW_MILLIS {
            return Err(invalid("data.end", self.end, "window longer than 31 days"));
        }
        if !(self.cpu_pct.is_finite() && (0.0..=100.0).contains(&self.cpu_pct)) {
            return Err(invalid("data.cpu_pct", self.cpu_pct, "must be between 0 and 100"));
        }
        if self.cpu_cores == 0 || self.cpu_cores > MAX_CPU_CORES {
            return Err(invalid("data.cpu_cores", self.cpu_cores, "must be between 1 and 65536"));
        }
        if self.mem_total_bytes == 0 || self.mem_total_bytes > i64::MAX as u64 {
            return Err(invalid("data.mem_total_bytes", self.mem_total_bytes, "must be positive"));
        }
        if self.mem_used_bytes > self.mem_total_bytes {
            return Err(invalid("data.mem_used_bytes", self.mem_used_bytes, "exceeds data.mem_total_bytes"));
        }
        let counters = [
            ("data.disk_read_bytes", self.disk_read_bytes),
            ("data.disk_write_bytes", self.disk_write_bytes),
            ("data.net_rx_bytes", self.net_rx_bytes),
            ("data.net_tx_bytes", self.net_tx_bytes),
        ];
        for (field, value) in counters {
            if value > i64::MAX as u64 {
                return Err(invalid(field, value, "must fit in a signed 64-bit integer"));
            }
            if value > 0 && !self.kind.is_lived() {
                return Err(invalid(field, value, "must be 0 in a window the machine did not live"));
            }
        }
        if !self.kind.is_lived() && (self.cpu_pct != 0.0 || self.samples != 0 || self.late_millis != 0) {
            return Err(invalid("data.kind", self.kind.as_str(), "a window the machine did not live has no CPU, samples or late time"));
        }
        if self.late_millis > self.window_millis() as u64 {
            return Err(invalid("data.late_millis", self.late_millis, "longer than the window"));
        }
        Ok(())
    }
}

/// The record id of `seq` of `machine_id`.
pub fn record_id(machine_id: &str, seq: u64) -> String {
    format!("{machine_id}/{seq}")
}

/// Machine ids are 1–128 characters of `A-Z a-z 0-9 . _ -`, so they are safe in keys, paths and ids.
pub fn validate_machine_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() || id.len() > MAX_MACHINE_ID_LEN {
        return Err("machine id must be 1 to 128 characters");
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err("machine id may hold only letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
