//! `/api/v1/statements` and `/api/v1/statements/{number}`: the final statements, read from the
//! statement topic when the worker has a cluster and from the ledger's table in embedded mode. A
//! read answers requests for [`STATEMENTS_FRESH_FOR`]: issuing happens once a period, and reading
//! the whole topic per request would make every listing as slow as a consumer start.
//!
//! Like the ledger endpoints, a store that cannot be read gives empty data (said in the
//! [`STATEMENTS_HEADER`] header), never a 5xx.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::{Api, LedgerCache, LedgerState};
use crate::api::params::{ParamError, Query, percent_decode};
use crate::api::render::{self, ApiResponse};
use crate::billing::statement::render::{file_stem, statement_csv, statement_pdf};
use crate::billing::statement::{Account, Issued, LedgerStatements, Period, Statement, StatementStore, Status};
use crate::record::UnixMillis;

/// How long one read of the statement store answers requests.
pub const STATEMENTS_FRESH_FOR: Duration = Duration::from_secs(5);
/// Header saying whether the statements could be read: `ok` or `unavailable`.
pub const STATEMENTS_HEADER: &str = "X-Usagebill-Statements";

/// One thread's last read of the statement store.
#[derive(Default)]
pub struct StatementsCache {
    read: Option<(Instant, Arc<Issued>, bool)>,
}

/// A statement in a listing: what tells it apart and what it comes to.
#[derive(Debug, Serialize)]
pub struct StatementSummary {
    number: Option<u64>,
    account: Account,
    period: Period,
    status: Status,
    issued_at: Option<UnixMillis>,
    currency: String,
    #[serde(with = "rust_decimal::serde::str")]
    total: rust_decimal::Decimal,
    content_hash: String,
}

impl StatementSummary {
    fn of(statement: &Statement) -> StatementSummary {
        StatementSummary {
            number: statement.number,
            account: statement.account.clone(),
            period: statement.period,
            status: statement.status,
            issued_at: statement.issued_at,
            currency: statement.currency.clone(),
            total: statement.totals.total,
            content_hash: statement.content_hash.clone(),
        }
    }
}

/// The forms a statement is served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatementFormat {
    Json,
    Csv,
    Pdf,
}

fn store_header(readable: bool) -> &'static str {
    if readable { "ok" } else { "unavailable" }
}

impl Api {
    /// `GET /api/v1/statements?account=&period=`.
    pub(super) fn statements(&self, raw_query: &str, cache: &mut LedgerCache) -> Result<ApiResponse, ParamError> {
        let query = Query::parse(raw_query, &["account", "period"])?;
        let account = query.get("account");
        if let Some(id) = account {
            crate::record::validate_machine_id(id).map_err(|reason| ParamError {
                name: "account".into(),
                value: id.into(),
                expected: reason.replace("machine id", "account id"),
            })?;
        }
        let period = query
            .get("period")
            .map(|text| {
                Period::parse(text).map_err(|_| ParamError {
                    name: "period".into(),
                    value: text.into(),
                    expected: "a period: a month YYYY-MM (2026-11), an ISO week YYYY-Www (2026-W48) or a day YYYY-MM-DD".into(),
                })
            })
            .transpose()?;
        let (issued, readable) = self.issued(cache);
        if let Some(id) = account
            && readable
            && !issued.statements().any(|statement| statement.account.id == id)
        {
            let body = json!({ "error": format!("no statement was issued to account {id:?}"), "account": id });
            return Ok(ApiResponse::json(404, &body).with_header(STATEMENTS_HEADER, store_header(readable)));
        }
        let listed: Vec<StatementSummary> = issued
            .statements()
            .filter(|statement| account.is_none_or(|id| statement.account.id == id))
            .filter(|statement| period.is_none_or(|period| statement.period == period))
            .map(StatementSummary::of)
            .collect();
        Ok(ApiResponse::json(200, &json!({ "statements": listed })).with_header(STATEMENTS_HEADER, store_header(readable)))
    }

