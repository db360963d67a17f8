use rust_decimal::Decimal;

use super::*;

/// Hour index of Monday 2026-02-02 00:00 UTC.
const MONDAY: i64 = 1_769_990_400 / 3600;

/// An office week: 1.0 an hour on weekdays 09–17 UTC, nothing otherwise.
fn office_hour(hour: i64) -> f32 {
    let slot = hour_of_week(hour);
    let (day, hour_of_day) = (slot / 24, slot % 24);
    if day < 5 && (9..17).contains(&hour_of_day) { 1.0 } else { 0.0 }
}

fn costs_of(first: i64, hours: i64, cost: impl Fn(i64) -> f32) -> HourlyCosts {
    let mut costs = HourlyCosts::new(first);
    for hour in first..first + hours {
        costs.add(hour, cost(hour));
    }
    costs
}

fn at_hour(hour: i64) -> UnixMillis {
    UnixMillis(hour * 3_600_000)
}

fn inputs<'a>(costs: &'a HourlyCosts, fleet: Option<&'a FleetProfile>, now_hour: i64, end_hour: i64, billed: Decimal) -> Inputs<'a> {
    Inputs { hours: costs.view(now_hour), fleet, billed, now: at_hour(now_hour), period_end: at_hour(end_hour), prices_from: None }
}

#[test]
fn hours_of_the_week_start_on_monday() {
    assert_eq!(hour_of_week(MONDAY), 0);
    assert_eq!(hour_of_week(MONDAY + 24 * 5 + 10), 130, "Saturday 10:00");
    assert_eq!(hour_of_week(MONDAY - 1), 167, "Sunday 23:00");
}

#[test]
fn under_a_day_of_history_there_is_no_forecast_and_it_says_how_much_there_is() {
    let costs = costs_of(MONDAY, 5, |_| 1.0);
    let outlook = forecast(&inputs(&costs, None, MONDAY + 5, MONDAY + 24 * 28, Decimal::from(5)));
    assert_eq!(outlook, Outlook::NotEnoughHistory { hours: 5 });
    assert_eq!(outlook.why_none().unwrap(), "not enough history to project (5 h so far)");
}

#[test]
fn three_office_weeks_forecast_the_fourth_hour_by_hour() {
    let costs = costs_of(MONDAY, 21 * 24, office_hour);
    // Monday of the fourth week, 00:00: 40 working hours left until Saturday.
    let now = MONDAY + 21 * 24;
    let Outlook::Forecast(made) = forecast(&inputs(&costs, None, now, now + 7 * 24, Decimal::from(120))) else { panic!() };
    assert_eq!((made.method, made.weeks), (Method::Seasonal, 3));
    assert_eq!(made.estimate, Decimal::from(160), "120 billed and 5 days of 8 hours");
    assert_eq!((made.low, made.high), (made.estimate, made.estimate), "past weeks were exact: no spread");
    assert_eq!(made.path.len(), 7);
    assert_eq!(made.path[0], Decimal::from(128), "Monday's 8 hours");
    assert_eq!(made.path[6], made.estimate);
    // From Saturday on, the line at the last week's average rate would have added 40 × 2/7 a day;
    // the profile adds nothing for the weekend.
    let saturday = now + 5 * 24;
    let Outlook::Forecast(weekend) = forecast(&inputs(&costs, None, saturday, saturday + 48, Decimal::ZERO)) else { panic!() };
    assert_eq!(weekend.estimate, Decimal::ZERO);
}

#[test]
fn a_new_machine_borrows_the_fleets_pattern_and_without_one_draws_a_line() {
    let now = MONDAY + 21 * 24 + 48;
    let veteran = costs_of(MONDAY, 21 * 24 + 48, office_hour);
    // Two days of its own, Monday and Tuesday of the fourth week: 16 and 24, so 2.5 times the fleet.
    let newcomer = costs_of(MONDAY + 21 * 24, 48, |hour| if hour < MONDAY + 22 * 24 { 2.0 } else { 3.0 } * office_hour(hour));
    let fleet = FleetProfile::of([veteran.view(now)]).unwrap();
    let Outlook::Forecast(borrowed) = forecast(&inputs(&newcomer, Some(&fleet), now, now + 5 * 24, Decimal::from(40))) else { panic!() };
    assert_eq!(borrowed.method, Method::FleetPattern);
    assert_eq!(borrowed.estimate, Decimal::from(40 + 3 * 20), "three more working days at its own level, none at the weekend");
    let Outlook::Forecast(line) = forecast(&inputs(&newcomer, None, now, now + 5 * 24, Decimal::from(40))) else { panic!() };
    assert_eq!(line.method, Method::Line);
    assert_eq!(line.estimate, Decimal::from(40 + 5 * 20), "the average rate of its two days, every day");
    assert!(line.low < line.estimate && line.estimate < line.high, "a line has a spread: its days differ");
}

