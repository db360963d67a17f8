//! Tier adjustments of the current period for views that refresh often (the cost tab, the budget
//! check): instead of re-reading the month's records each time, keep per machine, day and card
//! version the sum of each component's quantity, read only the rows billed since the last refresh,
//! and price the sums.
//!
//! This is exact because a graduated price is additive over consecutive quantities: pricing a run of
//! records one by one from position `u` gives what pricing their sum from `u` gives. The records of
//! one (day, version) chunk are consecutive in window-start order unless another version's window
//! starts between the chunk's first and last start; so the chunks, in start order, are the runs that
//! [`super::tiers::adjustments`] walks record by record. When two versions interleave within a day
//! (two workers with different cards feeding one view) the sums cannot place them, and the exact
//! per-record computation is used instead.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;

use super::ledger::{Ledger, LedgerError};
use super::period::{day_of, month_of};
use super::rate_card::{Component, PricingModel, RateCard};
use super::report::TimeRange;
use super::tiers::{ADJUSTMENT_DIGITS, adjustments, quantity, tier_adjustment};
use crate::record::UnixMillis;

/// Rows read from the ledger per query while refreshing.
const ROWS_PER_READ: usize = 10_000;

/// A machine's tier adjustments (negative for a volume discount).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierAdjustment {
    /// Of the windows starting today (UTC), placed after the month's earlier usage.
    pub today: Decimal,
    /// Of the windows starting this period.
    pub period: Decimal,
}

/// Quantity sums of the windows of one machine, day and card version.
#[derive(Debug, Clone)]
struct Chunk {
    day: i64,
    version: String,
    quantities: BTreeMap<Component, Decimal>,
    first_start: UnixMillis,
    last_start: UnixMillis,
}

/// The running sums for one ledger; [`PeriodTiers::refresh`] then [`PeriodTiers::adjustments`].
#[derive(Debug, Default)]
pub struct PeriodTiers {
    /// Start of the month the sums cover; rows are re-read from the beginning when it changes.
    month_start: Option<UnixMillis>,
    /// Highest row id already summed.
    after_row: i64,
    chunks: HashMap<String, HashMap<(i64, String), Chunk>>,
}

impl PeriodTiers {
    /// Empty sums: the first refresh reads the whole ledger once.
    pub fn new() -> PeriodTiers {
        PeriodTiers::default()
    }

    /// Adds the rows billed into `ledger` since the last refresh. Reads nothing when `card` has no
    /// tiers (the adjustments are then zero).
    pub fn refresh(&mut self, ledger: &Ledger, card: &RateCard, now: UnixMillis) -> Result<(), LedgerError> {
        if !card.versions().iter().any(|version| version.has_tiers()) {
            return Ok(());
        }
        let month_start = month_of(now).0;
        if self.month_start != Some(month_start) {
            *self = PeriodTiers { month_start: Some(month_start), ..PeriodTiers::default() };
        }
        loop {
            let rows = ledger.lines_after(self.after_row, ROWS_PER_READ)?;
            let Some(last) = rows.last() else { break };
            self.after_row = last.row_id;
            for stored in rows {
                let record = &stored.record;
                if record.start < month_start {
                    continue;
                }
                let day = day_of(record.start).0;
                let chunk = self
                    .chunks
                    .entry(record.machine_id.clone())
                    .or_default()
                    .entry((day, stored.line.card_version.clone()))
                    .or_insert_with(|| Chunk {
                        day,
                        version: stored.line.card_version.clone(),
                        quantities: BTreeMap::new(),
                        first_start: record.start,
                        last_start: record.start,
                    });
                for component in Component::ALL {
                    *chunk.quantities.entry(component).or_default() += quantity(record, component);
                }
                chunk.first_start = chunk.first_start.min(record.start);
                chunk.last_start = chunk.last_start.max(record.start);
            }
        }
        Ok(())
    }

    /// Each machine's adjustments at `now` under `card`; machines none of whose windows this period
    /// fall under a tiered version are absent.
    pub fn adjustments(&self, ledger: &Ledger, card: &RateCard, now: UnixMillis) -> Result<BTreeMap<String, TierAdjustment>, LedgerError> {
        let mut result = BTreeMap::new();
        if !card.versions().iter().any(|version| version.has_tiers()) {
            return Ok(result);
        }
        let today = day_of(now).0;
        let mut interleaved = Vec::new();
        for (machine, chunks) in &self.chunks {
            let mut ordered: Vec<&Chunk> = chunks.values().collect();
            ordered.sort_by_key(|chunk| (chunk.first_start, chunk.last_start));
            if ordered.windows(2).any(|pair| pair[0].version != pair[1].version && pair[0].last_start >= pair[1].first_start) {
                interleaved.push(machine.clone());
                continue;
            }
            if let Some(adjustment) = price_chunks(machine, &ordered, card, today) {
                result.insert(machine.clone(), adjustment);
            }
        }
        if !interleaved.is_empty() {
            let month_start = month_of(now).0;
            let period = adjustments(ledger, card, TimeRange { from: Some(month_start), to: None })?;
            let today = adjustments(ledger, card, TimeRange { from: Some(UnixMillis(today)), to: None })?;
            for machine in interleaved {
                if let Some(in_period) = period.get(&machine) {
                    let adjustment = TierAdjustment { today: today.get(&machine).copied().unwrap_or_default(), period: *in_period };
                    result.insert(machine, adjustment);
                }
            }
        }
        Ok(result)
    }
}

/// Walks a machine's chunks in start order, as the per-record computation walks its records.
fn price_chunks(machine: &str, ordered: &[&Chunk], card: &RateCard, today: i64) -> Option<TierAdjustment> {
    let mut any_tiers = false;
    let mut adjustment = TierAdjustment::default();
    let mut month = None;
    let mut used: BTreeMap<Component, Decimal> = BTreeMap::new();
    for chunk in ordered {
        // Windows of a later month (a clock ahead) start that month's usage from zero.
        let chunk_month = month_of(chunk.first_start).0;
        if month != Some(chunk_month) {
            month = Some(chunk_month);
            used.clear();
        }
        let version = card.version_named(&chunk.version).filter(|version| version.model == PricingModel::TimeWeighted);
        any_tiers |= version.is_some_and(|version| version.has_tiers());
        for component in Component::ALL {
            let amount = chunk.quantities.get(&component).copied().unwrap_or_default();
            let before = used.entry(component).or_default();
            if let Some(version) = version {
                let tiers = version.tiers_for(machine, component);
                if !tiers.is_empty() {
                    let part = tier_adjustment(*before, amount, version.prices_for(machine).of(component), tiers);
                    adjustment.period += part;
                    if chunk.day >= today {
                        adjustment.today += part;
                    }
                }
            }
            *before += amount;
        }
    }
    let round = |amount: Decimal| amount.round_dp(ADJUSTMENT_DIGITS).normalize();
    any_tiers.then(|| TierAdjustment { today: round(adjustment.today), period: round(adjustment.period) })
}

#[cfg(test)]
#[path = "period_tiers_tests.rs"]
mod tests;
