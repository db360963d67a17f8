//! The forecast on the cost chart: the period's cost so far, day by day, then the forecast to the
//! period's end as a line inside its shaded 10 %–90 % band; or, with too little history, why not.

use eframe::egui;
use egui_plot::{Line, Plot, PlotBounds, Polygon};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::format;
use crate::billing::cost_engine::CostSummary;
use crate::billing::cost_engine::calendar::DAY_MILLIS;
use crate::record::UnixMillis;

/// The forecast chart as last drawn (x in days from now, y in the currency).
#[derive(Debug, Clone, PartialEq)]
pub struct DrawnForecast {
    /// The machine charted.
    pub machine: String,
    /// Plot bounds.
    pub bounds: PlotBounds,
    /// `[x, cost so far]` at each day's end of the period so far, and now.
    pub billed: Vec<[f64; 2]>,
    /// `[x, low, high]` of the band at each day's end left, the period's end last; empty without a
    /// forecast.
    pub band: Vec<[f64; 3]>,
    /// Why there is no forecast, when there is none.
    pub none: Option<String>,
}

/// Draws `summary`'s period and forecast as of `now`.
pub fn show(ui: &mut egui::Ui, summary: &CostSummary, now: UnixMillis) -> DrawnForecast {
    let days_from_now = |at: UnixMillis| (at.0 - now.0) as f64 / DAY_MILLIS as f64;
    let value = |amount: Decimal| amount.to_f64().unwrap_or(0.0);
    // The cost so far at each day's end: the daily series added up.
    let mut billed = vec![[days_from_now(summary.daily.from), 0.0]];
    let mut sum = Decimal::ZERO;
    for (day, cost) in (1..).zip(&summary.daily.costs) {
        sum += cost;
        let end = summary.daily.from.plus_millis(day * DAY_MILLIS).min(now);
        billed.push([days_from_now(end), value(sum)]);
    }
    let outlook = summary.outlook_at(now);
    let points = outlook.forecast().map(|forecast| forecast.points()).unwrap_or_default();
    let mut band: Vec<[f64; 3]> = points.iter().map(|point| [days_from_now(point.at), value(point.low), value(point.high)]).collect();
    let start = [0.0, value(summary.period_at(now)), value(summary.period_at(now))];
    if !band.is_empty() {
        band.insert(0, start);
    }
    let none = outlook.why_none();
    if let Some(why) = &none {
        ui.label(egui::RichText::new(format!("Forecast: {why}.")).italics());
    } else if let Some(forecast) = outlook.forecast() {
        let notes: Vec<&str> =
            std::iter::once(forecast.method.describe()).chain(forecast.flags.iter().map(|flag| flag.describe())).collect();
        ui.label(format!("Forecast: {} ({})", format::forecast_line(forecast, &summary.currency), notes.join("; ")));
    }
    let top = band.iter().map(|point| point[2]).chain(billed.iter().map(|point| point[1])).fold(0.0, f64::max).max(1e-6) * 1.1;
    let left = billed.first().map_or(-1.0, |point| point[0]);
    let right = band.last().map_or(1.0, |point| point[0]).max(1.0);
    let estimate: Vec<[f64; 2]> =
        std::iter::once([0.0, start[1]]).chain(points.iter().map(|point| [days_from_now(point.at), value(point.estimate)])).collect();
    let response = Plot::new("forecast-chart")
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .allow_double_click_reset(false)
        .x_axis_label("days from now")
        .y_axis_label(format!("cost this period ({})", summary.currency))
        .y_axis_min_width(64.0)
        .legend(egui_plot::Legend::default().position(egui_plot::Corner::LeftTop))
        .show(ui, |plot_ui| {
            plot_ui.set_plot_bounds_x(left..=right);
            plot_ui.set_plot_bounds_y(0.0..=top);
            if band.len() > 1 {
                // One four-sided piece per day: egui_plot fills a polygon as a fan from its first
                // point, which is right only for a convex shape, and the whole band is not one.
                let fill = egui::Color32::from_rgba_unmultiplied(90, 140, 220, 70);
                for pair in band.windows(2) {
                    let [from, to] = [pair[0], pair[1]];
                    let piece = vec![[from[0], from[1]], [to[0], to[1]], [to[0], to[2]], [from[0], from[2]]];
                    plot_ui.polygon(Polygon::new("likely (10 %–90 %)", piece).fill_color(fill).stroke(egui::Stroke::NONE));
                }
                plot_ui.line(Line::new("forecast", estimate).style(egui_plot::LineStyle::dashed_loose()));
            }
            plot_ui.line(Line::new("billed so far", billed.clone()).width(2.0));
        });
    DrawnForecast { machine: summary.machine_id.clone(), bounds: *response.transform.bounds(), billed, band, none }
}
