//! What a Kafka worker does after each committed batch: publish the new lines to the cost feed and,
//! every few seconds, check budgets and raise alerts (logged, stored in the ledger, published).
//!
//! It runs on a thread of its own with a connection of its own to the ledger, so the next batch is
//! billed while this one is published: the feed's cursor in the ledger says what was acknowledged,
//! so nothing depends on publishing keeping pace.

use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};

use super::consumer::WorkerConsumer;
use crate::billing::biller::FreshLine;
use crate::billing::budget::{AlertTracker, Budgets};
use crate::billing::ledger::{Batch, Ledger};
use crate::billing::rate_card::RateCard;
use crate::feed::{FeedError, FeedPublisher};
use crate::kafka::KafkaConfig;
use crate::record::UnixMillis;

/// How often budgets are checked: the projection moves slowly, and a check computes every budgeted machine's.
pub const BUDGET_CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// How long a stopping worker waits for the broker to acknowledge the rest of the feed.
pub const FEED_FINISH_TIMEOUT: Duration = Duration::from_secs(30);

/// The feed publisher and the budget check of one worker.
pub struct PublishAndAlert {
    ledger: Ledger,
    feed: Option<FeedPublisher>,
    budgets: Budgets,
    tracker: AlertTracker,
    last_budget_check: Option<Instant>,
}

impl PublishAndAlert {
    /// Starts publishing (when `publish_feed`) from the cursor in `ledger`; lines a crash left
    /// unacknowledged are sent again at once. Budgets are projected with `card`.
    pub fn start(
        kafka: &KafkaConfig,
        ledger: Ledger,
        card: RateCard,
        publish_feed: bool,
        budgets: Budgets,
    ) -> Result<PublishAndAlert, FeedError> {
        let mut feed = if publish_feed { Some(FeedPublisher::new(kafka, &ledger)?) } else { None };
        if let Some(feed) = &mut feed {
            let resent = feed.publish_new(&ledger, &[])?;
            if resent > 0 {
                tracing::info!("cost feed: sending {resent} line(s) billed before the last stop and not yet acknowledged");
            }
        }
        let tracker = AlertTracker::from_ledger(&ledger, card)?;
        Ok(PublishAndAlert { ledger, feed, budgets, tracker, last_budget_check: None })
    }

    /// Publishes the lines a batch just committed billed for the first time, and checks budgets when due.
    pub fn on_commit(&mut self, lines: &[FreshLine]) -> Result<(), FeedError> {
        if let Some(feed) = &mut self.feed {
            feed.publish_new(&self.ledger, lines)?;
            feed.settle(&self.ledger)?;
        }
        if self.last_budget_check.is_none_or(|checked| checked.elapsed() >= BUDGET_CHECK_INTERVAL) {
            self.check_budgets()?;
        }
        Ok(())
    }

    /// Between batches: sends the lines the ledger holds and the feed has not sent (the ledger thread
    /// leaves a batch's lines there when this thread is behind, and with no batch after it they would
    /// wait for the next), takes the delivery reports that arrived and stores how far the feed is
    /// acknowledged (a refusal is seen, and the cursor kept, without waiting for a batch).
    pub fn between_batches(&mut self) -> Result<(), FeedError> {
        match &mut self.feed {
            Some(feed) => {
                feed.publish_new(&self.ledger, &[])?;
                feed.settle(&self.ledger)
            }
            None => Ok(()),
        }
    }

    /// Tells the consumer group the offsets of the batches whose lines the feed acknowledged.
    pub fn tell_group(&self, consumer: &WorkerConsumer, mode: CommitMode) {
        let progress = &consumer.context().progress;
        if let Some(feed) = &self.feed {
            progress.acknowledged(feed.acknowledged_through());
        }
        progress.tell_group(consumer, mode);
    }

    fn check_budgets(&mut self) -> Result<(), FeedError> {
        self.last_budget_check = Some(Instant::now());
        let alerts = self.tracker.check(&self.ledger, &self.budgets, UnixMillis::now())?;
        if alerts.is_empty() {
            return Ok(());
        }
        for alert in &alerts {
            let day = alert.crossing_day.map(|day| day.to_string()).unwrap_or_default();
            tracing::warn!(
                "budget alert: machine {} is expected to cost {} {} this period, over its budget of {} {}; it crosses it on {}",
                alert.machine_id,
                alert.projected.round_dp(2),
                alert.currency,
                alert.budget,
                alert.currency,
                day.get(..10).unwrap_or("an unknown day")
            );
        }
        // The first alert per machine and period is kept.
        self.ledger.write_batch(&Batch { alerts: alerts.clone(), ..Batch::default() })?;
        if let Some(feed) = &mut self.feed {
            feed.publish_alerts(&alerts)?;
        }
        Ok(())
    }

    /// Checks budgets a last time and waits for the feed to be acknowledged.
    pub fn finish(&mut self) -> Result<(), FeedError> {
        self.check_budgets()?;
        if let Some(feed) = &mut self.feed {
            if feed.finish(&self.ledger, FEED_FINISH_TIMEOUT)? {
                tracing::info!("cost feed: every line acknowledged (through row {})", feed.acknowledged_through());
            } else {
                tracing::warn!("cost feed: not every line was acknowledged within {FEED_FINISH_TIMEOUT:?}; the next start sends the rest");
            }
        }
        Ok(())
    }
}
