//! Billing: the rate card, exact pricing, the ledger, the biller that fills it, budgets, and the
//! costs, reports and checks computed over it. The worker that runs the biller is [`crate::worker`];
//! the cost feed and summaries are [`crate::feed`]; the HTTP API is [`crate::api`].

pub mod amount_text;
pub mod biller;
pub mod budget;
pub mod cost_engine;
pub mod ledger;
pub mod listings;
pub mod money_text;
pub mod price;
pub mod rate_card;
pub mod report;
pub mod statement;
pub mod table_format;
pub mod time_health;
pub mod verify;
