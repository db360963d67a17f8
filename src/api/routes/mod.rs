//! Routing and handlers: authorisation first, then the path, then the method, then the parameters.
//! The statements' handlers are in `statements.rs`, the summary's in `summary.rs`.
//! Every answer is a 2xx or a 4xx; a ledger that is missing or unreadable gives empty data and says
//! so in the `X-Usagebill-Ledger` header and on `/healthz`.

mod statements;
mod summary;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;

use self::statements::StatementsCache;
pub use self::statements::{STATEMENTS_FRESH_FOR, STATEMENTS_HEADER};
use self::summary::SummaryCache;
pub use self::summary::{SUMMARY_FRESH_FOR, SUMMARY_HEADER};
use super::auth::ApiToken;
use super::openapi::OPENAPI_DOCUMENT;
use super::params::{Format, ParamError, Query, percent_decode, split_target};
use super::queries;
use super::render::{self, ApiResponse, CsvRow, csv_table};
use crate::billing::cost_engine::range;
use crate::billing::ledger::{Ledger, LedgerError};
use crate::billing::rate_card::RateCard;
use crate::kafka::KafkaConfig;
use crate::worker::WorkerMetrics;

/// Header saying whether the data came from the ledger: `ok`, `missing` or `unavailable`.
pub const LEDGER_HEADER: &str = "X-Usagebill-Ledger";
/// Most quarantined messages in one page.
pub const MAX_QUARANTINE_PAGE: i64 = 10_000;

/// A request reduced to what the API reads.
#[derive(Debug, Clone, Copy)]
pub struct ApiRequest<'a> {
    /// The HTTP method, upper case.
    pub method: &'a str,
    /// Path and query, as sent.
    pub target: &'a str,
    /// The `Authorization` header, if sent.
    pub authorization: Option<&'a str>,
}

/// One thread's read-only ledger connection, opened on first use and reopened after an error.
#[derive(Default)]
pub struct LedgerCache {
    ledger: Option<Ledger>,
    statements: StatementsCache,
    summary: SummaryCache,
}

/// Whether a response's data came from the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerState {
    /// Read from the ledger.
    Ok,
    /// There is no ledger file (yet): the data is empty.
    Missing,
    /// The ledger could not be read (the worker logged why): the data is empty.
    Unavailable,
}

impl LedgerState {
    /// The header and `/healthz` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerState::Ok => "ok",
            LedgerState::Missing => "missing",
            LedgerState::Unavailable => "unavailable",
        }
    }
}

/// Everything a handler thread needs to answer.
#[derive(Debug, Clone)]
pub struct Api {
    /// The worker's ledger, opened read-only per thread.
    pub ledger_path: PathBuf,
    /// The bearer token every request must carry, if one is set.
    pub token: Option<ApiToken>,
    /// The worker's live numbers.
    pub metrics: Arc<WorkerMetrics>,
    /// The worker's rate card, for the graduated-tier adjustments `usagebill report` applies.
    pub card: RateCard,
    /// The worker's cluster, whose statement and summary topics hold the final statements and the
    /// fleet's summaries; without one (the unit tests, embedded mode) both come from the ledger.
    pub kafka: Option<KafkaConfig>,
}

enum Route<'a> {
    Machines,
    Costs,
    Summary,
    MachineUsage(&'a str),
    Gaps,
    Quarantine,
    Metrics,
    Health,
    OpenApi,
    Statements,
    Statement(&'a str),
}

fn route(path: &str) -> Option<Route<'_>> {
    Some(match path {
        "/api/v1/machines" => Route::Machines,
        "/api/v1/costs" => Route::Costs,
        "/api/v1/summary" => Route::Summary,
        "/api/v1/gaps" => Route::Gaps,
        "/api/v1/quarantine" => Route::Quarantine,
        "/api/v1/openapi.json" => Route::OpenApi,
        "/api/v1/statements" => Route::Statements,
        "/metrics" => Route::Metrics,
        "/healthz" => Route::Health,
        _ => {
            if let Some(number) = path.strip_prefix("/api/v1/statements/") {
                return (!number.is_empty() && !number.contains('/')).then_some(Route::Statement(number));
            }
            let id = path.strip_prefix("/api/v1/machines/")?.strip_suffix("/usage")?;
            if id.is_empty() || id.contains('/') {
                return None;
            }
            Route::MachineUsage(id)
        }
    })
}

