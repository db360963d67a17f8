//! Costs over an arbitrary time range (what `report --from/--to` and the API's `/costs` and
//! `/machines` ask): each machine's flat cost (the sum of its stored lines, from the rollups) plus
//! its graduated-tier adjustment over the range, from the records. [`tiered`] is the one sum every
//! cost shown or reported goes through. See docs/billing.md.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;

use super::tiers;
use crate::billing::ledger::{self, CostGroup, GroupBy, Ledger, LedgerError};
use crate::billing::rate_card::RateCard;
use crate::billing::report::{self, MachineTotal, TimeRange};

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
