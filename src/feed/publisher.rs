//! Publishing from a worker's ledger to the cost topic, at least once.
//!
//! The ledger keeps a cursor: the highest record row whose feed message the broker acknowledged.
//! After each committed batch the publisher sends every row above what it already sent; a delivery
//! failure rewinds it to the failed row; a crash rewinds it to the stored cursor. So a line is never
//! missing from the feed, and sometimes present twice (views deduplicate).

use std::collections::BTreeSet;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::{FeedError, FeedMessage, encode_cost};
use crate::billing::biller::FreshLine;
use crate::billing::budget::BudgetAlert;
use crate::billing::ledger::Ledger;
use crate::kafka::KafkaConfig;
use crate::kafka::{Delivery, ReportingProducer, ensure_topic};

/// Rows read from the ledger per query while publishing.
const ROWS_PER_READ: usize = 5_000;
/// Delivery tag of alert messages: they are not rows, so they never move the cursor.
const ALERT_TAG: u64 = 0;

/// Publishes a ledger's billed lines and budget alerts to `kafka.cost_topic`.
pub struct FeedPublisher {
    producer: ReportingProducer,
    deliveries: Receiver<Delivery>,
    /// Highest row the broker acknowledged, with every row below it (the stored cursor).
    acknowledged_through: i64,
    /// Highest row handed to the producer.
    produced_through: i64,
    /// Rows handed to the producer and not yet acknowledged.
    in_flight: BTreeSet<i64>,
    /// Lowest row whose delivery failed since the last settle, minus one.
    rewind_to: Option<i64>,
    /// Why the broker refused a delivery, with what the principal needs (the worker stops on it).
    refused: Option<String>,
    /// The cost topic.
    topic: String,
}

impl FeedPublisher {
    /// Creates the cost topic if missing and starts from the cursor stored in `ledger`.
    pub fn new(kafka: &KafkaConfig, ledger: &Ledger) -> Result<FeedPublisher, FeedError> {
        ensure_topic(kafka, &kafka.cost_topic)?;
        let (sender, deliveries) = mpsc::channel();
        let producer = ReportingProducer::new(kafka, super::CONTENT_TYPE, sender)?;
        let cursor = ledger.feed_published_through()?;
        Ok(FeedPublisher {
            producer,
            deliveries,
            acknowledged_through: cursor,
            produced_through: cursor,
            in_flight: BTreeSet::new(),
            rewind_to: None,
            refused: None,
            topic: kafka.cost_topic.clone(),
        })
    }

    /// Sends every row of `ledger` not sent yet, through the last of `fresh` when there are fresh
    /// lines. Returns the number of messages queued.
    ///
    /// `fresh` holds the lines of a batch just committed, as the biller handed them back; batches
    /// arrive in commit order. Rows between the last one sent and the first fresh one (after a
    /// rewind, at start) are read from the ledger; the fresh lines go out from memory, with their
    /// record's bytes as they arrived. With no fresh lines (at start, when finishing) every row not
    /// sent is read from the ledger. Rows committed after `fresh` are left for their own batch: the
    /// ledger thread runs ahead of this one.
    pub fn publish_new(&mut self, ledger: &Ledger, fresh: &[FreshLine]) -> Result<usize, FeedError> {
        let read_through = fresh.first().map_or(i64::MAX, |first| first.row_id - 1);
        let mut queued = 0;
        while self.produced_through < read_through {
            let rows = ledger.lines_between(self.produced_through, read_through, ROWS_PER_READ)?;
            let Some(last) = rows.last() else { break };
            let last_row = last.row_id;
            for stored in rows {
                let row_id = stored.row_id;
                let message = FeedMessage::Cost { record: stored.record, line: stored.line, origin: stored.origin };
                self.send(message.key(), &message.encode(), row_id as u64)?;
                self.in_flight.insert(row_id);
                queued += 1;
            }
            self.produced_through = last_row;
        }
        let sent_through = self.produced_through;
        for line in fresh.iter().filter(|line| line.row_id > sent_through) {
            self.send(&line.machine_id, &encode_cost(&line.record_json, &line.line, line.origin), line.row_id as u64)?;
            self.in_flight.insert(line.row_id);
            self.produced_through = line.row_id;
            queued += 1;
        }
        Ok(queued)
    }

