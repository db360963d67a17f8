//! Closing periods: what has been issued ([`Issued`]), where it is kept ([`StatementStore`]), and
//! the one procedure that turns drafts into numbered final statements ([`close_period`]).
//!
//! Numbers are gapless per issuer and follow the order of close: a closer takes the store's right
//! to issue first (the Kafka store fences any other closer with its transactional id), reads what
//! was issued inside that right, numbers after the highest, and commits each period's statements
//! and its closed mark at once. A closer that loses the right mid-close commits nothing.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;

use super::accounts::Account;
use super::compute::{ComputeError, Sources, drafts};
use super::period::Period;
use super::seqs::SeqSet;
use super::{Statement, Status};
use crate::record::UnixMillis;

/// What a period's statements already billed for one machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Billed {
    /// The account its line was on, if it had one.
    pub account: Option<Account>,
    /// The seqs billed: the final statement's line and every adjustment since.
    pub seqs: SeqSet,
    /// The exact amount billed.
    pub exact: Decimal,
}

/// The final statements issued so far and the periods closed.
#[derive(Debug, Clone, Default)]
pub struct Issued {
    statements: BTreeMap<u64, Statement>,
    closed: BTreeSet<Period>,
    billed: BTreeMap<(Period, String), Billed>,
}

impl Issued {
    /// Nothing issued.
    pub fn new() -> Issued {
        Issued::default()
    }

    /// Takes in a final statement (a duplicate of one held changes nothing).
    pub fn add(&mut self, statement: Statement) {
        let Some(number) = statement.number.filter(|_| statement.status == Status::Final) else { return };
        if self.statements.contains_key(&number) {
            return;
        }
        for line in &statement.machines {
            let billed = self.billed.entry((statement.period, line.machine_id.clone())).or_default();
            billed.account = Some(statement.account.clone());
            billed.seqs.extend(&line.seqs);
            billed.exact += line.exact_total;
        }
        for line in &statement.adjustments {
            let billed = self.billed.entry((line.period, line.machine_id.clone())).or_default();
            billed.account.get_or_insert_with(|| statement.account.clone());
            billed.seqs.extend(&line.seqs);
            billed.exact += line.exact_amount;
        }
        self.statements.insert(number, statement);
    }

    /// Marks `period` closed.
    pub fn mark_closed(&mut self, period: Period) {
        self.closed.insert(period);
    }

    /// Whether `period` is closed.
    pub fn is_closed(&self, period: Period) -> bool {
        self.closed.contains(&period)
    }

    /// The closed periods, oldest first.
    pub fn closed_periods(&self) -> impl Iterator<Item = Period> + '_ {
        self.closed.iter().copied()
    }

    /// What was billed for `machine` in `period`.
    pub fn billed(&self, period: Period, machine: &str) -> Billed {
        self.billed.get(&(period, machine.to_owned())).cloned().unwrap_or_default()
    }

    /// Whether a statement named `machine`'s record `seq` of `period` (on a line or an adjustment).
    pub fn names(&self, period: Period, machine: &str, seq: u64) -> bool {
        self.billed.get(&(period, machine.to_owned())).is_some_and(|billed| billed.seqs.contains(seq))
    }

    /// The statements numbered below `number`, and the periods closed before `number`'s period:
    /// what was issued when `number` was.
    pub fn before(&self, number: u64) -> Issued {
        let mut before = Issued::new();
        let Some(statement) = self.statements.get(&number) else { return before };
        self.statements.range(..number).for_each(|(_, earlier)| before.add(earlier.clone()));
        self.closed.iter().filter(|period| **period < statement.period).for_each(|period| before.mark_closed(*period));
        before
    }

    /// The number the next statement gets.
    pub fn next_number(&self) -> u64 {
        self.statements.keys().next_back().map_or(1, |last| last + 1)
    }

    /// Every final statement, by number.
    pub fn statements(&self) -> impl Iterator<Item = &Statement> {
        self.statements.values()
    }

    /// The statement numbered `number`.
    pub fn by_number(&self, number: u64) -> Option<&Statement> {
        self.statements.get(&number)
    }

    /// The final statements of `period`, by number.
    pub fn of_period(&self, period: Period) -> Vec<Statement> {
        self.statements.values().filter(|statement| statement.period == period).cloned().collect()
    }
}

/// Where final statements are kept.
pub trait StatementStore {
    /// Takes the right to issue (fencing any other closer where the store can) and reads every
    /// statement issued and every period closed.
    fn begin(&mut self) -> anyhow::Result<Issued>;

    /// Keeps `statements` (final, numbered after what [`StatementStore::begin`] read) and marks
    /// `period` closed, all or nothing.
    fn commit(&mut self, period: Period, statements: &[Statement]) -> anyhow::Result<()>;
}

/// Why a period cannot be closed.
#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    /// It has not ended plus its grace.
    #[error("period {period} cannot close before {closes_at} (its end plus the grace period)")]
    NotYet {
        /// The period.
        period: Period,
        /// When it may close.
        closes_at: UnixMillis,
    },
    /// The issuer closed periods of another length before.
    #[error(
        "period {period} is a {}, but this issuer already closed {closed}, a {}: periods of two lengths would overlap; set billing.period back to {}",
        period.length(),
        closed.length(),
        closed.length()
    )]
    OtherLength {
        /// The period asked for.
        period: Period,
        /// A closed period of another length.
        closed: Period,
    },
    /// The drafts cannot be computed.
    #[error("computing the statements of {period}")]
    Compute {
        /// The period.
        period: Period,
        /// Why.
        #[source]
        source: ComputeError,
    },
    /// The store failed or refused (another closer took over).
    #[error("keeping the statements of {period}")]
    Store {
        /// The period.
        period: Period,
        /// Why.
        #[source]
        source: anyhow::Error,
    },
}

/// Closes `period` at `now`, and before it every earlier period from `first` on that is not closed
/// yet, in order; returns `period`'s final statements. Closing a closed period returns what it
/// issued. A statement is issued at its period's close time, so a close that was interrupted and
/// run again issues the same statements.
pub fn close_period(
    store: &mut dyn StatementStore,
    sources: &Sources<'_>,
    first: Period,
    period: Period,
    now: UnixMillis,
) -> Result<Vec<Statement>, CloseError> {
    let closes_at = sources.cycle.closes_at(period);
    if now < closes_at {
        return Err(CloseError::NotYet { period, closes_at });
    }
    let mut issued = store.begin().map_err(|source| CloseError::Store { period, source })?;
    // Periods of two lengths would overlap, and a record could be billed on both.
    if let Some(closed) = issued.closed_periods().find(|closed| closed.length() != period.length()) {
        return Err(CloseError::OtherLength { period, closed });
    }
    let mut closing = first.min(period);
    while closing <= period {
        if !issued.is_closed(closing) {
            let drafts = drafts(sources, closing, &issued, None).map_err(|source| CloseError::Compute { period: closing, source })?;
            let issued_at = sources.cycle.closes_at(closing);
            let mut number = issued.next_number();
            let finals: Vec<Statement> = drafts
                .into_iter()
                .map(|draft| {
                    number += 1;
                    draft.finalized(number - 1, issued_at)
                })
                .collect();
            store.commit(closing, &finals).map_err(|source| CloseError::Store { period: closing, source })?;
            finals.into_iter().for_each(|statement| issued.add(statement));
            issued.mark_closed(closing);
        }
        closing = closing.next();
    }
    Ok(issued.of_period(period))
}
