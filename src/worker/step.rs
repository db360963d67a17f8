//! One turn of the worker's consumer thread: receive at most one message, prepare the batch (parse,
//! validate, price) when it is due and hand it to the ledger thread, pause fetching while the ledger
//! refuses writes, then decide whether the worker has been idle long enough to stop.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;

use super::batcher::Batcher;
use super::consumer::{WorkerConsumer, set_paused};
use super::writer::Pipeline;
use super::{WorkerError, WorkerOptions, is_refusal};
use crate::billing::biller::{Prepared, RawMessage};
use crate::billing::rate_card::RateCard;
use crate::kafka::KafkaConfig;

/// How long one poll waits for a message.
const POLL: Duration = Duration::from_millis(20);
/// How long the consumer thread waits for the ledger thread before it looks again, when both hold a
/// full batch: it reads no further ahead than that.
const BACKPRESSURE_WAIT: Duration = Duration::from_millis(1);

/// What the loop does after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// Step again (unless stopped).
    Go,
    /// Idle for `exit_when_idle`, or the ledger thread stopped: stop.
    Stop,
}

/// Everything the consumer thread works on.
pub(super) struct Worker<'a> {
    kafka: &'a KafkaConfig,
    options: &'a WorkerOptions,
    consumer: &'a WorkerConsumer,
    card: RateCard,
    batcher: Batcher,
    /// A prepared batch the ledger thread has no room for yet.
    pending: Option<Prepared>,
    to_writer: SyncSender<Prepared>,
    pipeline: &'a Pipeline,
    paused: bool,
    idle: IdleClock,
    /// When the first message arrived, for the throughput in the last log line.
    pub first_message: Option<Instant>,
}

impl<'a> Worker<'a> {
    pub fn new(
        kafka: &'a KafkaConfig,
        options: &'a WorkerOptions,
        consumer: &'a WorkerConsumer,
        card: RateCard,
        to_writer: SyncSender<Prepared>,
        pipeline: &'a Pipeline,
    ) -> Self {
        Worker {
            kafka,
            options,
            consumer,
            card,
            batcher: Batcher::new(options.batch_size, options.batch_linger),
            pending: None,
            to_writer,
            pipeline,
            paused: false,
            idle: IdleClock { last_activity: Instant::now(), started: false },
            first_message: None,
        }
    }

    /// One turn of the loop.
    pub fn step(&mut self) -> Result<Flow, WorkerError> {
        let held = self.pipeline.held.load(Ordering::SeqCst);
        if held != self.paused {
            set_paused(self.consumer, held);
            self.paused = held;
        }
        if self.pending.is_some() && self.batcher.len() >= self.options.batch_size && !held {
            // The ledger thread is behind: wait for it rather than read further ahead.
            std::thread::sleep(BACKPRESSURE_WAIT);
        } else {
            self.receive()?;
        }
        if self.pending.is_none() && !self.batcher.is_empty() && self.batcher.ready() {
            self.pending = Some(Prepared::new(&self.card, self.batcher.take()));
        }
        if !self.hand_off() {
            return Ok(Flow::Stop);
        }
        if let Some(metrics) = &self.options.metrics {
            metrics.sample_positions(self.consumer);
        }
        if !self.idle.started && self.consumer.context().assigned() {
            self.idle.started = true;
            self.idle.activity();
        }
        let busy = held || !self.batcher.is_empty() || self.pending.is_some() || self.pipeline.in_flight.load(Ordering::SeqCst) > 0;
        self.idle.observe(busy);
        if let Some(idle) = self.options.exit_when_idle
            && !busy
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
                self.first_message.get_or_insert_with(Instant::now);
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

    /// Offers the pending batch to the ledger thread; false when that thread has stopped.
    fn hand_off(&mut self) -> bool {
        let Some(prepared) = self.pending.take() else { return true };
        self.pipeline.in_flight.fetch_add(1, Ordering::SeqCst);
        match self.to_writer.try_send(prepared) {
            Ok(()) => {
                // Handing off is the worker's own work, not time without news.
                self.idle.activity();
                true
            }
            Err(TrySendError::Full(prepared)) => {
                self.pipeline.in_flight.fetch_sub(1, Ordering::SeqCst);
                self.pending = Some(prepared);
                true
            }
            Err(TrySendError::Disconnected(_)) => {
                self.pipeline.in_flight.fetch_sub(1, Ordering::SeqCst);
                false
            }
        }
    }

    /// Hands what is left to the ledger thread (the worker is stopping); dropping `self` closes its input.
    pub fn finish(mut self) {
        // A send fails only when the ledger thread already stopped; its join reports why.
        if let Some(pending) = self.pending.take() {
            let _ = self.to_writer.send(pending);
        }
        if !self.batcher.is_empty() {
            let _ = self.to_writer.send(Prepared::new(&self.card, self.batcher.take()));
        }
    }
}

/// Time without news and without work, counted from the first assignment.
struct IdleClock {
    last_activity: Instant,
    started: bool,
}

impl IdleClock {
    fn activity(&mut self) {
        self.last_activity = Instant::now();
    }

    /// Work still in hand (a batch held by a full disk, one being written) is not idleness: without
    /// this, the moment a long-held batch commits would look like time without news, and the worker
    /// would stop before fetching what waited behind it.
    fn observe(&mut self, busy: bool) {
        if busy {
            self.activity();
        }
    }

    fn expired(&self, idle: Duration) -> bool {
        self.started && self.last_activity.elapsed() >= idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_spent_with_work_in_hand_is_not_idle() {
        let idle = Duration::from_millis(30);
        let mut clock = IdleClock { last_activity: Instant::now(), started: true };
        // A batch held for longer than the idle limit, then written.
        let held_until = Instant::now() + idle * 2;
        while Instant::now() < held_until {
            clock.observe(true);
            std::thread::sleep(Duration::from_millis(5));
        }
        clock.observe(false);
        assert!(!clock.expired(idle), "the hold just ended: the worker must fetch what waited behind it");
        std::thread::sleep(idle);
        clock.observe(false);
        assert!(clock.expired(idle), "idle for the limit with nothing in hand");
    }
}
