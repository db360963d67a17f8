//! Costs as billed: each machine's flat cost (the sum of its stored lines) plus its graduated-tier
//! adjustment. This is the one place the two are put together; `report`, the API, the budget check,
//! the app's cost tab and the bench read costs from here, so they cannot disagree. See docs/billing.md.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;

use super::ledger::{self, CostGroup, GroupBy, Ledger, LedgerError};
use super::period::{self, MachineCost};
use super::period_tiers::{PeriodTiers, TierAdjustment};
use super::rate_card::RateCard;
use super::report::{self, MachineTotal, TimeRange};
use super::tiers;
use crate::record::UnixMillis;

/// A flat cost with its tier adjustment: the one sum every cost shown or reported goes through.
pub fn tiered(flat: Decimal, adjustment: Decimal) -> Decimal {
    (flat + adjustment).normalize()
}

/// Per-machine totals over `range` under `card`, tier adjustments included, ordered by machine id.
pub fn totals(ledger: &Ledger, card: &RateCard, range: TimeRange) -> Result<Vec<MachineTotal>, LedgerError> {
    let mut totals = report::machine_totals(ledger, range)?;
    let adjustments = tiers::adjustments(ledger, card, range)?;
    for total in &mut totals {
        if let Some(adjustment) = adjustments.get(&total.machine_id) {
            total.cost = tiered(total.cost, *adjustment);
        }
    }
    Ok(totals)
}

/// The cost groups of the API's `/costs` over `range`. Grouped by machine, each machine's tier
/// adjustment is added to its first group (a machine billed in two currencies has two); a day or an
/// hour holds the flat cost of its windows.
pub fn groups(ledger: &Ledger, card: &RateCard, range: TimeRange, group_by: GroupBy) -> Result<Vec<CostGroup>, LedgerError> {
    let mut groups = ledger::costs(ledger, range, group_by)?;
    if group_by == GroupBy::Machine {
        add_to_first_groups(&mut groups, &tiers::adjustments(ledger, card, range)?);
    }
    Ok(groups)
}

fn add_to_first_groups(groups: &mut [CostGroup], adjustments: &BTreeMap<String, Decimal>) {
    let mut adjusted = BTreeSet::new();
    for group in groups {
        if let Some(adjustment) = adjustments.get(&group.group)
            && adjusted.insert(group.group.clone())
        {
            group.cost = tiered(group.cost, *adjustment);
        }
    }
}

/// Costs of the current period for a view that asks often (the cost tab, the budget check): keeps
/// the running tier sums of one ledger between calls.
#[derive(Debug, Default)]
pub struct PeriodCosts {
    tiers: PeriodTiers,
}

impl PeriodCosts {
    /// No sums yet: the first call reads the ledger's month once.
    pub fn new() -> PeriodCosts {
        PeriodCosts::default()
    }

    /// Every machine's costs in the period holding `now`, under `card`'s tiers, ordered by machine id.
    pub fn current(&mut self, ledger: &Ledger, card: &RateCard, now: UnixMillis) -> Result<Vec<MachineCost>, LedgerError> {
        let mut costs = period::machine_costs(ledger, now)?;
        self.tiers.refresh(ledger, card, now)?;
        add_to_costs(&mut costs, &self.tiers.adjustments(ledger, card, now)?);
        Ok(costs)
    }
}

/// The projection gets the period's adjustment: the rest of the month is projected at the flat
/// price (a further discount is not counted before it is earned).
fn add_to_costs(costs: &mut [MachineCost], adjustments: &BTreeMap<String, TierAdjustment>) {
    for cost in costs {
        if let Some(adjustment) = adjustments.get(&cost.machine_id) {
            cost.today = tiered(cost.today, adjustment.today);
            cost.period = tiered(cost.period, adjustment.period);
            cost.projected = tiered(cost.projected, adjustment.period);
        }
    }
}
