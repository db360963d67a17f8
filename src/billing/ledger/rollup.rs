//! Hourly rollups: per machine and hour of window start, the record count, exact cost, seq and time
//! bounds, and the time health (asleep, late, clock steps). Kept in the batch's transaction, so
//! reports over millions of records read thousands of rows; only the partial hours at a range's
//! edges are read from the records themselves.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};

use rusqlite::{Connection, Transaction, params};
use rust_decimal::Decimal;

use super::LedgerError;
use crate::record::{RecordKind, UnixMillis, UsageRecord};

/// Length of a rollup bucket.
pub const HOUR_MILLIS: i64 = 3_600_000;

/// The backfill for ledgers written before rollups existed (migration 3).
pub const CREATE_AND_BACKFILL: &str = "
    CREATE TABLE hourly (
        machine INTEGER NOT NULL,
        hour_ms INTEGER NOT NULL,
        records INTEGER NOT NULL,
        cost TEXT NOT NULL,
        currency TEXT NOT NULL,
        min_seq INTEGER NOT NULL,
        max_seq INTEGER NOT NULL,
        min_start_ms INTEGER NOT NULL,
        max_end_ms INTEGER NOT NULL,
        covered_ms INTEGER NOT NULL,
        PRIMARY KEY (machine, hour_ms)
    ) WITHOUT ROWID;
    INSERT INTO hourly
        SELECT r.machine, (r.start_ms / 3600000) * 3600000, count(*), decimal_sum(l.total), min(l.currency),
               min(r.seq), max(r.seq), min(r.start_ms), max(r.end_ms), sum(r.end_ms - r.start_ms)
        FROM records r JOIN lines l ON l.record = r.id
        GROUP BY r.machine, (r.start_ms / 3600000) * 3600000;";

/// Aggregate usage of one machine over some windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    /// Records.
    pub records: u64,
    /// Exact cost.
    pub cost: Decimal,
    /// Currency (the first seen).
    pub currency: String,
    /// Lowest seq.
    pub min_seq: u64,
    /// Highest seq.
    pub max_seq: u64,
    /// Earliest window start.
    pub min_start: UnixMillis,
    /// Latest window end.
    pub max_end: UnixMillis,
    /// Sum of window lengths.
    pub covered_millis: i64,
    /// Sum of the lengths of `asleep` windows (the machine was suspended).
    pub asleep_millis: i64,
    /// Sum of the records' `late_millis` (time observed by readings that came late).
    pub late_millis: i64,
    /// Sum of the records' `clock_steps`.
    pub clock_steps: u64,
}

impl Aggregate {
    /// One record's contribution, costing `cost` in `currency`.
    pub fn of_record(record: &UsageRecord, cost: Decimal, currency: String) -> Aggregate {
        let covered_millis = record.end.millis_since(record.start);
        Aggregate {
            records: 1,
            cost,
            currency,
            min_seq: record.seq,
            max_seq: record.seq,
            min_start: record.start,
            max_end: record.end,
            covered_millis,
            asleep_millis: if record.kind == RecordKind::Asleep { covered_millis } else { 0 },
            late_millis: record.late_millis as i64,
            clock_steps: u64::from(record.clock_steps),
        }
    }

    /// Adds `other`'s windows (the currency stays this one's).
    pub fn merge(&mut self, other: &Aggregate) {
        self.records += other.records;
        self.cost += other.cost;
        self.min_seq = self.min_seq.min(other.min_seq);
        self.max_seq = self.max_seq.max(other.max_seq);
        self.min_start = self.min_start.min(other.min_start);
        self.max_end = self.max_end.max(other.max_end);
        self.covered_millis += other.covered_millis;
        self.asleep_millis += other.asleep_millis;
        self.late_millis += other.late_millis;
        self.clock_steps += other.clock_steps;
    }
}

/// One newly billed record's contribution, gathered while a batch is written.
#[derive(Debug, Default)]
pub struct BatchRollup {
    /// In key order, so the writes walk the table's B-tree from left to right.
    buckets: BTreeMap<(i64, i64), Aggregate>,
}

