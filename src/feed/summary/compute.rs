//! Computing machines' summaries from a ledger-schema file (a worker's view of the feed, or the
//! desktop's own ledger in embedded mode): the flat amounts from each machine's history (its hourly
//! rollups), the graduated tiers from the running sums the cost tab and budgets use, so a summary
//! equals `report` over the same file.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;

use super::history::{FleetHistory, MachineHistory};
use super::{CostSummary, HOURLY_SPAN, PeriodTotal, SUMMARY_SCHEMA, Series};
use crate::billing::costs;
use crate::billing::ledger::rollup::HOUR_MILLIS;
use crate::billing::ledger::{Ledger, LedgerError};
use crate::billing::period::{BURN_WINDOW_MILLIS, month_of};
use crate::billing::period_tiers::{PeriodTiers, TierAdjustment};
use crate::billing::rate_card::RateCard;
use crate::billing::report::TimeRange;
use crate::billing::tiers;
use crate::billing::time_health::TimeHealth;
use crate::record::UnixMillis;

const DAY_MILLIS: i64 = 86_400_000;

/// What summaries of one ledger-schema file are computed from, kept between computations: each
/// machine's history, the current period's tier sums, and the closed periods' tiers.
#[derive(Debug)]
pub struct Summariser {
    card: RateCard,
    history: FleetHistory,
    current: PeriodTiers,
    /// Per period start, each machine's tier adjustment; computed once per closed period.
    past: HashMap<i64, BTreeMap<String, Decimal>>,
}

impl Summariser {
    /// Loads every machine's history from `ledger`.
    pub fn load(ledger: &Ledger, card: RateCard, now: UnixMillis) -> Result<Summariser, LedgerError> {
        Ok(Summariser { history: FleetHistory::load(ledger, now)?, card, current: PeriodTiers::new(), past: HashMap::new() })
    }

    /// Takes in what was billed into `ledger` since the last call; returns the machines it touched.
    pub fn refresh(&mut self, ledger: &Ledger, now: UnixMillis) -> Result<Vec<String>, LedgerError> {
        Ok(self.refresh_counting(ledger, now)?.0)
    }

    /// As [`Summariser::refresh`], with the number of lines taken in.
    pub fn refresh_counting(&mut self, ledger: &Ledger, now: UnixMillis) -> Result<(Vec<String>, usize), LedgerError> {
        let (touched, late, lines) = self.history.refresh(ledger, now)?;
        // A late record of a closed period changes that period's tiers.
        for period in late {
            self.past.remove(&period);
        }
        Ok((touched, lines))
    }

    /// Every machine the file has billed.
    pub fn machines(&self) -> Vec<String> {
        let mut machines: Vec<String> = self.history.machines().cloned().collect();
        machines.sort_unstable();
        machines
    }

    /// The summaries of `machines` as of `now` (a machine the file does not hold is left out).
    pub fn summaries(&mut self, ledger: &Ledger, machines: &[String], now: UnixMillis) -> Result<Vec<CostSummary>, LedgerError> {
        self.current.refresh(ledger, &self.card, now)?;
        let adjustments = self.current.adjustments(ledger, &self.card, now)?;
        let mut summaries = Vec::with_capacity(machines.len());
        for machine in machines {
            let Some(history) = self.history.get(machine) else { continue };
            let mut past_tiers = BTreeMap::new();
            for start in closed_periods(history, month_of(now).0.0) {
                past_tiers.insert(start, past_tier(&mut self.past, ledger, &self.card, start, machine)?);
            }
            let tiers = adjustments.get(machine).copied().unwrap_or_default();
            summaries.push(summarise(machine, history, tiers, &past_tiers, now));
        }
        Ok(summaries)
    }
}

