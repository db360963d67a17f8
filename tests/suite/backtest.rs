//! `usagebill forecast --backtest` on a real ledger file: two whole months of three office
//! machines replayed day by day, in each output form, and a ledger too short to replay refused
//! with the reason.

use crate::util::{HOUR, bill_office_hours, run_ok, usagebill};
use usagebill::record::UnixMillis;

/// 2026-01-01T00:00:00Z.
const NEW_YEAR: UnixMillis = UnixMillis(1_767_225_600_000);

#[test]
fn the_backtest_replays_each_whole_month_and_scores_the_forecast_beside_the_lines() {
    let data = tempfile::tempdir().unwrap();
    let ledger = data.path().join("ledger.db");
    // January and February whole, and five days of March (not a whole month: not replayed).
    for machine in ["office-1", "office-2", "office-3"] {
        bill_office_hours(&ledger, machine, NEW_YEAR, (31 + 28 + 5) * 24);
    }
    let ledger_arg = ledger.to_str().unwrap();
    let output = run_ok(usagebill(data.path()).args(["forecast", "--backtest", "--ledger", ledger_arg, "--format", "json"]));
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["machines"], 3);
    assert_eq!(result["periods"], serde_json::json!(["2026-01", "2026-02"]));
    let days = result["days"].as_array().unwrap();
    assert_eq!(days.len(), 30, "a forecast at the end of each day of January but the last");
    let day = |number: usize| &days[number - 1];
    // Day 10 of both months: every machine has a week of its own, so its own weekly pattern.
    assert_eq!((day(10)["forecasts"].as_u64(), day(10)["own_pattern"].as_u64()), (Some(6), Some(6)));
    assert_eq!(day(30)["forecasts"], 3, "February has no day 30");
    let figure = |number: usize, key: &str| day(number)[key].as_f64().unwrap_or_else(|| panic!("day {number} {key}: {:?}", day(number)));
    assert!(figure(10, "seasonal_mape") < figure(10, "burn_line_mape") / 2.0, "{:?}", day(10));
    for number in 1..=30 {
        assert!((0.0..=1.0).contains(&figure(number, "band_coverage")), "{:?}", day(number));
    }

    let table = run_ok(usagebill(data.path()).args(["forecast", "--backtest", "--ledger", ledger_arg]));
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.contains("3 machine(s) over 2026-01, 2026-02"), "{table}");
    let rows: Vec<&str> =
        table.lines().filter(|line| line.split_whitespace().next().is_some_and(|first| first.parse::<u32>().is_ok())).collect();
    assert_eq!(rows.iter().map(|row| row.split_whitespace().next().unwrap()).collect::<Vec<_>>(), ["3", "10", "20"], "{table}");
    assert!(table.contains("band coverage over every day"), "{table}");

    let csv = run_ok(usagebill(data.path()).args(["forecast", "--backtest", "--ledger", ledger_arg, "--format", "csv"]));
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(csv.starts_with("day,forecasts,not_enough_history,own_pattern,seasonal_mape"), "{csv}");
    assert_eq!(csv.lines().count(), 31, "a header and a row per day");
}

#[test]
fn a_ledger_without_a_whole_month_is_refused_saying_what_it_holds() {
    let data = tempfile::tempdir().unwrap();
    let ledger = data.path().join("ledger.db");
    bill_office_hours(&ledger, "office-1", NEW_YEAR.plus_millis(3 * 24 * HOUR), 72);
    let output = usagebill(data.path()).args(["forecast", "--backtest", "--ledger", ledger.to_str().unwrap()]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("72 h billed") && stderr.contains("no calendar month ended"), "{stderr}");
    let missing = data.path().join("none.db");
    let output = usagebill(data.path()).args(["forecast", "--backtest", "--ledger", missing.to_str().unwrap()]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("no ledger at") && stderr.contains("none.db"), "{stderr}");
    assert!(!missing.exists(), "a missing ledger is not created");
}
