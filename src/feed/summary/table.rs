//! The per-machine cost table as the Costs tab shows it, from the summaries held: one row per
//! machine for a chosen period, the same rows `report --from-summary` prints.

use rust_decimal::Decimal;
use serde::Serialize;

use super::SummaryBook;
use crate::billing::cost_engine::CostSummary;
use crate::billing::cost_engine::calendar::month_of;
use crate::billing::cost_engine::forecast::Method;
use crate::billing::price::round_for_display;
use crate::billing::table_format::{CsvRow, ReportFormat};
use crate::billing::time_health::{TimeHealth, span};
use crate::record::UnixMillis;

/// One machine's row for a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SummaryRow {
    /// The machine.
    pub machine_id: String,
    /// Cost today (the current period only; zero otherwise).
    #[serde(with = "rust_decimal::serde::str")]
    pub today: Decimal,
    /// Cost of the period.
    #[serde(with = "rust_decimal::serde::str")]
    pub period: Decimal,
    /// The forecast of the period's end (the current period; an earlier one's is its cost); none
    /// without enough history.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub projected: Option<Decimal>,
    /// The forecast band's low end (10th percentile).
    #[serde(with = "rust_decimal::serde::str_option")]
    pub projected_low: Option<Decimal>,
    /// The forecast band's high end (90th percentile).
    #[serde(with = "rust_decimal::serde::str_option")]
    pub projected_high: Option<Decimal>,
    /// How it was forecast: `seasonal`, `fleet_pattern`, `line`, `final` (an earlier period), or
    /// why there is no figure (`not enough history to project (5 h so far)`).
    pub forecast: String,
    /// Records billed in the period.
    pub records: u64,
    /// Missing seqs, all time.
    pub gaps: u64,
    /// Time asleep, observed late, and clock steps, all time (as `gaps`).
    #[serde(flatten)]
    pub time: TimeHealth,
    /// End of its latest window.
    pub last_seen: UnixMillis,
    /// Currency.
    pub currency: String,
    /// Card version of its latest line.
    pub card_version: String,
}

impl SummaryRow {
    /// The row of `summary` for the period starting at `period_start`, as of `now`; `None` when
    /// the machine has no usage in it.
    pub fn of(summary: &CostSummary, period_start: UnixMillis, now: UnixMillis) -> Option<SummaryRow> {
        let current = month_of(now).0 == period_start;
        let (period, records) = if current {
            (summary.period_at(now), if summary.period_start == period_start { summary.period_records } else { 0 })
        } else {
            summary.period_cost(period_start)?
        };
        if records == 0 {
            return None;
        }
        let outlook = summary.outlook_at(now);
        let ((projected, projected_low, projected_high), forecast) = match outlook.forecast() {
            _ if !current => ((Some(period), Some(period), Some(period)), "final".to_owned()),
            Some(forecast) => ((Some(forecast.estimate), Some(forecast.low), Some(forecast.high)), method_name(forecast.method)),
            None => ((None, None, None), outlook.why_none().unwrap_or_default()),
        };
        Some(SummaryRow {
            machine_id: summary.machine_id.clone(),
            today: if current { summary.today_at(now) } else { Decimal::ZERO },
            period,
            projected,
            projected_low,
            projected_high,
            forecast,
            records,
            gaps: summary.gaps,
            time: summary.time_health(),
            last_seen: summary.last_seen,
            currency: summary.currency.clone(),
            card_version: summary.card_version.clone(),
        })
    }
}

/// Every machine's row for the period starting at `period_start`, ordered by machine id.
pub fn rows(book: &SummaryBook, period_start: UnixMillis, now: UnixMillis) -> Vec<SummaryRow> {
    let mut rows: Vec<SummaryRow> = book.summaries().filter_map(|summary| SummaryRow::of(summary, period_start, now)).collect();
    rows.sort_by(|a, b| a.machine_id.cmp(&b.machine_id));
    rows
}

impl CsvRow for SummaryRow {
    const HEADER: &'static [&'static str] = &[
        "machine_id",
        "today",
        "period",
        "projected",
        "projected_low",
        "projected_high",
        "forecast",
        "records",
        "gaps",
        "asleep_ms",
        "late_ms",
        "clock_steps",
        "last_seen",
        "currency",
        "card_version",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.machine_id.clone(),
            self.today.to_string(),
            self.period.to_string(),
            optional(self.projected),
            optional(self.projected_low),
            optional(self.projected_high),
            self.forecast.clone(),
            self.records.to_string(),
            self.gaps.to_string(),
            self.time.asleep_ms.to_string(),
            self.time.late_ms.to_string(),
            self.time.clock_steps.to_string(),
            self.last_seen.to_string(),
            self.currency.clone(),
            self.card_version.clone(),
        ]
    }
}

fn optional(amount: Option<Decimal>) -> String {
    amount.map(|amount| amount.to_string()).unwrap_or_default()
}

fn method_name(method: Method) -> String {
    serde_json::to_value(method).ok().and_then(|value| value.as_str().map(str::to_owned)).unwrap_or_default()
}

/// Renders rows as `report` renders totals: amounts in the table rounded to cents, exact in CSV and JSON.
pub fn render(rows: &[SummaryRow], format: ReportFormat) -> String {
    crate::billing::table_format::render(rows, format, render_table)
}

fn render_table(rows: &[SummaryRow]) -> String {
    let width = rows.iter().map(|row| row.machine_id.len()).max().unwrap_or(0).max("machine".len());
    let mut out = format!(
        "{:<width$}  {:>10}  {:>12}  {:>25}  {:>8}  {:>5}  {:>8}  {:>8}  {:>5}\n",
        "machine", "today", "period", "projected (low–high)", "records", "gaps", "asleep", "late", "steps"
    );
    let (mut today, mut period, mut projected, mut records) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, 0);
    let cents = |amount: Decimal| round_for_display(amount, 2);
    for row in rows {
        today += row.today;
        period += row.period;
        projected += row.projected.unwrap_or(row.period);
        records += row.records;
        let band = match (row.projected, row.projected_low, row.projected_high) {
            (Some(estimate), Some(low), Some(high)) => format!("{} ({}–{})", cents(estimate), cents(low), cents(high)),
            _ => "not enough history".to_owned(),
        };
        out += &format!(
            "{:<width$}  {:>10}  {:>12}  {:>25}  {:>8}  {:>5}  {:>8}  {:>8}  {:>5}\n",
            row.machine_id,
            cents(row.today),
            cents(row.period),
            band,
            row.records,
            row.gaps,
            span(row.time.asleep_ms),
            span(row.time.late_ms),
            row.time.clock_steps
        );
    }
    let currency = rows.first().map_or("", |row| row.currency.as_str());
    out += &format!(
        "{} machine(s), {records} record(s): today {} {currency}, period {} {currency}, projected {} {currency}\n",
        rows.len(),
        cents(today),
        cents(period),
        cents(projected)
    );
    out
}
