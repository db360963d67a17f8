//! The summary publisher every worker runs: while it leads, or stands by to lead, it materialises
//! the whole cost feed into a view of its own (deduplicated, as `report --from-feed` does); while it
//! leads, it publishes what the view changed: each changed machine's live costs at once, by shard
//! on the live topic (see [`super::live`]), and its full summary on the compacted summary topic at
//! most every five minutes, so that the summary topic's uncompacted tail stays small however often the
//! machines are billed.
//! The other workers keep no view: they only bill and publish, so their work does not grow with
//! the fleet.
//!
//! Roles come from the consumer group `{group_id}-summary` on the summary topic (its members fetch
//! nothing: their partitions stay paused). The member assigned partition 0 leads; the member
//! assigned the last partition, if another, stands by with its view kept current, so that it takes
//! over at once. When the leader dies or stops, the group gives partition 0 to another worker; one
//! without a current view catches up with the feed first (the time is logged), then loads its
//! summaries' history and republishes every machine, which also overwrites anything an old leader
//! wrote late. A view keeps the summary with the highest revision, so such a late write is never
//! shown over a newer one.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::closing::{Closer, ClosingOptions};
use super::live::{LIVE_PARTITIONS, LiveShard, LiveShards};
use crate::billing::cost_engine::{CostEngine, Refreshed};
use crate::billing::ledger::{Ledger, LedgerError};
use crate::billing::rate_card::RateCard;
use crate::feed::{self, FeedError, MaterialiserTotals};
use crate::kafka::{
    ClientRole, Delivery, KafkaConfig, KafkaSetupError, ReportingProducer, client_config, ensure_compacted_topic,
    ensure_keyed_partitions_topic,
};
use crate::record::UnixMillis;

/// How often the leader looks for changed machines: updates within it are coalesced into one
/// summary per machine.
pub const COALESCE: Duration = Duration::from_millis(200);
/// A machine's full summary is published at most this often (its first of a term at once); its
/// live costs carry what changes in between, so only its series and the forecast's path wait.
/// Five minutes keeps a cold reader's uncompacted tail (the summary topic's last 10–25 s) under a
/// tenth of a full summary a machine, however often the machines send.
const FULL_EVERY: Duration = Duration::from_secs(300);
/// While the view works off a backlog (more new lines than machines touched in a pass: no agent
/// sends that fast), summaries wait, but never longer than this.
const BACKLOG_HOLD: Duration = Duration::from_secs(5);
/// How often the leader republishes every machine even without news (the topic is compacted, so
/// this keeps each machine's latest summary recent and the estimate's clock current).
const REPUBLISH_ALL: Duration = Duration::from_secs(600);

/// Where the publisher keeps its view, what it prices tiers with, and how it closes periods.
#[derive(Debug, Clone)]
pub struct PublisherOptions {
    /// The view of the whole cost feed (created if missing), e.g. beside the worker's ledger.
    pub view_path: PathBuf,
    /// The rate card (its graduated tiers).
    pub card: RateCard,
    /// When set, the leader closes the periods whose grace has passed (see [`super::closing`]).
    pub closing: Option<ClosingOptions>,
}

/// What a publisher did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublisherTotals {
    /// Summaries the broker acknowledged.
    pub published: u64,
    /// Live shards the broker acknowledged.
    pub live_published: u64,
    /// Times this publisher became the leader.
    pub terms: u64,
}

/// The view file of a worker whose ledger is `ledger`: `{ledger}.feed-view.db` beside it.
pub fn view_path_for(ledger: &Path) -> PathBuf {
    let mut name = ledger.file_name().map(|name| name.to_os_string()).unwrap_or_default();
    name.push(".feed-view.db");
    ledger.with_file_name(name)
}

/// How long a publisher whose broker or view failed waits before it starts again.
const RETRY: Duration = Duration::from_secs(5);

