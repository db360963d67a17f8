//! Turning raw messages into a committed ledger batch: parse, validate, price, quarantine, write.
//! The same code bills messages from Kafka and from the embedded in-process channel.

use std::collections::HashMap;

use super::ledger::{Batch, BatchOutcome, Ledger, LedgerError, Origin, Quarantined};
use super::price;
use super::rate_card::RateCard;
use crate::record::UsageRecord;

/// One message as it arrived, before parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// Topic (`embedded` in one-process mode).
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// The bytes; `None` for a tombstone.
    pub payload: Option<Vec<u8>>,
}

/// Running totals of a biller, for logs and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BillerTotals {
    /// Records billed for the first time.
    pub billed: u64,
    /// Redelivered records ignored.
    pub duplicates: u64,
    /// Messages quarantined.
    pub quarantined: u64,
    /// Ledger transactions committed.
    pub batches: u64,
}

/// A line a batch billed, with its record's bytes as they arrived: the cost feed publishes it from
/// here instead of reading it back from the ledger and encoding the record again.
#[derive(Debug, Clone, PartialEq)]
pub struct FreshLine {
    /// Its row in the ledger.
    pub row_id: i64,
    /// The machine (the feed's key).
    pub machine_id: String,
    /// The record's CloudEvents JSON, as it arrived (it parsed and validated).
    pub record_json: Vec<u8>,
    /// Its priced line.
    pub line: price::PricedLine,
    /// Where it was read from.
    pub origin: Origin,
}

/// A batch of messages parsed, validated and priced, ready for one ledger transaction. Building it
/// needs only the rate card, so the worker prepares the next batch while the ledger writes this one.
#[derive(Debug)]
pub struct Prepared {
    batch: Batch,
    /// The message each entry of `batch.priced` came from (an index into `messages`).
    sources: Vec<usize>,
    messages: Vec<RawMessage>,
}

impl Prepared {
    /// Parses and prices `messages` with `card`; what does not parse or price is kept to be quarantined.
    pub fn new(card: &RateCard, messages: Vec<RawMessage>) -> Prepared {
        let mut batch = Batch::default();
        let mut next_offsets: HashMap<(&str, i32), i64> = HashMap::new();
        let mut sources = Vec::new();
        for (index, message) in messages.iter().enumerate() {
            let next = next_offsets.entry((&message.topic, message.partition)).or_insert(0);
            *next = (*next).max(message.offset + 1);
            match price_message(card, message) {
                Ok(priced) => {
                    batch.priced.push(priced);
                    sources.push(index);
                }
                Err(reason) => batch.quarantined.push(Quarantined {
                    topic: message.topic.clone(),
                    partition: message.partition,
                    offset: message.offset,
                    reason,
                    raw: message.payload.clone().unwrap_or_default(),
                }),
            }
        }
        batch.offsets = next_offsets.into_iter().map(|((topic, partition), next)| (topic.to_owned(), partition, next)).collect();
        Prepared { batch, sources, messages }
    }

    /// The messages, in arrival order.
    pub fn messages(&self) -> &[RawMessage] {
        &self.messages
    }

    /// The next offset to read per (topic, partition), as the batch stores them in the ledger.
    pub fn next_offsets(&self) -> &[(String, i32, i64)] {
        &self.batch.offsets
    }

    /// The lines `outcome` (this batch's commit) billed for the first time, in row order, with their
    /// records' bytes as they arrived.
    pub fn into_lines(self, outcome: &BatchOutcome) -> Vec<FreshLine> {
        let Prepared { batch, sources, mut messages } = self;
        let mut priced: Vec<Option<(UsageRecord, Origin, price::PricedLine)>> = batch.priced.into_iter().map(Some).collect();
        outcome
            .new_rows
            .iter()
            .filter_map(|&(row_id, index)| {
                let (record, origin, line) = priced[index].take()?;
                let record_json = messages[sources[index]].payload.take().unwrap_or_default();
                Some(FreshLine { row_id, machine_id: record.machine_id, record_json, line, origin })
            })
            .collect()
    }
}

/// What one [`Biller::bill`] committed: its outcome, and the batch, whose lines a caller can take
/// ([`Billed::into_lines`]).
#[derive(Debug)]
pub struct Billed {
    /// Counts and new rows of the transaction.
    pub outcome: BatchOutcome,
    prepared: Prepared,
}

impl Billed {
    /// The lines billed for the first time, in row order, with their records' bytes as they arrived.
    pub fn into_lines(self) -> Vec<FreshLine> {
        self.prepared.into_lines(&self.outcome)
    }
}

/// Prices messages into one ledger.
pub struct Biller {
    ledger: Ledger,
    card: RateCard,
    totals: BillerTotals,
}

impl Biller {
    /// A biller writing into `ledger` with prices from `card`.
    pub fn new(ledger: Ledger, card: RateCard) -> Self {
        Biller { ledger, card, totals: BillerTotals::default() }
    }

    /// The card records are priced with.
    pub fn card(&self) -> &RateCard {
        &self.card
    }

    /// The ledger, e.g. to read stored offsets.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Totals since this biller started.
    pub fn totals(&self) -> BillerTotals {
        self.totals
    }

    /// Bills `messages` in one transaction, storing the next offset of each partition with them.
    pub fn bill(&mut self, messages: &[RawMessage]) -> Result<Billed, LedgerError> {
        let prepared = Prepared::new(&self.card, messages.to_vec());
        let outcome = self.write(&prepared)?;
        Ok(Billed { outcome, prepared })
    }

