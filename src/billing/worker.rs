//! The Kafka billing worker: a consumer-group member that bills in batches and resumes from the
//! offsets its own ledger stored, not from the group's committed offsets.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;

use super::after_commit::AfterCommit;
use super::api::WorkerMetrics;
use super::biller::{Biller, BillerTotals, RawMessage};
use super::budget::Budgets;
use super::feed::FeedError;
use super::ledger::{Ledger, LedgerError};
use crate::kafka::KafkaConfig;
use crate::kafka::{ClientRole, KafkaSetupError, apply_properties, client_config, ensure_topic};

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

/// Reads partition offsets from the ledger when partitions are assigned.
struct ResumeFromLedger {
    ledger_path: PathBuf,
    assigned: AtomicBool,
}

impl ClientContext for ResumeFromLedger {}

impl ConsumerContext for ResumeFromLedger {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, event: RDKafkaRespErr, partitions: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let result = match event {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Err(error) = self.set_stored_offsets(partitions) {
                    tracing::error!("reading stored offsets from {}: {error}", self.ledger_path.display());
                }
                tracing::info!("assigned {} partition(s): {}", partitions.count(), describe(partitions));
                self.assigned.store(true, Ordering::SeqCst);
                if cooperative { consumer.incremental_assign(partitions) } else { consumer.assign(partitions) }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!("revoked {} partition(s)", partitions.count());
                if cooperative { consumer.incremental_unassign(partitions) } else { consumer.unassign() }
            }
            other => {
                tracing::warn!("rebalance error: {other:?}");
                consumer.unassign()
            }
        };
        if let Err(error) = result {
            tracing::error!("applying the assignment: {error}");
        }
    }
}

impl ResumeFromLedger {
    fn set_stored_offsets(&self, partitions: &mut TopicPartitionList) -> Result<(), LedgerError> {
        let ledger = Ledger::open_read_only(&self.ledger_path)?;
        let mut by_topic = std::collections::HashMap::new();
        for element in partitions.elements() {
            let topic = element.topic().to_owned();
            if !by_topic.contains_key(&topic) {
                by_topic.insert(topic.clone(), ledger.offsets(&topic)?);
            }
        }
        let assigned: Vec<(String, i32)> =
            partitions.elements().iter().map(|element| (element.topic().to_owned(), element.partition())).collect();
        for (topic, partition) in assigned {
            let stored = by_topic.get(&topic).and_then(|offsets| offsets.get(&partition));
            let offset = stored.map_or(Offset::Beginning, |next| Offset::Offset(*next));
            // Only fails for a partition not in the list, and these all are.
            let _ = partitions.set_partition_offset(&topic, partition, offset);
        }
        Ok(())
    }
}

