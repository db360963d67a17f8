//! Placing readings: each reading's lived time goes on the record timeline and into the open
//! window; a span the machine did not live becomes records of its own; a long (late) reading is
//! cut at the longest window. See docs/record.md, "Time: two clocks, one timeline".

use super::super::transport::Transport;
use super::Agent;
use crate::collect::Reading;
use crate::collect::clock::ClockReading;
use crate::collect::timeline::Placement;
use crate::record::{RecordKind, Trigger, UnixMillis};

/// A window may run past the longest window by this much before a long (late) reading is cut in
/// two at the limit: an ordinary one-second reading just closes the window after it.
pub(super) const SPLIT_SLACK_MILLIS: i64 = 5_000;

impl<T: Transport> Agent<T> {
    /// Places a reading on the record timeline and adds its lived time to the open window; a span
    /// the machine did not live before it becomes records of its own. A rule that has held long
    /// enough, the auto-send interval or the longest window closes the window. Returns the reading
    /// as placed (`at` where its lived time ends), which is what the charts draw.
    pub fn on_reading(&mut self, reading: &Reading) -> Reading {
        let placed = self.place(reading);
        self.last_reading = Some(*reading);
        if let Some(trigger) = self.settings.policy.observe(&placed) {
            self.close_window(trigger);
        }
        for rule in self.settings.policy.take_episodes() {
            self.status.threshold_episodes += 1;
            self.status.last_threshold = Some(rule);
        }
        let reading_millis = self.settings.sample_interval.as_millis() as i64;
        if let Some(trigger) = self.settings.policy.due(self.window.start(), self.window.end(), reading_millis) {
            self.close_window(trigger);
        }
        placed
    }

    /// Places a reading on the timeline and adds it to the window; returns it as placed.
    fn place(&mut self, reading: &Reading) -> Reading {
        let placement = self.timeline.place(reading.clocks, reading.elapsed_millis);
        self.record_unlived(&placement);
        if placement.clock_step {
            tracing::warn!(
                "the wall clock was stepped (it reads {}, the record timeline is at {}); windows keep the length this machine ran and never overlap",
                reading.clocks.wall,
                placement.to
            );
            self.window.note_clock_step();
        }
        if placement.late_millis > 0 {
            tracing::warn!(
                "a reading came {:.1} s late (the agent was stopped or starved); that time is billed and marked late",
                placement.late_millis as f64 / 1000.0
            );
        }
        let placed = Reading { at: placement.to, ..*reading };
        self.add_lived(&placed, placement.to, placement.late_millis);
        placed
    }

    /// Stopping: the moments since the last reading (under one sample interval) were lived but not
    /// read; they join the window at the last reading's levels, with no counter growth measured.
    pub(super) fn add_tail(&mut self) {
        let Some(last) = self.last_reading else { return };
        let clocks = ClockReading::now();
        let elapsed_millis = (clocks.monotonic_millis - last.clocks.monotonic_millis).max(0) as u64;
        let tail = Reading {
            at: clocks.wall,
            clocks,
            elapsed_millis,
            disk_read_bytes: 0,
            disk_write_bytes: 0,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
            ..last
        };
        self.place(&tail);
    }

    /// Closes the open window where the agent last saw the machine and records each unlived span.
    fn record_unlived(&mut self, placement: &Placement) {
        if placement.unlived.is_empty() {
            return;
        }
        self.close_window(Trigger::Interval);
        for span in &placement.unlived {
            tracing::warn!(
                "{} from {} to {} ({:.1} min): recorded with zero usage",
                match span.kind {
                    RecordKind::Asleep => "this machine was asleep",
                    _ => "the wall clock was stepped forward",
                },
                span.start,
                span.end,
                span.end.millis_since(span.start) as f64 / 60_000.0
            );
            let records = self.window.unlived_records(*span, self.next_seq, &self.settings.facts);
            self.next_seq += records.len() as u64;
            self.held.extend(records);
        }
        self.store_held();
    }

    /// Adds a reading's lived time, ending at `to`, to the open window. A long reading (the first
    /// after a stall) that would carry the window well past the longest window is cut at the limit,
    /// its counts shared by time, so no window is much longer than the longest window.
    fn add_lived(&mut self, reading: &Reading, to: UnixMillis, late_millis: u64) {
        let longest = self.settings.policy.max_window().as_millis() as i64;
        let (mut rest, mut late_rest) = (*reading, late_millis);
        loop {
            let from = self.window.end();
            let limit = self.window.start().plus_millis(longest);
            if limit <= from {
                self.close_window(Trigger::Interval);
                continue;
            }
            if to.millis_since(limit) <= SPLIT_SLACK_MILLIS {
                self.window.add(&rest, to, late_rest);
                return;
            }
            let share = limit.millis_since(from) as f64 / to.millis_since(from) as f64;
            let (first, second) = rest.split(share);
            let late_first = ((late_rest as f64 * share).round() as u64).min(late_rest);
            self.window.add(&Reading { at: limit, ..first }, limit, late_first);
            self.close_window(Trigger::Interval);
            (rest, late_rest) = (second, late_rest - late_first);
        }
    }
}
