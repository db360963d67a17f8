//! The desktop app's cost reader thread: it holds every machine's cost summary and sends the views
//! a snapshot when one changes. In embedded mode it computes the summaries from the local ledger
//! when the agent has billed into it (and every 10 s, for any other writer); in Kafka mode it reads
//! the workers' compacted summary topic, from its start and then as summaries arrive. Either way it
//! holds about 1 KB a machine and writes nothing to disk, however large the fleet and its history.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Settings;
use crate::billing::cost_engine::{CostEngine, CostSummary};
use crate::billing::ledger::{Ledger, LedgerError};
use crate::billing::rate_card::RateCard;
use crate::errors;
use crate::feed::FeedError;
use crate::feed::summary::{SummaryBook, SummaryFeed};
use crate::kafka::KafkaConfig;
use crate::record::UnixMillis;

/// How often a ledger written by another process is read again, and the projection refreshed.
const REFRESH_ANYWAY: Duration = Duration::from_secs(10);
/// Most snapshots per second sent to the views while summaries stream in.
const SEND_EVERY: Duration = Duration::from_millis(100);
/// How long a failed read waits before it starts again (the broker away, the topic not made yet).
const RETRY: Duration = Duration::from_secs(2);

/// Where the summaries come from.
#[derive(Debug, Clone, PartialEq)]
pub enum CostSource {
    /// Computed from this ledger (embedded mode).
    Ledger(PathBuf),
    /// Read from the summary topic.
    Kafka(Box<KafkaConfig>),
}

/// What the views want read: shared with the reader thread.
#[derive(Debug, Clone, PartialEq)]
pub struct CostQuery {
    /// Where the summaries come from.
    pub source: CostSource,
    /// The rate card: its tiers in embedded mode, the versions a summary may name in Kafka mode.
    pub rate_card: Option<PathBuf>,
}

impl CostQuery {
    /// The query for `settings`.
    pub fn for_settings(settings: &Settings) -> CostQuery {
        let source = if settings.embedded() {
            CostSource::Ledger(settings.ledger_path())
        } else {
            CostSource::Kafka(Box::new(settings.config.kafka.clone()))
        };
        CostQuery { source, rate_card: settings.config.worker.rate_card.clone() }
    }
}

/// Where the costs stand.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum CostState {
    /// Nothing read yet (or still catching up with the summary topic).
    #[default]
    Loading,
    /// Read: `summaries` may still be empty (nothing billed yet).
    Ready,
    /// The source could not be read; the message says why (it is tried again).
    Failed(String),
}

/// One reading of the costs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CostSnapshot {
    /// Where the costs stand.
    pub state: CostState,
    /// One summary per machine, ordered by machine id.
    pub summaries: Arc<Vec<CostSummary>>,
    /// Summary messages skipped (unparseable, an unknown card version), with the latest reasons.
    pub skipped: (u64, Vec<String>),
    /// When it was read.
    pub read_at: UnixMillis,
}

