use super::*;

pub(crate) fn sample() -> UsageRecord {
    UsageRecord {
        machine_id: "build-box-01".into(),
        seq: 7,
        start: UnixMillis(1_764_068_560_000),
        end: UnixMillis(1_764_068_565_000),
        cpu_pct: 37.5,
        cpu_cores: 8,
        mem_used_bytes: 4 << 30,
        mem_total_bytes: 16 << 30,
        disk_read_bytes: 5_000_000,
        disk_write_bytes: 4_000_000,
        net_rx_bytes: 3_000,
        net_tx_bytes: 2_000,
        samples: 5,
        trigger: Trigger::Interval,
        kind: RecordKind::Usage,
        late_millis: 0,
        clock_steps: 0,
    }
}

fn with_data_field(field: &str, value: serde_json::Value) -> Vec<u8> {
    let mut json: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
    json["data"][field] = value;
    serde_json::to_vec(&json).unwrap()
}

#[test]
fn round_trips_through_json() {
    let record = sample();
    let parsed = UsageRecord::parse(&record.to_json()).unwrap();
    assert_eq!(parsed, record);
    assert_eq!(parsed.id(), "build-box-01/7");
}

#[test]
fn json_is_a_cloudevent() {
    let json: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
    assert_eq!(json["specversion"], "1.0");
    assert_eq!(json["type"], "usagebill.usage.v2");
    assert_eq!(json["source"], "build-box-01");
    assert_eq!(json["id"], "build-box-01/7");
    assert_eq!(json["time"], "2025-11-25T11:02:45.000Z");
    assert_eq!(json["data"]["start"], "2025-11-25T11:02:40.000Z");
}

/// The sample as a version-1 agent wrote it: the v1 type and no kind, late time or steps.
fn version_1(end: &str) -> Vec<u8> {
    let mut json: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
    json["type"] = "usagebill.usage.v1".into();
    let data = json["data"].as_object_mut().unwrap();
    for field in ["kind", "late_millis", "clock_steps"] {
        data.remove(field);
    }
    data.insert("end".into(), end.into());
    json["time"] = end.into();
    serde_json::to_vec(&json).unwrap()
}

#[test]
fn version_1_records_still_parse_as_usage() {
    let parsed = UsageRecord::parse(&version_1("2025-11-25T11:02:45.000Z")).unwrap();
    assert_eq!(parsed, sample());
}

#[test]
fn a_version_1_window_longer_than_an_hour_is_refused_as_possibly_spanning_a_sleep() {
    let error = UsageRecord::parse(&version_1("2025-11-25T13:02:40.000Z")).unwrap_err();
    assert_eq!(error.field(), Some("data.end"));
    assert!(error.to_string().contains("may span a sleep"), "{error}");
    // A version-2 window of the same length is the agent's own (it knows what it lived).
    let long = UsageRecord { end: UnixMillis(sample().start.0 + 2 * 3_600_000), ..sample() };
    assert_eq!(UsageRecord::parse(&long.to_json()).unwrap(), long);
}

#[test]
fn an_asleep_span_round_trips_and_may_hold_no_usage() {
    let asleep = sample().unlived(RecordKind::Asleep);
    assert_eq!(UsageRecord::parse(&asleep.to_json()).unwrap(), asleep);
    let busy_asleep = UsageRecord { cpu_pct: 5.0, ..asleep.clone() };
    assert_eq!(UsageRecord::parse(&busy_asleep.to_json()).unwrap_err().field(), Some("data.kind"));
    let reading_asleep = UsageRecord { net_rx_bytes: 1, ..asleep.clone() };
    assert_eq!(UsageRecord::parse(&reading_asleep.to_json()).unwrap_err().field(), Some("data.net_rx_bytes"));
    let late = UsageRecord { late_millis: 5_001, ..sample() };
    assert_eq!(UsageRecord::parse(&late.to_json()).unwrap_err().field(), Some("data.late_millis"));
    assert_eq!(UsageRecord::parse(&with_data_field("kind", "dozing".into())).unwrap_err().field(), Some("data.kind"));
}

#[test]
fn rejections_name_the_field_and_value() {
    let cases = [
        ("cpu_pct", serde_json::json!(101.5), "data.cpu_pct", "101.5"),
        ("cpu_cores", serde_json::json!(0), "data.cpu_cores", "0"),
        ("seq", serde_json::json!(0), "data.seq", "0"),
        ("end", serde_json::json!("2025-11-25T11:02:40.000Z"), "data.end", "2025-11-25T11:02:40.000Z"),
        ("start", serde_json::json!("noon"), "data.start", "noon"),
        ("trigger", serde_json::json!("whenever"), "data.trigger", "whenever"),
        ("mem_used_bytes", serde_json::json!(17u64 << 30), "data.mem_used_bytes", "18253611008"),
    ];
    for (key, value, field, shown) in cases {
        let error = UsageRecord::parse(&with_data_field(key, value)).unwrap_err();
        assert_eq!(error.field(), Some(field), "{error}");
        assert!(error.to_string().contains(shown), "{error} should show {shown}");
    }
}

#[test]
fn rejects_unknown_type_oversize_and_garbage() {
    let mut json: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
    json["type"] = "usagebill.usage.v9".into();
    let error = UsageRecord::parse(&serde_json::to_vec(&json).unwrap()).unwrap_err();
    assert_eq!(error.field(), Some("type"));

    let huge = vec![b' '; MAX_RECORD_BYTES + 1];
    assert_eq!(UsageRecord::parse(&huge), Err(RecordError::TooLarge { size: MAX_RECORD_BYTES + 1 }));

    let error = UsageRecord::parse(b"cpu=50").unwrap_err();
    assert!(matches!(error, RecordError::Malformed(_)));
}

#[test]
fn rejects_an_id_that_does_not_match_source_and_seq() {
    let mut json: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
    json["id"] = "build-box-01/8".into();
    let error = UsageRecord::parse(&serde_json::to_vec(&json).unwrap()).unwrap_err();
    assert_eq!(error.field(), Some("id"));
}

#[test]
fn machine_ids_are_restricted_to_safe_characters() {
    assert!(validate_machine_id("db-01.eu_west").is_ok());
    assert!(validate_machine_id("").is_err());
    assert!(validate_machine_id("a/b").is_err());
    assert!(validate_machine_id(&"x".repeat(129)).is_err());
}

/// The round trip the `record_parse` fuzz target checks failed for about one random `cpu_pct` in
/// ten (a probe found it; 60 s of fuzzing did not): serde_json's default float parser is off by one
/// unit in the last place for some 16–17 digit numbers, so a `cpu_pct` the agent wrote could be read
/// back as a different `f64`, and a record re-encoded after a parse (outbox, feed) changed. The
/// `float_roundtrip` feature of serde_json parses floats exactly.
#[test]
fn every_cpu_pct_survives_a_json_round_trip() {
    let mut record = sample();
    record.cpu_pct = 99.35724349333559;
    assert_eq!(UsageRecord::parse(&record.to_json()).unwrap(), record);
    // Thirds, sevenths and the like over the whole range: about one in ten failed before.
    for numerator in 1..20_100u32 {
        record.cpu_pct = f64::from(numerator) / 201.0;
        let parsed = UsageRecord::parse(&record.to_json()).unwrap();
        assert_eq!(parsed.cpu_pct.to_bits(), record.cpu_pct.to_bits(), "{}", record.cpu_pct);
    }
}
