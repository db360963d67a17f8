//! A rebalance over a month of retention: one worker bills a month of a fleet's records, a second
//! joins the group while the fleet keeps sending, and partitions move to it. The second starts
//! each moved partition at the group's committed offset, so what both ledgers hold is at most a
//! batch a moved partition; starting at the beginning it would bill the month again.

use std::time::{Duration, Instant};

use super::worker_process::{WorkerLaunch, WorkerProcess};
use super::{BenchBroker, BenchOptions, Figure, thousands};
use crate::kafka::ensure_topic;
use crate::record::UnixMillis;
use crate::simulate::{self, Fleet, Profile, Variations};

/// A record each machine each 10 minutes for 30 days.
const HISTORY_WINDOW: Duration = Duration::from_secs(600);
const DAYS: u64 = 30;
/// The workers' batch (the bound is a batch a moved partition).
const BATCH: u64 = 10_000;
/// Seconds the fleet keeps sending, a record a machine a second, while the second worker joins.
const LIVE_SECONDS: u64 = 20;

pub fn measure(options: &BenchOptions, broker: &BenchBroker) -> anyhow::Result<Vec<Figure>> {
    let kafka = super::fleet::kafka(broker, "rebalance");
    ensure_topic(&kafka, &kafka.topic)?;
    let machines: u32 = if options.worker_records < 1_000_000 { 50 } else { 100 };
    let history = Fleet {
        machines,
        machine_prefix: simulate::DEFAULT_MACHINE_PREFIX.into(),
        records: u64::from(machines) * DAYS * 86_400 / HISTORY_WINDOW.as_secs(),
        window: HISTORY_WINDOW,
        profile: Profile::Random,
        seed: 5,
        start: UnixMillis::now().plus_millis(-((DAYS * 86_400_000) as i64)),
    };
    simulate::produce(&kafka, &history, 0)?;
    let scratch = tempfile::tempdir_in(&options.scratch)?;
    let batch = BATCH.to_string();
    let extra = ["--batch-size", &batch, "--kafka-property", "session.timeout.ms=6000", "--kafka-property", "heartbeat.interval.ms=500"];
    let launch = WorkerLaunch {
        binary: &options.binary,
        bootstrap: &broker.bootstrap,
        topic: &kafka.topic,
        cost_topic: &kafka.cost_topic,
        group: &kafka.group_id,
        extra: &extra,
    };
    let first = launch.spawn(&scratch.path().join("first"))?;
    wait_for(&[&first], history.records, Duration::from_secs(600), "the first worker billing the month")?;
    // The fleet goes on under other names (so no (machine, seq) is sent twice) while the second joins.
    let live = Fleet {
        machines,
        machine_prefix: "live-".into(),
        records: u64::from(machines) * LIVE_SECONDS,
        window: Duration::from_secs(1),
        profile: Profile::Constant,
        seed: 0,
        start: UnixMillis::now(),
    };
    let producer_kafka = kafka.clone();
    let producer =
        std::thread::spawn(move || simulate::produce_with(&producer_kafka, &live, 0, Variations { live: true, ..Variations::default() }));
    std::thread::sleep(Duration::from_secs(3));
    let second = launch.spawn(&scratch.path().join("second"))?;
    let sent = producer.join().map_err(|_| anyhow::anyhow!("the live fleet's thread panicked"))??;
    let total = history.records + sent;
    wait_for(&[&first, &second], total, Duration::from_secs(120), "both workers billing the live records")?;
    let moved = second.partitions(&kafka.topic)?.len() as u64;
    first.interrupt();
    second.interrupt();
    let (first, second) = (first.reap(Duration::from_secs(60))?, second.reap(Duration::from_secs(60))?);
    let rebilled = (first.billed + second.billed).saturating_sub(total);
    let bound = moved * BATCH;
    anyhow::ensure!(moved > 0, "no partition moved to the second worker");
    Ok(vec![Figure::new(
        &format!(
            "rebalance over a month of retention ({} records: {machines} machines × {DAYS} days, then {} live): billed again",
            thousands(history.records as f64),
            thousands(sent as f64)
        ),
        format!(
            "{} record(s) ({moved} partitions moved; starting them at the beginning would bill about {} each again)",
            thousands(rebilled as f64),
            thousands((history.records / kafka.partitions.max(1) as u64) as f64)
        ),
        &format!("≤ {} (a batch of {} a moved partition)", thousands(bound as f64), thousands(BATCH as f64)),
        Some(rebilled <= bound),
        String::new(),
    )])
}

/// Waits until the workers' ledgers together hold at least `records` and stopped growing for
/// 3 s (what is billed twice counts too, so reaching `records` alone does not mean all are in).
fn wait_for(workers: &[&WorkerProcess], records: u64, limit: Duration, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let mut last = (0, Instant::now());
    loop {
        let billed = workers.iter().map(|worker| worker.billed()).sum::<anyhow::Result<u64>>()?;
        if billed != last.0 {
            last = (billed, Instant::now());
        } else if billed >= records && last.1.elapsed() >= Duration::from_secs(3) {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{what}: {billed} of {records} records after {} s", limit.as_secs());
        std::thread::sleep(Duration::from_millis(500));
    }
}
