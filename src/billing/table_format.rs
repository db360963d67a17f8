//! CSV tables (RFC 4180 quoting), one renderer for every table the CLI prints and the API serves:
//! each row type says its header and cells once.

use std::borrow::Cow;

use serde::Serialize;

/// Output forms of `usagebill report` (and of each table the API serves as CSV).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Aligned columns for people.
    Table,
    /// Comma-separated values with a header row.
    Csv,
    /// A JSON array, one object per row.
    Json,
}

/// `rows` in `format`: a pretty JSON array, CSV through [`csv_table`], or the aligned `table`.
pub fn render<Row: CsvRow + Serialize>(rows: &[Row], format: ReportFormat, table: impl Fn(&[Row]) -> String) -> String {
    match format {
        ReportFormat::Json => serde_json::to_string_pretty(rows).expect("rows serialise") + "\n",
        ReportFormat::Csv => csv_table(rows),
        ReportFormat::Table => table(rows),
    }
}

/// A row of a CSV table.
pub trait CsvRow {
    /// Column names, in order.
    const HEADER: &'static [&'static str];
    /// The cells, in `HEADER` order, unquoted.
    fn cells(&self) -> Vec<String>;
}

/// `rows` as CSV with a header row, quoting cells that need it.
pub fn csv_table<Row: CsvRow>(rows: &[Row]) -> String {
    let mut out = Row::HEADER.join(",");
    out.push('\n');
    for row in rows {
        let cells: Vec<String> = row.cells().iter().map(|cell| csv_cell(cell).into_owned()).collect();
        out += &cells.join(",");
        out.push('\n');
    }
    out
}

/// One CSV cell: quoted (inner quotes doubled) when it holds a comma, a quote or a line break.
pub fn csv_cell(text: &str) -> Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) { Cow::Owned(format!("\"{}\"", text.replace('"', "\"\""))) } else { Cow::Borrowed(text) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_with_commas_quotes_or_newlines_are_quoted() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
    }
}
