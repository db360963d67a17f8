//! Tier adjustments of the current period, kept as running sums so that a view which refreshes
//! often (the cost tab, the budget check, the summary leader) never re-reads the month's records:
//! per machine, day and card version, the sum of each component's quantity over the lines the
//! engine has fed in, priced when asked.
//!
//! The records of one (day, version) chunk are consecutive in window-start order unless another
//! version's window starts between the chunk's first and last start; so the chunks, in start order,
//! are the runs [`super::tiers::adjustments`] builds from the records, and both are priced by the one
//! tier walk. When two versions interleave within a day (two workers with different cards feeding
//! one view) the sums cannot place them, and the runs are built from the records instead.

use std::collections::{BTreeMap, HashMap};

use super::calendar::{day_of, month_of};
pub use super::tiers::TierAdjustment;
use super::tiers::{Run, adjustments_with_today, walk};
use crate::billing::ledger::{Ledger, LedgerError, StoredLine};
use crate::billing::rate_card::RateCard;
use crate::record::{TimeRange, UnixMillis};

/// Rows read from the ledger per query while loading.
const ROWS_PER_READ: usize = 10_000;

/// The quantity sums of the windows of one machine, day and card version, and their start span.
#[derive(Debug, Clone)]
struct Chunk {
    run: Run,
    first_start: UnixMillis,
    last_start: UnixMillis,
}

/// The running sums of one month of one ledger.
#[derive(Debug)]
pub struct RunningTiers {
    /// Start of the month the sums cover.
    month_start: UnixMillis,
    chunks: HashMap<String, HashMap<(i64, String), Chunk>>,
}

impl RunningTiers {
    /// The sums of the month holding `now` over the ledger's rows up to row `through`.
    pub fn load(ledger: &Ledger, now: UnixMillis, through: i64) -> Result<RunningTiers, LedgerError> {
        let mut sums = RunningTiers { month_start: month_of(now).0, chunks: HashMap::new() };
        let mut after = 0;
        loop {
            let rows = ledger.lines_between(after, through, ROWS_PER_READ)?;
            let Some(last) = rows.last() else { break };
            after = last.row_id;
            rows.iter().for_each(|stored| sums.add(stored));
        }
        Ok(sums)
    }

    /// Whether these are the sums of the month holding `now`.
    pub fn is_for(&self, now: UnixMillis) -> bool {
        self.month_start == month_of(now).0
    }

    /// Adds one line new to the ledger (a window of another month only moves nothing).
    pub fn add(&mut self, stored: &StoredLine) {
        let record = &stored.record;
        if record.start < self.month_start {
            return;
        }
        let day = day_of(record.start).0;
        let chunk =
            self.chunks.entry(record.machine_id.clone()).or_default().entry((day, stored.line.card_version.clone())).or_insert_with(|| {
                Chunk { run: Run::new(day, &stored.line.card_version, true), first_start: record.start, last_start: record.start }
            });
        chunk.run.add(record);
        chunk.first_start = chunk.first_start.min(record.start);
        chunk.last_start = chunk.last_start.max(record.start);
    }

    /// Each machine's adjustments at `now` under `card`; machines none of whose windows this period
    /// fall under a tiered version are absent.
    pub fn adjustments(&self, ledger: &Ledger, card: &RateCard, now: UnixMillis) -> Result<BTreeMap<String, TierAdjustment>, LedgerError> {
        let mut result = BTreeMap::new();
        if !card.has_tiers() {
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
            let period = TimeRange { from: Some(self.month_start), to: None };
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