    /// `GET /api/v1/statements/{number}?format=json|csv|pdf`; the JSON is the canonical bytes.
    pub(super) fn statement(&self, raw_number: &str, raw_query: &str, cache: &mut LedgerCache) -> Result<ApiResponse, ParamError> {
        let decoded = percent_decode(raw_number).unwrap_or_else(|| raw_number.to_owned());
        let bad_number =
            || ParamError { name: "number".into(), value: decoded.clone(), expected: "a statement number: a whole number from 1".into() };
        let digits_only = !decoded.is_empty() && decoded.bytes().all(|byte| byte.is_ascii_digit()) && !decoded.starts_with('0');
        let number = decoded.parse::<u64>().ok().filter(|number| digits_only && *number <= i64::MAX as u64).ok_or_else(bad_number)?;
        let query = Query::parse(raw_query, &["format"])?;
        let format = match query.get("format") {
            None | Some("json") => StatementFormat::Json,
            Some("csv") => StatementFormat::Csv,
            Some("pdf") => StatementFormat::Pdf,
            Some(other) => {
                return Err(ParamError { name: "format".into(), value: other.into(), expected: "json, csv or pdf".into() });
            }
        };
        let (issued, readable) = self.issued(cache);
        let Some(statement) = issued.by_number(number) else {
            let error = if readable {
                format!("no statement numbered {number} has been issued")
            } else {
                format!("statement {number} cannot be read now: the statement store is unavailable (the worker logged why)")
            };
            return Ok(
                ApiResponse::json(404, &json!({ "error": error, "number": number })).with_header(STATEMENTS_HEADER, store_header(readable))
            );
        };
        let stem = file_stem(statement);
        let response = match format {
            StatementFormat::Json => ApiResponse::new(200, render::JSON, statement.canonical_bytes()),
            StatementFormat::Csv => ApiResponse::new(200, render::CSV, statement_csv(statement))
                .with_header("Content-Disposition", format!("attachment; filename=\"{stem}.csv\"")),
            StatementFormat::Pdf => ApiResponse::new(200, render::PDF, statement_pdf(statement))
                .with_header("Content-Disposition", format!("inline; filename=\"{stem}.pdf\"")),
        };
        Ok(response.with_header(STATEMENTS_HEADER, "ok"))
    }

    /// The issued statements, from this thread's last read while it is fresh, and whether the store
    /// could be read.
    fn issued(&self, cache: &mut LedgerCache) -> (Arc<Issued>, bool) {
        if let Some((at, issued, readable)) = &cache.statements.read
            && at.elapsed() < STATEMENTS_FRESH_FOR
        {
            return (Arc::clone(issued), *readable);
        }
        let (issued, readable) = match &self.kafka {
            Some(kafka) => match crate::feed::statements::read_issued(kafka) {
                Ok((issued, skipped)) => {
                    for message in skipped {
                        tracing::warn!("api: skipping a statement message that does not parse: {message}");
                    }
                    (issued, true)
                }
                Err(error) => {
                    tracing::warn!("api: reading the statement topic: {error:#}");
                    (Issued::new(), false)
                }
            },
            None => self.issued_from_ledger(cache),
        };
        let issued = Arc::new(issued);
        cache.statements.read = Some((Instant::now(), Arc::clone(&issued), readable));
        (issued, readable)
    }

    /// Embedded mode: the ledger's statements table (a ledger not there yet has issued nothing).
    fn issued_from_ledger(&self, cache: &mut LedgerCache) -> (Issued, bool) {
        let (read, state) = self.read(cache, |ledger| Ok(Some(LedgerStatements::new(ledger).begin())));
        match (read, state) {
            (Some(Ok(issued)), _) => (issued, true),
            (Some(Err(error)), _) => {
                tracing::warn!("api: reading the statements of {}: {error:#}", self.ledger_path.display());
                (Issued::new(), false)
            }
            (None, LedgerState::Missing) => (Issued::new(), true),
            (None, _) => (Issued::new(), false),
        }
    }
}

#[cfg(test)]
mod tests;
