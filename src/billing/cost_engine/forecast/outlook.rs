//! What a forecast says, in the form a summary carries it and every view shows it.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::record::UnixMillis;

/// How the rest of the period was forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// From the machine's own hour-of-week profile.
    Seasonal,
    /// From the fleet's hour-of-week pattern, scaled to the machine (under a week of its own).
    FleetPattern,
    /// A straight line at the machine's average rate (under a week of the fleet's too).
    Line,
}

/// Something a reader of the forecast should know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// Nothing was billed in the last week (asleep or off): the forecast adds little or nothing.
    NothingLastWeek,
    /// Under a week of history: the week's pattern is borrowed or guessed, and the band is wide.
    UnderAWeek,
    /// The machine's prices changed within the weeks the forecast learned from, which it takes
    /// as billed then: until it has weeks at the new prices, the forecast leans towards the old.
    PricesChanged,
}

impl Flag {
    /// The flag in words.
    pub fn describe(self) -> &'static str {
        match self {
            Flag::NothingLastWeek => "nothing billed in the last week",
            Flag::UnderAWeek => "under a week of history",
            Flag::PricesChanged => "prices changed within the weeks it learned from",
        }
    }
}

/// A forecast of the period's cost at its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forecast {
    /// How it was made.
    pub method: Method,
    /// Hours of the machine's history it had.
    pub history_hours: u64,
    /// Weeks of the machine's own history its profile learned from (0 unless seasonal).
    pub weeks: u32,
    /// When it was made.
    pub made_at: UnixMillis,
    /// The end of the period forecast.
    pub period_end: UnixMillis,
    /// What the period had billed when it was made.
    #[serde(with = "rust_decimal::serde::str")]
    pub billed: Decimal,
    /// The expected cost at the period's end: what is billed plus what is forecast.
    #[serde(with = "rust_decimal::serde::str")]
    pub estimate: Decimal,
    /// The band's low end (10th percentile); never below what is billed.
    #[serde(with = "rust_decimal::serde::str")]
    pub low: Decimal,
    /// The band's high end (90th percentile).
    #[serde(with = "rust_decimal::serde::str")]
    pub high: Decimal,
    /// The standard deviation of one day's forecast error (the band's unit).
    #[serde(with = "rust_decimal::serde::str")]
    pub daily_spread: Decimal,
    /// The relative standard deviation of the level the profile was scaled by.
    #[serde(with = "rust_decimal::serde::str")]
    pub level_spread: Decimal,
    /// The expected cost at the end of each UTC day left, the period's end last.
    #[serde(with = "super::super::summary::decimal_texts")]
    pub path: Vec<Decimal>,
    /// What a reader should know.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
}

/// One point of a forecast's path: the expected cost at `at` and its band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathPoint {
    /// The end of a UTC day (or the period's end).
    pub at: UnixMillis,
    /// The expected cost then.
    pub estimate: Decimal,
    /// The band's low end then.
    pub low: Decimal,
    /// The band's high end then.
    pub high: Decimal,
}

impl Forecast {
    /// The same outlook for the rest of the period after `billed_since` more was billed: every
    /// amount moves by it (what a view does with live figures newer than its summary).
    pub fn move_by(&mut self, billed_since: Decimal) {
        self.billed += billed_since;
        self.estimate += billed_since;
        self.low += billed_since;
        self.high += billed_since;
        for at_day_end in &mut self.path {
            *at_day_end += billed_since;
        }
    }

    /// The path from now to the period's end, one point per day's end, each with the band the
    /// days from now to it give (the last point is the estimate and its band).
    pub fn points(&self) -> Vec<PathPoint> {
        let day = crate::billing::cost_engine::calendar::DAY_MILLIS;
        let first_end = self.made_at.utc_day_start().plus_millis(day);
        let spread = self.daily_spread.to_f64().unwrap_or(0.0);
        let points = self.path.iter().enumerate().map(|(index, estimate)| {
            let at = if index + 1 == self.path.len() { self.period_end } else { first_end.plus_millis(index as i64 * day) };
            let days = (at.0 - self.made_at.0).max(0) as f64 / day as f64;
            let remaining = (*estimate - self.billed).to_f64().unwrap_or(0.0);
            let level = self.level_spread.to_f64().unwrap_or(0.0);
            let half = Decimal::try_from(super::band_half_width(spread, days, self.weeks as usize, remaining, level)).unwrap_or_default();
            // Rounded outwards, so that the band always holds the estimate (a zero-width band of
            // an exact estimate would otherwise round past it); never below what is billed.
            let low =
                (*estimate - half).round_dp_with_strategy(super::FORECAST_DIGITS, RoundingStrategy::ToNegativeInfinity).max(self.billed);
            let high = (*estimate + half).round_dp_with_strategy(super::FORECAST_DIGITS, RoundingStrategy::ToPositiveInfinity);
            PathPoint { at, estimate: *estimate, low, high }
        });
        points.collect()
    }
}

/// The forecast of a period, or why there is none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Outlook {
    /// The machine is too new to forecast.
    NotEnoughHistory {
        /// Hours of history so far.
        hours: u64,
    },
    /// Nothing is known of this period yet (the summary is of an earlier one).
    #[default]
    Unknown,
    /// A forecast.
    Forecast(Forecast),
}

impl Outlook {
    /// The forecast, if there is one.
    pub fn forecast(&self) -> Option<&Forecast> {
        match self {
            Outlook::Forecast(forecast) => Some(forecast),
            Outlook::NotEnoughHistory { .. } | Outlook::Unknown => None,
        }
    }

    /// Why there is no figure, in words: "not enough history to project (5 h so far)".
    pub fn why_none(&self) -> Option<String> {
        match self {
            Outlook::NotEnoughHistory { hours } => Some(format!("not enough history to project ({hours} h so far)")),
            Outlook::Unknown => Some("no forecast for this period yet".to_owned()),
            Outlook::Forecast(_) => None,
        }
    }

    /// Several machines' outlooks as one: estimates and band ends added (the fleet's band is the
    /// sum of the machines' bands, wider than the fleet's own 10 %–90 % interval), paths added day
    /// by day. None when no machine has a forecast.
    pub fn total<'a>(outlooks: impl IntoIterator<Item = &'a Outlook>) -> Option<Forecast> {
        let mut total: Option<Forecast> = None;
        for forecast in outlooks.into_iter().filter_map(Outlook::forecast) {
            let Some(sum) = &mut total else {
                total = Some(forecast.clone());
                continue;
            };
            sum.estimate += forecast.estimate;
            sum.billed += forecast.billed;
            sum.low += forecast.low;
            sum.high += forecast.high;
            sum.daily_spread += forecast.daily_spread;
            sum.history_hours = sum.history_hours.max(forecast.history_hours);
            if forecast.method != Method::Seasonal {
                sum.method = forecast.method;
            }
            if sum.path.len() < forecast.path.len() {
                sum.path.resize(forecast.path.len(), Decimal::ZERO);
            }
            sum.path.iter_mut().zip(&forecast.path).for_each(|(day, other)| *day += other);
        }
        total
    }
}

impl Method {
    /// How it reads next to the figure.
    pub fn describe(self) -> &'static str {
        match self {
            Method::Seasonal => "from its own weekly pattern",
            Method::FleetPattern => "from the fleet's weekly pattern (under a week of its own history)",
            Method::Line => "a straight line at its average rate (under a week of history)",
        }
    }
}
