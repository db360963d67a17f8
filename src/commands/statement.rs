//! `usagebill statement close | list | show | verify`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::{init_logging, resolve_settings};
use crate::billing::rate_card::RateCard;
use crate::billing::statement::render::{statement_csv, statement_pdf};
use crate::billing::statement::{Statement, StatementRow, render_rows};
use crate::cli::{CommonArgs, StatementCommand, StatementFormat};
use crate::record::UnixMillis;
use crate::runtime::{Settings, statements};

/// Runs one `statement` command.
pub fn run(common: &CommonArgs, command: StatementCommand) -> anyhow::Result<ExitCode> {
    init_logging("warn");
    let settings = resolve_settings(common)?;
    let card = |flag: &Option<PathBuf>| RateCard::load(flag.as_deref().or(settings.config.worker.rate_card.as_deref()));
    match command {
        StatementCommand::Close { period, account, rate_card } => {
            let period = settings.cycle().parse(&period)?;
            let closed = statements::close(&settings, &card(&rate_card)?, period, UnixMillis::now())?;
            let rows: Vec<StatementRow> = closed
                .iter()
                .filter(|statement| account.as_deref().is_none_or(|id| statement.account.id == id))
                .map(StatementRow::of)
                .collect();
            print!("{}", render_rows(&rows, crate::billing::table_format::ReportFormat::Table));
            Ok(ExitCode::SUCCESS)
        }
        StatementCommand::List { account, period, format, rate_card } => {
            let period = period.as_deref().map(|text| settings.cycle().parse(text)).transpose()?;
            let (issued, skipped) = statements::issued(&settings)?;
            warn_skipped(&skipped);
            let drafts = statements::open_drafts(&settings, &card(&rate_card)?, &issued, UnixMillis::now())?;
            let wanted = |statement: &&Statement| {
                account.as_deref().is_none_or(|id| statement.account.id == id) && period.is_none_or(|period| statement.period == period)
            };
            let rows: Vec<StatementRow> = issued.statements().chain(&drafts).filter(wanted).map(StatementRow::of).collect();
            print!("{}", render_rows(&rows, format));
            Ok(ExitCode::SUCCESS)
        }
        StatementCommand::Show { number, format, out } => show(&settings, number, format, out),
        StatementCommand::Verify { number, rate_card } => {
            let differences = statements::verify(&settings, &card(&rate_card)?, number)?;
            for difference in &differences {
                println!("{difference}");
            }
            if differences.is_empty() {
                println!("statement {number} verifies: derived again from the records it names, it is the same, byte for byte");
                return Ok(ExitCode::SUCCESS);
            }
            println!("{} difference(s)", differences.len());
            Ok(ExitCode::from(1))
        }
    }
}

fn warn_skipped(skipped: &[String]) {
    for reason in skipped {
        eprintln!("skipped a stored statement: {reason}");
    }
}

fn show(settings: &Settings, number: u64, format: StatementFormat, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let (issued, skipped) = statements::issued(settings)?;
    warn_skipped(&skipped);
    let statement = issued
        .by_number(number)
        .with_context(|| format!("there is no final statement {number} (`usagebill statement list` shows them)"))?;
    let bytes = match format {
        StatementFormat::Json => statement.canonical_bytes(),
        StatementFormat::Csv => statement_csv(statement).into_bytes(),
        StatementFormat::Pdf => statement_pdf(statement),
    };
    match out {
        Some(path) => std::fs::write(&path, &bytes).with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(ExitCode::SUCCESS)
}
