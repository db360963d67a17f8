//! The Statements tab in embedded mode: last month billed and closed through the runtime, as
//! `usagebill statement close` does, then read by the app's statement reader from the ledger.

use rust_decimal::Decimal;
use usagebill::billing::biller::{Biller, RawMessage};
use usagebill::billing::ledger::Ledger;
use usagebill::billing::rate_card::RateCard;
use usagebill::gui::format;
use usagebill::record::{UnixMillis, UsageRecord};
use usagebill::runtime::statement_reader::StatementState;
use usagebill::runtime::statements;

use super::*;

const HOUR: i64 = 3_600_000;

/// Bills `records` into the ledger at `path` under the built-in card.
fn bill(path: &Path, records: &[UsageRecord]) {
    let mut biller = Biller::new(Ledger::open(path).unwrap(), RateCard::built_in());
    let messages: Vec<RawMessage> = (0..)
        .zip(records)
        .map(|(offset, record)| RawMessage { topic: "statements-seed".into(), partition: 0, offset, payload: Some(record.to_json()) })
        .collect();
    biller.bill(&messages).unwrap();
}

/// A steady window of `machine` numbered `seq`, from `start` for `millis`.
fn window(machine: &str, seq: u64, start: UnixMillis, millis: i64) -> UsageRecord {
    UsageRecord { seq, ..UsageRecord::steady(machine, 1, start, millis) }
}

#[test]
fn the_statements_tab_shows_the_closed_period_the_open_draft_and_exports_a_csv() {
    let data = tempfile::tempdir().unwrap();
    let settings = embedded_settings(data.path(), "desk-1");
    let now = UnixMillis::now();
    let cycle = settings.cycle();
    let (current, last) = (cycle.period_of(now), cycle.period_of(now).previous());
    // A day of hourly windows in the middle of last month, and this month's 10-minute windows that
    // ended before now (none in a month's first minutes: then the tab says nothing is billed yet).
    let mut records: Vec<UsageRecord> =
        (1..=24).map(|seq| window("desk-1", seq, last.start().plus_millis(9 * 24 * HOUR + (seq as i64 - 1) * HOUR), HOUR)).collect();
    let recent = (1..=6).map(|back| now.plus_millis(-120_000 - back * 600_000)).filter(|start| *start >= current.start());
    records.extend(recent.zip(25..).map(|(start, seq)| window("desk-1", seq, start, 600_000)));
    bill(&settings.ledger_path(), &records);
    // Closed as the CLI closes it; on a month's first day, before the grace ends, as if at its close.
    let closes_at = cycle.closes_at(last);
    let closed = statements::close(&settings, &RateCard::built_in(), last, now.max(closes_at)).unwrap();
    assert_eq!(closed.len(), 1, "one account, the default one: {closed:?}");
    let statement = closed[0].clone();
    let number = statement.number.expect("a final statement is numbered");
    assert!(statement.totals.total > Decimal::from(10), "a day of steady use: {}", statement.totals.total);

    let mut harness = open_app(settings, manual_only(), script(data.path(), &[STEADY]));
    click(&mut harness, "Statements");
    wait_for(&mut harness, "the statements read", Duration::from_secs(10), |app| {
        app.live().statements.state == StatementState::Ready && !app.live().statements.finals.is_empty()
    });
    harness.run_ok();
    harness.get_by_label_contains("Account: Machines without an account");
    harness.get_by_label(&format!("No. {number}"));
    harness.get_by_label(&last.to_string());
    harness.get_by_label(&format::money(statement.totals.total, &statement.currency));
    // The open period closes a day after this month ends; the tab counts the whole days left.
    let left = (cycle.closes_at(current).0 - UnixMillis::now().0) / (24 * HOUR);
    let left = if left == 1 { "1 day left".to_owned() } else { format!("{left} days left") };
    harness.get_by_label_contains(&left);
    let drafts = app(&harness).live().statements.drafts.clone();
    if records.len() > 24 {
        assert_eq!(drafts.len(), 1, "this month's draft: {drafts:?}");
        assert_eq!(drafts[0].period, current.to_string());
        harness.get_by_label_contains(&format!("{} so far", format::money(drafts[0].total, &drafts[0].currency)));
    }

    click(&mut harness, "Export CSV");
    wait_for(&mut harness, "the CSV written", Duration::from_secs(10), |app| app.statements_view().notice().is_some());
    let notice = app(&harness).statements_view().notice().unwrap().clone();
    let path = data.path().join("statements").join(format!("statement-{number}.csv"));
    assert!(!notice.failed && notice.text.contains(&path.display().to_string()), "{notice:?}");
    // Named for its number; in it, the statement's lines: desk-1's, then the total.
    let csv = std::fs::read_to_string(&path).unwrap();
    let total_row = csv.lines().find(|line| line.starts_with("total,")).unwrap_or_default();
    assert!(csv.lines().any(|line| line.starts_with(&format!("machine,{last},desk-1,"))), "{csv}");
    assert!(total_row.contains(&format!(",{},{}", statement.totals.total, statement.currency)), "{csv}");
    harness.get_by_label_contains(&path.display().to_string());
}

#[test]
fn the_statements_tab_says_plainly_when_the_brokers_cannot_be_reached() {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    // Nothing listens on port 1: every connection is refused.
    config.kafka.brokers = vec!["127.0.0.1:1".into()];
    config.agent.machine_id = Some("desk-1".into());
    let settings = Settings::new(config, data.path().join("config.toml"), data.path().to_owned()).unwrap();
    let mut harness = open_app(settings, manual_only(), script(data.path(), &[STEADY]));
    click(&mut harness, "Statements");
    wait_for(&mut harness, "the failed read", Duration::from_secs(60), |app| app.live().statements.state != StatementState::Loading);
    let state = app(&harness).live().statements.state.clone();
    assert!(matches!(state, StatementState::Offline(_)), "{state:?}");
    harness.get_by_label_contains("Offline: the Kafka brokers cannot be reached");
}
