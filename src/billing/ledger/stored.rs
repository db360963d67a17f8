//! Reading billed rows back as typed values: for the cost feed (which republishes from the ledger)
//! and for `report --verify` (which reprices them). Also the feed cursor and stored budget alerts.

use std::str::FromStr;

use rusqlite::{OptionalExtension, Row, params};
use rust_decimal::Decimal;

use super::BudgetAlert;
use super::{Ledger, LedgerError, Origin};
use crate::billing::price::PricedLine;
use crate::record::{RecordKind, Trigger, UnixMillis, UsageRecord};

/// A billed record and its line as stored, with the row id that orders them.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLine {
    /// `records.id`: rises with every record billed into this ledger.
    pub row_id: i64,
    /// The record.
    pub record: UsageRecord,
    /// Where it was read from.
    pub origin: Origin,
    /// Its priced line.
    pub line: PricedLine,
}

const FEED_CURSOR_KEY: &str = "feed_published_through";

impl Ledger {
    /// Up to `limit` billed rows with a row id above `after`, in row-id order.
    pub fn lines_after(&self, after: i64, limit: usize) -> Result<Vec<StoredLine>, LedgerError> {
        self.lines_between(after, i64::MAX, limit)
    }

    /// Up to `limit` billed rows with a row id above `after` and at most `through`, in row-id order.
    pub fn lines_between(&self, after: i64, through: i64, limit: usize) -> Result<Vec<StoredLine>, LedgerError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT r.id, m.name, r.seq, r.start_ms, r.end_ms, r.cpu_pct, r.cpu_cores, r.mem_used_bytes, r.mem_total_bytes,
                    r.disk_read_bytes, r.disk_write_bytes, r.net_rx_bytes, r.net_tx_bytes, r.samples, r.trigger,
                    r.source_partition, r.source_offset,
                    r.card_version, r.currency, r.cpu, r.memory, r.net_rx, r.net_tx, r.disk_read, r.disk_write, r.total,
                    r.kind, r.late_ms, r.clock_steps
             FROM records r JOIN machines m ON m.id = r.machine
             WHERE r.id > ?1 AND r.id <= ?2 ORDER BY r.id LIMIT ?3",
        )?;
        let rows = statement.query_map(params![after, through, limit as i64], read_row)?;
        let mut lines = Vec::new();
        for row in rows {
            lines.push(row?.map_err(|detail| LedgerError::Damaged { path: self.path.display().to_string(), detail })?);
        }
        Ok(lines)
    }

    /// Highest record row id (0 when nothing is billed).
    pub fn last_row_id(&self) -> Result<i64, LedgerError> {
        Ok(self.connection.query_row("SELECT coalesce(max(id), 0) FROM records", [], |row| row.get(0))?)
    }

    /// Highest row id whose line the cost feed acknowledged (0 when none).
    pub fn feed_published_through(&self) -> Result<i64, LedgerError> {
        let value = self.connection.query_row("SELECT value FROM meta WHERE key = ?1", [FEED_CURSOR_KEY], |row| row.get(0)).optional()?;
        Ok(value.unwrap_or(0))
    }

    /// The highest record row (0 in an empty ledger): rows only ever rise.
    pub fn last_record_row(&self) -> Result<i64, LedgerError> {
        Ok(self.connection.query_row("SELECT coalesce(max(id), 0) FROM records", [], |row| row.get(0))?)
    }

    /// Records that the feed acknowledged every line up to `row_id`; the cursor never goes back.
    pub fn set_feed_published_through(&self, row_id: i64) -> Result<(), LedgerError> {
        self.connection.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            params![FEED_CURSOR_KEY, row_id],
        )?;
        Ok(())
    }

    /// Budget alerts stored in this ledger, oldest first.
    pub fn budget_alerts(&self) -> Result<Vec<BudgetAlert>, LedgerError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT machine, period_start_ms, budget, projected, currency, raised_ms, crossing_day_ms FROM budget_alerts
             ORDER BY raised_ms, machine",
        )?;
        let rows = statement.query_map([], |row| {
            let decimal = |index| super::read_amount(row, index);
            Ok(BudgetAlert {
                machine_id: row.get(0)?,
                period_start: UnixMillis(row.get(1)?),
                budget: decimal(2)?,
                projected: decimal(3)?,
                currency: row.get(4)?,
                raised: UnixMillis(row.get(5)?),
                crossing_day: row.get::<_, Option<i64>>(6)?.map(UnixMillis),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Converts one joined row; a value that cannot have been written by this code is reported as damage.
fn read_row(row: &Row<'_>) -> rusqlite::Result<Result<StoredLine, String>> {
    let row_id: i64 = row.get(0)?;
    let trigger_text: String = row.get(14)?;
    let Some(trigger) = Trigger::parse(&trigger_text) else {
        return Ok(Err(format!("record row {row_id}: trigger {trigger_text:?} is not a trigger")));
    };
    let kind_text: String = row.get(26)?;
    let Some(kind) = RecordKind::parse(&kind_text) else {
        return Ok(Err(format!("record row {row_id}: kind {kind_text:?} is not a record kind")));
    };
    let mut amounts = [Decimal::ZERO; 7];
    for (slot, index) in amounts.iter_mut().zip(19..26) {
        let text: String = row.get(index)?;
        match Decimal::from_str(&text) {
            Ok(amount) => *slot = amount,
            Err(_) => return Ok(Err(format!("line of record row {row_id}: amount {text:?} is not a decimal"))),
        }
    }
    let [cpu, memory, net_rx, net_tx, disk_read, disk_write, total] = amounts;
    let record = UsageRecord {
        machine_id: row.get(1)?,
        seq: row.get::<_, i64>(2)? as u64,
        start: UnixMillis(row.get(3)?),
        end: UnixMillis(row.get(4)?),
        cpu_pct: row.get(5)?,
        cpu_cores: row.get(6)?,
        mem_used_bytes: row.get::<_, i64>(7)? as u64,
        mem_total_bytes: row.get::<_, i64>(8)? as u64,
        disk_read_bytes: row.get::<_, i64>(9)? as u64,
        disk_write_bytes: row.get::<_, i64>(10)? as u64,
        net_rx_bytes: row.get::<_, i64>(11)? as u64,
        net_tx_bytes: row.get::<_, i64>(12)? as u64,
        samples: row.get(13)?,
        trigger,
        kind,
        late_millis: row.get::<_, i64>(27)? as u64,
        clock_steps: row.get(28)?,
    };
    Ok(Ok(StoredLine {
        row_id,
        record,
        origin: Origin { partition: row.get(15)?, offset: row.get(16)? },
        line: PricedLine { card_version: row.get(17)?, currency: row.get(18)?, cpu, memory, net_rx, net_tx, disk_read, disk_write, total },
    }))
}