fn describe(partitions: &TopicPartitionList) -> String {
    partitions
        .elements()
        .iter()
        .map(|element| format!("{}[{}]@{:?}", element.topic(), element.partition(), element.offset()))
        .collect::<Vec<_>>()
        .join(", ")
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
    ensure_topic(kafka, &kafka.topic)?;
    let context = ResumeFromLedger { ledger_path: biller.ledger().path().to_owned(), assigned: AtomicBool::new(false) };
    let mut config = client_config(kafka, ClientRole::Consumer)?;
    config
        .set("group.id", &kafka.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // librdkafka waits up to 500 ms for a fetch to fill by default; billing wants each record at once.
        .set("fetch.wait.max.ms", "10");
    apply_properties(&mut config, kafka, ClientRole::Consumer)?;
    let consumer: BaseConsumer<ResumeFromLedger> =
        config.create_with_context(context).map_err(|source| KafkaSetupError::kafka("creating the consumer", source))?;
    consumer.subscribe(&[&kafka.topic])?;
    tracing::info!("worker consuming {} in group {} into {}", kafka.topic, kafka.group_id, biller.ledger().path().display());
    let mut after_commit = AfterCommit::start(kafka, &mut biller, feed.publish_feed, feed.budgets.clone())?;
    let mut throughput = Throughput::default();

    let mut batch: Vec<RawMessage> = Vec::with_capacity(options.batch_size);
    let mut batch_opened = Instant::now();
    let mut last_activity = Instant::now();
    let mut idle_clock_started = false;
    // Set while the ledger refuses writes: the batch is kept, consumption paused, the write retried.
    let mut held: Option<HeldBatch> = None;
    while !stop.load(Ordering::SeqCst) {
        match consumer.poll(Duration::from_millis(20)) {
            Some(Ok(message)) => {
                if batch.is_empty() {
                    batch_opened = Instant::now();
                }
                throughput.first_message.get_or_insert_with(Instant::now);
                batch.push(RawMessage {
                    topic: message.topic().to_owned(),
                    partition: message.partition(),
                    offset: message.offset(),
                    payload: message.payload().map(<[u8]>::to_vec),
                });
                last_activity = Instant::now();
            }
            Some(Err(error)) if is_refusal(&error) => {
                let (topic, group, costs) = (&kafka.topic, &kafka.group_id, &kafka.cost_topic);
                return Err(WorkerError::Refused(format!(
                    "{error}; its principal needs READ and DESCRIBE on topic {topic}, READ on group {group}, \
                     and WRITE and DESCRIBE on the cost topic {costs}"
                )));
            }
            Some(Err(error)) => tracing::warn!("consumer: {error}"),
            None => {}
        }
        let due = match &held {
            Some(held) => held.retry_at <= Instant::now(),
            None => batch.len() >= options.batch_size || batch_opened.elapsed() >= options.batch_linger,
        };
        if !batch.is_empty() && due {
            let commit_began = Instant::now();
            let waiting = batch.len();
            match commit_batch(&consumer, &mut biller, &mut batch) {
                Ok(()) => {
                    if let Some(held) = held.take() {
                        set_paused(&consumer, false);
                        tracing::info!("ledger writable again after {:.1?}; billing resumed", held.since.elapsed());
                    }
                }
                Err(WorkerError::Ledger(error)) if error.is_storage_fault() => {
                    if held.is_none() {
                        tracing::error!(
                            "ledger {} refused a write: {error}; holding {waiting} message(s) unbilled and unacknowledged, \
                             retrying every {LEDGER_RETRY:?}",
                            biller.ledger().path().display()
                        );
                    }
                    set_paused(&consumer, true);
                    let since = held.map_or_else(Instant::now, |held| held.since);
                    held = Some(HeldBatch { since, retry_at: Instant::now() + LEDGER_RETRY });
                    continue;
                }
                Err(other) => return Err(other),
            }
            if let Some(metrics) = &options.metrics {
                metrics.record_commit(biller.totals(), commit_began.elapsed());
            }
            throughput.last_commit = Some(Instant::now());
            match after_commit.on_commit(&mut biller) {
                // The feed resumes from its cursor in the ledger, so a cursor not written now is caught up later.
                Err(FeedError::Ledger(error)) if error.is_storage_fault() => tracing::warn!("cost feed: {error}; catching up later"),
                other => other?,
            }
            // Publishing can take a while; that time is the worker's own, not time without news.
            last_activity = Instant::now();
        }
        if let Some(metrics) = &options.metrics {
            metrics.sample_positions(&consumer);
        }
        if !idle_clock_started && consumer.context().assigned.load(Ordering::SeqCst) {
            idle_clock_started = true;
            last_activity = Instant::now();
        }
        if let Some(idle) = options.exit_when_idle
            && idle_clock_started
            && batch.is_empty()
            && last_activity.elapsed() >= idle
        {
            tracing::info!("nothing arrived for {idle:?}; stopping");
            break;
        }
    }
    if !batch.is_empty() {
        let commit_began = Instant::now();
        commit_batch(&consumer, &mut biller, &mut batch)?;
        if let Some(metrics) = &options.metrics {
            metrics.record_commit(biller.totals(), commit_began.elapsed());
        }
        throughput.last_commit = Some(Instant::now());
    }
    after_commit.finish(&mut biller)?;
    let totals = biller.totals();
    tracing::info!(
        "worker stopped: {} billed, {} duplicates, {} quarantined{}",
        totals.billed,
        totals.duplicates,
        totals.quarantined,
        throughput.describe(totals.billed + totals.duplicates + totals.quarantined)
    );
    Ok(totals)
}

/// How often a ledger that refused a write (full disk, I/O error) is tried again.
const LEDGER_RETRY: Duration = Duration::from_secs(1);

/// A batch the ledger refused, kept in memory until a retry succeeds.
struct HeldBatch {
    since: Instant,
    retry_at: Instant,
}

/// Pauses fetching while the ledger refuses writes (polling goes on, so the group keeps this
/// member), or resumes it.
fn set_paused(consumer: &BaseConsumer<ResumeFromLedger>, paused: bool) {
    let result =
        consumer.assignment().and_then(|assignment| if paused { consumer.pause(&assignment) } else { consumer.resume(&assignment) });
    if let Err(error) = result {
        tracing::warn!("{} consumption: {error}", if paused { "pausing" } else { "resuming" });
    }
}

/// From the first message received to the last batch committed, for the throughput figure.
#[derive(Default)]
struct Throughput {
    first_message: Option<Instant>,
    last_commit: Option<Instant>,
}

impl Throughput {
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

fn commit_batch(consumer: &BaseConsumer<ResumeFromLedger>, biller: &mut Biller, batch: &mut Vec<RawMessage>) -> Result<(), WorkerError> {
    let outcome = biller.bill(batch)?;
    tracing::debug!("committed batch: {outcome:?}");
    // Kafka's copy of the offsets only feeds lag monitoring; the ledger's copy is the one resumed from.
    let mut next_offsets = std::collections::HashMap::new();
    for message in batch.iter() {
        let next = next_offsets.entry((message.topic.as_str(), message.partition)).or_insert(0);
        *next = (message.offset + 1).max(*next);
    }
    let mut offsets = TopicPartitionList::new();
    for ((topic, partition), next) in next_offsets {
        let _ = offsets.add_partition_offset(topic, partition, Offset::Offset(next));
    }
    if let Err(error) = consumer.commit(&offsets, CommitMode::Async) {
        tracing::debug!("lag-monitoring commit failed: {error}");
    }
    batch.clear();
    Ok(())
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
