//! The ledger: one SQLite file per worker holding records with their priced lines (one row each),
//! consumer offsets and quarantined messages. A batch of all four is one transaction, so the offsets never run ahead of
//! what was billed, and a redelivered record (unique on machine + seq) changes nothing.

mod alert;
mod checkpoint;
mod decimal_sum;
mod gaps;
mod groups;
mod quarantine;
pub mod rollup;
mod schema;
mod stored;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};

use super::amount_text::LineTexts;
use super::price::PricedLine;
use crate::record::{UnixMillis, UsageRecord};

pub use self::alert::BudgetAlert;
pub use self::checkpoint::{Checkpointer, WalBound, WalWatch};
pub use self::decimal_sum::read_amount;
pub use self::gaps::{Gap, gaps};
pub use self::groups::{CostGroup, GroupBy, costs};
pub use self::quarantine::{QuarantinedRow, quarantined};
pub use self::schema::CURRENT_VERSION;
pub use self::stored::StoredLine;

/// Bytes of a quarantined message kept for inspection.
pub const QUARANTINE_RAW_CAP: usize = 4096;

/// A ledger that cannot be opened or written; names the file.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The ledger was written by a newer usagebill.
    #[error(
        "ledger {path} has schema version {found}, newer than this usagebill understands ({supported}); it was left untouched: use a newer usagebill"
    )]
    TooNew {
        /// The file.
        path: String,
        /// Its `user_version`.
        found: i64,
        /// The newest version this code knows.
        supported: i64,
    },
    /// The file is not a SQLite database or is corrupt.
    #[error("ledger {path} is damaged or is not a usagebill ledger ({detail}); it was left untouched")]
    Damaged {
        /// The file.
        path: String,
        /// What SQLite said.
        detail: String,
    },
    /// A report asked for a ledger that does not exist.
    #[error("no ledger at {0}: run `usagebill worker` (or the app) first, or pass --ledger / --data-dir")]
    Missing(String),
    /// The database refused (disk full, I/O error, locked).
    #[error("SQLite failed on the ledger")]
    Sqlite(#[from] rusqlite::Error),
    /// The system would not start the ledger's checkpoint thread (out of memory or thread limit).
    #[error("cannot start the ledger's checkpoint thread")]
    Thread(#[source] std::io::Error),
    /// The directory for the ledger cannot be created.
    #[error("cannot create the directory for ledger {path}")]
    CreateDir {
        /// The ledger file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl LedgerError {
    /// The ledger at `path` could not be opened.
    fn opening(error: crate::sqlite::OpenError, path: &str) -> LedgerError {
        use crate::sqlite::OpenError;
        let path = path.to_owned();
        match error {
            OpenError::CreateDir(source) => LedgerError::CreateDir { path, source },
            OpenError::TooNew { found, supported } => LedgerError::TooNew { path, found, supported },
            OpenError::Damaged(detail) => LedgerError::Damaged { path, detail },
            OpenError::Sqlite(error) => LedgerError::Sqlite(error),
        }
    }

    /// Whether the write may succeed later without anyone touching the ledger: a full disk, an I/O
    /// error, a lock held by another process. The transaction was rolled back, so retrying is safe.
    pub fn is_storage_fault(&self) -> bool {
        use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked, DiskFull, SystemIoFailure};
        matches!(self, LedgerError::Sqlite(rusqlite::Error::SqliteFailure(failure, _))
            if matches!(failure.code, DiskFull | SystemIoFailure | DatabaseBusy | DatabaseLocked))
    }
}

/// Where a record was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Origin {
    /// Kafka partition, if it came from Kafka.
    pub partition: Option<i32>,
    /// Kafka offset, if it came from Kafka.
    pub offset: Option<i64>,
}

/// A message that could not be billed, kept with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// Topic it came from (`embedded` in the one-process mode).
    pub topic: String,
    /// Partition it came from.
    pub partition: i32,
    /// Offset it had.
    pub offset: i64,
    /// Why it was refused.
    pub reason: String,
    /// The message bytes.
    pub raw: Vec<u8>,
}

/// Everything one transaction writes.
#[derive(Debug, Default)]
pub struct Batch {
    /// Valid records with their prices.
    pub priced: Vec<(UsageRecord, Origin, PricedLine)>,
    /// Refused messages.
    pub quarantined: Vec<Quarantined>,
    /// Next offset to read per (topic, partition), stored with the records they cover.
    pub offsets: Vec<(String, i32, i64)>,
    /// Budget alerts; the first per machine and period is kept.
    pub alerts: Vec<BudgetAlert>,
}

