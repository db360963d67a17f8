//! Metering gaps: runs of seqs missing between two billed records of a machine. The one query
//! `report --gaps` and the API's `/gaps` both list; a late record that arrives shrinks or closes one.

use rusqlite::params;
use serde::Serialize;

use super::{Ledger, LedgerError};
use crate::record::UnixMillis;

/// A run of seqs missing between two billed records of a machine: a metering gap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// The machine.
    pub machine_id: String,
    /// First seq missing.
    pub first_missing_seq: u64,
    /// Last seq missing.
    pub last_missing_seq: u64,
    /// How many seqs are missing.
    pub missing: u64,
    /// End of the last record before the gap.
    pub unmetered_from: UnixMillis,
    /// Start of the first record after the gap.
    pub unmetered_to: UnixMillis,
}

/// Every metering gap, or only `machine_id`'s, ordered by machine and seq.
pub fn gaps(ledger: &Ledger, machine_id: Option<&str>) -> Result<Vec<Gap>, LedgerError> {
    let mut statement = ledger.connection().prepare_cached(
        "SELECT m.name, g.previous_seq, g.seq, g.previous_end, g.start_ms
         FROM (SELECT machine, seq, start_ms, lag(seq) OVER by_seq AS previous_seq, lag(end_ms) OVER by_seq AS previous_end
               FROM records
               WHERE ?1 IS NULL OR machine = (SELECT id FROM machines WHERE name = ?1)
               WINDOW by_seq AS (PARTITION BY machine ORDER BY seq)) g
         JOIN machines m ON m.id = g.machine
         WHERE g.seq - g.previous_seq > 1
         ORDER BY m.name, g.seq",
    )?;
    let rows = statement.query_map(params![machine_id], |row| {
        let previous_seq: i64 = row.get(1)?;
        let seq: i64 = row.get(2)?;
        Ok(Gap {
            machine_id: row.get(0)?,
            first_missing_seq: (previous_seq + 1) as u64,
            last_missing_seq: (seq - 1) as u64,
            missing: (seq - previous_seq - 1) as u64,
            unmetered_from: UnixMillis(row.get(3)?),
            unmetered_to: UnixMillis(row.get(4)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
