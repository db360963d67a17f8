//! Final statements on Kafka: a compacted topic of one partition (`kafka.statement_topic`), keyed
//! by account and period, written only inside transactions of one fixed `transactional.id` per
//! issuer. Initialising that id fences every earlier producer of it, so of two closers running at
//! once only the later can commit; it reads the topic after the fence, so it numbers after every
//! statement the earlier one committed. Each period's statements and its closed mark are one
//! transaction: a closer killed mid-close leaves nothing a reader sees (readers read committed).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::billing::statement::{Issued, Period, Statement, StatementStore};
use crate::kafka::{ClientRole, KafkaConfig, KafkaSetupError, client_config, ensure_ordered_compacted_topic};

/// The `content-type` header of statement messages.
pub const CONTENT_TYPE: &str = "application/vnd.usagebill.statement+json";

/// How long a transaction step may wait for the broker.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// The key prefix of a period's closed mark (':' never appears in an account id).
const CLOSED_KEY_PREFIX: &str = "period-closed:";

/// A period's closed mark: the numbers its close issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClosedMark {
    schema: String,
    period: Period,
    numbers: Vec<u64>,
}

const CLOSED_SCHEMA: &str = "usagebill.period-closed.v1";

/// The statement store of a cluster, for one issuer.
pub struct KafkaStatements {
    kafka: KafkaConfig,
    topic: String,
    issuer: String,
    producer: BaseProducer,
}

/// The `transactional.id` of `issuer`'s closers: one per issuer, so each fences the others.
pub fn transactional_id(issuer: &str) -> String {
    let safe: String = issuer.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect();
    format!("usagebill-statements-{safe}")
}

impl KafkaStatements {
    /// Creates the topic if missing and a transactional producer for `issuer` (not yet initialised:
    /// [`StatementStore::begin`] fences).
    pub fn new(kafka: &KafkaConfig, issuer: &str) -> Result<KafkaStatements, KafkaSetupError> {
        let topic = kafka.statement_topic();
        ensure_ordered_compacted_topic(kafka, &topic)?;
        let mut config = client_config(kafka, ClientRole::Producer)?;
        config.set("transactional.id", transactional_id(issuer)).set("enable.idempotence", "true").set("acks", "all");
        let producer: BaseProducer = config.create().map_err(|source| KafkaSetupError::kafka("creating the statement producer", source))?;
        Ok(KafkaStatements { kafka: kafka.clone(), topic, issuer: issuer.to_owned(), producer })
    }

    fn send(&self, key: &str, payload: &[u8]) -> Result<(), KafkaError> {
        let headers = OwnedHeaders::new().insert(Header { key: "content-type", value: Some(CONTENT_TYPE) });
        let mut record = BaseRecord::to(&self.topic).key(key).payload(payload).headers(headers);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    self.producer.poll(Duration::from_millis(50));
                    record = back;
                }
                Err((error, _)) => return Err(error),
            }
        }
    }
}

impl StatementStore for KafkaStatements {
    fn begin(&mut self) -> anyhow::Result<Issued> {
        self.producer.init_transactions(TRANSACTION_TIMEOUT).map_err(|error| {
            anyhow::anyhow!("taking the statement closer's transactional id {}: {error}", transactional_id(&self.issuer))
        })?;
        Ok(read_issued(&self.kafka)?.0)
    }

    fn commit(&mut self, period: Period, statements: &[Statement]) -> anyhow::Result<()> {
        let written = self.producer.begin_transaction().and_then(|()| {
            for statement in statements {
                self.send(&statement.key(), &statement.canonical_bytes())?;
            }
            let mark = ClosedMark {
                schema: CLOSED_SCHEMA.to_owned(),
                period,
                numbers: statements.iter().filter_map(|statement| statement.number).collect(),
            };
            self.send(&format!("{CLOSED_KEY_PREFIX}{period}"), &serde_json::to_vec(&mark).expect("a mark serialises"))?;
            pause_before_commit(&self.producer);
            self.producer.commit_transaction(TRANSACTION_TIMEOUT)
        });
        let Err(error) = written else { return Ok(()) };
        if self.fenced(&error) {
            anyhow::bail!(
                "another closer of issuer {:?} took over (this one was fenced: {error}); nothing of {period} was issued by this one",
                self.issuer
            );
        }
        let _ = self.producer.abort_transaction(TRANSACTION_TIMEOUT);
        Err(anyhow::anyhow!("writing the statements of {period} to {}: {error}", self.topic))
    }
}

impl KafkaStatements {
    /// Whether `error` (or the producer's fatal error, which a fenced producer raises) says another
    /// producer of the same transactional id took over.
    fn fenced(&self, error: &KafkaError) -> bool {
        const FENCING: [RDKafkaErrorCode; 3] =
            [RDKafkaErrorCode::Fenced, RDKafkaErrorCode::ProducerFenced, RDKafkaErrorCode::InvalidProducerEpoch];
        error.rdkafka_error_code().is_some_and(|code| FENCING.contains(&code))
            || self.producer.client().fatal_error().is_some_and(|(code, _)| FENCING.contains(&code))
    }
}

