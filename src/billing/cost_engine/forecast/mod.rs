//! The one forecast of a period's cost to its end. Budgets, the summaries the workers publish, the
//! Costs and Usage tabs, `report` and the API all read the figure and band computed here, so no two
//! of them can disagree (see docs/billing.md, "Forecast").
//!
//! - What is billed so far stays exact; the rest of the period is forecast hour by hour from an
//!   hour-of-week profile: the machine's own (the mean of each hour of the week over its last four
//!   weeks, moved halfway to its last week's level), or with under a week of its own, the fleet's
//!   pattern scaled to the machine, or with under a week of the fleet's, a straight line at the
//!   machine's average rate. Under a day of history there is no forecast.
//! - The band is the 10 %–90 % interval of the error, calibrated on the machine's own past:
//!   each past day is forecast from the weeks before it, and the spread of those errors, carried
//!   over the days left, gives the band (with a week's worth of the fleet's spread, scaled to the
//!   machine, mixed in).
//!
//! A forecast is an estimate, computed in floating point and rounded to [`FORECAST_DIGITS`]
//! places; no bill is made from it. It forecasts flat amounts: a graduated tier's discount on
//! usage still to come is not taken off (the billed part has it).

pub mod backtest;
mod fleet;
mod hourly;
mod outlook;
mod profile;

use rust_decimal::{Decimal, RoundingStrategy};

pub use self::fleet::FleetProfile;
pub use self::hourly::{HourView, HourlyCosts, hour_of_millis};
pub use self::outlook::{Flag, Forecast, Method, Outlook, PathPoint};
use self::profile::{Profile, fleet_profile, line, own_profile, past_day_errors, profile_weeks, quiet_days};
use crate::record::UnixMillis;

/// Hours in a week: the profile's slots.
pub const WEEK_HOURS: usize = 168;
/// Weeks of hourly history a profile learns from, at most.
pub const PROFILE_WEEKS: usize = 4;
/// Hours kept per machine: the profile's weeks and one more, so that the oldest past day the band
/// is calibrated on has weeks before it too.
pub const KEPT_HOURS: usize = (PROFILE_WEEKS + 1) * WEEK_HOURS;
/// Below this many hours of history no forecast is made.
pub const MIN_HISTORY_HOURS: i64 = 24;
/// Days of the fleet's typical error mixed into a machine's own past errors for its band: a prior
/// worth a week.
pub const PRIOR_DAYS: f64 = 7.0;
/// Decimal places of a forecast's amounts.
pub const FORECAST_DIGITS: u32 = 6;
/// The band's quantiles, in percent.
pub const BAND_PERCENTILES: (u32, u32) = (10, 90);
/// The 90th percentile of the standard normal distribution: the band is the estimate ± this many
/// standard deviations of the error.
const Z_90: f64 = 1.281_551_6;

/// The hour of the week (0 = Monday 00:00–01:00 UTC) of hour index `hour`.
pub fn hour_of_week(hour: i64) -> usize {
    // Hour index 0 (1970-01-01 00:00 UTC) fell on a Thursday: 72 hours after a Monday's start.
    (hour + 72).rem_euclid(WEEK_HOURS as i64) as usize
}

/// What a forecast is made from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The machine's hourly costs, as known at `now`.
    pub hours: HourView<'a>,
    /// The fleet's pattern, when one is known.
    pub fleet: Option<&'a FleetProfile>,
    /// What the period has billed so far (exact, tiers applied).
    pub billed: Decimal,
    /// When the forecast is made.
    pub now: UnixMillis,
    /// The end of the period.
    pub period_end: UnixMillis,
    /// Since when the prices the machine is billed at now hold (the rate card version's start).
    pub prices_from: Option<UnixMillis>,
}

