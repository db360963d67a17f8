//! The Costs tab: one row per machine (cost today, this period, projected to the period's end, last
//! seen, gaps), sortable by any column, and a cost-over-time chart for the selected machine.

use std::cmp::Ordering;

use eframe::egui;
use egui_plot::{Bar, BarChart, Plot, PlotBounds};
use rust_decimal::prelude::ToPrimitive;

use super::app::{Action, Live};
use super::format;
use crate::billing::period::MachineCost;
use crate::runtime::costs::{CostRange, CostSelection, CostState};

/// A column of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    /// Machine id.
    #[default]
    Machine,
    /// Cost today.
    Today,
    /// Cost this period.
    Period,
    /// Projected cost at the period's end.
    Projected,
    /// Last seen.
    LastSeen,
    /// Missing records.
    Gaps,
}

impl SortBy {
    const ALL: [SortBy; 6] = [SortBy::Machine, SortBy::Today, SortBy::Period, SortBy::Projected, SortBy::LastSeen, SortBy::Gaps];

    /// The column's header.
    pub fn header(self) -> &'static str {
        match self {
            SortBy::Machine => "Machine",
            SortBy::Today => "Today",
            SortBy::Period => "This period",
            SortBy::Projected => "Projected",
            SortBy::LastSeen => "Last seen",
            SortBy::Gaps => "Gaps",
        }
    }

    fn compare(self, a: &MachineCost, b: &MachineCost) -> Ordering {
        match self {
            SortBy::Machine => a.machine_id.cmp(&b.machine_id),
            SortBy::Today => a.today.cmp(&b.today),
            SortBy::Period => a.period.cmp(&b.period),
            SortBy::Projected => a.projected.cmp(&b.projected),
            SortBy::LastSeen => a.last_seen.cmp(&b.last_seen),
            SortBy::Gaps => a.gaps.cmp(&b.gaps),
        }
    }
}

/// The cost chart as last drawn.
#[derive(Debug, Clone)]
pub struct DrawnCostChart {
    /// The machine charted.
    pub machine: String,
    /// Plot bounds: x in the range's unit relative to now (minutes, hours or days), y in the currency.
    pub bounds: PlotBounds,
    /// `[x, cost]` per bucket.
    pub bars: Vec<[f64; 2]>,
}

/// The Costs tab's own state.
#[derive(Debug, Default)]
pub struct CostsView {
    sort: SortBy,
    descending: bool,
    /// The one copy of the selection: sent whole when it changes, and compared with the one a
    /// snapshot was read for before its series is drawn.
    selection: CostSelection,
    chart: Option<DrawnCostChart>,
}

