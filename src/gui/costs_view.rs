//! The Costs tab, money first: the fleet's total, this machine pinned at the top and marked, every
//! other machine below (filtered, sorted by any column, drawn only where visible), a period picker,
//! and the selected machine's cost over the last day or the period.

use eframe::egui;
use egui_plot::{Bar, BarChart, Plot, PlotBounds};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::costs_table::{CostTable, SortBy, TableChoice};
use super::forecast_chart::{self, DrawnForecast};
use super::format;
use super::live::Live;
use super::table_cell::cell;
use crate::billing::cost_engine::CostSummary;
use crate::billing::cost_engine::calendar::month_of;
use crate::feed::summary::SummaryRow;
use crate::record::UnixMillis;
use crate::runtime::cost_reader::{CostSnapshot, CostState, RETRY};

/// The span of the cost chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CostRange {
    /// The last 24 hours, per hour.
    #[default]
    LastDay,
    /// The period so far, per day.
    Period,
    /// The period's cost so far and its forecast to the end, with the band.
    Forecast,
}

impl CostRange {
    const ALL: [CostRange; 3] = [CostRange::LastDay, CostRange::Period, CostRange::Forecast];

    fn label(self) -> &'static str {
        match self {
            CostRange::LastDay => "Last day",
            CostRange::Period => "Period to date",
            CostRange::Forecast => "Period and forecast",
        }
    }
}

/// The cost chart as last drawn.
#[derive(Debug, Clone)]
pub struct DrawnCostChart {
    /// The machine charted.
    pub machine: String,
    /// Plot bounds: x in hours (last day) or days (period) before now, y in the currency.
    pub bounds: PlotBounds,
    /// `[x, cost]` per bucket.
    pub bars: Vec<[f64; 2]>,
}

/// Widths of the columns, in points, in [`SortBy::ALL`] order. With the spacing and this machine's
/// mark they fill the window's default 1100 points: each fits its header and its usual cells
/// (money to millionths, an instant, `asleep 8h 0m, late 1m 30s, 2 steps`).
const WIDTHS: [f32; 7] = [165.0, 100.0, 115.0, 140.0, 165.0, 45.0, 220.0];
const ROW_HEIGHT: f32 = 22.0;

/// The Costs tab's own state.
#[derive(Debug, Default)]
pub struct CostsView {
    choice: TableChoice,
    selected: Option<String>,
    range: CostRange,
    /// The table and what it was built from: the snapshot's summaries and time, and the choice.
    table: Option<((usize, UnixMillis, TableChoice), CostTable)>,
    chart: Option<DrawnCostChart>,
    forecast: Option<DrawnForecast>,
}

impl CostsView {
    /// The table as last built.
    pub fn table(&self) -> Option<&CostTable> {
        self.table.as_ref().map(|(_, table)| table)
    }

    /// The selected machine.
    pub fn selected(&self) -> Option<&str> {
        self.selected.as_deref()
    }

    /// The chart as last drawn.
    pub fn chart(&self) -> Option<&DrawnCostChart> {
        self.chart.as_ref()
    }

    /// The forecast chart as last drawn.
    pub fn forecast(&self) -> Option<&DrawnForecast> {
        self.forecast.as_ref()
    }

    /// Draws the tab.
    pub fn show(&mut self, ui: &mut egui::Ui, live: &Live) {
        let costs = &live.costs;
        costs_status(ui, costs);
        if costs.skipped.0 > 0 {
            let latest = costs.skipped.1.last().map_or("", String::as_str);
            ui.colored_label(ui.visuals().warn_fg_color, format!("{} summary message(s) skipped; the latest: {latest}", costs.skipped.0));
        }
        let key = (std::sync::Arc::as_ptr(&costs.summaries) as usize, costs.read_at, self.choice.clone());
        let (key, table) = match self.table.take() {
            Some((built, table)) if built == key => (built, table),
            _ => {
                let table = CostTable::build(&costs.summaries, &self.choice, live.machine_id.as_deref(), costs.read_at);
                (key, table)
            }
        };
        // Taken out for the frame (the drawing needs `&mut self`) and put back, never copied: it
        // holds a row per machine.
        self.draw(ui, live, &table);
        self.table = Some((key, table));
    }

