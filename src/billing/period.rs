//! The billing period (a calendar month, UTC): per-machine cost today, so far this period, and a
//! projection to the period's end from the recent burn rate.

use rusqlite::params;
use rust_decimal::Decimal;
use serde::Serialize;
use time::{Date, Month, OffsetDateTime, Time};

use super::ledger::{Ledger, LedgerError, read_amount, rollup};
use crate::record::UnixMillis;

/// How far back the burn rate of the projection looks.
pub const BURN_WINDOW_MILLIS: i64 = 3_600_000;

/// One machine's costs in the current period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineCost {
    /// The machine.
    pub machine_id: String,
    /// Exact cost of windows starting today (UTC).
    #[serde(with = "rust_decimal::serde::str")]
    pub today: Decimal,
    /// Exact cost of windows starting in this period.
    #[serde(with = "rust_decimal::serde::str")]
    pub period: Decimal,
    /// `period` plus the recent burn rate (windows since the start of the previous hour) carried to the period's end.
    #[serde(with = "rust_decimal::serde::str")]
    pub projected: Decimal,
    /// Currency.
    pub currency: String,
    /// End of the machine's latest window.
    pub last_seen: UnixMillis,
    /// Missing seqs (over all time).
    pub gaps: u64,
    /// Records billed in this period.
    pub records: u64,
}

/// `[start, end)` of the calendar month (UTC) holding `now`.
pub fn month_of(now: UnixMillis) -> (UnixMillis, UnixMillis) {
    let instant = OffsetDateTime::from_unix_timestamp(now.0.div_euclid(1000)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let first = Date::from_calendar_date(instant.year(), instant.month(), 1).expect("the 1st exists");
    let (next_year, next_month) =
        if instant.month() == Month::December { (instant.year() + 1, Month::January) } else { (instant.year(), instant.month().next()) };
    let next = Date::from_calendar_date(next_year, next_month, 1).expect("the 1st exists");
    (millis_of(first), millis_of(next))
}

/// Start (UTC midnight) of the day holding `now`.
pub fn day_of(now: UnixMillis) -> UnixMillis {
    now.utc_day_start()
}

fn millis_of(date: Date) -> UnixMillis {
    UnixMillis(date.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp() * 1000)
}

/// Every machine's costs in the period holding `now`, ordered by machine id (from the hourly rollups).
pub fn machine_costs(ledger: &Ledger, now: UnixMillis) -> Result<Vec<MachineCost>, LedgerError> {
    let (period_start, period_end) = month_of(now);
    let connection = ledger.connection();
    let ever = rollup::aggregate_by_machine(connection, i64::MIN, i64::MAX)?;
    let period = rollup::aggregate_by_machine(connection, period_start.0, i64::MAX)?;
    let today = rollup::aggregate_by_machine(connection, day_of(now).0, i64::MAX)?;
    // From a whole hour, so the burn rate reads rollups only: between one and two hours of windows.
    let burn_from = (now.0 - BURN_WINDOW_MILLIS).div_euclid(rollup::HOUR_MILLIS) * rollup::HOUR_MILLIS;
    let burn = rollup::aggregate_by_machine(connection, burn_from, i64::MAX)?;
    let remaining = Decimal::from((period_end.0 - now.0).max(0));
    let mut costs: Vec<MachineCost> = ever
        .into_iter()
        .filter_map(|(machine_id, all_time)| {
            let in_period = period.get(&machine_id)?;
            // Burn rate: the cost of the last hour's windows per millisecond they cover.
            let projected = match burn.get(&machine_id) {
                Some(recent) if recent.covered_millis > 0 => {
                    in_period.cost + recent.cost * remaining / Decimal::from(recent.covered_millis)
                }
                _ => in_period.cost,
            };
            Some(MachineCost {
                today: today.get(&machine_id).map_or(Decimal::ZERO, |aggregate| aggregate.cost.normalize()),
                period: in_period.cost.normalize(),
                projected: projected.normalize(),
                currency: in_period.currency.clone(),
                last_seen: all_time.max_end,
                gaps: (all_time.max_seq + 1).saturating_sub(all_time.min_seq).saturating_sub(all_time.records),
                records: in_period.records,
                machine_id,
            })
        })
        .collect();
    costs.sort_by(|a, b| a.machine_id.cmp(&b.machine_id));
    Ok(costs)
}

/// A machine's cost per bucket of `bucket_millis` over `[from, to)`: (bucket start, exact cost).
pub fn cost_series(
    ledger: &Ledger,
    machine_id: &str,
    from: UnixMillis,
    to: UnixMillis,
    bucket_millis: i64,
) -> Result<Vec<(UnixMillis, Decimal)>, LedgerError> {
    let bucket = bucket_millis.max(1);
    let mut statement = ledger.connection().prepare_cached(
        "SELECT (r.start_ms / ?4) * ?4 AS bucket, decimal_sum(r.total)
         FROM records r JOIN machines m ON m.id = r.machine
         WHERE m.name = ?1 AND r.start_ms >= ?2 AND r.start_ms < ?3
         GROUP BY bucket ORDER BY bucket",
    )?;
    let rows = statement.query_map(params![machine_id, from.0, to.0, bucket], |row| Ok((UnixMillis(row.get(0)?), read_amount(row, 1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
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
    }
}
