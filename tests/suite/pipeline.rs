//! The chain end to end: simulate → Kafka → worker → ledger → report.

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::util::{Broker, FAST_GROUP, report_json, run_ok, unique, usagebill};

/// The cost of one constant-profile window of `seconds`, from the built-in card's prices.
fn constant_window_cost(seconds: i64) -> Decimal {
    let hours = Decimal::from(seconds) / Decimal::from(3600);
    let core_hours = Decimal::from(4) * hours; // 50 % of 8 cores
    let memory_gb_hours = Decimal::from_str("4.294967296").unwrap() * hours; // 4 GiB
    let gigabytes = Decimal::from(seconds) / Decimal::from(1000); // 1 MB/s
    core_hours * Decimal::from_str("0.04").unwrap()
        + memory_gb_hours * Decimal::from_str("0.005").unwrap()
        + gigabytes * Decimal::from_str("0.12").unwrap() // rx 0.01 + tx 0.09 + read 0.01 + write 0.01
}

#[test]
fn ten_thousand_simulated_records_bill_exactly_once() {
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let topic = unique("usage");
    let group = unique("billing");
    run_ok(usagebill(data.path()).args(broker.args(&topic)).args([
        "simulate",
        "--machines",
        "50",
        "--records",
        "10000",
        "--window",
        "10s",
    ]));
    run_ok(usagebill(data.path()).args(broker.args(&topic)).args(["worker", "--exit-when-idle", "3s", "--group", &group]).args(FAST_GROUP));
    let machines = report_json(data.path());
    assert_eq!(machines.len(), 50);
    let records: u64 = machines.iter().map(|machine| machine["records"].as_u64().unwrap()).sum();
    assert_eq!(records, 10_000);
    let total: Decimal = machines.iter().map(|machine| Decimal::from_str(machine["cost"].as_str().unwrap()).unwrap()).sum();
    let expected = constant_window_cost(10) * Decimal::from(10_000);
    assert!((total - expected).abs() < Decimal::new(1, 18), "total {total}, expected {expected}");
    for machine in &machines {
        assert_eq!(machine["gaps"], 0);
        assert_eq!((machine["first_seq"].as_u64(), machine["last_seq"].as_u64()), (Some(1), Some(200)));
        assert_eq!(machine["currency"], "USD");
    }
}

#[test]
fn a_second_run_of_the_worker_resumes_and_bills_nothing_twice() {
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let topic = unique("usage");
    let group = unique("billing");
    let kafka = broker.args(&topic);
    let worker = |group: &str| {
        let output =
            run_ok(usagebill(data.path()).args(&kafka).args(["worker", "--exit-when-idle", "2s", "--group", group]).args(FAST_GROUP));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    run_ok(usagebill(data.path()).args(&kafka).args(["simulate", "--machines", "3", "--records", "300"]));
    assert!(worker(&group).contains("300 billed, 0 duplicates"));
    // A new group starts from the beginning in Kafka's eyes; the offsets stored in the ledger win.
    let second = worker(&unique("other-group"));
    assert!(second.contains("0 billed, 0 duplicates"), "the second worker re-read records:\n{second}");
    let records: u64 = report_json(data.path()).iter().map(|machine| machine["records"].as_u64().unwrap()).sum();
    assert_eq!(records, 300);
}

/// Reads `count` messages of `topic` from the start with Kafka's own console consumer, one
/// `headers<TAB>key<TAB>value` line each.
fn console_consume(bootstrap: &str, topic: &str, count: usize) -> Vec<String> {
    let output = crate::kafka::kafka_sh(&[
        "tool",
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--from-beginning",
        "--max-messages",
        &count.to_string(),
        "--timeout-ms",
        "20000",
        "--property",
        "print.headers=true",
        "--property",
        "print.key=true",
    ]);
    output.lines().map(str::to_owned).collect()
}

#[test]
fn a_stock_consumer_reads_records_and_feed_lines_with_their_content_types() {
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let topic = unique("usage");
    let kafka = broker.args(&topic);
    run_ok(usagebill(data.path()).args(&kafka).args(["simulate", "--machines", "3", "--records", "30"]));
    run_ok(usagebill(data.path()).args(&kafka).args(["worker", "--exit-when-idle", "2s", "--group", &unique("billing")]));

    let records = console_consume(&broker.bootstrap, &topic, 30);
    assert_eq!(records.len(), 30, "the console consumer read every record: {records:?}");
    for line in &records {
        let mut fields = line.splitn(3, '\t');
        let (headers, key, value) = (fields.next().unwrap(), fields.next().unwrap(), fields.next().unwrap_or_default());
        assert_eq!(headers, "content-type:application/cloudevents+json", "a structured-mode CloudEvent: {line}");
        let record = usagebill::record::UsageRecord::parse(value.as_bytes()).expect("the value is the record's JSON");
        assert_eq!(record.machine_id, key, "keyed by machine id");
    }
    let lines = console_consume(&broker.bootstrap, &format!("{topic}.costs"), 30);
    assert_eq!(lines.len(), 30, "the console consumer read every feed line: {lines:?}");
    for line in &lines {
        assert!(line.starts_with("content-type:application/json\t"), "a feed line says it is JSON: {line}");
        assert!(line.contains("\"schema\":\"usagebill.cost-feed.v1\""), "{line}");
    }
}

#[test]
fn a_replication_factor_larger_than_the_cluster_is_refused_by_name() {
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("config.toml"), "[kafka]\nreplication_factor = 5\n").unwrap();
    let output = usagebill(data.path())
        .args(broker.args(&unique("usage")))
        .args(["simulate", "--machines", "1", "--records", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("replication factor 5 is larger than the 1 broker(s) in the cluster")
            && stderr.contains("kafka.replication_factor"),
        "the error names the factor, the broker count and the key: {stderr}"
    );
}

#[test]
fn a_bench_scratch_dir_that_does_not_exist_is_named_before_anything_starts() {
    let data = tempfile::tempdir().unwrap();
    let missing = data.path().join("no-such-scratch");
    let output = usagebill(data.path()).args(["bench", "--quick", "--scratch"]).arg(&missing).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("--scratch {}: no such directory", missing.display())),
        "the error names the flag and the directory: {stderr}"
    );
}
