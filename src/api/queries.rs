//! The read-only SQL behind the API's tables. Money is summed by the ledger's exact
//! `decimal_sum` aggregate (or as `Decimal` in Rust), never as a float.

use rusqlite::{OptionalExtension, params};
use rust_decimal::Decimal;
use serde::Serialize;

pub use crate::billing::ledger::Gap;
pub use crate::billing::ledger::{CostGroup, costs};
use crate::billing::ledger::{Ledger, LedgerError, read_amount};
use crate::billing::report::TimeRange;
use crate::record::{LATEST, UnixMillis};

/// The sum of every group in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CostTotal {
    /// The currency.
    pub currency: String,
    /// Records in all groups.
    pub records: u64,
    /// Exact cost, as a decimal string.
    #[serde(with = "rust_decimal::serde::str")]
    pub cost: Decimal,
}

/// One machine's usage and cost over one step of a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageBucket {
    /// First instant of the step.
    pub start: UnixMillis,
    /// First instant after the step, or the range's end (at the latest 2200-01-01) if sooner.
    pub end: UnixMillis,
    /// Records whose window starts in the step.
    pub records: u64,
    /// CPU used, in core-hours (busy fraction × cores × hours).
    pub cpu_core_hours: f64,
    /// Memory held, in GB-hours (10^9 bytes × hours), while the machine ran: an asleep window's
    /// memory is priced apart (`asleep_memory_gb_hour`) and is not usage.
    pub memory_gb_hours: f64,
    /// Bytes read from disks.
    pub disk_read_bytes: i64,
    /// Bytes written to disks.
    pub disk_write_bytes: i64,
    /// Bytes received.
    pub net_rx_bytes: i64,
    /// Bytes sent.
    pub net_tx_bytes: i64,
    /// Exact cost, as a decimal string.
    #[serde(with = "rust_decimal::serde::str")]
    pub cost: Decimal,
    /// Currency of `cost`.
    pub currency: String,
}

/// A message the worker refused, as stored in the ledger's quarantine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantineEntry {
    /// Ledger row id; pass it as `after_id` to page on.
    pub id: i64,
    /// Topic it came from.
    pub topic: String,
    /// Partition it came from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// When the worker received it.
    pub received_at: UnixMillis,
    /// Why it was refused.
    pub reason: String,
    /// Size of the message in bytes.
    pub raw_size: i64,
    /// The kept bytes (at most 4096), as UTF-8 with invalid bytes replaced.
    pub raw: String,
}

/// Sums `groups` per currency, exactly.
pub fn cost_totals(groups: &[CostGroup]) -> Vec<CostTotal> {
    let mut totals: Vec<CostTotal> = Vec::new();
    for group in groups {
        match totals.iter_mut().find(|total| total.currency == group.currency) {
            Some(total) => {
                total.records += group.records;
                total.cost += group.cost;
            }
            None => totals.push(CostTotal { currency: group.currency.clone(), records: group.records, cost: group.cost }),
        }
    }
    totals.sort_by(|left, right| left.currency.cmp(&right.currency));
    for total in &mut totals {
        total.cost = total.cost.normalize();
    }
    totals
}

/// Whether `machine_id` has anything in the ledger.
pub fn machine_exists(ledger: &Ledger, machine_id: &str) -> Result<bool, LedgerError> {
    let mut statement = ledger.connection().prepare_cached("SELECT 1 FROM machines WHERE name = ?1")?;
    Ok(statement.query_row([machine_id], |_| Ok(())).optional()?.is_some())
}

/// `machine_id`'s usage in steps of `step_millis`, aligned on `range.from` (or the Unix epoch).
/// Only steps holding a window start are listed.
pub fn usage(ledger: &Ledger, machine_id: &str, range: TimeRange, step_millis: i64) -> Result<Vec<UsageBucket>, LedgerError> {
    let (from, to) = range.bounds();
    let origin = range.from.map_or(0, |from| from.0);
    let mut statement = ledger.connection().prepare_cached(
        "SELECT ?4 + ((r.start_ms - ?4) / ?5) * ?5 AS bucket, r.currency, count(*),
                sum(r.cpu_pct * r.cpu_cores * (r.end_ms - r.start_ms)) / 360000000.0,
                sum(CASE WHEN r.kind = 'usage' THEN 1.0 * r.mem_used_bytes * (r.end_ms - r.start_ms) ELSE 0 END) / 3600000000000000.0,
                sum(r.disk_read_bytes), sum(r.disk_write_bytes), sum(r.net_rx_bytes), sum(r.net_tx_bytes),
                decimal_sum(r.total)
         FROM records r JOIN machines m ON m.id = r.machine
         WHERE m.name = ?1 AND r.start_ms >= ?2 AND r.start_ms < ?3
         GROUP BY bucket, r.currency ORDER BY bucket, r.currency",
    )?;
    let rows = statement.query_map(params![machine_id, from, to, origin, step_millis], |row| {
        let start: i64 = row.get(0)?;
        Ok(UsageBucket {
            start: UnixMillis(start),
            end: UnixMillis(start.saturating_add(step_millis).min(to).min(LATEST.0)),
            currency: row.get(1)?,
            records: row.get::<_, i64>(2)? as u64,
            cpu_core_hours: row.get(3)?,
            memory_gb_hours: row.get(4)?,
            disk_read_bytes: row.get(5)?,
            disk_write_bytes: row.get(6)?,
            net_rx_bytes: row.get(7)?,
            net_tx_bytes: row.get(8)?,
            cost: read_amount(row, 9)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Up to `limit` quarantined messages with ids above `after_id`, oldest first.
pub fn quarantine(ledger: &Ledger, after_id: i64, limit: i64) -> Result<Vec<QuarantineEntry>, LedgerError> {
    let rows = crate::billing::ledger::quarantined(ledger, after_id, limit)?;
    Ok(rows
        .into_iter()
        .map(|row| QuarantineEntry {
            id: row.id,
            topic: row.topic,
            partition: row.partition,
            offset: row.offset,
            received_at: row.received,
            reason: row.reason,
            raw: String::from_utf8_lossy(&row.raw).into_owned(),
            raw_size: row.raw_size as i64,
        })
        .collect())
}
