//! The desktop app's cost reader thread. It reads the ledger when the embedded agent has billed
//! into it (and every 10 s, for the projection and for any other writer), or the cost feed file
//! every 500 ms in Kafka mode, and sends the views per-machine costs and the selected machine's
//! cost series, only when they changed: a billed record shows at once without repainting an idle
//! window.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use super::Settings;
use super::supervisor::{Event, FEED_VIEW_FILE, Notifier};
use crate::billing::ledger::{Ledger, LedgerError};
use crate::billing::period::{self, MachineCost};
use crate::billing::period_tiers::PeriodTiers;
use crate::billing::rate_card::RateCard;
use crate::billing::tiers;
use crate::record::UnixMillis;

/// How often files written by another thread or process (the cost feed view) are read.
pub const POLL: Duration = Duration::from_millis(500);
/// Send at least this often, so the projection (which moves with the clock) stays current.
const REFRESH_ANYWAY: Duration = Duration::from_secs(10);

/// The span of the cost-over-time chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CostRange {
    /// The last hour, per minute.
    #[default]
    LastHour,
    /// The last day, per 15 minutes.
    LastDay,
    /// The billing period so far, per day.
    Period,
}

impl CostRange {
    /// Every range, in the order offered.
    pub const ALL: [CostRange; 3] = [CostRange::LastHour, CostRange::LastDay, CostRange::Period];

    /// `[from, to)` and the bucket length for `now`.
    pub fn span(self, now: UnixMillis) -> (UnixMillis, UnixMillis, i64) {
        match self {
            CostRange::LastHour => (now.plus_millis(-3_600_000), now.plus_millis(1), 60_000),
            CostRange::LastDay => (now.plus_millis(-86_400_000), now.plus_millis(1), 900_000),
            CostRange::Period => (period::month_of(now).0, now.plus_millis(1), 86_400_000),
        }
    }

    /// The words on its button.
    pub fn label(self) -> &'static str {
        match self {
            CostRange::LastHour => "Last hour",
            CostRange::LastDay => "Last day",
            CostRange::Period => "Period to date",
        }
    }
}

/// The machine and span of the cost chart, as the person chose them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CostSelection {
    /// The machine whose series is wanted.
    pub machine: Option<String>,
    /// The series' span.
    pub range: CostRange,
}

/// What the views want read: shared with the reader thread.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CostQuery {
    /// Ledger-schema files to read, in order of preference.
    pub sources: Vec<PathBuf>,
    /// The rate card whose graduated tiers apply (`worker.rate_card`; none: the built-in card).
    pub rate_card: Option<PathBuf>,
    /// The reader is woken when the sources change (embedded mode), so it need not poll them.
    pub woken_on_change: bool,
    /// The chart's machine and span.
    pub selection: CostSelection,
}

impl CostQuery {
    /// Takes the sources and the rate card from `settings`, keeping the selection.
    pub fn follow(&mut self, settings: &Settings) {
        self.sources = CostQuery::sources_for(settings);
        self.rate_card = settings.config.worker.rate_card.clone();
        self.woken_on_change = settings.embedded();
    }

    /// The files that hold costs for `settings`: the local ledger in embedded mode; in Kafka mode the
    /// materialised cost feed (`feed.db`) and, with an in-process worker, the local ledger too.
    pub fn sources_for(settings: &Settings) -> Vec<PathBuf> {
        if settings.embedded() {
            return vec![settings.ledger_path()];
        }
        let mut sources = vec![settings.data_dir.join(FEED_VIEW_FILE)];
        if settings.config.worker.embedded {
            sources.push(settings.ledger_path());
        }
        sources
    }
}

/// Where the costs stand.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum CostState {
    /// Nothing read yet.
    #[default]
    Loading,
    /// No file holds a billed record yet.
    NoBills,
    /// Costs were read.
    Ready,
    /// A file could not be read; the message names it.
    Failed(String),
}

/// One reading of the costs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CostSnapshot {
    /// Where the costs stand.
    pub state: CostState,
    /// One row per machine, ordered by machine id.
    pub machines: Vec<MachineCost>,
    /// The selection the series was read for.
    pub selection: CostSelection,
    /// `(bucket start, exact cost)` for the selected machine.
    pub series: Vec<(UnixMillis, Decimal)>,
    /// When it was read.
    pub read_at: UnixMillis,
}

impl CostSnapshot {
    /// Same bills, ignoring the read time and the clock-driven projection.
    fn same_bills(&self, other: &CostSnapshot) -> bool {
        let key = |cost: &MachineCost| (cost.machine_id.clone(), cost.period, cost.today, cost.records, cost.gaps, cost.last_seen);
        self.state == other.state
            && self.selection == other.selection
            && self.series == other.series
            && self.machines.iter().map(key).eq(other.machines.iter().map(key))
    }
}

