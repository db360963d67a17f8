//! Deriving statements from a ledger-schema file: every record of the period, per account and
//! machine, with its quantities, flat amounts and the period's tier adjustment; and, for each
//! earlier period already closed, the records that arrived after its statement was issued.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;

use super::accounts::{Account, Accounts};
use super::close::Issued;
use super::period::{Cycle, Period};
use super::seqs::SeqSet;
use super::{AdjustmentLine, FlatAmounts, MachineLine, QUANTITY_DIGITS, Quantities, STATEMENT_SCHEMA, Statement, Status, Totals};
use crate::billing::cost_engine::tiers::{self, quantity};
use crate::billing::ledger::{Ledger, LedgerError, StoredLine};
use crate::billing::price::round_for_display;
use crate::billing::rate_card::{Component, RateCard};
use crate::record::{TimeRange, UsageRecord};

/// Ledger rows read per query.
const ROWS_PER_READ: usize = 10_000;

/// What statements are computed from, besides the issued statements.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    /// The deduplicated records and lines (the costs topic's view, or the embedded ledger).
    pub ledger: &'a Ledger,
    /// The card the lines were priced with (for the tiers).
    pub card: &'a RateCard,
    /// Which account each machine bills to.
    pub accounts: &'a Accounts,
    /// Who bills.
    pub issuer: &'a str,
    /// How long periods last and when they close.
    pub cycle: Cycle,
    /// When set, only the records these statements name count (verifying a statement derives it
    /// again from the records it billed, whatever arrived since).
    pub named_by: Option<&'a Issued>,
}

impl Sources<'_> {
    fn counts(&self, record: &UsageRecord) -> bool {
        self.named_by.is_none_or(|issued| issued.names(self.cycle.period_of(record.start), &record.machine_id, record.seq))
    }
}

/// Why statements cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    /// The file cannot be read.
    #[error("reading the billed records")]
    Ledger(#[from] LedgerError),
    /// One statement would hold two currencies.
    #[error("account {account:?} has lines in {first} and {second} in {period}: a statement holds one currency")]
    MixedCurrencies {
        /// The account.
        account: String,
        /// The period.
        period: Period,
        /// One currency.
        first: String,
        /// Another.
        second: String,
    },
}

/// One machine's records in one period, summed.
#[derive(Debug, Clone, Default)]
struct Usage {
    seqs: SeqSet,
    asleep_ms: u64,
    late_ms: u64,
    clock_steps: u64,
    versions: BTreeSet<String>,
    currency: String,
    quantities: [Decimal; 6],
    flat: [Decimal; 6],
}

impl Usage {
    fn add(&mut self, stored: &StoredLine) {
        let record = &stored.record;
        self.seqs.insert(record.seq);
        match record.kind {
            crate::record::RecordKind::Asleep => self.asleep_ms += record.window_millis().max(0) as u64,
            crate::record::RecordKind::ClockStep | crate::record::RecordKind::Usage => {}
        }
        self.late_ms += record.late_millis;
        self.clock_steps += u64::from(record.clock_steps);
        self.versions.insert(stored.line.card_version.clone());
        self.currency.clone_from(&stored.line.currency);
        for (sum, component) in self.quantities.iter_mut().zip(Component::ALL) {
            *sum += quantity(record, component);
        }
        let line = &stored.line;
        for (sum, amount) in self.flat.iter_mut().zip([line.cpu, line.memory, line.net_rx, line.net_tx, line.disk_read, line.disk_write]) {
            *sum += amount;
        }
    }

    fn flat_total(&self) -> Decimal {
        self.flat.iter().sum()
    }
}

/// An account's machines in the period and its adjustment lines.
type AccountLines<'u> = (Account, Vec<(String, &'u Usage)>, Vec<AdjustmentLine>);

