//! The fleet's weekly pattern: what a machine with under a week of its own history is forecast
//! from, and the spread of the fleet's daily errors that a machine with few past days borrows.

use super::{HourView, WEEK_HOURS, hour_of_week, leave_one_day_out_spread, past_day_errors, profile_weeks, quiet_days};

/// Past-day errors the fleet needs before its relative spread is used (and a week of days back).
const MIN_FLEET_ERROR_DAYS: usize = 20;

/// The fleet's hour-of-week pattern and spread at one hour.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetProfile {
    /// Each hour of the week's share of an average hour (the mean of the 168 is 1).
    pub shape: [f64; WEEK_HOURS],
    /// Which days of the week (Monday first, UTC) are quiet across the fleet.
    pub quiet_days: [bool; 7],
    /// The standard deviation of a machine's daily forecast error over its average daily cost,
    /// across the fleet's past days; none with too few.
    pub relative_daily_spread: Option<f64>,
}

impl FleetProfile {
    /// The pattern of the machines with a week of history or more, as of the hour their views end
    /// at; none when no machine has a week with any cost in it.
    pub fn of<'a>(machines: impl IntoIterator<Item = HourView<'a>> + Clone) -> Option<FleetProfile> {
        let mut shape = [0.0; WEEK_HOURS];
        for hours in machines.clone() {
            let until = hours.until();
            let weeks = profile_weeks(hours, until);
            for hour in until - (weeks * WEEK_HOURS) as i64..until {
                shape[hour_of_week(hour)] += hours.cost(hour) / weeks.max(1) as f64;
            }
        }
        let total: f64 = shape.iter().sum();
        if total <= 0.0 {
            return None;
        }
        shape.iter_mut().for_each(|slot| *slot *= WEEK_HOURS as f64 / total);
        let quiet_days = quiet_days(&shape);
        // Each machine's past days, forecast as its own forecast would be, against its daily cost.
        let (mut squares, mut errors, mut days) = (0.0, 0usize, 0usize);
        let (mut loo_squares, mut loo_machines) = (0.0, 0usize);
        for hours in machines {
            let until = hours.until();
            let daily_level = hours.sum(until - WEEK_HOURS as i64, until) / 7.0;
            if daily_level > 0.0 {
                let past = past_day_errors(hours, Some(&quiet_days));
                days = days.max(past.len());
                squares += past.iter().map(|error| (error / daily_level).powi(2)).sum::<f64>();
                errors += past.len();
                if profile_weeks(hours, until) > 0 {
                    loo_squares += (leave_one_day_out_spread(hours, &quiet_days) / daily_level).powi(2);
                    loo_machines += 1;
                }
            }
        }
        // Days of one kind alone (a first week's Sundays) would say little about the rest: until
        // the fleet has a week of days forecast from a week before them, its machines' days each
        // forecast from their others stand in.
        let relative_daily_spread = if errors >= MIN_FLEET_ERROR_DAYS && days >= 7 {
            Some((squares / errors as f64).sqrt())
        } else {
            (loo_machines > 0).then(|| (loo_squares / loo_machines as f64).sqrt())
        };
        Some(FleetProfile { shape, quiet_days, relative_daily_spread })
    }
}
