//! Measurements through the broker: worker throughput and end-to-end latency.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{BenchBroker, BenchOptions, Figure, thousands};
use crate::billing::biller::Biller;
use crate::billing::ledger::Ledger;
use crate::billing::rate_card::RateCard;
use crate::kafka::KafkaConfig;
use crate::kafka::ensure_topic;
use crate::record::UnixMillis;
use crate::simulate::{self, Fleet, Profile, Variations};
use crate::worker::{self, WorkerOptions};

pub(super) fn kafka(broker: &BenchBroker, name: &str) -> KafkaConfig {
    let mut kafka = KafkaConfig { brokers: vec![broker.bootstrap.clone()], ..KafkaConfig::default() };
    let suffix = format!("{}-{}", std::process::id(), UnixMillis::now().0);
    kafka.topic = format!("bench-{name}-{suffix}");
    kafka.group_id = format!("bench-{name}-{suffix}");
    // Each run its own cost feed (and with it its own summary topic): with the default one, the
    // fleet run's summaries counted the latency run's machines too.
    kafka.cost_topic = format!("{}.costs", kafka.topic);
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
        machine_prefix: crate::simulate::DEFAULT_MACHINE_PREFIX.into(),
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
    let finished = AtomicBool::new(false);
    // CPU from the worker's start to its stop: this process (the worker's threads, and the watcher
    // below at a poll each 5 ms) and the broker, when the bench runs it.
    let (own_before, broker_before) = (super::broker::own_cpu(), broker.cpu());
    let feed_caught_up = std::thread::scope(|scope| -> anyhow::Result<Option<i64>> {
        let watcher = scope.spawn(|| feed_acknowledged_at(&path, fleet.records as i64, &finished));
        let billed = worker::run(&kafka, biller, &worker_options(), &worker::FeedOptions::default(), &AtomicBool::new(false));
        finished.store(true, Ordering::SeqCst);
        billed?;
        watcher.join().expect("the feed watcher does not panic")
    })?;
    let own_cpu = super::broker::own_cpu().saturating_sub(own_before);
    let broker_cpu = broker.cpu().zip(broker_before).map(|(after, before)| after.saturating_sub(before));
    let ledger = Ledger::open_read_only(&path)?;
    let (count, first, last, in_last): (i64, i64, i64, i64) = ledger.connection().query_row(
        "SELECT count(*), min(billed_ms), max(billed_ms), (SELECT count(*) FROM records WHERE billed_ms = (SELECT max(billed_ms) FROM records)) FROM records",
        [],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
    )?;
    anyhow::ensure!(count as u64 == fleet.records, "the worker billed {count} of {} records", fleet.records);
    // Commits between the first and the last batch's start cover every record but the last batch's.
    let rate = (count - in_last) as f64 * 1000.0 / (last - first).max(1) as f64;
    // The feed publishes on a lower priority and catches up from its cursor: how far behind it ended.
    let feed_behind = match feed_caught_up {
        Some(at) => format!("{:.2} s after the last commit", (at - last).max(0) as f64 / 1000.0),
        None => "never, within the run".to_owned(),
    };
    let prototype = prototype_worker(broker, scratch.path(), PROTOTYPE_RECORDS)?;
    let mut figures = vec![
        Figure::new(
            "simulate → Kafka (idempotent producer, lz4)",
            format!("{} records/s", thousands(produce_rate)),
            "",
            None,
            String::new(),
        ),
        Figure::new(
            super::WORKER,
            format!("{} records/s", thousands(rate)),
            "≥ 200,000 records/s",
            Some(rate >= 200_000.0),
            format!("{} records/s (the prototype-style worker below)", thousands(prototype)),
        )
        .with_rate(rate),
        Figure::new("cost feed: every line of that run acknowledged by the broker", feed_behind, "", None, String::new()),
        cpu_figure(super::WORKER_CPU, count, own_cpu),
        Figure::new(
            &format!("{} ({} records: a commit per message, float money)", super::PROTOTYPE_WORKER, thousands(PROTOTYPE_RECORDS as f64)),
            format!("{} records/s", thousands(prototype)),
            "",
            None,
            String::new(),
        )
        .with_rate(prototype),
    ];
    figures.extend(broker_cpu.map(|cpu| cpu_figure(super::BROKER_CPU, count, cpu)));
    Ok(figures)
}