/// Starts the materialiser of the feed and the publisher, restarted after a failure (the broker
/// away, the summary topic refused) until `stop` is set; returns what they did.
pub fn spawn_publisher(
    kafka: &KafkaConfig,
    options: PublisherOptions,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<PublisherTotals>> {
    let kafka = kafka.clone();
    std::thread::Builder::new().name("summary-publisher".into()).spawn(move || {
        // Summaries follow the view, which follows billing: neither should slow billing down.
        crate::priority::yield_to_billing();
        let mut totals = PublisherTotals::default();
        while !stop.load(Ordering::SeqCst) {
            let outcome = Publisher::new(&kafka, options.clone()).and_then(|mut publisher| {
                let outcome = publisher.run(&stop);
                totals.published += publisher.totals.published;
                totals.live_published += publisher.totals.live_published;
                totals.terms += publisher.totals.terms;
                outcome
            });
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let reason = match outcome {
                Err(error) => crate::errors::chain(&error),
                Ok(()) => "the feed view stopped".to_owned(),
            };
            tracing::warn!("summary publisher: {reason}; starting again in {}s", RETRY.as_secs());
            wait_or_stop(&stop, RETRY);
        }
        totals
    })
}

/// What this worker does for the summaries, from the partitions of the summary topic it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Partition 0: keeps the view and publishes.
    Leader,
    /// The last partition: keeps the view current for a takeover.
    Standby,
    /// Only bills.
    Neither,
}

/// The feed view's thread, while this worker leads or stands by.
struct ViewThread {
    stop: Arc<AtomicBool>,
    caught_up: Arc<AtomicBool>,
    thread: JoinHandle<Result<MaterialiserTotals, FeedError>>,
}

impl ViewThread {
    fn start(kafka: &KafkaConfig, view_path: &Path) -> Result<ViewThread, FeedError> {
        let (stop, caught_up) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let thread = feed::spawn_materialiser(kafka, view_path, Arc::clone(&stop), Arc::clone(&caught_up)).map_err(FeedError::Thread)?;
        Ok(ViewThread { stop, caught_up, thread })
    }

    fn caught_up(&self) -> bool {
        self.caught_up.load(Ordering::SeqCst)
    }

    /// Stops the thread; the view stays on disk and resumes from its offsets if needed again.
    fn stop(self) -> Result<(), FeedError> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)).map(drop)
    }
}

