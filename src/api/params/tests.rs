//! Unit tests of query parsing: every refusal names the parameter and the value.

use super::*;

fn query(raw: &str) -> Result<Query, ParamError> {
    Query::parse(raw, &["from", "to", "format", "group_by", "step", "limit"])
}

#[test]
fn decodes_percent_escapes_and_keeps_plus_signs() {
    let parsed = query("from=2026-01-01T01%3A00%3A00%2B01:00&to=2026-01-01T02:00:00+01:00").unwrap();
    assert_eq!(parsed.get("from"), Some("2026-01-01T01:00:00+01:00"));
    let range = parsed.range().unwrap();
    assert_eq!(range.from, UnixMillis::parse_rfc3339("2026-01-01T00:00:00Z"));
    assert_eq!(range.to, UnixMillis::parse_rfc3339("2026-01-01T01:00:00Z"));
    assert_eq!(percent_decode("caf%C3%A9"), Some("café".to_owned()));
    assert_eq!(percent_decode("%zz"), None);
    assert_eq!(percent_decode("%4"), None);
    assert_eq!(percent_decode("%FF"), None, "not UTF-8");
}

#[test]
fn unknown_repeated_and_badly_encoded_parameters_are_named() {
    let unknown = query("group-by=day").unwrap_err();
    assert_eq!((unknown.name.as_str(), unknown.value.as_str()), ("group-by", "day"));
    assert!(unknown.expected.contains("group_by"), "{unknown}");
    let repeated = query("format=csv&format=json").unwrap_err();
    assert_eq!((repeated.name.as_str(), repeated.value.as_str()), ("format", "json"));
    let broken = query("from=%E2%28").unwrap_err();
    assert_eq!((broken.name.as_str(), broken.value.as_str()), ("from", "%E2%28"));
    let none_taken = Query::parse("x=1", &[]).unwrap_err();
    assert!(none_taken.expected.contains("no parameters"), "{none_taken}");
}

#[test]
fn typed_values_are_checked() {
    let bad_time = query("from=yesterday").unwrap().range().unwrap_err();
    assert_eq!((bad_time.name.as_str(), bad_time.value.as_str()), ("from", "yesterday"));
    let empty_time = query("to=").unwrap().range().unwrap_err();
    assert_eq!((empty_time.name.as_str(), empty_time.value.as_str()), ("to", ""));
    // An empty or backwards range is a range all the same: it selects no window.
    for raw in ["from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z"] {
        let (from, to) = query(raw).unwrap().range().unwrap().bounds();
        assert!(to <= from, "{raw}");
    }
    assert_eq!(query("").unwrap().group_by().unwrap(), GroupBy::Machine);
    assert_eq!(query("group_by=hour").unwrap().group_by().unwrap(), GroupBy::Hour);
    assert_eq!(query("group_by=week").unwrap().group_by().unwrap_err().value, "week");
    assert_eq!(query("format=csv").unwrap().format().unwrap(), Format::Csv);
    assert_eq!(query("format=xml").unwrap().format().unwrap_err().name, "format");
}

#[test]
fn steps_and_limits_have_bounds() {
    assert_eq!(query("").unwrap().step_millis().unwrap(), 3_600_000);
    assert_eq!(query("step=15m").unwrap().step_millis().unwrap(), 900_000);
    assert_eq!(query("step=9999999d").unwrap().step_millis().unwrap(), 9_999_999 * 86_400_000);
    for bad in ["500ms", "1000ms", "0s", "01h", "10000000d", "fortnight", "99999999999999999999d", "1 h", "h", "1w"] {
        let error = query(&format!("step={bad}")).unwrap().step_millis().unwrap_err();
        assert_eq!((error.name.as_str(), error.value.as_str()), ("step", bad));
    }
    assert_eq!(query("").unwrap().integer("limit", 1, 10, 5).unwrap(), 5);
    assert_eq!(query("limit=10").unwrap().integer("limit", 1, 10, 5).unwrap(), 10);
    for bad in ["0", "11", "-1", "1.5", "ten"] {
        assert_eq!(query(&format!("limit={bad}")).unwrap().integer("limit", 1, 10, 5).unwrap_err().value, bad);
    }
}

#[test]
fn targets_split_into_path_and_query() {
    assert_eq!(split_target("/api/v1/costs?group_by=day"), ("/api/v1/costs", "group_by=day"));
    assert_eq!(split_target("/healthz"), ("/healthz", ""));
    assert_eq!(split_target("/healthz?#frag"), ("/healthz", ""));
}
