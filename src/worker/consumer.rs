//! The worker's Kafka consumer: it resumes each assigned partition from the offset its own ledger
//! stored, pauses while the ledger refuses writes, and tells Kafka the offsets billed for lag
//! monitoring only.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Reads partition offsets from the ledger when partitions are assigned.
pub(super) struct ResumeFromLedger {
    ledger_path: PathBuf,
    assigned: AtomicBool,
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

/// A consumer of `kafka.topic` in `kafka.group_id`, subscribed, that resumes from `ledger_path`.
pub(super) fn subscribe(kafka: &KafkaConfig, ledger_path: PathBuf) -> Result<WorkerConsumer, WorkerError> {
    ensure_topic(kafka, &kafka.topic)?;
    let context = ResumeFromLedger { ledger_path, assigned: AtomicBool::new(false) };
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

/// Tells Kafka the next offsets a batch stored with its records, per (topic, partition). Kafka's
/// copy of the offsets only feeds lag monitoring; the ledger's copy is the one resumed from.
pub(super) fn commit_for_lag(consumer: &WorkerConsumer, next_offsets: &[(String, i32, i64)]) {
    let mut offsets = TopicPartitionList::new();
    for (topic, partition, next) in next_offsets {
        let _ = offsets.add_partition_offset(topic, *partition, Offset::Offset(*next));
    }
    if let Err(error) = consumer.commit(&offsets, CommitMode::Async) {
        tracing::debug!("lag-monitoring commit failed: {error}");
    }
}
