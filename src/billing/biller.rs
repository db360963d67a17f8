//! Turning raw messages into a committed ledger batch: parse, validate, price, quarantine, write.
//! The same code bills messages from Kafka and from the embedded in-process channel.

use std::collections::HashMap;

use super::budget::BudgetAlert;
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

/// What one [`Biller::bill`] committed: its outcome, and the lines it billed for the first time,
/// built only for a caller that asks for them ([`Billed::into_lines`]).
#[derive(Debug)]
pub struct Billed<'m> {
    /// Counts and new rows of the transaction.
    pub outcome: BatchOutcome,
    priced: Vec<(UsageRecord, Origin, price::PricedLine)>,
    /// The message each entry of `priced` came from.
    sources: Vec<&'m RawMessage>,
}

impl Billed<'_> {
    /// The lines billed for the first time, in row order, with their records' bytes as they arrived.
    pub fn into_lines(self) -> Vec<FreshLine> {
        let mut priced: Vec<Option<(UsageRecord, Origin, price::PricedLine)>> = self.priced.into_iter().map(Some).collect();
        self.outcome
            .new_rows
            .iter()
            .filter_map(|&(row_id, index)| {
                let (record, origin, line) = priced[index].take()?;
                let record_json = self.sources[index].payload.clone().unwrap_or_default();
                Some(FreshLine { row_id, machine_id: record.machine_id, record_json, line, origin })
            })
            .collect()
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
    pub fn bill<'m>(&mut self, messages: &'m [RawMessage]) -> Result<Billed<'m>, LedgerError> {
        let mut batch = Batch::default();
        let mut next_offsets: HashMap<(&str, i32), i64> = HashMap::new();
        // The message each priced record came from.
        let mut sources = Vec::new();
        for message in messages {
            let next = next_offsets.entry((&message.topic, message.partition)).or_insert(0);
            *next = (*next).max(message.offset + 1);
            match self.price_message(message) {
                Ok(priced) => {
                    batch.priced.push(priced);
                    sources.push(message);
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
        let outcome = self.ledger.write_batch(&batch)?;
        self.totals.billed += outcome.billed as u64;
        self.totals.duplicates += outcome.duplicates as u64;
        self.totals.quarantined += outcome.quarantined as u64;
        self.totals.batches += 1;
        Ok(Billed { outcome, priced: batch.priced, sources })
    }

    /// Stores budget alerts (the first per machine and period is kept).
    pub fn record_alerts(&mut self, alerts: Vec<BudgetAlert>) -> Result<(), LedgerError> {
        self.ledger.write_batch(&Batch { alerts, ..Batch::default() })?;
        Ok(())
    }

    fn price_message(&self, message: &RawMessage) -> Result<(UsageRecord, Origin, price::PricedLine), String> {
        let payload = message.payload.as_deref().ok_or("empty message (no payload)")?;
        let record = UsageRecord::parse(payload).map_err(|error| error.to_string())?;
        let line = price::price(&record, self.card.version_at(record.start)).map_err(|error| error.to_string())?;
        let origin = Origin { partition: Some(message.partition), offset: Some(message.offset) };
        Ok((record, origin, line))
    }
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
}
