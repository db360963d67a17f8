//! Unit tests of the handlers against a real ledger: shapes, exact totals, refusals.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::*;
use crate::api::tests::{body, fixture, fixture_priced_by, get, window};
use crate::billing::cost_engine::tiers;
use crate::billing::rate_card::cpu_tiered_version;
use crate::billing::report;
use crate::billing::report::TimeRange;

fn decimal(value: &serde_json::Value) -> Decimal {
    Decimal::from_str(value.as_str().unwrap_or_else(|| panic!("{value} is not a string"))).unwrap()
}

#[test]
fn machines_are_the_report_rows() {
    let fixture = fixture();
    let response = get(&fixture.api, "/api/v1/machines");
    assert_eq!(response.status, 200);
    let ledger = Ledger::open_read_only(&fixture.api.ledger_path).unwrap();
    let expected = serde_json::to_value(report::machine_totals(&ledger, TimeRange::default()).unwrap()).unwrap();
    assert_eq!(body(&response)["machines"], expected);
    assert_eq!(body(&response)["machines"][0]["gaps"], 1);
    let later = get(&fixture.api, "/api/v1/machines?from=2026-01-02T00:00:00Z");
    assert_eq!(body(&later)["machines"][0]["records"], 3, "alpha's windows from midnight: seqs 4, 5, 6");
}

#[test]
fn costs_group_by_machine_day_and_hour_with_equal_totals() {
    let fixture = fixture();
    let by_machine = body(&get(&fixture.api, "/api/v1/costs"));
    assert_eq!(by_machine["group_by"], "machine");
    assert_eq!(by_machine["from"], serde_json::Value::Null);
    let groups = by_machine["groups"].as_array().unwrap();
    assert_eq!(groups.iter().map(|group| group["group"].as_str().unwrap()).collect::<Vec<_>>(), ["alpha", "beta"]);
    let total = decimal(&by_machine["totals"][0]["cost"]);
    assert_eq!(total, groups.iter().map(|group| decimal(&group["cost"])).sum::<Decimal>());
    assert_eq!(by_machine["totals"][0]["records"], 9);
    for group_by in ["day", "hour"] {
        let grouped = body(&get(&fixture.api, &format!("/api/v1/costs?group_by={group_by}")));
        assert_eq!(decimal(&grouped["totals"][0]["cost"]), total, "group_by={group_by}");
    }
    let by_day = body(&get(&fixture.api, "/api/v1/costs?group_by=day"));
    let days: Vec<_> = by_day["groups"].as_array().unwrap().iter().map(|group| group["group"].as_str().unwrap()).collect();
    assert_eq!(days, ["2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"]);
    let by_hour = body(&get(&fixture.api, "/api/v1/costs?group_by=hour&to=2026-01-02T00:00:00%2B00:00"));
    assert_eq!(by_hour["groups"].as_array().unwrap().len(), 1, "only the 23:00 hour is before midnight");
    assert_eq!(by_hour["groups"][0]["records"], 5, "alpha 1, 2 and beta 1, 2, 3");
}

