//! A worker that takes over a partition starts where the group's committed offset says the last
//! owner stopped, on Apache Kafka: after a clean stop nothing is billed twice, and a rebalance bills
//! again at most a batch for each partition that changed owner.

use std::process::{Child, Stdio};
use std::time::Duration;

use rust_decimal::Decimal;

use crate::billing::{constant_cost, ledger_records, simulate, totals, wait_success, worker};
use crate::util::{Broker, report_json, run_ok, unique, usagebill};

/// The cost feed's totals, read by a fresh view.
fn feed_totals(broker: &Broker, topic: &str) -> (u64, Decimal) {
    let view = tempfile::tempdir().unwrap();
    let output = run_ok(usagebill(view.path()).args(broker.args(topic)).args(["report", "--from-feed", "--format", "json"]));
    totals(&serde_json::from_slice::<Vec<serde_json::Value>>(&output.stdout).expect("report --from-feed prints JSON"))
}

#[test]
fn a_second_worker_in_the_group_starts_where_the_first_stopped_cleanly() {
    const RECORDS: u64 = 60_000;
    let broker = Broker::start();
    let topic = unique("usage");
    let group = unique("billing");
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    simulate(first.path(), &broker, &topic, &["--machines", "100", "--records", &RECORDS.to_string(), "--window", "10s"]);
    run_ok(&mut worker(first.path(), &broker, &topic, &group, "3s"));
    assert_eq!(totals(&report_json(first.path())).0, RECORDS, "the first worker billed the fleet");
    // A new member of the group, with a ledger of its own that has never seen these partitions.
    run_ok(&mut worker(second.path(), &broker, &topic, &group, "3s"));
    let rebilled = ledger_records(&second.path().join("ledger.db"));
    eprintln!("the second worker billed {rebilled} of the {RECORDS} records again");
    assert_eq!(rebilled, 0, "the group's committed offsets say everything was billed and published");
    let expected = constant_cost(Decimal::from(10)) * Decimal::from(RECORDS);
    assert_eq!(feed_totals(&broker, &topic), (RECORDS, expected), "the feed holds every record once, exactly");
}

#[test]
fn an_eager_rebalance_bills_again_at_most_a_batch_per_moved_partition() {
    rebalance_rebills("range");
}

#[test]
fn a_cooperative_rebalance_bills_again_at_most_a_batch_per_moved_partition() {
    rebalance_rebills("cooperative-sticky");
}

/// One worker bills a live stream; a second joins it, takes half the partitions, and both finish.
fn rebalance_rebills(assignor: &str) {
    const RECORDS: i64 = 30_000;
    const BATCH: i64 = 1_000;
    // The usage topic's partitions (the default); with two workers half of them move.
    const MOVED: i64 = 3;
    let broker = Broker::start();
    let topic = unique("usage");
    let group = unique("billing");
    let producer_dir = tempfile::tempdir().unwrap();
    let mut producer = usagebill(producer_dir.path())
        .args(broker.args(&topic))
        .args(["simulate", "--machines", "60", "--records", &RECORDS.to_string(), "--window", "10s", "--rate", "3000"])
        .spawn()
        .unwrap();
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let strategy = format!("partition.assignment.strategy={assignor}");
    let start = |index: usize| -> Child {
        worker(dirs[index].path(), &broker, &topic, &group, "8s")
            .args(["--kafka-property", &strategy, "--batch-size", &BATCH.to_string()])
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let first = start(0);
    std::thread::sleep(Duration::from_secs(4));
    let second = start(1);
    assert!(producer.wait().unwrap().success(), "simulate failed");
    wait_success(first, Duration::from_secs(120), None);
    wait_success(second, Duration::from_secs(120), None);
    let per_ledger: Vec<i64> = dirs.iter().map(|dir| ledger_records(&dir.path().join("ledger.db"))).collect();
    let rebilled = per_ledger.iter().sum::<i64>() - RECORDS;
    eprintln!("{assignor}: records per worker ledger {per_ledger:?}: {rebilled} billed twice (a batch is {BATCH})");
    assert!(per_ledger[1] > 0, "the second worker took partitions");
    assert!(rebilled >= 0, "every record billed: {per_ledger:?}");
    assert!(
        rebilled <= BATCH * MOVED,
        "{rebilled} records billed twice, more than a batch of {BATCH} for each of {MOVED} moved partitions"
    );
    let expected = constant_cost(Decimal::from(10)) * Decimal::from(RECORDS);
    assert_eq!(feed_totals(&broker, &topic), (RECORDS as u64, expected), "the feed holds every record once, exactly");
}

#[test]
fn a_worker_kept_out_of_the_summary_election_publishes_the_feed_and_no_summaries() {
    const RECORDS: u64 = 2_000;
    let broker = Broker::start();
    let topic = unique("usage");
    let data = tempfile::tempdir().unwrap();
    simulate(data.path(), &broker, &topic, &["--machines", "20", "--records", &RECORDS.to_string(), "--window", "10s"]);
    let output = run_ok(worker(data.path(), &broker, &topic, &unique("billing"), "3s").arg("--no-summary"));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("worker stopped: 2000 billed"), "the worker logs at info: {log}");
    assert!(!log.contains("summary publisher"), "a worker out of the election runs no summary publisher: {log}");
    assert!(!data.path().join("ledger.db.feed-view.db").exists(), "nor a view of the feed");
    let expected = constant_cost(Decimal::from(10)) * Decimal::from(RECORDS);
    assert_eq!(feed_totals(&broker, &topic), (RECORDS, expected), "it still publishes every line to the cost feed");
}
