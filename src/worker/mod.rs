//! The Kafka billing worker: a consumer-group member that bills in batches. It resumes a partition
//! from the offsets its own ledger stored, and takes over a partition new to it where the group's
//! committed offset says the last owner stopped.
//!
//! After each committed batch `publish_and_alert` sends the new lines to the cost feed
//! ([`crate::feed`]) and checks budgets; [`metrics`] is what the worker tells the API's `/metrics`.

mod batcher;
mod consumer;
pub mod metrics;
mod publish_and_alert;
mod retry;
mod step;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::consumer::CommitMode;
use rdkafka::error::KafkaError;

pub use self::metrics::WorkerMetrics;
use self::publish_and_alert::PublishAndAlert;
use self::step::{Flow, Worker};
use self::writer::Pipeline;
use crate::billing::biller::{Biller, BillerTotals, FreshLine};
use crate::billing::budget::Budgets;
use crate::billing::ledger::{Ledger, LedgerError};
use crate::feed::FeedError;
use crate::kafka::{KafkaConfig, KafkaSetupError, Librdkafka};

/// Why the worker stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Kafka could not be set up.
    #[error(transparent)]
    Setup(#[from] KafkaSetupError),
    /// Kafka failed while running.
    #[error("the Kafka consumer of the usage topic failed")]
    Kafka(#[source] Librdkafka),
    /// The ledger refused a write (disk full, I/O error): nothing past the last commit was stored.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The cost feed could not be set up or written.
    #[error(transparent)]
    Feed(#[from] FeedError),
    /// The broker refused this worker's principal (librdkafka's words, with what the principal
    /// needs); waiting would not change that.
    #[error("the broker refused the worker: {0}")]
    Refused(String),
    /// The system would not start one of the worker's threads (out of memory or thread limit).
    #[error("cannot start the worker's {name} thread")]
    Thread {
        /// The thread.
        name: &'static str,
        /// What the system said.
        source: std::io::Error,
    },
}

impl From<KafkaError> for WorkerError {
    fn from(error: KafkaError) -> Self {
        WorkerError::Kafka(Librdkafka(error))
    }
}

/// Whether `error` is the broker refusing access (an ACL or a failed login), not a passing fault.
fn is_refusal(error: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as Code;
    matches!(
        error.rdkafka_error_code(),
        Some(
            Code::TopicAuthorizationFailed
                | Code::GroupAuthorizationFailed
                | Code::ClusterAuthorizationFailed
                | Code::SaslAuthenticationFailed
        )
    )
}

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Most messages per ledger transaction.
    pub batch_size: usize,
    /// Longest wait before a partial batch is written.
    pub batch_linger: Duration,
    /// Stop once nothing arrived for this long, counted from the first assignment.
    pub exit_when_idle: Option<Duration>,
    /// Live numbers for the HTTP API's `/metrics`, updated after each committed batch.
    pub metrics: Option<Arc<WorkerMetrics>>,
}

/// What the worker does beyond billing (kept apart from [`WorkerOptions`] so its callers need not change).
#[derive(Debug, Clone)]
pub struct FeedOptions {
    /// Publish every billed line to `kafka.cost_topic` (default: yes).
    pub publish_feed: bool,
    /// Per-machine budgets whose crossing raises an alert (default: none).
    pub budgets: Budgets,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions { publish_feed: true, budgets: Budgets::default() }
    }
}

/// Batches of new lines waiting for the feed thread; past this the ledger thread leaves the lines
/// in the ledger, where the feed thread reads them when it gets there.
const FEED_QUEUE: usize = 4;
/// How often the feed thread catches up with the ledger and takes delivery reports while no batch comes.
const FEED_SETTLE_INTERVAL: Duration = Duration::from_millis(200);

