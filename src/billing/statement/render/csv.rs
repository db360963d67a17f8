//! A statement as CSV: one row per machine line, then one per adjustment line, then a totals row,
//! through the crate's one CSV renderer ([`csv_table`]). Amounts are exact decimal text, as in the
//! JSON; an adjustment line has no usage of its own, so its usage cells are empty.

use rust_decimal::Decimal;

use super::super::{AdjustmentLine, MachineLine, Statement};
use crate::billing::table_format::{CsvRow, csv_table};

/// One row of a statement's CSV.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatementLineRow {
    /// `machine`, `adjustment` or `total`.
    pub kind: &'static str,
    /// The period the row bills: the statement's, or the earlier one an adjustment belongs to.
    pub period: String,
    /// The machine (empty on the totals row).
    pub machine_id: String,
    /// Records billed.
    pub records: u64,
    /// Their seqs, as ranges.
    pub seqs: String,
    /// The health and usage cells, empty where the row has none.
    pub figures: Vec<String>,
    /// The exact total of the row.
    pub exact_total: Decimal,
    /// The rounded total of the row.
    pub total: Decimal,
    /// Currency of every amount.
    pub currency: String,
}

/// Columns between `seqs` and `exact_total`: health, quantities, flat amounts, flat total, tiers.
const FIGURES: usize = 4 + 6 + 6 + 2;

impl CsvRow for StatementLineRow {
    const HEADER: &'static [&'static str] = &[
        "kind",
        "period",
        "machine_id",
        "records",
        "seqs",
        "gaps",
        "asleep_ms",
        "late_ms",
        "clock_steps",
        "cpu_core_hours",
        "memory_gb_hours",
        "net_rx_gb",
        "net_tx_gb",
        "disk_read_gb",
        "disk_write_gb",
        "cpu",
        "memory",
        "net_rx",
        "net_tx",
        "disk_read",
        "disk_write",
        "flat_total",
        "tier_adjustment",
        "exact_total",
        "total",
        "currency",
    ];

    fn cells(&self) -> Vec<String> {
        let mut cells =
            vec![self.kind.to_owned(), self.period.clone(), self.machine_id.clone(), self.records.to_string(), self.seqs.clone()];
        cells.extend(self.figures.iter().cloned());
        cells.resize(5 + FIGURES, String::new());
        cells.extend([self.exact_total.to_string(), self.total.to_string(), self.currency.clone()]);
        cells
    }
}

/// The health, usage and flat cells of a machine line, in header order.
fn machine_figures(line: &MachineLine) -> Vec<Decimal> {
    let (quantities, flat) = (&line.quantities, &line.flat);
    let health = [line.gaps, line.asleep_ms, line.late_ms, line.clock_steps].map(Decimal::from);
    let usage = [
        quantities.cpu_core_hours,
        quantities.memory_gb_hours,
        quantities.net_rx_gb,
        quantities.net_tx_gb,
        quantities.disk_read_gb,
        quantities.disk_write_gb,
    ];
    let amounts = [flat.cpu, flat.memory, flat.net_rx, flat.net_tx, flat.disk_read, flat.disk_write, line.flat_total, line.tier_adjustment];
    health.into_iter().chain(usage).chain(amounts).collect()
}

/// The rows of `statement`: its machine lines, its adjustment lines, and the totals, whose figures
/// are the column sums and whose total is the statement's (the sum of the rounded lines).
pub fn statement_rows(statement: &Statement) -> Vec<StatementLineRow> {
    let currency = || statement.currency.clone();
    let mut sums = vec![Decimal::ZERO; FIGURES];
    let mut rows = Vec::with_capacity(statement.machines.len() + statement.adjustments.len() + 1);
    for line in &statement.machines {
        let figures = machine_figures(line);
        sums.iter_mut().zip(&figures).for_each(|(sum, figure)| *sum += figure);
        rows.push(StatementLineRow {
            kind: "machine",
            period: statement.period.to_string(),
            machine_id: line.machine_id.clone(),
            records: line.records,
            seqs: line.seqs.to_string(),
            figures: figures.iter().map(Decimal::to_string).collect(),
            exact_total: line.exact_total,
            total: line.total,
            currency: currency(),
        });
    }
    rows.extend(statement.adjustments.iter().map(|line: &AdjustmentLine| StatementLineRow {
        kind: "adjustment",
        period: line.period.to_string(),
        machine_id: line.machine_id.clone(),
        records: line.records,
        seqs: line.seqs.to_string(),
        figures: Vec::new(),
        exact_total: line.exact_amount,
        total: line.amount,
        currency: currency(),
    }));
    let exact = statement.machines.iter().map(|line| line.exact_total).chain(statement.adjustments.iter().map(|line| line.exact_amount));
    rows.push(StatementLineRow {
        kind: "total",
        period: statement.period.to_string(),
        machine_id: String::new(),
        records: rows.iter().map(|row| row.records).sum(),
        seqs: String::new(),
        figures: sums.iter().map(Decimal::to_string).collect(),
        exact_total: exact.sum(),
        total: statement.totals.total,
        currency: currency(),
    });
    rows
}

/// `statement` as CSV with a header row.
pub fn statement_csv(statement: &Statement) -> String {
    csv_table(&statement_rows(statement))
}
