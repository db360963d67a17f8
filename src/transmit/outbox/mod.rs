//! The outbox: closed windows wait here, in SQLite, until a delivery report says the broker has them.
//! It also keeps the machine's next seq, so seqs survive restarts without a hole.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::record::{UnixMillis, UsageRecord};

mod merge;

pub use self::merge::merge_pair;

/// An outbox that cannot be opened or written; names the file.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The database refused (disk full, I/O error, damaged file).
    #[error("SQLite failed on outbox {path}")]
    Sqlite {
        /// The file.
        path: String,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// A stored record no longer parses (written by another version or damaged).
    #[error("outbox {path}: waiting record seq {seq} does not parse: {reason}")]
    BadRecord {
        /// The file.
        path: String,
        /// Its seq.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// The outbox was written by a newer usagebill.
    #[error("outbox {path} has schema version {found}; this usagebill understands up to 1")]
    TooNew {
        /// The file.
        path: String,
        /// Its `user_version`.
        found: i64,
    },
    /// The file is not a SQLite database, is corrupt, or cannot be in WAL mode.
    #[error("outbox {path} is damaged or is not a usagebill outbox ({detail}); it was left untouched")]
    Damaged {
        /// The file.
        path: String,
        /// What SQLite said.
        detail: String,
    },
    /// The directory cannot be created.
    #[error("cannot create the data directory {path}")]
    CreateDir {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl OutboxError {
    /// Whether the error is the disk being full (it clears by itself once space is back).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, OutboxError::Sqlite { source: rusqlite::Error::SqliteFailure(failure, _), .. }
            if failure.code == rusqlite::ErrorCode::DiskFull)
    }
}

/// One waiting record, as it goes to the broker (read without parsing its JSON back).
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    /// The record's seq.
    pub seq: u64,
    /// The machine whose record it is (the Kafka key).
    pub machine_id: String,
    /// Its encoded form, as it goes to the broker.
    pub payload: Vec<u8>,
    /// How many times it was offered to the broker.
    pub attempts: u32,
}

/// The durable queue of one machine's closed windows.
pub struct Outbox {
    connection: Connection,
    path: PathBuf,
    /// Records waiting, kept in memory so status updates cost no query.
    depth: u64,
    /// Bytes of waiting payloads, kept in memory for the size bound.
    bytes: u64,
    /// Highest seq stored.
    last_seq: u64,
    /// Records delivered on one UTC day: (its midnight, count), as stored in `state`.
    sent_on_day: (UnixMillis, u64),
}

/// Each entry moves the schema from version `index` to `index + 1` (see `crate::sqlite`). Version 1
/// was written before the migrations were, so its tables may already be there.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS waiting (
        seq INTEGER PRIMARY KEY,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        payload BLOB NOT NULL
    );
",
    "
    -- 2: the machine id in a column of its own, so sending never parses the JSON back.
    ALTER TABLE waiting ADD COLUMN machine_id TEXT NOT NULL DEFAULT '';
    UPDATE waiting SET machine_id = coalesce(json_extract(CAST(payload AS TEXT), '$.source'), '');
",
];

impl Outbox {
    /// Opens (creating if needed) the outbox file in WAL mode.
    pub fn open(path: &Path) -> Result<Outbox, OutboxError> {
        let shown = path.display().to_string();
        let connection = crate::sqlite::open_for_writing(path, MIGRATIONS, |_| Ok(())).map_err(|error| {
            use crate::sqlite::OpenError;
            match error {
                OpenError::CreateDir(source) => {
                    let parent = path.parent().unwrap_or(path).display().to_string();
                    OutboxError::CreateDir { path: parent, source }
                }
                OpenError::TooNew { found, .. } => OutboxError::TooNew { path: shown.clone(), found },
                OpenError::Damaged(detail) => OutboxError::Damaged { path: shown.clone(), detail },
                OpenError::Sqlite(source) => OutboxError::Sqlite { path: shown.clone(), source },
            }
        })?;
        let mut outbox = Outbox { connection, path: path.to_owned(), depth: 0, bytes: 0, last_seq: 0, sent_on_day: (UnixMillis(0), 0) };
        outbox.recount()?;
        outbox.sent_on_day = outbox.read_sent_on_day()?;
        Ok(outbox)
    }

