//! Reports over a ledger: per-machine totals with gaps and time health, in table, CSV or JSON form.

use rust_decimal::Decimal;
use serde::Serialize;

use super::ledger::{Ledger, LedgerError, rollup};
use super::price::round_for_display;
use super::table_format::CsvRow;
pub use super::table_format::ReportFormat;
use super::time_health::{TimeHealth, span};
pub use crate::record::TimeRange;

/// One machine's bill over a time range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineTotal {
    /// The machine.
    pub machine_id: String,
    /// Records billed in the range.
    pub records: u64,
    /// Lowest seq in the range.
    pub first_seq: u64,
    /// Highest seq in the range.
    pub last_seq: u64,
    /// Seqs missing between `first_seq` and `last_seq` (metering gaps).
    pub gaps: u64,
    /// Time asleep, observed late, and clock steps, over the windows in the range.
    #[serde(flatten)]
    pub time: TimeHealth,
    /// Exact cost, as a decimal string.
    #[serde(with = "rust_decimal::serde::str")]
    pub cost: Decimal,
    /// Currency of `cost`.
    pub currency: String,
    /// Start of the earliest window.
    pub first_start: String,
    /// End of the latest window.
    pub last_end: String,
}

/// Per-machine totals over `range`, ordered by machine id (read from the hourly rollups).
pub fn machine_totals(ledger: &Ledger, range: TimeRange) -> Result<Vec<MachineTotal>, LedgerError> {
    let (from, to) = range.bounds();
    let aggregates = rollup::aggregate_by_machine(ledger.connection(), from, to)?;
    let mut totals: Vec<MachineTotal> = aggregates
        .into_iter()
        .map(|(machine_id, aggregate)| MachineTotal {
            machine_id,
            records: aggregate.records,
            first_seq: aggregate.min_seq,
            last_seq: aggregate.max_seq,
            gaps: (aggregate.max_seq + 1).saturating_sub(aggregate.min_seq).saturating_sub(aggregate.records),
            time: TimeHealth::of(&aggregate),
            cost: aggregate.cost.normalize(),
            currency: aggregate.currency,
            first_start: aggregate.min_start.to_string(),
            last_end: aggregate.max_end.to_string(),
        })
        .collect();
    totals.sort_by(|a, b| a.machine_id.cmp(&b.machine_id));
    Ok(totals)
}

impl CsvRow for MachineTotal {
    const HEADER: &'static [&'static str] = &[
        "machine_id",
        "records",
        "first_seq",
        "last_seq",
        "gaps",
        "asleep_ms",
        "late_ms",
        "clock_steps",
        "cost",
        "currency",
        "first_start",
        "last_end",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.machine_id.clone(),
            self.records.to_string(),
            self.first_seq.to_string(),
            self.last_seq.to_string(),
            self.gaps.to_string(),
            self.time.asleep_ms.to_string(),
            self.time.late_ms.to_string(),
            self.time.clock_steps.to_string(),
            self.cost.to_string(),
            self.currency.clone(),
            self.first_start.clone(),
            self.last_end.clone(),
        ]
    }
}

/// Renders totals; amounts in the table are rounded to cents (the exact value is in CSV and JSON).
pub fn render(totals: &[MachineTotal], format: ReportFormat) -> String {
    super::table_format::render(totals, format, render_table)
}

fn render_table(totals: &[MachineTotal]) -> String {
    let width = totals.iter().map(|total| total.machine_id.len()).max().unwrap_or(0).max("machine".len());
    let mut out = format!(
        "{:<width$}  {:>9}  {:>9}  {:>9}  {:>6}  {:>8}  {:>8}  {:>5}  {:>14}\n",
        "machine", "records", "first_seq", "last_seq", "gaps", "asleep", "late", "steps", "cost"
    );
    let mut sum = Decimal::ZERO;
    let mut records = 0;
    for total in totals {
        sum += total.cost;
        records += total.records;
        out += &format!(
            "{:<width$}  {:>9}  {:>9}  {:>9}  {:>6}  {:>8}  {:>8}  {:>5}  {:>10} {}\n",
            total.machine_id,
            total.records,
            total.first_seq,
            total.last_seq,
            total.gaps,
            span(total.time.asleep_ms),
            span(total.time.late_ms),
            total.time.clock_steps,
            round_for_display(total.cost, 2),
            total.currency
        );
    }
    let currency = totals.first().map_or("", |total| total.currency.as_str());
    out += &format!("{} machine(s), {records} record(s), total {} {currency}\n", totals.len(), round_for_display(sum, 2));
    out
}
