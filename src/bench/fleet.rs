//! Measurements through the broker: worker throughput and end-to-end latency.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::{BenchBroker, BenchOptions, Figure, thousands};
use crate::billing::biller::Biller;
use crate::billing::ledger::Ledger;
use crate::billing::rate_card::RateCard;
use crate::billing::worker::{self, WorkerOptions};
use crate::kafka::KafkaConfig;
use crate::kafka::ensure_topic;
use crate::record::UnixMillis;
use crate::simulate::{self, Fleet, Profile, Variations};

pub(super) fn kafka(broker: &BenchBroker, name: &str) -> KafkaConfig {
    let mut kafka = KafkaConfig { brokers: vec![broker.bootstrap.clone()], ..KafkaConfig::default() };
    let suffix = format!("{}-{}", std::process::id(), UnixMillis::now().0);
    kafka.topic = format!("bench-{name}-{suffix}");
    kafka.group_id = format!("bench-{name}-{suffix}");
    kafka
}

fn worker_options() -> WorkerOptions {
    WorkerOptions {
        batch_size: 10_000,
        batch_linger: Duration::from_millis(5),
        exit_when_idle: Some(Duration::from_secs(2)),
        metrics: None,
    }
}

/// Records/s from Kafka into the committed ledger, measured between the first and last commit.
pub fn worker_throughput(options: &BenchOptions, broker: &BenchBroker) -> anyhow::Result<Vec<Figure>> {
    let kafka = kafka(broker, "throughput");
    let fleet = Fleet {
        machines: 1_000,
        records: options.worker_records,
        window: Duration::from_secs(10),
        profile: Profile::Random,
        seed: 3,
        start: UnixMillis(1_767_225_600_000),
    };
    let began = Instant::now();
    simulate::produce(&kafka, &fleet, 0)?;
    let produce_rate = fleet.records as f64 / began.elapsed().as_secs_f64();
    let scratch = tempfile::tempdir_in(&options.scratch)?;
    let path = scratch.path().join("ledger.db");
    let biller = Biller::new(Ledger::open(&path)?, RateCard::built_in());
    worker::run(&kafka, biller, &worker_options(), &AtomicBool::new(false))?;
    let ledger = Ledger::open_read_only(&path)?;
    let (count, first, last, in_last): (i64, i64, i64, i64) = ledger.connection().query_row(
        "SELECT count(*), min(billed_ms), max(billed_ms), (SELECT count(*) FROM records WHERE billed_ms = (SELECT max(billed_ms) FROM records)) FROM records",
        [],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
    )?;
    anyhow::ensure!(count as u64 == fleet.records, "the worker billed {count} of {} records", fleet.records);
    // Commits between the first and the last batch's start cover every record but the last batch's.
    let rate = (count - in_last) as f64 * 1000.0 / (last - first).max(1) as f64;
    Ok(vec![
        Figure::new(
            "simulate → Kafka (idempotent producer, lz4)",
            format!("{} records/s", thousands(produce_rate)),
            "",
            None,
            String::new(),
        ),
        Figure::new(
            "worker: Kafka → committed ledger",
            format!("{} records/s", thousands(rate)),
            "≥ 200,000 records/s",
            Some(rate >= 200_000.0),
            "~450 records/s (prototype, measured by the issue)".into(),
        ),
    ])
}

/// From a record's `end` to its line in the ledger, for a fleet each sending one record a second.
pub fn latency(options: &BenchOptions, broker: &BenchBroker) -> anyhow::Result<Vec<Figure>> {
    let kafka = kafka(broker, "latency");
    ensure_topic(&kafka, &kafka.topic)?;
    let scratch = tempfile::tempdir_in(&options.scratch)?;
    let path = scratch.path().join("ledger.db");
    let biller = Biller::new(Ledger::open(&path)?, RateCard::built_in());
    let worker_kafka = kafka.clone();
    let worker = std::thread::spawn(move || {
        // Idle counts from the assignment: it must outlast the wait below and the first window.
        let options = WorkerOptions { exit_when_idle: Some(Duration::from_secs(6)), ..worker_options() };
        worker::run(&worker_kafka, biller, &options, &AtomicBool::new(false))
    });
    // Let the worker join its group before the clock starts (about a second on Apache Kafka).
    std::thread::sleep(Duration::from_secs(3));
    let machines = options.latency_machines.max(1);
    let records = u64::from(machines) * u64::from(options.latency_seconds);
    let fleet = Fleet { machines, records, window: Duration::from_secs(1), profile: Profile::Constant, seed: 0, start: UnixMillis::now() };
    simulate::produce_with(&kafka, &fleet, 0, Variations { live: true, ..Variations::default() })?;
    worker.join().map_err(|_| anyhow::anyhow!("the worker thread panicked"))??;
    let ledger = Ledger::open_read_only(&path)?;
    let mut statement = ledger.connection().prepare("SELECT billed_ms - end_ms FROM records")?;
    let mut latencies: Vec<i64> = statement.query_map([], |row| row.get(0))?.collect::<Result<_, _>>()?;
    anyhow::ensure!(latencies.len() as u64 == records, "billed {} of {records} records", latencies.len());
    latencies.sort_unstable();
    let at = |fraction: f64| latencies[((latencies.len() - 1) as f64 * fraction).round() as usize];
    let (p50, p99, max) = (at(0.50), at(0.99), at(1.0));
    let label = format!("end-to-end latency, {} machines × 1 record/s", thousands(f64::from(machines)));
    Ok(vec![
        Figure::new(&format!("{label}: p50"), format!("{p50} ms"), "≤ 20 ms", Some(p50 <= 20), "~1,500 ms (prototype's claim)".into()),
        Figure::new(&format!("{label}: p99"), format!("{p99} ms"), "≤ 100 ms", Some(p99 <= 100), String::new()),
        Figure::new(&format!("{label}: max (bounds the consumer lag)"), format!("{max} ms"), "", None, String::new()),
    ])
}
