//! Property tests: the record parser and the rate card never panic, and every rejection says why.

use proptest::prelude::*;
use usagebill::billing::rate_card::RateCard;
use usagebill::record::{RecordError, RecordKind, Trigger, UnixMillis, UsageRecord};

fn valid_record() -> impl Strategy<Value = UsageRecord> {
    (1u64..1_000_000, 0i64..1_000_000_000, 1i64..86_400_000, 0u32..=100_000, 1u32..512, 1u64..1 << 40, 0u64..1 << 40, 0u32..100_000)
        .prop_map(|(seq, offset, window, cpu_thousandths, cores, total, counter, samples)| {
            let start = UnixMillis(1_700_000_000_000 + offset);
            UsageRecord {
                machine_id: format!("m-{}", seq % 97),
                seq,
                start,
                end: start.plus_millis(window),
                cpu_pct: f64::from(cpu_thousandths) / 1000.0,
                cpu_cores: cores,
                mem_used_bytes: total / 2,
                mem_total_bytes: total,
                disk_read_bytes: counter,
                disk_write_bytes: counter / 3,
                net_rx_bytes: counter / 5,
                net_tx_bytes: counter / 7,
                samples,
                trigger: Trigger::Interval,
                kind: RecordKind::Usage,
                late_millis: 0,
                clock_steps: 0,
            }
        })
}

const DATA_FIELDS: [&str; 13] = [
    "seq",
    "start",
    "end",
    "cpu_pct",
    "cpu_cores",
    "mem_used_bytes",
    "mem_total_bytes",
    "disk_read_bytes",
    "disk_write_bytes",
    "net_rx_bytes",
    "net_tx_bytes",
    "samples",
    "trigger",
];

fn any_json_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|value| serde_json::Number::from_f64(value).map_or(serde_json::Value::Null, serde_json::Value::Number)),
        ".{0,40}".prop_map(serde_json::Value::from),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_records_round_trip(record in valid_record()) {
        prop_assert_eq!(UsageRecord::parse(&record.to_json()).unwrap(), record);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = UsageRecord::parse(&bytes);
    }

    #[test]
    fn a_mutated_field_is_accepted_or_rejected_by_name(record in valid_record(), field in 0..DATA_FIELDS.len(), value in any_json_value()) {
        let mut json: serde_json::Value = serde_json::from_slice(&record.to_json()).unwrap();
        json["data"][DATA_FIELDS[field]] = value;
        match UsageRecord::parse(&serde_json::to_vec(&json).unwrap()) {
            Ok(parsed) => prop_assert!(parsed.validate().is_ok()),
            Err(RecordError::Invalid { field: named, value, .. }) => {
                prop_assert!(!named.is_empty());
                prop_assert!(!value.is_empty() || named == "data.trigger" || named == "data.start" || named == "data.end");
            }
            Err(RecordError::Malformed(message)) => prop_assert!(message.contains(DATA_FIELDS[field]) || message.contains("invalid") || message.contains("expected"), "{}", message),
            Err(RecordError::TooLarge { .. }) => {}
        }
    }

    #[test]
    fn arbitrary_rate_card_text_never_panics(text in "(\\[\\[version\\]\\]\n)?([a-z_]{1,16} = (\"[-0-9.a-zA-Z:]{0,24}\"|[0-9]{1,4})\n){0,12}") {
        if let Err(error) = RateCard::parse(&text, "prop.toml") {
            prop_assert!(error.to_string().contains("prop.toml"));
        }
    }
}
