//! The worker's ledger thread: it writes the batches the consumer thread prepared, one transaction
//! each, holds a batch the ledger refuses until it takes it, hands the new lines to the feed thread,
//! and the offsets billed to [`super::consumer::GroupProgress`], which tells the group once the feed
//! has them.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};

use super::consumer::WorkerConsumer;
use super::retry::LedgerRetry;
use super::{WorkerError, WorkerOptions};
use crate::billing::biller::{Biller, BillerTotals, FreshLine, Prepared};
use crate::billing::ledger::{BatchOutcome, Checkpointer, LedgerError, WalBound};

/// How often a held batch's thread looks at the stop flag between retries.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// What the consumer thread and the ledger thread both see.
#[derive(Debug, Default)]
pub(super) struct Pipeline {
    /// The ledger refuses writes: the consumer thread pauses fetching until this clears.
    pub held: AtomicBool,
    /// Batches handed to the ledger thread and not yet committed.
    pub in_flight: AtomicUsize,
    /// The consumer thread stopped on an error: a held batch is given up (it was never acknowledged).
    pub halt: AtomicBool,
}

/// What the ledger thread did, once its input closed.
pub(super) struct Written {
    pub totals: BillerTotals,
    pub last_commit: Option<Instant>,
}

/// Writes every batch from `batches` until the consumer thread closes it, or the feed thread stops
/// (its error is reported by its own join), or `stop` is set while a batch is held.
pub(super) fn write_batches(
    mut biller: Biller,
    batches: Receiver<Prepared>,
    feed: SyncSender<Vec<FreshLine>>,
    consumer: &WorkerConsumer,
    pipeline: &Pipeline,
    options: &WorkerOptions,
    stop: &AtomicBool,
) -> Result<Written, WorkerError> {
    let mut retry = LedgerRetry::default();
    let mut last_commit = None;
    let progress = &consumer.context().progress;
    let mut through_row = biller.ledger().last_record_row()?;
    let mut checkpointer = Checkpointer::start(biller.ledger(), WalBound::default())?;
    for prepared in batches {
        let began = Instant::now();
        let outcome = write_until_taken(&mut biller, &prepared, &mut retry, pipeline, stop)?;
        tracing::debug!("committed batch: {outcome:?}");
        if let Err(error) = checkpointer.after_commit(biller.ledger()) {
            // The batch is committed; the WAL is emptied after a later one.
            tracing::warn!("checkpointing {}: {}", biller.ledger().path().display(), crate::errors::chain(&error));
        }
        through_row = outcome.new_rows.iter().map(|(row, _)| *row).fold(through_row, i64::max);
        progress.billed(through_row, prepared.next_offsets());
        // Without a feed nothing waits: the group hears of the batch at once.
        progress.tell_group(consumer, CommitMode::Async);
        if let Some(metrics) = &options.metrics {
            metrics.record_commit(biller.totals(), began.elapsed());
        }
        last_commit = Some(Instant::now());
        pipeline.in_flight.fetch_sub(1, Ordering::SeqCst);
        match feed.try_send(prepared.into_lines(&outcome)) {
            Ok(()) => {}
            // The feed thread is behind: it reads these lines from the ledger when it gets to them
            // (its cursor is in the ledger), so billing never waits for publishing.
            Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Disconnected(_)) => break,
        }
    }
    Ok(Written { totals: biller.totals(), last_commit })
}

