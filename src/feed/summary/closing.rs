//! The summary leader closes billing periods by itself: at the start of its term and about once a
//! minute after, it looks for periods from the first with usage in its view up to the latest whose
//! close time (end plus grace) has passed that are not closed on the statement topic, and closes
//! them in order with [`close_period`] through [`KafkaStatements`], computing from its view.
//!
//! It closes only from a view that has read the costs topic up to the end it had when the check
//! began, so records billed before the close are on the statements. A close that fails (another
//! closer fenced this one, the broker away) is logged and tried again at the next check; nothing
//! here stops the publisher or the worker.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::billing::ledger::Ledger;
use crate::billing::rate_card::RateCard;
use crate::billing::statement::compute::first_period_with_usage;
use crate::billing::statement::{Accounts, Cycle, Period, Sources, Statement, close_period};
use crate::feed::statements::{KafkaStatements, read_issued};
use crate::kafka::KafkaConfig;
use crate::record::UnixMillis;

/// How often the leader looks for periods to close.
const CHECK_EVERY: Duration = Duration::from_secs(60);
/// How soon it looks again when its view has not caught up with the costs topic yet.
const CATCH_UP_RETRY: Duration = Duration::from_secs(5);

/// What the leader needs to close periods: the settings `usagebill statement close` uses.
#[derive(Debug, Clone)]
pub struct ClosingOptions {
    /// Which account each machine bills to.
    pub accounts: Accounts,
    /// Who issues the statements.
    pub issuer: String,
    /// How long periods last and when they close.
    pub cycle: Cycle,
}

/// The leader's closer: when it next looks.
pub(super) struct Closer {
    options: ClosingOptions,
    next_check: Instant,
}

/// What one check found.
enum Checked {
    /// Every period due is closed.
    Nothing,
    /// The view is behind the costs topic: closing waits for it.
    ViewBehind,
    /// These periods were closed now, each with its final statements.
    Closed(Vec<(Period, Vec<Statement>)>),
}

impl Closer {
    pub(super) fn new(options: ClosingOptions) -> Closer {
        Closer { options, next_check: Instant::now() }
    }

    /// A new term checks at once.
    pub(super) fn start_term(&mut self) {
        self.next_check = Instant::now();
    }

    /// Checks if a check is due; never fails: what went wrong is logged and tried again later.
    pub(super) fn check_if_due(&mut self, kafka: &KafkaConfig, client: &BaseConsumer, view: &Ledger, card: &RateCard) {
        if Instant::now() < self.next_check {
            return;
        }
        self.next_check = Instant::now() + CHECK_EVERY;
        let checked = std::panic::catch_unwind(AssertUnwindSafe(|| self.check(kafka, client, view, card, UnixMillis::now())));
        match checked {
            Ok(Ok(Checked::Nothing)) => {}
            Ok(Ok(Checked::ViewBehind)) => {
                tracing::debug!("closing periods waits: the view has not read the costs topic to its end yet");
                self.next_check = Instant::now() + CATCH_UP_RETRY;
            }
            Ok(Ok(Checked::Closed(closed))) => {
                for (period, statements) in closed {
                    tracing::info!("closed period {period}: {}", describe(&statements));
                }
            }
            Ok(Err(error)) => tracing::warn!("closing periods failed: {error:#}; trying again in {}s", CHECK_EVERY.as_secs()),
            Err(_) => tracing::warn!("closing periods panicked; trying again in {}s", CHECK_EVERY.as_secs()),
        }
    }

    fn check(
        &self,
        kafka: &KafkaConfig,
        client: &BaseConsumer,
        view: &Ledger,
        card: &RateCard,
        now: UnixMillis,
    ) -> anyhow::Result<Checked> {
        let cycle = self.options.cycle;
        let Some(first) = first_period_with_usage(view, cycle)? else { return Ok(Checked::Nothing) };
        let latest = cycle.latest_closable(now);
        if latest < first {
            return Ok(Checked::Nothing);
        }
        let (issued, _) = read_issued(kafka)?;
        let mut pending = Vec::new();
        let mut period = first;
        while period <= latest {
            if !issued.is_closed(period) {
                pending.push(period);
            }
            period = period.next();
        }
        if pending.is_empty() {
            return Ok(Checked::Nothing);
        }
        let ends = cost_topic_ends(kafka, client)?;
        // One read transaction: the offsets checked and every row the statements are computed from
        // are one snapshot of the view, however the materialiser writes meanwhile.
        let snapshot = view.connection().unchecked_transaction()?;
        let read = view.offsets(&kafka.cost_topic)?;
        if ends.iter().any(|(partition, end)| read.get(partition).copied().unwrap_or(0) < *end) {
            return Ok(Checked::ViewBehind);
        }
        let sources = Sources { ledger: view, card, accounts: &self.options.accounts, issuer: &self.options.issuer, cycle, named_by: None };
        let mut closed = Vec::new();
        for period in pending {
            let mut store = KafkaStatements::new(kafka, &self.options.issuer)?;
            let statements = close_period(&mut store, &sources, first, period, now)?;
            closed.push((period, statements));
        }
        drop(snapshot);
        Ok(Checked::Closed(closed))
    }
}

/// The end (high watermark) of each partition of the costs topic.
fn cost_topic_ends(kafka: &KafkaConfig, client: &BaseConsumer) -> anyhow::Result<Vec<(i32, i64)>> {
    let topic = &kafka.cost_topic;
    let metadata = client.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut ends = Vec::new();
    for partition in metadata.topics().iter().flat_map(|found| found.partitions()) {
        let (_, high) = client.fetch_watermarks(topic, partition.id(), Duration::from_secs(10))?;
        ends.push((partition.id(), high));
    }
    Ok(ends)
}

/// "3 final statement(s), numbers 1..=3: acme 1234.56 USD, ...".
fn describe(statements: &[Statement]) -> String {
    let numbers: Vec<u64> = statements.iter().filter_map(|statement| statement.number).collect();
    let (Some(low), Some(high)) = (numbers.iter().min(), numbers.iter().max()) else {
        return "no usage, no statements".to_owned();
    };
    let accounts: Vec<String> =
        statements.iter().map(|statement| format!("{} {} {}", statement.account.id, statement.totals.total, statement.currency)).collect();
    format!("{} final statement(s), numbers {low}..={high}: {}", statements.len(), accounts.join(", "))
}
