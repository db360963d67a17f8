//! What a view holds of the summaries: the newest per machine, and what it skipped and why.

use std::collections::HashMap;

use crate::billing::cost_engine::CostSummary;
use crate::billing::rate_card::RateCard;

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

/// The newest summary of each machine a view has seen.
#[derive(Debug, Default)]
pub struct SummaryBook {
    machines: HashMap<String, CostSummary>,
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
        match self.machines.get(&summary.machine_id) {
            Some(held) if (held.revision, held.computed_at) >= (summary.revision, summary.computed_at) => SummaryOffer::Older,
            _ => {
                self.machines.insert(summary.machine_id.clone(), summary);
                SummaryOffer::Taken
            }
        }
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
