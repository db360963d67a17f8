//! Kafka plumbing shared by the agent, the simulator, the worker and the views: the `[kafka]`
//! config, client settings with pass-through properties and secrets, topic creation, and a
//! producer that reports every delivery.

mod admin;
mod config;
mod producer;
pub mod secret;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;

pub use self::admin::{ensure_compacted_topic, ensure_keyed_partitions_topic, ensure_ordered_compacted_topic, ensure_topic};
pub use self::config::KafkaConfig;
pub use self::producer::{Delivery, DeliveryReporter, LinkState, ReportingProducer, link_state_from, link_state_to};

/// Properties usagebill sets itself; setting them again under `[kafka.properties]` is refused.
const OWNED_PROPERTIES: &[&str] = &["bootstrap.servers", "enable.idempotence", "group.id", "enable.auto.commit"];

/// A Kafka operation that failed; says which and why.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSetupError {
    /// A property in `[kafka.properties]` collides with one usagebill owns.
    #[error("`kafka.properties.{0}` is set by usagebill itself; use the matching [kafka] key or flag instead")]
    OwnedProperty(String),
    /// A `${env:…}` or `${file:…}` property value cannot be read.
    #[error("`kafka.properties.{key}`: {reason}")]
    Secret {
        /// The property.
        key: String,
        /// What could not be read (never the value).
        reason: String,
    },
    /// No brokers configured where Kafka is needed.
    #[error("no Kafka brokers configured: pass --brokers HOST:PORT or set kafka.brokers")]
    NoBrokers,
    /// The replication factor asks for more brokers than the cluster has.
    #[error(
        "creating topic {topic}: replication factor {factor} is larger than the {brokers} broker(s) in the cluster; set kafka.replication_factor to at most that many"
    )]
    ReplicationFactor {
        /// The topic.
        topic: String,
        /// The factor asked for.
        factor: String,
        /// How many brokers the cluster has.
        brokers: String,
    },
    /// librdkafka refused the configuration or the request.
    #[error("{what} failed")]
    Kafka {
        /// What was being done.
        what: String,
        /// librdkafka's error.
        source: Librdkafka,
    },
}

/// librdkafka's error, as the last cause of a chain. `KafkaError` prints its code and also returns
/// that code from `source()`, so a chain walked to its end would show the code twice; this shows
/// `KafkaError`'s words and ends the chain there.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Librdkafka(pub KafkaError);

impl KafkaSetupError {
    /// librdkafka failed at `what`. A property it refused comes back in its error with the value
    /// (`Client config error: … sasl.password hunter2`), so a secret property's value is masked
    /// here, before the error can reach a log or the screen.
    pub fn kafka(what: impl Into<String>, source: KafkaError) -> Self {
        let source = match source {
            KafkaError::ClientConfig(code, description, key, value) if secret::is_secret_key(&key) && !value.is_empty() => {
                KafkaError::ClientConfig(code, description.replace(&value, secret::MASK), key, secret::MASK.to_owned())
            }
            other => other,
        };
        KafkaSetupError::Kafka { what: what.into(), source: Librdkafka(source) }
    }
}

/// Which kind of client a configuration is for. One `[kafka.properties]` table serves them all, and
/// librdkafka warns (CONFWARN) about each property meant for another kind, so each gets only its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientRole {
    /// Sends records or the cost feed.
    Producer,
    /// Reads the usage topic or the cost feed.
    Consumer,
    /// Creates topics (librdkafka builds it on a producer handle, but it produces nothing).
    Admin,
}

