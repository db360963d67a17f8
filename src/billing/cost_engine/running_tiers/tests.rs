use rust_decimal::Decimal;

use super::*;
use crate::billing::biller::bill_records as bill;
use crate::billing::cost_engine::CostEngine;
use crate::billing::cost_engine::tiers::adjustments;
use crate::billing::rate_card::cpu_tiered_version;
use crate::record::UsageRecord;

/// 2026-01-01T00:00:00Z.
const NEW_YEAR: i64 = 1_767_225_600_000;

/// Two versions, tiered differently; the second takes over at noon on 2 January.
const TWO_VERSIONS: &str = r#"
    [[version]]
    name = "t1"
    effective_from = "2026-01-01T00:00:00Z"
    currency = "USD"
    cpu_core_hour = "0.04"
    memory_gb_hour = "0.005"
    net_rx_gb = "0"
    net_tx_gb = "0.09"
    disk_read_gb = "0"
    disk_write_gb = "0"
    tiers.cpu_core_hour = [{ from = "100", price = "0.02" }, { from = "300", price = "0.01" }]

    [[version]]
    name = "t2"
    effective_from = "2026-01-02T12:00:00Z"
    currency = "USD"
    cpu_core_hour = "0.05"
    memory_gb_hour = "0.005"
    net_rx_gb = "0"
    net_tx_gb = "0.09"
    disk_read_gb = "0"
    disk_write_gb = "0"
    tiers.cpu_core_hour = [{ from = "150", price = "0.03" }]
    tiers.net_tx_gb = [{ from = "1", price = "0.05" }]
"#;

/// An hourly window of machine `machine`: 8 cores at a load that varies with the seq, 0.1 GB sent.
fn hour(machine: &str, seq: u64) -> UsageRecord {
    UsageRecord {
        cpu_pct: 40.0 + (seq % 7) as f64 * 8.5,
        net_tx_bytes: 100_000_000,
        ..UsageRecord::steady(machine, seq, UnixMillis(NEW_YEAR), 3_600_000)
    }
}

/// Feeds `running` the ledger's rows after `after`, as the engine does; returns the last row fed.
fn follow(running: &mut RunningTiers, ledger: &Ledger, after: i64) -> i64 {
    let lines = ledger.lines_after(after, usize::MAX).unwrap();
    lines.iter().for_each(|stored| running.add(stored));
    lines.last().map_or(after, |last| last.row_id)
}

/// What the per-record computation gives for the period and for today.
fn exact(ledger: &Ledger, card: &RateCard, now: UnixMillis) -> BTreeMap<String, TierAdjustment> {
    let period = adjustments(ledger, card, TimeRange { from: Some(month_of(now).0), to: None }).unwrap();
    let today = adjustments(ledger, card, TimeRange { from: Some(day_of(now)), to: None }).unwrap();
    period
        .into_iter()
        .map(|(machine, in_period)| {
            let adjustment = TierAdjustment { today: today.get(&machine).copied().unwrap_or_default(), period: in_period };
            (machine, adjustment)
        })
        .collect()
}

#[test]
fn running_sums_refreshed_batch_by_batch_price_the_period_as_the_record_by_record_walk_does() {
    let card = RateCard::parse(TWO_VERSIONS, "test").unwrap();
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ledger.db");
    // Three days of two machines, billed out of order in batches: late windows fill earlier hours.
    let mut records: Vec<UsageRecord> = (1..=72).flat_map(|seq| [hour("a", seq), hour("b", seq)]).collect();
    records.rotate_left(50);
    let now = UnixMillis(NEW_YEAR + 71 * 3_600_000);
    let (mut running, mut offset, mut seen) = (None, 0, 0);
    for batch in records.chunks(23) {
        bill(&path, &card, batch);
        offset += batch.len() as i64;
        let ledger = Ledger::open_read_only(&path).unwrap();
        let running = running.get_or_insert_with(|| RunningTiers::load(&ledger, now, 0).unwrap());
        seen = follow(running, &ledger, seen);
        assert_eq!(running.adjustments(&ledger, &card, now).unwrap(), exact(&ledger, &card, now), "after {offset} records");
    }
    let ledger = Ledger::open_read_only(&path).unwrap();
    let adjustments = running.unwrap().adjustments(&ledger, &card, now).unwrap();
    assert_eq!(adjustments.len(), 2);
    assert!(adjustments["a"].period < adjustments["a"].today && adjustments["a"].today < Decimal::ZERO, "{adjustments:?}");
}

