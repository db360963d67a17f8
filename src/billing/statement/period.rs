//! A billing period as statements name it: a calendar month in UTC ("2026-11"), and when it
//! closes (its end plus the grace period).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, Month};

use crate::billing::cost_engine::calendar::month_of;
use crate::record::UnixMillis;

/// The grace period when the config names none: records of the month that arrive within a day of
/// its end are still billed on its statement.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);

/// One calendar month, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    start: UnixMillis,
}

/// A period text that is not `YYYY-MM`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("period {0:?} is not a month written YYYY-MM, e.g. \"2026-11\"")]
pub struct PeriodError(pub String);

impl Period {
    /// The period holding `instant`.
    pub fn holding(instant: UnixMillis) -> Period {
        Period { start: month_of(instant).0 }
    }

    /// Its first instant.
    pub fn start(self) -> UnixMillis {
        self.start
    }

    /// The first instant after it.
    pub fn end(self) -> UnixMillis {
        month_of(self.start).1
    }

    /// The period before it.
    pub fn previous(self) -> Period {
        Period::holding(self.start.plus_millis(-1))
    }

    /// The period after it.
    pub fn next(self) -> Period {
        Period { start: self.end() }
    }

    /// When it closes: its end plus `grace`.
    pub fn closes_at(self, grace: Duration) -> UnixMillis {
        self.end().plus_millis(grace.as_millis() as i64)
    }

    /// Parses `YYYY-MM`.
    pub fn parse(text: &str) -> Result<Period, PeriodError> {
        let fail = || PeriodError(text.to_owned());
        let (year, month) = text.split_once('-').ok_or_else(fail)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(fail());
        }
        let year: i32 = year.parse().map_err(|_| fail())?;
        let month: u8 = month.parse().map_err(|_| fail())?;
        let month = Month::try_from(month).map_err(|_| fail())?;
        let first = Date::from_calendar_date(year, month, 1).map_err(|_| fail())?;
        let seconds = first.midnight().assume_utc().unix_timestamp();
        Ok(Period { start: UnixMillis(seconds * 1000) })
    }
}

impl fmt::Display for Period {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // "2026-11-01T00:00:00.000Z" → "2026-11".
        let text = self.start.to_string();
        formatter.write_str(&text[..7])
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
        assert_eq!(november.closes_at(DEFAULT_GRACE).to_string(), "2026-12-02T00:00:00.000Z");
        assert_eq!(november.next().next().to_string(), "2027-01");
        assert_eq!(november.previous().to_string(), "2026-10");
        assert_eq!(Period::holding(UnixMillis::parse_rfc3339("2026-11-30T23:59:59Z").unwrap()), november);
    }

    #[test]
    fn a_bad_period_names_itself() {
        for text in ["2026-13", "2026-1", "November", "2026/11", ""] {
            let error = Period::parse(text).unwrap_err().to_string();
            assert!(error.contains(&format!("{text:?}")) && error.contains("YYYY-MM"), "{error}");
        }
    }
}
