//! Starting a billing worker, the one way both `usagebill worker` and the app's in-process worker
//! do it: the ledger, the cost feed with the configured budgets, and a place in the election of
//! the summary publisher, until `stop` is set.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

use super::Settings;
use crate::billing::biller::Biller;
use crate::billing::ledger::Ledger;
use crate::billing::rate_card::RateCard;
use crate::feed::summary;
use crate::worker::{self, FeedOptions, WorkerOptions};

/// What a worker publishes besides its ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publishing {
    /// Nothing: the ledger only.
    Nothing,
    /// Every billed line to the cost feed, and no summaries (for a worker kept out of the election).
    FeedOnly,
    /// The cost feed, and a member of the summary election.
    FeedAndSummaries,
}

/// Bills the usage topic of `settings` into its ledger with `card` until `stop` is set (or the
/// worker stops by itself, as `options.exit_when_idle` says). Publishing the summaries, the
/// workers elect one of them to publish the per-machine summaries.
pub fn run_worker(
    settings: &Settings,
    card: RateCard,
    options: &WorkerOptions,
    publishing: Publishing,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let ledger = Ledger::open(&settings.ledger_path())?;
    let publish_feed = publishing != Publishing::Nothing;
    let feed = FeedOptions { publish_feed, budgets: settings.budgets().clone() };
    // Every worker runs the publisher; only the elected leader and its standby keep a view of the
    // whole feed, and the leader publishes the summaries.
    let summaries_stop = Arc::new(AtomicBool::new(false));
    let summaries = if publishing == Publishing::FeedAndSummaries {
        // Its leader closes the periods whose grace has passed, as `usagebill statement close` would.
        let closing = summary::ClosingOptions {
            accounts: settings.accounts().clone(),
            issuer: settings.issuer().to_owned(),
            cycle: settings.cycle(),
        };
        let summary_options = summary::options_for(&settings.ledger_path(), card.clone(), Some(closing));
        let publisher = summary::spawn_publisher(&settings.config.kafka, summary_options, Arc::clone(&summaries_stop));
        Some(publisher.context("starting the summary publisher's thread")?)
    } else {
        None
    };
    let billed = worker::run(&settings.config.kafka, Biller::new(ledger, card), options, &feed, stop);
    summaries_stop.store(true, Ordering::SeqCst);
    if let Some(publisher) = summaries
        && let Ok(totals) = publisher.join()
    {
        tracing::info!("summary publisher stopped: {} summaries published over {} term(s) as leader", totals.published, totals.terms);
    }
    billed?;
    Ok(())
}
