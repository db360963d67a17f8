//! The cost feed: what the workers billed, published to `kafka.cost_topic` keyed by machine id, and
//! materialised by any view into a SQLite file with the ledger's schema.
//!
//! One message is one JSON object with `"schema": "usagebill.cost-feed.v1"` and a `kind`:
//! `cost` carries the record (its CloudEvents JSON), its priced line (every amount a decimal string)
//! and where the worker read it; `budget_alert` carries a [`BudgetAlert`]. Delivery is at least once
//! (a worker republishes from its ledger's feed cursor after a crash, and a partition that moves is
//! billed again by its new owner), so views deduplicate by record id (machine + seq).
//!
//! `publisher` sends it from a worker, `materialiser` reads it into a view, and [`summary`]
//! holds the per-machine cost summaries computed from that view and published beside it.

mod materialiser;
mod publisher;
pub mod statements;
pub mod summary;

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use self::materialiser::{MaterialiserTotals, materialise_until_caught_up, spawn_materialiser};
pub use self::publisher::FeedPublisher;
use crate::billing::amount_text::LineTexts;
use crate::billing::budget::BudgetAlert;
use crate::billing::ledger::{LedgerError, Origin};
use crate::billing::price::PricedLine;
use crate::kafka::{KafkaSetupError, Librdkafka};
use crate::record::{RecordError, UsageRecord};

/// The `content-type` header of a feed message (plain JSON; the record inside is a CloudEvent).
pub const CONTENT_TYPE: &str = "application/json";

/// The `schema` of every feed message; the suffix versions the message layout.
pub const FEED_SCHEMA: &str = "usagebill.cost-feed.v1";

/// Why the feed could not be published, read or materialised.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// Kafka could not be set up.
    #[error(transparent)]
    Setup(#[from] KafkaSetupError),
    /// Kafka failed while running; the feed's clients read or write the cost topic or its summary
    /// topic, and librdkafka's words (the cause) say which operation failed.
    #[error("Kafka failed reading or writing the cost topic or its summary topic")]
    Kafka(#[source] Librdkafka),
    /// The ledger or view refused a read or write.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A message is not a valid feed message (the view quarantines it).
    #[error("not a message of the cost topic: {0}")]
    Invalid(String),
    /// The system would not start the feed view's thread (out of memory or thread limit).
    #[error("cannot start the feed view's thread")]
    Thread(#[source] std::io::Error),
    /// The summary topic is not there yet (no worker has created it); reading may be tried again.
    #[error("the summary topic {0} does not exist yet (no worker has published)")]
    NoSummaryTopic(String),
    /// The broker refused this principal the cost topic; resending would fail the same way.
    #[error("the broker refused the worker's messages for the cost topic: {0}")]
    Refused(String),
}

impl From<rdkafka::error::KafkaError> for FeedError {
    fn from(error: rdkafka::error::KafkaError) -> Self {
        FeedError::Kafka(Librdkafka(error))
    }
}

/// One message of the cost feed.
// Cost messages are nearly all of the feed: boxing the large variant would add an allocation to
// each of them to save space on the rare alert.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum FeedMessage {
    /// A billed record and its line.
    Cost {
        /// The record.
        record: UsageRecord,
        /// Its priced line.
        line: PricedLine,
        /// Partition and offset of the usage topic it was read from.
        origin: Origin,
    },
    /// A machine's projection crossed its budget.
    BudgetAlert(BudgetAlert),
}

/// An alert message as it is written.
#[derive(Serialize)]
struct AlertEnvelope<'a> {
    schema: &'a str,
    kind: &'a str,
    alert: &'a BudgetAlert,
}

/// Any feed message as it is read, in one pass: the record stays raw bytes, parsed once by
/// [`UsageRecord::parse`] (a `flatten`ed, tagged enum made serde buffer the whole message and the
/// record be parsed three times). Unknown fields are ignored, as readers of a versioned schema do.
#[derive(Deserialize)]
struct WireMessage<'a> {
    #[serde(borrow)]
    schema: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    record: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    line: Option<LineJson>,
    #[serde(default)]
    source_partition: Option<i32>,
    #[serde(default)]
    source_offset: Option<i64>,
    #[serde(default)]
    alert: Option<BudgetAlert>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineJson {
    card_version: String,
    currency: String,
    cpu: String,
    memory: String,
    net_rx: String,
    net_tx: String,
    disk_read: String,
    disk_write: String,
    total: String,
}

impl FeedMessage {
    /// The Kafka key: the machine id, so one machine's messages stay in order on one partition.
    pub fn key(&self) -> &str {
        match self {
            FeedMessage::Cost { record, .. } => &record.machine_id,
            FeedMessage::BudgetAlert(alert) => &alert.machine_id,
        }
    }

