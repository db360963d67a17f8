//! Materialising the cost feed into a view: a SQLite file with the ledger's schema, written through
//! [`Ledger::write_batch`], so a record billed twice (by two workers after a partition moved, or
//! republished after a crash) counts once, and `report`, the cost engine and an API read the
//! view exactly as they read a ledger.
//!
//! The view assigns itself every partition of the cost topic (no consumer group: each view reads the
//! whole feed) and resumes at the offsets stored in the view with the rows they produced.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::{FeedError, FeedMessage};
use crate::billing::ledger::{Batch, Ledger, Quarantined};
use crate::kafka::KafkaConfig;
use crate::kafka::{ClientRole, KafkaSetupError, client_config, ensure_topic};

/// Most feed messages per view transaction.
const BATCH_MESSAGES: usize = 5_000;
/// Longest wait before a partial batch is written.
const BATCH_LINGER: Duration = Duration::from_millis(50);

/// What a materialiser wrote into its view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaterialiserTotals {
    /// Cost lines new to the view.
    pub costs: u64,
    /// Cost lines the view already held (redeliveries, re-billing after a partition moved).
    pub duplicates: u64,
    /// Budget alerts read.
    pub alerts: u64,
    /// Messages that are not valid feed messages (kept in the view's quarantine table).
    pub invalid: u64,
}