/// Every record of `wanted` periods (and only those), per period and machine.
fn usage_by_period(sources: &Sources<'_>, wanted: &BTreeSet<Period>) -> Result<BTreeMap<(Period, String), Usage>, LedgerError> {
    let mut usage: BTreeMap<(Period, String), Usage> = BTreeMap::new();
    let mut after = 0;
    loop {
        let rows = sources.ledger.lines_after(after, ROWS_PER_READ)?;
        let Some(last) = rows.last() else { break };
        after = last.row_id;
        for stored in &rows {
            let period = sources.cycle.period_of(stored.record.start);
            if wanted.contains(&period) && sources.counts(&stored.record) {
                usage.entry((period, stored.record.machine_id.clone())).or_default().add(stored);
            }
        }
    }
    Ok(usage)
}

/// Each machine's tier adjustment in `period`.
fn tier_adjustments(sources: &Sources<'_>, period: Period) -> Result<BTreeMap<String, Decimal>, LedgerError> {
    let range = TimeRange { from: Some(period.start()), to: Some(period.end()) };
    tiers::adjustments_of(sources.ledger, sources.card, range, &|record| sources.counts(record))
}

/// The drafts of `period`: one per account with records in it or late records of an earlier
/// closed period, ordered by account id. `issued` holds the statements issued so far and the
/// periods closed; `only` restricts to one account.
pub fn drafts(sources: &Sources<'_>, period: Period, issued: &Issued, only: Option<&str>) -> Result<Vec<Statement>, ComputeError> {
    let earlier: BTreeSet<Period> = issued.closed_periods().filter(|closed| *closed < period).collect();
    let wanted: BTreeSet<Period> = earlier.iter().copied().chain([period]).collect();
    let usage = usage_by_period(sources, &wanted)?;
    let mut by_account: BTreeMap<String, AccountLines<'_>> = BTreeMap::new();
    fn entry<'m, 'u>(by_account: &'m mut BTreeMap<String, AccountLines<'u>>, account: Account) -> &'m mut AccountLines<'u> {
        by_account.entry(account.id.clone()).or_insert_with(|| (account, Vec::new(), Vec::new()))
    }
    let current_tiers = tier_adjustments(sources, period)?;
    for ((_, machine), machine_usage) in usage.range((period, String::new())..).take_while(|((of, _), _)| *of == period) {
        entry(&mut by_account, sources.accounts.account_of(machine, period.start())).1.push((machine.clone(), machine_usage));
    }
    for closed in &earlier {
        let closed_usage: Vec<(&String, &Usage)> = usage
            .range((*closed, String::new())..)
            .take_while(|((of, _), _)| of == closed)
            .map(|((_, machine), usage)| (machine, usage))
            .collect();
        if closed_usage.is_empty() {
            continue;
        }
        let closed_tiers = tier_adjustments(sources, *closed)?;
        for (machine, machine_usage) in closed_usage {
            let billed = issued.billed(*closed, machine);
            let late: SeqSet = machine_usage.seqs_not_in(&billed.seqs);
            if late.is_empty() {
                continue;
            }
            let now = machine_usage.flat_total() + closed_tiers.get(machine).copied().unwrap_or_default();
            let account = billed.account.clone().unwrap_or_else(|| sources.accounts.account_of(machine, closed.start()));
            let exact_amount = (now - billed.exact).normalize();
            let line = AdjustmentLine {
                period: *closed,
                machine_id: machine.clone(),
                records: late.len(),
                seqs: late,
                exact_amount,
                amount: exact_amount,
            };
            entry(&mut by_account, account).2.push(line);
        }
    }
    let mut statements = Vec::new();
    for (account_id, (account, machines, adjustments)) in by_account {
        if only.is_some_and(|only| only != account_id) {
            continue;
        }
        statements.push(statement(sources, period, account, &machines, adjustments, &current_tiers)?);
    }
    Ok(statements)
}

impl Usage {
    fn seqs_not_in(&self, billed: &SeqSet) -> SeqSet {
        let mut late = SeqSet::new();
        for seq in self.seqs.iter() {
            if !billed.contains(seq) {
                late.insert(seq);
            }
        }
        late
    }
}

