//! Each machine's billed history in the form its costs are computed from, kept in memory so a busy
//! fleet's costs are recomputed from a few buckets instead of re-reading rollups: per hour for the
//! current period and the last day, per period before that, and all-time counts. The engine loads
//! it once from a ledger-schema file's hourly rollups, then feeds it each line new to that file
//! (which has already dropped duplicates), so it always equals the file.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;

use rust_decimal::prelude::ToPrimitive;

use super::calendar::{HOUR_MILLIS, hour_of, month_of};
use super::forecast::{FleetProfile, HourlyCosts, hour_of_millis};
use crate::billing::ledger::rollup::{self, Aggregate};
use crate::billing::ledger::{Ledger, LedgerError, StoredLine};
use crate::record::UnixMillis;

/// Hours kept per hour besides the current period's: the last day's chart and burn band need 25.
const RECENT_HOURS: i64 = 26;

/// The start of a machine's all-time counts: `first`'s bounds and currency, no windows counted yet
/// ([`MachineHistory::add_hour`] counts `first` itself).
fn no_windows_like(first: &Aggregate) -> Aggregate {
    Aggregate { cost: Decimal::ZERO, records: 0, covered_millis: 0, asleep_millis: 0, late_millis: 0, clock_steps: 0, ..first.clone() }
}

/// One machine's history.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineHistory {
    /// All-time counts: records, seq bounds, the latest window end, the currency, and the time
    /// asleep, observed late and the clock steps.
    pub all: Aggregate,
    /// Seq and card version of the latest line.
    pub latest: (u64, String),
    /// Per hour of window start, from [`FleetHistory`]'s cut-off on.
    pub hours: BTreeMap<i64, Aggregate>,
    /// Per period (month start) before the cut-off: cost and records.
    pub periods: BTreeMap<i64, (Decimal, u64)>,
    /// The last five weeks' hourly costs, compact, for the forecast.
    pub hourly: HourlyCosts,
}

/// Every machine's history in one ledger-schema file.
#[derive(Debug, Default)]
pub struct FleetHistory {
    machines: HashMap<String, MachineHistory>,
    /// Hours before this are folded into periods.
    cut_off: i64,
}

fn cut_off_at(now: UnixMillis) -> i64 {
    let recent = hour_of(now.0) - RECENT_HOURS * HOUR_MILLIS;
    recent.min(month_of(now).0.0)
}

impl FleetHistory {
    /// Loads the history of every machine in `ledger` from its rollups (the engine reads them in the
    /// snapshot its cursor starts from).
    pub fn load(ledger: &Ledger, now: UnixMillis) -> Result<FleetHistory, LedgerError> {
        let mut fleet = FleetHistory { machines: HashMap::new(), cut_off: cut_off_at(now) };
        let versions = rollup::latest_card_versions(ledger.connection())?;
        rollup::each_hour(ledger.connection(), |machine, hour, aggregate| {
            let Some(latest) = versions.get(machine) else { return };
            let history = fleet.machines.entry(machine.to_owned()).or_insert_with(|| MachineHistory {
                all: no_windows_like(aggregate),
                latest: latest.clone(),
                hours: BTreeMap::new(),
                periods: BTreeMap::new(),
                hourly: HourlyCosts::new(hour_of_millis(aggregate.min_start.0)),
            });
            history.add_hour(hour, aggregate, fleet.cut_off);
        })?;
        Ok(fleet)
    }

    /// Adds one line new to the file (which has dropped duplicates already).
    pub fn add(&mut self, stored: &StoredLine) {
        let record = &stored.record;
        let single = Aggregate::of_record(record, stored.line.total, stored.line.currency.clone());
        let hour = hour_of(record.start.0);
        let cut_off = self.cut_off;
        let history = self.machines.entry(record.machine_id.clone()).or_insert_with(|| MachineHistory {
            all: no_windows_like(&single),
            latest: (record.seq, stored.line.card_version.clone()),
            hours: BTreeMap::new(),
            periods: BTreeMap::new(),
            hourly: HourlyCosts::new(hour_of_millis(record.start.0)),
        });
        if record.seq >= history.latest.0 {
            history.latest = (record.seq, stored.line.card_version.clone());
        }
        history.add_hour(hour, &single, cut_off);
    }

    /// Folds the hours that fell before the cut-off at `now` into their periods.
    pub fn roll(&mut self, now: UnixMillis) {
        let cut_off = cut_off_at(now);
        if cut_off <= self.cut_off {
            return;
        }
        self.cut_off = cut_off;
        for history in self.machines.values_mut() {
            let kept = history.hours.split_off(&cut_off);
            for (hour, aggregate) in std::mem::replace(&mut history.hours, kept) {
                history.fold_into_period(hour, &aggregate);
            }
        }
    }

    /// The history of `machine`.
    pub fn get(&self, machine: &str) -> Option<&MachineHistory> {
        self.machines.get(machine)
    }

    /// The fleet's weekly pattern as of the hour holding `now`.
    pub fn fleet_profile(&self, now: UnixMillis) -> Option<FleetProfile> {
        let until = hour_of_millis(now.0);
        FleetProfile::of(self.machines.values().map(|history| history.hourly.view(until)))
    }

    /// Every machine, in no order.
    pub fn machines(&self) -> impl Iterator<Item = &String> {
        self.machines.keys()
    }
}

impl MachineHistory {
    fn add_hour(&mut self, hour: i64, aggregate: &Aggregate, cut_off: i64) {
        self.all.records += aggregate.records;
        self.all.min_seq = self.all.min_seq.min(aggregate.min_seq);
        self.all.max_seq = self.all.max_seq.max(aggregate.max_seq);
        self.all.min_start = self.all.min_start.min(aggregate.min_start);
        self.all.max_end = self.all.max_end.max(aggregate.max_end);
        self.all.asleep_millis += aggregate.asleep_millis;
        self.all.late_millis += aggregate.late_millis;
        self.all.clock_steps += aggregate.clock_steps;
        self.hourly.add(hour_of_millis(hour), aggregate.cost.to_f32().unwrap_or(0.0));
        if hour < cut_off {
            self.fold_into_period(hour, aggregate);
            return;
        }
        match self.hours.get_mut(&hour) {
            Some(bucket) => bucket.merge(aggregate),
            None => drop(self.hours.insert(hour, aggregate.clone())),
        }
    }

    fn fold_into_period(&mut self, hour: i64, aggregate: &Aggregate) {
        let period = self.periods.entry(month_of(UnixMillis(hour)).0.0).or_default();
        period.0 += aggregate.cost;
        period.1 += aggregate.records;
    }
}