/// Starts a thread that materialises `kafka.cost_topic` into the view at `view_path` (created if
/// missing, e.g. `data_dir/feed.db`) until `stop` is set, and sets `caught_up` once the view holds
/// everything the topic held when the thread started. Read the view with
/// [`Ledger::open_read_only`] and the usual report and period functions while it runs: SQLite's WAL
/// lets readers see each committed batch. The thread returns its totals, or the error that stopped it
/// (no brokers, a view that cannot be opened or written).
pub fn spawn_materialiser(
    kafka: &KafkaConfig,
    view_path: &Path,
    stop: Arc<AtomicBool>,
    caught_up: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<Result<MaterialiserTotals, FeedError>>> {
    let kafka = kafka.clone();
    let view_path = view_path.to_owned();
    std::thread::Builder::new().name("cost-feed-view".into()).spawn(move || {
        // A view catches up from its stored offsets, so it can wait while billing has work.
        crate::priority::yield_to_billing();
        Materialiser::open(&kafka, &view_path)?.run(&stop, false, &caught_up)
    })
}

/// Materialises everything the cost topic held when called into the view at `view_path`, then
/// returns (what `usagebill report --from-feed` does).
pub fn materialise_until_caught_up(kafka: &KafkaConfig, view_path: &Path) -> Result<MaterialiserTotals, FeedError> {
    Materialiser::open(kafka, view_path)?.run(&AtomicBool::new(false), true, &AtomicBool::new(false))
}

struct Materialiser {
    view: Ledger,
    consumer: BaseConsumer,
    topic: String,
    /// Next offset to read per partition, as stored in the view.
    next_offsets: HashMap<i32, i64>,
    totals: MaterialiserTotals,
}

impl Materialiser {
    fn open(kafka: &KafkaConfig, view_path: &Path) -> Result<Materialiser, FeedError> {
        ensure_topic(kafka, &kafka.cost_topic)?;
        let view = Ledger::open(view_path)?;
        let mut config = client_config(kafka, ClientRole::Consumer)?;
        // A group id is required by librdkafka's consumer, but it is never joined or committed to.
        config.set("group.id", format!("usagebill-view-{}", std::process::id())).set("enable.auto.commit", "false");
        let consumer: BaseConsumer =
            config.create().map_err(|source| KafkaSetupError::kafka("creating the consumer of the cost topic", source))?;
        let topic = kafka.cost_topic.clone();
        let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
        let stored = view.offsets(&topic)?;
        let mut assignment = TopicPartitionList::new();
        let mut next_offsets = HashMap::new();
        for partition in metadata.topics().iter().flat_map(|found| found.partitions()) {
            let next = stored.get(&partition.id()).copied();
            assignment.add_partition_offset(&topic, partition.id(), next.map_or(Offset::Beginning, Offset::Offset))?;
            next_offsets.insert(partition.id(), next.unwrap_or(0));
        }
        consumer.assign(&assignment)?;
        tracing::info!("materialising {topic} ({} partitions) into {}", next_offsets.len(), PathBuf::from(view_path).display());
        Ok(Materialiser { view, consumer, topic, next_offsets, totals: MaterialiserTotals::default() })
    }

    /// Materialises until `stop`, or with `until_caught_up` until the view holds what the topic
    /// held at the start; `caught_up` is set once it does.
    fn run(mut self, stop: &AtomicBool, until_caught_up: bool, caught_up: &AtomicBool) -> Result<MaterialiserTotals, FeedError> {
        let began = Instant::now();
        let end = self.high_watermarks()?;
        let mut batch = Batch::default();
        let mut messages_in_batch = 0;
        let mut batch_opened = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            if !caught_up.load(Ordering::SeqCst)
                && messages_in_batch == 0
                && end.iter().all(|(partition, high)| self.next_offsets.get(partition).copied().unwrap_or(0) >= *high)
            {
                if until_caught_up {
                    break;
                }
                caught_up.store(true, Ordering::SeqCst);
                tracing::info!(
                    "the feed view caught up with {} in {:.1?} ({} new line(s))",
                    self.topic,
                    began.elapsed(),
                    self.totals.costs
                );
            }
            if let Some(message) = self.consumer.poll(Duration::from_millis(20)) {
                let message = message?;
                if messages_in_batch == 0 {
                    batch_opened = Instant::now();
                }
                messages_in_batch += 1;
                // Copied out so the borrow of the consumer ends before the view is written to.
                let (partition, offset, payload) = (message.partition(), message.offset(), message.payload().map(<[u8]>::to_vec));
                drop(message);
                self.add(&mut batch, partition, offset, payload.as_deref());
            }
            if messages_in_batch > 0 && (messages_in_batch >= BATCH_MESSAGES || batch_opened.elapsed() >= BATCH_LINGER) {
                self.write(&mut batch)?;
                messages_in_batch = 0;
            }
        }
        if messages_in_batch > 0 {
            self.write(&mut batch)?;
        }
        Ok(self.totals)
    }

    fn high_watermarks(&self) -> Result<HashMap<i32, i64>, FeedError> {
        let mut highs = HashMap::new();
        for partition in self.next_offsets.keys() {
            let (_, high) = self.consumer.fetch_watermarks(&self.topic, *partition, Duration::from_secs(10))?;
            highs.insert(*partition, high);
        }
        Ok(highs)
    }

    fn add(&mut self, batch: &mut Batch, partition: i32, offset: i64, payload: Option<&[u8]>) {
        let next = self.next_offsets.entry(partition).or_insert(0);
        *next = (*next).max(offset + 1);
        match payload.ok_or_else(|| FeedError::Invalid("empty message (no payload)".into())).and_then(FeedMessage::parse) {
            Ok(FeedMessage::Cost { record, line, origin }) => batch.priced.push((record, origin, line)),
            Ok(FeedMessage::BudgetAlert(alert)) => {
                self.totals.alerts += 1;
                batch.alerts.push(alert);
            }
            Err(error) => {
                self.totals.invalid += 1;
                batch.quarantined.push(Quarantined {
                    topic: self.topic.clone(),
                    partition,
                    offset,
                    reason: error.to_string(),
                    raw: payload.unwrap_or_default().to_vec(),
                });
            }
        }
    }

    fn write(&mut self, batch: &mut Batch) -> Result<(), FeedError> {
        batch.offsets = self.next_offsets.iter().map(|(partition, next)| (self.topic.clone(), *partition, *next)).collect();
        let outcome = self.view.write_batch(batch)?;
        self.totals.costs += outcome.billed as u64;
        self.totals.duplicates += outcome.duplicates as u64;
        *batch = Batch::default();
        Ok(())
    }
}
