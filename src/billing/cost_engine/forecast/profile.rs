//! The hour-of-week profiles a forecast runs on: the machine's own, the fleet's scaled to the
//! machine, or a flat line; and the machine's past days forecast the same way, for the band.

use super::{FleetProfile, HourView, Method, PROFILE_WEEKS, WEEK_HOURS, hour_of_week};

/// How much of the gap between the last week's level and the profile the forecast takes.
const LEVEL_WEIGHT: f64 = 0.5;
/// How many weeks' worth of weight the pooled day gets against the hour's own weeks: with one week
/// of history an hour of the week is mostly the same hour of the machine's other days of its kind;
/// with four, mostly its own.
const POOL_WEEKS: f64 = 3.0;
/// A day whose profile costs under this share of the busiest day's is a quiet day (a weekend).
const QUIET_DAY_SHARE: f64 = 0.25;
/// About how many days of a kind a pooled hour is averaged over (five working days).
const DAYS_PER_KIND: f64 = 5.0;

/// A profile for the rest of the period and how it was found.
pub(super) struct Profile {
    pub(super) method: Method,
    pub(super) slots: [f64; WEEK_HOURS],
    /// Weeks of the machine's own history behind the profile (0 when it is not its own).
    pub(super) weeks: usize,
    /// What the profile's level was scaled from: a weight, and the days and cost it was measured
    /// over (its own error carries into every hour left, see [`Profile::level_spread`]).
    pub(super) level: (f64, f64, f64),
}

impl Profile {
    /// The relative standard deviation of the level the profile was scaled by, for a daily error
    /// spread `spread`: `days` days of cost add `spread × √days` of noise to the cost they sum to.
    pub(super) fn level_spread(&self, spread: f64) -> f64 {
        let (weight, days, cost) = self.level;
        if cost > 0.0 { weight * spread * days.sqrt() / cost } else { 0.0 }
    }
}

/// Whole weeks of history before hour `at` a profile can learn from.
pub(super) fn profile_weeks(hours: HourView<'_>, at: i64) -> usize {
    let known = (at - hours.earliest()).max(0) as usize;
    (known / WEEK_HOURS).min(PROFILE_WEEKS)
}

/// The weight of an hour's own weeks against its pooled day, with `weeks` weeks.
fn own_weight(weeks: usize) -> f64 {
    weeks as f64 / (weeks as f64 + POOL_WEEKS)
}

/// The share of a past day's error variance that is the profile's own error (and so recurs every
/// week), by the weeks it learned from: each hour's estimate is a mean of `weeks` values, pooled
/// with about [`DAYS_PER_KIND`] times as many.
pub(super) fn error_share(weeks: usize) -> f64 {
    if weeks == 0 {
        return 0.0;
    }
    let own = own_weight(weeks);
    let ratio = (own * own + (1.0 - own) * (1.0 - own) / DAYS_PER_KIND) / weeks as f64;
    ratio / (1.0 + ratio)
}

/// Which days of the week (Monday first) are quiet in `slots`: under [`QUIET_DAY_SHARE`] of the
/// busiest day's cost.
pub(super) fn quiet_days(slots: &[f64; WEEK_HOURS]) -> [bool; 7] {
    let mut totals = [0.0; 7];
    for (slot, cost) in slots.iter().enumerate() {
        totals[slot / 24] += cost;
    }
    let busiest = totals.iter().copied().fold(0.0, f64::max);
    totals.map(|total| total < QUIET_DAY_SHARE * busiest)
}