#[test]
fn versions_interleaved_within_a_day_fall_back_to_the_record_by_record_walk() {
    // Two workers with different cards fed one view: their versions alternate hour by hour.
    let left = cpu_tiered_version("left", "2026-01-01T00:00:00Z", "50", "0.02");
    let right = cpu_tiered_version("right", "2025-12-01T00:00:00Z", "50", "0.03");
    let card = RateCard::parse(&format!("{left}\n{right}"), "both").unwrap();
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ledger.db");
    let (odd, even): (Vec<UsageRecord>, Vec<UsageRecord>) = (1..=30).map(|seq| hour("m", seq)).partition(|record| record.seq % 2 == 1);
    bill(&path, &RateCard::parse(&left, "left").unwrap(), &odd);
    bill(&path, &RateCard::parse(&right, "right").unwrap(), &even);
    let ledger = Ledger::open_read_only(&path).unwrap();
    let now = UnixMillis(NEW_YEAR + 29 * 3_600_000);
    let running = RunningTiers::load(&ledger, now, i64::MAX).unwrap();
    let adjustments = running.adjustments(&ledger, &card, now).unwrap();
    assert_eq!(adjustments, exact(&ledger, &card, now));
    assert!(adjustments["m"].period < Decimal::ZERO, "{adjustments:?}");
}

#[test]
fn a_card_without_tiers_keeps_no_sums_and_adjusts_nothing() {
    let card = RateCard::load(None).unwrap();
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ledger.db");
    bill(&path, &card, &[hour("m", 1)]);
    let ledger = Ledger::open_read_only(&path).unwrap();
    let mut engine = CostEngine::load(&ledger, card.clone(), UnixMillis(NEW_YEAR)).unwrap();
    engine.refresh(&ledger, UnixMillis(NEW_YEAR)).unwrap();
    assert!(engine.current_tiers.is_none(), "no sums kept");
    let running = RunningTiers::load(&ledger, UnixMillis(NEW_YEAR), i64::MAX).unwrap();
    assert!(running.adjustments(&ledger, &card, UnixMillis(NEW_YEAR)).unwrap().is_empty());
}

#[test]
fn the_record_path_and_the_running_sums_walk_the_same_runs_to_the_identical_adjustment() {
    use crate::billing::cost_engine::tiers::{ADJUSTMENT_DIGITS, record_runs};

    let card = RateCard::parse(TWO_VERSIONS, "test").unwrap();
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ledger.db");
    // 1,000 s windows over three days: t1 until noon on 2 January, t2 after, never interleaved. A
    // window's quantities repeat in decimal, so pricing other sums would differ in the last digits.
    let records: Vec<UsageRecord> = (1..=250)
        .map(|seq| UsageRecord { cpu_pct: 40.0 + (seq % 7) as f64 * 8.5, ..UsageRecord::steady("m", seq, UnixMillis(NEW_YEAR), 1_000_000) })
        .collect();
    bill(&path, &card, &records);
    let ledger = Ledger::open_read_only(&path).unwrap();
    let now = UnixMillis(NEW_YEAR + 250 * 1_000_000);
    let running = RunningTiers::load(&ledger, now, i64::MAX).unwrap();

    let mut chunks: Vec<&Chunk> = running.chunks["m"].values().collect();
    chunks.sort_by_key(|chunk| (chunk.first_start, chunk.last_start));
    let summed: Vec<Run> = chunks.into_iter().map(|chunk| chunk.run.clone()).collect();
    let from_records = record_runs(&ledger, &card, TimeRange { from: Some(month_of(now).0), to: None }).unwrap();
    assert_eq!(from_records["m"], summed, "the same runs");
    let versions: Vec<&str> = summed.iter().map(|run| run.version.as_str()).collect();
    assert_eq!(versions, ["t1", "t1", "t2", "t2"], "1 Jan, 2 Jan before and after noon, 3 Jan");

    let today = day_of(now).0;
    let by_records = walk("m", &from_records["m"], &card, today).unwrap();
    let by_sums = walk("m", &summed, &card, today).unwrap();
    assert_eq!(by_records, by_sums, "identical before any rounding");
    assert_ne!(by_sums.period, by_sums.period.round_dp(ADJUSTMENT_DIGITS), "the amounts compared carry all their digits");
    assert!(by_sums.period < by_sums.today && by_sums.today < Decimal::ZERO, "{by_sums:?}");
    assert_eq!(running.adjustments(&ledger, &card, now).unwrap(), exact(&ledger, &card, now), "and as handed out");
}