    /// Sends budget alerts (best effort: they are also kept in the ledger).
    pub fn publish_alerts(&mut self, alerts: &[BudgetAlert]) -> Result<(), FeedError> {
        for alert in alerts {
            let message = FeedMessage::BudgetAlert(alert.clone());
            self.send(message.key(), &message.encode(), ALERT_TAG)?;
        }
        Ok(())
    }

    fn send(&mut self, key: &str, payload: &[u8], tag: u64) -> Result<(), FeedError> {
        loop {
            match self.producer.send(&self.topic, key, payload, tag) {
                Ok(()) => return Ok(()),
                // librdkafka's queue is full: let deliveries drain, then try again.
                Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {
                    let _ = self.producer.flush(Duration::from_millis(20));
                    self.drain_deliveries();
                }
                // The producer gave up for good, e.g. the broker refused it an idempotent identity:
                // say why instead of librdkafka's bare "fatal error".
                Err(KafkaError::MessageProduction(RDKafkaErrorCode::Fatal)) => {
                    let reason = self.producer.fatal_error().unwrap_or_else(|| "the producer failed for good".into());
                    return Err(FeedError::Refused(self.needs_write(&reason)));
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// A refusal's reason, with what the worker's principal needs.
    fn needs_write(&self, reason: &str) -> String {
        format!("{reason}; the worker's principal needs WRITE and DESCRIBE on the cost topic {}", self.topic)
    }

    fn drain_deliveries(&mut self) {
        for delivery in self.deliveries.try_iter() {
            if delivery.tag == ALERT_TAG {
                if let Err(reason) = delivery.outcome {
                    tracing::warn!("a budget alert was not published to the cost topic {}: {reason}", self.topic);
                }
                continue;
            }
            if delivery.refused
                && self.refused.is_none()
                && let Err(reason) = &delivery.outcome
            {
                self.refused = Some(self.needs_write(reason));
            }
            let row_id = delivery.tag as i64;
            self.in_flight.remove(&row_id);
            if let Err(reason) = delivery.outcome {
                tracing::warn!("row {row_id} was not delivered to the cost topic {} ({reason}); it will be sent again", self.topic);
                self.rewind_to = Some(self.rewind_to.map_or(row_id - 1, |earlier| earlier.min(row_id - 1)));
            }
        }
    }

    /// Takes the delivery reports that arrived and stores how far the feed is acknowledged. Fails
    /// once the broker refused a delivery: what was acknowledged stays stored, the rest is sent
    /// again by the next start.
    pub fn settle(&mut self, ledger: &Ledger) -> Result<(), FeedError> {
        self.drain_deliveries();
        if let Some(reason) = &self.refused {
            return Err(FeedError::Refused(reason.clone()));
        }
        if let Some(rewind) = self.rewind_to.take() {
            self.in_flight.retain(|row| *row <= rewind);
            self.produced_through = self.produced_through.min(rewind);
        }
        let through = self.in_flight.first().map_or(self.produced_through, |lowest| lowest - 1);
        if through > self.acknowledged_through {
            ledger.set_feed_published_through(through)?;
            self.acknowledged_through = through;
        }
        Ok(())
    }

    /// Publishes what is left and waits up to `timeout` for every acknowledgement. Returns whether
    /// the feed caught up with the ledger (if not, the next start sends the rest).
    pub fn finish(&mut self, ledger: &Ledger, timeout: Duration) -> Result<bool, FeedError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.publish_new(ledger, &[])?;
            let _ = self.producer.flush(Duration::from_millis(100));
            self.settle(ledger)?;
            let caught_up = self.in_flight.is_empty() && self.producer.in_flight() == 0 && self.rewind_to.is_none();
            if caught_up && ledger.lines_after(self.produced_through, 1)?.is_empty() {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
        }
    }

    /// Highest row acknowledged by the broker.
    pub fn acknowledged_through(&self) -> i64 {
        self.acknowledged_through
    }
}
