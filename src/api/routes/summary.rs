//! `/api/v1/summary`: one row per machine for a period, with the forecast of its end and the
//! band, the same rows the Costs tab and `report --from-summary` show. With a cluster they come
//! from the summary topic, because a worker's own ledger holds only its partitions; without one
//! the cost engine computes them from the ledger. Either way the figures come from the one engine.
//!
//! A read answers requests for [`SUMMARY_FRESH_FOR`]: the summaries move with every batch, but a
//! whole read is as slow as a consumer start. A source that cannot be read gives empty data (said
//! in the [`SUMMARY_HEADER`] header), never a 5xx.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Api, LedgerCache, LedgerState};
use crate::api::params::{Format, ParamError, Query};
use crate::api::render::{self, ApiResponse, csv_table};
use crate::billing::cost_engine::CostEngine;
use crate::billing::cost_engine::calendar::month_of;
use crate::feed::summary::{SummaryBook, rows};
use crate::record::UnixMillis;

/// How long one read of the summaries answers requests.
pub const SUMMARY_FRESH_FOR: Duration = Duration::from_secs(5);
/// Header saying whether the summaries could be read: `ok` or `unavailable`.
pub const SUMMARY_HEADER: &str = "X-Usagebill-Summary";

/// One thread's last read of the summaries.
#[derive(Default)]
pub struct SummaryCache {
    read: Option<(Instant, Arc<SummaryBook>, bool)>,
}

impl Api {
    /// `GET /api/v1/summary?period=YYYY-MM-DD&format=json|csv`.
    pub(super) fn summary(&self, raw_query: &str, cache: &mut LedgerCache) -> Result<ApiResponse, ParamError> {
        let query = Query::parse(raw_query, &["period", "format"])?;
        let now = UnixMillis::now();
        let period_start = match query.get("period") {
            None => month_of(now).0,
            Some(text) => {
                let expected = "the period's first day, YYYY-MM-DD (2026-11-01)";
                // A month that has not begun is not an error: like an empty range, it has no rows.
                UnixMillis::parse_rfc3339(&format!("{text}T00:00:00Z"))
                    .filter(|start| month_of(*start).0 == *start)
                    .ok_or_else(|| ParamError::new("period", text, expected))?
            }
        };
        let format = query.format()?;
        let (book, readable) = self.summaries(cache, now);
        let rows = rows(&book, period_start, now);
        let response = match format {
            Format::Json => ApiResponse::json(200, &json!({ "period_start": period_start, "as_of": now, "machines": rows })),
            Format::Csv => ApiResponse::new(200, render::CSV, csv_table(&rows)),
        };
        Ok(response.with_header(SUMMARY_HEADER, if readable { "ok" } else { "unavailable" }))
    }

    /// The summaries, from this thread's last read while it is fresh, and whether they could be read.
    fn summaries(&self, cache: &mut LedgerCache, now: UnixMillis) -> (Arc<SummaryBook>, bool) {
        if let Some((at, book, readable)) = &cache.summary.read
            && at.elapsed() < SUMMARY_FRESH_FOR
        {
            return (Arc::clone(book), *readable);
        }
        let (book, readable) = match &self.kafka {
            Some(kafka) => match crate::feed::summary::read_until_caught_up(kafka, Some(&self.card)) {
                Ok(book) => (book, true),
                Err(error) => {
                    tracing::warn!("api: reading the summary topic: {}", crate::errors::chain(&error));
                    (SummaryBook::new(), false)
                }
            },
            None => self.summaries_from_ledger(cache, now),
        };
        let book = Arc::new(book);
        cache.summary.read = Some((Instant::now(), Arc::clone(&book), readable));
        (book, readable)
    }

