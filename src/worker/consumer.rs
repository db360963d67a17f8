//! The worker's Kafka consumer: it resumes a partition its own ledger has billed from the offset
//! the ledger stored, and takes over a partition new to its ledger at the group's committed offset,
//! where the last owner stopped. It pauses while the ledger refuses writes.
//!
//! The group's committed offset moves only once the cost feed acknowledged every line billed up to
//! it ([`GroupProgress`]): a worker that dies with lines billed but not yet published leaves those
//! records to the next owner, who bills them again (the feed drops the repeats), rather than taking
//! them out of the feed for good.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;

use super::WorkerError;
use crate::billing::ledger::{Ledger, LedgerError};
use crate::kafka::KafkaConfig;
use crate::kafka::{ClientRole, KafkaSetupError, apply_properties, client_config, ensure_topic};

/// The worker's consumer.
pub(super) type WorkerConsumer = BaseConsumer<ResumeFromLedger>;

/// Reads partition offsets from the ledger when partitions are assigned, and tells the group how far
/// billing got.
pub(super) struct ResumeFromLedger {
    ledger_path: PathBuf,
    assigned: AtomicBool,
    /// Batches committed to the ledger whose offsets the group has not been told yet.
    pub progress: GroupProgress,
}

impl ResumeFromLedger {
    /// Whether partitions were assigned at least once.
    pub fn assigned(&self) -> bool {
        self.assigned.load(Ordering::SeqCst)
    }
}

impl ClientContext for ResumeFromLedger {}

impl ConsumerContext for ResumeFromLedger {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, event: RDKafkaRespErr, partitions: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let result = match event {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Err(error) = self.set_stored_offsets(partitions) {
                    tracing::error!("reading stored offsets from {}: {}", self.ledger_path.display(), crate::errors::chain(&error));
                }
                tracing::info!("assigned {} partition(s): {}", partitions.count(), describe(partitions));
                self.assigned.store(true, Ordering::SeqCst);
                self.progress.owned(partitions, !cooperative);
                if cooperative { consumer.incremental_assign(partitions) } else { consumer.assign(partitions) }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!("revoked {} partition(s)", partitions.count());
                // The next owner starts where the group says: tell it all that is published, now.
                self.progress.tell_group(consumer, CommitMode::Sync);
                self.progress.given_up(partitions, !cooperative);
                if cooperative { consumer.incremental_unassign(partitions) } else { consumer.unassign() }
            }
            other => {
                tracing::warn!("rebalance error: {other:?}");
                self.progress.given_up(partitions, true);
                consumer.unassign()
            }
        };
        if let Err(error) = result {
            tracing::error!("applying the assignment: {error}");
        }
    }
}

impl ResumeFromLedger {
    /// A partition this ledger has billed resumes after its last record here; one new to it starts
    /// at the group's committed offset (`auto.offset.reset` applies where the group has none).
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
            let offset = stored.map_or(Offset::Stored, |next| Offset::Offset(*next));
            // Only fails for a partition not in the list, and these all are.
            let _ = partitions.set_partition_offset(&topic, partition, offset);
        }
        Ok(())
    }
}

/// The next offset of each (topic, partition) a batch read.
type NextOffsets = Vec<(String, i32, i64)>;

/// Offsets committed to the ledger, each batch's with the highest record row billed when it
/// committed, until the cost feed has acknowledged that row.
#[derive(Debug, Default)]
pub(super) struct GroupProgress {
    waiting: Mutex<VecDeque<(i64, NextOffsets)>>,
    /// The partitions assigned to this member (kept here: asking librdkafka is a round trip to its
    /// main thread, and this is looked at after every batch).
    assigned: Mutex<BTreeSet<(String, i32)>>,
    /// The feed's acknowledged row (`i64::MAX` without a feed: nothing waits for it).
    acknowledged_through: AtomicI64,
}

impl GroupProgress {
    fn without_feed(publish_feed: bool) -> GroupProgress {
        let acknowledged = if publish_feed { 0 } else { i64::MAX };
        GroupProgress { waiting: Mutex::default(), assigned: Mutex::default(), acknowledged_through: AtomicI64::new(acknowledged) }
    }

