//! The timeline against an injected clock pair: the wall, monotonic and boot clocks moved
//! independently, one reading a second, as on a laptop that sleeps, is stepped and stalls.

use super::*;

/// 2026-11-30T20:00:00Z: four hours before a month ends.
const EVENING: i64 = 1_764_532_800_000;
const SECOND: i64 = 1_000;
const HOUR: i64 = 3_600_000;

/// Clocks that a test moves by hand.
struct Machine {
    clocks: ClockReading,
    timeline: Timeline,
}

impl Machine {
    fn new() -> Machine {
        let clocks = ClockReading { wall: UnixMillis(EVENING), monotonic_millis: 5_000, boot_millis: Some(9_000) };
        Machine { clocks, timeline: Timeline::new(UnixMillis(EVENING), SECOND) }
    }

    /// The machine runs `millis`: every clock moves by it.
    fn run(&mut self, millis: i64) -> Placement {
        self.move_clocks(millis, millis, millis)
    }

    /// The clocks move by these amounts; a reading is taken at the end and placed.
    fn move_clocks(&mut self, wall: i64, monotonic: i64, boot: i64) -> Placement {
        self.clocks.wall = self.clocks.wall.plus_millis(wall);
        self.clocks.monotonic_millis += monotonic;
        self.clocks.boot_millis = self.clocks.boot_millis.map(|millis| millis + boot);
        self.timeline.place(self.clocks, monotonic.max(0) as u64)
    }

    /// Runs `seconds` one reading a second; returns the lived milliseconds placed.
    fn run_seconds(&mut self, seconds: i64) -> i64 {
        (0..seconds).map(|_| self.run(SECOND)).map(|placed| placed.to.millis_since(placed.from)).sum()
    }
}

#[test]
fn a_running_machine_follows_the_wall_clock() {
    let mut machine = Machine::new();
    assert_eq!(machine.run_seconds(60), 60 * SECOND);
    let last = machine.run(SECOND);
    assert_eq!((last.from, last.to), (UnixMillis(EVENING + 60 * SECOND), UnixMillis(EVENING + 61 * SECOND)));
    assert!(last.unlived.is_empty() && !last.clock_step && last.late_millis == 0);
}

#[test]
fn a_suspend_of_eight_hours_is_one_asleep_span_and_not_usage() {
    let mut machine = Machine::new();
    machine.run_seconds(10);
    // Suspended 8 h in the middle of a one-second tick: the wall and boot clocks count the night,
    // the monotonic clock does not.
    let woke = machine.move_clocks(8 * HOUR + SECOND, SECOND, 8 * HOUR + SECOND);
    assert_eq!(
        woke.unlived,
        vec![UnlivedSpan {
            start: UnixMillis(EVENING + 10 * SECOND),
            end: UnixMillis(EVENING + 8 * HOUR + 10 * SECOND),
            kind: RecordKind::Asleep
        }]
    );
    assert_eq!(woke.to.millis_since(woke.from), SECOND, "only the second it ran is lived");
    assert_eq!(woke.to, UnixMillis(EVENING + 8 * HOUR + 11 * SECOND), "the timeline is back on the wall clock");
    assert!(!woke.clock_step, "the boot clock explains the jump: no step");
    assert_eq!(machine.run_seconds(5), 5 * SECOND);
}

#[test]
fn a_forward_step_of_two_hours_is_a_clock_step_span() {
    let mut machine = Machine::new();
    machine.run_seconds(10);
    let stepped = machine.move_clocks(2 * HOUR + SECOND, SECOND, SECOND);
    assert_eq!(stepped.unlived.len(), 1);
    assert_eq!(stepped.unlived[0].kind, RecordKind::ClockStep);
    assert_eq!(stepped.unlived[0].end.millis_since(stepped.unlived[0].start), 2 * HOUR);
    assert!(stepped.clock_step);
    assert_eq!(stepped.to.millis_since(stepped.from), SECOND);
}

