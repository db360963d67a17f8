//! One machine's summary from its history: the flat amounts from its hourly buckets, the tier
//! adjustments handed in by the engine, the series the tabs chart, the recent burn rate, and the
//! forecast of the period's end.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::calendar::{BURN_WINDOW_MILLIS, DAY_MILLIS, HOUR_MILLIS, hour_of, month_of};
use super::forecast::{FleetProfile, Inputs, forecast, hour_of_millis};
use super::history::MachineHistory;
use super::live::LiveCost;
use super::range::tiered;
use super::summary::{CostSummary, HOURLY_SPAN, PeriodTotal, SUMMARY_SCHEMA, Series};
use super::tiers::TierAdjustment;
use crate::billing::time_health::TimeHealth;
use crate::record::UnixMillis;

/// One machine's summary from its history and the tier adjustments of the current period and of
/// each closed one (by period start), with what its forecast needs besides: the fleet's pattern,
/// and since when the prices it is billed at hold.
pub(super) fn summarise(
    machine: &str,
    history: &MachineHistory,
    tiers: TierAdjustment,
    past_tiers: &BTreeMap<i64, Decimal>,
    (fleet, prices_from): (Option<&FleetProfile>, Option<UnixMillis>),
    now: UnixMillis,
) -> CostSummary {
    let live = live_cost(machine, history, tiers, now);
    let (period_start, period_end) = month_of(now);
    let burn_per_hour = burn_rate(history, now);
    let inputs = Inputs { hours: history.hourly.view(hour_of_millis(now.0)), fleet, billed: live.period, now, period_end, prices_from };
    let this_hour = hour_of(now.0);
    let hourly_from = this_hour - (HOURLY_SPAN as i64 - 1) * HOUR_MILLIS;
    CostSummary {
        schema: SUMMARY_SCHEMA.to_owned(),
        machine_id: live.machine_id,
        revision: live.revision,
        computed_at: live.computed_at,
        currency: history.all.currency.clone(),
        card_version: history.latest.1.clone(),
        day_start: live.day_start,
        period_start: live.period_start,
        today: live.today,
        period: live.period,
        period_records: live.period_records,
        gaps: live.gaps,
        asleep_ms: live.asleep_ms,
        late_ms: live.late_ms,
        clock_steps: live.clock_steps,
        last_seen: live.last_seen,
        burn_per_hour,
        forecast: forecast(&inputs),
        hourly: series(history, hourly_from, HOUR_MILLIS, HOURLY_SPAN),
        daily: series(history, period_start.0, DAY_MILLIS, ((this_hour - period_start.0) / DAY_MILLIS + 1) as usize),
        periods: past_periods(history, period_start.0, past_tiers),
    }
}

/// One machine's live costs (the figures its summary of the same moment has) from its history and
/// the current period's tier adjustment.
pub(super) fn live_cost(machine: &str, history: &MachineHistory, tiers: TierAdjustment, now: UnixMillis) -> LiveCost {
    let period_start = month_of(now).0;
    let day_start = now.utc_day_start();
    let sum_from = |from: i64| -> (Decimal, u64) {
        let hours = history.hours.range(from..).map(|(_, hour)| hour);
        hours.fold((Decimal::ZERO, 0), |(cost, records), hour| (cost + hour.cost, records + hour.records))
    };
    let (today, _) = sum_from(day_start.0);
    let (period, period_records) = sum_from(period_start.0);
    let all = &history.all;
    let time = TimeHealth::of(all);
    LiveCost {
        machine_id: machine.to_owned(),
        revision: all.records,
        computed_at: now,
        day_start,
        period_start,
        today: tiered(today, tiers.today),
        period: tiered(period, tiers.period),
        period_records,
        gaps: (all.max_seq + 1).saturating_sub(all.min_seq).saturating_sub(all.records),
        asleep_ms: time.asleep_ms,
        late_ms: time.late_ms,
        clock_steps: time.clock_steps,
        last_seen: all.max_end,
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

/// The recent cost per hour: the windows since the start of the previous hour, per hour they
/// covered (what the Usage tab shows as the machine's rate now).
fn burn_rate(history: &MachineHistory, now: UnixMillis) -> Decimal {
    let burn_from = hour_of(now.0 - BURN_WINDOW_MILLIS);
    let (cost, covered) = history
        .hours
        .range(burn_from..)
        .fold((Decimal::ZERO, 0), |(cost, covered), (_, hour)| (cost + hour.cost, covered + hour.covered_millis));
    if covered > 0 { (cost * Decimal::from(HOUR_MILLIS) / Decimal::from(covered)).round_dp(12).normalize() } else { Decimal::ZERO }
}

fn past_periods(history: &MachineHistory, period_start: i64, past_tiers: &BTreeMap<i64, Decimal>) -> Vec<PeriodTotal> {
    let mut periods = history.periods.clone();
    for (hour, aggregate) in history.hours.range(..period_start) {
        let period = periods.entry(month_of(UnixMillis(*hour)).0.0).or_default();
        period.0 += aggregate.cost;
        period.1 += aggregate.records;
    }
    let cost_of = |start: &i64, cost: Decimal| tiered(cost, past_tiers.get(start).copied().unwrap_or_default());
    periods
        .iter()
        .map(|(start, (cost, records))| PeriodTotal { start: UnixMillis(*start), cost: cost_of(start, *cost), records: *records })
        .collect()
}