    /// `partitions` were assigned (in place of all others when `whole`, an eager assignment).
    fn owned(&self, partitions: &TopicPartitionList, whole: bool) {
        let mut assigned = self.assigned.lock().unwrap_or_else(PoisonError::into_inner);
        if whole {
            assigned.clear();
        }
        assigned.extend(partitions.elements().iter().map(|element| (element.topic().to_owned(), element.partition())));
    }

    /// `partitions` were revoked (all of them when `whole`).
    fn given_up(&self, partitions: &TopicPartitionList, whole: bool) {
        let mut assigned = self.assigned.lock().unwrap_or_else(PoisonError::into_inner);
        if whole {
            assigned.clear();
        }
        for element in partitions.elements() {
            assigned.remove(&(element.topic().to_owned(), element.partition()));
        }
    }

    /// A batch committed to the ledger with `next_offsets`; every record row up to `through_row`
    /// must reach the feed before the group is told.
    pub fn billed(&self, through_row: i64, next_offsets: &[(String, i32, i64)]) {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner).push_back((through_row, next_offsets.to_vec()));
    }

    /// The feed acknowledged every line through `row`.
    pub fn acknowledged(&self, row: i64) {
        self.acknowledged_through.fetch_max(row, Ordering::SeqCst);
    }

    /// Commits to the group the offsets of every batch whose lines the feed acknowledged.
    pub fn tell_group(&self, consumer: &WorkerConsumer, mode: CommitMode) {
        let acknowledged = self.acknowledged_through.load(Ordering::SeqCst);
        let mut latest = BTreeMap::new();
        {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            while waiting.front().is_some_and(|(through_row, _)| *through_row <= acknowledged) {
                let Some((_, offsets)) = waiting.pop_front() else { break };
                for (topic, partition, next) in offsets {
                    latest.insert((topic, partition), next);
                }
            }
        }
        if latest.is_empty() {
            return;
        }
        // A partition that moved away meanwhile is the next owner's to commit: an offset from here
        // could only take its commits back.
        let mut offsets = TopicPartitionList::new();
        {
            let assigned = self.assigned.lock().unwrap_or_else(PoisonError::into_inner);
            for ((topic, partition), next) in latest {
                if assigned.contains(&(topic.clone(), partition)) {
                    let _ = offsets.add_partition_offset(&topic, partition, Offset::Offset(next));
                }
            }
        }
        if offsets.count() == 0 {
            return;
        }
        // A refused commit (a partition moved meanwhile, the broker away) costs the next owner a
        // batch billed twice, which the feed drops; the next commit carries these offsets on.
        if let Err(error) = consumer.commit(&offsets, mode) {
            tracing::debug!("committing offsets to the group: {error}");
        }
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

/// A consumer of `kafka.topic` in `kafka.group_id`, subscribed, that resumes from `ledger_path`.
/// With `publish_feed` the group's offsets wait for the feed to acknowledge the lines.
pub(super) fn subscribe(kafka: &KafkaConfig, ledger_path: PathBuf, publish_feed: bool) -> Result<WorkerConsumer, WorkerError> {
    ensure_topic(kafka, &kafka.topic)?;
    let progress = GroupProgress::without_feed(publish_feed);
    let context = ResumeFromLedger { ledger_path, assigned: AtomicBool::new(false), progress };
    let mut config = client_config(kafka, ClientRole::Consumer)?;
    config
        .set("group.id", &kafka.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // librdkafka waits up to 500 ms for a fetch to fill by default; billing wants each record at once.
        .set("fetch.wait.max.ms", "10");
    apply_properties(&mut config, kafka, ClientRole::Consumer)?;
    let consumer: WorkerConsumer =
        config.create_with_context(context).map_err(|source| KafkaSetupError::kafka("creating the consumer", source))?;
    consumer.subscribe(&[&kafka.topic])?;
    Ok(consumer)
}

/// Pauses fetching while the ledger refuses writes (polling goes on, so the group keeps this
/// member), or resumes it.
pub(super) fn set_paused(consumer: &WorkerConsumer, paused: bool) {
    let result =
        consumer.assignment().and_then(|assignment| if paused { consumer.pause(&assignment) } else { consumer.resume(&assignment) });
    if let Err(error) = result {
        tracing::warn!("{} consumption: {error}", if paused { "pausing" } else { "resuming" });
    }
}
