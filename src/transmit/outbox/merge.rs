//! Merging waiting windows when the outbox grows past its bound: pairs of the oldest windows never
//! offered become one longer window, exactly (counts add, levels average by length), never across
//! kinds, and the seqs after them are renumbered without holes.

use rusqlite::params;

use super::{INSERT_WAITING, Outbox, OutboxError};
use crate::record::{Trigger, UsageRecord};

impl Outbox {
    /// Merges pairs of the oldest never-offered records into single, longer windows, renumbering the
    /// never-offered tail so seqs stay without holes. Returns how many records the merge removed.
    /// Usage is kept exactly: counts add up, levels are averaged weighted by window length.
    pub fn merge_oldest(&mut self, pairs: usize) -> Result<usize, OutboxError> {
        let tail = self.never_offered()?;
        if tail.len() < 2 {
            return Ok(0);
        }
        let first_seq = tail[0].seq;
        let mut merged = Vec::with_capacity(tail.len());
        let mut rest = tail.into_iter().peekable();
        let mut merges = 0;
        while let Some(record) = rest.next() {
            // Only windows of one kind merge: an asleep span merged into usage would be billed as use.
            let can_merge = merges < pairs && rest.peek().is_some_and(|next| next.start == record.end && next.kind == record.kind);
            if can_merge && let Some(next) = rest.next() {
                merged.push(merge_pair(&record, &next));
                merges += 1;
            } else {
                merged.push(record);
            }
        }
        for (offset, record) in merged.iter_mut().enumerate() {
            record.seq = first_seq + offset as u64;
        }
        let path = self.path.display().to_string();
        let sqlite = |source| OutboxError::Sqlite { path: path.clone(), source };
        let transaction = self.connection.transaction().map_err(sqlite)?;
        transaction.execute("DELETE FROM waiting WHERE seq >= ?1", [first_seq as i64]).map_err(sqlite)?;
        {
            let mut insert = transaction.prepare_cached(INSERT_WAITING).map_err(sqlite)?;
            for record in &merged {
                insert
                    .execute(params![record.seq as i64, record.start.0, record.end.0, record.to_json(), record.machine_id])
                    .map_err(sqlite)?;
            }
        }
        let next_seq = first_seq + merged.len() as u64;
        transaction
            .execute(
                "INSERT INTO state (key, value) VALUES ('next_seq', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [next_seq as i64],
            )
            .map_err(sqlite)?;
        transaction.commit().map_err(sqlite)?;
        self.recount()?;
        Ok(merges)
    }

    /// The waiting records after the last one ever offered: nobody can have billed them yet.
    fn never_offered(&self) -> Result<Vec<UsageRecord>, OutboxError> {
        let last_offered: Option<i64> = self
            .connection
            .query_row("SELECT max(seq) FROM waiting WHERE attempts > 0", [], |row| row.get(0))
            .map_err(|error| self.sqlite(error))?;
        self.records_after(last_offered.unwrap_or(0) as u64)
    }
}

/// One window covering two adjacent ones, exactly: counts add, levels average by window length.
pub fn merge_pair(first: &UsageRecord, second: &UsageRecord) -> UsageRecord {
    let first_millis = first.window_millis() as f64;
    let second_millis = second.window_millis() as f64;
    let weighted = |a: f64, b: f64| (a * first_millis + b * second_millis) / (first_millis + second_millis);
    UsageRecord {
        machine_id: first.machine_id.clone(),
        seq: first.seq,
        start: first.start,
        end: second.end,
        cpu_pct: (weighted(first.cpu_pct, second.cpu_pct) * 1000.0).round() / 1000.0,
        cpu_cores: first.cpu_cores.max(second.cpu_cores),
        mem_used_bytes: weighted(first.mem_used_bytes as f64, second.mem_used_bytes as f64).round() as u64,
        mem_total_bytes: first.mem_total_bytes.max(second.mem_total_bytes),
        disk_read_bytes: first.disk_read_bytes + second.disk_read_bytes,
        disk_write_bytes: first.disk_write_bytes + second.disk_write_bytes,
        net_rx_bytes: first.net_rx_bytes + second.net_rx_bytes,
        net_tx_bytes: first.net_tx_bytes + second.net_tx_bytes,
        samples: first.samples + second.samples,
        trigger: Trigger::Replay,
        kind: first.kind,
        late_millis: first.late_millis + second.late_millis,
        clock_steps: first.clock_steps + second.clock_steps,
    }
}
