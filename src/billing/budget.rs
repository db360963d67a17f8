//! Per-machine budgets: a machine whose forecast cost for the period crosses its budget raises an
//! alert naming the day it is expected to. The forecast is the cost engine's, the one the Costs tab
//! shows. The worker logs the
//! alert, stores it in its ledger and publishes it on the costs topic; views store it too.

use std::collections::HashSet;
use std::str::FromStr;

use globset::{Glob, GlobMatcher};
use rust_decimal::Decimal;

use super::cost_engine::CostEngine;
use super::cost_engine::calendar::month_of;
pub use super::ledger::BudgetAlert;
use super::ledger::{Ledger, LedgerError};
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

/// Raises each alert once per machine and period: remembers what was raised (seeded from the
/// ledger), and follows the ledger's costs with a cost engine of its own.
#[derive(Debug)]
pub struct AlertTracker {
    raised: HashSet<(String, i64)>,
    card: RateCard,
    engine: Option<CostEngine>,
}

impl AlertTracker {
    /// A tracker that knows the alerts already stored in `ledger` and projects with `card`.
    pub fn from_ledger(ledger: &Ledger, card: RateCard) -> Result<AlertTracker, LedgerError> {
        let raised = ledger.budget_alerts()?.into_iter().map(|alert| (alert.machine_id, alert.period_start.0)).collect();
        Ok(AlertTracker { raised, card, engine: None })
    }

    /// New alerts for machines of `ledger` whose projection crossed their budget at `now`.
    pub fn check(&mut self, ledger: &Ledger, budgets: &Budgets, now: UnixMillis) -> Result<Vec<BudgetAlert>, LedgerError> {
        if budgets.is_empty() {
            return Ok(Vec::new());
        }
        // Loaded at the first check, not at start, so a worker without budgets never follows costs.
        let engine = match &mut self.engine {
            Some(engine) => engine,
            None => self.engine.insert(CostEngine::load(ledger, self.card.clone(), now)?),
        };
        engine.refresh(ledger, now)?;
        let budgeted: Vec<String> = engine.machines().into_iter().filter(|machine| budgets.for_machine(machine).is_some()).collect();
        let period_start = month_of(now).0;
        let mut alerts = Vec::new();
        for summary in engine.summaries(ledger, &budgeted, now)? {
            let Some(budget) = budgets.for_machine(&summary.machine_id) else { continue };
            let Some((projected, crossing_day)) = summary.crossing(budget.amount, now) else { continue };
            if self.raised.insert((summary.machine_id.clone(), period_start.0)) {
                alerts.push(BudgetAlert {
                    machine_id: summary.machine_id,
                    period_start,
                    budget: budget.amount,
                    projected,
                    crossing_day: Some(crossing_day),
                    currency: summary.currency,
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

    /// 2026-01-01, ten hourly windows of 8 busy cores (80 core-hours) of machine `m`, billed under
    /// `card`; returns the moment the last one ends.
    fn ten_busy_hours(ledger_path: &std::path::Path, card: &RateCard) -> UnixMillis {
        use crate::billing::biller::{Biller, RawMessage};
        use crate::record::UsageRecord;

        let mut biller = Biller::new(Ledger::open(ledger_path).unwrap(), card.clone());
        let new_year = 1_767_225_600_000;
        let messages: Vec<RawMessage> = (1..=10u64)
            .map(|seq| {
                let record = UsageRecord { cpu_pct: 100.0, ..UsageRecord::steady("m", seq, UnixMillis(new_year), 3_600_000) };
                RawMessage { topic: "u".into(), partition: 0, offset: seq as i64, payload: Some(record.to_json()) }
            })
            .collect();
        biller.bill(&messages).unwrap();
        UnixMillis(new_year + 10 * 3_600_000)
    }

    /// What the Costs tab shows as the machine's projection: the engine's summary, as the
    /// summaries topic carries it.
    fn tab_projection(ledger: &Ledger, card: &RateCard, now: UnixMillis) -> Decimal {
        let engine = &mut CostEngine::load(ledger, card.clone(), now).unwrap();
        engine.summaries(ledger, &["m".to_owned()], now).unwrap()[0].expected_at(now)
    }

    #[test]
    fn a_projection_is_checked_with_the_cards_graduated_tiers() {
        use crate::billing::rate_card::cpu_tiered_version;

        let tiered = RateCard::parse(&cpu_tiered_version("t", "2026-01-01T00:00:00Z", "10", "0.01"), "test").unwrap();
        let directory = tempfile::tempdir().unwrap();
        let now = ten_busy_hours(&directory.path().join("ledger.db"), &tiered);
        let ledger = Ledger::open(&directory.path().join("ledger.db")).unwrap();
        let flat = tab_projection(&ledger, &RateCard::built_in(), now);
        let with_tiers = tab_projection(&ledger, &tiered, now);
        assert!(with_tiers < flat, "70 core-hours past the tier are cheaper: {with_tiers} < {flat}");
        // A budget between the two projections: over it at the flat price, under it with the tiers.
        let between = ((flat + with_tiers) / Decimal::TWO).round_dp(2).to_string();
        let budgets = budgets(&[("m", between.as_str())]).unwrap();
        let mut tracker = AlertTracker::from_ledger(&ledger, tiered).unwrap();
        assert!(tracker.check(&ledger, &budgets, now).unwrap().is_empty(), "under budget with the tiers");
        let mut tracker = AlertTracker::from_ledger(&ledger, RateCard::built_in()).unwrap();
        let alerts = tracker.check(&ledger, &budgets, now).unwrap();
        assert_eq!(alerts.len(), 1, "over budget at the flat price");
        assert!(tracker.check(&ledger, &budgets, now).unwrap().is_empty(), "raised once per machine and period");
    }

    #[test]
    fn an_alert_names_the_figure_the_costs_tab_shows() {
        use crate::billing::rate_card::cpu_tiered_version;

        let card = RateCard::parse(&cpu_tiered_version("t", "2026-01-01T00:00:00Z", "10", "0.01"), "test").unwrap();
        let directory = tempfile::tempdir().unwrap();
        let now = ten_busy_hours(&directory.path().join("ledger.db"), &card);
        let ledger = Ledger::open(&directory.path().join("ledger.db")).unwrap();
        let budgets = budgets(&[("*", "0.01")]).unwrap();
        let alerts = AlertTracker::from_ledger(&ledger, card.clone()).unwrap().check(&ledger, &budgets, now).unwrap();
        assert_eq!(alerts.len(), 1);
        // Exactly equal, not close: one engine, one rounding of the burn rate.
        assert_eq!(alerts[0].projected, tab_projection(&ledger, &card, now));
        assert_eq!(alerts[0].period_start.0, 1_767_225_600_000);
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
