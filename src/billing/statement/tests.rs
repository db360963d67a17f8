use std::path::Path;
use std::str::FromStr;

use rust_decimal::Decimal;

use super::*;
use crate::billing::biller::bill_records as bill;
use crate::billing::cost_engine::range;
use crate::billing::ledger::Ledger;
use crate::billing::rate_card::{RateCard, cpu_tiered_version};
use crate::record::{TimeRange, UsageRecord};

const HOUR: i64 = 3_600_000;

const ACCOUNTS: &str = r#"
[[version]]
effective_from = "2026-01-01T00:00:00Z"

[[version.account]]
id = "acme"
name = "Acme Corp"
machines = ["acme-*"]

[[version.account]]
id = "beta"
name = "Beta Ltd"
machines = ["beta-1"]
"#;

fn october() -> Period {
    Period::parse("2026-10").unwrap()
}

fn november() -> Period {
    Period::parse("2026-11").unwrap()
}

/// Hourly windows of `machine`, seqs `seqs`, the one numbered `first_seq` starting `period`, the
/// load varying by seq.
fn hours(machine: &str, period: Period, first_seq: u64, seqs: std::ops::RangeInclusive<u64>) -> Vec<UsageRecord> {
    let first_start = period.start().plus_millis(-((first_seq as i64 - 1) * HOUR));
    seqs.map(|seq| UsageRecord { cpu_pct: 30.0 + (seq % 9) as f64 * 7.0, ..UsageRecord::steady(machine, seq, first_start, HOUR) }).collect()
}

fn tiered_card() -> RateCard {
    RateCard::parse(&cpu_tiered_version("t1", "2026-01-01T00:00:00Z", "100", "0.01"), "test").unwrap()
}

/// October and November of three machines (two of Acme, one of Beta) and one no account names.
fn two_months(path: &Path, card: &RateCard) {
    let mut records = Vec::new();
    for period in [october(), november()] {
        let base = if period == october() { 0 } else { 1_000 };
        records.extend(hours("acme-1", period, base + 1, base + 1..=base + 200));
        records.extend(hours("acme-2", period, base + 1, base + 1..=base + 100));
        records.extend(hours("beta-1", period, base + 1, base + 1..=base + 150));
        records.extend(hours("desk-9", period, base + 1, base + 1..=base + 5));
    }
    bill(path, card, &records);
}

struct Fixture {
    _directory: tempfile::TempDir,
    path: std::path::PathBuf,
    card: RateCard,
    accounts: Accounts,
}

impl Fixture {
    fn new() -> Fixture {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("ledger.db");
        let card = tiered_card();
        two_months(&path, &card);
        Fixture { _directory: directory, path, card, accounts: Accounts::parse(ACCOUNTS, "accounts.toml").unwrap() }
    }

    fn sources<'a>(&'a self, ledger: &'a Ledger) -> Sources<'a> {
        Sources { ledger, card: &self.card, accounts: &self.accounts, issuer: "Example Billing Ltd", cycle: Cycle::DEFAULT, named_by: None }
    }
}

