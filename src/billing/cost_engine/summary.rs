//! The per-machine cost summary: what a desktop's Costs tab shows of one machine, small enough that
//! a desktop holds the whole fleet's (about 1 KB a machine). The engine computes it
//! ([`super::CostEngine::summaries`]); the workers publish it on a compacted topic keyed by machine
//! id, and budgets, the tabs and `report --from-summary` read their figures from it.
//!
//! One message is one JSON object with `"schema": "usagebill.cost-summary.v2"` (v2 carries the
//! forecast where v1 carried a burn-rate band). Money is exact
//! decimal text, as everywhere. A summary carries a `revision`, the machine's distinct records
//! billed: it only grows, so a view keeps the summary with the highest revision and a late or
//! replayed older one never replaces a newer one.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::calendar::{DAY_MILLIS, month_of};
use super::forecast::Outlook;
use crate::billing::time_health::TimeHealth;
use crate::record::{UnixMillis, validate_machine_id};

/// The `schema` of every summary message; the suffix versions the layout.
pub const SUMMARY_SCHEMA: &str = "usagebill.cost-summary.v2";

/// Hours of cost series a summary carries (the tab's last-day chart).
pub const HOURLY_SPAN: usize = 24;

/// Costs per bucket from `from`, one bucket after another (an hour or a day), oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    /// Start of the first bucket.
    pub from: UnixMillis,
    /// Exact cost of each bucket's windows (by window start).
    #[serde(with = "decimal_texts")]
    pub costs: Vec<Decimal>,
}

/// A closed billing period of the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodTotal {
    /// The period's first instant (a calendar month, UTC).
    pub start: UnixMillis,
    /// Exact cost of the windows starting in it, graduated tiers applied.
    #[serde(with = "rust_decimal::serde::str")]
    pub cost: Decimal,
    /// Records billed in it.
    pub records: u64,
}

/// One machine's costs as of `computed_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostSummary {
    /// Always [`SUMMARY_SCHEMA`].
    pub schema: String,
    /// The machine.
    pub machine_id: String,
    /// Distinct records billed for the machine, all time: a summary with a lower one is older.
    pub revision: u64,
    /// When it was computed (the clock of the engine that computed it).
    pub computed_at: UnixMillis,
    /// Currency of its lines.
    pub currency: String,
    /// Card version of its latest line.
    pub card_version: String,
    /// The UTC day `today` is of.
    pub day_start: UnixMillis,
    /// The period `period` is of.
    pub period_start: UnixMillis,
    /// Cost of the windows starting on `day_start`'s day, tiers applied.
    #[serde(with = "rust_decimal::serde::str")]
    pub today: Decimal,
    /// Cost of the windows starting in the period, tiers applied.
    #[serde(with = "rust_decimal::serde::str")]
    pub period: Decimal,
    /// Records billed in the period.
    pub period_records: u64,
    /// Missing seqs, all time.
    pub gaps: u64,
    /// Milliseconds asleep, all time. This and the next two are left out when zero and read as
    /// zero when absent, so summaries of earlier workers still read, and a desktop of before them
    /// (which refuses fields it does not know) still reads every machine that never slept, stalled
    /// or saw its clock stepped.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub asleep_ms: u64,
    /// Milliseconds of usage observed late, all time.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub late_ms: u64,
    /// Wall-clock steps its agent saw, all time.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub clock_steps: u64,
    /// End of its latest window.
    pub last_seen: UnixMillis,
    /// Cost per hour at the recent rate (windows since the start of the previous hour).
    #[serde(with = "rust_decimal::serde::str")]
    pub burn_per_hour: Decimal,
    /// The period's cost forecast to its end (see [`super::forecast`]).
    pub forecast: Outlook,
    /// Cost per hour of the last [`HOURLY_SPAN`] hours, the current one last.
    pub hourly: Series,
    /// Cost per day of the period so far.
    pub daily: Series,
    /// Earlier periods with usage, oldest first.
    pub periods: Vec<PeriodTotal>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// Why a summary message was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a cost summary: {0}")]
pub struct SummaryError(pub String);

