//! A billing period as statements name it: a calendar month in UTC ("2026-11") by default, or an
//! ISO week ("2026-W48") or a day ("2026-11-05"); and when it closes (its end plus the grace).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, Month, OffsetDateTime, Weekday};

use crate::billing::cost_engine::calendar::{DAY_MILLIS, month_of};
pub use crate::duration::PeriodLength;
use crate::record::UnixMillis;

/// The grace period when the config names none: records of the month that arrive within a day of
/// its end are still billed on its statement.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);

/// One billing period: a calendar month, an ISO week or a day, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    start: UnixMillis,
    length: PeriodLength,
}

/// A period text that is not a month, week or day written as statements write them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("period {0:?} is not a month (YYYY-MM, e.g. \"2026-11\"), an ISO week (YYYY-Www, e.g. \"2026-W48\") or a day (YYYY-MM-DD)")]
pub struct PeriodError(pub String);

/// How periods run: their length and how long after its end one closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cycle {
    /// A month, a week or a day.
    pub length: PeriodLength,
    /// How long after its end a period closes.
    pub grace: Duration,
}

impl Cycle {
    /// Calendar months that close a day after they end.
    pub const DEFAULT: Cycle = Cycle { length: PeriodLength::Month, grace: DEFAULT_GRACE };

    /// The period holding `instant`.
    pub fn period_of(self, instant: UnixMillis) -> Period {
        Period::holding(instant, self.length)
    }

    /// When `period` closes: its end plus the grace.
    pub fn closes_at(self, period: Period) -> UnixMillis {
        period.end().plus_millis(self.grace.as_millis() as i64)
    }

    /// The latest period whose close time has passed at `now`.
    pub fn latest_closable(self, now: UnixMillis) -> Period {
        let mut period = self.period_of(now);
        while self.closes_at(period) > now {
            period = period.previous();
        }
        period
    }

    /// Parses a period written for this cycle; one of another length is refused, naming both.
    pub fn parse(self, text: &str) -> Result<Period, CycleError> {
        let period = Period::parse(text)?;
        if period.length != self.length {
            return Err(CycleError::OtherLength { text: text.to_owned(), given: period.length, configured: self.length });
        }
        Ok(period)
    }
}

/// A period that does not fit the configured cycle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CycleError {
    /// Not a period at all.
    #[error(transparent)]
    Text(#[from] PeriodError),
    /// A period, of another length.
    #[error("period {text:?} is a {given}, but billing.period is {configured}: name a {configured}, e.g. {example:?}", example = Period::holding(UnixMillis(1_795_000_000_000), *configured).to_string())]
    OtherLength {
        /// What was given.
        text: String,
        /// Its length.
        given: PeriodLength,
        /// The configured length.
        configured: PeriodLength,
    },
}

impl Period {
    /// The period of `length` holding `instant`.
    pub fn holding(instant: UnixMillis, length: PeriodLength) -> Period {
        let start = match length {
            PeriodLength::Month => month_of(instant).0,
            PeriodLength::Week => {
                let day = instant.utc_day_start();
                // 1970-01-01 was a Thursday: three days after a Monday.
                let days_since_monday = (day.0.div_euclid(DAY_MILLIS) + 3).rem_euclid(7);
                day.plus_millis(-days_since_monday * DAY_MILLIS)
            }
            PeriodLength::Day => instant.utc_day_start(),
        };
        Period { start, length }
    }

    /// Its length.
    pub fn length(self) -> PeriodLength {
        self.length
    }

    /// Its first instant.
    pub fn start(self) -> UnixMillis {
        self.start
    }

    /// The first instant after it.
    pub fn end(self) -> UnixMillis {
        match self.length {
            PeriodLength::Month => month_of(self.start).1,
            PeriodLength::Week => self.start.plus_millis(7 * DAY_MILLIS),
            PeriodLength::Day => self.start.plus_millis(DAY_MILLIS),
        }
    }

    /// The period before it.
    pub fn previous(self) -> Period {
        Period::holding(self.start.plus_millis(-1), self.length)
    }

    /// The period after it.
    pub fn next(self) -> Period {
        Period { start: self.end(), length: self.length }
    }

    /// Parses `YYYY-MM` (a month), `YYYY-Www` (an ISO week) or `YYYY-MM-DD` (a day).
    pub fn parse(text: &str) -> Result<Period, PeriodError> {
        let fail = || PeriodError(text.to_owned());
        let number = |digits: &str, width: usize| -> Result<u32, PeriodError> {
            if digits.len() != width || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(fail());
            }
            digits.parse().map_err(|_| fail())
        };
        let parts: Vec<&str> = text.split('-').collect();
        let (first, length) = match parts.as_slice() {
            [year, week] if week.starts_with('W') => {
                let (year, week) = (number(year, 4)? as i32, number(&week[1..], 2)? as u8);
                (Date::from_iso_week_date(year, week, Weekday::Monday).map_err(|_| fail())?, PeriodLength::Week)
            }
            [year, month] => (calendar_date(number(year, 4)?, number(month, 2)?, 1).ok_or_else(fail)?, PeriodLength::Month),
            [year, month, day] => {
                (calendar_date(number(year, 4)?, number(month, 2)?, number(day, 2)?).ok_or_else(fail)?, PeriodLength::Day)
            }
            _ => return Err(fail()),
        };
        let seconds = first.midnight().assume_utc().unix_timestamp();
        Ok(Period { start: UnixMillis(seconds * 1000), length })
    }
}