fn decimal(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

#[test]
fn closing_numbers_each_accounts_statement_in_order_and_its_lines_equal_the_report() {
    let fixture = Fixture::new();
    let ledger = Ledger::open(&fixture.path).unwrap();
    let sources = fixture.sources(&ledger);
    let now = Cycle::DEFAULT.closes_at(november());
    let mut store = LedgerStatements::new(&ledger);
    let statements = close_period(&mut store, &sources, october(), november(), now).unwrap();
    // October closed first (numbers 1–3), then November (4–6): acme, beta, unassigned.
    let numbers: Vec<u64> = statements.iter().map(|statement| statement.number.unwrap()).collect();
    assert_eq!(numbers, [4, 5, 6]);
    let accounts: Vec<&str> = statements.iter().map(|statement| statement.account.id.as_str()).collect();
    assert_eq!(accounts, ["acme", "beta", "unassigned"]);
    let range = TimeRange { from: Some(november().start()), to: Some(november().end()) };
    let report = range::totals(&ledger, &fixture.card, range).unwrap();
    for statement in &statements {
        assert_eq!(statement.status, Status::Final);
        assert_eq!(statement.issued_at, Some(now));
        for line in &statement.machines {
            let reported = report.iter().find(|total| total.machine_id == line.machine_id).unwrap();
            assert_eq!(line.exact_total, reported.cost, "{}: the statement's exact line is the report's total", line.machine_id);
            assert_eq!(line.total, line.exact_total.round_dp(2), "rounded once to cents");
            assert_eq!(line.records, reported.records);
        }
        let sum: Decimal = statement.machines.iter().map(|line| line.total).sum();
        assert_eq!(statement.totals.total, sum, "the total is the sum of the rounded lines");
        assert!(statement.adjustments.is_empty());
        assert_eq!(Statement::parse(&statement.canonical_bytes()).unwrap(), *statement);
    }
    let acme = &statements[0];
    assert_eq!(acme.machines.len(), 2);
    assert!(acme.machines[0].tier_adjustment < Decimal::ZERO, "acme-1 passes 100 core-hours: the tier applies");
    assert_eq!(acme.machines[0].quantities.cpu_core_hours, acme.machines[0].quantities.cpu_core_hours.round_dp(QUANTITY_DIGITS));
    assert_eq!(acme.machines[0].seqs.to_string(), "1001-1200");
    assert_eq!(statements[2].account, Account::unassigned());
    // Closing again gives the same statements back, byte for byte.
    let again = close_period(&mut LedgerStatements::new(&ledger), &sources, october(), november(), now.plus_millis(HOUR)).unwrap();
    assert_eq!(
        again.iter().map(Statement::canonical_bytes).collect::<Vec<_>>(),
        statements.iter().map(Statement::canonical_bytes).collect::<Vec<_>>()
    );
}

#[test]
fn late_records_of_a_closed_period_are_adjustments_on_the_next_statement_and_the_final_never_changes() {
    let fixture = Fixture::new();
    let ledger = Ledger::open(&fixture.path).unwrap();
    let now = Cycle::DEFAULT.closes_at(october());
    let october_finals = close_period(&mut LedgerStatements::new(&ledger), &fixture.sources(&ledger), october(), october(), now).unwrap();
    let stored_before = LedgerStatements::new(&ledger).bytes(1).unwrap().unwrap();
    // Late for October: acme-1 seqs 201–210 (more core-hours, deeper in the tier), and beta-1's 151.
    let mut late = hours("acme-1", october(), 1, 201..=210);
    late.extend(hours("beta-1", october(), 1, 151..=151));
    bill(&fixture.path, &fixture.card, &late);
    let ledger = Ledger::open(&fixture.path).unwrap();
    let sources = fixture.sources(&ledger);
    let mut store = LedgerStatements::new(&ledger);
    let issued = store.begin().unwrap();
    let november_drafts = drafts(&sources, november(), &issued, None).unwrap();
    let acme = &november_drafts[0];
    assert_eq!(acme.status, Status::Draft);
    assert_eq!(acme.adjustments.len(), 1);
    let adjustment = &acme.adjustments[0];
    assert_eq!(
        (adjustment.period, adjustment.machine_id.as_str(), adjustment.seqs.to_string()),
        (october(), "acme-1", "201-210".to_owned())
    );
    // The adjustment is what October now costs for acme-1 minus what its final statement billed.
    let range = TimeRange { from: Some(october().start()), to: Some(october().end()) };
    let now_costs = range::totals(&ledger, &fixture.card, range).unwrap();
    let acme_1_now = now_costs.iter().find(|total| total.machine_id == "acme-1").unwrap().cost;
    assert_eq!(adjustment.exact_amount, acme_1_now - october_finals[0].machines[0].exact_total);
    assert_eq!(acme.totals.adjustments, adjustment.amount);
    assert_eq!(acme.totals.total, acme.totals.machines + acme.totals.adjustments);
    assert_eq!(november_drafts[1].adjustments[0].seqs.to_string(), "151");
    // Closing November issues them; October's final is untouched, byte for byte.
    let november_finals = close_period(&mut store, &sources, october(), november(), Cycle::DEFAULT.closes_at(november())).unwrap();
    assert_eq!(november_finals[0].adjustments, acme.adjustments);
    assert_eq!(LedgerStatements::new(&ledger).bytes(1).unwrap().unwrap(), stored_before);
    // Billed once: December's draft holds no adjustment for them any more.
    let issued = LedgerStatements::new(&ledger).begin().unwrap();
    let december = drafts(&sources, november().next(), &issued, None).unwrap();
    assert!(december.iter().all(|statement| statement.adjustments.is_empty()), "{december:?}");
}

#[test]
fn a_period_cannot_close_before_its_grace_ends_and_says_when_it_may() {
    let fixture = Fixture::new();
    let ledger = Ledger::open(&fixture.path).unwrap();
    let early = november().end().plus_millis(HOUR);
    let error = close_period(&mut LedgerStatements::new(&ledger), &fixture.sources(&ledger), october(), november(), early).unwrap_err();
    assert_eq!(error.to_string(), "period 2026-11 cannot close before 2026-12-02T00:00:00.000Z (its end plus the grace period)");
    assert!(LedgerStatements::new(&ledger).begin().unwrap().statements().next().is_none(), "nothing issued");
}

#[test]
fn altered_bytes_fail_to_parse() {
    let fixture = Fixture::new();
    let ledger = Ledger::open(&fixture.path).unwrap();
    let finals = close_period(
        &mut LedgerStatements::new(&ledger),
        &fixture.sources(&ledger),
        october(),
        october(),
        Cycle::DEFAULT.closes_at(october()),
    )
    .unwrap();
    let bytes = finals[0].canonical_bytes();
    let total = finals[0].totals.total.to_string();
    let altered = String::from_utf8(bytes.clone()).unwrap().replacen(&format!("\"total\":\"{total}\""), "\"total\":\"1.00\"", 1);
    assert_ne!(altered.as_bytes(), bytes.as_slice());
    let error = Statement::parse(altered.as_bytes()).unwrap_err().to_string();
    assert!(error.contains("altered"), "{error}");
    let spaced = String::from_utf8(bytes).unwrap().replacen(':', ": ", 1);
    assert!(Statement::parse(spaced.as_bytes()).unwrap_err().to_string().contains("canonical"));
    assert_eq!(decimal(&total), finals[0].totals.total);
}

#[test]
fn a_final_statement_verifies_after_late_records_and_an_altered_one_names_its_differences() {
    let fixture = Fixture::new();
    let ledger = Ledger::open(&fixture.path).unwrap();
    let now = Cycle::DEFAULT.closes_at(november());
    close_period(&mut LedgerStatements::new(&ledger), &fixture.sources(&ledger), october(), november(), now).unwrap();
    // Records that arrive late change what a new derivation of October sees, not what statement 1 billed.
    bill(&fixture.path, &fixture.card, &hours("acme-1", october(), 1, 201..=205));
    let ledger = Ledger::open(&fixture.path).unwrap();
    let issued = LedgerStatements::new(&ledger).begin().unwrap();
    for number in 1..=6 {
        let stored = LedgerStatements::new(&ledger).bytes(number).unwrap().unwrap();
        assert_eq!(verify(&fixture.sources(&ledger), &issued, &stored), Vec::<String>::new(), "statement {number}");
    }
    // A statement whose line was changed and sealed again (a forged hash) differs from its derivation.
    let mut forged = issued.by_number(4).unwrap().clone();
    forged.machines[0].records += 1;
    let forged = forged.seal();
    let differences = verify(&fixture.sources(&ledger), &issued, &forged.canonical_bytes());
    assert!(differences.iter().any(|difference| difference.starts_with("machines[0].records: stored")), "{differences:?}");
    let altered = String::from_utf8(issued.by_number(4).unwrap().canonical_bytes()).unwrap().replacen("Acme", "Acne", 1);
    let differences = verify(&fixture.sources(&ledger), &issued, altered.as_bytes());
    assert!(differences[0].contains("altered"), "{differences:?}");
}
