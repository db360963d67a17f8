//! The summary publisher every worker runs: it materialises the whole cost feed into a view of its
//! own (deduplicated, as `report --from-feed` does) and, while it leads, publishes the summary of
//! each machine the view changed to the compacted summary topic.
//!
//! One publisher leads at a time: the member of the consumer group `{group_id}-summary` that is
//! assigned partition 0 of the summary topic (it fetches nothing: its partitions stay paused). When
//! it dies or stops, the group gives partition 0 to another worker, whose view is already current
//! (every worker keeps one), so it loads its summaries' history and republishes every machine, which
//! also overwrites anything an old leader wrote late. A view keeps the summary with the highest
//! revision, so such a late write is never shown over a newer one.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::closing::{Closer, ClosingOptions};
use crate::billing::cost_engine::{CostEngine, Refreshed};
use crate::billing::ledger::{Ledger, LedgerError};
use crate::billing::rate_card::RateCard;
use crate::feed::{self, FeedError};
use crate::kafka::{ClientRole, Delivery, KafkaConfig, KafkaSetupError, ReportingProducer, client_config, ensure_compacted_topic};
use crate::record::UnixMillis;

/// How often the leader looks for changed machines: updates within it are coalesced into one
/// summary per machine.
pub const COALESCE: Duration = Duration::from_millis(200);
/// A machine's summary is published at most this often: a machine billed faster (a backlog being
/// worked off) gets one summary a second, not one a pass.
const PER_MACHINE: Duration = Duration::from_secs(1);
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
            let round = Arc::new(AtomicBool::new(false));
            let materialiser = match feed::spawn_materialiser(&kafka, &options.view_path, Arc::clone(&round)) {
                Ok(materialiser) => materialiser,
                Err(error) => {
                    tracing::warn!("summary publisher: cannot start the feed view's thread: {error}; trying again in {}s", RETRY.as_secs());
                    wait_or_stop(&stop, RETRY);
                    continue;
                }
            };
            let outcome = Publisher::new(&kafka, options.clone()).and_then(|mut publisher| {
                let outcome = publisher.run(&stop, &materialiser);
                totals.published += publisher.totals.published;
                totals.terms += publisher.totals.terms;
                outcome
            });
            round.store(true, Ordering::SeqCst);
            let viewed = materialiser.join();
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let reason = match (outcome, viewed) {
                (Err(error), _) | (_, Ok(Err(error))) => crate::errors::chain(&error),
                _ => "the feed view stopped".to_owned(),
            };
            tracing::warn!("summary publisher: {reason}; starting again in {}s", RETRY.as_secs());
            wait_or_stop(&stop, RETRY);
        }
        totals
    })
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
    producer: ReportingProducer,
    deliveries: Receiver<Delivery>,
    /// Machine of each summary in flight, by delivery tag.
    in_flight: HashMap<u64, String>,
    next_tag: u64,
    totals: PublisherTotals,
}

/// The leader's state: the view and what its summaries are computed from.
struct Term {
    view: Ledger,
    engine: CostEngine,
    dirty: BTreeSet<String>,
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
        let (sender, deliveries) = mpsc::channel();
        let producer = ReportingProducer::new(kafka, feed::CONTENT_TYPE, sender)?;
        Ok(Publisher {
            kafka: kafka.clone(),
            closer: options.closing.clone().map(Closer::new),
            options,
            topic,
            election,
            producer,
            deliveries,
            in_flight: HashMap::new(),
            next_tag: 1,
            totals: PublisherTotals::default(),
        })
    }

    /// Runs until `stop` is set or the view's materialiser ends.
    fn run<T>(&mut self, stop: &AtomicBool, materialiser: &JoinHandle<T>) -> Result<(), FeedError> {
        let mut term: Option<Term> = None;
        while !stop.load(Ordering::SeqCst) && !materialiser.is_finished() {
            // Polling keeps the membership; the paused partitions deliver nothing.
            if let Some(Err(error)) = self.election.poll(COALESCE) {
                tracing::warn!("summary election: {error}");
            }
            let leading = self.leads()?;
            match (&mut term, leading) {
                (None, true) => {
                    if let Some(started) = self.start_term()? {
                        self.totals.terms += 1;
                        tracing::info!("summary publisher: leading; republishing every machine");
                        if let Some(closer) = self.closer.as_mut() {
                            closer.start_term();
                        }
                        term = Some(started);
                    }
                }
                (Some(_), false) => {
                    tracing::info!("summary publisher: no longer leading");
                    term = None;
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
        }
        let _ = self.producer.flush(Duration::from_secs(5));
        self.take_deliveries(term.as_mut());
        Ok(())
    }

    /// Whether this member holds partition 0; pauses whatever it was assigned so nothing is fetched.
    fn leads(&self) -> Result<bool, FeedError> {
        let assignment = self.election.assignment()?;
        if assignment.count() > 0 {
            let _ = self.election.pause(&assignment);
        }
        Ok(assignment.elements_for_topic(&self.topic).iter().any(|element| element.partition() == 0))
    }

    /// Opens the view and loads the history; `None` while the view has no schema yet.
    fn start_term(&self) -> Result<Option<Term>, FeedError> {
        let view = match Ledger::open_read_only(&self.options.view_path) {
            Ok(view) => view,
            Err(LedgerError::Missing(_)) => return Ok(None),
            Err(LedgerError::Damaged { detail, .. }) if detail.starts_with("schema version 0") => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let engine = CostEngine::load(&view, self.options.card.clone(), UnixMillis::now())?;
        let dirty = engine.machines().into_iter().collect();
        let now = Instant::now();
        Ok(Some(Term { view, engine, dirty, republished_at: now, sent_at: HashMap::new(), published_at: now }))
    }

    fn publish_changes(&mut self, term: &mut Term) -> Result<(), FeedError> {
        let now = UnixMillis::now();
        let Refreshed { machines: touched, lines } = term.engine.refresh(&term.view, now)?;
        let backlog = lines > touched.len();
        term.dirty.extend(touched);
        if term.republished_at.elapsed() >= REPUBLISH_ALL {
            term.dirty.extend(term.engine.machines());
            term.republished_at = Instant::now();
        }
        if term.dirty.is_empty() || backlog && term.published_at.elapsed() < BACKLOG_HOLD {
            return Ok(());
        }
        let due = |machine: &String| term.sent_at.get(machine).is_none_or(|sent| sent.elapsed() >= PER_MACHINE);
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
                Ok(()) => drop(self.in_flight.insert(tag, summary.machine_id)),
                // A full queue or a refused message: it goes again with the next pass.
                Err(error) => {
                    tracing::warn!("publishing the summary of {}: {error}", summary.machine_id);
                    term.dirty.insert(summary.machine_id);
                }
            }
        }
        Ok(())
    }

    /// Counts acknowledged summaries; a machine whose summary failed is published again.
    fn take_deliveries(&mut self, mut term: Option<&mut Term>) {
        while let Ok(delivery) = self.deliveries.try_recv() {
            let Some(machine) = self.in_flight.remove(&delivery.tag) else { continue };
            match delivery.outcome {
                Ok(()) => self.totals.published += 1,
                Err(reason) => {
                    tracing::warn!("the summary of {machine} was not delivered: {reason}; publishing it again");
                    if let Some(term) = term.as_deref_mut() {
                        term.dirty.insert(machine);
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