/// Bills the usage topic into `biller`'s ledger until `stop` is set, with the cost feed and budgets as `feed` says.
///
/// Three threads share the work, so each batch's steps overlap the next batch's: this one polls
/// Kafka and prepares batches (parse, validate, price), the ledger thread writes them and commits,
/// and the feed thread publishes the new lines and checks budgets. The feed thread runs at a lower
/// priority and never holds billing back: it catches up from its cursor in the ledger.
pub fn run(
    kafka: &KafkaConfig,
    biller: Biller,
    options: &WorkerOptions,
    feed: &FeedOptions,
    stop: &AtomicBool,
) -> Result<BillerTotals, WorkerError> {
    let path = biller.ledger().path().to_owned();
    let consumer = consumer::subscribe(kafka, path.clone(), feed.publish_feed)?;
    tracing::info!("worker consuming {} in group {} into {}", kafka.topic, kafka.group_id, path.display());
    let card = biller.card().clone();
    let card_for_feed = card.clone();
    let feed_ledger = Ledger::open(&path)?;
    let pipeline = Pipeline::default();
    let (to_writer, batches) = mpsc::sync_channel(1);
    let (to_feed, lines) = mpsc::sync_channel::<Vec<FreshLine>>(FEED_QUEUE);
    thread::scope(|scope| {
        let spawned = |name: &'static str| move |source| WorkerError::Thread { name, source };
        let consumer_for_feed = &consumer;
        let feed_thread = thread::Builder::new().name("cost-feed".into()).spawn_scoped(scope, move || -> Result<(), WorkerError> {
            // Publishing catches up from the feed cursor in the ledger, so it can wait while billing
            // has work; its producer, made on this thread, runs its own threads at this priority too.
            crate::priority::yield_to_billing();
            let mut publish_and_alert = PublishAndAlert::start(kafka, feed_ledger, card_for_feed, feed.publish_feed, feed.budgets.clone())?;
            loop {
                let (done, between_batches) = match lines.recv_timeout(FEED_SETTLE_INTERVAL) {
                    Ok(batch) => (publish_and_alert.on_commit(&batch), false),
                    Err(mpsc::RecvTimeoutError::Timeout) => (publish_and_alert.between_batches(), true),
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                };
                match done {
                    // The feed resumes from its cursor in the ledger, so a cursor not written now is
                    // caught up later; said once a batch, not five times a second.
                    Err(FeedError::Ledger(error)) if error.is_storage_fault() && between_batches => {
                        tracing::debug!("publishing to the cost topic: {}; catching up later", crate::errors::chain(&error))
                    }
                    Err(FeedError::Ledger(error)) if error.is_storage_fault() => {
                        tracing::warn!("publishing to the cost topic: {}; catching up later", crate::errors::chain(&error))
                    }
                    other => other?,
                }
                publish_and_alert.tell_group(consumer_for_feed, CommitMode::Async);
            }
            publish_and_alert.finish()?;
            publish_and_alert.tell_group(consumer_for_feed, CommitMode::Sync);
            Ok(())
        });
        let feed_thread = feed_thread.map_err(spawned("cost-feed"))?;
        let (consumer, pipeline) = (&consumer, &pipeline);
        let writer_thread = thread::Builder::new()
            .name("ledger".into())
            .spawn_scoped(scope, move || writer::write_batches(biller, batches, to_feed, consumer, pipeline, options, stop))
            // Not started: its closure, and with it the feed thread's input, is dropped, so the feed thread ends.
            .map_err(spawned("ledger"))?;
        let mut worker = Worker::new(kafka, options, consumer, card, to_writer, pipeline);
        let mut consumed = Ok(());
        // A ledger or feed thread that stopped (a fault, a refusal) ends the run; the joins say why.
        while !stop.load(Ordering::SeqCst) && !writer_thread.is_finished() && !feed_thread.is_finished() {
            match worker.step() {
                Ok(Flow::Go) => {}
                Ok(Flow::Stop) => break,
                Err(error) => {
                    consumed = Err(error);
                    break;
                }
            }
        }
        let first_message = worker.first_message;
        if consumed.is_ok() {
            worker.finish();
        } else {
            pipeline.halt.store(true, Ordering::SeqCst);
            drop(worker);
        }
        let written = writer_thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let published = feed_thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        consumed?;
        let written = written?;
        published?;
        let totals = written.totals;
        tracing::info!(
            "worker stopped: {} billed, {} duplicates, {} quarantined{}",
            totals.billed,
            totals.duplicates,
            totals.quarantined,
            describe_throughput(first_message, written.last_commit, totals.billed + totals.duplicates + totals.quarantined)
        );
        Ok(totals)
    })
}

/// From the first message received to the last batch committed.
fn describe_throughput(first_message: Option<Instant>, last_commit: Option<Instant>, messages: u64) -> String {
    match (first_message, last_commit) {
        (Some(first), Some(last)) if last > first => {
            let seconds = (last - first).as_secs_f64();
            format!("; {messages} message(s) committed in {seconds:.3}s ({:.0} records/s)", messages as f64 / seconds)
        }
        _ => String::new(),
    }
}

/// A stop flag set by Ctrl-C and SIGTERM.
pub fn stop_on_signal() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    if let Err(error) = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)) {
        tracing::warn!("cannot install the Ctrl-C handler: {error}");
    }
    stop
}
