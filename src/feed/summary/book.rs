//! What a view holds of the summaries: the newest per machine, with the newest live figures laid
//! over it ([`CostSummary::with_live`]), and what it skipped and why.

use std::collections::HashMap;

use super::live::LiveShard;
use crate::billing::cost_engine::{CostSummary, LiveCost};
use crate::billing::rate_card::RateCard;
use crate::record::UnixMillis;

/// How many skipped messages keep their reason (the count goes on).
const REASONS_KEPT: usize = 20;

/// The outcome of offering a summary message to a [`SummaryBook`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SummaryOffer {
    /// It is the newest for its machine now.
    Taken,
    /// The book holds a newer (or the same) revision of that machine.
    Older,
    /// It did not parse, or names a card version this view does not know.
    Skipped(String),
}

/// The newest summary of each machine a view has seen, with its newest live figures.
#[derive(Debug, Default)]
pub struct SummaryBook {
    /// What is shown: the newest summary with newer live figures laid over it.
    machines: HashMap<String, CostSummary>,
    /// Revision and time of the newest summary itself (the one shown may carry newer figures).
    summary_versions: HashMap<String, (u64, UnixMillis)>,
    /// The newest live figures of each machine, also of one whose summary has not come yet.
    live: HashMap<String, LiveCost>,
    skipped: u64,
    reasons: Vec<String>,
}

impl SummaryBook {
    /// An empty book.
    pub fn new() -> SummaryBook {
        SummaryBook::default()
    }

    /// Takes `bytes` if they are a summary newer than the one held for its machine. `card`, when
    /// given, must know the summary's card version.
    pub fn offer(&mut self, bytes: &[u8], card: Option<&RateCard>) -> SummaryOffer {
        let summary = match CostSummary::parse(bytes) {
            Ok(summary) => summary,
            Err(error) => return self.skip(error.to_string()),
        };
        if let Some(card) = card
            && card.version_named(&summary.card_version).is_none()
        {
            let reason = format!("{}: card version {:?} is not in this rate card", summary.machine_id, summary.card_version);
            return self.skip(reason);
        }
        self.take(summary)
    }

    /// Takes a summary already checked, if it is newer than the one held.
    pub fn take(&mut self, summary: CostSummary) -> SummaryOffer {
        let version = (summary.revision, summary.computed_at);
        if self.summary_versions.get(&summary.machine_id).is_some_and(|held| *held >= version) {
            return SummaryOffer::Older;
        }
        self.summary_versions.insert(summary.machine_id.clone(), version);
        let shown = match self.live.get(&summary.machine_id) {
            Some(live) => summary.with_live(live),
            None => summary,
        };
        self.machines.insert(shown.machine_id.clone(), shown);
        SummaryOffer::Taken
    }

    /// Takes the live figures in `bytes` (a [`LiveShard`]) that are newer than those held; returns
    /// how many machines it moved.
    pub fn offer_live(&mut self, bytes: &[u8]) -> usize {
        match LiveShard::parse(bytes) {
            Ok(shard) => shard.machines.into_iter().filter(|live| self.take_live(live.clone())).count(),
            Err(reason) => {
                self.skip(reason);
                0
            }
        }
    }

    /// Takes live figures already checked, if newer than those held; whether the machine moved.
    pub fn take_live(&mut self, live: LiveCost) -> bool {
        let newer = |held: &LiveCost| (live.revision, live.computed_at) > (held.revision, held.computed_at);
        if !self.live.get(&live.machine_id).is_none_or(newer) {
            return false;
        }
        let moved = match self.machines.get_mut(&live.machine_id) {
            Some(shown) if live.is_newer_than(shown) => {
                *shown = shown.with_live(&live);
                true
            }
            _ => false,
        };
        self.live.insert(live.machine_id.clone(), live);
        moved
    }

    fn skip(&mut self, reason: String) -> SummaryOffer {
        self.skipped += 1;
        if self.reasons.len() == REASONS_KEPT {
            self.reasons.remove(0);
        }
        self.reasons.push(reason.clone());
        SummaryOffer::Skipped(reason)
    }

    /// The summary held for `machine`.
    pub fn get(&self, machine: &str) -> Option<&CostSummary> {
        self.machines.get(machine)
    }

    /// Every summary held, in no order.
    pub fn summaries(&self) -> impl Iterator<Item = &CostSummary> {
        self.machines.values()
    }

    /// Machines held.
    pub fn len(&self) -> usize {
        self.machines.len()
    }

    /// Whether no machine is held.
    pub fn is_empty(&self) -> bool {
        self.machines.is_empty()
    }

    /// Messages skipped so far, and the latest reasons.
    pub fn skipped(&self) -> (u64, &[String]) {
        (self.skipped, &self.reasons)
    }
}
