//! One turn of the worker's loop: receive at most one message, write the batch when it is due (or
//! hold it while the ledger refuses writes), then decide whether the worker has been idle long enough
//! to stop.

use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;

use super::batcher::Batcher;
use super::consumer::{WorkerConsumer, commit_for_lag, set_paused};
use super::retry::LedgerRetry;
use super::{Throughput, WorkerError, WorkerOptions, is_refusal};
use crate::billing::after_commit::AfterCommit;
use crate::billing::biller::{Billed, Biller, BillerTotals, RawMessage};
use crate::billing::feed::FeedError;
use crate::billing::ledger::LedgerError;
use crate::kafka::KafkaConfig;

/// How long one poll waits for a message.
const POLL: Duration = Duration::from_millis(20);

/// What the loop does after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// Step again (unless stopped).
    Go,
    /// Idle for `exit_when_idle`: stop.
    Stop,
}

/// Everything the loop works on.
pub(super) struct Worker<'a> {
    kafka: &'a KafkaConfig,
    options: &'a WorkerOptions,
    consumer: WorkerConsumer,
    biller: Biller,
    after_commit: AfterCommit,
    batcher: Batcher,
    retry: LedgerRetry,
    idle: IdleClock,
    throughput: Throughput,
}

impl<'a> Worker<'a> {
    pub fn new(
        kafka: &'a KafkaConfig,
        options: &'a WorkerOptions,
        consumer: WorkerConsumer,
        biller: Biller,
        after_commit: AfterCommit,
    ) -> Self {
        Worker {
            kafka,
            options,
            consumer,
            biller,
            after_commit,
            batcher: Batcher::new(options.batch_size, options.batch_linger),
            retry: LedgerRetry::default(),
            idle: IdleClock { last_activity: Instant::now(), started: false },
            throughput: Throughput::default(),
        }
    }

    /// One turn of the loop.
    pub fn step(&mut self) -> Result<Flow, WorkerError> {
        self.receive()?;
        if !self.batcher.is_empty() && self.retry.write_due(self.batcher.ready()) && !self.write_batch()? {
            // Held: the retry comes on a later step.
            return Ok(Flow::Go);
        }
        if let Some(metrics) = &self.options.metrics {
            metrics.sample_positions(&self.consumer);
        }
        if !self.idle.started && self.consumer.context().assigned() {
            self.idle.started = true;
            self.idle.activity();
        }
        if let Some(idle) = self.options.exit_when_idle
            && self.batcher.is_empty()
            && self.idle.expired(idle)
        {
            tracing::info!("nothing arrived for {idle:?}; stopping");
            return Ok(Flow::Stop);
        }
        Ok(Flow::Go)
    }

    fn receive(&mut self) -> Result<(), WorkerError> {
        match self.consumer.poll(POLL) {
            Some(Ok(message)) => {
                self.throughput.first_message.get_or_insert_with(Instant::now);
                self.batcher.push(RawMessage {
                    topic: message.topic().to_owned(),
                    partition: message.partition(),
                    offset: message.offset(),
                    payload: message.payload().map(<[u8]>::to_vec),
                });
                self.idle.activity();
            }
            Some(Err(error)) if is_refusal(&error) => {
                let (topic, group, costs) = (&self.kafka.topic, &self.kafka.group_id, &self.kafka.cost_topic);
                return Err(WorkerError::Refused(format!(
                    "{error}; its principal needs READ and DESCRIBE on topic {topic}, READ on group {group}, \
                     and WRITE and DESCRIBE on the cost topic {costs}"
                )));
            }
            Some(Err(error)) => tracing::warn!("consumer: {error}"),
            None => {}
        }
        Ok(())
    }

    /// Bills the batch and does what follows a commit; false when the ledger refused it (then it is
    /// held, unbilled and unacknowledged, and consumption paused).
    fn write_batch(&mut self) -> Result<bool, WorkerError> {
        let began = Instant::now();
        let billed = match bill(&self.consumer, &mut self.biller, self.batcher.messages()) {
            Ok(billed) => billed,
            Err(error) if error.is_storage_fault() => {
                self.retry.refused(&error, self.batcher.len(), self.biller.ledger().path());
                set_paused(&self.consumer, true);
                return Ok(false);
            }
            Err(other) => return Err(other.into()),
        };
        if let Some(held_for) = self.retry.written() {
            set_paused(&self.consumer, false);
            tracing::info!("ledger writable again after {held_for:.1?}; billing resumed");
        }
        self.throughput.committed(self.options, self.biller.totals(), began);
        match self.after_commit.on_commit(&mut self.biller, billed) {
            // The feed resumes from its cursor in the ledger, so a cursor not written now is caught up later.
            Err(FeedError::Ledger(error)) if error.is_storage_fault() => tracing::warn!("cost feed: {error}; catching up later"),
            other => other?,
        }
        self.batcher.clear();
        // Publishing can take a while; that time is the worker's own, not time without news.
        self.idle.activity();
        Ok(true)
    }

    /// Bills what is left (once: the worker is stopping), lets the feed finish, and logs the totals.
    pub fn finish(mut self) -> Result<BillerTotals, WorkerError> {
        if !self.batcher.is_empty() {
            let began = Instant::now();
            bill(&self.consumer, &mut self.biller, self.batcher.messages())?;
            self.throughput.committed(self.options, self.biller.totals(), began);
        }
        self.after_commit.finish(&mut self.biller)?;
        let totals = self.biller.totals();
        tracing::info!(
            "worker stopped: {} billed, {} duplicates, {} quarantined{}",
            totals.billed,
            totals.duplicates,
            totals.quarantined,
            self.throughput.describe(totals.billed + totals.duplicates + totals.quarantined)
        );
        Ok(totals)
    }
}

/// Bills `messages` in one ledger transaction, then tells Kafka their offsets.
fn bill<'m>(consumer: &WorkerConsumer, biller: &mut Biller, messages: &'m [RawMessage]) -> Result<Billed<'m>, LedgerError> {
    let billed = biller.bill(messages)?;
    tracing::debug!("committed batch: {:?}", billed.outcome);
    commit_for_lag(consumer, messages);
    Ok(billed)
}

/// Time without news, counted from the first assignment.
struct IdleClock {
    last_activity: Instant,
    started: bool,
}

impl IdleClock {
    fn activity(&mut self) {
        self.last_activity = Instant::now();
    }

    fn expired(&self, idle: Duration) -> bool {
        self.started && self.last_activity.elapsed() >= idle
    }
}
