//! The agent: one thread owning the open window, the send policy, the outbox and the transport.
//! Readings and the person's commands arrive on one channel; status goes out on another.

use std::collections::{BTreeSet, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

mod messages;
mod placing;
mod storing;

pub use self::messages::{AgentStatus, Command, DeliverySummary, Input, Problem, Update};
use super::outbox::{Outbox, OutboxError};
use super::policy::SendPolicy;
use super::transport::Transport;
use crate::collect::Reading;
use crate::collect::timeline::Timeline;
use crate::collect::window::{MachineFacts, OpenWindow};
use crate::kafka::LinkState;
use crate::record::{Trigger, UnixMillis, UsageRecord};

/// How the agent runs.
pub struct AgentSettings {
    /// Machine facts repeated in every record.
    pub facts: MachineFacts,
    /// The send policy.
    pub policy: SendPolicy,
    /// Largest outbox (bytes of waiting records) before the oldest windows merge.
    pub outbox_max_bytes: u64,
    /// How long stopping may try to deliver.
    pub stop_grace: Duration,
    /// How often readings come, so a reading that covers much more is known to be late.
    pub sample_interval: Duration,
}

/// Most records offered and not yet reported, so librdkafka's queue never fills.
const MAX_IN_FLIGHT: usize = 5_000;
/// Records held in memory while the outbox cannot be written (full disk); past this the oldest merge.
const MAX_HELD_IN_MEMORY: usize = 10_000;
/// The longest wait between tries of the broker (1 s, 2 s, 4 s, then 8 s).
const LONGEST_BACKOFF_MILLIS: i64 = 8_000;

/// The agent's state; [`Agent::run`] drives it from a channel.
pub struct Agent<T: Transport> {
    settings: AgentSettings,
    outbox: Outbox,
    transport: T,
    window: OpenWindow,
    /// Places each reading's lived time on the record timeline.
    timeline: Timeline,
    /// The last reading from the sampler, whose levels carry the moments after it when stopping.
    last_reading: Option<Reading>,
    next_seq: u64,
    /// Closed windows not yet in the outbox because writing it failed.
    held: VecDeque<UsageRecord>,
    /// Seqs offered and not yet reported.
    in_flight: BTreeSet<u64>,
    /// Highest seq offered in this pass over the outbox.
    offered_through: u64,
    /// Send now: offer everything through this seq even while paused.
    send_through: u64,
    /// When to try the broker again.
    retry_at: Option<UnixMillis>,
    /// When the broker was first found unreachable in the current outage.
    down_since: Option<UnixMillis>,
    failures_in_a_row: u32,
    status: AgentStatus,
}

impl<T: Transport> Agent<T> {
    /// An agent whose first window opens now, or where the last window ended if the wall clock is
    /// behind that (it was stepped back); what waits in the outbox is replayed first.
    pub fn new(settings: AgentSettings, outbox: Outbox, transport: T) -> Result<Self, OutboxError> {
        let next_seq = outbox.next_seq()?;
        let now = UnixMillis::now();
        let start = now.max(outbox.last_end()?);
        let timeline = Timeline::new(start, settings.sample_interval.as_millis() as i64);
        let status = AgentStatus {
            machine_id: settings.facts.machine_id.clone(),
            link: transport.state(),
            paused: settings.policy.is_paused(),
            interval: settings.policy.interval(),
            rules: settings.policy.rules(),
            outbox_depth: outbox.depth(),
            last_delivery: None,
            delivered_total: 0,
            delivered_today: outbox.sent_on_day_of(now),
            window_start: start,
            next_seq,
            problem: None,
            merged_windows: 0,
            threshold_episodes: 0,
            last_threshold: None,
            down_since: None,
            next_try: None,
        };
        Ok(Agent {
            settings,
            outbox,
            transport,
            window: OpenWindow::new(start),
            timeline,
            last_reading: None,
            next_seq,
            held: VecDeque::new(),
            in_flight: BTreeSet::new(),
            offered_through: 0,
            send_through: 0,
            retry_at: None,
            down_since: None,
            failures_in_a_row: 0,
            status,
        })
    }

    /// The current snapshot.
    pub fn status(&self) -> &AgentStatus {
        &self.status
    }

    /// Runs until `Stop` or until every sender is gone; reports readings and status to `updates`.
    pub fn run(mut self, inputs: Receiver<Input>, updates: &dyn Fn(Update)) -> AgentStatus {
        updates(Update::Status(self.status.clone()));
        loop {
            // Taken before the input, so a change a reading makes (an episode) is told too.
            let before = self.status.clone();
            match inputs.recv_timeout(Duration::from_millis(50)) {
                Ok(Input::Reading(reading)) => {
                    let placed = self.on_reading(&reading);
                    updates(Update::Reading(placed));
                }
                Ok(Input::Command(Command::Stop)) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(Input::Command(command)) => self.on_command(command),
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.step(UnixMillis::now());
            if self.status != before {
                updates(Update::Status(self.status.clone()));
            }
        }
        self.stop();
        updates(Update::Status(self.status.clone()));
        self.status
    }

    /// Applies a command.
    pub fn on_command(&mut self, command: Command) {
        match command {
            Command::SendNow => {
                self.close_window(Trigger::Manual);
                self.send_through = self.next_seq.saturating_sub(1);
                self.retry_at = None;
            }
            Command::Pause => self.settings.policy.set_paused(true),
            Command::Resume => {
                self.settings.policy.set_paused(false);
                self.retry_at = None;
            }
            Command::SetInterval(interval) => self.settings.policy.set_interval(interval),
            Command::SetRules(rules) => self.settings.policy.set_rules(rules),
            Command::Stop => self.stop(),
        }
        self.refresh_status();
    }

    /// One pass: store held records, take delivery reports, offer waiting records. (Windows close
    /// as readings arrive, on the record timeline: see [`Agent::on_reading`].)
    pub fn step(&mut self, now: UnixMillis) {
        self.store_held();
        self.take_deliveries(now);
        self.offer_waiting(now);
        // The embedded transport reports at once: take those reports in the same pass.
        self.take_deliveries(now);
        self.refresh_status();
    }

    fn close_window(&mut self, trigger: Trigger) {
        if let Some(record) = self.window.close(self.next_seq, &self.settings.facts, trigger) {
            self.next_seq += 1;
            self.held.push_back(record);
            self.store_held();
        }
    }

    fn take_deliveries(&mut self, now: UnixMillis) {
        let reports = self.transport.deliveries();
        if reports.is_empty() {
            return;
        }
        let mut delivered = Vec::new();
        let mut failure = None;
        for report in reports {
            self.in_flight.remove(&report.tag);
            match report.outcome {
                Ok(()) => delivered.push(report.tag),
                Err(reason) => failure = Some(reason),
            }
        }
        if !delivered.is_empty() {
            if let Err(error) = self.outbox.remove(&delivered, now) {
                // They stay in the outbox and go again; the worker drops the duplicates.
                tracing::error!("removing delivered records from the outbox: {}", crate::errors::chain(&error));
            }
            self.status.delivered_total += delivered.len() as u64;
            self.status.last_delivery = Some(DeliverySummary { at: now, records: delivered.len() as u64 });
            self.failures_in_a_row = 0;
            self.clear_problem(|problem| matches!(problem, Problem::Send(_)));
        }
        if let Some(reason) = failure {
            self.failures_in_a_row += 1;
            // 1 s, 2 s, 4 s, then every 8 s: a broker that comes back is used within seconds.
            let backoff = 500i64 << self.failures_in_a_row.min(4);
            self.retry_at = Some(now.plus_millis(backoff));
            // Start again from the oldest waiting record once everything in flight is reported.
            self.offered_through = 0;
            self.report(Problem::Send(reason));
        }
    }

    fn offer_waiting(&mut self, now: UnixMillis) {
        let may_send = self.settings.policy.may_send() || self.send_through > self.offered_through;
        // A retry further away than the longest backoff means the wall clock was stepped back: due now.
        let waiting_to_retry = self.retry_at.is_some_and(|at| now < at && at.millis_since(now) <= LONGEST_BACKOFF_MILLIS);
        if !may_send || waiting_to_retry {
            return;
        }
        if self.retry_at.is_some() {
            if self.transport.in_flight() > 0 {
                return;
            }
            // Nothing is in flight any more: reports that never came (a replaced producer) never will.
            self.in_flight.clear();
        }
        self.retry_at = None;
        let room = MAX_IN_FLIGHT.saturating_sub(self.in_flight.len());
        if room == 0 || self.offered_through >= self.outbox.last_seq() || self.outbox.depth() == 0 {
            return;
        }
        let waiting = match self.outbox.waiting_after(self.offered_through, room) {
            Ok(waiting) => waiting,
            Err(error) => {
                self.report(Problem::Outbox(crate::errors::chain(&error)));
                return;
            }
        };
        self.clear_problem(|problem| matches!(problem, Problem::Outbox(_)));
        let paused = !self.settings.policy.may_send();
        for item in waiting {
            let seq = item.seq;
            if paused && seq > self.send_through {
                break;
            }
            if self.in_flight.contains(&seq) {
                self.offered_through = seq;
                continue;
            }
            // Marked before it is offered: the outbox bound merges only windows never offered, since
            // an offered one may have reached the broker. Unmarked, it is not offered.
            if let Err(error) = self.outbox.mark_attempted(seq) {
                self.report(Problem::Outbox(crate::errors::chain(&error)));
                self.retry_at = Some(now.plus_millis(1_000));
                break;
            }
            match self.transport.offer(&item.machine_id, seq, &item.payload) {
                Ok(()) => {
                    self.in_flight.insert(seq);
                    self.offered_through = seq;
                }
                Err(super::transport::OfferError::Busy) => break,
                Err(super::transport::OfferError::Failed(reason)) => {
                    self.report(Problem::Send(reason));
                    self.retry_at = Some(now.plus_millis(1_000));
                    break;
                }
            }
        }
    }

    /// Makes `problem` the agent's latest, logging it when it is new.
    fn report(&mut self, problem: Problem) {
        if self.status.problem.as_ref() != Some(&problem) {
            match problem {
                Problem::Send(_) => tracing::warn!("{problem}"),
                Problem::OutboxWrite { .. } | Problem::Outbox(_) => tracing::error!("{problem}"),
            }
        }
        self.status.problem = Some(problem);
    }

    /// Clears the latest problem if it is of the kind `is_over` names.
    fn clear_problem(&mut self, is_over: impl Fn(&Problem) -> bool) {
        if self.status.problem.as_ref().is_some_and(is_over) {
            self.status.problem = None;
        }
    }

    fn refresh_status(&mut self) {
        let depth = self.outbox.depth() + self.held.len() as u64;
        let link = self.transport.state();
        self.note_outage(link, depth);
        let policy = &self.settings.policy;
        if link == LinkState::Down {
            self.status.down_since.get_or_insert_with(UnixMillis::now);
        } else {
            self.status.down_since = None;
        }
        self.status.next_try = self.retry_at.filter(|_| link == LinkState::Down);
        self.status.link = link;
        self.status.paused = policy.is_paused();
        self.status.interval = policy.interval();
        self.status.rules = policy.rules();
        self.status.outbox_depth = depth;
        self.status.window_start = self.window.start();
        self.status.next_seq = self.next_seq;
        self.status.delivered_today = self.outbox.sent_on_day_of(UnixMillis::now());
    }

    /// Says once per outage that the broker cannot be reached and what waits, and once when it
    /// answers again (librdkafka's own retries log at debug after the first).
    fn note_outage(&mut self, link: LinkState, depth: u64) {
        match (link, self.down_since) {
            (LinkState::Down, None) => {
                let now = UnixMillis::now();
                self.down_since = Some(now);
                tracing::warn!(
                    "the broker cannot be reached: {depth} window(s) wait in the outbox so far, kept on disk and sent as soon as it answers"
                );
            }
            (LinkState::Up, Some(since)) => {
                self.down_since = None;
                let minutes = UnixMillis::now().millis_since(since).max(0) as f64 / 60_000.0;
                tracing::info!("the broker answers again after {minutes:.1} min; delivering the {depth} window(s) that waited");
            }
            _ => {}
        }
    }

    /// Closes the window, tries to deliver for the grace period, keeps the rest in the outbox.
    fn stop(&mut self) {
        self.add_tail();
        self.close_window(Trigger::Manual);
        let deadline = std::time::Instant::now() + self.settings.stop_grace;
        let sendable = self.settings.policy.may_send();
        while std::time::Instant::now() < deadline {
            self.store_held();
            if sendable {
                self.offer_waiting(UnixMillis::now());
            }
            self.transport.flush(Duration::from_millis(100));
            self.take_deliveries(UnixMillis::now());
            let waiting = self.outbox.depth();
            if (waiting == 0 || !sendable) && self.in_flight.is_empty() && self.held.is_empty() {
                break;
            }
        }
        self.refresh_status();
        tracing::info!(
            "agent stopped: {} record(s) delivered, {} waiting in the outbox",
            self.status.delivered_total,
            self.status.outbox_depth
        );
    }
}

#[cfg(test)]
mod tests;
