//! `[kafka]` of the config file: brokers, topics and the pass-through librdkafka properties.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::secret;
use crate::duration::HumanDuration;

/// `[kafka]`: the broker and topics. `Debug` masks secret properties (see [`secret`]).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port`; empty means embedded mode (no Kafka at all).
    pub brokers: Vec<String>,
    /// Topic of usage records.
    pub topic: String,
    /// Topic of the cost feed the workers publish.
    pub cost_topic: String,
    /// Compacted topic of per-machine cost summaries the workers publish and desktops read;
    /// empty: `{cost_topic}.summary`.
    pub summary_topic: String,
    /// Compacted, single-partition topic of final statements, written by the closer's transactional
    /// producer; empty: `{cost_topic}.statements`.
    pub statement_topic: String,
    /// Partitions of a topic created by usagebill.
    pub partitions: i32,
    /// Replication factor of a topic created by usagebill; none takes the broker's
    /// `default.replication.factor` (so a three-broker cluster replicates without being told).
    pub replication_factor: Option<i32>,
    /// Consumer group of the billing workers.
    pub group_id: String,
    /// A record not acknowledged within this long stays in the outbox for the next try.
    pub message_timeout: HumanDuration,
    /// Any librdkafka property, passed through by name (SASL, TLS, client ids, timeouts).
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: Vec::new(),
            topic: "resource_usage".into(),
            cost_topic: "resource_costs".into(),
            summary_topic: String::new(),
            statement_topic: String::new(),
            partitions: 6,
            replication_factor: None,
            group_id: "usagebill-billing".into(),
            message_timeout: HumanDuration::from_secs(30),
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// The summary topic in force: `summary_topic`, else `{cost_topic}.summary`.
    pub fn summary_topic(&self) -> String {
        if self.summary_topic.is_empty() { format!("{}.summary", self.cost_topic) } else { self.summary_topic.clone() }
    }

    /// The live-cost topic: `{summary topic}.live` (see `feed::summary::live`).
    pub fn live_topic(&self) -> String {
        format!("{}.live", self.summary_topic())
    }

    /// The statement topic, its default derived from the cost topic.
    pub fn statement_topic(&self) -> String {
        if self.statement_topic.is_empty() { format!("{}.statements", self.cost_topic) } else { self.statement_topic.clone() }
    }
}

// By hand rather than derived: `properties` may hold `sasl.password` and the like, and a `{:?}` of
// the config (or of the `Settings` around it) must not put them in a log.
impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("cost_topic", &self.cost_topic)
            .field("summary_topic", &self.summary_topic)
            .field("statement_topic", &self.statement_topic)
            .field("partitions", &self.partitions)
            .field("replication_factor", &self.replication_factor)
            .field("group_id", &self.group_id)
            .field("message_timeout", &self.message_timeout)
            .field("properties", &secret::RedactedProperties(&self.properties))
            .finish()
    }
}