impl ClientRole {
    /// Whether `key` is read by this kind of client; general properties (TLS, SASL, timeouts of the
    /// connection) are read by all. librdkafka's CONFIGURATION.md marks the others "C" or "P".
    fn reads(self, key: &str) -> bool {
        let consumer_only = ["group.", "fetch.", "queued."].iter().any(|prefix| key.starts_with(prefix))
            || matches!(
                key,
                "session.timeout.ms"
                    | "heartbeat.interval.ms"
                    | "max.poll.interval.ms"
                    | "partition.assignment.strategy"
                    | "coordinator.query.interval.ms"
                    | "enable.auto.commit"
                    | "auto.commit.interval.ms"
                    | "enable.auto.offset.store"
                    | "auto.offset.reset"
                    | "isolation.level"
                    | "enable.partition.eof"
                    | "check.crcs"
                    | "max.partition.fetch.bytes"
            );
        let producer_only = ["queue.buffering.", "batch.", "compression.", "transaction"].iter().any(|prefix| key.starts_with(prefix))
            || matches!(
                key,
                "linger.ms"
                    | "acks"
                    | "request.required.acks"
                    | "request.timeout.ms"
                    | "enable.idempotence"
                    | "enable.gapless.guarantee"
                    | "message.timeout.ms"
                    | "delivery.timeout.ms"
                    | "message.send.max.retries"
                    | "retries"
                    | "partitioner"
                    | "sticky.partitioning.linger.ms"
                    | "queuing.strategy"
            );
        match self {
            ClientRole::Producer => !consumer_only,
            ClientRole::Consumer => !producer_only,
            ClientRole::Admin => !consumer_only && !producer_only,
        }
    }
}

/// Client settings common to producers, consumers and admin clients, with the pass-through
/// properties a `role` client reads.
pub fn client_config(kafka: &KafkaConfig, role: ClientRole) -> Result<ClientConfig, KafkaSetupError> {
    if kafka.brokers.is_empty() {
        return Err(KafkaSetupError::NoBrokers);
    }
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", kafka.brokers.join(","));
    config.set("socket.keepalive.enable", "true");
    apply_properties(&mut config, kafka, role)?;
    Ok(config)
}

/// Sets the pass-through `[kafka.properties]` on `config`, over any default set before. A value
/// written `${env:NAME}` or `${file:PATH}` is read from that env var or file (trimmed), so secrets
/// such as `sasl.password` need not sit in the config file; errors name the key, never the secret.
pub fn apply_properties(config: &mut ClientConfig, kafka: &KafkaConfig, role: ClientRole) -> Result<(), KafkaSetupError> {
    for (key, value) in &kafka.properties {
        if OWNED_PROPERTIES.contains(&key.as_str()) {
            return Err(KafkaSetupError::OwnedProperty(key.clone()));
        }
        if !role.reads(key) {
            continue;
        }
        let resolved = resolve_secret(value).map_err(|reason| KafkaSetupError::Secret { key: key.clone(), reason })?;
        config.set(key, resolved);
    }
    Ok(())
}