    fn draw(&mut self, ui: &mut egui::Ui, live: &Live, table: &CostTable) {
        let costs = &live.costs;
        if costs.summaries.is_empty() && costs.state != CostState::Ready {
            // Nothing known yet: the line above says why, and no zeros pose as data.
            return;
        }
        self.controls(ui, table, costs.read_at);
        self.total_row(ui, table);
        if table.total.machines == 0 {
            // While the summaries are still being read, "Reading the costs…" above says it all.
            if costs.state != CostState::Ready {
                return;
            }
            let note = match (costs.summaries.len(), table.earlier_machines) {
                (0, _) => "No bills yet: a machine appears here within seconds of its first billed record.".to_owned(),
                (_, 0) => "No usage in this period.".to_owned(),
                (_, earlier) => format!("No usage in this period; {earlier} machine(s) billed in earlier periods (pick one above)."),
            };
            ui.label(note);
            return;
        }
        ui.separator();
        self.rows(ui, table);
        ui.separator();
        let selected = self.selected.clone().or_else(|| table.own.as_ref().or(table.rows.first()).map(|row| row.machine_id.clone()));
        if let Some(summary) = selected.and_then(|machine| costs.summaries.iter().find(|summary| summary.machine_id == machine)) {
            self.cost_chart(ui, summary, costs.read_at);
        }
    }

    fn controls(&mut self, ui: &mut egui::Ui, table: &CostTable, now: UnixMillis) {
        let current = month_of(now).0;
        ui.horizontal_wrapped(|ui| {
            ui.label("Billing period:");
            for start in &table.periods {
                let choice = if *start == current { None } else { Some(*start) };
                ui.selectable_value(&mut self.choice.period, choice, period_label(*start, current));
            }
        });
        ui.horizontal(|ui| {
            let label = ui.label("Filter:");
            let edit = egui::TextEdit::singleline(&mut self.choice.filter).hint_text("part of a machine id").desired_width(220.0);
            ui.add(edit).labelled_by(label.id);
        });
    }

    fn total_row(&self, ui: &mut egui::Ui, table: &CostTable) {
        let total = &table.total;
        let money = |amount: Decimal| format::money(amount, &total.currency);
        // Wrapped: a long fleet line goes on to the next line instead of off the window's edge.
        ui.horizontal_wrapped(|ui| {
            ui.label(egui::RichText::new(format!("Fleet: {} machine(s)", total.machines)).strong().size(16.0));
            let exact = |amount: Decimal| format!("exact: {}", format::exact_money(amount, &total.currency));
            ui.label(egui::RichText::new(format!("today {}", money(total.today))).size(16.0)).on_hover_text(exact(total.today));
            ui.label(egui::RichText::new(format!("period {}", money(total.period))).size(16.0)).on_hover_text(exact(total.period));
            if let Some(forecast) = &total.forecast {
                let line = format::forecast_line(forecast, &total.currency);
                let band = format!(
                    "Forecast of the period's end: {} expected, 10 %–90 % band {} – {} (the machines' bands added)",
                    money(forecast.estimate),
                    money(forecast.low),
                    money(forecast.high)
                );
                ui.label(egui::RichText::new(line).size(16.0)).on_hover_text(band);
            }
            if total.other_currency > 0 {
                let note = format!("{} machine(s) billed in other currencies, not added", total.other_currency);
                ui.label(egui::RichText::new(note).italics());
            }
            if total.without_forecast > 0 {
                let note = format!("{} machine(s) too new to forecast", total.without_forecast);
                ui.label(egui::RichText::new(note).italics());
            }
        });
    }

