//! Tier adjustments of the current period for views that refresh often (the cost tab, the budget
//! check): instead of re-reading the month's records each time, keep per machine, day and card
//! version the sum of each component's quantity, read only the rows billed since the last refresh,
//! and price the sums.
//!
//! The records of one (day, version) chunk are consecutive in window-start order unless another
//! version's window starts between the chunk's first and last start; so the chunks, in start order,
//! are the runs [`super::tiers::adjustments`] builds from the records, and both are priced by the one
//! [`walk`]. When two versions interleave within a day (two workers with different cards feeding one
//! view) the sums cannot place them, and the runs are built from the records instead.

use std::collections::{BTreeMap, HashMap};

use super::ledger::{Ledger, LedgerError};
use super::period::{day_of, month_of};
use super::rate_card::RateCard;
use super::report::TimeRange;
pub use super::tiers::TierAdjustment;
use super::tiers::{Run, adjustments_with_today, walk};
use crate::record::UnixMillis;

/// Rows read from the ledger per query while refreshing.
const ROWS_PER_READ: usize = 10_000;

/// The quantity sums of the windows of one machine, day and card version, and their start span.
#[derive(Debug, Clone)]
struct Chunk {
    run: Run,
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
                        run: Run::new(day, &stored.line.card_version, true),
                        first_start: record.start,
                        last_start: record.start,
                    });
                chunk.run.add(record);
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
            if ordered.windows(2).any(|pair| pair[0].run.version != pair[1].run.version && pair[0].last_start >= pair[1].first_start) {
                interleaved.push(machine.clone());
                continue;
            }
            if let Some(adjustment) = walk(machine, ordered.iter().map(|chunk| &chunk.run), card, today) {
                result.insert(machine.clone(), adjustment.rounded());
            }
        }
        if !interleaved.is_empty() {
            let period = TimeRange { from: Some(month_of(now).0), to: None };
            let mut from_records = adjustments_with_today(ledger, card, period, today)?;
            for machine in interleaved {
                if let Some(adjustment) = from_records.remove(&machine) {
                    result.insert(machine, adjustment);
                }
            }
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests;