    /// Without a cluster: the cost engine over the whole ledger (a ledger not there yet has
    /// billed nothing).
    fn summaries_from_ledger(&self, cache: &mut LedgerCache, now: UnixMillis) -> (SummaryBook, bool) {
        let (summaries, state) = self.read(cache, |ledger| {
            let mut engine = CostEngine::load(ledger, self.card.clone(), now)?;
            let machines = engine.machines();
            engine.summaries(ledger, &machines, now)
        });
        let mut book = SummaryBook::new();
        for summary in summaries {
            book.take(summary);
        }
        (book, matches!(state, LedgerState::Ok | LedgerState::Missing))
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use rust_decimal::Decimal;

    use super::*;
    use crate::api::tests::{body, fixture, get, window};
    use crate::billing::biller::{Biller, RawMessage};
    use crate::billing::ledger::Ledger;
    use crate::billing::rate_card::RateCard;
    use crate::feed::summary::SummaryRow;

    const HOUR: i64 = 3_600_000;

    fn decimal(value: &serde_json::Value) -> Decimal {
        Decimal::from_str(value.as_str().unwrap_or_else(|| panic!("{value} is not a string"))).unwrap()
    }

    #[test]
    fn a_closed_period_lists_each_machines_final_cost_as_the_report_does() {
        let fixture = fixture();
        let january = body(&get(&fixture.api, "/api/v1/summary?period=2026-01-01"));
        assert_eq!(january["period_start"], "2026-01-01T00:00:00.000Z");
        let machines = body(&get(&fixture.api, "/api/v1/machines"));
        for (row, report) in january["machines"].as_array().unwrap().iter().zip(machines["machines"].as_array().unwrap()) {
            assert_eq!(row["machine_id"], report["machine_id"]);
            assert_eq!(decimal(&row["period"]), decimal(&report["cost"]), "{row}");
            assert_eq!(decimal(&row["projected"]), decimal(&row["period"]), "a closed period's forecast is its cost");
            assert_eq!(row["forecast"], "final");
        }
        assert_eq!(january["machines"].as_array().unwrap().len(), 2);
        let csv = get(&fixture.api, "/api/v1/summary?period=2026-01-01&format=csv").text().into_owned();
        assert!(csv.starts_with("machine_id,today,period,projected,projected_low,projected_high,forecast,"), "{csv}");
        assert_eq!(csv.lines().count(), 3, "{csv}");
    }

    /// A machine's hourly windows ending at the hour before `now`, `hours` of them.
    fn hourly(machine: &str, hours: u64, now: UnixMillis) -> Vec<RawMessage> {
        let last_hour = UnixMillis(now.0 - now.0.rem_euclid(HOUR));
        (1..=hours)
            .map(|seq| {
                let start = last_hour.plus_millis(-((hours - seq + 1) as i64) * HOUR);
                let record = crate::record::UsageRecord { start, end: start.plus_millis(HOUR), ..window(machine, seq) };
                RawMessage { topic: "usage".into(), partition: 0, offset: seq as i64, payload: Some(record.to_json()) }
            })
            .collect()
    }

    #[test]
    fn the_current_period_carries_the_engines_forecast_or_says_there_is_too_little_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let now = UnixMillis::now();
        let card = RateCard::built_in();
        let mut biller = Biller::new(Ledger::open(&path).unwrap(), card.clone());
        biller.bill(&hourly("steady", 9 * 24, now)).unwrap();
        biller.bill(&hourly("newcomer", 3, now)).unwrap();
        let api = Api { ledger_path: path.clone(), token: None, metrics: Default::default(), card: card.clone(), kafka: None };
        let response = get(&api, "/api/v1/summary");
        assert!(response.headers.contains(&(SUMMARY_HEADER, "ok".to_owned())));
        let served = body(&response);
        assert_eq!(served["period_start"], serde_json::to_value(month_of(now).0).unwrap());

        // What the engine says of the same ledger, as the Costs tab's table has it.
        let ledger = Ledger::open_read_only(&path).unwrap();
        let mut engine = CostEngine::load(&ledger, card, now).unwrap();
        let expected: Vec<SummaryRow> = engine
            .summaries(&ledger, &engine.machines(), now)
            .unwrap()
            .iter()
            .filter_map(|summary| SummaryRow::of(summary, month_of(now).0, now))
            .collect();
        let steady = served["machines"].as_array().unwrap().iter().find(|row| row["machine_id"] == "steady").unwrap();
        let engine_steady = expected.iter().find(|row| row.machine_id == "steady").unwrap();
        let (low, projected, high) = (decimal(&steady["projected_low"]), decimal(&steady["projected"]), decimal(&steady["projected_high"]));
        // The API projects from the moment it answers, a few milliseconds after `now`: the amounts
        // may move in their sixth place, no more.
        let close = |served: Decimal, engine: Option<Decimal>| engine.is_some_and(|engine| (served - engine).abs() <= Decimal::new(1, 4));
        assert!(close(projected, engine_steady.projected), "{projected} against {:?}", engine_steady.projected);
        assert!(close(low, engine_steady.projected_low) && close(high, engine_steady.projected_high), "{steady}, {engine_steady:?}");
        assert!(low <= projected && projected <= high && low >= decimal(&steady["period"]), "{steady}");
        let newcomer = served["machines"].as_array().unwrap().iter().find(|row| row["machine_id"] == "newcomer");
        if let Some(newcomer) = newcomer {
            // Absent only when its three hours fell in the last period (run in a month's first hours).
            assert_eq!(newcomer["projected"], serde_json::Value::Null);
            assert_eq!(newcomer["forecast"], "not enough history to project (3 h so far)");
        }
    }

    #[test]
    fn a_period_is_named_by_its_first_day() {
        let fixture = fixture();
        for (bad, says) in [("2026-01-15", "first day"), ("2026-13-01", "first day"), ("soon", "first day")] {
            let response = get(&fixture.api, &format!("/api/v1/summary?period={bad}"));
            assert_eq!(response.status, 400, "{bad}");
            let text = response.text();
            assert!(text.contains(bad) && text.contains(says), "{bad}: {text}");
        }
        for edge in ["0000-01-01", "9999-12-01"] {
            assert_eq!(get(&fixture.api, &format!("/api/v1/summary?period={edge}")).status, 200, "{edge}");
        }
        let future = get(&fixture.api, "/api/v1/summary?period=2999-01-01");
        assert_eq!(future.status, 200, "a month not begun has no rows, as an empty range has none");
        assert_eq!(body(&future)["machines"], serde_json::json!([]));
    }
}