    /// The JSON form. A cost message embeds the record's own CloudEvents bytes as they are, so the
    /// record is not serialised twice on the worker's hot path.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            FeedMessage::Cost { record, line, origin } => encode_cost(&record.to_json(), line, *origin),
            FeedMessage::BudgetAlert(alert) => {
                let envelope = AlertEnvelope { schema: FEED_SCHEMA, kind: "budget_alert", alert };
                serde_json::to_vec(&envelope).expect("a feed message serialises")
            }
        }
    }

    /// Parses and validates: the schema, the record (as at every boundary), each amount as an exact
    /// decimal, the total as the sum of the components, and the currency code.
    pub fn parse(bytes: &[u8]) -> Result<FeedMessage, FeedError> {
        let invalid = |message: String| FeedError::Invalid(message);
        let message: WireMessage<'_> = serde_json::from_slice(bytes).map_err(|error| invalid(error.to_string()))?;
        if message.schema != FEED_SCHEMA {
            return Err(invalid(format!("`schema` = {:?}: expected {FEED_SCHEMA:?}", message.schema)));
        }
        match (message.kind.as_ref(), message.record, message.line, message.alert) {
            ("cost", Some(record), Some(line), _) => {
                let record =
                    UsageRecord::parse(record.get().as_bytes()).map_err(|error: RecordError| invalid(format!("`record`: {error}")))?;
                let line = parse_line(line)?;
                let origin = Origin { partition: message.source_partition, offset: message.source_offset };
                Ok(FeedMessage::Cost { record, line, origin })
            }
            ("cost", ..) => Err(invalid("a `cost` message needs `record` and `line`".into())),
            ("budget_alert", _, _, Some(alert)) => {
                crate::record::validate_machine_id(&alert.machine_id)
                    .map_err(|reason| invalid(format!("`alert.machine_id` = {:?}: {reason}", alert.machine_id)))?;
                check_currency("alert.currency", &alert.currency)?;
                Ok(FeedMessage::BudgetAlert(alert))
            }
            ("budget_alert", ..) => Err(invalid("a `budget_alert` message needs `alert`".into())),
            (kind, ..) => Err(invalid(format!("`kind` = {kind:?}: expected \"cost\" or \"budget_alert\""))),
        }
    }
}

/// A cost message around `record_json`, a record's CloudEvents bytes (as encoded, or as they arrived
/// from the usage topic: either parses to the same record). Written straight into one buffer: this
/// runs for every line the worker bills.
pub fn encode_cost(record_json: &[u8], line: &PricedLine, origin: Origin) -> Vec<u8> {
    let mut out = Vec::with_capacity(record_json.len() + 512);
    out.extend_from_slice(b"{\"schema\":\"");
    out.extend_from_slice(FEED_SCHEMA.as_bytes());
    out.extend_from_slice(b"\",\"kind\":\"cost\",\"record\":");
    out.extend_from_slice(record_json);
    // The two free-text fields go through serde_json, which escapes them; amounts are digits.
    out.extend_from_slice(b",\"line\":{\"card_version\":");
    serde_json::to_writer(&mut out, &line.card_version).expect("a string serialises");
    out.extend_from_slice(b",\"currency\":");
    serde_json::to_writer(&mut out, &line.currency).expect("a string serialises");
    let mut amounts = LineTexts::default();
    amounts.write(line);
    for (index, field) in LINE_AMOUNT_FIELDS.iter().enumerate() {
        for part in [",\"", field, "\":\"", amounts.get(index), "\""] {
            out.extend_from_slice(part.as_bytes());
        }
    }
    out.extend_from_slice(b"},\"source_partition\":");
    write_number_or_null(&mut out, origin.partition.map(i64::from));
    out.extend_from_slice(b",\"source_offset\":");
    write_number_or_null(&mut out, origin.offset);
    out.push(b'}');
    out
}

/// The JSON names of a line's amounts, in the order of [`PricedLine::amounts`].
const LINE_AMOUNT_FIELDS: [&str; 7] = ["cpu", "memory", "net_rx", "net_tx", "disk_read", "disk_write", "total"];

