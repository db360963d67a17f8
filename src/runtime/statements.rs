//! Statements as the commands and the app reach them. In embedded mode they are computed from the
//! ledger and kept in it. With a broker they are computed from the deduplicated costs topic
//! (materialised into `feed.db` in the data dir first, as `report --from-feed` does) and kept on
//! the statement topic.

use std::path::PathBuf;

use crate::billing::ledger::Ledger;
use crate::billing::rate_card::RateCard;
use crate::billing::statement::compute::first_period_with_usage;
use crate::billing::statement::{self, Issued, LedgerStatements, Period, Sources, Statement, close_period};
use crate::feed;
use crate::feed::statements::KafkaStatements;
use crate::record::UnixMillis;

use super::Settings;

/// The file statements are computed from: the ledger, or the costs topic materialised up to now.
fn source_path(settings: &Settings) -> anyhow::Result<PathBuf> {
    if settings.embedded() {
        return Ok(settings.ledger_path());
    }
    let view = settings.data_dir.join("feed.db");
    let totals = feed::materialise_until_caught_up(&settings.config.kafka, &view)?;
    tracing::info!("costs topic materialised into {}: {totals:?}", view.display());
    Ok(view)
}

fn sources<'a>(settings: &'a Settings, ledger: &'a Ledger, card: &'a RateCard) -> Sources<'a> {
    Sources { ledger, card, accounts: settings.accounts(), issuer: settings.issuer(), cycle: settings.cycle(), named_by: None }
}

/// Every final statement and closed period, and the stored statements that failed their checks
/// (each named).
pub fn issued(settings: &Settings) -> anyhow::Result<(Issued, Vec<String>)> {
    if settings.embedded() {
        let ledger = Ledger::open(&settings.ledger_path())?;
        return LedgerStatements::new(&ledger).read();
    }
    feed::statements::read_issued(&settings.config.kafka)
}

/// Closes `period` at `now`, and every earlier period with usage not closed yet, in order; returns
/// `period`'s final statements.
pub fn close(settings: &Settings, card: &RateCard, period: Period, now: UnixMillis) -> anyhow::Result<Vec<Statement>> {
    let closes_at = settings.cycle().closes_at(period);
    anyhow::ensure!(now >= closes_at, "period {period} cannot close before {closes_at} (its end plus the grace period)");
    let ledger =
        if settings.embedded() { Ledger::open(&source_path(settings)?)? } else { Ledger::open_read_only(&source_path(settings)?)? };
    let sources = sources(settings, &ledger, card);
    let first = first_period_with_usage(&ledger, settings.cycle())?.unwrap_or(period);
    let closed = if settings.embedded() {
        close_period(&mut LedgerStatements::new(&ledger), &sources, first, period, now)?
    } else {
        close_period(&mut KafkaStatements::new(&settings.config.kafka, settings.issuer())?, &sources, first, period, now)?
    };
    Ok(closed)
}

/// The drafts of the periods still open at `now` (the current one, and the one before while in
/// its grace and not closed).
pub fn open_drafts(settings: &Settings, card: &RateCard, issued: &Issued, now: UnixMillis) -> anyhow::Result<Vec<Statement>> {
    let ledger = Ledger::open_read_only(&source_path(settings)?)?;
    let sources = sources(settings, &ledger, card);
    let current = settings.cycle().period_of(now);
    let mut drafts = Vec::new();
    if !issued.is_closed(current.previous())
        && first_period_with_usage(&ledger, settings.cycle())?.is_some_and(|first| first <= current.previous())
    {
        drafts.extend(statement::drafts(&sources, current.previous(), issued, None)?);
    }
    drafts.extend(statement::drafts(&sources, current, issued, None)?);
    Ok(drafts)
}

/// Verifies final statement `number`: the differences, each named; none means it verifies.
pub fn verify(settings: &Settings, card: &RateCard, number: u64) -> anyhow::Result<Vec<String>> {
    let (issued, skipped) = issued(settings)?;
    let ledger = Ledger::open_read_only(&source_path(settings)?)?;
    let sources = sources(settings, &ledger, card);
    if settings.embedded()
        && let Some(stored) = LedgerStatements::new(&ledger).bytes(number)?
    {
        return Ok(statement::verify(&sources, &issued, &stored));
    }
    let Some(statement) = issued.by_number(number) else {
        let mut reason = format!("there is no final statement {number}");
        if !skipped.is_empty() {
            reason += &format!("; {} stored statement(s) failed their checks: {}", skipped.len(), skipped.join("; "));
        }
        return Ok(vec![reason]);
    };
    Ok(statement::verify(&sources, &issued, &statement.canonical_bytes()))
}
