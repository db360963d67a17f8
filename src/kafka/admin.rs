//! Topics: created on first use with the configured partitions and the cluster's replication.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::{ClientRole, KafkaConfig, KafkaSetupError, client_config};

/// Creates `topic` with the configured partitions unless it exists. Without a configured
/// replication factor the broker's `default.replication.factor` applies (CreateTopics with −1).
pub fn ensure_topic(kafka: &KafkaConfig, topic: &str) -> Result<(), KafkaSetupError> {
    create_unless_present(kafka, topic, kafka.partitions, &[])
}

/// As [`ensure_topic`], for a topic that keeps the latest message per key (`cleanup.policy =
/// compact`): a reader from its start gets one message per key, however long the history.
pub fn ensure_compacted_topic(kafka: &KafkaConfig, topic: &str) -> Result<(), KafkaSetupError> {
    // Segments roll every 10 s and are cleaned as soon as any of a segment is stale (the broker's
    // cleaner looks every 15 s), so a cold reader gets one message per key plus the last 10–25 s
    // of updates, not a day's worth.
    let settings = [("cleanup.policy", "compact"), ("segment.ms", "10000"), ("min.cleanable.dirty.ratio", "0.01")];
    create_unless_present(kafka, topic, kafka.partitions, &settings)
}

/// A compacted topic of `partitions` partitions, each holding one key (the live costs: a reader
/// takes each partition's last message). Segments roll every 10 s so the cleaner drops the old
/// copies soon.
pub fn ensure_keyed_partitions_topic(kafka: &KafkaConfig, topic: &str, partitions: i32) -> Result<(), KafkaSetupError> {
    let settings = [("cleanup.policy", "compact"), ("segment.ms", "10000"), ("min.cleanable.dirty.ratio", "0.01")];
    create_unless_present(kafka, topic, partitions, &settings)
}

/// A compacted topic of one partition: one total order, for a log whose readers must see every
/// message in the order it was written (the statements and their numbers).
pub fn ensure_ordered_compacted_topic(kafka: &KafkaConfig, topic: &str) -> Result<(), KafkaSetupError> {
    create_unless_present(kafka, topic, 1, &[("cleanup.policy", "compact")])
}

fn create_unless_present(kafka: &KafkaConfig, topic: &str, partitions: i32, settings: &[(&str, &str)]) -> Result<(), KafkaSetupError> {
    let failed = |source| KafkaSetupError::kafka(format!("creating topic {topic}"), source);
    let admin: AdminClient<DefaultClientContext> = client_config(kafka, ClientRole::Admin)?.create().map_err(failed)?;
    let replication = TopicReplication::Fixed(kafka.replication_factor.unwrap_or(-1));
    let mut new_topic = NewTopic::new(topic, partitions, replication);
    for (key, value) in settings {
        new_topic = new_topic.set(key, value);
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))).request_timeout(Some(Duration::from_secs(15)));
    let results = futures_executor::block_on(admin.create_topics([&new_topic], &options)).map_err(failed)?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            // A managed cluster's operator creates the topics; a principal allowed only to use them
            // goes on, and a topic that is really missing is named by the first fetch or send.
            Err((_, RDKafkaErrorCode::TopicAuthorizationFailed | RDKafkaErrorCode::ClusterAuthorizationFailed)) => {
                tracing::info!("not allowed to create topic {topic}; using it as the cluster's operator made it");
            }
            Err((_, RDKafkaErrorCode::InvalidReplicationFactor)) => {
                let brokers = admin.inner().fetch_metadata(None, Duration::from_secs(10)).map(|metadata| metadata.brokers().len());
                let factor =
                    kafka.replication_factor.map_or_else(|| "the broker's default.replication.factor".into(), |factor| factor.to_string());
                return Err(KafkaSetupError::ReplicationFactor {
                    topic: topic.to_owned(),
                    factor,
                    brokers: brokers.map_or_else(|_| "fewer".into(), |count| count.to_string()),
                });
            }
            Err((_, code)) => return Err(failed(KafkaError::AdminOp(code))),
        }
    }
    Ok(())
}