    fn rows(&mut self, ui: &mut egui::Ui, table: &CostTable) {
        ui.horizontal(|ui| {
            for (column, width) in SortBy::ALL.into_iter().zip(WIDTHS) {
                let sorted = self.choice.sort == column;
                let hover = match (sorted, self.choice.descending) {
                    (false, _) => "Sort by this column",
                    (true, true) => "Sorted high to low; click for low to high",
                    (true, false) => "Sorted low to high; click for high to low",
                };
                let button = egui::Button::selectable(sorted, egui::RichText::new(column.header()).strong());
                if ui.add_sized([width, ROW_HEIGHT], button).on_hover_text(hover).clicked() {
                    self.choice.descending = if self.choice.sort == column { !self.choice.descending } else { column != SortBy::Machine };
                    self.choice.sort = column;
                }
            }
        });
        if let Some(own) = &table.own {
            self.row(ui, own, true);
        }
        let height = (ui.available_height() * 0.5).max(ROW_HEIGHT * 4.0);
        egui::ScrollArea::vertical().max_height(height).auto_shrink([false, true]).show_rows(
            ui,
            ROW_HEIGHT,
            table.rows.len(),
            |ui, visible| {
                for row in &table.rows[visible] {
                    self.row(ui, row, false);
                }
            },
        );
    }

    fn row(&mut self, ui: &mut egui::Ui, row: &SummaryRow, own: bool) {
        let money = |amount: Decimal| format::money(amount, &row.currency);
        ui.horizontal(|ui| {
            let selected = self.selected.as_deref() == Some(row.machine_id.as_str());
            let name = if own { egui::RichText::new(&row.machine_id).strong() } else { egui::RichText::new(&row.machine_id) };
            if ui.add_sized([WIDTHS[0], ROW_HEIGHT], egui::Button::selectable(selected, name)).clicked() {
                self.selected = Some(row.machine_id.clone());
            }
            let exact = |amount: Decimal| format!("exact: {}", format::exact_money(amount, &row.currency));
            cell(ui, egui::vec2(WIDTHS[1], ROW_HEIGHT), true, money(row.today)).on_hover_text(exact(row.today));
            cell(ui, egui::vec2(WIDTHS[2], ROW_HEIGHT), true, money(row.period)).on_hover_text(exact(row.period));
            match (row.projected, row.projected_low, row.projected_high) {
                (Some(estimate), Some(low), Some(high)) => {
                    let band = format!(
                        "likely between {} and {} (10 %–90 %; {}); {}",
                        money(low),
                        money(high),
                        row.forecast.replace('_', " "),
                        exact(estimate)
                    );
                    cell(ui, egui::vec2(WIDTHS[3], ROW_HEIGHT), true, money(estimate)).on_hover_text(band);
                }
                _ => {
                    ui.add_sized([WIDTHS[3], ROW_HEIGHT], egui::Label::new("too new")).on_hover_text(&row.forecast);
                }
            }
            ui.add_sized([WIDTHS[4], ROW_HEIGHT], egui::Label::new(format::instant(row.last_seen)));
            ui.add_sized([WIDTHS[5], ROW_HEIGHT], egui::Label::new(row.gaps.to_string()));
            // A rare long one (a day asleep, hours late, a dozen steps) is cut short; the hover has it whole.
            let time = if row.time.is_clear() { "–".to_owned() } else { row.time.short() };
            let explained = format!(
                "{time}\nAll time: asleep (suspended; priced as the rate card says), usage observed late (the agent \
                 stalled; billed) and wall-clock steps its agent saw"
            );
            ui.add_sized([WIDTHS[6], ROW_HEIGHT], egui::Label::new(time).truncate()).on_hover_text(explained);
            if own {
                ui.label(egui::RichText::new("this machine").italics());
            }
        });
    }

