//! The forecast: budgets, the summary topic and the Costs tab give one figure and one band for the
//! same ledger, and the tab shows the band, or says there is too little history to draw one.

use std::sync::Arc;
use std::time::Duration;

use egui_kittest::kittest::Queryable;
use rust_decimal::Decimal;
use usagebill::billing::budget::{AlertTracker, Budgets};
use usagebill::billing::cost_engine::{CostEngine, CostSummary, Outlook};
use usagebill::billing::ledger::Ledger;
use usagebill::billing::rate_card::RateCard;
use usagebill::gui::costs_table::{CostTable, TableChoice};
use usagebill::gui::format;
use usagebill::record::UnixMillis;

use super::{STEADY, app, click, embedded_settings, manual_only, open_app, script, wait_for};
use crate::util::{HOUR, bill_office_hours};

#[test]
fn budgets_the_summary_topic_and_the_costs_tab_give_one_figure_and_one_band() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ledger.db");
    // Monday 2026-01-05 00:00 UTC, then five days; the forecast is made on Saturday at 00:30.
    let monday = UnixMillis(1_767_571_200_000);
    bill_office_hours(&path, "m", monday, 5 * 24);
    let now = monday.plus_millis(5 * 24 * HOUR + HOUR / 2);
    let ledger = Ledger::open(&path).unwrap();

    let mut engine = CostEngine::load(&ledger, RateCard::built_in(), now).unwrap();
    let computed = engine.summaries(&ledger, &["m".to_owned()], now).unwrap().remove(0);
    // The desktop reads it from the summary topic: the same forecast after the trip.
    let summary = CostSummary::parse(&computed.encode()).unwrap();
    assert_eq!(summary, computed);
    let Outlook::Forecast(forecast) = summary.outlook_at(now) else { panic!("five days give a forecast: {:?}", summary.forecast) };
    assert!(forecast.low < forecast.estimate && forecast.estimate < forecast.high, "a band with width: {forecast:?}");
    assert!(forecast.billed == summary.period && forecast.estimate > forecast.billed, "{forecast:?}");

    // A budget the forecast crosses later in the month: the alert names the summary's figure and day.
    let budget = (forecast.billed + forecast.estimate) / Decimal::TWO;
    let pairs = [("m".to_owned(), budget.round_dp(2).to_string())];
    let budgets = Budgets::parse(pairs.iter().map(|(key, value)| (key, value))).unwrap();
    let alerts = AlertTracker::from_ledger(&ledger, RateCard::built_in()).unwrap().check(&ledger, &budgets, now).unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let (expected, day) = summary.crossing(budget.round_dp(2), now).unwrap();
    assert_eq!((alerts[0].projected, alerts[0].crossing_day), (forecast.estimate, Some(day)));
    assert_eq!(expected, forecast.estimate);
    assert!(day > now.utc_day_start() && day < forecast.period_end, "crosses on a later day of the month: {day}");

    // The Costs tab: the machine's row and the fleet line carry the same estimate and band.
    let table = CostTable::build(&Arc::new(vec![summary.clone()]), &TableChoice::default(), Some("m"), now);
    let row = table.own.as_ref().unwrap();
    assert_eq!((row.projected, row.projected_low, row.projected_high), (Some(forecast.estimate), Some(forecast.low), Some(forecast.high)));
    let fleet = table.total.forecast.as_ref().unwrap();
    assert_eq!(format::forecast_line(fleet, "USD"), format::forecast_line(&forecast, "USD"));
    assert_eq!(table.total.without_forecast, 0);
}

#[test]
fn the_costs_tab_shades_the_band_or_says_how_much_history_there_is() {
    let data = tempfile::tempdir().unwrap();
    let settings = embedded_settings(data.path(), "desk-1");
    let ledger = settings.ledger_path();
    // `fresh` has three hours of history; `seasoned` has four days up to the current hour.
    let this_hour = UnixMillis(UnixMillis::now().0 / HOUR * HOUR);
    bill_office_hours(&ledger, "fresh", this_hour.plus_millis(-3 * HOUR), 3);
    bill_office_hours(&ledger, "seasoned", this_hour.plus_millis(-96 * HOUR), 96);
    let mut harness = open_app(settings, manual_only(), script(data.path(), &[STEADY]));
    click(&mut harness, "Costs");
    wait_for(&mut harness, "both machines' summaries", Duration::from_secs(20), |app| app.live().costs.summaries.len() == 2);
    click(&mut harness, "Period and forecast");

    click(&mut harness, "fresh");
    harness.run_ok();
    let drawn = app(&harness).costs_view().forecast().unwrap().clone();
    assert_eq!(drawn.machine, "fresh");
    assert_eq!(drawn.none.as_deref(), Some("not enough history to project (3 h so far)"));
    assert!(drawn.band.is_empty(), "no band without a forecast: {drawn:?}");
    harness.get_by_label_contains("not enough history to project (3 h so far)");
    assert!(harness.query_all_by_label("too new").count() >= 1, "its row says so instead of a number");

    click(&mut harness, "seasoned");
    harness.run_ok();
    let drawn = app(&harness).costs_view().forecast().unwrap().clone();
    assert_eq!((drawn.machine.as_str(), drawn.none.as_ref()), ("seasoned", None));
    assert!(drawn.band.len() >= 2, "the band runs from now to the period's end: {drawn:?}");
    assert!(drawn.band.iter().skip(1).all(|[_, low, high]| low < high), "a shaded area, not a line: {:?}", drawn.band);
    let summaries = app(&harness).live().costs.summaries.clone();
    let seasoned = summaries.iter().find(|summary| summary.machine_id == "seasoned").unwrap();
    let Some(forecast) = seasoned.forecast.forecast() else { panic!("{:?}", seasoned.forecast) };
    // Once on the fleet line (this fleet's only forecast) and once above the chart.
    assert_eq!(harness.query_all_by_label_contains(&format::forecast_line(forecast, "USD")).count(), 2);
    harness.get_by_label_contains("1 machine(s) too new to forecast");
}