/// Writes `prepared`, again and again while the ledger refuses it for a passing reason (full disk,
/// I/O error, a lock): it stays in memory, unbilled and unacknowledged, and nothing is lost.
fn write_until_taken(
    biller: &mut Biller,
    prepared: &Prepared,
    retry: &mut LedgerRetry,
    pipeline: &Pipeline,
    stop: &AtomicBool,
) -> Result<BatchOutcome, LedgerError> {
    loop {
        match biller.write(prepared) {
            Ok(outcome) => {
                if let Some(held_for) = retry.written() {
                    pipeline.held.store(false, Ordering::SeqCst);
                    tracing::info!("ledger writable again after {held_for:.1?}; billing resumed");
                }
                return Ok(outcome);
            }
            Err(error) if error.is_storage_fault() => {
                retry.refused(&error, prepared.messages().len(), biller.ledger().path());
                pipeline.held.store(true, Ordering::SeqCst);
                while !retry.write_due(false) {
                    if stop.load(Ordering::SeqCst) || pipeline.halt.load(Ordering::SeqCst) {
                        // Stopping: the held batch was neither billed nor acknowledged, so the next
                        // start reads it again.
                        return Err(error);
                    }
                    std::thread::sleep(STOP_CHECK);
                }
            }
            Err(other) => return Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::billing::biller::RawMessage;
    use crate::billing::ledger::Ledger;
    use crate::billing::rate_card::RateCard;
    use crate::record::{UnixMillis, UsageRecord};

    /// What the test does once the ledger thread says it holds the batch.
    enum OnceHeld {
        /// Lets the ledger take writes again.
        Release,
        /// Stops the worker, the lock still held.
        Stop,
    }

    /// Writes a batch of two records while another connection holds the ledger's write lock, then
    /// does `once_held`. Returns what the write returned, whether the batch is still marked held,
    /// and the records the ledger holds afterwards.
    fn write_while_locked(once_held: OnceHeld) -> (Result<BatchOutcome, LedgerError>, bool, i64) {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("ledger.db");
        let mut biller = Biller::new(Ledger::open(&path).unwrap(), RateCard::built_in());
        biller.ledger().connection().busy_timeout(Duration::from_millis(50)).unwrap();
        let message = |seq: u64| RawMessage {
            topic: "usage".into(),
            partition: 0,
            offset: seq as i64,
            payload: Some(UsageRecord::steady("m", seq, UnixMillis(1_767_225_600_000), 10_000).to_json()),
        };
        let batch = Prepared::new(biller.card(), vec![message(1), message(2)]);
        let (pipeline, stop) = (Pipeline::default(), AtomicBool::new(false));
        let (locked, release) = (AtomicBool::new(false), AtomicBool::new(false));
        let wait_for = |flag: &AtomicBool| {
            while !flag.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        let written = std::thread::scope(|scope| {
            scope.spawn(|| {
                let blocker = rusqlite::Connection::open(&path).unwrap();
                blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
                locked.store(true, Ordering::SeqCst);
                wait_for(&release);
            });
            scope.spawn(|| {
                wait_for(&pipeline.held);
                match once_held {
                    OnceHeld::Release => release.store(true, Ordering::SeqCst),
                    OnceHeld::Stop => stop.store(true, Ordering::SeqCst),
                }
            });
            wait_for(&locked);
            let written = write_until_taken(&mut biller, &batch, &mut LedgerRetry::default(), &pipeline, &stop);
            release.store(true, Ordering::SeqCst);
            written
        });
        let ledger = Ledger::open_read_only(&path).unwrap();
        let records = ledger.connection().query_row("SELECT count(*) FROM records", [], |row| row.get(0)).unwrap();
        (written, pipeline.held.load(Ordering::SeqCst), records)
    }

    #[test]
    fn a_batch_the_ledger_refuses_is_held_then_written_once_the_ledger_takes_it() {
        let (written, still_held, records) = write_while_locked(OnceHeld::Release);
        assert_eq!(written.unwrap().billed, 2);
        assert!(!still_held, "written: consumption resumes");
        assert_eq!(records, 2);
    }

    #[test]
    fn a_held_batch_is_given_up_unbilled_when_the_worker_stops() {
        let (written, _, records) = write_while_locked(OnceHeld::Stop);
        let error = written.expect_err("stopping while held gives the batch up");
        assert!(error.is_storage_fault(), "{error}");
        assert_eq!(records, 0, "nothing of the held batch was stored (and none of it was acknowledged)");
    }
}