#[test]
fn usage_steps_add_up_to_the_machine_total() {
    let fixture = fixture();
    let response = body(&get(&fixture.api, "/api/v1/machines/beta/usage?step=1h"));
    assert_eq!(response["step_seconds"], 3600);
    let buckets = response["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 2, "23:00 holds three windows, 00:00 one");
    assert_eq!(buckets[0]["start"], "2026-01-01T23:00:00.000Z");
    assert_eq!(buckets[0]["end"], "2026-01-02T00:00:00.000Z");
    assert_eq!(buckets[0]["records"], 3);
    // 25 % of 4 cores for an hour is one core-hour; 2 GB for an hour is 2 GB-hours.
    assert!((buckets[0]["cpu_core_hours"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    assert!((buckets[0]["memory_gb_hours"].as_f64().unwrap() - 2.0).abs() < 1e-12);
    assert_eq!(buckets[0]["net_tx_bytes"], 12_000);
    let machines = body(&get(&fixture.api, "/api/v1/machines"));
    let beta_total = decimal(&machines["machines"][1]["cost"]);
    assert_eq!(buckets.iter().map(|bucket| decimal(&bucket["cost"])).sum::<Decimal>(), beta_total);
    let aligned = body(&get(&fixture.api, "/api/v1/machines/beta/usage?step=1h&from=2026-01-01T23:30:00Z"));
    assert_eq!(aligned["buckets"][0]["start"], "2026-01-01T23:30:00.000Z", "steps align on `from`");
    // The longest step (found by Schemathesis): a step past the range's end, or past the latest
    // instant a record may carry, ends there, so every `end` is a real date-time.
    let long = body(&get(&fixture.api, "/api/v1/machines/beta/usage?step=9999999d"));
    assert_eq!(long["buckets"][0]["end"], "2200-01-01T00:00:00.000Z");
    let bounded = body(&get(&fixture.api, "/api/v1/machines/beta/usage?step=9999999d&to=2026-01-03T00:00:00Z"));
    assert_eq!(bounded["buckets"][0]["end"], "2026-01-03T00:00:00.000Z");
}

#[test]
fn machine_rows_show_time_asleep_late_and_clock_steps_and_usage_leaves_out_memory_held_asleep() {
    use crate::billing::biller::{Biller, RawMessage};
    use crate::record::{RecordKind, UsageRecord};
    let fixture = fixture();
    // gamma: 20 minutes of use, 30 s of it observed late, with a clock step; 20 minutes asleep
    // holding its 2 GB; then 20 minutes the clock skipped.
    let records = [
        UsageRecord { late_millis: 30_000, clock_steps: 1, ..window("gamma", 1) },
        window("gamma", 2).unlived(RecordKind::Asleep),
        window("gamma", 3).unlived(RecordKind::ClockStep),
    ];
    let mut biller = Biller::new(Ledger::open(&fixture.api.ledger_path).unwrap(), RateCard::built_in());
    let messages: Vec<RawMessage> = (100..)
        .zip(&records)
        .map(|(offset, record)| RawMessage { topic: "usage".into(), partition: 0, offset, payload: Some(record.to_json()) })
        .collect();
    assert_eq!(biller.bill(&messages).unwrap().outcome.billed, 3);
    let machines = body(&get(&fixture.api, "/api/v1/machines"));
    let rows = machines["machines"].as_array().unwrap();
    let figures = |row: &serde_json::Value| (row["asleep_ms"].as_u64(), row["late_ms"].as_u64(), row["clock_steps"].as_u64());
    assert_eq!(figures(&rows[2]), (Some(1_200_000), Some(30_000), Some(1)), "{}", rows[2]);
    assert_eq!(figures(&rows[0]), (Some(0), Some(0), Some(0)), "alpha");
    let csv = get(&fixture.api, "/api/v1/machines?format=csv").text().into_owned();
    assert!(csv.starts_with("machine_id,records,first_seq,last_seq,gaps,asleep_ms,late_ms,clock_steps,cost,"), "{csv}");
    assert!(csv.lines().any(|line| line.starts_with("gamma,3,1,3,0,1200000,30000,1,")), "{csv}");
    // Only the lived 20 minutes held memory as usage (2 GB for a third of an hour), and the
    // steps' cost is gamma's whole cost: the asleep and skipped windows cost nothing.
    let usage = body(&get(&fixture.api, "/api/v1/machines/gamma/usage?step=1d"));
    let bucket = &usage["buckets"][0];
    assert!((bucket["memory_gb_hours"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12, "{bucket}");
    assert_eq!(decimal(&bucket["cost"]), decimal(&rows[2]["cost"]));
    let lived = crate::billing::price::price(&records[0], RateCard::built_in().version_at(records[0].start)).unwrap();
    assert_eq!(decimal(&rows[2]["cost"]), lived.total);
}

#[test]
fn unknown_and_malformed_machines_are_told_apart() {
    let fixture = fixture();
    let unknown = get(&fixture.api, "/api/v1/machines/gamma/usage");
    assert_eq!(unknown.status, 404);
    assert_eq!(body(&unknown)["machine_id"], "gamma");
    let malformed = get(&fixture.api, "/api/v1/machines/a%20b/usage");
    assert_eq!(malformed.status, 400);
    assert_eq!((body(&malformed)["parameter"].as_str(), body(&malformed)["value"].as_str()), (Some("id"), Some("a%20b")));
}

#[test]
fn empty_and_backwards_ranges_answer_empty_tables() {
    let fixture = fixture();
    // The fixture's windows start between 2026-01-01T23:00Z and 2026-01-02T00:40Z: an empty range
    // among them, and one that spans some of them backwards; neither selects a window.
    for range in ["from=2026-01-01T23:30:00Z&to=2026-01-01T23:30:00Z", "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"] {
        let usage = get(&fixture.api, &format!("/api/v1/machines/beta/usage?{range}"));
        assert_eq!(usage.status, 200, "{range}: {}", usage.text());
        assert_eq!(body(&usage)["buckets"], serde_json::json!([]), "{range}");
        assert_eq!(body(&get(&fixture.api, &format!("/api/v1/machines?{range}")))["machines"], serde_json::json!([]), "{range}");
        let costs = body(&get(&fixture.api, &format!("/api/v1/costs?{range}")));
        assert_eq!((&costs["groups"], &costs["totals"]), (&serde_json::json!([]), &serde_json::json!([])), "{range}");
        // An unknown machine is still told apart from a known one with nothing in the range.
        assert_eq!(get(&fixture.api, &format!("/api/v1/machines/gamma/usage?{range}")).status, 404, "{range}");
    }
}

#[test]
fn gaps_and_quarantine_list_what_is_wrong() {
    let fixture = fixture();
    let gaps = body(&get(&fixture.api, "/api/v1/gaps"));
    let expected = serde_json::json!([{
        "machine_id": "alpha", "first_missing_seq": 3, "last_missing_seq": 3, "missing": 1,
        "unmetered_from": "2026-01-01T23:40:00.000Z", "unmetered_to": "2026-01-02T00:00:00.000Z"
    }]);
    assert_eq!(gaps["gaps"], expected);
    assert_eq!(body(&get(&fixture.api, "/api/v1/gaps?machine=beta"))["gaps"], serde_json::json!([]));
    let quarantine = body(&get(&fixture.api, "/api/v1/quarantine"));
    let entry = &quarantine["quarantine"][0];
    assert_eq!(
        (entry["partition"].as_i64(), entry["offset"].as_i64(), entry["raw"].as_str()),
        (Some(1), Some(7), Some("not json, \"quoted\""))
    );
    assert!(entry["reason"].as_str().unwrap().contains("not a usage record"), "{entry}");
    let next_page = body(&get(&fixture.api, &format!("/api/v1/quarantine?after_id={}", entry["id"])));
    assert_eq!(next_page["quarantine"], serde_json::json!([]));
    let csv = get(&fixture.api, "/api/v1/quarantine?format=csv");
    assert!(csv.text().lines().nth(1).unwrap().ends_with(",\"not json, \"\"quoted\"\"\""), "{}", csv.text());
}

#[test]
fn csv_tables_have_a_header_and_one_line_per_row() {
    let fixture = fixture();
    for (target, header) in [
        ("/api/v1/machines?format=csv", "machine_id,records,"),
        ("/api/v1/costs?format=csv&group_by=day", "group,currency,records,cost"),
        ("/api/v1/machines/alpha/usage?format=csv&step=1d", "start,end,records,"),
        ("/api/v1/gaps?format=csv", "machine_id,first_missing_seq,"),
    ] {
        let response = get(&fixture.api, target);
        assert_eq!((response.status, response.content_type), (200, render::CSV), "{target}");
        let text = response.text();
        assert!(text.starts_with(header), "{target}: {text}");
        assert!(text.lines().count() >= 2, "{target}: {text}");
    }
}

#[test]
fn refusals_name_what_is_wrong() {
    let fixture = fixture();
    for (target, parameter, value) in [
        ("/api/v1/costs?group_by=week", "group_by", "week"),
        ("/api/v1/costs?from=yesterday", "from", "yesterday"),
        ("/api/v1/machines?format=xml", "format", "xml"),
        ("/api/v1/machines/alpha/usage?step=0s", "step", "0s"),
        ("/api/v1/quarantine?limit=0", "limit", "0"),
        ("/api/v1/gaps?machine=a/b", "machine", "a/b"),
        ("/healthz?verbose=1", "verbose", "1"),
    ] {
        let response = get(&fixture.api, target);
        assert_eq!(response.status, 400, "{target}");
        assert_eq!((body(&response)["parameter"].as_str(), body(&response)["value"].as_str()), (Some(parameter), Some(value)), "{target}");
    }
    assert_eq!(get(&fixture.api, "/api/v1/nothing").status, 404);
    assert_eq!(get(&fixture.api, "/api/v1/machines/").status, 404);
    let post =
        fixture.api.handle(&ApiRequest { method: "POST", target: "/api/v1/machines", authorization: None }, &mut LedgerCache::default());
    assert_eq!(post.status, 405);
    assert!(post.headers.contains(&("Allow", "GET".to_owned())));
}

#[test]
fn a_token_guards_every_endpoint() {
    let mut fixture = fixture();
    fixture.api.token = Some(ApiToken::new("0123456789abcdef-token", "test").unwrap());
    let ask = |target: &str, authorization: Option<&str>| {
        fixture.api.handle(&ApiRequest { method: "GET", target, authorization }, &mut LedgerCache::default()).status
    };
    for target in ["/healthz", "/metrics", "/api/v1/machines", "/api/v1/openapi.json", "/nowhere"] {
        assert_eq!(ask(target, None), 401, "{target}");
        assert_eq!(ask(target, Some("Bearer 0123456789abcdef-tokeN")), 401, "{target}");
    }
    assert_eq!(ask("/healthz", Some("Bearer 0123456789abcdef-token")), 200);
}

#[test]
fn a_missing_ledger_gives_empty_data_not_an_error() {
    let mut fixture = fixture();
    fixture.api.ledger_path = fixture.api.ledger_path.with_file_name("absent.db");
    let machines = get(&fixture.api, "/api/v1/machines");
    assert_eq!(machines.status, 200);
    assert_eq!(body(&machines)["machines"], serde_json::json!([]));
    assert!(machines.headers.contains(&(LEDGER_HEADER, "missing".to_owned())));
    assert_eq!(get(&fixture.api, "/api/v1/machines/alpha/usage").status, 200);
    let health = get(&fixture.api, "/healthz");
    assert_eq!((health.status, body(&health)["ledger"].as_str()), (200, Some("missing")));
}

#[test]
fn graduated_tiers_adjust_machine_totals_as_the_report_does() {
    let card = RateCard::parse(&cpu_tiered_version("tiered", "2026-01-01T00:00:00Z", "1", "0.01"), "test").unwrap();
    let fixture = fixture_priced_by(card.clone());
    let ledger = Ledger::open_read_only(&fixture.api.ledger_path).unwrap();
    let mut expected = report::machine_totals(&ledger, TimeRange::default()).unwrap();
    let flat: Decimal = expected.iter().map(|total| total.cost).sum();
    let adjustments = tiers::adjustments(&ledger, &card, TimeRange::default()).unwrap();
    for total in &mut expected {
        total.cost = (total.cost + adjustments.get(&total.machine_id).copied().unwrap_or_default()).normalize();
    }
    let machines = body(&get(&fixture.api, "/api/v1/machines"));
    assert_eq!(machines["machines"], serde_json::to_value(&expected).unwrap());
    let tiered: Decimal = expected.iter().map(|total| total.cost).sum();
    assert!(tiered < flat, "past one core-hour the cheaper tier applies: {tiered} vs {flat}");
    let costs = body(&get(&fixture.api, "/api/v1/costs?group_by=machine"));
    assert_eq!(decimal(&costs["totals"][0]["cost"]), tiered);
}