    fn cost_chart(&mut self, ui: &mut egui::Ui, summary: &CostSummary, now: UnixMillis) {
        ui.horizontal(|ui| {
            ui.label(format!("Cost over time of {}:", summary.machine_id));
            for range in CostRange::ALL {
                if ui.selectable_label(self.range == range, range.label()).clicked() {
                    self.range = range;
                }
            }
        });
        let (series, unit_millis, unit_name, span) = match self.range {
            CostRange::LastDay => (&summary.hourly, 3_600_000.0, "hours", 24.0),
            CostRange::Period => (&summary.daily, 86_400_000.0, "days", 31.0),
            CostRange::Forecast => {
                self.forecast = Some(forecast_chart::show(ui, summary, now));
                return;
            }
        };
        let bars: Vec<[f64; 2]> = (0..)
            .zip(&series.costs)
            .filter(|(_, cost)| !cost.is_zero())
            .map(|(index, cost)| {
                let start = series.from.0 as f64 + index as f64 * unit_millis;
                [(start - now.0 as f64) / unit_millis, cost.to_f64().unwrap_or(0.0)]
            })
            .collect();
        let top = bars.iter().map(|bar| bar[1]).fold(0.0, f64::max).max(1e-6) * 1.15;
        let chart_bars: Vec<Bar> = bars.iter().map(|bar| Bar::new(bar[0] + 0.5, bar[1]).width(0.9)).collect();
        let response = Plot::new("cost-chart")
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .allow_boxed_zoom(false)
            .allow_double_click_reset(false)
            .x_axis_label(format!("{unit_name} before now"))
            .y_axis_label(format!("cost ({})", summary.currency))
            .y_axis_min_width(64.0)
            .show(ui, |plot_ui| {
                // One unit past now: the current bucket is still filling and its bar reaches past 0.
                plot_ui.set_plot_bounds_x(-span..=1.0);
                plot_ui.set_plot_bounds_y(0.0..=top);
                plot_ui.bar_chart(BarChart::new(format!("cost of {}", summary.machine_id), chart_bars));
            });
        self.chart = Some(DrawnCostChart { machine: summary.machine_id.clone(), bounds: *response.transform.bounds(), bars });
    }
}

/// `2026-12 (this period)`, `2026-11 (last period)`, `2026-09`.
fn period_label(start: UnixMillis, current: UnixMillis) -> String {
    let month = start.to_string().get(..7).map_or_else(|| start.to_string(), str::to_owned);
    let previous = month_of(current.plus_millis(-1)).0;
    match start {
        _ if start == current => format!("{month} (this period)"),
        _ if start == previous => format!("{month} (last period)"),
        _ => month,
    }
}

/// Where the costs stand, in plain words: reading, showing a kept snapshot and how old it is, or
/// what is wrong, since when and what the app does about it; the library's words behind "details".
fn costs_status(ui: &mut egui::Ui, costs: &CostSnapshot) {
    let now = costs.read_at;
    let kept = costs.saved_at.map(|at| format!("Showing costs as of {} ({})", format::hour_minute(at), format::ago(at, now)));
    let retrying = format!("retrying every {}", format::duration(RETRY));
    match (&costs.state, kept) {
        (CostState::Ready, _) => {}
        (CostState::Loading, None) => drop(ui.label("Reading the costs…")),
        (CostState::Loading, Some(kept)) => drop(ui.label(format!("{kept}, while the latest are read…"))),
        (CostState::Failed(details), kept) => {
            let problem = costs.problem.as_deref().unwrap_or("the costs cannot be read");
            let since = costs.failing_since.map(|at| format!(" since {}", format::hour_minute(at))).unwrap_or_default();
            let line = match kept {
                Some(kept) => format!("{kept}; {problem}{since}, {retrying}."),
                None => format!("No costs to show: {problem}{since}, {retrying}. Check the network and the Brokers in Settings."),
            };
            ui.colored_label(ui.visuals().warn_fg_color, line);
            egui::CollapsingHeader::new("details").id_salt("costs-problem").show(ui, |ui| ui.label(details));
        }
    }
}