    /// Writes a prepared batch in one transaction. On an error nothing of it was stored, so writing
    /// the same batch again is safe.
    pub fn write(&mut self, prepared: &Prepared) -> Result<BatchOutcome, LedgerError> {
        let outcome = self.ledger.write_batch(&prepared.batch)?;
        self.totals.billed += outcome.billed as u64;
        self.totals.duplicates += outcome.duplicates as u64;
        self.totals.quarantined += outcome.quarantined as u64;
        self.totals.batches += 1;
        Ok(outcome)
    }
}

fn price_message(card: &RateCard, message: &RawMessage) -> Result<(UsageRecord, Origin, price::PricedLine), String> {
    let payload = message.payload.as_deref().ok_or("empty message (no payload)")?;
    let record = UsageRecord::parse(payload).map_err(|error| error.to_string())?;
    let line = price::price(&record, card.version_at(record.start)).map_err(|error| error.to_string())?;
    let origin = Origin { partition: Some(message.partition), offset: Some(message.offset) };
    Ok((record, origin, line))
}

/// Bills `records` into the ledger at `path` under `card`, as messages of topic "u" partition 0 at
/// the offsets after those the ledger stored (the tests' way to fill a ledger).
#[cfg(test)]
pub(crate) fn bill_records(path: &std::path::Path, card: &RateCard, records: &[UsageRecord]) {
    let mut biller = Biller::new(Ledger::open(path).unwrap(), card.clone());
    let first = biller.ledger().offsets("u").unwrap().get(&0).copied().unwrap_or(0);
    let messages: Vec<RawMessage> = (first..)
        .zip(records)
        .map(|(offset, record)| RawMessage { topic: "u".into(), partition: 0, offset, payload: Some(record.to_json()) })
        .collect();
    biller.bill(&messages).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::UnixMillis;

    #[test]
    fn the_billed_lines_are_the_new_records_of_the_batch_with_their_bytes_as_they_arrived() {
        let directory = tempfile::tempdir().unwrap();
        let mut biller = Biller::new(Ledger::open(&directory.path().join("ledger.db")).unwrap(), RateCard::built_in());
        let message = |seq: u64, offset: i64| RawMessage {
            topic: "usage".into(),
            partition: 1,
            offset,
            payload: Some(UsageRecord::steady("m", seq, UnixMillis(1_767_225_600_000), 10_000).to_json()),
        };
        let first = [message(1, 0)];
        let rows: Vec<i64> = biller.bill(&first).unwrap().into_lines().iter().map(|line| line.row_id).collect();
        assert_eq!(rows, vec![1]);
        let malformed = RawMessage { topic: "usage".into(), partition: 1, offset: 2, payload: Some(b"{".to_vec()) };
        // seq 1 again (a redelivery), then 2, a malformed message, and 3.
        let batch = [message(1, 1), message(2, 2), malformed, message(3, 4)];
        let billed = biller.bill(&batch).unwrap();
        assert_eq!((billed.outcome.billed, billed.outcome.duplicates, billed.outcome.quarantined), (2, 1, 1));
        let fresh = billed.into_lines();
        let rows: Vec<(i64, i64)> = fresh.iter().map(|line| (line.row_id, line.origin.offset.unwrap())).collect();
        assert_eq!(rows, vec![(2, 2), (3, 4)], "(row id, offset) of the two new records");
        assert_eq!(fresh[1].record_json, batch[3].payload.clone().unwrap());
        let stored = biller.ledger().lines_after(1, 10).unwrap();
        assert_eq!(stored.iter().map(|line| &line.line).collect::<Vec<_>>(), fresh.iter().map(|line| &line.line).collect::<Vec<_>>());
    }

    /// `record` as a version-1 agent wrote it: the v1 type, and no kind, late time or clock steps.
    fn version_1(record: &UsageRecord) -> Vec<u8> {
        let mut event: serde_json::Value = serde_json::from_slice(&record.to_json()).unwrap();
        event["type"] = crate::record::EVENT_TYPE_V1.into();
        let data = event["data"].as_object_mut().unwrap();
        for field in ["kind", "late_millis", "clock_steps"] {
            data.remove(field);
        }
        serde_json::to_vec(&event).unwrap()
    }

    #[test]
    fn a_version_1_window_longer_than_an_hour_is_quarantined_with_its_reason() {
        let directory = tempfile::tempdir().unwrap();
        let mut biller = Biller::new(Ledger::open(&directory.path().join("ledger.db")).unwrap(), RateCard::built_in());
        let start = UnixMillis(1_767_225_600_000);
        let hour = UsageRecord::steady("old", 1, start, 3_600_000);
        let night = UsageRecord::steady("old", 2, start, 3_600_001);
        let message = |offset: i64, record: &UsageRecord| RawMessage {
            topic: "usage".into(),
            partition: 0,
            offset,
            payload: Some(version_1(record)),
        };
        let billed = biller.bill(&[message(0, &hour), message(1, &night)]).unwrap().outcome;
        assert_eq!((billed.billed, billed.quarantined), (1, 1), "an hour is still read from a v1 agent");
        let kept = crate::billing::ledger::quarantined(biller.ledger(), 0, 10).unwrap();
        assert_eq!(kept[0].offset, 1);
        assert!(kept[0].reason.contains("version-1 window longer than 1 h"), "{}", kept[0].reason);
        assert!(kept[0].reason.contains("data.end"), "{}", kept[0].reason);
    }
}
