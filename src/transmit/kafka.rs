//! Kafka plumbing shared by the agent, the simulator and the worker: client settings with
//! pass-through properties, topic creation, and a producer that reports every delivery.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use super::transport::{LinkState, link_state_to};
use crate::config::{KafkaConfig, secret};

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
    #[error("{what}: {source}")]
    Kafka {
        /// What was being done.
        what: String,
        /// librdkafka's error.
        source: KafkaError,
    },
}

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
        KafkaSetupError::Kafka { what: what.into(), source }
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

/// Creates `topic` with the configured partitions unless it exists. Without a configured
/// replication factor the broker's `default.replication.factor` applies (CreateTopics with −1).
pub fn ensure_topic(kafka: &KafkaConfig, topic: &str) -> Result<(), KafkaSetupError> {
    let failed = |source| KafkaSetupError::kafka(format!("creating topic {topic}"), source);
    let admin: AdminClient<DefaultClientContext> = client_config(kafka, ClientRole::Admin)?.create().map_err(failed)?;
    let replication = TopicReplication::Fixed(kafka.replication_factor.unwrap_or(-1));
    let new_topic = NewTopic::new(topic, kafka.partitions, replication);
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

/// The outcome of one produced message, reported by librdkafka's delivery callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The tag given to [`ReportingProducer::send`].
    pub tag: u64,
    /// `Ok` once the broker acknowledged it (all in-sync replicas); else why not.
    pub outcome: Result<(), String>,
}

/// Forwards each delivery report to a channel and keeps the link state.
pub struct DeliveryReporter {
    deliveries: Sender<Delivery>,
    link: Arc<AtomicU8>,
    /// Set when the broker refused this producer's identity: every later send would fail too.
    fenced: AtomicBool,
    /// What librdkafka last said went wrong on a broker connection (a refused certificate, failed
    /// SASL authentication, a refused connection); cleared by a delivery. A record that times out
    /// names it, since "message timed out" alone does not say why.
    connection_error: Mutex<Option<String>>,
}

impl DeliveryReporter {
    fn connection_error(&self) -> Option<String> {
        self.connection_error.lock().map_or(None, |error| error.clone())
    }

    fn set_connection_error(&self, error: Option<String>) {
        if let Ok(mut slot) = self.connection_error.lock() {
            *slot = error;
        }
    }
}

impl ClientContext for DeliveryReporter {
    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        let down = matches!(
            code,
            Some(
                RDKafkaErrorCode::AllBrokersDown
                    | RDKafkaErrorCode::BrokerTransportFailure
                    | RDKafkaErrorCode::Resolve
                    | RDKafkaErrorCode::SSL
                    | RDKafkaErrorCode::Authentication
            )
        );
        if down {
            self.link.store(link_state_to(LinkState::Down), Ordering::Relaxed);
        }
        // "All brokers are down" says less than the error that brought them down; keep that one.
        if code != Some(RDKafkaErrorCode::AllBrokersDown) {
            self.set_connection_error(Some(reason.to_owned()));
        }
        tracing::debug!("kafka: {error}: {reason}");
    }
}

