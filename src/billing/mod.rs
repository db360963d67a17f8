//! Billing: the rate card, exact pricing, the ledger, the worker that fills it and reports over it.

pub mod biller;
pub mod ledger;
pub mod period;
pub mod price;
pub mod rate_card;
pub mod report;
pub mod worker;
