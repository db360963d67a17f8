//! The Kafka billing worker: a consumer-group member that bills in batches and resumes from the
//! offsets its own ledger stored, not from the group's committed offsets.

mod batcher;
mod consumer;
mod retry;
mod step;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;

use self::step::{Flow, Worker};
use super::after_commit::AfterCommit;
use super::api::WorkerMetrics;
use super::biller::{Biller, BillerTotals};
use super::budget::Budgets;
use super::feed::FeedError;
use super::ledger::LedgerError;
use crate::kafka::{KafkaConfig, KafkaSetupError};

/// Why the worker stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Kafka could not be set up.
    #[error(transparent)]
    Setup(#[from] KafkaSetupError),
    /// Kafka failed while running.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
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

/// Consumes `kafka.topic` in `kafka.group_id` and bills into `biller` until `stop` is set or the
/// worker has been idle for `exit_when_idle`; publishes the cost feed, without budgets.
pub fn run(kafka: &KafkaConfig, biller: Biller, options: &WorkerOptions, stop: &AtomicBool) -> Result<BillerTotals, WorkerError> {
    run_with_feed(kafka, biller, options, &FeedOptions::default(), stop)
}

/// [`run`], with the cost feed and budgets as `feed` says.
pub fn run_with_feed(
    kafka: &KafkaConfig,
    mut biller: Biller,
    options: &WorkerOptions,
    feed: &FeedOptions,
    stop: &AtomicBool,
) -> Result<BillerTotals, WorkerError> {
    let consumer = consumer::subscribe(kafka, biller.ledger().path().to_owned())?;
    tracing::info!("worker consuming {} in group {} into {}", kafka.topic, kafka.group_id, biller.ledger().path().display());
    let after_commit = AfterCommit::start(kafka, &mut biller, feed.publish_feed, feed.budgets.clone())?;
    let mut worker = Worker::new(kafka, options, consumer, biller, after_commit);
    while !stop.load(Ordering::SeqCst) {
        if worker.step()? == Flow::Stop {
            break;
        }
    }
    worker.finish()
}

/// From the first message received to the last batch committed, for the throughput figure.
#[derive(Default)]
struct Throughput {
    first_message: Option<Instant>,
    last_commit: Option<Instant>,
}

impl Throughput {
    /// A batch begun at `began` was committed: `/metrics` gets the biller's `totals`.
    fn committed(&mut self, options: &WorkerOptions, totals: BillerTotals, began: Instant) {
        if let Some(metrics) = &options.metrics {
            metrics.record_commit(totals, began.elapsed());
        }
        self.last_commit = Some(Instant::now());
    }

    fn describe(&self, messages: u64) -> String {
        match (self.first_message, self.last_commit) {
            (Some(first), Some(last)) if last > first => {
                let seconds = (last - first).as_secs_f64();
                format!("; {messages} message(s) committed in {seconds:.3}s ({:.0} records/s)", messages as f64 / seconds)
            }
            _ => String::new(),
        }
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
