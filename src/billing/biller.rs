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
    pub fn bill(&mut self, messages: &[RawMessage]) -> Result<BatchOutcome, LedgerError> {
        let mut batch = Batch::default();
        let mut next_offsets: HashMap<(&str, i32), i64> = HashMap::new();
        for message in messages {
            let next = next_offsets.entry((&message.topic, message.partition)).or_insert(0);
            *next = (*next).max(message.offset + 1);
            match self.price_message(message) {
                Ok(priced) => batch.priced.push(priced),
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
