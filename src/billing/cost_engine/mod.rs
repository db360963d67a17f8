//! The cost engine: the one place a machine's costs are computed. Every figure shown or checked
//! (the budget check, the summaries the workers publish, the Costs and Usage tabs, `report`, the
//! API) comes from here, so no two of them can disagree.
//!
//! - [`CostEngine`] follows one ledger-schema file with one cursor. It keeps each machine's history
//!   in hourly buckets (`history`) and the current period's graduated-tier sums
//!   ([`running_tiers`]), both fed the same new lines, and computes [`CostSummary`]s from them: cost
//!   today, this period and in earlier periods, the series the tabs chart, and the [`forecast`]
//!   of the period's end (from each machine's recent hours and the fleet's weekly pattern).
//! - [`range`] prices an arbitrary time range (what `report --from/--to` and the API ask).
//! - [`tiers`] holds the tier walk both paths price with, and the record-by-record run builder
//!   that closed periods and arbitrary ranges use (and the tests hold the running sums to).
//!
//! Amounts are exact: a summary's amounts are sums of stored lines plus a tier adjustment rounded
//! at its 12th decimal place ([`tiers::ADJUSTMENT_DIGITS`]). See docs/billing.md.

pub mod calendar;
pub mod forecast;
mod history;
mod live;
pub mod range;
pub mod running_tiers;
mod summarise;
mod summary;
pub mod tiers;

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;

use self::calendar::month_of;
use self::forecast::FleetProfile;
pub use self::forecast::{Forecast, Outlook};
use self::history::{FleetHistory, MachineHistory};
pub use self::live::LiveCost;
use self::running_tiers::RunningTiers;
pub use self::summary::{CostSummary, HOURLY_SPAN, PeriodTotal, SUMMARY_SCHEMA, Series, SummaryError};
use crate::billing::ledger::{Ledger, LedgerError};
use crate::billing::rate_card::RateCard;
use crate::record::{TimeRange, UnixMillis};

/// Ledger rows read per query while following the file.
const ROWS_PER_READ: usize = 5_000;

/// What one [`CostEngine::refresh`] took in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// The machines the new lines were of, sorted.
    pub machines: Vec<String>,
    /// How many lines.
    pub lines: usize,
}

/// The costs of every machine in one ledger-schema file (a worker's ledger, a worker's view of the
/// costs topic, or the desktop's own ledger in embedded mode), kept up to date line by line.
#[derive(Debug)]
pub struct CostEngine {
    card: RateCard,
    /// The one cursor: the highest ledger row taken in.
    after_row: i64,
    history: FleetHistory,
    /// The current period's tier sums; absent when the card has no tiers.
    current_tiers: Option<RunningTiers>,
    /// Per closed period (by start), each machine's tier adjustment, computed once from the records.
    past_tiers: HashMap<i64, BTreeMap<String, Decimal>>,
    /// The fleet's weekly pattern and the hour (index) it is of.
    fleet: Option<(i64, Option<FleetProfile>)>,
}

impl CostEngine {
    /// Takes in everything `ledger` holds, in one snapshot: rows billed while it reads are left to
    /// the first refresh, never counted twice.
    pub fn load(ledger: &Ledger, card: RateCard, now: UnixMillis) -> Result<CostEngine, LedgerError> {
        let snapshot = ledger.connection().unchecked_transaction()?;
        let after_row = ledger.last_row_id()?;
        let history = FleetHistory::load(ledger, now)?;
        let current_tiers = if card.has_tiers() { Some(RunningTiers::load(ledger, now, after_row)?) } else { None };
        snapshot.finish()?;
        Ok(CostEngine { card, after_row, history, current_tiers, past_tiers: HashMap::new(), fleet: None })
    }

    /// Takes in what was billed into `ledger` since the last call.
    pub fn refresh(&mut self, ledger: &Ledger, now: UnixMillis) -> Result<Refreshed, LedgerError> {
        self.history.roll(now);
        if self.current_tiers.as_ref().is_some_and(|tiers| !tiers.is_for(now)) {
            // A new period: its sums start from the records already in it (a clock ahead billed some).
            self.current_tiers = Some(RunningTiers::load(ledger, now, self.after_row)?);
        }
        let current_period = month_of(now).0;
        let mut refreshed = Refreshed::default();
        loop {
            let rows = ledger.lines_after(self.after_row, ROWS_PER_READ)?;
            let Some(last) = rows.last() else { break };
            self.after_row = last.row_id;
            refreshed.lines += rows.len();
            for stored in &rows {
                self.history.add(stored);
                if let Some(tiers) = &mut self.current_tiers {
                    tiers.add(stored);
                }
                if stored.record.start < current_period {
                    // A late record of a closed period moves that period's tiers.
                    self.past_tiers.remove(&month_of(stored.record.start).0.0);
                }
                refreshed.machines.push(stored.record.machine_id.clone());
            }
        }
        refreshed.machines.sort_unstable();
        refreshed.machines.dedup();
        Ok(refreshed)
    }

