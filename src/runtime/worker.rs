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

/// Bills the usage topic of `settings` into its ledger with `card` until `stop` is set (or the
/// worker stops by itself, as `options.exit_when_idle` says). With `publish_feed`, every billed
/// line goes to the cost feed and the workers elect one of them to publish the per-machine
/// summaries.
pub fn run_worker(
    settings: &Settings,
    card: RateCard,
    options: &WorkerOptions,
    publish_feed: bool,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let ledger = Ledger::open(&settings.ledger_path())?;
    let feed = FeedOptions { publish_feed, budgets: settings.budgets().clone() };
    // Every worker keeps a view of the whole feed; the one the group elects publishes the summaries.
    let summaries_stop = Arc::new(AtomicBool::new(false));
    let summaries = if publish_feed {
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
