//! The figures themselves, and end to end through a biller: how windows the machine did not live
//! and usage observed late are priced, stored, reported and summarised.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::*;
use crate::billing::biller::{Biller, RawMessage};
use crate::billing::cost_engine::{CostEngine, CostSummary, range, tiers};
use crate::billing::ledger::Ledger;
use crate::billing::price::price;
use crate::billing::rate_card::RateCard;
use crate::billing::report::{ReportFormat, TimeRange, render};
use crate::billing::verify;
use crate::feed::summary::SummaryRow;
use crate::record::{RecordKind, UnixMillis, UsageRecord};

/// 2026-01-01T00:00:00Z.
const NEW_YEAR: i64 = 1_767_225_600_000;
const HOUR: i64 = 3_600_000;
/// 4 GiB in decimal GB: what an hour of the steady record's memory is in GB-hours.
const GB_HELD: &str = "4.294967296";

#[test]
fn spans_read_in_their_two_largest_units_rounded_down() {
    assert_eq!(span(0), "0s");
    assert_eq!(span(450), "450ms");
    assert_eq!(span(45_999), "45s");
    assert_eq!(span(90_000), "1m 30s");
    assert_eq!(span(8 * 3_600_000), "8h 0m");
    assert_eq!(span(8 * 3_600_000 + 59_999), "8h 0m");
    assert_eq!(span(51 * 3_600_000), "2d 3h");
}

#[test]
fn the_short_form_names_only_what_is_not_zero() {
    assert_eq!(TimeHealth::default().short(), "");
    assert!(TimeHealth::default().is_clear());
    let health = TimeHealth { asleep_ms: 8 * 3_600_000, late_ms: 90_000, clock_steps: 2 };
    assert_eq!(health.short(), "asleep 8h 0m, late 1m 30s, 2 steps");
    assert_eq!(TimeHealth { clock_steps: 1, ..TimeHealth::default() }.short(), "1 step");
    assert!(!health.is_clear());
}

/// A laptop's morning: an hour of use that came partly late (90 s) and saw the clock stepped
/// forward, the hour the step skipped, eight hours asleep (one window per UTC hour, as the agent
/// splits them), then half an hour of use that saw a step back. Eleven windows, no gap.
fn morning() -> Vec<UsageRecord> {
    let hour = |seq: u64| UsageRecord::steady("lap", seq, UnixMillis(NEW_YEAR), HOUR);
    let mut records = vec![UsageRecord { late_millis: 90_000, clock_steps: 1, ..hour(1) }];
    records.push(hour(2).unlived(RecordKind::ClockStep));
    records.extend((3..=10).map(|seq| hour(seq).unlived(RecordKind::Asleep)));
    let woke = hour(11);
    records.push(UsageRecord { end: woke.start.plus_millis(HOUR / 2), clock_steps: 1, ..woke });
    records
}

fn billed(card: &RateCard, records: &[UsageRecord]) -> (tempfile::TempDir, Ledger) {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ledger.db");
    let mut biller = Biller::new(Ledger::open(&path).unwrap(), card.clone());
    let messages: Vec<RawMessage> = (0..)
        .zip(records)
        .map(|(offset, record)| RawMessage { topic: "u".into(), partition: 0, offset, payload: Some(record.to_json()) })
        .collect();
    assert_eq!(biller.bill(&messages).unwrap().outcome.billed, records.len());
    (directory, Ledger::open_read_only(&path).unwrap())
}

/// The flat cost of the lived windows alone.
fn cost_of_usage(card: &RateCard, records: &[UsageRecord]) -> Decimal {
    let lived = records.iter().filter(|record| record.kind.is_lived());
    lived.map(|record| price(record, card.version_at(record.start)).unwrap().total).sum::<Decimal>().normalize()
}

