//! A machine's live costs: the few figures of its summary that change with every record (today,
//! the period, records, gaps, time health, last seen). The workers publish them at once, and the
//! full summary (series, history, forecast) at most every five minutes; a view lays the newer live
//! figures over the summary it holds ([`CostSummary::with_live`]). See docs/billing.md.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::summary::CostSummary;
use crate::record::{UnixMillis, validate_machine_id};

/// One machine's live costs as of `computed_at`: the same amounts its summary of that moment has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveCost {
    /// The machine.
    pub machine_id: String,
    /// Distinct records billed, all time (a summary's revision).
    pub revision: u64,
    /// When it was computed.
    pub computed_at: UnixMillis,
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
    /// Milliseconds asleep, all time (left out when zero).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub asleep_ms: u64,
    /// Milliseconds observed late, all time (left out when zero).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub late_ms: u64,
    /// Wall-clock steps, all time (left out when zero).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub clock_steps: u64,
    /// End of its latest window.
    pub last_seen: UnixMillis,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl LiveCost {
    /// Checks what a message cannot be trusted for: the machine id, and money never negative.
    pub fn check(&self) -> Result<(), String> {
        validate_machine_id(&self.machine_id).map_err(|reason| format!("machine_id {:?}: {reason}", self.machine_id))?;
        if [self.today, self.period].iter().any(|amount| amount.is_sign_negative() && !amount.is_zero()) {
            return Err(format!("{}: a negative amount", self.machine_id));
        }
        Ok(())
    }

    /// Whether it is newer than what `summary` counts (more records, or the same computed later).
    pub fn is_newer_than(&self, summary: &CostSummary) -> bool {
        (self.revision, self.computed_at) > (summary.revision, summary.computed_at)
    }
}

impl CostSummary {
    /// This summary with `live`'s figures laid over it, when `live` is newer. The series and
    /// history stay as computed; the forecast keeps its outlook for the rest of the period and
    /// moves by what was billed since, so its band is never below the billed cost.
    pub fn with_live(&self, live: &LiveCost) -> CostSummary {
        let mut shown = self.clone();
        if !live.is_newer_than(self) {
            return shown;
        }
        if live.period_start == self.period_start
            && let super::Outlook::Forecast(forecast) = &mut shown.forecast
        {
            forecast.move_by(live.period - self.period);
        }
        shown.revision = live.revision;
        shown.computed_at = live.computed_at;
        shown.day_start = live.day_start;
        shown.period_start = live.period_start;
        shown.today = live.today;
        shown.period = live.period;
        shown.period_records = live.period_records;
        shown.gaps = live.gaps;
        shown.asleep_ms = live.asleep_ms;
        shown.late_ms = live.late_ms;
        shown.clock_steps = live.clock_steps;
        shown.last_seen = live.last_seen;
        shown
    }

    /// The live figures of this summary.
    pub fn live(&self) -> LiveCost {
        LiveCost {
            machine_id: self.machine_id.clone(),
            revision: self.revision,
            computed_at: self.computed_at,
            day_start: self.day_start,
            period_start: self.period_start,
            today: self.today,
            period: self.period,
            period_records: self.period_records,
            gaps: self.gaps,
            asleep_ms: self.asleep_ms,
            late_ms: self.late_ms,
            clock_steps: self.clock_steps,
            last_seen: self.last_seen,
        }
    }
}
