//! Billing: the rate card, exact pricing, the ledger, the worker that fills it and reports over it.

pub mod amount_text;
pub mod biller;
pub mod budget;
pub mod costs;
pub mod listings;
pub mod ledger;
pub mod period;
pub mod period_tiers;
pub mod price;
pub mod rate_card;
pub mod report;
pub mod table_format;
pub mod tiers;
pub mod time_health;
pub mod verify;