    /// Reads depth, bytes and the last seq from the table (at open and after a merge).
    fn recount(&mut self) -> Result<(), OutboxError> {
        let (depth, bytes, last_seq): (i64, i64, i64) = self
            .connection
            .query_row("SELECT count(*), coalesce(sum(length(payload)), 0), coalesce(max(seq), 0) FROM waiting", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .map_err(|error| self.sqlite(error))?;
        (self.depth, self.bytes, self.last_seq) = (depth as u64, bytes as u64, last_seq as u64);
        Ok(())
    }

    fn read_sent_on_day(&self) -> Result<(UnixMillis, u64), OutboxError> {
        let value = |key: &str| -> Result<i64, OutboxError> {
            let found = self.connection.query_row("SELECT value FROM state WHERE key = ?1", [key], |row| row.get(0)).optional();
            Ok(found.map_err(|error| self.sqlite(error))?.unwrap_or(0))
        };
        Ok((UnixMillis(value("sent_day")?), value("sent_on_day")? as u64))
    }

    /// Records delivered (and so removed) on the UTC day holding `now`, across restarts.
    pub fn sent_on_day_of(&self, now: UnixMillis) -> u64 {
        let (day, count) = self.sent_on_day;
        if day == now.utc_day_start() { count } else { 0 }
    }

    fn sqlite(&self, source: rusqlite::Error) -> OutboxError {
        OutboxError::Sqlite { path: self.path.display().to_string(), source }
    }

    /// The seq the next closed window gets (1 for a new machine).
    /// Every seq ever issued is either still waiting or was counted into `state` when its row left,
    /// so the next one is past both; appending then costs a single insert.
    pub fn next_seq(&self) -> Result<u64, OutboxError> {
        let stored: Option<i64> = self
            .connection
            .query_row("SELECT value FROM state WHERE key = 'next_seq'", [], |row| row.get(0))
            .optional()
            .map_err(|error| self.sqlite(error))?;
        Ok(stored.map_or(1, |seq| seq as u64).max(self.last_seq + 1))
    }

    /// Where the last window ever stored ended (`EARLIEST` for a new machine). A restarted agent
    /// opens its first window no earlier, so a wall clock stepped back cannot make windows overlap.
    pub fn last_end(&self) -> Result<UnixMillis, OutboxError> {
        let stored: Option<i64> = self
            .connection
            .query_row("SELECT value FROM state WHERE key = 'last_end_ms'", [], |row| row.get(0))
            .optional()
            .map_err(|error| self.sqlite(error))?;
        Ok(stored.map_or(crate::record::EARLIEST, UnixMillis))
    }

    /// Stores closed windows, all or none.
    pub fn append(&mut self, records: &[UsageRecord]) -> Result<(), OutboxError> {
        let Some(last) = records.last() else { return Ok(()) };
        let transaction =
            self.connection.transaction().map_err(|error| OutboxError::Sqlite { path: self.path.display().to_string(), source: error })?;
        let mut bytes = 0;
        let result = (|| {
            let mut insert = transaction.prepare_cached(INSERT_WAITING)?;
            for record in records {
                let payload = record.to_json();
                bytes += payload.len() as u64;
                insert.execute(params![record.seq as i64, record.start.0, record.end.0, payload, record.machine_id])?;
            }
            drop(insert);
            let last_end = records.iter().map(|record| record.end.0).max().unwrap_or(0);
            transaction.execute(
                "INSERT INTO state (key, value) VALUES ('last_end_ms', ?1) ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                [last_end],
            )?;
            transaction.commit()
        })();
        result.map_err(|error| self.sqlite(error))?;
        self.depth += records.len() as u64;
        self.bytes += bytes;
        self.last_seq = self.last_seq.max(last.seq);
        Ok(())
    }

    /// Highest seq stored (0 when none ever was since open).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Up to `limit` waiting records with seq above `after`, oldest first.
    pub fn waiting_after(&self, after: u64, limit: usize) -> Result<Vec<Waiting>, OutboxError> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT seq, machine_id, attempts, payload FROM waiting WHERE seq > ?1 ORDER BY seq LIMIT ?2")
            .map_err(|error| self.sqlite(error))?;
        let rows = statement
            .query_map(params![after as i64, limit as i64], |row| {
                Ok(Waiting { seq: row.get::<_, i64>(0)? as u64, machine_id: row.get(1)?, attempts: row.get(2)?, payload: row.get(3)? })
            })
            .map_err(|error| self.sqlite(error))?;
        rows.collect::<Result<_, _>>().map_err(|error| self.sqlite(error))
    }