/// The forecast of the period holding `inputs.now`, to its end.
pub fn forecast(inputs: &Inputs<'_>) -> Outlook {
    let hours = inputs.hours;
    let history = hours.history_hours();
    if history < MIN_HISTORY_HOURS {
        return Outlook::NotEnoughHistory { hours: history as u64 };
    }
    let fleet_quiet = inputs.fleet.map(|fleet| &fleet.quiet_days);
    let profile = own_profile(hours, fleet_quiet)
        .or_else(|| inputs.fleet.and_then(|fleet| fleet_profile(hours, fleet)))
        .unwrap_or_else(|| line(hours));
    // Under a week of its own, a machine that has cost nothing yet (a laptop asleep since it was
    // set up) gives no level to scale a pattern or draw a line by: a figure of zero with no band
    // would claim a certainty nobody has.
    if profile.method != Method::Seasonal && hours.sum(hours.earliest(), hours.until()) <= 0.0 {
        return Outlook::NotEnoughHistory { hours: history as u64 };
    }
    let spread = daily_spread(hours, &profile, inputs.fleet);
    let until = hours.until();
    let mut flags = Vec::new();
    if history < WEEK_HOURS as i64 {
        flags.push(Flag::UnderAWeek);
    } else if hours.sum(until - WEEK_HOURS as i64, until) == 0.0 {
        flags.push(Flag::NothingLastWeek);
    }
    let learned_from = hours.earliest().max(until - (PROFILE_WEEKS * WEEK_HOURS) as i64);
    if inputs.prices_from.is_some_and(|from| hour_of_millis(from.0) > learned_from) {
        flags.push(Flag::PricesChanged);
    }
    // Hour by hour to the end, each day's end marking a point of the path.
    let (mut remaining, mut path) = (0.0, Vec::new());
    let mut at = inputs.now.0;
    let hour_millis = crate::billing::cost_engine::calendar::HOUR_MILLIS;
    let day_millis = crate::billing::cost_engine::calendar::DAY_MILLIS;
    while at < inputs.period_end.0 {
        let hour = hour_of_millis(at);
        let next = ((hour + 1) * hour_millis).min(inputs.period_end.0);
        remaining += profile.slots[hour_of_week(hour)] * (next - at) as f64 / hour_millis as f64;
        at = next;
        if at % day_millis == 0 || at == inputs.period_end.0 {
            path.push(remaining);
        }
    }
    let billed = inputs.billed;
    let money = |value: f64| Decimal::try_from(value.max(0.0)).unwrap_or_default().round_dp(FORECAST_DIGITS);
    let estimate = (billed + money(remaining)).normalize();
    let mut forecast = Forecast {
        method: profile.method,
        history_hours: history as u64,
        weeks: profile.weeks as u32,
        made_at: inputs.now,
        period_end: inputs.period_end,
        billed,
        estimate,
        low: estimate,
        high: estimate,
        daily_spread: money(spread),
        level_spread: Decimal::try_from(profile.level_spread(spread)).unwrap_or_default().round_dp(FORECAST_DIGITS),
        path: path_points(billed, path.into_iter().map(money), estimate),
        flags,
    };
    // The band at the period's end is the path's last point's, so the figure and the chart agree.
    if let Some(last) = forecast.points().last() {
        (forecast.low, forecast.high) = (last.low.normalize(), last.high.normalize());
    }
    Outlook::Forecast(forecast)
}

/// The band's half-width over `days` days, with `remaining` forecast for them, for a daily error
/// spread `spread` (the standard deviation of one past day's error). Each day left adds its own
/// noise (growing with √days); the profile's own error, learned from `weeks` weeks, recurs in every
/// day left (growing with days): a past day's error holds both, in the share
/// [`profile::error_share`] says, so they are split again before being carried over the days left.
/// And the level the profile was scaled by, itself measured over a few days, is off by a relative
/// `level_spread` in every hour left alike.
pub fn band_half_width(spread: f64, days: f64, weeks: usize, remaining: f64, level_spread: f64) -> f64 {
    let share = profile::error_share(weeks);
    // A day of the week recurs once a week: over fewer than 7 days each profile error counts once.
    let days_variance = spread * spread * (days * (1.0 - share) + days.max(days * days / 7.0) * share);
    let level_variance = (level_spread * remaining).powi(2);
    Z_90 * (days_variance + level_variance).max(0.0).sqrt()
}

