//! `usagebill forecast --backtest`: how the forecast would have fared on the history billed.

use std::process::ExitCode;

use super::handlers::billed_lines;
use super::{init_logging, resolve_settings};
use crate::billing::cost_engine::forecast::backtest::{self, History};
use crate::billing::ledger::Ledger;
use crate::billing::table_format::{ReportFormat, csv_table};
use crate::cli::{CommonArgs, ForecastArgs};

/// Runs the back-test and prints it.
pub fn run(common: &CommonArgs, args: ForecastArgs) -> anyhow::Result<ExitCode> {
    init_logging("warn");
    let settings = resolve_settings(common)?;
    let path = billed_lines(&settings, args.ledger, args.from_feed)?;
    anyhow::ensure!(path.exists(), "no ledger at {}: nothing has been billed there (pass --ledger FILE or --from-feed)", path.display());
    let ledger = Ledger::open_read_only(&path)?;
    let history = History::load(&ledger)?;
    let progress = crate::progress::bar(0, "days replayed");
    let result = history.backtest(&mut |replayed, total| {
        progress.set_length(total);
        progress.set_position(replayed);
    });
    progress.finish_and_clear();
    let result = result?;
    match args.format {
        ReportFormat::Table => print!("{}", backtest::render_table(&result)),
        ReportFormat::Csv => print!("{}", csv_table(&result.days)),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&result)?),
    }
    Ok(ExitCode::SUCCESS)
}
