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

/// A line the last batch billed, with its record's bytes as they arrived: the cost feed publishes
/// it from here instead of reading it back from the ledger and encoding the record again.
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

/// Prices messages into one ledger.
pub struct Biller {
    ledger: Ledger,
    card: RateCard,
    totals: BillerTotals,
    /// Whether to keep [`FreshLine`]s (only a worker that publishes the cost feed wants them).
    keep_fresh: bool,
    fresh: Vec<FreshLine>,
}

impl Biller {
    /// A biller writing into `ledger` with prices from `card`.
    pub fn new(ledger: Ledger, card: RateCard) -> Self {
        Biller { ledger, card, totals: BillerTotals::default(), keep_fresh: false, fresh: Vec::new() }
    }

    /// From now on, keep the lines of the last batch for [`Biller::take_fresh_lines`].
    pub fn keep_fresh_lines(&mut self) {
        self.keep_fresh = true;
    }

    /// The lines the last batch billed, in row order (empty unless [`Biller::keep_fresh_lines`]).
    /// Only the last batch's are kept: a consumer that missed a batch reads the ledger instead.
    pub fn take_fresh_lines(&mut self) -> Vec<FreshLine> {
        std::mem::take(&mut self.fresh)
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
    pub fn bill(&mut self, messages: &[RawMessage]) -> Result<BatchOutcome, LedgerError> {
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
        self.fresh.clear();
        let outcome = self.ledger.write_batch(&batch)?;
        if self.keep_fresh {
            self.fresh = outcome
                .new_rows
                .iter()
                .map(|&(row_id, index)| {
                    let (record, origin, line) = &batch.priced[index];
                    FreshLine {
                        row_id,
                        machine_id: record.machine_id.clone(),
                        record_json: sources[index].payload.clone().unwrap_or_default(),
                        line: line.clone(),
                        origin: *origin,
                    }
                })
                .collect();
        }
        self.totals.billed += outcome.billed as u64;
        self.totals.duplicates += outcome.duplicates as u64;
        self.totals.quarantined += outcome.quarantined as u64;
        self.totals.batches += 1;
        Ok(outcome)
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
    fn the_fresh_lines_are_the_new_records_of_the_last_batch_with_their_bytes_as_they_arrived() {
        let directory = tempfile::tempdir().unwrap();
        let mut biller = Biller::new(Ledger::open(&directory.path().join("ledger.db")).unwrap(), RateCard::built_in());
        let message = |seq: u64, offset: i64| RawMessage {
            topic: "usage".into(),
            partition: 1,
            offset,
            payload: Some(UsageRecord::steady("m", seq, UnixMillis(1_767_225_600_000), 10_000).to_json()),
        };
        biller.bill(&[message(1, 0)]).unwrap();
        assert!(biller.take_fresh_lines().is_empty(), "kept only when asked for");
        biller.keep_fresh_lines();
        let malformed = RawMessage { topic: "usage".into(), partition: 1, offset: 2, payload: Some(b"{".to_vec()) };
        // seq 1 again (a redelivery), then 2, a malformed message, and 3.
        let batch = [message(1, 1), message(2, 2), malformed, message(3, 4)];
        biller.bill(&batch).unwrap();
        let fresh = biller.take_fresh_lines();
        let rows: Vec<(i64, i64)> = fresh.iter().map(|line| (line.row_id, line.origin.offset.unwrap())).collect();
        assert_eq!(rows, vec![(2, 2), (3, 4)], "(row id, offset) of the two new records");
        assert_eq!(fresh[1].record_json, batch[3].payload.clone().unwrap());
        let stored = biller.ledger().lines_after(1, 10).unwrap();
        assert_eq!(stored.iter().map(|line| &line.line).collect::<Vec<_>>(), fresh.iter().map(|line| &line.line).collect::<Vec<_>>());
        assert!(biller.take_fresh_lines().is_empty(), "taken once");
    }
}
