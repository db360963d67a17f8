use std::path::Path;

use rust_decimal::Decimal;

use super::*;
use crate::billing::biller::bill_records as bill;
use crate::billing::ledger::Ledger;
use crate::billing::rate_card::{RateCard, cpu_tiered_version};
use crate::billing::report::{TimeRange, machine_totals};
use crate::record::{UnixMillis, UsageRecord};

/// 2026-01-01T00:00:00Z.
const NEW_YEAR: i64 = 1_767_225_600_000;
const HOUR: i64 = 3_600_000;

/// A card tiered from 20 core-hours a month (each record below is 4–7 core-hours).
fn tiered_card() -> RateCard {
    RateCard::parse(&cpu_tiered_version("t1", "2025-01-01T00:00:00Z", "20", "0.01"), "test").unwrap()
}

/// Hourly windows of `machine` from `first_start`, seqs `seqs`, the load varying with the seq.
fn hours(machine: &str, first_start: i64, seqs: std::ops::RangeInclusive<u64>) -> Vec<UsageRecord> {
    seqs.map(|seq| UsageRecord {
        cpu_pct: 50.0 + (seq % 5) as f64 * 9.0,
        ..UsageRecord::steady(machine, seq, UnixMillis(first_start), HOUR)
    })
    .collect()
}

/// What `report` gives for `machine` over `[from, to)`: the flat total plus the tier adjustment.
fn reported(ledger: &Ledger, card: &RateCard, machine: &str, from: i64, to: Option<i64>) -> Decimal {
    let range = TimeRange { from: Some(UnixMillis(from)), to: to.map(UnixMillis) };
    let flat =
        machine_totals(ledger, range).unwrap().into_iter().find(|total| total.machine_id == machine).map_or(Decimal::ZERO, |t| t.cost);
    let tiers = super::tiers::adjustments(ledger, card, range).unwrap().get(machine).copied().unwrap_or_default();
    (flat + tiers).normalize()
}

/// Two machines over December's last two days and January's first three; `now` is 3 January, 10:30.
fn fleet(path: &Path, card: &RateCard) -> UnixMillis {
    let december_30 = NEW_YEAR - 2 * 24 * HOUR;
    let mut records = hours("rack-a", december_30, 1..=106);
    // rack-b: seqs 5–8 missing (a gap), and one window billed twice.
    records.extend(hours("rack-b", december_30, 1..=4));
    records.extend(hours("rack-b", december_30, 9..=100));
    records.extend(hours("rack-b", december_30, 50..=50));
    bill(path, card, &records);
    UnixMillis(NEW_YEAR + 2 * 24 * HOUR + 10 * HOUR + 30 * 60_000)
}

#[test]
fn a_summary_equals_the_report_over_its_day_period_and_earlier_periods() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ledger.db");
    let card = tiered_card();
    let now = fleet(&path, &card);
    let ledger = Ledger::open_read_only(&path).unwrap();
    let mut engine = CostEngine::load(&ledger, card.clone(), now).unwrap();
    let machines = engine.machines();
    assert_eq!(machines, ["rack-a", "rack-b"]);
    let summaries = engine.summaries(&ledger, &machines, now).unwrap();
    let day = now.utc_day_start().0;
    for summary in &summaries {
        let machine = summary.machine_id.as_str();
        assert_eq!(summary.period, reported(&ledger, &card, machine, NEW_YEAR, None), "{machine}: the period");
        assert_eq!(summary.today, reported(&ledger, &card, machine, day, None), "{machine}: today");
        let december = &summary.periods[0];
        assert_eq!(december.start.0, NEW_YEAR - 31 * 24 * HOUR);
        assert_eq!(december.cost, reported(&ledger, &card, machine, december.start.0, Some(NEW_YEAR)), "{machine}: December");
        assert_eq!(december.records, if machine == "rack-a" { 48 } else { 44 }, "{machine}: rack-b misses seqs 5–8");
        assert!(summary.period < summary.periods.iter().map(|p| p.cost).sum::<Decimal>() * Decimal::from(10), "tiers were applied");
        assert_eq!(summary.daily.costs.len(), 3, "1–3 January");
        assert_eq!(summary.daily.costs.iter().sum::<Decimal>(), reported(&ledger, &RateCard::built_in(), machine, NEW_YEAR, None));
        assert_eq!(summary.hourly.costs.len(), HOURLY_SPAN);
        assert_eq!(summary.currency, "USD");
        assert_eq!(summary.card_version, "t1");
    }
    let live = engine.live_costs(&ledger, &machines, now).unwrap();
    assert_eq!(live, summaries.iter().map(CostSummary::live).collect::<Vec<_>>(), "live costs are the summaries' figures");
    let (a, b) = (&summaries[0], &summaries[1]);
    assert_eq!((a.revision, a.gaps, a.period_records), (106, 0, 58));
    assert_eq!((b.revision, b.gaps), (96, 4), "the window billed twice counts once; seqs 5–8 are a gap");
    assert_eq!(a.last_seen.0, NEW_YEAR - 2 * 24 * HOUR + 106 * HOUR);
    let Outlook::Forecast(forecast) = a.outlook_at(now) else { panic!("{:?}", a.forecast) };
    assert_eq!(forecast.method, forecast::Method::Line, "four days of history: a line");
    assert!(forecast.low <= forecast.estimate && forecast.estimate <= forecast.high && forecast.estimate > a.period, "{forecast:?}");
}

#[test]
fn refreshed_summaries_equal_those_of_a_fresh_load() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ledger.db");
    let card = tiered_card();
    let now = fleet(&path, &card);
    let ledger = Ledger::open_read_only(&path).unwrap();
    let mut running = CostEngine::load(&ledger, card.clone(), now).unwrap();
    let machines = running.machines();
    running.summaries(&ledger, &machines, now).unwrap();
    // Later: new windows, a late one of December, a duplicate, and a new machine.
    let mut more = hours("rack-a", NEW_YEAR - 2 * 24 * HOUR, 107..=108);
    more.extend(hours("rack-b", NEW_YEAR - 2 * 24 * HOUR, 5..=6));
    more.extend(hours("rack-b", NEW_YEAR - 2 * 24 * HOUR, 100..=100));
    more.extend(hours("rack-c", NEW_YEAR, 1..=3));
    bill(&path, &card, &more);
    let later = now.plus_millis(2 * HOUR);
    let touched = running.refresh(&ledger, later).unwrap().machines;
    assert_eq!(touched, ["rack-a", "rack-b", "rack-c"]);
    let machines = running.machines();
    let refreshed = running.summaries(&ledger, &machines, later).unwrap();
    let fresh = CostEngine::load(&ledger, card, later).unwrap().summaries(&ledger, &machines, later).unwrap();
    assert_eq!(refreshed, fresh);
    assert_eq!(refreshed[1].gaps, 2, "seqs 5–6 filled in");
    assert_eq!(refreshed[1].periods[0].records, 46, "the late December windows count in December");
}