fn calendar_date(year: u32, month: u32, day: u32) -> Option<Date> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()
}

impl fmt::Display for Period {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // "2026-11-01T00:00:00.000Z" → "2026-11" or "2026-11-01"; a week by its ISO number.
        let text = self.start.to_string();
        match self.length {
            PeriodLength::Month => formatter.write_str(&text[..7]),
            PeriodLength::Day => formatter.write_str(&text[..10]),
            PeriodLength::Week => {
                let date = OffsetDateTime::from_unix_timestamp(self.start.0.div_euclid(1000)).map_err(|_| fmt::Error)?.date();
                let (year, week, _) = date.to_iso_week_date();
                write!(formatter, "{year:04}-W{week:02}")
            }
        }
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Period, D::Error> {
        let text = String::deserialize(deserializer)?;
        Period::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_a_utc_month_and_closes_after_its_grace() {
        let november = Period::parse("2026-11").unwrap();
        assert_eq!(november.to_string(), "2026-11");
        assert_eq!(november.start().to_string(), "2026-11-01T00:00:00.000Z");
        assert_eq!(november.end().to_string(), "2026-12-01T00:00:00.000Z");
        assert_eq!(Cycle::DEFAULT.closes_at(november).to_string(), "2026-12-02T00:00:00.000Z");
        assert_eq!(november.next().next().to_string(), "2027-01");
        assert_eq!(november.previous().to_string(), "2026-10");
        assert_eq!(Cycle::DEFAULT.period_of(UnixMillis::parse_rfc3339("2026-11-30T23:59:59Z").unwrap()), november);
    }

    #[test]
    fn the_latest_closable_period_is_the_last_whose_end_plus_grace_has_passed() {
        let at = |text: &str| UnixMillis::parse_rfc3339(text).unwrap();
        let latest = |now: &str, grace_days: u64| {
            let cycle = Cycle { length: PeriodLength::Month, grace: Duration::from_secs(grace_days * 86_400) };
            cycle.latest_closable(at(now)).to_string()
        };
        assert_eq!(latest("2026-12-03T00:00:00Z", 1), "2026-11");
        assert_eq!(latest("2026-12-01T23:59:59Z", 1), "2026-10");
        assert_eq!(latest("2026-12-02T00:00:00Z", 1), "2026-11", "closes at its close time");
        assert_eq!(latest("2026-12-03T00:00:00Z", 40), "2026-09");
        let daily = Cycle { length: PeriodLength::Day, grace: Duration::from_secs(3600) };
        assert_eq!(daily.latest_closable(at("2026-12-03T00:59:00Z")).to_string(), "2026-12-01");
    }

    #[test]
    fn weeks_are_iso_weeks_from_monday_and_days_are_utc_days() {
        let cycle = Cycle { length: PeriodLength::Week, grace: Duration::from_secs(3600) };
        // Thursday 26 November 2026 is in ISO week 48, Monday 23 to Monday 30.
        let week = cycle.period_of(UnixMillis::parse_rfc3339("2026-11-26T12:00:00Z").unwrap());
        assert_eq!(week.to_string(), "2026-W48");
        assert_eq!(
            (week.start().to_string(), week.end().to_string()),
            ("2026-11-23T00:00:00.000Z".into(), "2026-11-30T00:00:00.000Z".into())
        );
        assert_eq!(cycle.closes_at(week).to_string(), "2026-11-30T01:00:00.000Z");
        assert_eq!(Period::parse("2026-W48").unwrap(), week);
        // The week of 1 January 2027 (a Friday) is 2026's week 53, and the one after is 2027-W01.
        let new_year = cycle.period_of(UnixMillis::parse_rfc3339("2027-01-01T00:00:00Z").unwrap());
        assert_eq!((new_year.to_string(), new_year.next().to_string()), ("2026-W53".into(), "2027-W01".into()));
        assert_eq!(new_year.next().previous(), new_year);
        let day = Period::parse("2026-02-28").unwrap();
        assert_eq!((day.length(), day.next().to_string()), (PeriodLength::Day, "2026-03-01".into()));
    }

    #[test]
    fn a_period_of_another_length_than_the_cycle_is_refused_naming_both() {
        let error = Cycle::DEFAULT.parse("2026-W48").unwrap_err().to_string();
        assert_eq!(error, "period \"2026-W48\" is a week, but billing.period is month: name a month, e.g. \"2026-11\"");
        assert_eq!(Cycle::DEFAULT.parse("2026-11").unwrap().to_string(), "2026-11");
    }

    #[test]
    fn a_bad_period_names_itself() {
        for text in ["2026-13", "2026-1", "November", "2026/11", "", "2026-W54", "2026-02-30", "2026-+1", "2026-11-5"] {
            let error = Period::parse(text).unwrap_err().to_string();
            assert!(error.contains(&format!("{text:?}")) && error.contains("YYYY-MM"), "{error}");
        }
    }
}