    /// Every machine the file has billed, sorted.
    pub fn machines(&self) -> Vec<String> {
        let mut machines: Vec<String> = self.history.machines().cloned().collect();
        machines.sort_unstable();
        machines
    }

    /// The live costs of `machines` as of `now`: the figures [`CostEngine::summaries`] would give
    /// them, without the series, history and forecast (a machine the file does not hold is left out).
    pub fn live_costs(&mut self, ledger: &Ledger, machines: &[String], now: UnixMillis) -> Result<Vec<LiveCost>, LedgerError> {
        let adjustments = match &self.current_tiers {
            Some(tiers) => tiers.adjustments(ledger, &self.card, now)?,
            None => BTreeMap::new(),
        };
        let known = machines.iter().filter_map(|machine| self.history.get(machine).map(|history| (machine, history)));
        let live = known
            .map(|(machine, history)| summarise::live_cost(machine, history, adjustments.get(machine).copied().unwrap_or_default(), now));
        Ok(live.collect())
    }

    /// The summaries of `machines` as of `now`, from what the last refresh took in (a machine the
    /// file does not hold is left out). `ledger` is read only for the tiers of a closed period the
    /// first time it is asked, and when two card versions interleave within a day.
    pub fn summaries(&mut self, ledger: &Ledger, machines: &[String], now: UnixMillis) -> Result<Vec<CostSummary>, LedgerError> {
        let adjustments = match &self.current_tiers {
            Some(tiers) => tiers.adjustments(ledger, &self.card, now)?,
            None => BTreeMap::new(),
        };
        let fleet = self.fleet_profile(now);
        let mut summaries = Vec::with_capacity(machines.len());
        for machine in machines {
            let Some(history) = self.history.get(machine) else { continue };
            let mut past = BTreeMap::new();
            for start in closed_periods(history, month_of(now).0.0) {
                past.insert(start, past_tier(&mut self.past_tiers, ledger, &self.card, start, machine)?);
            }
            let current = adjustments.get(machine).copied().unwrap_or_default();
            // Hours before the prices the machine is billed at now were priced at the old ones.
            let prices_from = self.card.version_named(&history.latest.1).map(|version| version.effective_from);
            summaries.push(summarise::summarise(machine, history, current, &past, (fleet.as_ref(), prices_from), now));
        }
        Ok(summaries)
    }
}

impl CostEngine {
    /// The fleet's weekly pattern for the hour holding `now`, computed once an hour.
    fn fleet_profile(&mut self, now: UnixMillis) -> Option<FleetProfile> {
        let hour = forecast::hour_of_millis(now.0);
        if self.fleet.as_ref().is_none_or(|(computed, _)| *computed != hour) {
            self.fleet = Some((hour, self.history.fleet_profile(now)));
        }
        self.fleet.as_ref().and_then(|(_, profile)| profile.clone())
    }
}

/// `machine`'s tier adjustment in the closed period starting at `start` (each period's computed
/// once from its records, and kept in `past` until a late record of it arrives).
fn past_tier(
    past: &mut HashMap<i64, BTreeMap<String, Decimal>>,
    ledger: &Ledger,
    card: &RateCard,
    start: i64,
    machine: &str,
) -> Result<Decimal, LedgerError> {
    if !card.has_tiers() {
        return Ok(Decimal::ZERO);
    }
    let adjustments = match past.entry(start) {
        std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
        std::collections::hash_map::Entry::Vacant(unknown) => {
            let range = TimeRange { from: Some(UnixMillis(start)), to: Some(month_of(UnixMillis(start)).1) };
            unknown.insert(tiers::adjustments(ledger, card, range)?)
        }
    };
    Ok(adjustments.get(machine).copied().unwrap_or_default())
}

/// Starts of the periods before `current_start` with usage.
fn closed_periods(history: &MachineHistory, current_start: i64) -> Vec<i64> {
    let from_hours = history.hours.keys().filter(|hour| **hour < current_start).map(|hour| month_of(UnixMillis(*hour)).0.0);
    let mut starts: Vec<i64> = history.periods.keys().copied().chain(from_hours).collect();
    starts.sort_unstable();
    starts.dedup();
    starts
}

#[cfg(test)]
mod tests;