/// The standard deviation of one day's forecast error for this machine: the root mean square of
/// its own past days' errors (each day forecast from the weeks before it), mixed with a prior worth
/// [`PRIOR_DAYS`] days: the fleet's typical error at the machine's level, once the fleet has a week
/// of past days (so that a machine whose few past days were all ordinary still allows for the day
/// off or the holiday the fleet has seen), else the spread of the machine's days around its profile.
fn daily_spread(hours: HourView<'_>, profile: &Profile, fleet: Option<&FleetProfile>) -> f64 {
    let daily_level: f64 = profile.slots.iter().sum::<f64>() / 7.0;
    let quiet = fleet.map_or_else(|| quiet_days(&profile.slots), |fleet| fleet.quiet_days);
    let prior = match fleet.and_then(|fleet| fleet.relative_daily_spread) {
        Some(relative) => relative * daily_level,
        None if profile.method == Method::Seasonal => leave_one_day_out_spread(hours, &quiet),
        None => spread_around(hours, profile),
    };
    if profile.method != Method::Seasonal {
        return prior;
    }
    let errors = past_day_errors(hours, fleet.map(|fleet| &fleet.quiet_days));
    let own_squares: f64 = errors.iter().map(|error| error * error).sum();
    ((own_squares + PRIOR_DAYS * prior * prior) / (errors.len() as f64 + PRIOR_DAYS)).sqrt()
}

/// The spread of the machine's known days (up to four weeks) each forecast from the others: an
/// hour of a day as the mean of the same hour of the other days of its kind (busy or quiet, as
/// `quiet` says by day of the week). What stands for past forecasts while no day had a week before it.
fn leave_one_day_out_spread(hours: HourView<'_>, quiet: &[bool; 7]) -> f64 {
    let until = hours.until();
    let days = ((until - hours.earliest()) / 24).min((PROFILE_WEEKS * 7) as i64);
    let start = until - 24 * days;
    let kind = |day: i64| quiet[hour_of_week(start + 24 * day) / 24];
    let errors: Vec<f64> = (0..days)
        .filter_map(|day| {
            let others: Vec<i64> = (0..days).filter(|other| *other != day && kind(*other) == kind(day)).collect();
            if others.is_empty() {
                return None;
            }
            let forecast: f64 = others.iter().map(|other| hours.sum(start + 24 * other, start + 24 * (other + 1))).sum::<f64>();
            Some(hours.sum(start + 24 * day, start + 24 * (day + 1)) - forecast / others.len() as f64)
        })
        .collect();
    root_mean_square(&errors)
}

/// The spread of the machine's known days around `profile` (errors of days the profile learned
/// from, so on the small side; what there is before any day could be forecast from a week before).
fn spread_around(hours: HourView<'_>, profile: &Profile) -> f64 {
    let until = hours.until();
    let days = ((until - hours.earliest()) / 24).clamp(1, (PROFILE_WEEKS * 7) as i64);
    if days < 2 {
        // One day says nothing of how days differ: allow them to differ by as much as a day costs.
        return hours.sum(until - 24, until);
    }
    let errors: Vec<f64> = (1..=days)
        .map(|day| {
            let (from, to) = (until - 24 * day, until - 24 * (day - 1));
            hours.sum(from, to) - (from..to).map(|hour| profile.slots[hour_of_week(hour)]).sum::<f64>()
        })
        .collect();
    root_mean_square(&errors)
}

fn root_mean_square(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    (values.iter().map(|value| value * value).sum::<f64>() / values.len() as f64).sqrt()
}

/// The path's points: each day's end at `FORECAST_DIGITS`, rounded up so none falls below what is
/// billed, and the last exactly `estimate`. The billed cost's own digits on every day would make
/// the path most of a summary's bytes, for a chart that cannot show them.
fn path_points(billed: Decimal, remaining: impl ExactSizeIterator<Item = Decimal>, estimate: Decimal) -> Vec<Decimal> {
    let days = remaining.len();
    remaining
        .enumerate()
        .map(|(index, remaining)| {
            if index + 1 == days {
                estimate
            } else {
                (billed + remaining).round_dp_with_strategy(FORECAST_DIGITS, RoundingStrategy::ToPositiveInfinity).normalize()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