#[test]
fn a_night_asleep_is_reported_next_to_gaps_and_costs_nothing_under_the_built_in_card() {
    let card = RateCard::built_in();
    let records = morning();
    let (_directory, ledger) = billed(&card, &records);
    let stored: Vec<UsageRecord> = ledger.lines_after(0, 100).unwrap().into_iter().map(|line| line.record).collect();
    assert_eq!(stored, records, "kind, late time and clock steps are stored and read back");
    let totals = range::totals(&ledger, &card, TimeRange::default()).unwrap();
    let lap = &totals[0];
    assert_eq!((lap.records, lap.gaps), (11, 0));
    assert_eq!(lap.time, TimeHealth { asleep_ms: 8 * HOUR as u64, late_ms: 90_000, clock_steps: 2 });
    assert_eq!(lap.cost, cost_of_usage(&card, &records), "the asleep hours and the skipped hour cost nothing");
    // A range ending inside the first asleep hour reads that hour's windows from the records.
    let to_half_past_two = TimeRange { from: Some(UnixMillis(NEW_YEAR)), to: Some(UnixMillis(NEW_YEAR + 2 * HOUR + HOUR / 2)) };
    let early = range::totals(&ledger, &card, to_half_past_two).unwrap();
    assert_eq!(early[0].time, TimeHealth { asleep_ms: HOUR as u64, late_ms: 90_000, clock_steps: 1 });
    let table = render(&totals, ReportFormat::Table);
    let row = table.lines().nth(1).unwrap();
    assert!(row.contains("8h 0m") && row.contains("1m 30s"), "{table}");
    let csv = render(&totals, ReportFormat::Csv);
    assert!(csv.starts_with("machine_id,records,first_seq,last_seq,gaps,asleep_ms,late_ms,clock_steps,cost,"), "{csv}");
    assert!(csv.lines().nth(1).unwrap().contains(",0,28800000,90000,2,"), "{csv}");
    let json: serde_json::Value = serde_json::from_str(&render(&totals, ReportFormat::Json)).unwrap();
    assert_eq!(
        (json[0]["asleep_ms"].as_u64(), json[0]["late_ms"].as_u64(), json[0]["clock_steps"].as_u64()),
        (Some(28_800_000), Some(90_000), Some(2))
    );
}

#[test]
fn the_summary_carries_the_figures_and_reads_without_them() {
    let card = RateCard::built_in();
    let (_directory, ledger) = billed(&card, &morning());
    let now = UnixMillis(NEW_YEAR + 11 * HOUR);
    let mut engine = CostEngine::load(&ledger, card, now).unwrap();
    let summary = engine.summaries(&ledger, &["lap".to_owned()], now).unwrap().remove(0);
    assert_eq!(summary.time_health(), TimeHealth { asleep_ms: 8 * HOUR as u64, late_ms: 90_000, clock_steps: 2 });
    let row = SummaryRow::of(&summary, UnixMillis(NEW_YEAR), now).unwrap();
    assert_eq!(row.time.short(), "asleep 8h 0m, late 1m 30s, 2 steps");
    assert_eq!(CostSummary::parse(&summary.encode()).unwrap(), summary);
    // A summary of a worker from before the figures has none of the fields, and reads as zero;
    // one whose machine never slept leaves them out, so a desktop from before still reads it.
    let quiet = CostSummary { asleep_ms: 0, late_ms: 0, clock_steps: 0, ..summary };
    let text = String::from_utf8(quiet.encode()).unwrap();
    assert!(!text.contains("asleep_ms") && !text.contains("late_ms") && !text.contains("clock_steps"), "{text}");
    assert!(CostSummary::parse(text.as_bytes()).unwrap().time_health().is_clear());
}

#[test]
fn memory_held_asleep_is_billed_at_its_own_price_verifies_and_moves_no_memory_tier() {
    // Memory tiered from 5 GB-hours at 0.001 (flat 0.005), and 0.001 per GB-hour held asleep.
    let card_text = crate::billing::rate_card::BUILT_IN_CARD.replace(
        "disk_write_gb = \"0.01\"",
        "disk_write_gb = \"0.01\"\nasleep_memory_gb_hour = \"0.001\"\ntiers.memory_gb_hour = [{ from = \"5\", price = \"0.001\" }]",
    );
    let card = RateCard::parse(&card_text, "test").unwrap();
    let records = morning();
    let (_directory, ledger) = billed(&card, &records);
    let gb_held = Decimal::from_str(GB_HELD).unwrap();
    let asleep = gb_held * Decimal::from(8) * Decimal::from_str("0.001").unwrap();
    // The lived windows held 1.5 hours × 4.294967296 GB = 6.442450944 GB-hours: 1.442450944 above
    // the tier, 0.004 cheaper each. The 34.36 GB-hours held asleep would be far past it.
    let lived_gb_hours = gb_held * Decimal::from_str("1.5").unwrap();
    let adjustment = (lived_gb_hours - Decimal::from(5)) * Decimal::from_str("-0.004").unwrap();
    assert_eq!(tiers::adjustments(&ledger, &card, TimeRange::default()).unwrap()["lap"], adjustment.normalize());
    let totals = range::totals(&ledger, &card, TimeRange::default()).unwrap();
    assert_eq!(totals[0].cost, range::tiered(cost_of_usage(&card, &records) + asleep, adjustment));
    let verification = verify::verify(&ledger, &card).unwrap();
    assert_eq!((verification.lines, verification.differences.len()), (11, 0), "{:?}", verification.differences);
}