impl CostSummary {
    /// The JSON form.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a summary serialises")
    }

    /// Parses and checks a summary: the schema, the machine id, the currency, and money that is
    /// never negative.
    pub fn parse(bytes: &[u8]) -> Result<CostSummary, SummaryError> {
        let summary: CostSummary = serde_json::from_slice(bytes).map_err(|error| SummaryError(error.to_string()))?;
        if summary.schema != SUMMARY_SCHEMA {
            return Err(SummaryError(format!("schema {:?}, expected {SUMMARY_SCHEMA:?}", summary.schema)));
        }
        validate_machine_id(&summary.machine_id)
            .map_err(|reason| SummaryError(format!("machine_id {:?}: {reason}", summary.machine_id)))?;
        if summary.currency.len() != 3 || !summary.currency.bytes().all(|byte| byte.is_ascii_uppercase()) {
            return Err(SummaryError(format!("currency {:?} is not a 3-letter ISO 4217 code", summary.currency)));
        }
        let forecast = summary.forecast.forecast().into_iter();
        let forecast_amounts = forecast.flat_map(|forecast| {
            [forecast.estimate, forecast.low, forecast.high, forecast.daily_spread].into_iter().chain(forecast.path.iter().copied())
        });
        let amounts: Vec<Decimal> = [summary.today, summary.period, summary.burn_per_hour].into_iter().chain(forecast_amounts).collect();
        let series = summary.hourly.costs.iter().chain(&summary.daily.costs).chain(summary.periods.iter().map(|period| &period.cost));
        if amounts.iter().chain(series).any(|amount| amount.is_sign_negative() && !amount.is_zero()) {
            return Err(SummaryError(format!("{}: a negative amount", summary.machine_id)));
        }
        Ok(summary)
    }

    /// Time asleep, observed late, and clock steps, all time.
    pub fn time_health(&self) -> TimeHealth {
        TimeHealth { asleep_ms: self.asleep_ms, late_ms: self.late_ms, clock_steps: self.clock_steps }
    }

    /// Cost today as of `now`: nothing once the summary's day is over.
    pub fn today_at(&self, now: UnixMillis) -> Decimal {
        if now.utc_day_start() == self.day_start { self.today } else { Decimal::ZERO }
    }

    /// Cost of the period holding `now`: nothing once the summary's period is over.
    pub fn period_at(&self, now: UnixMillis) -> Decimal {
        if month_of(now).0 == self.period_start { self.period } else { Decimal::ZERO }
    }

    /// Cost of the period starting at `start`: the current one, or an earlier one.
    pub fn period_cost(&self, start: UnixMillis) -> Option<(Decimal, u64)> {
        if start == self.period_start {
            return Some((self.period, self.period_records));
        }
        self.periods.iter().find(|period| period.start == start).map(|period| (period.cost, period.records))
    }

    /// The cost expected at the end of the period holding `now`: the forecast's estimate, or with
    /// no forecast, what is billed (all that is known).
    pub fn expected_at(&self, now: UnixMillis) -> Decimal {
        self.outlook_at(now).forecast().map_or_else(|| self.period_at(now), |forecast| forecast.estimate)
    }

    /// Whether the period holding `now` is expected to cost more than `budget`: the expected cost
    /// and the start of the UTC day it crosses on (today, when the billed cost already has).
    pub fn crossing(&self, budget: Decimal, now: UnixMillis) -> Option<(Decimal, UnixMillis)> {
        let expected = self.expected_at(now);
        if expected <= budget {
            return None;
        }
        let today = now.utc_day_start();
        let outlook = self.outlook_at(now);
        let forecast = outlook.forecast().filter(|_| self.period_at(now) <= budget);
        let day = forecast.and_then(|forecast| forecast.path.iter().position(|at_day_end| *at_day_end > budget));
        Some((expected, day.map_or(today, |days| today.plus_millis(days as i64 * DAY_MILLIS))))
    }

    /// The forecast of the period holding `now`: the one computed with the summary while that
    /// period lasts, else unknown (nothing of the new period has been billed yet).
    pub fn outlook_at(&self, now: UnixMillis) -> Outlook {
        if month_of(now).0 == self.period_start { self.forecast.clone() } else { Outlook::Unknown }
    }
}

/// A list of decimals as a list of exact texts.
pub(super) mod decimal_texts {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(values: &[Decimal], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(values.iter().map(|value| value.normalize().to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Decimal>, D::Error> {
        let texts = Vec::<String>::deserialize(deserializer)?;
        texts
            .iter()
            .map(|text| text.parse::<Decimal>().map_err(|_| serde::de::Error::custom(format!("{text:?} is not a decimal"))))
            .collect()
    }
}
