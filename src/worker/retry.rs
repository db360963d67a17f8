//! What the worker does while the ledger refuses writes (full disk, I/O error): the batch stays in
//! memory, unbilled and unacknowledged (so nothing is lost, and nothing is billed twice: the ledger
//! stores a batch and its offsets in one transaction), consumption is paused, and the same batch is
//! written again every [`LEDGER_RETRY`] until the ledger takes it.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::billing::ledger::LedgerError;

/// How often a ledger that refused a write is tried again.
pub(super) const LEDGER_RETRY: Duration = Duration::from_secs(1);

/// Whether a refused batch is held, since when, and when it is next written.
#[derive(Debug, Default)]
pub(super) struct LedgerRetry {
    held: Option<Held>,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    since: Instant,
    retry_at: Instant,
}

impl LedgerRetry {
    /// Whether to write the batch now: at the retry time while one is held, else when `batch_ready`.
    pub fn write_due(&self, batch_ready: bool) -> bool {
        match &self.held {
            Some(held) => held.retry_at <= Instant::now(),
            None => batch_ready,
        }
    }

    /// The ledger refused `waiting` messages with `error`: hold them and retry later. Logs the first
    /// refusal of a run of them only. The caller pauses consumption.
    pub fn refused(&mut self, error: &LedgerError, waiting: usize, ledger: &Path) {
        if self.held.is_none() {
            tracing::error!(
                "ledger {} refused a write: {}; holding {waiting} message(s) unbilled and unacknowledged, \
                 retrying every {LEDGER_RETRY:?}",
                ledger.display(),
                crate::errors::chain(error)
            );
        }
        let since = self.held.map_or_else(Instant::now, |held| held.since);
        self.held = Some(Held { since, retry_at: Instant::now() + LEDGER_RETRY });
    }

    /// The ledger took the batch. When one was held, returns how long, and the caller resumes
    /// consumption.
    pub fn written(&mut self) -> Option<Duration> {
        self.held.take().map(|held| held.since.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal() -> LedgerError {
        LedgerError::Sqlite(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(13), Some("database or disk is full".into())))
    }

    #[test]
    fn a_refused_batch_waits_for_the_retry_time_whether_or_not_the_batch_is_ready() {
        let mut retry = LedgerRetry::default();
        assert!(retry.write_due(true) && !retry.write_due(false), "nothing held: the batcher decides");
        assert_eq!(retry.written(), None);
        retry.refused(&refusal(), 3, Path::new("ledger.db"));
        assert!(!retry.write_due(true), "held: not before the retry time");
        let first_since = retry.held.unwrap().since;
        retry.held = Some(Held { since: first_since, retry_at: Instant::now() });
        assert!(retry.write_due(false), "held: due at the retry time");
        retry.refused(&refusal(), 3, Path::new("ledger.db"));
        assert_eq!(retry.held.unwrap().since, first_since, "held since the first refusal");
        assert!(retry.written().is_some());
        assert!(retry.written().is_none() && retry.write_due(true));
    }
}