/// Starts the reader; it hands each snapshot to `send` (false: the views are gone) and stops when
/// `wake`'s sender is dropped. A message on `wake` reads at once.
pub fn spawn(
    query: Arc<Mutex<CostQuery>>,
    wake: Receiver<()>,
    send: impl Fn(CostSnapshot) -> bool + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("app-costs".into()).spawn(move || {
        let mut reader: Option<(CostQuery, Reader)> = None;
        let mut sent_at = Instant::now() - REFRESH_ANYWAY;
        let mut pending = false;
        loop {
            let wanted = query.lock().map(|query| query.clone()).expect("the cost query lock");
            if reader.as_ref().is_none_or(|(query, _)| *query != wanted) {
                reader = Some((wanted.clone(), Reader::new(&wanted)));
                pending = true;
            }
            let (_, current) = reader.as_mut().expect("made above");
            let (changed, idle) = current.read();
            pending |= changed || sent_at.elapsed() >= REFRESH_ANYWAY;
            if pending && sent_at.elapsed() >= SEND_EVERY {
                if !send(current.snapshot()) {
                    return;
                }
                sent_at = Instant::now();
                pending = false;
            }
            let wait = if pending { SEND_EVERY.min(idle) } else { idle };
            match wake.recv_timeout(wait) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    })
}

/// The summaries of one source and how they are kept current.
struct Reader {
    query: CostQuery,
    /// Shared with each read, so a read does not copy the card.
    card: Result<Arc<RateCard>, String>,
    book: SummaryBook,
    state: CostState,
    source: Option<Source>,
    retry_at: Instant,
}

enum Source {
    Ledger { ledger: Ledger, engine: Box<CostEngine> },
    Kafka(SummaryFeed),
}

impl Reader {
    fn new(query: &CostQuery) -> Reader {
        let card = RateCard::load(query.rate_card.as_deref()).map(Arc::new).map_err(|error| errors::chain(&error));
        Reader { query: query.clone(), card, book: SummaryBook::new(), state: CostState::Loading, source: None, retry_at: Instant::now() }
    }

    /// Reads what is new; returns whether the summaries changed and how long to wait before the
    /// next read if nothing wakes the thread.
    fn read(&mut self) -> (bool, Duration) {
        let card = match &self.card {
            Ok(card) => Arc::clone(card),
            Err(error) => {
                let message = format!("the rate card could not be read: {error}");
                let changed = self.state != CostState::Failed(message.clone());
                self.state = CostState::Failed(message);
                return (changed, REFRESH_ANYWAY);
            }
        };
        if self.source.is_none() && Instant::now() < self.retry_at {
            return (false, RETRY);
        }
        match self.read_source(&card) {
            Ok((changed, idle)) => (changed, idle),
            Err(message) => {
                self.source = None;
                self.retry_at = Instant::now() + RETRY;
                let changed = self.state != CostState::Failed(message.clone());
                self.state = CostState::Failed(message);
                (changed, RETRY)
            }
        }
    }

    fn read_source(&mut self, card: &RateCard) -> Result<(bool, Duration), String> {
        let now = UnixMillis::now();
        if self.source.is_none() {
            self.source = match &self.query.source {
                CostSource::Ledger(path) => match Ledger::open_read_only(path) {
                    Ok(ledger) => {
                        let engine = CostEngine::load(&ledger, RateCard::clone(card), now).map_err(|error| errors::chain(&error))?;
                        Some(Source::Ledger { ledger, engine: Box::new(engine) })
                    }
                    // Until the first record is billed there is no file (or no schema yet): no bills.
                    Err(LedgerError::Missing(_)) => None,
                    Err(LedgerError::Damaged { detail, .. }) if detail.starts_with("schema version 0") => None,
                    Err(error) => return Err(errors::chain(&error)),
                },
                CostSource::Kafka(kafka) => {
                    Some(Source::Kafka(SummaryFeed::open(kafka).map_err(|error: FeedError| errors::chain(&error))?))
                }
            };
        }
        let was_loading = self.state != CostState::Ready;
        let (changed, idle) = match self.source.as_mut() {
            None => {
                self.state = CostState::Ready;
                return Ok((was_loading, REFRESH_ANYWAY));
            }
            Some(Source::Ledger { ledger, engine }) => {
                let touched = engine.refresh(ledger, now).map_err(|error| errors::chain(&error))?.machines;
                let first = self.book.is_empty();
                let machines = if first { engine.machines() } else { touched };
                for summary in engine.summaries(ledger, &machines, now).map_err(|error| errors::chain(&error))? {
                    self.book.take(summary);
                }
                self.state = CostState::Ready;
                (!machines.is_empty(), REFRESH_ANYWAY)
            }
            Some(Source::Kafka(feed)) => {
                let taken = feed.poll(&mut self.book, Some(card), Duration::from_millis(100)).map_err(|error| errors::chain(&error))?;
                if feed.caught_up() {
                    self.state = CostState::Ready;
                }
                (taken > 0, Duration::ZERO)
            }
        };
        Ok((changed || (was_loading && self.state == CostState::Ready), idle))
    }

    fn snapshot(&self) -> CostSnapshot {
        let mut summaries: Vec<CostSummary> = self.book.summaries().cloned().collect();
        summaries.sort_by(|a, b| a.machine_id.cmp(&b.machine_id));
        let (skipped, reasons) = self.book.skipped();
        CostSnapshot {
            state: self.state.clone(),
            summaries: Arc::new(summaries),
            skipped: (skipped, reasons.to_vec()),
            read_at: UnixMillis::now(),
        }
    }
}