impl Api {
    /// Answers one request.
    pub fn handle(&self, request: &ApiRequest<'_>, cache: &mut LedgerCache) -> ApiResponse {
        if let Some(token) = &self.token
            && !token.accepts(request.authorization)
        {
            return ApiResponse::error(401, "missing or wrong bearer token: send `Authorization: Bearer <token>`")
                .with_header("WWW-Authenticate", "Bearer realm=\"usagebill\"");
        }
        let (path, raw_query) = split_target(request.target);
        let Some(route) = route(path) else {
            return ApiResponse::json(404, &json!({ "error": "no such endpoint; see /api/v1/openapi.json", "path": path }));
        };
        if request.method != "GET" {
            return ApiResponse::json(405, &json!({ "error": "this API is read-only: use GET", "method": request.method }))
                .with_header("Allow", "GET");
        }
        let answer = match route {
            Route::Machines => self.machines(raw_query, cache),
            Route::Costs => self.costs(raw_query, cache),
            Route::Summary => self.summary(raw_query, cache),
            Route::MachineUsage(raw_id) => self.machine_usage(raw_id, raw_query, cache),
            Route::Gaps => self.gaps(raw_query, cache),
            Route::Quarantine => self.quarantine(raw_query, cache),
            Route::Metrics => {
                Query::parse(raw_query, &[]).map(|_| ApiResponse::new(200, render::PROMETHEUS, self.metrics.render_prometheus()))
            }
            Route::Health => Query::parse(raw_query, &[]).map(|_| self.health(cache)),
            Route::OpenApi => Query::parse(raw_query, &[]).map(|_| ApiResponse::new(200, render::JSON, OPENAPI_DOCUMENT)),
            Route::Statements => self.statements(raw_query, cache),
            Route::Statement(raw_number) => self.statement(raw_number, raw_query, cache),
        };
        answer.unwrap_or_else(|error| ApiResponse::bad_parameter(&error))
    }

    fn machines(&self, raw_query: &str, cache: &mut LedgerCache) -> Result<ApiResponse, ParamError> {
        let query = Query::parse(raw_query, &["from", "to", "format"])?;
        let (range, format) = (query.range()?, query.format()?);
        let (machines, state) = self.read(cache, |ledger| range::totals(ledger, &self.card, range));
        Ok(table(format, state, &machines, || json!({ "machines": machines })))
    }

    fn costs(&self, raw_query: &str, cache: &mut LedgerCache) -> Result<ApiResponse, ParamError> {
        let query = Query::parse(raw_query, &["from", "to", "group_by", "format"])?;
        let (range, group_by, format) = (query.range()?, query.group_by()?, query.format()?);
        let (groups, state) = self.read(cache, |ledger| range::groups(ledger, &self.card, range, group_by));
        Ok(table(format, state, &groups, || {
            json!({
                "group_by": group_by.as_str(),
                "from": range.from,
                "to": range.to,
                "totals": queries::cost_totals(&groups),
                "groups": groups,
            })
        }))
    }

    fn machine_usage(&self, raw_id: &str, raw_query: &str, cache: &mut LedgerCache) -> Result<ApiResponse, ParamError> {
        let bad_id = |reason: &str| ParamError { name: "id".into(), value: raw_id.into(), expected: reason.into() };
        let machine_id = percent_decode(raw_id).ok_or_else(|| bad_id("a percent-encoded UTF-8 machine id"))?;
        crate::record::validate_machine_id(&machine_id).map_err(bad_id)?;
        let query = Query::parse(raw_query, &["from", "to", "step", "format"])?;
        let (range, step_millis, format) = (query.range()?, query.step_millis()?, query.format()?);
        let (buckets, state) = self.read(cache, |ledger| {
            if !queries::machine_exists(ledger, &machine_id)? {
                return Ok(None);
            }
            queries::usage(ledger, &machine_id, range, step_millis).map(Some)
        });
        if buckets.is_none() && state == LedgerState::Ok {
            return Ok(ApiResponse::json(404, &json!({ "error": "no such machine in the ledger", "machine_id": machine_id })));
        }
        let buckets = buckets.unwrap_or_default();
        Ok(table(format, state, &buckets, || json!({ "machine_id": machine_id, "step_seconds": step_millis / 1000, "buckets": buckets })))
    }

