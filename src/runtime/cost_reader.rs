//! The desktop app's cost reader thread: it holds every machine's cost summary and sends the views
//! a snapshot when one changes. In embedded mode it computes the summaries from the local ledger
//! when the agent has billed into it (and every 10 s, for any other writer); in Kafka mode it reads
//! the workers' compacted summary topic, from its start and then as summaries arrive. Either way it
//! holds about 1 KB a machine, however large the fleet and its history. In Kafka mode it keeps the
//! last summaries read in a snapshot file (see [`super::cost_snapshot`]) and shows them, with their
//! age, while the brokers cannot be reached.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Settings;
use super::cost_snapshot;
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
pub const RETRY: Duration = Duration::from_secs(2);
/// How often, at most, the snapshot file is written while summaries change.
const SAVE_EVERY: Duration = Duration::from_secs(30);

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
    /// Where the last summaries read are kept (Kafka mode).
    pub snapshot_file: Option<PathBuf>,
}

impl CostQuery {
    /// The query for `settings`.
    pub fn for_settings(settings: &Settings) -> CostQuery {
        let source = if settings.embedded() {
            CostSource::Ledger(settings.ledger_path())
        } else {
            CostSource::Kafka(Box::new(settings.config.kafka.clone()))
        };
        let snapshot_file = (!settings.embedded()).then(|| cost_snapshot::snapshot_path(&settings.data_dir));
        CostQuery { source, rate_card: settings.config.worker.rate_card.clone(), snapshot_file }
    }

    /// Where the costs come from, in words.
    pub fn describe(&self) -> String {
        match &self.source {
            CostSource::Ledger(path) => format!("the ledger at {}", path.display()),
            CostSource::Kafka(kafka) => format!("the brokers at {}", kafka.brokers.join(", ")),
        }
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
    /// When the summaries shown were read, if they come from the snapshot file (the source cannot
    /// be read, or is still being read).
    pub saved_at: Option<UnixMillis>,
    /// Since when the source has failed, while it does.
    pub failing_since: Option<UnixMillis>,
    /// What is wrong, in plain words, while the costs cannot be read: `can't reach the brokers at
    /// host:9092`; the library's words are in [`CostState::Failed`].
    pub problem: Option<String>,
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
    failing_since: Option<UnixMillis>,
    /// The snapshot file's summaries and when they were read, until the topic has been read.
    saved: Option<(UnixMillis, SummaryBook)>,
    /// When the snapshot file was last written, and whether the book changed since.
    saved_to_disk: Option<Instant>,
    unsaved: bool,
}

enum Source {
    Ledger { ledger: Ledger, engine: Box<CostEngine> },
    Kafka(SummaryFeed),
}

impl Reader {
    fn new(query: &CostQuery) -> Reader {
        let card = RateCard::load(query.rate_card.as_deref()).map(Arc::new).map_err(|error| errors::chain(&error));
        let saved = query.snapshot_file.as_deref().and_then(load_saved);
        Reader {
            query: query.clone(),
            card,
            book: SummaryBook::new(),
            state: CostState::Loading,
            source: None,
            retry_at: Instant::now(),
            failing_since: None,
            saved,
            saved_to_disk: None,
            unsaved: false,
        }
    }

    /// Reads what is new and, once the topic has been read, keeps it in the snapshot file.
    fn read(&mut self) -> (bool, Duration) {
        let (changed, idle) = self.read_once();
        match self.state {
            CostState::Failed(_) => drop(self.failing_since.get_or_insert_with(UnixMillis::now)),
            _ => self.failing_since = None,
        }
        if self.state == CostState::Ready {
            // The topic has been read: what it says replaces what the file said.
            let replaced = self.saved.take().is_some();
            self.unsaved |= changed || replaced;
            self.save_when_due();
            return (changed || replaced, idle);
        }
        (changed, idle)
    }

    fn save_when_due(&mut self) {
        let Some(path) = &self.query.snapshot_file else { return };
        if !self.unsaved || self.saved_to_disk.is_some_and(|at| at.elapsed() < SAVE_EVERY) {
            return;
        }
        let summaries: Vec<&CostSummary> = self.book.summaries().collect();
        if let Err(error) = cost_snapshot::save(path, UnixMillis::now(), &summaries) {
            tracing::warn!("costs snapshot not kept: {error}");
        }
        self.saved_to_disk = Some(Instant::now());
        self.unsaved = false;
    }

    /// Reads what is new; returns whether the summaries changed and how long to wait before the
    /// next read if nothing wakes the thread.
    fn read_once(&mut self) -> (bool, Duration) {
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
        // Until the topic has been read, what the file kept says more than a half-read book.
        let (book, saved_at) = match &self.saved {
            Some((saved_at, saved)) if self.state != CostState::Ready => (saved, Some(*saved_at)),
            _ => (&self.book, None),
        };
        let mut summaries: Vec<CostSummary> = book.summaries().cloned().collect();
        summaries.sort_by(|a, b| a.machine_id.cmp(&b.machine_id));
        let (skipped, reasons) = self.book.skipped();
        CostSnapshot {
            state: self.state.clone(),
            summaries: Arc::new(summaries),
            skipped: (skipped, reasons.to_vec()),
            read_at: UnixMillis::now(),
            saved_at,
            failing_since: self.failing_since,
            problem: self.problem(),
        }
    }

    fn problem(&self) -> Option<String> {
        if !matches!(self.state, CostState::Failed(_)) {
            return None;
        }
        Some(match (&self.card, &self.query.source) {
            (Err(_), _) => "the rate card could not be read".to_owned(),
            (Ok(_), CostSource::Kafka(_)) => format!("can't reach {}", self.query.describe()),
            (Ok(_), CostSource::Ledger(_)) => format!("can't read {}", self.query.describe()),
        })
    }
}

/// The snapshot file's summaries, or none (with a log line when a file there cannot be used).
fn load_saved(path: &std::path::Path) -> Option<(UnixMillis, SummaryBook)> {
    match cost_snapshot::load(path) {
        Ok(Some((saved_at, summaries))) => {
            let mut book = SummaryBook::new();
            for summary in summaries {
                book.take(summary);
            }
            Some((saved_at, book))
        }
        Ok(None) => None,
        Err(error) => {
            tracing::warn!("ignoring the costs snapshot: {error}");
            None
        }
    }
}
