//! The table of statements `usagebill statement list` prints: one row per statement, final ones by
//! number, then the drafts of the open periods.

use rust_decimal::Decimal;
use serde::Serialize;

use super::{Statement, Status};
use crate::billing::table_format::{CsvRow, ReportFormat, render};
use crate::record::UnixMillis;

/// One statement, in brief.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementRow {
    /// Its number; none for a draft.
    pub number: Option<u64>,
    /// Draft or final.
    pub status: Status,
    /// The account's id.
    pub account: String,
    /// The account's name.
    pub account_name: String,
    /// The period, `YYYY-MM`.
    pub period: String,
    /// When it was issued (final) or when it closes (draft).
    pub at: UnixMillis,
    /// Machine lines.
    pub machines: usize,
    /// Adjustment lines.
    pub adjustments: usize,
    /// What the account owes.
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
    /// Its currency.
    pub currency: String,
    /// The content hash (a draft's changes as records arrive).
    pub content_hash: String,
}

impl StatementRow {
    /// The row of `statement`.
    pub fn of(statement: &Statement) -> StatementRow {
        StatementRow {
            number: statement.number,
            status: statement.status,
            account: statement.account.id.clone(),
            account_name: statement.account.name.clone(),
            period: statement.period.to_string(),
            at: statement.issued_at.unwrap_or(statement.closes_at),
            machines: statement.machines.len(),
            adjustments: statement.adjustments.len(),
            total: statement.totals.total,
            currency: statement.currency.clone(),
            content_hash: statement.content_hash.clone(),
        }
    }
}

impl CsvRow for StatementRow {
    const HEADER: &'static [&'static str] =
        &["number", "status", "account", "account_name", "period", "at", "machines", "adjustments", "total", "currency", "content_hash"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.number.map(|number| number.to_string()).unwrap_or_default(),
            status_word(self.status).to_owned(),
            self.account.clone(),
            self.account_name.clone(),
            self.period.clone(),
            self.at.to_string(),
            self.machines.to_string(),
            self.adjustments.to_string(),
            self.total.to_string(),
            self.currency.clone(),
            self.content_hash.clone(),
        ]
    }
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Draft => "draft",
        Status::Final => "final",
    }
}

/// `rows` as a table, CSV or JSON.
pub fn render_rows(rows: &[StatementRow], format: ReportFormat) -> String {
    render(rows, format, render_table)
}

fn render_table(rows: &[StatementRow]) -> String {
    if rows.is_empty() {
        return "no statements yet: a period's statement appears once it has billed records\n".to_owned();
    }
    let width = rows.iter().map(|row| row.account.len()).max().unwrap_or(0).max("account".len());
    let mut out = format!(
        "{:>7}  {:<6}  {:<width$}  {:<7}  {:<24}  {:>8}  {:>14}\n",
        "number", "status", "account", "period", "issued / closes", "machines", "total"
    );
    for row in rows {
        let number = row.number.map_or_else(|| "-".to_owned(), |number| number.to_string());
        out += &format!(
            "{number:>7}  {:<6}  {:<width$}  {:<7}  {:<24}  {:>8}  {:>10} {}\n",
            status_word(row.status),
            row.account,
            row.period,
            row.at.to_string(),
            row.machines,
            row.total,
            row.currency
        );
    }
    out
}
