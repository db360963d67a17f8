//! The Usage tab: the current values large, and live charts of CPU, memory, disk and network over the
//! last 1 min, 15 min or 1 h, with time on the x axis (seconds before the newest reading) and units on y.

use std::collections::HashMap;

use eframe::egui;
use egui_plot::{Corner, HoverPosition, Legend, Line, Plot, PlotBounds};

use super::format;
use super::history::{History, TimeRange, runs};
use super::live::Live;
use crate::collect::Reading;

/// One of the four charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Chart {
    /// CPU busy, % of all cores.
    Cpu,
    /// Memory in use, bytes.
    Memory,
    /// Disk reads and writes, bytes per second.
    Disk,
    /// Network received and sent, bytes per second.
    Network,
}

/// What a chart showed in the last frame: its bounds and its lines (name, points).
#[derive(Debug, Clone)]
pub struct DrawnChart {
    /// The plot's bounds, x in seconds before the newest reading.
    pub bounds: PlotBounds,
    /// Each line's name and `[x, y]` points.
    pub lines: Vec<(String, Vec<[f64; 2]>)>,
}

/// A line's name and its `[x, y]` points.
type NamedSeries = (&'static str, Vec<[f64; 2]>);

/// The Usage tab's own state.
#[derive(Debug, Default)]
pub struct UsageView {
    range: TimeRange,
    drawn: HashMap<Chart, DrawnChart>,
}

/// Smallest top of a rate chart, so an idle disk shows a flat line at the bottom rather than noise.
const MIN_RATE_SCALE: f64 = 1_000.0;
/// Colours of a chart's first and second series (read/write, received/sent), fixed so the runs of
/// a series broken by a sleep share one.
const SERIES_COLOURS: [egui::Color32; 2] = [egui::Color32::from_rgb(0x3b, 0x8e, 0xd0), egui::Color32::from_rgb(0xe0, 0x8a, 0x2c)];
/// Top of the CPU and memory charts, as a multiple of their full scale (100 %, installed memory).
pub const FULL_SCALE_HEADROOM: f64 = 1.03;

impl UsageView {
    /// The selected range.
    pub fn range(&self) -> TimeRange {
        self.range
    }

    /// What `chart` showed in the last frame the tab was on.
    pub fn drawn(&self, chart: Chart) -> Option<&DrawnChart> {
        self.drawn.get(&chart)
    }

    /// Draws the tab.
    pub fn show(&mut self, ui: &mut egui::Ui, live: &Live) {
        ui.horizontal(|ui| {
            ui.label("Range:");
            for range in TimeRange::ALL {
                if ui.selectable_label(self.range == range, range.label()).clicked() {
                    self.range = range;
                }
            }
        });
        match live.history.latest() {
            Some(latest) => current_values(ui, latest),
            None => {
                ui.label("Waiting for the first reading…");
            }
        }
        money_at_a_glance(ui, live);
        ui.add_space(4.0);
        let chart_height = ((ui.available_height() - 12.0) / 2.0).max(120.0);
        ui.columns(2, |columns| {
            self.chart(&mut columns[0], Chart::Cpu, &live.history, chart_height);
            self.chart(&mut columns[1], Chart::Memory, &live.history, chart_height);
        });
        ui.columns(2, |columns| {
            self.chart(&mut columns[0], Chart::Disk, &live.history, chart_height);
            self.chart(&mut columns[1], Chart::Network, &live.history, chart_height);
        });
    }

    fn chart(&mut self, ui: &mut egui::Ui, chart: Chart, history: &History, height: f32) {
        let range = self.range;
        let (title, lines): (&str, Vec<NamedSeries>) = match chart {
            Chart::Cpu => ("CPU busy (% of all cores)", vec![("CPU", history.series(range, |reading| reading.cpu_pct))]),
            Chart::Memory => ("Memory in use", vec![("in use", history.series(range, |reading| reading.mem_used_bytes as f64))]),
            Chart::Disk => (
                "Disk (bytes per second)",
                vec![
                    ("read", history.series(range, |reading| reading.per_second(reading.disk_read_bytes))),
                    ("write", history.series(range, |reading| reading.per_second(reading.disk_write_bytes))),
                ],
            ),
            Chart::Network => (
                "Network (bytes per second)",
                vec![
                    ("received", history.series(range, |reading| reading.per_second(reading.net_rx_bytes))),
                    ("sent", history.series(range, |reading| reading.per_second(reading.net_tx_bytes))),
                ],
            ),
        };
        let highest = lines.iter().flat_map(|(_, points)| points.iter().map(|point| point[1])).fold(0.0, f64::max);
        // A little headroom over the full scale, so a line at 100 % is not clipped by the frame.
        let top = match chart {
            Chart::Cpu => 100.0 * FULL_SCALE_HEADROOM,
            Chart::Memory => history.latest().map_or(1.0, |reading| reading.mem_total_bytes as f64).max(highest) * FULL_SCALE_HEADROOM,
            Chart::Disk | Chart::Network => (highest * 1.15).max(MIN_RATE_SCALE),
        };
        let y_tick: fn(f64) -> String = match chart {
            Chart::Cpu => |value| format!("{value:.0} %"),
            Chart::Memory => format::bytes,
            Chart::Disk | Chart::Network => format::bytes_per_sec,
        };
        ui.label(egui::RichText::new(title).strong());
        let response = Plot::new(("usage-chart", chart as u8))
            .height(height - 24.0)
            .legend(Legend::default().position(Corner::LeftTop))
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .allow_boxed_zoom(false)
            .allow_double_click_reset(false)
            .x_axis_label("time")
            .x_axis_formatter(|mark, _| format::seconds_ago(mark.value))
            .y_axis_formatter(move |mark, _| y_tick(mark.value))
            .y_axis_min_width(56.0)
            .label_formatter(move |hover| {
                let (HoverPosition::NearDataPoint { position, .. } | HoverPosition::Elsewhere { position }) = hover;
                Some(format!("{}\n{}", y_tick(position.y), format::seconds_ago(position.x)))
            })
            .show(ui, |plot_ui| {
                plot_ui.set_plot_bounds_x(-range.seconds()..=0.0);
                plot_ui.set_plot_bounds_y(0.0..=top);
                for (index, (name, points)) in lines.iter().enumerate() {
                    // A series broken by a sleep is drawn as several lines of one name and colour.
                    let colour = SERIES_COLOURS[index % SERIES_COLOURS.len()];
                    for run in runs(points) {
                        plot_ui.line(Line::new(*name, run.to_vec()).color(colour).width(1.5));
                    }
                }
            });
        let lines = lines.into_iter().map(|(name, points)| (name.to_owned(), points)).collect();
        self.drawn.insert(chart, DrawnChart { bounds: *response.transform.bounds(), lines });
    }
}

/// The newest reading, large.
fn current_values(ui: &mut egui::Ui, latest: &Reading) {
    let values = [
        ("CPU now", format!("{:.1} %", latest.cpu_pct)),
        ("Memory now", format!("{} ({:.0} %)", format::bytes(latest.mem_used_bytes as f64), latest.mem_pct())),
        ("Disk read now", format::bytes_per_sec(latest.per_second(latest.disk_read_bytes))),
        ("Disk write now", format::bytes_per_sec(latest.per_second(latest.disk_write_bytes))),
        ("Received now", format::bytes_per_sec(latest.per_second(latest.net_rx_bytes))),
        ("Sent now", format::bytes_per_sec(latest.per_second(latest.net_tx_bytes))),
    ];
    ui.horizontal_wrapped(|ui| {
        for (caption, value) in values {
            ui.vertical(|ui| {
                ui.label(egui::RichText::new(caption).small().weak());
                ui.label(egui::RichText::new(value).size(22.0).strong());
            });
            ui.add_space(18.0);
        }
    });
}

/// This machine's money beside its charts: the rate now, today, this period, and the estimate.
fn money_at_a_glance(ui: &mut egui::Ui, live: &Live) {
    let own = live.machine_id.as_deref().and_then(|machine| live.costs.summaries.iter().find(|summary| summary.machine_id == machine));
    let Some(summary) = own else {
        ui.label("Cost: none billed for this machine yet.");
        return;
    };
    let now = live.costs.read_at;
    let money = |amount| format::money(amount, &summary.currency);
    let outlook = summary.outlook_at(now);
    let forecast = match outlook.forecast() {
        Some(forecast) => format::forecast_line(forecast, &summary.currency),
        None => outlook.why_none().unwrap_or_default(),
    };
    ui.label(
        egui::RichText::new(format!(
            "Cost: {}/h now · today {} · this period {} · {forecast}",
            money(summary.burn_per_hour),
            money(summary.today_at(now)),
            money(summary.period_at(now)),
        ))
        .size(16.0),
    )
    .on_hover_text(format!(
        "exact: {}/h now, today {}, this period {}",
        format::exact_money(summary.burn_per_hour, &summary.currency),
        format::exact_money(summary.today_at(now), &summary.currency),
        format::exact_money(summary.period_at(now), &summary.currency),
    ));
}