/// Records billed per CPU-second: `records` over `cpu`, as a rate for the ratios.
fn cpu_figure(name: &str, records: i64, cpu: Duration) -> Figure {
    let per_second = records as f64 / cpu.as_secs_f64().max(1e-9);
    Figure::new(
        name,
        format!("{:.2} µs a record ({:.2} s for {} records)", 1e6 / per_second, cpu.as_secs_f64(), thousands(records as f64)),
        "",
        None,
        String::new(),
    )
    .with_rate(per_second)
}

/// When (Unix ms) the cost feed's cursor in the ledger at `path` reached row `rows`, polled until
/// then or until `finished` is set and the cursor stopped short.
fn feed_acknowledged_at(path: &std::path::Path, rows: i64, finished: &AtomicBool) -> anyhow::Result<Option<i64>> {
    let ledger = Ledger::open_read_only(path)?;
    loop {
        let stopped = finished.load(Ordering::SeqCst);
        if ledger.feed_published_through()? >= rows {
            return Ok(Some(UnixMillis::now().0));
        }
        if stopped {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Records the prototype-style worker reads (it bills about a thousand a second).
const PROTOTYPE_RECORDS: u64 = 5_000;

/// The prototype's worker on the same broker: a consumer committing its offsets automatically and,
/// per message, a parse, float money, a new SQLite connection and one insert in its own transaction.
fn prototype_worker(broker: &BenchBroker, scratch: &std::path::Path, records: u64) -> anyhow::Result<f64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let kafka = kafka(broker, "prototype");
    let fleet = super::fleet(100, records);
    simulate::produce(&kafka, &fleet, 0)?;
    let path = scratch.join("prototype.db");
    rusqlite::Connection::open(&path)?.execute_batch("CREATE TABLE usage (machine TEXT, cpu REAL, mem REAL, cost REAL)")?;
    let mut config = crate::kafka::client_config(&kafka, crate::kafka::ClientRole::Consumer)?;
    config.set("group.id", &kafka.group_id).set("auto.offset.reset", "earliest").set("enable.auto.commit", "true");
    let consumer: BaseConsumer = config.create()?;
    consumer.subscribe(&[&kafka.topic])?;
    let (mut first, mut count) = (None, 0u64);
    let deadline = Instant::now() + Duration::from_secs(120);
    while count < records {
        anyhow::ensure!(Instant::now() < deadline, "the prototype-style worker read {count} of {records} records in 120 s");
        let Some(message) = consumer.poll(Duration::from_secs(1)) else { continue };
        let message = message?;
        let record = crate::record::UsageRecord::parse(message.payload().unwrap_or_default())?;
        let connection = rusqlite::Connection::open(&path)?;
        let mem_pct = record.mem_used_bytes as f64 * 100.0 / record.mem_total_bytes as f64;
        let cost = record.cpu_pct * 0.05 + mem_pct * 0.01;
        connection
            .execute("INSERT INTO usage VALUES (?1, ?2, ?3, ?4)", rusqlite::params![record.machine_id, record.cpu_pct, mem_pct, cost])?;
        first.get_or_insert_with(Instant::now);
        count += 1;
    }
    let elapsed = first.map_or(Duration::ZERO, |first| first.elapsed());
    Ok((count - 1) as f64 / elapsed.as_secs_f64().max(1e-9))
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
        worker::run(&worker_kafka, biller, &options, &worker::FeedOptions::default(), &AtomicBool::new(false))
    });
    // Let the worker join its group before the clock starts (about a second on Apache Kafka).
    std::thread::sleep(Duration::from_secs(3));
    let machines = options.latency_machines.max(1);
    let records = u64::from(machines) * u64::from(options.latency_seconds);
    let fleet = Fleet {
        machines,
        machine_prefix: crate::simulate::DEFAULT_MACHINE_PREFIX.into(),
        records,
        window: Duration::from_secs(1),
        profile: Profile::Constant,
        seed: 0,
        start: UnixMillis::now(),
    };
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