fn write_number_or_null(out: &mut Vec<u8>, value: Option<i64>) {
    match value {
        Some(value) => out.extend_from_slice(value.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

fn parse_line(line: LineJson) -> Result<PricedLine, FeedError> {
    let amount = |field: &str, text: &str| {
        Decimal::from_str(text).map_err(|_| FeedError::Invalid(format!("`line.{field}` = {text:?} is not a decimal string")))
    };
    if line.card_version.is_empty() {
        return Err(FeedError::Invalid("`line.card_version` is empty".into()));
    }
    check_currency("line.currency", &line.currency)?;
    let parsed = PricedLine {
        cpu: amount("cpu", &line.cpu)?,
        memory: amount("memory", &line.memory)?,
        net_rx: amount("net_rx", &line.net_rx)?,
        net_tx: amount("net_tx", &line.net_tx)?,
        disk_read: amount("disk_read", &line.disk_read)?,
        disk_write: amount("disk_write", &line.disk_write)?,
        total: amount("total", &line.total)?,
        card_version: line.card_version,
        currency: line.currency,
    };
    let sum = [parsed.cpu, parsed.memory, parsed.net_rx, parsed.net_tx, parsed.disk_read, parsed.disk_write]
        .into_iter()
        .try_fold(Decimal::ZERO, |sum, part| sum.checked_add(part));
    if sum != Some(parsed.total) {
        return Err(FeedError::Invalid(format!("`line.total` = \"{}\" is not the sum of the components", parsed.total)));
    }
    Ok(parsed)
}

fn check_currency(field: &str, currency: &str) -> Result<(), FeedError> {
    if currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(FeedError::Invalid(format!("`{field}` = {currency:?} is not a 3-letter ISO 4217 code")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::price::price;
    use crate::billing::rate_card::RateCard;
    use crate::record::UnixMillis;
    use crate::simulate::{Fleet, Profile, record_at};

    fn cost_message() -> FeedMessage {
        let fleet = Fleet {
            machines: 2,
            machine_prefix: crate::simulate::DEFAULT_MACHINE_PREFIX.into(),
            records: 3,
            window: std::time::Duration::from_secs(10),
            profile: Profile::Random,
            seed: 3,
            start: UnixMillis(1_767_225_600_000),
        };
        let record = record_at(&fleet, 2);
        let line = price(&record, RateCard::built_in().version_at(record.start)).unwrap();
        FeedMessage::Cost { record, line, origin: Origin { partition: Some(4), offset: Some(77) } }
    }

    #[test]
    fn a_cost_message_around_the_records_bytes_as_they_arrived_parses_to_the_same_message() {
        let cost = cost_message();
        let FeedMessage::Cost { record, line, origin } = &cost else { unreachable!() };
        // A producer may write the record with other spacing and key order than ours.
        let arrived = serde_json::to_vec_pretty(&serde_json::from_slice::<serde_json::Value>(&record.to_json()).unwrap()).unwrap();
        assert_ne!(arrived, record.to_json());
        assert_eq!(FeedMessage::parse(&encode_cost(&arrived, line, *origin)).unwrap(), cost);
    }

    #[test]
    fn a_cost_message_is_plain_json_with_escaped_text_exact_amounts_and_null_for_no_origin() {
        let FeedMessage::Cost { record, mut line, .. } = cost_message() else { unreachable!() };
        line.card_version = "2026 \"spring\"\\b".into();
        let encoded = encode_cost(&record.to_json(), &line, Origin::default());
        let value: serde_json::Value = serde_json::from_slice(&encoded).unwrap();
        assert_eq!(value["line"]["card_version"], "2026 \"spring\"\\b");
        assert_eq!(value["line"]["total"], line.total.to_string());
        assert_eq!(value["line"]["memory"], line.memory.to_string());
        assert!(value["source_partition"].is_null() && value["source_offset"].is_null());
        let FeedMessage::Cost { line: parsed, origin, .. } = FeedMessage::parse(&encoded).unwrap() else { panic!("a cost message") };
        assert_eq!((parsed, origin), (line, Origin::default()));
    }

    #[test]
    fn cost_and_alert_messages_round_trip() {
        let cost = cost_message();
        assert_eq!(FeedMessage::parse(&cost.encode()).unwrap(), cost);
        assert_eq!(cost.key(), "sim-00001");
        let alert = FeedMessage::BudgetAlert(BudgetAlert {
            machine_id: "gpu-1".into(),
            period_start: UnixMillis(1_767_225_600_000),
            budget: Decimal::from(100),
            projected: Decimal::from_str("120.5").unwrap(),
            crossing_day: Some(UnixMillis(1_767_312_000_000)),
            currency: "USD".into(),
            raised: UnixMillis(1_767_300_000_000),
        });
        let encoded = alert.encode();
        assert!(String::from_utf8_lossy(&encoded).contains("\"projected\":\"120.5\""), "amounts are decimal strings");
        assert_eq!(FeedMessage::parse(&encoded).unwrap(), alert);
    }

    #[test]
    fn a_tampered_total_an_unknown_schema_and_a_bad_record_are_refused() {
        let text = String::from_utf8(cost_message().encode()).unwrap();
        let total_at = text.find("\"total\":\"").unwrap() + "\"total\":\"".len();
        let tampered = format!("{}9{}", &text[..total_at], &text[total_at..]);
        let error = FeedMessage::parse(tampered.as_bytes()).unwrap_err().to_string();
        assert!(error.contains("line.total"), "{error}");
        let error = FeedMessage::parse(text.replace(FEED_SCHEMA, "usagebill.cost-feed.v9").as_bytes()).unwrap_err().to_string();
        assert!(error.contains("v9"), "{error}");
        let error = FeedMessage::parse(text.replace("\"cpu_cores\":8", "\"cpu_cores\":0").as_bytes()).unwrap_err().to_string();
        assert!(error.contains("cpu_cores"), "{error}");
        let error = FeedMessage::parse(text.replace("\"kind\":\"cost\"", "\"kind\":\"refund\"").as_bytes()).unwrap_err().to_string();
        assert!(error.contains("refund"), "{error}");
        let without_line = text.replace("\"line\":", "\"lines\":");
        let error = FeedMessage::parse(without_line.as_bytes()).unwrap_err().to_string();
        assert!(error.contains("needs `record` and `line`"), "{error}");
    }
}
