//! Per-machine budgets: a machine whose projected cost for the period crosses its budget raises an
//! alert. The worker logs it, stores it in its ledger and publishes it on the cost feed; views store
//! it too, and [`budget_statuses`] is what an API serves.

use std::collections::HashMap;
use std::str::FromStr;

use globset::{Glob, GlobMatcher};
use rust_decimal::Decimal;
use serde::Serialize;

use super::costs::PeriodCosts;
pub use super::ledger::BudgetAlert;
use super::ledger::{Ledger, LedgerError};
use super::period::{self, MachineCost};
use super::rate_card::RateCard;
use crate::record::UnixMillis;

/// A budget that does not parse; names the key and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// The pattern is not a machine id or glob.
    #[error("`billing.budgets.\"{pattern}\"`: not a machine id or glob: {reason}")]
    Pattern {
        /// The key.
        pattern: String,
        /// What globset said.
        reason: String,
    },
    /// The amount is not a positive decimal string.
    #[error("`billing.budgets.\"{pattern}\"` = {amount:?}: must be a positive decimal amount as a string, e.g. \"250.00\"")]
    Amount {
        /// The key.
        pattern: String,
        /// The value.
        amount: String,
    },
}

/// One budget: machines matching `pattern` may cost up to `amount` per period.
#[derive(Debug, Clone)]
pub struct Budget {
    /// A machine id or glob.
    pub pattern: String,
    matcher: GlobMatcher,
    /// Exact amount, in the rate card's currency.
    pub amount: Decimal,
}

/// All configured budgets. A machine takes the budget of the most specific pattern that matches it:
/// an exact id beats any glob, a longer glob beats a shorter one.
#[derive(Debug, Clone, Default)]
pub struct Budgets {
    budgets: Vec<Budget>,
}

impl Budgets {
    /// Parses `pattern = "amount"` pairs (the `[billing.budgets]` table).
    pub fn parse<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> Result<Budgets, BudgetError> {
        let mut budgets = Vec::new();
        for (pattern, amount) in pairs {
            let matcher = Glob::new(pattern)
                .map_err(|error| BudgetError::Pattern { pattern: pattern.clone(), reason: error.to_string() })?
                .compile_matcher();
            let parsed = Decimal::from_str(amount.trim())
                .ok()
                .filter(|value| *value > Decimal::ZERO)
                .ok_or_else(|| BudgetError::Amount { pattern: pattern.clone(), amount: amount.clone() })?;
            budgets.push(Budget { pattern: pattern.clone(), matcher, amount: parsed });
        }
        // Most specific first: exact ids, then longer patterns.
        budgets.sort_by_key(|budget| (is_glob(&budget.pattern), std::cmp::Reverse(budget.pattern.len())));
        Ok(Budgets { budgets })
    }

    /// No budgets configured.
    pub fn is_empty(&self) -> bool {
        self.budgets.is_empty()
    }

    /// The budget of `machine_id`, if one applies.
    pub fn for_machine(&self, machine_id: &str) -> Option<&Budget> {
        self.budgets.iter().find(|budget| budget.matcher.is_match(machine_id))
    }
}

fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '{'])
}

/// One machine's standing against its budget, for an API or a view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetStatus {
    /// The machine's costs this period.
    #[serde(flatten)]
    pub cost: MachineCost,
    /// Its budget, if one applies.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub budget: Option<Decimal>,
    /// The pattern the budget came from.
    pub budget_pattern: Option<String>,
    /// The projection is above the budget.
    pub over_budget: bool,
}

/// Each machine's period costs (tier adjustments included: see [`PeriodCosts`]) with its budget.
pub fn budget_statuses(costs: Vec<MachineCost>, budgets: &Budgets) -> Vec<BudgetStatus> {
    costs
        .into_iter()
        .map(|cost| {
            let budget = budgets.for_machine(&cost.machine_id);
            BudgetStatus {
                over_budget: budget.is_some_and(|budget| cost.projected > budget.amount),
                budget: budget.map(|budget| budget.amount),
                budget_pattern: budget.map(|budget| budget.pattern.clone()),
                cost,
            }
        })
        .collect()
}

/// Raises each alert once per machine and period: remembers what was raised (seeded from the ledger).
#[derive(Debug, Default)]
pub struct AlertTracker {
    raised: HashMap<(String, i64), ()>,
    costs: PeriodCosts,
}

impl AlertTracker {
    /// A tracker that knows the alerts already stored in `ledger`.
    pub fn from_ledger(ledger: &Ledger) -> Result<AlertTracker, LedgerError> {
        let raised = ledger.budget_alerts()?.into_iter().map(|alert| ((alert.machine_id, alert.period_start.0), ())).collect();
        Ok(AlertTracker { raised, costs: PeriodCosts::new() })
    }