/// Sleeps `wait`, or less if `stop` is set meanwhile.
fn wait_or_stop(stop: &AtomicBool, wait: Duration) {
    let resume_at = Instant::now() + wait;
    while Instant::now() < resume_at && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Publisher {
    kafka: KafkaConfig,
    options: PublisherOptions,
    closer: Option<Closer>,
    topic: String,
    election: BaseConsumer,
    /// The summary topic's partition whose holder stands by (none with one partition).
    standby_partition: i32,
    live_topic: String,
    /// Partitions of the live topic: its shards.
    live_shards: i32,
    producer: ReportingProducer,
    deliveries: Receiver<Delivery>,
    /// What each message in flight carries, by delivery tag.
    in_flight: HashMap<u64, InFlight>,
    next_tag: u64,
    totals: PublisherTotals,
}

/// What a message in flight carries.
enum InFlight {
    /// A machine's summary.
    Summary(String),
    /// A shard of live costs.
    Live(i32),
}

/// The leader's state: the view and what its summaries are computed from.
struct Term {
    view: Ledger,
    engine: CostEngine,
    /// Machines whose full summary is to be published.
    dirty: BTreeSet<String>,
    live: LiveShards,
    republished_at: Instant,
    /// When each machine's summary was last sent.
    sent_at: HashMap<String, Instant>,
    /// When the last pass published anything.
    published_at: Instant,
}

impl Publisher {
    fn new(kafka: &KafkaConfig, options: PublisherOptions) -> Result<Publisher, FeedError> {
        let topic = kafka.summary_topic();
        ensure_compacted_topic(kafka, &topic)?;
        let mut config = client_config(kafka, ClientRole::Consumer)?;
        config.set("group.id", format!("{}-summary", kafka.group_id)).set("enable.auto.commit", "false");
        let election: BaseConsumer =
            config.create().map_err(|source| KafkaSetupError::kafka("creating the summary election consumer", source))?;
        election.subscribe(&[&topic])?;
        let partitions_of = |topic: &str| -> Result<i32, FeedError> {
            let metadata = election.fetch_metadata(Some(topic), Duration::from_secs(10))?;
            let partitions = metadata.topics().iter().map(|found| found.partitions().len()).max().unwrap_or(1);
            Ok(i32::try_from(partitions).unwrap_or(1).max(1))
        };
        let standby_partition = partitions_of(&topic)? - 1;
        let live_topic = kafka.live_topic();
        ensure_keyed_partitions_topic(kafka, &live_topic, LIVE_PARTITIONS)?;
        let live_shards = partitions_of(&live_topic)?;
        let (sender, deliveries) = mpsc::channel();
        let producer = ReportingProducer::new(kafka, feed::CONTENT_TYPE, sender)?;
        Ok(Publisher {
            kafka: kafka.clone(),
            closer: options.closing.clone().map(Closer::new),
            options,
            topic,
            election,
            standby_partition,
            live_topic,
            live_shards,
            producer,
            deliveries,
            in_flight: HashMap::new(),
            next_tag: 1,
            totals: PublisherTotals::default(),
        })
    }

    /// Runs until `stop` is set or the view's thread ends.
    fn run(&mut self, stop: &AtomicBool) -> Result<(), FeedError> {
        let mut term: Option<Term> = None;
        let mut view: Option<ViewThread> = None;
        // None until the first pass, so a restarted worker always logs its role, Neither included.
        let mut role: Option<Role> = None;
        let outcome = loop {
            if stop.load(Ordering::SeqCst) {
                break Ok(());
            }
            if let Err(error) = self.turn(&mut role, &mut view, &mut term) {
                break Err(error);
            }
            if view.as_ref().is_some_and(|view| view.thread.is_finished()) {
                break Ok(());
            }
        };
        let _ = self.producer.flush(Duration::from_secs(5));
        self.take_deliveries(term.as_mut());
        let stopped = view.map_or(Ok(()), ViewThread::stop);
        outcome.and(stopped)
    }

    /// One pass: keeps the membership, follows the role, and publishes while leading.
    fn turn(&mut self, role: &mut Option<Role>, view: &mut Option<ViewThread>, term: &mut Option<Term>) -> Result<(), FeedError> {
        // Polling keeps the membership; the paused partitions deliver nothing.
        if let Some(Err(error)) = self.election.poll(COALESCE) {
            tracing::warn!("summary election: {error}");
        }
        let now = self.role()?;
        if *role != Some(now) {
            match now {
                Role::Leader if view.as_ref().is_some_and(ViewThread::caught_up) => tracing::info!("summary publisher: leading"),
                Role::Leader => tracing::info!("summary publisher: leading once the feed view has caught up"),
                Role::Standby => tracing::info!("summary publisher: standing by, keeping the feed view current for a takeover"),
                Role::Neither => tracing::info!("summary publisher: neither leading nor standing by; keeping no feed view"),
            }
            *role = Some(now);
        }
        match (now, view.is_some()) {
            (Role::Leader | Role::Standby, false) => *view = Some(ViewThread::start(&self.kafka, &self.options.view_path)?),
            (Role::Neither, true) => {
                if let Some(stopped) = view.take() {
                    stopped.stop()?;
                }
            }
            _ => {}
        }
        let leading = now == Role::Leader && view.as_ref().is_some_and(ViewThread::caught_up);
        match (term.is_some(), leading) {
            (false, true) => {
                if let Some(started) = self.start_term()? {
                    self.totals.terms += 1;
                    tracing::info!("summary publisher: leading; republishing every machine");
                    if let Some(closer) = self.closer.as_mut() {
                        closer.start_term();
                    }
                    *term = Some(started);
                }
            }
            (true, false) => {
                tracing::info!("summary publisher: no longer leading");
                *term = None;
            }
            _ => {}
        }
        self.take_deliveries(term.as_mut());
        if let Some(term) = term.as_mut() {
            self.publish_changes(term)?;
            if let Some(closer) = self.closer.as_mut() {
                closer.check_if_due(&self.kafka, &self.election, &term.view, &self.options.card);
            }
        }
        Ok(())
    }

    /// What this member holds; pauses whatever it was assigned so nothing is fetched.
    fn role(&self) -> Result<Role, FeedError> {
        let assignment = self.election.assignment()?;
        if assignment.count() > 0 {
            let _ = self.election.pause(&assignment);
        }
        let held: Vec<i32> = assignment.elements_for_topic(&self.topic).iter().map(|element| element.partition()).collect();
        Ok(if held.contains(&0) {
            Role::Leader
        } else if held.contains(&self.standby_partition) {
            Role::Standby
        } else {
            Role::Neither
        })
    }

    /// Opens the view and loads the history; `None` while the view has no schema yet.
    fn start_term(&self) -> Result<Option<Term>, FeedError> {
        let view = match Ledger::open_read_only(&self.options.view_path) {
            Ok(view) => view,
            Err(LedgerError::Missing(_)) => return Ok(None),
            Err(LedgerError::Damaged { detail, .. }) if detail.starts_with("schema version 0") => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let at = UnixMillis::now();
        let mut engine = CostEngine::load(&view, self.options.card.clone(), at)?;
        let machines = engine.machines();
        let mut live = LiveShards::new(self.live_shards);
        live.update(engine.live_costs(&view, &machines, at)?);
        let now = Instant::now();
        let dirty = machines.into_iter().collect();
        Ok(Some(Term { view, engine, dirty, live, republished_at: now, sent_at: HashMap::new(), published_at: now }))
    }

    fn publish_changes(&mut self, term: &mut Term) -> Result<(), FeedError> {
        let now = UnixMillis::now();
        let Refreshed { machines: touched, lines } = term.engine.refresh(&term.view, now)?;
        let backlog = lines > touched.len();
        term.live.update(term.engine.live_costs(&term.view, &touched, now)?);
        self.send_live(term, now);
        term.dirty.extend(touched);
        if term.republished_at.elapsed() >= REPUBLISH_ALL {
            term.dirty.extend(term.engine.machines());
            term.republished_at = Instant::now();
        }
        if term.dirty.is_empty() || backlog && term.published_at.elapsed() < BACKLOG_HOLD {
            return Ok(());
        }
        let due = |machine: &String| term.sent_at.get(machine).is_none_or(|sent| sent.elapsed() >= FULL_EVERY);
        let machines: Vec<String> = term.dirty.iter().filter(|machine| due(machine)).cloned().collect();
        if machines.is_empty() {
            return Ok(());
        }
        let sent = Instant::now();
        for machine in &machines {
            term.dirty.remove(machine);
            term.sent_at.insert(machine.clone(), sent);
        }
        term.published_at = sent;
        for summary in term.engine.summaries(&term.view, &machines, now)? {
            let tag = self.next_tag;
            self.next_tag += 1;
            match self.producer.send(&self.topic, &summary.machine_id, &summary.encode(), tag) {
                Ok(()) => drop(self.in_flight.insert(tag, InFlight::Summary(summary.machine_id))),
                // A full queue or a refused message: it goes again with the next pass.
                Err(error) => {
                    tracing::warn!("publishing the summary of {}: {error}", summary.machine_id);
                    term.dirty.insert(summary.machine_id);
                }
            }
        }
        Ok(())
    }

    /// Sends the live shards that are due.
    fn send_live(&mut self, term: &mut Term, now: UnixMillis) {
        for shard in term.live.due(now) {
            let tag = self.next_tag;
            self.next_tag += 1;
            match self.producer.send_to(&self.live_topic, shard.shard, &LiveShard::key(shard.shard), &shard.encode(), tag) {
                Ok(()) => drop(self.in_flight.insert(tag, InFlight::Live(shard.shard))),
                Err(error) => {
                    tracing::warn!("publishing live shard {} ({} machines): {error}", shard.shard, shard.machines.len());
                    term.live.resend(shard.shard);
                }
            }
        }
    }

    /// Counts acknowledged messages; what failed is published again.
    fn take_deliveries(&mut self, mut term: Option<&mut Term>) {
        while let Ok(delivery) = self.deliveries.try_recv() {
            let Some(sent) = self.in_flight.remove(&delivery.tag) else { continue };
            match (delivery.outcome, sent) {
                (Ok(()), InFlight::Summary(_)) => self.totals.published += 1,
                (Ok(()), InFlight::Live(_)) => self.totals.live_published += 1,
                (Err(reason), InFlight::Summary(machine)) => {
                    tracing::warn!("the summary of {machine} was not delivered: {reason}; publishing it again");
                    if let Some(term) = term.as_deref_mut() {
                        term.dirty.insert(machine);
                    }
                }
                (Err(reason), InFlight::Live(shard)) => {
                    tracing::warn!("live shard {shard} was not delivered: {reason}; publishing it again");
                    if let Some(term) = term.as_deref_mut() {
                        term.live.resend(shard);
                    }
                }
            }
        }
    }
}

/// `PublisherOptions` for a worker: the view beside its ledger; with `closing`, its leader closes
/// periods.
pub fn options_for(ledger: &Path, card: RateCard, closing: Option<ClosingOptions>) -> PublisherOptions {
    PublisherOptions { view_path: view_path_for(ledger), card, closing }
}