impl BatchRollup {
    /// Adds a record of `machine` (dictionary id).
    pub fn add(&mut self, machine: i64, record: &UsageRecord, cost: Decimal, currency: &str) {
        // Merging keeps the bucket's currency, so the record's is copied only for a new bucket (an
        // empty String does not allocate): most records join one of the batch's buckets.
        let single = Aggregate::of_record(record, cost, String::new());
        let hour = record.start.0.div_euclid(HOUR_MILLIS) * HOUR_MILLIS;
        match self.buckets.entry((machine, hour)) {
            Entry::Occupied(mut bucket) => bucket.get_mut().merge(&single),
            Entry::Vacant(bucket) => {
                bucket.insert(Aggregate { currency: currency.to_owned(), ..single });
            }
        }
    }

    /// Folds the batch into the stored rollups, inside the batch's transaction: one upsert per
    /// bucket, merged in place the way [`Aggregate::merge`] merges (the first currency stays).
    pub fn write(self, transaction: &Transaction<'_>) -> Result<(), LedgerError> {
        let mut upsert = transaction.prepare_cached(
            "INSERT INTO hourly (machine, hour_ms, records, cost, currency, min_seq, max_seq, min_start_ms, max_end_ms, covered_ms,
                asleep_ms, late_ms, clock_steps)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (machine, hour_ms) DO UPDATE SET
                records = records + excluded.records,
                cost = decimal_add(cost, excluded.cost),
                min_seq = min(min_seq, excluded.min_seq),
                max_seq = max(max_seq, excluded.max_seq),
                min_start_ms = min(min_start_ms, excluded.min_start_ms),
                max_end_ms = max(max_end_ms, excluded.max_end_ms),
                covered_ms = covered_ms + excluded.covered_ms,
                asleep_ms = asleep_ms + excluded.asleep_ms,
                late_ms = late_ms + excluded.late_ms,
                clock_steps = clock_steps + excluded.clock_steps",
        )?;
        for ((machine, hour), bucket) in self.buckets {
            upsert.execute(params![
                machine,
                hour,
                bucket.records as i64,
                bucket.cost.normalize().to_string(),
                bucket.currency,
                bucket.min_seq as i64,
                bucket.max_seq as i64,
                bucket.min_start.0,
                bucket.max_end.0,
                bucket.covered_millis,
                bucket.asleep_millis,
                bucket.late_millis,
                bucket.clock_steps as i64,
            ])?;
        }
        Ok(())
    }
}

fn aggregate_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Aggregate> {
    aggregate_at(row, 0)
}

/// Reads the eleven aggregate columns starting at column `first`.
fn aggregate_at(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Aggregate> {
    Ok(Aggregate {
        records: row.get::<_, i64>(first)? as u64,
        cost: super::read_amount(row, first + 1)?,
        currency: row.get(first + 2)?,
        min_seq: row.get::<_, i64>(first + 3)? as u64,
        max_seq: row.get::<_, i64>(first + 4)? as u64,
        min_start: UnixMillis(row.get(first + 5)?),
        max_end: UnixMillis(row.get(first + 6)?),
        covered_millis: row.get(first + 7)?,
        asleep_millis: row.get(first + 8)?,
        late_millis: row.get(first + 9)?,
        clock_steps: row.get::<_, i64>(first + 10)? as u64,
    })
}

/// Calls `each` with every hourly rollup: machine name, hour, aggregate; by machine, then hour.
pub fn each_hour(connection: &Connection, mut each: impl FnMut(&str, i64, &Aggregate)) -> Result<(), LedgerError> {
    let mut statement = connection.prepare_cached(
        "SELECT m.name, h.hour_ms, h.records, h.cost, h.currency, h.min_seq, h.max_seq, h.min_start_ms, h.max_end_ms, h.covered_ms,
                h.asleep_ms, h.late_ms, h.clock_steps
         FROM hourly h JOIN machines m ON m.id = h.machine ORDER BY h.machine, h.hour_ms",
    )?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        each(&name, row.get(1)?, &aggregate_at(row, 2)?);
    }
    Ok(())
}

