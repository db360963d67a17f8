//! Kafka plumbing shared by the agent, the simulator and the worker: client settings with
//! pass-through properties, topic creation, and a producer that reports every delivery.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use super::transport::{LinkState, link_state_to};
use crate::config::KafkaConfig;

/// Properties usagebill sets itself; setting them again under `[kafka.properties]` is refused.
const OWNED_PROPERTIES: &[&str] = &["bootstrap.servers", "enable.idempotence", "group.id", "enable.auto.commit"];

/// A Kafka operation that failed; says which and why.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSetupError {
    /// A property in `[kafka.properties]` collides with one usagebill owns.
    #[error("`kafka.properties.{0}` is set by usagebill itself; use the matching [kafka] key or flag instead")]
    OwnedProperty(String),
    /// No brokers configured where Kafka is needed.
    #[error("no Kafka brokers configured: pass --brokers HOST:PORT or set kafka.brokers")]
    NoBrokers,
    /// librdkafka refused the configuration or the request.
    #[error("{what}: {source}")]
    Kafka {
        /// What was being done.
        what: String,
        /// librdkafka's error.
        source: KafkaError,
    },
}

/// Client settings common to producers, consumers and admin clients.
pub fn client_config(kafka: &KafkaConfig) -> Result<ClientConfig, KafkaSetupError> {
    if kafka.brokers.is_empty() {
        return Err(KafkaSetupError::NoBrokers);
    }
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", kafka.brokers.join(","));
    config.set("socket.keepalive.enable", "true");
    for (key, value) in &kafka.properties {
        if OWNED_PROPERTIES.contains(&key.as_str()) {
            return Err(KafkaSetupError::OwnedProperty(key.clone()));
        }
        config.set(key, value);
    }
    Ok(config)
}

/// Creates `topic` with the configured partitions unless it exists.
pub fn ensure_topic(kafka: &KafkaConfig, topic: &str) -> Result<(), KafkaSetupError> {
    let failed = |source| KafkaSetupError::Kafka { what: format!("creating topic {topic}"), source };
    let admin: AdminClient<DefaultClientContext> = client_config(kafka)?.create().map_err(failed)?;
    let new_topic = NewTopic::new(topic, kafka.partitions, TopicReplication::Fixed(kafka.replication_factor));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))).request_timeout(Some(Duration::from_secs(15)));
    let results = futures_executor::block_on(admin.create_topics([&new_topic], &options)).map_err(failed)?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
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
}

impl ClientContext for DeliveryReporter {
    fn error(&self, error: KafkaError, reason: &str) {
        let down = matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::Resolve)
        );
        if down {
            self.link.store(link_state_to(LinkState::Down), Ordering::Relaxed);
        }
        tracing::debug!("kafka: {error}: {reason}");
    }
}

impl ProducerContext for DeliveryReporter {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: Self::DeliveryOpaque) {
        let outcome = match result {
            Ok(_) => {
                self.link.store(link_state_to(LinkState::Up), Ordering::Relaxed);
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
                Err(format!("{error} (topic {}, key {:?})", message.topic(), message.key().map(String::from_utf8_lossy)))
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
}

impl ReportingProducer {
    /// Connects lazily (librdkafka retries in the background); errors only on bad settings.
    pub fn new(kafka: &KafkaConfig, deliveries: Sender<Delivery>) -> Result<Self, KafkaSetupError> {
        let mut config = client_config(kafka)?;
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            .set("message.timeout.ms", kafka.message_timeout.as_millis().to_string());
        // Pass-through properties win over the defaults above (e.g. zstd instead of lz4).
        for (key, value) in &kafka.properties {
            config.set(key, value);
        }
        let link = Arc::new(AtomicU8::new(link_state_to(LinkState::Connecting)));
        let context = DeliveryReporter { deliveries, link, fenced: AtomicBool::new(false) };
        let producer = config
            .create_with_context(context)
            .map_err(|source| KafkaSetupError::Kafka { what: "creating the producer".into(), source })?;
        Ok(ReportingProducer { producer, topic: kafka.topic.clone() })
    }

    /// Queues one message; the delivery report for `tag` follows on the channel.
    /// Fails at once only when librdkafka's queue is full or the message is refused.
    pub fn send(&self, key: &str, payload: &[u8], tag: u64) -> Result<(), KafkaError> {
        let record = BaseRecord::with_opaque_to(&self.topic, Box::new(tag)).key(key).payload(payload);
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