impl ProducerContext for DeliveryReporter {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: Self::DeliveryOpaque) {
        let outcome = match result {
            Ok(message) => {
                tracing::debug!("delivered #{tag} to {}[{}] at offset {}", message.topic(), message.partition(), message.offset());
                self.link.store(link_state_to(LinkState::Up), Ordering::Relaxed);
                self.set_connection_error(None);
                Ok(())
            }
            Err((error, message)) => {
                let identity_refused = matches!(
                    error.rdkafka_error_code(),
                    Some(
                        RDKafkaErrorCode::ProducerFenced
                            | RDKafkaErrorCode::InvalidProducerEpoch
                            | RDKafkaErrorCode::UnknownProducerId
                            | RDKafkaErrorCode::OutOfOrderSequenceNumber
                    )
                );
                if identity_refused {
                    self.fenced.store(true, Ordering::Relaxed);
                }
                let key = message.key().map_or_else(|| "none".into(), String::from_utf8_lossy);
                let mut reason = format!("{error} (topic {}, key {key})", message.topic());
                if error.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageTimedOut) {
                    // A timeout alone does not say why: with acks=all, the partition's leader must be
                    // reachable and enough of its replicas in sync (min.insync.replicas).
                    reason.push_str(": the cluster did not acknowledge it in time (acks=all needs the partition's leader and min.insync.replicas in-sync replicas)");
                    if let Some(connection_error) = self.connection_error() {
                        reason.push_str(&format!("; last broker connection error: {connection_error}"));
                    }
                }
                Err(reason)
            }
        };
        // A closed channel means the owner is gone; the message is still in its outbox.
        let _ = self.deliveries.send(Delivery { tag: *tag, outcome });
    }
}

/// An idempotent producer whose deliveries arrive on a channel.
pub struct ReportingProducer {
    producer: ThreadedProducer<DeliveryReporter>,
    topic: String,
    /// The `content-type` header every message carries.
    content_type: &'static str,
}

impl ReportingProducer {
    /// Connects lazily (librdkafka retries in the background); errors only on bad settings. Every
    /// message carries the header `content-type: {content_type}`.
    pub fn new(kafka: &KafkaConfig, content_type: &'static str, deliveries: Sender<Delivery>) -> Result<Self, KafkaSetupError> {
        let mut config = client_config(kafka, ClientRole::Producer)?;
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            .set("message.timeout.ms", kafka.message_timeout.as_millis().to_string());
        // Pass-through properties win over the defaults above (e.g. zstd instead of lz4).
        apply_properties(&mut config, kafka, ClientRole::Producer)?;
        let link = Arc::new(AtomicU8::new(link_state_to(LinkState::Connecting)));
        let context = DeliveryReporter { deliveries, link, fenced: AtomicBool::new(false), connection_error: Mutex::new(None) };
        let producer = config.create_with_context(context).map_err(|source| KafkaSetupError::kafka("creating the producer", source))?;
        Ok(ReportingProducer { producer, topic: kafka.topic.clone(), content_type })
    }

    /// Queues one message; the delivery report for `tag` follows on the channel.
    /// Fails at once only when librdkafka's queue is full or the message is refused.
    pub fn send(&self, key: &str, payload: &[u8], tag: u64) -> Result<(), KafkaError> {
        let headers = OwnedHeaders::new().insert(Header { key: "content-type", value: Some(self.content_type) });
        let record = BaseRecord::with_opaque_to(&self.topic, Box::new(tag)).key(key).payload(payload).headers(headers);
        self.producer.send(record).map_err(|(error, _)| error)
    }

    /// The link state as the delivery and error callbacks last saw it.
    pub fn link_state(&self) -> Arc<AtomicU8> {
        Arc::clone(&self.producer.context().link)
    }

    /// The error that made this producer unusable, if any (e.g. fenced after a long cut): an
    /// idempotent producer stops for good on such an error and must be replaced.
    pub fn fatal_error(&self) -> Option<String> {
        if self.producer.context().fenced.load(Ordering::Relaxed) {
            return Some("the broker refused this producer's identity (fenced)".into());
        }
        self.producer.client().fatal_error().map(|(code, reason)| format!("{code:?}: {reason}"))
    }

    /// Messages queued or in flight.
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// Waits up to `timeout` for every queued message to be delivered or to fail.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout)
    }
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
        assert!(KafkaSetupError::kafka("creating the producer", plain).to_string().contains("soon"), "a plain value helps fix it");
    }

    #[test]
    fn properties_usagebill_owns_are_refused() {
        let error = client_config(&kafka_with("enable.idempotence", "false"), ClientRole::Producer).err().unwrap().to_string();
        assert!(error.contains("enable.idempotence"), "{error}");
    }
}
