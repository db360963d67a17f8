//! Costs grouped by machine, or by UTC day or hour of window start, per currency: the flat cost
//! of the lines (the API adds each machine's tier adjustment through `billing::cost_engine::range`).

use rusqlite::params;
use rust_decimal::Decimal;
use serde::Serialize;

use super::{Ledger, LedgerError, read_amount};
use crate::record::{TimeRange, UnixMillis};

const MILLIS_PER_HOUR: i64 = 3_600_000;
const MILLIS_PER_DAY: i64 = 86_400_000;

/// How `/api/v1/costs` groups its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// One group per machine id.
    Machine,
    /// One group per UTC day of the window start.
    Day,
    /// One group per UTC hour of the window start.
    Hour,
}

impl GroupBy {
    /// The spelling used in the query and the response.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Machine => "machine",
            GroupBy::Day => "day",
            GroupBy::Hour => "hour",
        }
    }
}

/// The cost of one group (a machine, or a UTC day or hour of window starts) in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CostGroup {
    /// The machine id, or the RFC 3339 start of the day or hour.
    pub group: String,
    /// Currency of `cost`.
    pub currency: String,
    /// Records in the group.
    pub records: u64,
    /// Exact cost, as a decimal string.
    #[serde(with = "rust_decimal::serde::str")]
    pub cost: Decimal,
}

/// Costs of windows starting in `range`, grouped by `group_by` and currency, in group order.
pub fn costs(ledger: &Ledger, range: TimeRange, group_by: GroupBy) -> Result<Vec<CostGroup>, LedgerError> {
    let (from, to) = range.bounds();
    let sql = match group_by {
        GroupBy::Machine => {
            "SELECT m.name, r.currency, count(*), decimal_sum(r.total)
             FROM records r JOIN machines m ON m.id = r.machine
             WHERE r.start_ms >= ?1 AND r.start_ms < ?2
             GROUP BY r.machine, r.currency ORDER BY m.name, r.currency"
        }
        GroupBy::Day | GroupBy::Hour => {
            // Window starts are after 2000, so `%` never sees a negative number.
            "SELECT r.start_ms - r.start_ms % ?3 AS bucket, r.currency, count(*), decimal_sum(r.total)
             FROM records r
             WHERE r.start_ms >= ?1 AND r.start_ms < ?2
             GROUP BY bucket, r.currency ORDER BY bucket, r.currency"
        }
    };
    let bucket_millis = if group_by == GroupBy::Hour { MILLIS_PER_HOUR } else { MILLIS_PER_DAY };
    let mut statement = ledger.connection().prepare_cached(sql)?;
    let to_group = |row: &rusqlite::Row<'_>| {
        let group = match group_by {
            GroupBy::Machine => row.get::<_, String>(0)?,
            GroupBy::Day | GroupBy::Hour => UnixMillis(row.get(0)?).to_string(),
        };
        Ok(CostGroup { group, currency: row.get(1)?, records: row.get::<_, i64>(2)? as u64, cost: read_amount(row, 3)? })
    };
    let groups = match group_by {
        GroupBy::Machine => statement.query_map(params![from, to], to_group)?.collect::<Result<_, _>>()?,
        GroupBy::Day | GroupBy::Hour => statement.query_map(params![from, to, bucket_millis], to_group)?.collect::<Result<_, _>>()?,
    };
    Ok(groups)
}