    /// The waiting records after `after` as records, for merging (the one place that reads them back).
    fn records_after(&self, after: u64) -> Result<Vec<UsageRecord>, OutboxError> {
        let waiting = self.waiting_after(after, usize::MAX >> 1)?;
        waiting
            .iter()
            .map(|item| {
                UsageRecord::parse(&item.payload).map_err(|error| OutboxError::BadRecord {
                    path: self.path.display().to_string(),
                    seq: item.seq,
                    reason: error.to_string(),
                })
            })
            .collect()
    }

    /// Counts an offer of `seq` to the broker.
    pub fn mark_attempted(&self, seq: u64) -> Result<(), OutboxError> {
        self.connection
            .execute("UPDATE waiting SET attempts = attempts + 1 WHERE seq = ?1", [seq as i64])
            .map(drop)
            .map_err(|error| self.sqlite(error))
    }

    /// Removes delivered records, counting them as sent on the UTC day holding `now`.
    pub fn remove(&mut self, seqs: &[u64], now: UnixMillis) -> Result<(), OutboxError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let path = self.path.display().to_string();
        let sqlite = |source| OutboxError::Sqlite { path: path.clone(), source };
        let transaction = self.connection.transaction().map_err(sqlite)?;
        let (mut removed, mut bytes) = (0, 0);
        if let Some(highest) = seqs.iter().max() {
            // The rows leave; the seqs they used must never be issued again.
            transaction
                .execute(
                    "INSERT INTO state (key, value) VALUES ('next_seq', ?1) ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                    [*highest as i64 + 1],
                )
                .map_err(sqlite)?;
        }
        {
            let mut delete = transaction.prepare_cached("DELETE FROM waiting WHERE seq = ?1 RETURNING length(payload)").map_err(sqlite)?;
            for seq in seqs {
                if let Some(length) = delete.query_row([*seq as i64], |row| row.get::<_, i64>(0)).optional().map_err(sqlite)? {
                    removed += 1;
                    bytes += length as u64;
                }
            }
        }
        let today = now.utc_day_start();
        let sent_on_day = match self.sent_on_day {
            (day, count) if day == today => (day, count + removed),
            _ => (today, removed),
        };
        if removed > 0 {
            let mut store = transaction
                .prepare_cached("INSERT INTO state (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
                .map_err(sqlite)?;
            store.execute(params!["sent_day", sent_on_day.0.0]).map_err(sqlite)?;
            store.execute(params!["sent_on_day", sent_on_day.1 as i64]).map_err(sqlite)?;
        }
        transaction.commit().map_err(sqlite)?;
        self.depth = self.depth.saturating_sub(removed);
        self.bytes = self.bytes.saturating_sub(bytes);
        if removed > 0 {
            self.sent_on_day = sent_on_day;
        }
        Ok(())
    }

    /// Records waiting.
    pub fn depth(&self) -> u64 {
        self.depth
    }

    /// Bytes of waiting payloads.
    pub fn waiting_bytes(&self) -> u64 {
        self.bytes
    }
}

const INSERT_WAITING: &str = "INSERT INTO waiting (seq, start_ms, end_ms, payload, machine_id) VALUES (?1, ?2, ?3, ?4, ?5)";

#[cfg(test)]
mod tests;
