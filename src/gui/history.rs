//! The last hour of readings, kept in memory for the live charts, and the series drawn from them.

use std::collections::VecDeque;

use crate::collect::Reading;

/// The longest range the charts offer.
pub const KEEP_MILLIS: i64 = 3_600_000;
/// Points drawn per line at most; longer ranges are averaged into this many so a 1 h chart costs what a 1 min one does.
pub const MAX_POINTS: usize = 600;

/// A chart's time range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimeRange {
    /// The last minute.
    #[default]
    OneMinute,
    /// The last 15 minutes.
    FifteenMinutes,
    /// The last hour.
    OneHour,
}

impl TimeRange {
    /// Every range, in the order offered.
    pub const ALL: [TimeRange; 3] = [TimeRange::OneMinute, TimeRange::FifteenMinutes, TimeRange::OneHour];

    /// The range's length in seconds.
    pub fn seconds(self) -> f64 {
        match self {
            TimeRange::OneMinute => 60.0,
            TimeRange::FifteenMinutes => 900.0,
            TimeRange::OneHour => 3_600.0,
        }
    }

    /// The words on its button.
    pub fn label(self) -> &'static str {
        match self {
            TimeRange::OneMinute => "1 min",
            TimeRange::FifteenMinutes => "15 min",
            TimeRange::OneHour => "1 h",
        }
    }
}

/// Readings in arrival order, at most [`KEEP_MILLIS`] old.
#[derive(Debug, Default)]
pub struct History {
    readings: VecDeque<Reading>,
}

impl History {
    /// Adds a reading and forgets those older than an hour before it.
    pub fn push(&mut self, reading: Reading) {
        self.readings.push_back(reading);
        let oldest_kept = reading.at.0 - KEEP_MILLIS;
        while self.readings.front().is_some_and(|front| front.at.0 < oldest_kept) {
            self.readings.pop_front();
        }
    }

    /// The newest reading.
    pub fn latest(&self) -> Option<&Reading> {
        self.readings.back()
    }

    /// Readings held.
    pub fn len(&self) -> usize {
        self.readings.len()
    }

    /// Whether no reading arrived yet.
    pub fn is_empty(&self) -> bool {
        self.readings.is_empty()
    }

    /// `[seconds before the newest reading, value]` for each reading within `range`, averaged down to
    /// at most [`MAX_POINTS`] points. Where the machine did not live the time between two readings
    /// (it slept, or the clock was stepped forward) a point with a NaN value marks a break, so the
    /// chart shows a gap instead of a line across time that was not there.
    pub fn series(&self, range: TimeRange, value: impl Fn(&Reading) -> f64) -> Vec<[f64; 2]> {
        let Some(latest) = self.latest() else { return Vec::new() };
        let mut points = Vec::with_capacity(self.readings.len());
        let mut previous: Option<&Reading> = None;
        for reading in &self.readings {
            let seconds = (reading.at.0 - latest.at.0) as f64 / 1000.0;
            if seconds >= -range.seconds() {
                if previous.is_some_and(|previous| lived_apart(previous, reading)) {
                    points.push([seconds, f64::NAN]);
                }
                points.push([seconds, value(reading)]);
            }
            previous = Some(reading);
        }
        decimate(&points, MAX_POINTS)
    }
}

/// Whether more time lies between two readings than the second one covers (plus a little slack):
/// a span the machine did not live.
fn lived_apart(previous: &Reading, next: &Reading) -> bool {
    next.at.millis_since(previous.at) > next.elapsed_millis as i64 + GAP_SLACK_MILLIS
}

/// Delay between readings that is still drawn as one line.
const GAP_SLACK_MILLIS: i64 = 2_000;

/// The points of a series split at its breaks (see [`History::series`]), one run per line drawn.
pub fn runs(points: &[[f64; 2]]) -> impl Iterator<Item = &[[f64; 2]]> {
    points.split(|point| point[1].is_nan()).filter(|run| !run.is_empty())
}

/// Averages consecutive points in groups so that at most `limit` remain.
fn decimate(points: &[[f64; 2]], limit: usize) -> Vec<[f64; 2]> {
    if points.len() <= limit {
        return points.to_vec();
    }
    let group = points.len().div_ceil(limit);
    points
        .chunks(group)
        .map(|chunk| {
            let count = chunk.len() as f64;
            let (x, y) = chunk.iter().fold((0.0, 0.0), |(x, y), point| (x + point[0], y + point[1]));
            [x / count, y / count]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::UnixMillis;

    fn reading(at_secs: i64, cpu_pct: f64) -> Reading {
        Reading::steady_for_tests(UnixMillis(1_800_000_000_000 + at_secs * 1000), cpu_pct)
    }

    #[test]
    fn series_end_at_zero_and_cover_only_the_range() {
        let mut history = History::default();
        for second in 0..200 {
            history.push(reading(second, second as f64));
        }
        let minute = history.series(TimeRange::OneMinute, |reading| reading.cpu_pct);
        assert_eq!(minute.len(), 61);
        assert_eq!(minute.first(), Some(&[-60.0, 139.0]));
        assert_eq!(minute.last(), Some(&[0.0, 199.0]));
        assert_eq!(history.series(TimeRange::OneHour, |reading| reading.cpu_pct).len(), 200);
    }

    #[test]
    fn a_sleep_between_readings_breaks_the_line() {
        let mut history = History::default();
        for second in 0..10 {
            history.push(reading(second, 30.0));
        }
        // The machine slept 20 minutes: the next reading covers one second, 20 minutes later.
        for second in 1_210..1_220 {
            history.push(reading(second, 60.0));
        }
        let hour = history.series(TimeRange::OneHour, |reading| reading.cpu_pct);
        let lines: Vec<&[[f64; 2]]> = runs(&hour).collect();
        assert_eq!(lines.len(), 2, "two lines with a gap between: {hour:?}");
        assert!(lines[0].iter().all(|point| point[1] == 30.0) && lines[1].iter().all(|point| point[1] == 60.0));
        assert_eq!(lines[0].last().unwrap()[0], -1_219.0 + 9.0);
        assert_eq!(lines[1].first().unwrap()[0], -9.0);
    }

    #[test]
    fn an_hour_is_kept_and_long_ranges_are_averaged() {
        let mut history = History::default();
        for second in 0..5_000 {
            history.push(reading(second, 50.0));
        }
        assert_eq!(history.len(), 3_601, "older readings are dropped");
        let hour = history.series(TimeRange::OneHour, |reading| reading.cpu_pct);
        assert!(hour.len() <= MAX_POINTS, "{} points", hour.len());
        assert!(hour.iter().all(|[seconds, cpu]| (-3_600.0..=0.0).contains(seconds) && *cpu == 50.0));
    }
}