fn statement(
    sources: &Sources<'_>,
    period: Period,
    account: Account,
    machines: &[(String, &Usage)],
    mut adjustments: Vec<AdjustmentLine>,
    tier_adjustments: &BTreeMap<String, Decimal>,
) -> Result<Statement, ComputeError> {
    let card_versions: BTreeSet<String> = machines.iter().flat_map(|(_, usage)| usage.versions.iter().cloned()).collect();
    let currencies: BTreeSet<&str> = machines.iter().map(|(_, usage)| usage.currency.as_str()).collect();
    let mut currencies = currencies.into_iter();
    let fallback = sources.card.version_at(period.start());
    let currency = currencies.next().unwrap_or(&fallback.currency).to_owned();
    if let Some(second) = currencies.next() {
        return Err(ComputeError::MixedCurrencies { account: account.id, period, first: currency, second: second.to_owned() });
    }
    // The currency's minor unit as the card states it (every version of one currency agrees in practice).
    let minor_unit_digits = card_versions
        .iter()
        .filter_map(|name| sources.card.version_named(name))
        .map(|version| version.minor_unit_digits)
        .max()
        .unwrap_or(fallback.minor_unit_digits);
    let round = |amount: Decimal| round_for_display(amount, minor_unit_digits).normalize();
    let lines = machines
        .iter()
        .map(|(machine, usage)| {
            let tier_adjustment = tier_adjustments.get(machine).copied().unwrap_or_default();
            let flat_total = usage.flat_total();
            let exact_total = (flat_total + tier_adjustment).normalize();
            let [cpu, memory, net_rx, net_tx, disk_read, disk_write] = usage.flat.map(|amount| amount.normalize());
            let [cpu_q, memory_q, rx_q, tx_q, read_q, write_q] =
                usage.quantities.map(|quantity| quantity.round_dp(QUANTITY_DIGITS).normalize());
            MachineLine {
                machine_id: machine.clone(),
                records: usage.seqs.len(),
                gaps: usage.seqs.gaps(),
                seqs: usage.seqs.clone(),
                asleep_ms: usage.asleep_ms,
                late_ms: usage.late_ms,
                clock_steps: usage.clock_steps,
                card_versions: usage.versions.iter().cloned().collect(),
                quantities: Quantities {
                    cpu_core_hours: cpu_q,
                    memory_gb_hours: memory_q,
                    net_rx_gb: rx_q,
                    net_tx_gb: tx_q,
                    disk_read_gb: read_q,
                    disk_write_gb: write_q,
                },
                flat: FlatAmounts { cpu, memory, net_rx, net_tx, disk_read, disk_write },
                flat_total: flat_total.normalize(),
                tier_adjustment: tier_adjustment.normalize(),
                exact_total,
                total: round(exact_total),
            }
        })
        .collect();
    for adjustment in &mut adjustments {
        adjustment.amount = round(adjustment.exact_amount);
    }
    adjustments.sort_by(|a, b| (a.period, &a.machine_id).cmp(&(b.period, &b.machine_id)));
    Ok(Statement {
        schema: STATEMENT_SCHEMA.to_owned(),
        issuer: sources.issuer.to_owned(),
        status: Status::Draft,
        number: None,
        account,
        period,
        period_start: period.start(),
        period_end: period.end(),
        closes_at: sources.cycle.closes_at(period),
        issued_at: None,
        currency,
        minor_unit_digits,
        rounding: Statement::rounding_rule(minor_unit_digits),
        card_versions: card_versions.into_iter().collect(),
        machines: lines,
        adjustments,
        totals: Totals::default(),
        content_hash: String::new(),
    }
    .seal())
}

/// The period of the earliest window `ledger` billed, if any (from the hourly rollups).
pub fn first_period_with_usage(ledger: &Ledger, cycle: Cycle) -> Result<Option<Period>, LedgerError> {
    let machines = crate::billing::ledger::rollup::aggregate_by_machine(ledger.connection(), i64::MIN, i64::MAX)?;
    Ok(machines.values().map(|aggregate| aggregate.min_start).min().map(|start| cycle.period_of(start)))
}