fn past_tier(
    past: &mut HashMap<i64, BTreeMap<String, Decimal>>,
    ledger: &Ledger,
    card: &RateCard,
    start: i64,
    machine: &str,
) -> Result<Decimal, LedgerError> {
    if !card.versions().iter().any(|version| version.has_tiers()) {
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

/// One machine's summary from its history and the tier adjustments of the current period and of
/// each closed one (by period start).
pub fn summarise(
    machine: &str,
    history: &MachineHistory,
    tiers: TierAdjustment,
    past_tiers: &BTreeMap<i64, Decimal>,
    now: UnixMillis,
) -> CostSummary {
    let (period_start, _) = month_of(now);
    let day_start = now.utc_day_start();
    let sum_from = |from: i64| -> (Decimal, u64) {
        let hours = history.hours.range(from..).map(|(_, hour)| hour);
        hours.fold((Decimal::ZERO, 0), |(cost, records), hour| (cost + hour.cost, records + hour.records))
    };
    let (today, _) = sum_from(day_start.0);
    let (period, period_records) = sum_from(period_start.0);
    let (burn_per_hour, burn_low_per_hour, burn_high_per_hour) = burn_rates(history, now);
    let this_hour = now.0.div_euclid(HOUR_MILLIS) * HOUR_MILLIS;
    let hourly_from = this_hour - (HOURLY_SPAN as i64 - 1) * HOUR_MILLIS;
    let all = &history.all;
    let time = TimeHealth::of(all);
    CostSummary {
        schema: SUMMARY_SCHEMA.to_owned(),
        machine_id: machine.to_owned(),
        revision: all.records,
        computed_at: now,
        currency: all.currency.clone(),
        card_version: history.latest.1.clone(),
        day_start,
        period_start,
        today: costs::tiered(today, tiers.today),
        period: costs::tiered(period, tiers.period),
        period_records,
        gaps: (all.max_seq + 1).saturating_sub(all.min_seq).saturating_sub(all.records),
        asleep_ms: time.asleep_ms,
        late_ms: time.late_ms,
        clock_steps: time.clock_steps,
        last_seen: all.max_end,
        burn_per_hour,
        burn_low_per_hour,
        burn_high_per_hour,
        hourly: series(history, hourly_from, HOUR_MILLIS, HOURLY_SPAN),
        daily: series(history, period_start.0, DAY_MILLIS, ((this_hour - period_start.0) / DAY_MILLIS + 1) as usize),
        periods: past_periods(history, period_start.0, past_tiers),
    }
}

/// Costs per bucket of `bucket` ms, `count` buckets from `from`.
fn series(history: &MachineHistory, from: i64, bucket: i64, count: usize) -> Series {
    let mut costs = vec![Decimal::ZERO; count];
    for (hour, aggregate) in history.hours.range(from..) {
        if let Some(slot) = costs.get_mut(((hour - from) / bucket) as usize) {
            *slot += aggregate.cost;
        }
    }
    Series { from: UnixMillis(from), costs: costs.into_iter().map(|cost| cost.normalize()).collect() }
}

/// The recent cost per hour (as the period projection has always taken it: the windows since the
/// start of the previous hour), and the lowest and highest rate among it and the last day's hours.
fn burn_rates(history: &MachineHistory, now: UnixMillis) -> (Decimal, Decimal, Decimal) {
    let per_hour = |cost: Decimal, covered: i64| {
        if covered > 0 { (cost * Decimal::from(HOUR_MILLIS) / Decimal::from(covered)).round_dp(12) } else { Decimal::ZERO }
    };
    let burn_from = (now.0 - BURN_WINDOW_MILLIS).div_euclid(HOUR_MILLIS) * HOUR_MILLIS;
    let recent = history
        .hours
        .range(burn_from..)
        .fold((Decimal::ZERO, 0), |(cost, covered), (_, hour)| (cost + hour.cost, covered + hour.covered_millis));
    let recent = per_hour(recent.0, recent.1);
    let day = history.hours.range(now.0 - DAY_MILLIS..).filter(|(_, hour)| hour.covered_millis > 0);
    let (low, high) = day
        .map(|(_, hour)| per_hour(hour.cost, hour.covered_millis))
        .fold((recent, recent), |(low, high), rate| (low.min(rate), high.max(rate)));
    (recent.normalize(), low.normalize(), high.normalize())
}

fn past_periods(history: &MachineHistory, period_start: i64, past_tiers: &BTreeMap<i64, Decimal>) -> Vec<PeriodTotal> {
    let mut periods = history.periods.clone();
    for (hour, aggregate) in history.hours.range(..period_start) {
        let period = periods.entry(month_of(UnixMillis(*hour)).0.0).or_default();
        period.0 += aggregate.cost;
        period.1 += aggregate.records;
    }
    let cost_of = |start: &i64, cost: Decimal| costs::tiered(cost, past_tiers.get(start).copied().unwrap_or_default());
    periods
        .iter()
        .map(|(start, (cost, records))| PeriodTotal { start: UnixMillis(*start), cost: cost_of(start, *cost), records: *records })
        .collect()
}