/// The machine's own profile as of hour `at`, from the whole weeks before it; none under a week.
///
/// Each hour of the week is the mean of that hour over the weeks, mixed with the mean of that hour
/// of the day over the machine's other days of the same kind (busy or quiet) in those weeks, which
/// steadies a profile learned from few weeks; then moved halfway to the last week's level. With a
/// single week, a day off would look like a weekend, so the kinds of day are the fleet's
/// (`fleet_quiet`) when known.
pub(super) fn profile_at(hours: HourView<'_>, at: i64, fleet_quiet: Option<&[bool; 7]>) -> Option<([f64; WEEK_HOURS], usize)> {
    let weeks = profile_weeks(hours, at);
    if weeks == 0 {
        return None;
    }
    let mut own = [0.0; WEEK_HOURS];
    // The hour index `at` is in slot `hour_of_week(at)`; the weeks end just before it.
    for hour in at - (weeks * WEEK_HOURS) as i64..at {
        own[hour_of_week(hour)] += hours.cost(hour) / weeks as f64;
    }
    let quiet = match fleet_quiet {
        Some(fleet) if weeks == 1 => *fleet,
        _ => quiet_days(&own),
    };
    let weight = own_weight(weeks);
    let mut slots = [0.0; WEEK_HOURS];
    for (slot, value) in slots.iter_mut().enumerate() {
        let (day, hour_of_day) = (slot / 24, slot % 24);
        let kin: Vec<usize> = (0..7).filter(|other| quiet[*other] == quiet[day]).collect();
        let pooled = kin.iter().map(|other| own[other * 24 + hour_of_day]).sum::<f64>() / kin.len() as f64;
        *value = weight * own[slot] + (1.0 - weight) * pooled;
    }
    // Halfway to the last week's level: a machine busier (or quieter) of late stays so for a while.
    let expected: f64 = slots.iter().sum();
    let last_week = hours.sum(at - WEEK_HOURS as i64, at);
    if expected > 0.0 {
        let factor = (1.0 + LEVEL_WEIGHT * (last_week / expected - 1.0)).clamp(0.25, 4.0);
        slots.iter_mut().for_each(|slot| *slot *= factor);
    }
    Some((slots, weeks))
}

/// The machine's own profile now, once it has a week of history.
pub(super) fn own_profile(hours: HourView<'_>, fleet_quiet: Option<&[bool; 7]>) -> Option<Profile> {
    let (slots, weeks) = profile_at(hours, hours.until(), fleet_quiet)?;
    let last_week = hours.sum(hours.until() - WEEK_HOURS as i64, hours.until());
    Some(Profile { method: Method::Seasonal, slots, weeks, level: (LEVEL_WEIGHT, 7.0, last_week) })
}

/// The fleet's pattern scaled to the machine's level over its known hours.
pub(super) fn fleet_profile(hours: HourView<'_>, fleet: &FleetProfile) -> Option<Profile> {
    let (from, until) = (hours.earliest(), hours.until());
    let expected: f64 = (from..until).map(|hour| fleet.shape[hour_of_week(hour)]).sum();
    if expected <= 0.0 {
        return None;
    }
    let known = hours.sum(from, until);
    let level = known / expected;
    let mut slots = fleet.shape;
    slots.iter_mut().for_each(|slot| *slot *= level);
    Some(Profile { method: Method::FleetPattern, slots, weeks: 0, level: (1.0, (until - from) as f64 / 24.0, known) })
}

/// A straight line at the machine's average hourly cost over its last week (or what it has).
pub(super) fn line(hours: HourView<'_>) -> Profile {
    let until = hours.until();
    let from = hours.earliest().max(until - WEEK_HOURS as i64);
    let known = hours.sum(from, until);
    let rate = if until > from { known / (until - from) as f64 } else { 0.0 };
    Profile { method: Method::Line, slots: [rate; WEEK_HOURS], weeks: 0, level: (1.0, (until - from) as f64 / 24.0, known) }
}

/// Each past day's error (billed minus forecast), newest first, for the days that had a week of
/// history before them: each day forecast from the profile as it stood at the day's start.
pub(super) fn past_day_errors(hours: HourView<'_>, fleet_quiet: Option<&[bool; 7]>) -> Vec<f64> {
    let until = hours.until();
    let mut errors = Vec::new();
    for day in 1..=(PROFILE_WEEKS * 7) as i64 {
        let (from, to) = (until - 24 * day, until - 24 * (day - 1));
        let Some((slots, _)) = profile_at(hours, from, fleet_quiet) else { break };
        let forecast: f64 = (from..to).map(|hour| slots[hour_of_week(hour)]).sum();
        errors.push(hours.sum(from, to) - forecast);
    }
    errors
}