/// Per machine (by name), the seq and card version of its latest line.
pub fn latest_card_versions(connection: &Connection) -> Result<HashMap<String, (u64, String)>, LedgerError> {
    let mut statement = connection.prepare_cached(
        "SELECT m.name, r.seq, r.card_version FROM machines m
         JOIN records r ON r.id = (SELECT id FROM records WHERE machine = m.id ORDER BY seq DESC LIMIT 1)",
    )?;
    let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, (row.get::<_, i64>(1)? as u64, row.get::<_, String>(2)?))))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Per machine (by name), the aggregate of the windows starting in `[from, to)`: whole hours from the
/// rollups, the partial hours at either edge from the records (found through the seq index).
pub fn aggregate_by_machine(connection: &Connection, from: i64, to: i64) -> Result<HashMap<String, Aggregate>, LedgerError> {
    // Valid records lie between 2000 and 2200; clamping keeps the hour arithmetic far from overflow.
    let (from, to) = (from.max(0), to.min(crate::record::LATEST.0 + crate::record::MAX_WINDOW_MILLIS));
    let first_whole = from.saturating_add(HOUR_MILLIS - 1).div_euclid(HOUR_MILLIS).saturating_mul(HOUR_MILLIS).max(from);
    let end_whole = to.div_euclid(HOUR_MILLIS).saturating_mul(HOUR_MILLIS);
    let mut result: HashMap<String, Aggregate> = HashMap::new();
    let mut add = |name: String, aggregate: Aggregate| match result.get_mut(&name) {
        Some(existing) => existing.merge(&aggregate),
        None => {
            result.insert(name, aggregate);
        }
    };
    let mut whole = connection.prepare_cached(
        "SELECT m.name, sum(h.records), decimal_sum(h.cost), min(h.currency), min(h.min_seq), max(h.max_seq),
                min(h.min_start_ms), max(h.max_end_ms), sum(h.covered_ms), sum(h.asleep_ms), sum(h.late_ms), sum(h.clock_steps)
         FROM hourly h JOIN machines m ON m.id = h.machine
         WHERE h.hour_ms >= ?1 AND h.hour_ms < ?2 GROUP BY h.machine",
    )?;
    if first_whole < end_whole {
        let rows = whole.query_map(params![first_whole, end_whole], |row| Ok((row.get::<_, String>(0)?, aggregate_at(row, 1)?)))?;
        for row in rows {
            let (name, aggregate) = row?;
            add(name, aggregate);
        }
    }
    let edges = if first_whole < end_whole { [(from, first_whole), (end_whole, to)] } else { [(from, to), (0, 0)] };
    let mut edge_buckets = connection.prepare_cached(
        "SELECT h.machine, m.name, h.min_seq, h.max_seq FROM hourly h JOIN machines m ON m.id = h.machine WHERE h.hour_ms >= ?1 AND h.hour_ms < ?2",
    )?;
    let mut edge_records = connection.prepare_cached(
        "SELECT count(*), coalesce(decimal_sum(r.total), '0'), coalesce(min(r.currency), ''), min(r.seq), max(r.seq),
                min(r.start_ms), max(r.end_ms), coalesce(sum(r.end_ms - r.start_ms), 0),
                coalesce(sum(CASE WHEN r.kind = 'asleep' THEN r.end_ms - r.start_ms ELSE 0 END), 0),
                coalesce(sum(r.late_ms), 0), coalesce(sum(r.clock_steps), 0)
         FROM records r
         WHERE r.machine = ?1 AND r.seq BETWEEN ?2 AND ?3 AND r.start_ms >= ?4 AND r.start_ms < ?5",
    )?;
    for (edge_from, edge_to) in edges {
        if edge_from >= edge_to {
            continue;
        }
        let hour_from = edge_from.div_euclid(HOUR_MILLIS) * HOUR_MILLIS;
        let buckets: Vec<(i64, String, i64, i64)> = edge_buckets
            .query_map(params![hour_from, edge_to], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))?
            .collect::<Result<_, _>>()?;
        for (machine, name, min_seq, max_seq) in buckets {
            let (count, aggregate) = edge_records.query_row(params![machine, min_seq, max_seq, edge_from, edge_to], |row| {
                let count: i64 = row.get(0)?;
                if count == 0 { Ok((0, None)) } else { Ok((count, Some(aggregate_from_row(row)?))) }
            })?;
            if count > 0
                && let Some(aggregate) = aggregate
            {
                add(name, aggregate);
            }
        }
    }
    Ok(result)
}
