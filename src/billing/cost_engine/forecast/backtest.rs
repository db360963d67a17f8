//! The back-test behind `usagebill forecast --backtest`: at each day of each past period, forecast
//! every machine's period total from what was known that day, exactly as the engine would have,
//! and compare with what the period billed, beside two straight lines: the burn rate of the last
//! hour carried to the end (what the Costs tab showed before), and the period's average rate so far.

use std::collections::HashMap;

use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;

use super::{FleetProfile, HourView, Inputs, Outlook, forecast, hour_of_millis};
use crate::billing::cost_engine::calendar::{DAY_MILLIS, HOUR_MILLIS, month_of};
use crate::billing::ledger::{Ledger, LedgerError, rollup};
use crate::billing::table_format::CsvRow;
use crate::record::UnixMillis;

/// One machine's hourly flat costs, dense from its first hour.
struct MachineHours {
    first: i64,
    costs: Vec<f32>,
}

impl MachineHours {
    /// Its hours as a forecast in hour index `until` sees them.
    fn view(&self, until: i64) -> HourView<'_> {
        HourView::new(self.first, &self.costs, self.first, until)
    }
}

/// Every machine's hourly costs in a ledger-schema file (from its hourly rollups).
pub struct History {
    machines: Vec<MachineHours>,
    /// Hour index after the last hour with a window.
    end: i64,
}

/// How the forecasts of one day of the periods fared.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DayScore {
    /// The day of the period the forecasts were made at the end of (3: after three days).
    pub day: u32,
    /// Forecasts compared (machines with a forecast and a period that billed something).
    pub forecasts: u64,
    /// Machines with too little history for a forecast.
    pub not_enough_history: u64,
    /// Forecasts made from the machine's own weekly pattern (the rest borrowed the fleet's, or
    /// drew a line).
    pub own_pattern: u64,
    /// Mean absolute percentage error of the forecast.
    pub seasonal_mape: f64,
    /// Mean percentage error of the forecast, with its sign (above zero: it forecast too much).
    pub seasonal_bias: f64,
    /// Of the last hour's rate carried to the end.
    pub burn_line_mape: f64,
    /// Of the period's average rate so far carried to the end.
    pub average_line_mape: f64,
    /// Share of period totals inside the forecast's 10 %–90 % band (0.8 when calibrated).
    pub band_coverage: f64,
}

/// The back-test of every past period in a history.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Backtest {
    /// Machines in the history.
    pub machines: usize,
    /// The periods tested (calendar months, UTC, that ended before the history did).
    pub periods: Vec<String>,
    /// Each day of the periods, all periods together.
    pub days: Vec<DayScore>,
}

/// Why there is nothing to back-test.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// The file cannot be read.
    #[error("reading the hourly costs")]
    Ledger(#[from] LedgerError),
    /// No period ended within the history.
    #[error(
        "not enough history to back-test: {0}; a back-test needs a whole calendar month billed (e.g. `usagebill simulate --profile office` over four weeks of February)"
    )]
    NotEnoughHistory(String),
}

impl History {
    /// Reads every machine's hourly costs from `ledger`'s rollups.
    pub fn load(ledger: &Ledger) -> Result<History, LedgerError> {
        let mut by_machine: HashMap<String, MachineHours> = HashMap::new();
        let mut end = i64::MIN;
        rollup::each_hour(ledger.connection(), |machine, hour_millis, aggregate| {
            let hour = hour_of_millis(hour_millis);
            end = end.max(hour + 1);
            let hours = by_machine.entry(machine.to_owned()).or_insert_with(|| MachineHours { first: hour, costs: Vec::new() });
            let index = (hour - hours.first) as usize;
            if index >= hours.costs.len() {
                hours.costs.resize(index + 1, 0.0);
            }
            hours.costs[index] += aggregate.cost.to_f32().unwrap_or(0.0);
        })?;
        let mut machines: Vec<(String, MachineHours)> = by_machine.into_iter().collect();
        machines.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(History { machines: machines.into_iter().map(|(_, hours)| hours).collect(), end })
    }

