//! Checkpoints off the ledger thread, with the write-ahead log bounded.
//!
//! SQLite checkpoints inside the commit that takes the WAL past `wal_autocheckpoint` (1,000 pages),
//! so the writer copies pages into the database file when it could be billing. A [`Checkpointer`]
//! turns that off on the writer's connection and checkpoints on a thread of its own, passively (it
//! never blocks the writer), once the WAL passes a soft size. A passive checkpoint cannot restart a
//! WAL that a writer keeps appending to, so at a hard size the writer itself waits for a full
//! checkpoint that empties the WAL. Either way every committed batch is in the WAL or in the
//! database file: a checkpoint only moves pages.

use std::path::PathBuf;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;

use super::{Ledger, LedgerError};

/// Where the WAL wakes the checkpoint thread, and where the writer waits for it to be emptied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalBound {
    /// Past this many bytes the checkpoint thread copies the WAL into the database.
    pub soft: u64,
    /// Past this many bytes the writer checkpoints and empties the WAL before its next batch.
    pub hard: u64,
}

impl Default for WalBound {
    /// A 10,000-record batch writes about 6 MB of WAL: the soft size is a few batches, the hard
    /// size bounds the file well under the 127–147 MB an unbounded WAL reached.
    fn default() -> Self {
        WalBound { soft: 32 << 20, hard: 96 << 20 }
    }
}

/// What the WAL did while a [`Checkpointer`] watched it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalWatch {
    /// The largest WAL seen after a commit, in bytes.
    pub peak_bytes: u64,
    /// Commits after which the writer waited for the WAL to be emptied.
    pub writer_waits: u64,
}

/// The checkpoint thread of one ledger.
pub struct Checkpointer {
    wal: PathBuf,
    bound: WalBound,
    wake: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    watch: WalWatch,
}

impl Checkpointer {
    /// Takes checkpoints off `writer`'s connection and starts the thread, with a connection of its own.
    pub fn start(writer: &Ledger, bound: WalBound) -> Result<Checkpointer, LedgerError> {
        let connection = writer.connection();
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        // Once emptied the WAL file is cut back to this size, so the disk sees the bound too.
        // (-1, no limit, for a soft size past i64.)
        connection.pragma_update(None, "journal_size_limit", i64::try_from(bound.soft).unwrap_or(-1))?;
        let checkpoints = Ledger::open(writer.path())?;
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                // Copying pages can wait while billing has work; the hard size bounds how long.
                crate::priority::yield_to_billing();
                for () in woken {
                    let result = checkpoints.connection().query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    if let Err(error) = result {
                        tracing::debug!("passive checkpoint of {}: {error}", checkpoints.path().display());
                    }
                }
            })
            .map_err(LedgerError::Thread)?;
        let wal = PathBuf::from(format!("{}-wal", writer.path().display()));
        Ok(Checkpointer { wal, bound, wake: Some(wake), thread: Some(thread), watch: WalWatch::default() })
    }

    /// After each commit on `writer`: past the soft size wakes the thread, past the hard size empties
    /// the WAL before returning (the writer waits; nothing committed is touched).
    pub fn after_commit(&mut self, writer: &Ledger) -> Result<(), LedgerError> {
        let bytes = std::fs::metadata(&self.wal).map_or(0, |metadata| metadata.len());
        self.watch.peak_bytes = self.watch.peak_bytes.max(bytes);
        if bytes >= self.bound.hard {
            self.watch.writer_waits += 1;
            // Busy while a reader holds an old snapshot: the next commit tries again.
            let (busy, _, _): (i64, i64, i64) =
                writer.connection().query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            if busy != 0 {
                tracing::debug!(
                    "the WAL of {} is {bytes} bytes and a reader holds it; emptying it after the next batch",
                    writer.path().display()
                );
            }
        } else if bytes >= self.bound.soft {
            match self.wake.as_ref().map(|wake| wake.try_send(())) {
                Some(Ok(())) | Some(Err(TrySendError::Full(()))) | None => {}
                Some(Err(TrySendError::Disconnected(()))) => {
                    tracing::warn!("the checkpoint thread stopped; the writer empties the WAL at its hard size")
                }
            }
        }
        Ok(())
    }

    /// What the WAL did so far.
    pub fn watch(&self) -> WalWatch {
        self.watch
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.wake.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::biller::{Biller, RawMessage};
    use crate::billing::rate_card::RateCard;
    use crate::record::{UnixMillis, UsageRecord};

    const BATCHES: u64 = 60;
    const PER_BATCH: u64 = 500;

    /// Bills 60 batches of 500 records with `bound`; returns what the WAL did, the most WAL one
    /// batch wrote, and the ledger's records.
    fn bill_with(bound: WalBound) -> (WalWatch, u64, u64) {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("ledger.db");
        let wal_bytes = || std::fs::metadata(directory.path().join("ledger.db-wal")).map_or(0, |metadata| metadata.len());
        let mut biller = Biller::new(Ledger::open(&path).unwrap(), RateCard::built_in());
        let mut checkpointer = Checkpointer::start(biller.ledger(), bound).unwrap();
        let mut biggest_batch = 0;
        for batch in 0..BATCHES {
            let messages: Vec<RawMessage> = (0..PER_BATCH)
                .map(|index| {
                    let seq = batch * PER_BATCH + index + 1;
                    let start = UnixMillis(1_767_225_600_000 + seq as i64 * 10_000);
                    let record = UsageRecord::steady(&format!("m{}", seq % 50), seq, start, 10_000);
                    RawMessage { topic: "usage".into(), partition: 0, offset: seq as i64, payload: Some(record.to_json()) }
                })
                .collect();
            let before = wal_bytes();
            biller.bill(&messages).unwrap();
            biggest_batch = biggest_batch.max(wal_bytes().saturating_sub(before));
            checkpointer.after_commit(biller.ledger()).unwrap();
        }
        let watch = checkpointer.watch();
        drop(checkpointer);
        let ledger = biller.ledger().connection();
        let check: String = ledger.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
        assert_eq!(check, "ok");
        let records: i64 = ledger.query_row("SELECT count(*) FROM records", [], |row| row.get(0)).unwrap();
        (watch, biggest_batch, records as u64)
    }

    #[test]
    fn the_checkpoint_thread_keeps_the_wal_under_its_hard_size_and_every_batch_is_kept() {
        let bound = WalBound { soft: 256 << 10, hard: 1 << 20 };
        let (watch, biggest_batch, records) = bill_with(bound);
        assert!(watch.peak_bytes <= bound.hard + biggest_batch, "{watch:?}, a batch writes up to {biggest_batch} bytes");
        assert_eq!(records, BATCHES * PER_BATCH);
    }

    #[test]
    fn without_the_thread_the_writer_empties_the_wal_at_its_hard_size_and_keeps_every_batch() {
        // A soft size never reached: the thread is never woken, as when it cannot keep up.
        let bound = WalBound { soft: u64::MAX, hard: 1 << 20 };
        let (watch, biggest_batch, records) = bill_with(bound);
        assert!(watch.writer_waits > 0, "the WAL reached its hard size: {watch:?}");
        assert!(watch.peak_bytes <= bound.hard + biggest_batch, "{watch:?}, a batch writes up to {biggest_batch} bytes");
        assert_eq!(records, BATCHES * PER_BATCH);
    }
}