impl CostsView {
    /// The machines in the order shown.
    pub fn sorted<'a>(&self, machines: &'a [MachineCost]) -> Vec<&'a MachineCost> {
        let mut rows: Vec<&MachineCost> = machines.iter().collect();
        rows.sort_by(|a, b| {
            let order = self.sort.compare(a, b).then_with(|| a.machine_id.cmp(&b.machine_id));
            if self.descending { order.reverse() } else { order }
        });
        rows
    }

    /// The selected machine.
    pub fn selected(&self) -> Option<&str> {
        self.selection.machine.as_deref()
    }

    fn select(&mut self, selection: CostSelection, actions: &mut Vec<Action>) {
        if selection != self.selection {
            self.selection = selection;
            actions.push(Action::SelectCosts(self.selection.clone()));
        }
    }

    /// The chart as last drawn.
    pub fn chart(&self) -> Option<&DrawnCostChart> {
        self.chart.as_ref()
    }

    /// Draws the tab.
    pub fn show(&mut self, ui: &mut egui::Ui, live: &Live, actions: &mut Vec<Action>) {
        let costs = &live.costs;
        match &costs.state {
            CostState::Loading => drop(ui.label("Reading the costs…")),
            CostState::NoBills => drop(ui.label("No bills yet: a machine appears here within a second of its first billed record.")),
            CostState::Failed(error) => drop(ui.colored_label(ui.visuals().error_fg_color, format!("Cannot read the costs: {error}"))),
            CostState::Ready => {}
        }
        if costs.machines.is_empty() {
            return;
        }
        let selected = self.selection.machine.as_ref();
        if selected.is_none_or(|selected| !costs.machines.iter().any(|cost| &cost.machine_id == selected)) {
            let own = costs.machines.iter().find(|cost| Some(&cost.machine_id) == live.machine_id.as_ref());
            let machine = own.or(costs.machines.first()).map(|cost| cost.machine_id.clone());
            self.select(CostSelection { machine, ..self.selection.clone() }, actions);
        }
        self.table(ui, &costs.machines, actions);
        ui.separator();
        ui.horizontal(|ui| {
            ui.label(format!("Cost over time of {}:", self.selected().unwrap_or("?")));
            for range in CostRange::ALL {
                if ui.selectable_label(self.selection.range == range, range.label()).clicked() {
                    self.select(CostSelection { range, ..self.selection.clone() }, actions);
                }
            }
        });
        self.cost_chart(ui, live);
    }

    fn table(&mut self, ui: &mut egui::Ui, machines: &[MachineCost], actions: &mut Vec<Action>) {
        egui::ScrollArea::vertical().max_height(ui.available_height() * 0.45).show(ui, |ui| {
            egui::Grid::new("costs").striped(true).num_columns(SortBy::ALL.len()).spacing([24.0, 6.0]).show(ui, |ui| {
                for column in SortBy::ALL {
                    ui.horizontal(|ui| {
                        if ui.button(egui::RichText::new(column.header()).strong()).on_hover_text("Sort by this column").clicked() {
                            self.descending = self.sort == column && !self.descending;
                            self.sort = column;
                        }
                        if self.sort == column {
                            sort_marker(ui, self.descending);
                        }
                    });
                }
                ui.end_row();
                for cost in self.sorted(machines) {
                    let selected = self.selected() == Some(cost.machine_id.as_str());
                    if ui.selectable_label(selected, &cost.machine_id).clicked() {
                        self.select(CostSelection { machine: Some(cost.machine_id.clone()), ..self.selection.clone() }, actions);
                    }
                    ui.label(format::money(cost.today, &cost.currency));
                    ui.label(format::money(cost.period, &cost.currency)).on_hover_text(format!("exact: {}", cost.period));
                    ui.label(format::money(cost.projected, &cost.currency));
                    ui.label(format::instant(cost.last_seen));
                    ui.label(cost.gaps.to_string());
                    ui.end_row();
                }
            });
        });
    }

    fn cost_chart(&mut self, ui: &mut egui::Ui, live: &Live) {
        let costs = &live.costs;
        let Some(machine) = self.selection.machine.clone() else { return };
        let currency = costs.machines.iter().find(|cost| cost.machine_id == machine).map_or("", |cost| cost.currency.as_str());
        let (unit_millis, unit_name, span) = match self.selection.range {
            CostRange::LastHour => (60_000.0, "minutes", 60.0),
            CostRange::LastDay => (3_600_000.0, "hours", 24.0),
            CostRange::Period => (86_400_000.0, "days", 31.0),
        };
        let (_, _, bucket_millis) = self.selection.range.span(costs.read_at);
        let current = costs.selection == self.selection;
        let bars: Vec<[f64; 2]> = if current {
            costs
                .series
                .iter()
                .map(|(start, cost)| [(start.0 - costs.read_at.0) as f64 / unit_millis, cost.to_f64().unwrap_or(0.0)])
                .collect()
        } else {
            Vec::new()
        };
        let width = bucket_millis as f64 / unit_millis;
        let top = bars.iter().map(|bar| bar[1]).fold(0.0, f64::max).max(1e-6) * 1.15;
        let chart_bars: Vec<Bar> = bars.iter().map(|bar| Bar::new(bar[0] + width / 2.0, bar[1]).width(width * 0.9)).collect();
        let response = Plot::new("cost-chart")
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .allow_boxed_zoom(false)
            .allow_double_click_reset(false)
            .x_axis_label(format!("{unit_name} before now"))
            .y_axis_label(format!("cost ({currency})"))
            .y_axis_min_width(64.0)
            .show(ui, |plot_ui| {
                // One unit past now: the current bucket is still filling and its bar reaches past 0.
                plot_ui.set_plot_bounds_x(-span..=1.0);
                plot_ui.set_plot_bounds_y(0.0..=top);
                plot_ui.bar_chart(BarChart::new(format!("cost of {machine}"), chart_bars));
            });
        self.chart = Some(DrawnCostChart { machine, bounds: *response.transform.bounds(), bars });
    }
}

/// A small triangle beside the sorted column's header: up for ascending, down for descending
/// (drawn, since the bundled font has no arrow glyphs).
fn sort_marker(ui: &mut egui::Ui, descending: bool) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
    let (top, bottom) = (rect.top(), rect.bottom());
    let points = if descending {
        vec![egui::pos2(rect.left(), top), egui::pos2(rect.right(), top), egui::pos2(rect.center().x, bottom)]
    } else {
        vec![egui::pos2(rect.left(), bottom), egui::pos2(rect.right(), bottom), egui::pos2(rect.center().x, top)]
    };
    ui.painter().add(egui::Shape::convex_polygon(points, ui.visuals().strong_text_color(), egui::Stroke::NONE));
}