    /// Replays every calendar month that ended within the history, telling `progress` the days
    /// replayed and the days to replay after each.
    pub fn backtest(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<Backtest, BacktestError> {
        let Some(first) = self.machines.iter().map(|machine| machine.first).min() else {
            return Err(BacktestError::NotEnoughHistory("nothing has been billed".to_owned()));
        };
        let end_millis = self.end * HOUR_MILLIS;
        let mut months = Vec::new();
        let mut month = month_of(UnixMillis(first * HOUR_MILLIS));
        while month.1.0 <= end_millis {
            months.push(month);
            month = month_of(month.1);
        }
        let days_in_all: u64 = months.iter().map(|(start, end)| ((end.0 - start.0) / DAY_MILLIS - 1) as u64).sum();
        let mut sums: Vec<Sums> = Vec::new();
        let mut periods = Vec::new();
        let mut replayed = 0;
        for month in months {
            periods.push(month.0.to_string()[..7].to_owned());
            self.replay(month, &mut sums, &mut |_| {
                replayed += 1;
                progress(replayed, days_in_all);
            });
        }
        if periods.is_empty() {
            let hours = self.end - first;
            return Err(BacktestError::NotEnoughHistory(format!(
                "{hours} h billed, from {} to {}, and no calendar month ended within them",
                UnixMillis(first * HOUR_MILLIS),
                UnixMillis(end_millis)
            )));
        }
        let days = sums.iter().enumerate().map(|(index, sums)| sums.score(index as u32 + 1)).collect();
        Ok(Backtest { machines: self.machines.len(), periods, days })
    }

    /// Forecasts `period` at the end of each of its days but the last.
    fn replay(&self, (start, end): (UnixMillis, UnixMillis), sums: &mut Vec<Sums>, day_done: &mut dyn FnMut(usize)) {
        let (start_hour, end_hour) = (hour_of_millis(start.0), hour_of_millis(end.0));
        let days = ((end.0 - start.0) / DAY_MILLIS) as usize;
        if sums.len() < days - 1 {
            sums.resize(days - 1, Sums::default());
        }
        for day in 1..days {
            let now = start.plus_millis(day as i64 * DAY_MILLIS);
            let until = hour_of_millis(now.0);
            let known = self.machines.iter().filter(|machine| machine.first < until);
            let fleet = FleetProfile::of(known.map(|machine| machine.view(until)));
            let day_sums = &mut sums[day - 1];
            for machine in self.machines.iter().filter(|machine| machine.first < until) {
                let hours = machine.view(until);
                let all = machine.view(end_hour);
                let actual = all.sum(start_hour, end_hour);
                if actual <= 0.0 {
                    continue;
                }
                let billed = hours.sum(start_hour, until);
                let inputs = Inputs {
                    hours,
                    fleet: fleet.as_ref(),
                    billed: rust_decimal::Decimal::try_from(billed).unwrap_or_default(),
                    now,
                    period_end: end,
                    // The ledger's costs are as billed; the back-test does not know the card.
                    prices_from: None,
                };
                let Outlook::Forecast(forecast) = forecast(&inputs) else {
                    day_sums.not_enough_history += 1;
                    continue;
                };
                let value = |amount: rust_decimal::Decimal| amount.to_f64().unwrap_or(0.0);
                let hours_left = (end_hour - until) as f64;
                let burn_line = billed + hours.cost(until - 1) * hours_left;
                let average_line = billed + billed / (until - start_hour) as f64 * hours_left;
                let error = |forecast: f64| (forecast - actual).abs() / actual;
                day_sums.forecasts += 1;
                day_sums.seasonal += error(value(forecast.estimate));
                day_sums.signed += (value(forecast.estimate) - actual) / actual;
                day_sums.own_pattern += u64::from(forecast.method == super::Method::Seasonal);
                day_sums.burn_line += error(burn_line);
                day_sums.average_line += error(average_line);
                day_sums.covered += u64::from(value(forecast.low) <= actual && actual <= value(forecast.high));
            }
            day_done(day);
        }
    }
}

/// Running sums of one day's errors.
#[derive(Debug, Clone, Default)]
struct Sums {
    forecasts: u64,
    not_enough_history: u64,
    own_pattern: u64,
    seasonal: f64,
    signed: f64,
    burn_line: f64,
    average_line: f64,
    covered: u64,
}

impl Sums {
    fn score(&self, day: u32) -> DayScore {
        let mean = |sum: f64| if self.forecasts == 0 { 0.0 } else { sum / self.forecasts as f64 };
        DayScore {
            day,
            forecasts: self.forecasts,
            not_enough_history: self.not_enough_history,
            own_pattern: self.own_pattern,
            seasonal_mape: mean(self.seasonal),
            seasonal_bias: mean(self.signed),
            burn_line_mape: mean(self.burn_line),
            average_line_mape: mean(self.average_line),
            band_coverage: mean(self.covered as f64),
        }
    }
}

/// The days a summary table shows: 3, 10 and 20.
pub const REPORTED_DAYS: [u32; 3] = [3, 10, 20];

impl CsvRow for DayScore {
    const HEADER: &'static [&'static str] = &[
        "day",
        "forecasts",
        "not_enough_history",
        "own_pattern",
        "seasonal_mape",
        "seasonal_bias",
        "burn_line_mape",
        "average_line_mape",
        "band_coverage",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.day.to_string(),
            self.forecasts.to_string(),
            self.not_enough_history.to_string(),
            self.own_pattern.to_string(),
            format!("{:.4}", self.seasonal_mape),
            format!("{:.4}", self.seasonal_bias),
            format!("{:.4}", self.burn_line_mape),
            format!("{:.4}", self.average_line_mape),
            format!("{:.4}", self.band_coverage),
        ]
    }
}

/// The aligned table of `days`: percentages with one decimal.
pub fn render_table(backtest: &Backtest) -> String {
    let mut out = format!(
        "back-test of {} machine(s) over {}: each day's forecast of the period's end against what it billed\n",
        backtest.machines,
        backtest.periods.join(", ")
    );
    out += &format!(
        "{:>4}  {:>9}  {:>14}  {:>13}  {:>13}  {:>13}  {:>13}\n",
        "day", "forecasts", "too new", "seasonal MAPE", "burn-line", "average-line", "band coverage"
    );
    let percent = |value: f64| format!("{:.1} %", value * 100.0);
    for day in backtest.days.iter().filter(|day| REPORTED_DAYS.contains(&day.day)) {
        out += &format!(
            "{:>4}  {:>9}  {:>14}  {:>13}  {:>13}  {:>13}  {:>13}\n",
            day.day,
            day.forecasts,
            day.not_enough_history,
            percent(day.seasonal_mape),
            percent(day.burn_line_mape),
            percent(day.average_line_mape),
            percent(day.band_coverage)
        );
    }
    let forecasts: u64 = backtest.days.iter().map(|day| day.forecasts).sum();
    let covered: f64 = backtest.days.iter().map(|day| day.band_coverage * day.forecasts as f64).sum();
    if forecasts > 0 {
        out += &format!("band coverage over every day: {} of {forecasts} forecasts (target 80 %)\n", percent(covered / forecasts as f64));
    }
    out
}