    fn gaps(&self, raw_query: &str, cache: &mut LedgerCache) -> Result<ApiResponse, ParamError> {
        let query = Query::parse(raw_query, &["machine", "format"])?;
        let machine = query.get("machine");
        if let Some(id) = machine {
            crate::record::validate_machine_id(id).map_err(|reason| ParamError {
                name: "machine".into(),
                value: id.into(),
                expected: reason.into(),
            })?;
        }
        let format = query.format()?;
        let (gaps, state) = self.read(cache, |ledger| crate::billing::ledger::gaps(ledger, machine));
        Ok(table(format, state, &gaps, || json!({ "gaps": gaps })))
    }

    fn quarantine(&self, raw_query: &str, cache: &mut LedgerCache) -> Result<ApiResponse, ParamError> {
        let query = Query::parse(raw_query, &["after_id", "limit", "format"])?;
        let after_id = query.integer("after_id", 0, i64::MAX, 0)?;
        let limit = query.integer("limit", 1, MAX_QUARANTINE_PAGE, 1_000)?;
        let format = query.format()?;
        let (entries, state) = self.read(cache, |ledger| queries::quarantine(ledger, after_id, limit));
        Ok(table(format, state, &entries, || json!({ "quarantine": entries })))
    }

    fn health(&self, cache: &mut LedgerCache) -> ApiResponse {
        let ((), state) = self.read(cache, |_| Ok(()));
        let body = json!({
            "status": "ok",
            "ledger": state.as_str(),
            "records_billed": self.metrics.records_billed(),
        });
        ApiResponse::json(200, &body).with_header(LEDGER_HEADER, state.as_str())
    }

    /// Runs `query` on this thread's read-only connection; on any ledger trouble answers the
    /// default (empty) value, so no request turns into a 5xx.
    fn read<T: Default>(&self, cache: &mut LedgerCache, query: impl FnOnce(&Ledger) -> Result<T, LedgerError>) -> (T, LedgerState) {
        if cache.ledger.is_none() {
            match Ledger::open_read_only(&self.ledger_path) {
                Ok(ledger) => cache.ledger = Some(ledger),
                Err(LedgerError::Missing(_)) => return (T::default(), LedgerState::Missing),
                Err(error) => {
                    tracing::warn!("api: {}", crate::errors::chain(&error));
                    return (T::default(), LedgerState::Unavailable);
                }
            }
        }
        let ledger = cache.ledger.as_ref().expect("opened above");
        match query(ledger) {
            Ok(value) => (value, LedgerState::Ok),
            Err(error) => {
                tracing::warn!("api: reading {}: {}", self.ledger_path.display(), crate::errors::chain(&error));
                // A fresh connection next time, in case this one is what went wrong.
                cache.ledger = None;
                (T::default(), LedgerState::Unavailable)
            }
        }
    }
}

/// A table as CSV, or as the JSON envelope `envelope` builds, marked with the ledger state.
fn table<Row: CsvRow>(format: Format, state: LedgerState, rows: &[Row], envelope: impl FnOnce() -> serde_json::Value) -> ApiResponse {
    let response = match format {
        Format::Json => ApiResponse::json(200, &envelope()),
        Format::Csv => ApiResponse::new(200, render::CSV, csv_table(rows)),
    };
    response.with_header(LEDGER_HEADER, state.as_str())
}

#[cfg(test)]
mod tests;