fn resolve_secret(value: &str) -> Result<String, String> {
    let Some(reference) = value.strip_prefix("${").and_then(|rest| rest.strip_suffix('}')) else { return Ok(value.to_owned()) };
    if let Some(name) = reference.strip_prefix("env:") {
        return std::env::var(name).map_err(|_| format!("environment variable {name} is not set"));
    }
    if let Some(path) = reference.strip_prefix("file:") {
        return std::fs::read_to_string(path).map(|text| text.trim().to_owned()).map_err(|error| format!("cannot read {path}: {error}"));
    }
    Err(format!("`${{{reference}}}` is neither ${{env:NAME}} nor ${{file:PATH}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka_with(key: &str, value: &str) -> KafkaConfig {
        let mut kafka = KafkaConfig { brokers: vec!["127.0.0.1:9092".into()], ..KafkaConfig::default() };
        kafka.properties.insert(key.into(), value.into());
        kafka
    }

    #[test]
    fn each_kind_of_client_gets_only_the_properties_it_reads() {
        let mut kafka = kafka_with("security.protocol", "ssl");
        for (key, value) in [("session.timeout.ms", "6000"), ("fetch.wait.max.ms", "5"), ("linger.ms", "20"), ("compression.type", "zstd")]
        {
            kafka.properties.insert(key.into(), value.into());
        }
        let has = |role, key| client_config(&kafka, role).unwrap().get(key).is_some();
        for role in [ClientRole::Producer, ClientRole::Consumer, ClientRole::Admin] {
            assert!(has(role, "security.protocol"), "{role:?} reads the connection's settings");
        }
        assert!(has(ClientRole::Consumer, "session.timeout.ms") && has(ClientRole::Consumer, "fetch.wait.max.ms"));
        assert!(!has(ClientRole::Consumer, "linger.ms") && !has(ClientRole::Consumer, "compression.type"));
        assert!(has(ClientRole::Producer, "linger.ms") && has(ClientRole::Producer, "compression.type"));
        assert!(!has(ClientRole::Producer, "session.timeout.ms") && !has(ClientRole::Producer, "fetch.wait.max.ms"));
        assert!(!has(ClientRole::Admin, "session.timeout.ms") && !has(ClientRole::Admin, "linger.ms"));
        let isolation = |kafka: &KafkaConfig| client_config(kafka, ClientRole::Consumer).unwrap().get("isolation.level").map(str::to_owned);
        assert_eq!(isolation(&kafka), None, "librdkafka's default (read_committed): the producers are never transactional");
        assert_eq!(
            isolation(&kafka_with("isolation.level", "read_uncommitted")).as_deref(),
            Some("read_uncommitted"),
            "unless told otherwise"
        );
    }

    #[test]
    fn secrets_come_from_env_vars_and_files() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("password");
        std::fs::write(&file, "s3cret-from-file\n").unwrap();
        let config = client_config(&kafka_with("sasl.password", &format!("${{file:{}}}", file.display())), ClientRole::Producer).unwrap();
        assert_eq!(config.get("sasl.password"), Some("s3cret-from-file"));
        // PATH is set in every test environment; its value stands in for a secret.
        let config = client_config(&kafka_with("sasl.username", "${env:PATH}"), ClientRole::Producer).unwrap();
        assert_eq!(config.get("sasl.username").map(str::to_owned), std::env::var("PATH").ok());
        assert_eq!(client_config(&kafka_with("client.id", "plain"), ClientRole::Producer).unwrap().get("client.id"), Some("plain"));
    }

    #[test]
    fn an_unreadable_secret_names_the_key_but_not_a_value() {
        let error = client_config(&kafka_with("sasl.password", "${env:USAGEBILL_NO_SUCH_VARIABLE}"), ClientRole::Producer)
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("kafka.properties.sasl.password") && error.contains("USAGEBILL_NO_SUCH_VARIABLE"), "{error}");
        let error = client_config(&kafka_with("sasl.password", "${vault:x}"), ClientRole::Producer).err().unwrap().to_string();
        assert!(error.contains("neither"), "{error}");
    }

    #[test]
    fn a_refused_secret_property_is_not_echoed() {
        let refused = KafkaError::ClientConfig(
            rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "Invalid value \"hunter2-secret\" for configuration property \"ssl.key.password\"".into(),
            "ssl.key.password".into(),
            "hunter2-secret".into(),
        );
        let error = KafkaSetupError::kafka("creating the producer", refused);
        let shown = format!("{error} {error:?} {}", std::error::Error::source(&error).unwrap());
        assert!(!shown.contains("hunter2") && shown.contains("ssl.key.password"), "{shown}");
        let plain = KafkaError::ClientConfig(
            rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "Invalid value".into(),
            "linger.ms".into(),
            "soon".into(),
        );
        let shown = crate::errors::chain(&KafkaSetupError::kafka("creating the producer", plain));
        assert!(shown.contains("soon"), "a plain value helps fix it: {shown}");
    }

    #[test]
    fn properties_usagebill_owns_are_refused() {
        let error = client_config(&kafka_with("enable.idempotence", "false"), ClientRole::Producer).err().unwrap().to_string();
        assert!(error.contains("enable.idempotence"), "{error}");
    }
}
