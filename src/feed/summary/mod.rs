//! Publishing and reading the per-machine cost summaries
//! ([`crate::billing::cost_engine::CostSummary`]) on their compacted topic, keyed by machine id
//! (`kafka.summary_topic`). The workers' summary leader computes them with the cost engine from its
//! deduplicated view of the costs topic, so they equal what `report --from-feed` computes; a
//! desktop's book keeps the newest of each machine. See docs/billing.md.

mod book;
mod closing;
pub mod live;
mod publish;
mod reader;
mod table;

pub use self::book::{SummaryBook, SummaryOffer};
pub use self::closing::ClosingOptions;
pub use self::publish::{COALESCE, PublisherOptions, PublisherTotals, options_for, spawn_publisher, view_path_for};
pub use self::reader::{SummaryFeed, read_until_caught_up};
pub use self::table::{SummaryRow, render, rows};

#[cfg(test)]
mod tests;
