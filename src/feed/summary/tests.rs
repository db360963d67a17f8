use rust_decimal::Decimal;

use super::*;
use crate::billing::cost_engine::{CostSummary, SUMMARY_SCHEMA, Series};
use crate::billing::rate_card::{RateCard, cpu_tiered_version};
use crate::record::UnixMillis;

/// 2026-01-01T00:00:00Z.
const NEW_YEAR: i64 = 1_767_225_600_000;
const HOUR: i64 = 3_600_000;

fn tiered_card() -> RateCard {
    RateCard::parse(&cpu_tiered_version("t1", "2025-01-01T00:00:00Z", "20", "0.01"), "test").unwrap()
}

fn summary(machine: &str, revision: u64, period: &str) -> CostSummary {
    CostSummary {
        schema: SUMMARY_SCHEMA.into(),
        machine_id: machine.into(),
        revision,
        computed_at: UnixMillis(NEW_YEAR),
        currency: "USD".into(),
        card_version: "t1".into(),
        day_start: UnixMillis(NEW_YEAR),
        period_start: UnixMillis(NEW_YEAR),
        today: period.parse().unwrap(),
        period: period.parse().unwrap(),
        period_records: revision,
        gaps: 0,
        asleep_ms: 0,
        late_ms: 0,
        clock_steps: 0,
        last_seen: UnixMillis(NEW_YEAR + HOUR),
        burn_per_hour: Decimal::ONE,
        forecast: crate::billing::cost_engine::Outlook::Unknown,
        hourly: Series { from: UnixMillis(NEW_YEAR), costs: vec![Decimal::ONE] },
        daily: Series { from: UnixMillis(NEW_YEAR), costs: vec![Decimal::ONE] },
        periods: Vec::new(),
    }
}

#[test]
fn a_book_keeps_the_newest_revision_and_skips_what_it_cannot_show() {
    let mut book = SummaryBook::new();
    let card = tiered_card();
    assert_eq!(book.offer(&summary("m", 5, "1.5").encode(), Some(&card)), SummaryOffer::Taken);
    assert_eq!(book.offer(&summary("m", 4, "1.2").encode(), Some(&card)), SummaryOffer::Older, "a late, older summary");
    assert_eq!(book.get("m").unwrap().period, "1.5".parse::<Decimal>().unwrap());
    assert_eq!(book.offer(&summary("m", 6, "1.8").encode(), Some(&card)), SummaryOffer::Taken);
    let unknown = CostSummary { card_version: "t9".into(), ..summary("n", 1, "1") };
    let SummaryOffer::Skipped(reason) = book.offer(&unknown.encode(), Some(&card)) else { panic!("an unknown card version is skipped") };
    assert!(reason.contains("\"t9\""), "{reason}");
    let negative = summary("n", 1, "-1");
    assert!(matches!(book.offer(&negative.encode(), None), SummaryOffer::Skipped(reason) if reason.contains("negative")));
    assert!(matches!(book.offer(b"{not json", None), SummaryOffer::Skipped(_)));
    let text = String::from_utf8(summary("n", 1, "1").encode()).unwrap().replace("\"USD\"", "\"usd\"");
    assert!(matches!(book.offer(text.as_bytes(), None), SummaryOffer::Skipped(reason) if reason.contains("\"usd\"")));
    assert_eq!(book.len(), 1);
    assert_eq!(book.skipped().0, 4);
}

#[test]
fn a_summary_of_an_earlier_day_or_period_shows_nothing_for_today() {
    let held = summary("m", 5, "2");
    let next_day = UnixMillis(NEW_YEAR + 24 * HOUR + 5);
    assert_eq!(held.today_at(next_day), Decimal::ZERO);
    assert_eq!(held.period_at(next_day), "2".parse::<Decimal>().unwrap());
    let next_month = UnixMillis(NEW_YEAR + 31 * 24 * HOUR);
    assert_eq!(held.period_at(next_month), Decimal::ZERO);
    assert_eq!(held.period_cost(UnixMillis(NEW_YEAR)), Some(("2".parse().unwrap(), 5)));
}

fn shard_of_live(lives: Vec<crate::billing::cost_engine::LiveCost>) -> Vec<u8> {
    live::LiveShard { schema: live::LIVE_SCHEMA.into(), shard: 0, sent_at: UnixMillis(NEW_YEAR), machines: lives }.encode()
}

#[test]
fn newer_live_figures_lie_over_the_summary_until_a_newer_summary_comes() {
    let mut book = SummaryBook::new();
    let mut held = summary("m", 5, "1.5");
    let forecast = crate::billing::cost_engine::Forecast {
        method: crate::billing::cost_engine::forecast::Method::Line,
        history_hours: 30,
        weeks: 0,
        made_at: UnixMillis(NEW_YEAR),
        period_end: UnixMillis(NEW_YEAR + 31 * 24 * HOUR),
        billed: "1.5".parse().unwrap(),
        estimate: "10".parse().unwrap(),
        low: "8".parse().unwrap(),
        high: "12".parse().unwrap(),
        daily_spread: Decimal::ONE,
        level_spread: Decimal::ZERO,
        path: vec!["10".parse().unwrap()],
        flags: Vec::new(),
    };
    held.forecast = crate::billing::cost_engine::Outlook::Forecast(forecast);
    assert_eq!(book.offer(&held.encode(), None), SummaryOffer::Taken);
    let mut newer = summary("m", 9, "2").live();
    newer.computed_at = UnixMillis(NEW_YEAR + 10);
    newer.gaps = 2;
    let older = summary("m", 4, "1").live();
    let stranger = summary("x", 3, "0.3").live();
    assert_eq!(book.offer_live(&shard_of_live(vec![newer.clone(), older, stranger])), 1, "only the newer figures of a held machine");
    let shown = book.get("m").unwrap();
    assert_eq!((shown.revision, shown.period, shown.gaps, shown.period_records), (9, "2".parse().unwrap(), 2, 9));
    let forecast = shown.forecast.forecast().unwrap();
    assert_eq!(
        (forecast.estimate, forecast.low, forecast.high),
        ("10.5".parse().unwrap(), "8.5".parse().unwrap(), "12.5".parse().unwrap())
    );
    assert_eq!(shown.hourly, held.hourly, "the series stay as the summary computed them");
    assert!(book.get("x").is_none(), "live figures alone are held until their summary comes");
    // A newer summary of fewer records than the live figures: its series, with the live figures on top.
    let mut next = summary("m", 7, "1.8");
    next.computed_at = UnixMillis(NEW_YEAR + 5);
    next.hourly.costs = vec![Decimal::TWO];
    assert_eq!(book.offer(&next.encode(), None), SummaryOffer::Taken);
    let shown = book.get("m").unwrap();
    assert_eq!((shown.revision, shown.period, shown.hourly.costs.clone()), (9, "2".parse().unwrap(), vec![Decimal::TWO]));
    assert_eq!(book.offer(&summary("x", 3, "0.3").encode(), None), SummaryOffer::Taken);
    assert_eq!(book.get("x").unwrap().revision, 3);
    assert_eq!(book.offer_live(b"{\"schema\":1}"), 0);
    assert_eq!(book.skipped().0, 1, "a broken shard is skipped with its reason: {:?}", book.skipped().1);
}