/// The test hook that holds a close with its transaction open: with
/// `USAGEBILL_TEST_HOLD_STATEMENT_COMMIT_MS` set, the statements are delivered (uncommitted) and
/// the commit waits that long, so a test can kill the closer mid-transaction.
const HOLD_COMMIT_ENV: &str = "USAGEBILL_TEST_HOLD_STATEMENT_COMMIT_MS";

fn pause_before_commit(producer: &BaseProducer) {
    let Some(millis) = std::env::var(HOLD_COMMIT_ENV).ok().and_then(|text| text.parse::<u64>().ok()) else { return };
    let _ = producer.flush(TRANSACTION_TIMEOUT);
    tracing::warn!("{HOLD_COMMIT_ENV} is set: holding the statement transaction open for {millis} ms");
    std::thread::sleep(Duration::from_millis(millis));
}

/// Every committed statement and closed mark on the statement topic (none when it does not exist
/// yet), with the messages skipped because they did not parse (an altered statement), each named.
pub fn read_issued(kafka: &KafkaConfig) -> anyhow::Result<(Issued, Vec<String>)> {
    let topic = kafka.statement_topic();
    let mut config = client_config(kafka, ClientRole::Consumer)?;
    config
        .set("group.id", format!("usagebill-statements-reader-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        // librdkafka moves the position past a transaction's commit marker (the last record, never
        // delivered), so the position reaches the high watermark.
        .set("isolation.level", "read_committed");
    let consumer: BaseConsumer = config.create().map_err(|source| KafkaSetupError::kafka("creating the statement reader", source))?;
    let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
    let exists = metadata.topics().iter().any(|found| found.error().is_none() && !found.partitions().is_empty());
    let mut issued = Issued::new();
    let mut skipped = Vec::new();
    if !exists {
        return Ok((issued, skipped));
    }
    let end = settled_end(kafka, &topic, &consumer)?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(&topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while position(&consumer, &topic) < end {
        anyhow::ensure!(Instant::now() < deadline, "the statement topic {topic} was not read to its end within 60 s");
        let Some(message) = consumer.poll(Duration::from_millis(200)) else { continue };
        let message = message?;
        let key = message.key().map(String::from_utf8_lossy).unwrap_or_default();
        let Some(payload) = message.payload() else { continue };
        if let Some(period) = key.strip_prefix(CLOSED_KEY_PREFIX) {
            match serde_json::from_slice::<ClosedMark>(payload) {
                Ok(mark) if mark.schema == CLOSED_SCHEMA => issued.mark_closed(mark.period),
                _ => skipped.push(format!("offset {}: the closed mark of {period:?} does not parse", message.offset())),
            }
            continue;
        }
        match Statement::parse(payload) {
            Ok(statement) => issued.add(statement),
            Err(error) => skipped.push(format!("offset {} (key {key:?}): {error}", message.offset())),
        }
    }
    Ok((issued, skipped))
}

/// How long a reader waits for a transaction on the statement topic to settle.
const SETTLE: Duration = Duration::from_secs(5);

/// The end a read-committed reader reads to: the last stable offset, once it has reached the high
/// watermark. A commit returns before its markers are written, so right after a close the last
/// stable offset still stops before its statements; the reader waits for it, up to [`SETTLE`] (a
/// closer holding its transaction open, or killed in it, is not waited for longer: what is
/// committed is read).
fn settled_end(kafka: &KafkaConfig, topic: &str, committed: &BaseConsumer) -> anyhow::Result<i64> {
    let mut config = client_config(kafka, ClientRole::Consumer)?;
    config.set("group.id", format!("usagebill-statements-reader-{}", std::process::id())).set("isolation.level", "read_uncommitted");
    let uncommitted: BaseConsumer = config.create().map_err(|source| KafkaSetupError::kafka("creating the statement reader", source))?;
    let deadline = Instant::now() + SETTLE;
    loop {
        // A read-committed client is told the last stable offset, a read-uncommitted one the high watermark.
        let (_, stable) = committed.fetch_watermarks(topic, 0, Duration::from_secs(10))?;
        let (_, high) = uncommitted.fetch_watermarks(topic, 0, Duration::from_secs(10))?;
        if stable >= high || Instant::now() >= deadline {
            return Ok(stable);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The reader's next offset (0 before the first message).
fn position(consumer: &BaseConsumer, topic: &str) -> i64 {
    let Ok(positions) = consumer.position() else { return 0 };
    match positions.find_partition(topic, 0).map(|element| element.offset()) {
        Some(Offset::Offset(next)) => next,
        _ => 0,
    }
}