#[test]
fn a_machine_asleep_all_week_forecasts_what_it_billed_flagged_never_a_division_by_zero() {
    let costs = costs_of(MONDAY, 14 * 24, |hour| if hour < MONDAY + 7 * 24 { office_hour(hour) } else { 0.0 });
    let now = MONDAY + 14 * 24;
    let Outlook::Forecast(made) = forecast(&inputs(&costs, None, now, now + 10 * 24, Decimal::from(3))) else { panic!() };
    assert!(made.flags.contains(&Flag::NothingLastWeek));
    assert!(made.estimate >= Decimal::from(3) && made.estimate <= Decimal::from(3 + 40), "{made:?}");
    assert!(made.low >= Decimal::from(3), "the band never drops below what is billed");
    // A day of history, all of it asleep: nothing to scale a pattern by, so no figure.
    let new_and_asleep = costs_of(MONDAY, 24, |_| 0.0);
    let outlook = forecast(&inputs(&new_and_asleep, None, MONDAY + 24, MONDAY + 30 * 24, Decimal::ZERO));
    assert_eq!(outlook, Outlook::NotEnoughHistory { hours: 24 });
    // Four weeks of nothing at all: its own weeks say nothing, flagged, and never a division by zero.
    let silent = costs_of(MONDAY, 30 * 24, |_| 0.0);
    let Outlook::Forecast(silent) = forecast(&inputs(&silent, None, MONDAY + 30 * 24, MONDAY + 31 * 24, Decimal::ZERO)) else { panic!() };
    assert_eq!((silent.estimate, silent.low, silent.high), (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO));
}

#[test]
fn noisy_weeks_give_a_band_that_widens_with_the_days_left() {
    // Office hours with each day's level drawn from a fixed sequence around 1.
    let level = |hour: i64| 0.6 + ((hour / 24 * 7919) % 9) as f32 / 10.0;
    let costs = costs_of(MONDAY, 28 * 24, |hour| office_hour(hour) * level(hour));
    let now = MONDAY + 28 * 24;
    let Outlook::Forecast(near) = forecast(&inputs(&costs, None, now, now + 3 * 24, Decimal::ZERO)) else { panic!() };
    let Outlook::Forecast(far) = forecast(&inputs(&costs, None, now, now + 21 * 24, Decimal::ZERO)) else { panic!() };
    assert!(near.low < near.estimate && near.estimate < near.high, "{near:?}");
    let width = |forecast: &Forecast| forecast.high - forecast.low;
    assert!(width(&far) > width(&near) * Decimal::TWO, "{} vs {}", width(&far), width(&near));
    let points = far.points();
    assert_eq!(points.last().map(|point| (point.low, point.high)), Some((far.low, far.high)), "the chart ends on the figure");
    assert!(points.windows(2).all(|pair| pair[0].high - pair[0].low <= pair[1].high - pair[1].low), "the band widens day by day");
}

#[test]
fn a_day_of_history_is_flagged_with_a_band_as_wide_as_a_day_and_a_price_change_is_flagged() {
    // One Monday of office hours, forecast for the 20 days after it.
    let costs = costs_of(MONDAY, 24, office_hour);
    let Outlook::Forecast(first) = forecast(&inputs(&costs, None, MONDAY + 24, MONDAY + 21 * 24, Decimal::from(8))) else { panic!() };
    assert_eq!((first.method, first.flags.as_slice()), (Method::Line, [Flag::UnderAWeek].as_slice()));
    assert_eq!(first.daily_spread, Decimal::from(8), "one day says nothing of how days differ: a day's cost");
    assert!(first.high - first.low > Decimal::from(8 * 20), "wider than the forecast itself: {first:?}");
    // Prices that changed a week ago, with four weeks learned from: flagged; changed before them: not.
    let weeks = costs_of(MONDAY, 28 * 24, office_hour);
    let now = MONDAY + 28 * 24;
    let changed = |hour: i64| Inputs { prices_from: Some(at_hour(hour)), ..inputs(&weeks, None, now, now + 48, Decimal::ZERO) };
    let Outlook::Forecast(recent) = forecast(&changed(now - 7 * 24)) else { panic!() };
    assert_eq!(recent.flags, [Flag::PricesChanged]);
    let Outlook::Forecast(settled) = forecast(&changed(MONDAY)) else { panic!() };
    assert!(settled.flags.is_empty(), "{:?}", settled.flags);
}

#[test]
fn the_path_keeps_six_digits_never_falls_below_the_billed_cost_and_ends_on_the_estimate() {
    let costs = costs_of(MONDAY, 21 * 24, office_hour);
    let now = MONDAY + 21 * 24;
    // Billed to the last digit a decimal holds: the path's days must not carry all of them.
    let billed = Decimal::from(120) + Decimal::ONE / Decimal::from(7);
    let Outlook::Forecast(made) = forecast(&inputs(&costs, None, now, now + 7 * 24, billed)) else { panic!() };
    let (days, last) = made.path.split_at(made.path.len() - 1);
    assert_eq!(last, [made.estimate], "the last point is the estimate, exactly");
    assert!(made.estimate.scale() > FORECAST_DIGITS, "the estimate keeps the billed cost's digits: {}", made.estimate);
    for day in days {
        assert!(day.scale() <= FORECAST_DIGITS, "{day} has more than {FORECAST_DIGITS} decimals");
        assert!(*day >= billed, "{day} falls below the billed {billed}");
    }
    assert_eq!(days[0], "128.142858".parse::<Decimal>().unwrap(), "Monday's 8 hours on 120 + 1/7, rounded up");
}
