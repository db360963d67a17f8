//! The calendar the costs are counted in: UTC days and calendar months (the billing period).

use time::{Date, Month, OffsetDateTime, Time};

use crate::record::UnixMillis;

/// An hour in milliseconds: the bucket of the rollups and of a summary's hourly series.
pub use crate::billing::ledger::rollup::HOUR_MILLIS;

/// A day in milliseconds.
pub const DAY_MILLIS: i64 = 86_400_000;

/// How far back the recent burn rate of a projection looks (from the start of that hour).
pub const BURN_WINDOW_MILLIS: i64 = HOUR_MILLIS;

/// `[start, end)` of the calendar month (UTC) holding `now`.
pub fn month_of(now: UnixMillis) -> (UnixMillis, UnixMillis) {
    let instant = OffsetDateTime::from_unix_timestamp(now.0.div_euclid(1000)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let first = Date::from_calendar_date(instant.year(), instant.month(), 1).expect("the 1st exists");
    let (next_year, next_month) =
        if instant.month() == Month::December { (instant.year() + 1, Month::January) } else { (instant.year(), instant.month().next()) };
    // December of the calendar's last year has no next month to start: it ends with the calendar.
    let next = Date::from_calendar_date(next_year, next_month, 1).unwrap_or(Date::MAX);
    (millis_of(first), millis_of(next))
}

/// Start (UTC midnight) of the day holding `now`.
pub fn day_of(now: UnixMillis) -> UnixMillis {
    now.utc_day_start()
}

/// Start of the hour holding `millis`.
pub fn hour_of(millis: i64) -> i64 {
    millis.div_euclid(HOUR_MILLIS) * HOUR_MILLIS
}

fn millis_of(date: Date) -> UnixMillis {
    UnixMillis(date.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp() * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_days_in_utc() {
        let now = UnixMillis::parse_rfc3339("2026-12-15T10:30:00Z").unwrap();
        let (start, end) = month_of(now);
        assert_eq!(start.to_string(), "2026-12-01T00:00:00.000Z");
        assert_eq!(end.to_string(), "2027-01-01T00:00:00.000Z");
        assert_eq!(day_of(now).to_string(), "2026-12-15T00:00:00.000Z");
        assert_eq!(UnixMillis(hour_of(now.0)).to_string(), "2026-12-15T10:00:00.000Z");
    }
}