#[test]
fn a_backward_step_of_an_hour_neither_overlaps_nor_loses_time() {
    let mut machine = Machine::new();
    machine.run_seconds(10);
    let stepped = machine.move_clocks(SECOND - HOUR, SECOND, SECOND);
    assert!(stepped.clock_step && stepped.unlived.is_empty());
    assert_eq!((stepped.from, stepped.to), (UnixMillis(EVENING + 10 * SECOND), UnixMillis(EVENING + 11 * SECOND)));
    // The wall clock is an hour behind the timeline now; the timeline runs on by the monotonic clock.
    let mut end = stepped.to;
    for _ in 0..30 {
        let placed = machine.run(SECOND);
        assert_eq!(placed.from, end, "each reading starts where the last ended");
        assert!(!placed.clock_step, "the step is counted once");
        end = placed.to;
    }
    assert_eq!(end, UnixMillis(EVENING + 41 * SECOND));
    // NTP puts the wall clock right again (a step forward by the hour): the timeline rejoins it.
    let rejoined = machine.move_clocks(HOUR + SECOND, SECOND, SECOND);
    assert!(rejoined.unlived.is_empty(), "time already counted is not counted as a gap");
    assert_eq!(rejoined.to, UnixMillis(EVENING + 42 * SECOND));
    assert!(rejoined.clock_step);
}

#[test]
fn a_stall_of_ninety_seconds_is_lived_and_marked_late() {
    let mut machine = Machine::new();
    machine.run_seconds(10);
    // SIGSTOP: every clock runs on, the agent does not; the first reading after covers it all.
    let resumed = machine.run(90 * SECOND);
    assert!(resumed.unlived.is_empty() && !resumed.clock_step);
    assert_eq!(resumed.to.millis_since(resumed.from), 90 * SECOND);
    assert_eq!(resumed.late_millis, 89 * SECOND as u64, "all but the one interval it should have covered");
}

#[test]
fn several_steps_in_one_window_each_count_and_nothing_overlaps() {
    let mut machine = Machine::new();
    let mut end = UnixMillis(EVENING);
    let mut lived = 0;
    let mut steps = 0;
    for (wall, monotonic) in [(SECOND, SECOND), (-5 * SECOND, SECOND), (30 * SECOND, SECOND), (-HOUR, SECOND), (SECOND, SECOND), (0, 0)] {
        let placed = machine.move_clocks(wall, monotonic, monotonic);
        assert!(placed.from >= end, "no reading starts before the last ended");
        assert!(placed.unlived.iter().all(|span| span.start >= end && span.end <= placed.from));
        lived += placed.to.millis_since(placed.from);
        steps += u32::from(placed.clock_step);
        end = placed.to;
    }
    assert_eq!(lived, 5 * SECOND, "the lived time is the monotonic time");
    assert_eq!(steps, 3);
}

#[test]
fn a_reading_with_no_monotonic_time_covers_nothing() {
    let mut machine = Machine::new();
    machine.run_seconds(3);
    let placed = machine.move_clocks(0, 0, 0);
    assert_eq!(placed.from, placed.to);
    assert!(placed.unlived.is_empty() && placed.late_millis == 0);
}

#[test]
fn a_suspend_across_the_month_boundary_starts_before_and_ends_after_it() {
    let mut machine = Machine::new();
    machine.run_seconds(60);
    let woke = machine.move_clocks(10 * HOUR, SECOND, 10 * HOUR);
    let span = woke.unlived[0];
    let month_end = UnixMillis(EVENING + 4 * HOUR);
    assert!(span.start < month_end && span.end > month_end, "{span:?}");
}

#[test]
fn a_step_back_of_days_keeps_the_timeline_on_the_monotonic_clock() {
    let mut machine = Machine::new();
    machine.run_seconds(10);
    let stepped = machine.move_clocks(-3 * 24 * HOUR, SECOND, SECOND);
    assert!(stepped.clock_step);
    assert_eq!(stepped.to, UnixMillis(EVENING + 11 * SECOND));
    assert_eq!(machine.run_seconds(10), 10 * SECOND);
}

#[test]
fn without_a_boot_clock_a_forward_jump_is_taken_as_sleep() {
    let mut machine = Machine::new();
    machine.clocks.boot_millis = None;
    machine.run_seconds(3);
    let woke = machine.move_clocks(HOUR, SECOND, 0);
    assert_eq!(woke.unlived[0].kind, RecordKind::Asleep);
}