/// What a committed batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Records billed for the first time.
    pub billed: usize,
    /// Records already in the ledger (redeliveries), ignored.
    pub duplicates: usize,
    /// Messages quarantined.
    pub quarantined: usize,
    /// Of each record billed for the first time: its row id and its index in `Batch::priced`.
    pub new_rows: Vec<(i64, usize)>,
}

/// An open ledger file.
pub struct Ledger {
    connection: Connection,
    path: PathBuf,
    machine_ids: HashMap<String, i64>,
}

impl Ledger {
    /// Opens (creating if needed) a ledger for writing: WAL, migrations, machine dictionary.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let shown = path.display().to_string();
        let connection = crate::sqlite::open_for_writing(path, schema::MIGRATIONS, |connection| {
            connection.pragma_update(None, "cache_size", -65_536)?;
            // Registered before migrating: the rollup migration sums money with it.
            decimal_sum::register(connection)
        })
        .map_err(|error| LedgerError::opening(error, &shown))?;
        let mut ledger = Ledger { connection, path: path.to_owned(), machine_ids: HashMap::new() };
        ledger.load_machines()?;
        Ok(ledger)
    }

    /// Opens an existing ledger for reading only; never creates or changes it.
    pub fn open_read_only(path: &Path) -> Result<Ledger, LedgerError> {
        let shown = path.display().to_string();
        if !path.exists() {
            return Err(LedgerError::Missing(shown));
        }
        let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        let found: i64 =
            connection.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(|error| damaged_or(error.into(), &shown))?;
        if found > CURRENT_VERSION {
            return Err(LedgerError::TooNew { path: shown, found, supported: CURRENT_VERSION });
        }
        if found < CURRENT_VERSION {
            return Err(LedgerError::Damaged {
                path: shown,
                detail: format!("schema version {found}; open it once with `usagebill worker` to upgrade"),
            });
        }
        decimal_sum::register(&connection)?;
        Ok(Ledger { connection, path: path.to_owned(), machine_ids: HashMap::new() })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for reports.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Writes records, lines, quarantine and offsets in one transaction.
    pub fn write_batch(&mut self, batch: &Batch) -> Result<BatchOutcome, LedgerError> {
        let billed_ms = UnixMillis::now().0;
        let transaction = self.connection.transaction()?;
        let mut outcome = BatchOutcome::default();
        let mut rollup = rollup::BatchRollup::default();
        insert_priced(&transaction, &mut self.machine_ids, batch, billed_ms, &mut outcome, &mut rollup)?;
        write_quarantine(&transaction, &batch.quarantined, billed_ms)?;
        outcome.quarantined = batch.quarantined.len();
        write_offsets(&transaction, &batch.offsets)?;
        write_alerts(&transaction, &batch.alerts)?;
        rollup.write(&transaction)?;
        if let Err(error) = transaction.commit() {
            // The machine ids cached during the failed transaction were rolled back with it.
            self.machine_ids.clear();
            self.load_machines()?;
            return Err(error.into());
        }
        Ok(outcome)
    }

    /// Next offsets to read for `topic`, per partition, as committed with the billed records.
    pub fn offsets(&self, topic: &str) -> Result<HashMap<i32, i64>, LedgerError> {
        let mut statement = self.connection.prepare_cached("SELECT partition, next_offset FROM offsets WHERE topic = ?1")?;
        let rows = statement.query_map([topic], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Highest seq billed for `machine_id`, if any.
    pub fn last_seq(&self, machine_id: &str) -> Result<Option<u64>, LedgerError> {
        let seq: Option<i64> = self
            .connection
            .query_row("SELECT max(r.seq) FROM records r JOIN machines m ON m.id = r.machine WHERE m.name = ?1", [machine_id], |row| {
                row.get(0)
            })
            .optional()?
            .flatten();
        Ok(seq.map(|seq| seq as u64))
    }

    fn load_machines(&mut self) -> Result<(), LedgerError> {
        let mut statement = self.connection.prepare("SELECT name, id FROM machines")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        self.machine_ids = rows.collect::<Result<_, _>>()?;
        Ok(())
    }
}

fn damaged_or(error: LedgerError, path: &str) -> LedgerError {
    match &error {
        LedgerError::Sqlite(rusqlite::Error::SqliteFailure(failure, message))
            if matches!(failure.code, rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) =>
        {
            LedgerError::Damaged { path: path.to_owned(), detail: message.clone().unwrap_or_else(|| failure.to_string()) }
        }
        _ => error,
    }
}

fn write_quarantine(transaction: &Transaction<'_>, quarantined: &[Quarantined], received_ms: i64) -> Result<(), LedgerError> {
    let mut statement = transaction.prepare_cached(
        "INSERT INTO quarantine (topic, partition, offset, received_ms, reason, raw, raw_size) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for item in quarantined {
        let kept = &item.raw[..item.raw.len().min(QUARANTINE_RAW_CAP)];
        statement.execute(params![item.topic, item.partition, item.offset, received_ms, item.reason, kept, item.raw.len() as i64])?;
    }
    Ok(())
}

fn write_offsets(transaction: &Transaction<'_>, offsets: &[(String, i32, i64)]) -> Result<(), LedgerError> {
    let mut statement = transaction.prepare_cached(
        "INSERT INTO offsets (topic, partition, next_offset) VALUES (?1, ?2, ?3)
         ON CONFLICT (topic, partition) DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)",
    )?;
    for (topic, partition, next_offset) in offsets {
        statement.execute(params![topic, partition, next_offset])?;
    }
    Ok(())
}

fn write_alerts(transaction: &Transaction<'_>, alerts: &[BudgetAlert]) -> Result<(), LedgerError> {
    let mut statement = transaction.prepare_cached(
        "INSERT OR IGNORE INTO budget_alerts (machine, period_start_ms, budget, projected, currency, raised_ms, crossing_day_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for alert in alerts {
        statement.execute(params![
            alert.machine_id,
            alert.period_start.0,
            alert.budget.to_string(),
            alert.projected.to_string(),
            alert.currency,
            alert.raised.0,
            alert.crossing_day.map(|day| day.0)
        ])?;
    }
    Ok(())
}

/// Inserts the batch's records and lines inside `transaction`; a record already billed (same
/// machine and seq) is counted as a duplicate and gets no line.
///
/// Records go in by machine, then seq: the unique `(machine, seq)` index is then walked from left to
/// right once per batch instead of jumped about in arrival order (machines interleave). Row ids
/// follow that order; a redelivery inside the batch stays behind its first copy (the sort is stable).
fn insert_priced(
    transaction: &rusqlite::Transaction<'_>,
    machine_ids: &mut HashMap<String, i64>,
    batch: &Batch,
    billed_ms: i64,
    outcome: &mut BatchOutcome,
    rollup: &mut rollup::BatchRollup,
) -> Result<(), LedgerError> {
    let mut new_machine = transaction.prepare_cached("INSERT INTO machines (name) VALUES (?1)")?;
    let mut machines = Vec::with_capacity(batch.priced.len());
    for (record, _, _) in &batch.priced {
        let machine = match machine_ids.get(&record.machine_id) {
            Some(id) => *id,
            None => {
                new_machine.execute([&record.machine_id])?;
                let id = transaction.last_insert_rowid();
                machine_ids.insert(record.machine_id.clone(), id);
                id
            }
        };
        machines.push(machine);
    }
    let mut order: Vec<usize> = (0..batch.priced.len()).collect();
    order.sort_by_key(|&index| (machines[index], batch.priced[index].0.seq));
    let mut insert_record = transaction.prepare_cached(
        "INSERT OR IGNORE INTO records (machine, seq, start_ms, end_ms, cpu_pct, cpu_cores, mem_used_bytes,
            mem_total_bytes, disk_read_bytes, disk_write_bytes, net_rx_bytes, net_tx_bytes, samples, trigger,
            source_partition, source_offset, billed_ms,
            card_version, currency, cpu, memory, net_rx, net_tx, disk_read, disk_write, total, kind, late_ms, clock_steps)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
            ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)",
    )?;
    let mut amounts = LineTexts::default();
    for index in order {
        let (record, origin, line) = &batch.priced[index];
        let machine = machines[index];
        amounts.write(line);
        let inserted = insert_record.execute(params![
            machine,
            record.seq as i64,
            record.start.0,
            record.end.0,
            record.cpu_pct,
            record.cpu_cores,
            record.mem_used_bytes as i64,
            record.mem_total_bytes as i64,
            record.disk_read_bytes as i64,
            record.disk_write_bytes as i64,
            record.net_rx_bytes as i64,
            record.net_tx_bytes as i64,
            record.samples,
            record.trigger.as_str(),
            origin.partition,
            origin.offset,
            billed_ms,
            line.card_version,
            line.currency,
            amounts.get(0),
            amounts.get(1),
            amounts.get(2),
            amounts.get(3),
            amounts.get(4),
            amounts.get(5),
            amounts.get(6),
            record.kind.as_str(),
            record.late_millis as i64,
            record.clock_steps,
        ])?;
        if inserted == 0 {
            outcome.duplicates += 1;
            continue;
        }
        rollup.add(machine, record, line.total, &line.currency);
        outcome.new_rows.push((transaction.last_insert_rowid(), index));
        outcome.billed += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
