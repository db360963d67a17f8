//! The budget alert as the ledger stores it and the feed carries it.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::record::UnixMillis;

/// A machine whose forecast crossed its budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetAlert {
    /// The machine.
    pub machine_id: String,
    /// Start of the period (month, UTC) the projection is for.
    pub period_start: UnixMillis,
    /// The budget crossed.
    #[serde(with = "rust_decimal::serde::str")]
    pub budget: Decimal,
    /// The forecast of the period's end when the alert was raised (what was billed, while the
    /// machine had too little history for a forecast).
    #[serde(with = "rust_decimal::serde::str")]
    pub projected: Decimal,
    /// The start of the UTC day the cost is expected to cross the budget on (the day raised, when
    /// the billed cost already had); none in alerts of before forecasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crossing_day: Option<UnixMillis>,
    /// Currency of both amounts.
    pub currency: String,
    /// When it was raised.
    pub raised: UnixMillis,
}
