//! Reading the quarantine: the one query `report --quarantine` and the API's `/quarantine` page
//! through, each showing the kept bytes its own way.

use rusqlite::params;

use super::{Ledger, LedgerError};
use crate::record::UnixMillis;

/// A message the worker refused, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedRow {
    /// Ledger row id, in the order received; pass it as `after_id` to page on.
    pub id: i64,
    /// Topic it came from.
    pub topic: String,
    /// Partition it came from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// When the worker received it.
    pub received: UnixMillis,
    /// Why it was refused.
    pub reason: String,
    /// The kept bytes (at most the first 4096).
    pub raw: Vec<u8>,
    /// Size of the whole message in bytes.
    pub raw_size: u64,
}

/// Up to `limit` quarantined messages with ids above `after_id`, oldest first.
pub fn quarantined(ledger: &Ledger, after_id: i64, limit: i64) -> Result<Vec<QuarantinedRow>, LedgerError> {
    let mut statement = ledger.connection().prepare_cached(
        "SELECT id, topic, partition, offset, received_ms, reason, raw, raw_size
         FROM quarantine WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = statement.query_map(params![after_id, limit], |row| {
        Ok(QuarantinedRow {
            id: row.get(0)?,
            topic: row.get(1)?,
            partition: row.get(2)?,
            offset: row.get(3)?,
            received: UnixMillis(row.get(4)?),
            reason: row.get(5)?,
            raw: row.get(6)?,
            raw_size: row.get::<_, i64>(7)? as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
