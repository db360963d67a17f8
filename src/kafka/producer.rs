//! A producer that reports every delivery on a channel, with the state of its link to the cluster.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use super::{ClientRole, KafkaConfig, KafkaSetupError, apply_properties, client_config};

/// What the agent knows of its link to the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Nothing delivered yet and no error seen.
    Connecting,
    /// The last delivery succeeded.
    Up,
    /// The broker cannot be reached; records wait in the outbox.
    Down,
    /// Embedded mode: no broker, records are billed in this process.
    Embedded,
}

impl LinkState {
    /// A word for the status bar and the log.
    pub fn label(self) -> &'static str {
        match self {
            LinkState::Connecting => "connecting",
            LinkState::Up => "connected",
            LinkState::Down => "unreachable",
            LinkState::Embedded => "embedded (no broker)",
        }
    }
}

/// Stored form of [`LinkState`] shared with librdkafka's callbacks.
pub fn link_state_to(state: LinkState) -> u8 {
    state as u8
}

/// The [`LinkState`] stored as `value` by [`link_state_to`].
pub fn link_state_from(value: u8) -> LinkState {
    match value {
        1 => LinkState::Up,
        2 => LinkState::Down,
        3 => LinkState::Embedded,
        _ => LinkState::Connecting,
    }
}

/// The outcome of one produced message, reported by librdkafka's delivery callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The tag given to [`ReportingProducer::send`].
    pub tag: u64,
    /// `Ok` once the broker acknowledged it (all in-sync replicas); else why not.
    pub outcome: Result<(), String>,
    /// The broker refused this principal the topic (an ACL, or a failed login): sending again will
    /// fail the same way until someone changes the broker's permissions.
    pub refused: bool,
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
    /// Set once librdkafka's first connection failure of an outage was logged; cleared by a delivery.
    outage_logged: AtomicBool,
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

    /// librdkafka reports a broker it cannot reach at error level, again after every retry. An
    /// outage is transient and the outbox holds what waits, so the first failure of an outage is a
    /// warning and the rest are debug lines; the agent says what waits (see `transmit::agent`).
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let transient = facility == "FAIL" || message.contains("Connection refused") || message.contains("Connect to");
        if transient {
            if !self.outage_logged.swap(true, Ordering::Relaxed) {
                tracing::warn!(target: "librdkafka", "kafka: {message}");
            } else {
                tracing::debug!(target: "librdkafka", "kafka: {message}");
            }
            return;
        }
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "kafka: {facility} {message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", "kafka: {facility} {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => tracing::info!(target: "librdkafka", "kafka: {facility} {message}"),
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", "kafka: {facility} {message}"),
        }
    }
}

impl ProducerContext for DeliveryReporter {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: Self::DeliveryOpaque) {
        let mut refused = false;
        let outcome = match result {
            Ok(message) => {
                tracing::debug!("delivered #{tag} to {}[{}] at offset {}", message.topic(), message.partition(), message.offset());
                self.link.store(link_state_to(LinkState::Up), Ordering::Relaxed);
                self.set_connection_error(None);
                self.outage_logged.store(false, Ordering::Relaxed);
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
                refused = matches!(
                    error.rdkafka_error_code(),
                    Some(
                        RDKafkaErrorCode::TopicAuthorizationFailed
                            | RDKafkaErrorCode::ClusterAuthorizationFailed
                            | RDKafkaErrorCode::SaslAuthenticationFailed
                    )
                );
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
        let _ = self.deliveries.send(Delivery { tag: *tag, outcome, refused });
    }
}

/// An idempotent producer whose deliveries arrive on a channel; each send names its topic.
pub struct ReportingProducer {
    producer: ThreadedProducer<DeliveryReporter>,
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
        let context = DeliveryReporter {
            deliveries,
            link,
            fenced: AtomicBool::new(false),
            connection_error: Mutex::new(None),
            outage_logged: AtomicBool::new(false),
        };
        let producer = config.create_with_context(context).map_err(|source| KafkaSetupError::kafka("creating the producer", source))?;
        Ok(ReportingProducer { producer, content_type })
    }

    /// Queues one message to `topic`; the delivery report for `tag` follows on the channel.
    /// Fails at once only when librdkafka's queue is full or the message is refused.
    pub fn send(&self, topic: &str, key: &str, payload: &[u8], tag: u64) -> Result<(), KafkaError> {
        let headers = OwnedHeaders::new().insert(Header { key: "content-type", value: Some(self.content_type) });
        let record = BaseRecord::with_opaque_to(topic, Box::new(tag)).key(key).payload(payload).headers(headers);
        self.producer.send(record).map_err(|(error, _)| error)
    }

    /// Queues one message to `partition` of `topic` (a key that must stay where it is, whatever
    /// the partitioner); as [`ReportingProducer::send`] otherwise.
    pub fn send_to(&self, topic: &str, partition: i32, key: &str, payload: &[u8], tag: u64) -> Result<(), KafkaError> {
        let headers = OwnedHeaders::new().insert(Header { key: "content-type", value: Some(self.content_type) });
        let record = BaseRecord::with_opaque_to(topic, Box::new(tag)).partition(partition).key(key).payload(payload).headers(headers);
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

    /// Waits until the producer has reached a broker and knows `topic` (up to `timeout`), so the
    /// first send does not wait for the connection.
    pub fn wait_connected(&self, topic: &str, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.client().fetch_metadata(Some(topic), timeout).map(|_| ())
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