    /// New alerts for machines of `ledger` whose projection under `card` crossed their budget at `now`.
    pub fn check(&mut self, ledger: &Ledger, card: &RateCard, budgets: &Budgets, now: UnixMillis) -> Result<Vec<BudgetAlert>, LedgerError> {
        if budgets.is_empty() {
            return Ok(Vec::new());
        }
        let (period_start, _) = period::month_of(now);
        let costs = self.costs.current(ledger, card, now)?;
        let mut alerts = Vec::new();
        for status in budget_statuses(costs, budgets) {
            let (Some(budget), true) = (status.budget, status.over_budget) else { continue };
            let key = (status.cost.machine_id.clone(), period_start.0);
            if self.raised.insert(key, ()).is_none() {
                alerts.push(BudgetAlert {
                    machine_id: status.cost.machine_id,
                    period_start,
                    budget,
                    projected: status.cost.projected,
                    currency: status.cost.currency,
                    raised: now,
                });
            }
        }
        Ok(alerts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets(pairs: &[(&str, &str)]) -> Result<Budgets, BudgetError> {
        let owned: Vec<(String, String)> = pairs.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
        Budgets::parse(owned.iter().map(|(key, value)| (key, value)))
    }

    #[test]
    fn the_most_specific_pattern_wins() {
        let budgets = budgets(&[("*", "10"), ("gpu-*", "500"), ("gpu-7", "900")]).unwrap();
        assert_eq!(budgets.for_machine("gpu-7").unwrap().amount, Decimal::from(900));
        assert_eq!(budgets.for_machine("gpu-8").unwrap().amount, Decimal::from(500));
        assert_eq!(budgets.for_machine("cpu-1").unwrap().pattern, "*");
    }

    #[test]
    fn a_projection_is_checked_with_the_cards_graduated_tiers() {
        use crate::billing::biller::{Biller, RawMessage};
        use crate::billing::rate_card::cpu_tiered_version;
        use crate::record::UsageRecord;

        let tiered = RateCard::parse(&cpu_tiered_version("t", "2026-01-01T00:00:00Z", "10", "0.01"), "test").unwrap();
        let directory = tempfile::tempdir().unwrap();
        let mut biller = Biller::new(Ledger::open(&directory.path().join("ledger.db")).unwrap(), tiered.clone());
        // 2026-01-01, ten hourly windows of 8 busy cores: 80 core-hours, 70 of them past the tier.
        let new_year = 1_767_225_600_000;
        let messages: Vec<RawMessage> = (1..=10u64)
            .map(|seq| {
                let record = UsageRecord { cpu_pct: 100.0, ..UsageRecord::steady("m", seq, UnixMillis(new_year), 3_600_000) };
                RawMessage { topic: "u".into(), partition: 0, offset: seq as i64, payload: Some(record.to_json()) }
            })
            .collect();
        biller.bill(&messages).unwrap();
        let now = UnixMillis(new_year + 10 * 3_600_000);
        let flat = budget_statuses(period::machine_costs(biller.ledger(), now).unwrap(), &Budgets::default())[0].cost.clone();
        let tiered_costs = PeriodCosts::new().current(biller.ledger(), &tiered, now).unwrap();
        let with_tiers = budget_statuses(tiered_costs, &Budgets::default())[0].cost.clone();
        assert_eq!(flat.period - with_tiers.period, Decimal::from_str("2.1").unwrap(), "70 core-hours 0.03 cheaper");
        // A budget between the two projections: over it at the flat price, under it with the tiers.
        let between = ((flat.projected + with_tiers.projected) / Decimal::TWO).round_dp(2).to_string();
        let budgets = budgets(&[("m", between.as_str())]).unwrap();
        let mut tracker = AlertTracker::from_ledger(biller.ledger()).unwrap();
        assert!(tracker.check(biller.ledger(), &tiered, &budgets, now).unwrap().is_empty(), "under budget with the tiers");
        let mut tracker = AlertTracker::from_ledger(biller.ledger()).unwrap();
        let alerts = tracker.check(biller.ledger(), &RateCard::built_in(), &budgets, now).unwrap();
        assert_eq!(alerts.len(), 1, "over budget at the flat price");
    }

    #[test]
    fn bad_budgets_name_the_key_and_value() {
        let error = budgets(&[("gpu-*", "lots")]).unwrap_err().to_string();
        assert!(error.contains("billing.budgets") && error.contains("gpu-*") && error.contains("lots"), "{error}");
        let error = budgets(&[("gpu-*", "-5")]).unwrap_err().to_string();
        assert!(error.contains("-5"), "{error}");
        let error = budgets(&[("gpu-[", "5")]).unwrap_err().to_string();
        assert!(error.contains("gpu-["), "{error}");
    }
}