/// Starts the reader; it stops when `wake`'s sender is dropped. A message on `wake` reads at once.
pub fn spawn(query: Arc<Mutex<CostQuery>>, wake: Receiver<()>, notifier: Notifier) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("app-costs".into())
        .spawn(move || {
            let mut open: HashMap<PathBuf, Source> = HashMap::new();
            let mut card = LoadedCard::default();
            let mut last_sent: Option<(CostSnapshot, Instant)> = None;
            loop {
                let wanted = query.lock().map(|query| query.clone()).unwrap_or_default();
                open.retain(|path, _| wanted.sources.contains(path));
                card.follow(wanted.rate_card.as_deref());
                let snapshot = read(&wanted, &mut open, &card, UnixMillis::now());
                let stale = last_sent.as_ref().is_none_or(|(sent, at)| !sent.same_bills(&snapshot) || at.elapsed() >= REFRESH_ANYWAY);
                if stale {
                    if !notifier.send(Event::Costs(snapshot.clone())) {
                        return;
                    }
                    last_sent = Some((snapshot, Instant::now()));
                }
                let idle = if wanted.woken_on_change { REFRESH_ANYWAY } else { POLL };
                match wake.recv_timeout(idle) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        })
        .expect("spawning the cost reader thread")
}

/// An open ledger-schema file and the running tier sums over it.
struct Source {
    ledger: Ledger,
    tiers: PeriodTiers,
}

/// The rate card of the query, loaded again only when its path changes.
#[derive(Default)]
struct LoadedCard {
    path: Option<Option<PathBuf>>,
    card: Option<Result<RateCard, String>>,
}

impl LoadedCard {
    fn follow(&mut self, path: Option<&std::path::Path>) {
        if self.path.as_ref().is_some_and(|loaded| loaded.as_deref() == path) {
            return;
        }
        self.card = Some(RateCard::load(path).map_err(|error| error.to_string()));
        self.path = Some(path.map(PathBuf::from));
    }
}

/// Reads every source; a machine found in several keeps the one with the most records.
fn read(query: &CostQuery, open: &mut HashMap<PathBuf, Source>, card: &LoadedCard, now: UnixMillis) -> CostSnapshot {
    let mut machines: Vec<(MachineCost, PathBuf)> = Vec::new();
    let loaded = card.card.as_ref().and_then(|loaded| loaded.as_ref().ok());
    let mut failure = match &card.card {
        Some(Err(error)) => Some(format!("the rate card could not be read, so graduated tiers are left out: {error}")),
        _ => None,
    };
    for path in &query.sources {
        if !open.contains_key(path) {
            match Ledger::open_read_only(path) {
                Ok(ledger) => drop(open.insert(path.clone(), Source { ledger, tiers: PeriodTiers::new() })),
                // Until the first record is billed there is no file (or no schema yet): not an error.
                Err(LedgerError::Missing(_)) => continue,
                Err(LedgerError::Damaged { detail, .. }) if detail.starts_with("schema version 0") => continue,
                Err(error) => {
                    failure = Some(error.to_string());
                    continue;
                }
            }
        }
        let source = open.get_mut(path).expect("opened above");
        match costs_with_tiers(source, loaded, now) {
            Ok(costs) => {
                for cost in costs {
                    match machines.iter_mut().find(|(known, _)| known.machine_id == cost.machine_id) {
                        Some(known) if known.0.records >= cost.records => {}
                        Some(known) => *known = (cost, path.clone()),
                        None => machines.push((cost, path.clone())),
                    }
                }
            }
            Err(error) => failure = Some(error.to_string()),
        }
    }
    machines.sort_by(|a, b| a.0.machine_id.cmp(&b.0.machine_id));
    let (from, to, bucket) = query.selection.range.span(now);
    let series_source = query.selection.machine.as_ref().and_then(|machine| machines.iter().find(|(cost, _)| &cost.machine_id == machine));
    let series = match series_source.and_then(|(cost, path)| open.get(path).map(|source| (cost, &source.ledger))) {
        Some((cost, ledger)) => period::cost_series(ledger, &cost.machine_id, from, to, bucket).unwrap_or_else(|error| {
            failure = Some(error.to_string());
            Vec::new()
        }),
        None => Vec::new(),
    };
    let state = match failure {
        Some(message) => CostState::Failed(message),
        None if machines.is_empty() => CostState::NoBills,
        None => CostState::Ready,
    };
    CostSnapshot {
        state,
        machines: machines.into_iter().map(|(cost, _)| cost).collect(),
        selection: query.selection.clone(),
        series,
        read_at: now,
    }
}

/// Period costs of one source, with the card's tier adjustments when a card is loaded.
fn costs_with_tiers(source: &mut Source, card: Option<&RateCard>, now: UnixMillis) -> Result<Vec<MachineCost>, LedgerError> {
    let mut costs = period::machine_costs(&source.ledger, now)?;
    if let Some(card) = card {
        source.tiers.refresh(&source.ledger, card, now)?;
        tiers::apply_to_costs(&mut costs, &source.tiers.adjustments(&source.ledger, card, now)?);
    }
    Ok(costs)
}
