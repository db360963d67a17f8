//! The budget alert as the ledger stores it and the feed carries it.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::record::UnixMillis;

/// A machine whose projection crossed its budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetAlert {
    /// The machine.
    pub machine_id: String,
    /// Start of the period (month, UTC) the projection is for.
    pub period_start: UnixMillis,
    /// The budget crossed.
    #[serde(with = "rust_decimal::serde::str")]
    pub budget: Decimal,
    /// The projection to the period's end when the alert was raised.
    #[serde(with = "rust_decimal::serde::str")]
    pub projected: Decimal,
    /// Currency of both amounts.
    pub currency: String,
    /// When it was raised.
    pub raised: UnixMillis,
}
