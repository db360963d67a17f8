//! The record timeline: where on the bill's time axis each reading's lived time goes.
//!
//! The wall clock alone cannot place a reading: it jumps when the machine sleeps or a person or NTP
//! steps it. The monotonic clock measures the time the system ran, so each reading covers exactly
//! as much record time as the monotonic clock moved. Where the wall clock moved further, the rest
//! is a span the machine did not live (asleep, or a forward step); where it moved less (a backward
//! step), the timeline runs on from where it was and never goes back. docs/record.md tells the rules.

use super::clock::ClockReading;
use crate::record::{RecordKind, UnixMillis};

/// Clock differences up to this are noise (NTP slews at most 0.5 ms a second), not steps.
const TOLERANCE_MILLIS: i64 = 250;
/// A reading is late when it covers more than this many sample intervals (plus the tolerance).
const LATE_AFTER_INTERVALS: i64 = 2;

/// A span of record time the machine did not live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnlivedSpan {
    /// First instant of the span.
    pub start: UnixMillis,
    /// First instant after it.
    pub end: UnixMillis,
    /// Asleep or a forward clock step.
    pub kind: RecordKind,
}

/// Where one reading went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Spans the machine did not live, just before the reading's lived time (oldest first).
    pub unlived: Vec<UnlivedSpan>,
    /// Start of the reading's lived time on the record timeline.
    pub from: UnixMillis,
    /// End of it: `to - from` is what the monotonic clock moved.
    pub to: UnixMillis,
    /// Part of `[from, to)` the agent should have seen earlier but could not (it stalled).
    pub late_millis: u64,
    /// Whether the wall clock was stepped (forward or back) since the previous reading.
    pub clock_step: bool,
}

/// The timeline of one agent run.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// Where the last placed reading ended: record time never goes back past it.
    position: UnixMillis,
    /// The clocks at the last reading; `None` before the first.
    last: Option<ClockReading>,
    /// How often readings are expected.
    interval_millis: i64,
}

impl Timeline {
    /// A timeline starting at `position` (the wall clock at start, or the last window's end if that
    /// is later, after a backward step) for readings every `interval_millis`.
    pub fn new(position: UnixMillis, interval_millis: i64) -> Timeline {
        Timeline { position, last: None, interval_millis: interval_millis.max(1) }
    }

    /// Where the last placed reading ended.
    pub fn position(&self) -> UnixMillis {
        self.position
    }

    /// Places a reading taken at `clocks` that covers `elapsed_millis` of monotonic time (the
    /// first one after start has no previous clocks, so its elapsed time stands in for them).
    pub fn place(&mut self, clocks: ClockReading, elapsed_millis: u64) -> Placement {
        let previous = self.last.replace(clocks).unwrap_or_else(|| {
            let elapsed = elapsed_millis as i64;
            ClockReading {
                wall: clocks.wall.plus_millis(-elapsed),
                monotonic_millis: clocks.monotonic_millis - elapsed,
                boot_millis: clocks.boot_millis.map(|boot| boot - elapsed),
            }
        });
        let lived = (clocks.monotonic_millis - previous.monotonic_millis).max(0);
        let wall_moved = clocks.wall.millis_since(previous.wall);
        // What the boot clock counted beyond the monotonic one: time suspended. Without a boot
        // clock a forward jump is taken as a sleep, the usual cause on a laptop.
        let suspended = match (previous.boot_millis, clocks.boot_millis) {
            (Some(before), Some(after)) => (after - before - lived).max(0),
            _ => (wall_moved - lived).max(0),
        };
        let stepped_by = wall_moved - lived - suspended;
        let clock_step = stepped_by.abs() > TOLERANCE_MILLIS;
        let lived_end = self.position.plus_millis(lived);
        let wall_ahead = clocks.wall.millis_since(lived_end);
        let mut unlived = Vec::new();
        let (from, to) = if wall_ahead > TOLERANCE_MILLIS {
            // The wall clock moved past the lived time: the difference was not lived. It sits
            // between the last moment the agent saw and the reading's lived time.
            let gap_end = clocks.wall.plus_millis(-lived);
            let asleep = suspended.min(wall_ahead);
            let asleep_end = self.position.plus_millis(asleep);
            if asleep > 0 {
                unlived.push(UnlivedSpan { start: self.position, end: asleep_end, kind: RecordKind::Asleep });
            }
            if gap_end > asleep_end {
                unlived.push(UnlivedSpan { start: asleep_end, end: gap_end, kind: RecordKind::ClockStep });
            }
            (gap_end, clocks.wall)
        } else if wall_ahead < -TOLERANCE_MILLIS {
            // The wall clock is behind the timeline (stepped back, now or before): run on by the
            // monotonic clock; the wall clock is rejoined once it passes the timeline again.
            (self.position, lived_end)
        } else {
            (self.position, clocks.wall.max(self.position))
        };
        self.position = to;
        let late_after = LATE_AFTER_INTERVALS * self.interval_millis + TOLERANCE_MILLIS;
        let late_millis = if lived > late_after { (lived - self.interval_millis) as u64 } else { 0 };
        let late_millis = late_millis.min(to.millis_since(from).max(0) as u64);
        Placement { unlived, from, to, late_millis, clock_step }
    }
}

#[cfg(test)]
mod tests;
