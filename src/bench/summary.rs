//! The fleet benchmark of the cost view: N machines with H days of hourly history billed by a worker
//! that publishes the summary topic, then M desktops' views: cold start to a full table, the bytes
//! each desktop reads from the broker and keeps on disk, and freshness (a record's end to every
//! open desktop holding a summary that counts it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{BenchBroker, BenchOptions, Figure, thousands};
use crate::billing::biller::Biller;
use crate::billing::ledger::Ledger;
use crate::billing::rate_card::RateCard;
use crate::feed::summary::{self, SummaryBook, SummaryFeed};
use crate::kafka::{KafkaConfig, ReportingProducer};
use crate::record::{Trigger, UnixMillis, UsageRecord};
use crate::simulate::{self, Fleet, Profile};
use crate::worker::{self, FeedOptions, WorkerOptions};

/// What the fleet run measures.
#[derive(Debug, Clone, Copy)]
pub struct FleetSize {
    /// Machines.
    pub machines: u32,
    /// Days of hourly history per machine.
    pub days: u32,
    /// Desktops reading the summary topic at once.
    pub desktops: u32,
    /// How long the fleet is billed live before desktops start cold, in the live-rate runs (zero
    /// skips them).
    pub live_warmup: Duration,
}

const HOUR: i64 = 3_600_000;
/// Seconds of live records during the freshness run, and records per second.
const LIVE_SECONDS: u64 = 10;
const LIVE_PER_SECOND: u64 = 200;

/// Runs the fleet benchmark against `broker`.
pub fn measure(options: &BenchOptions, broker: &BenchBroker, size: FleetSize) -> anyhow::Result<Vec<Figure>> {
    let kafka = super::fleet::kafka(broker, "fleet");
    let history = u64::from(size.machines) * u64::from(size.days) * 24;
    let now = UnixMillis::now();
    let start = UnixMillis((now.0 / HOUR - i64::from(size.days) * 24) * HOUR);
    let fleet = Fleet {
        machines: size.machines,
        machine_prefix: crate::simulate::DEFAULT_MACHINE_PREFIX.into(),
        records: history,
        window: Duration::from_secs(3600),
        profile: Profile::Random,
        seed: 5,
        start,
    };
    simulate::produce(&kafka, &fleet, 0)?;
    let scratch = tempfile::tempdir_in(&options.scratch)?;
    let billing = Billing::start(&kafka, &scratch.path().join("ledger.db"))?;
    let outcome = measure_views(&kafka, size, history);
    billing.finish()?;
    outcome
}

/// A worker billing the bench's topic, with its summary publisher (it leads: it is alone).
pub(super) struct Billing {
    stop: Arc<AtomicBool>,
    publisher: std::thread::JoinHandle<summary::PublisherTotals>,
    worker: std::thread::JoinHandle<Result<crate::billing::biller::BillerTotals, worker::WorkerError>>,
}

impl Billing {
    pub(super) fn start(kafka: &KafkaConfig, ledger_path: &std::path::Path) -> anyhow::Result<Billing> {
        let stop = Arc::new(AtomicBool::new(false));
        let options = summary::options_for(ledger_path, RateCard::built_in(), None);
        let publisher = summary::spawn_publisher(kafka, options, Arc::clone(&stop))?;
        let biller = Biller::new(Ledger::open(ledger_path)?, RateCard::built_in());
        let (worker_kafka, worker_stop) = (kafka.clone(), Arc::clone(&stop));
        let worker = std::thread::spawn(move || {
            let options = WorkerOptions { batch_size: 10_000, batch_linger: Duration::from_millis(5), exit_when_idle: None, metrics: None };
            worker::run(&worker_kafka, biller, &options, &FeedOptions::default(), &worker_stop)
        });
        Ok(Billing { stop, publisher, worker })
    }

    /// Stops both; returns the summaries and live shards published.
    pub(super) fn finish(self) -> anyhow::Result<summary::PublisherTotals> {
        self.stop.store(true, Ordering::SeqCst);
        let totals = self.publisher.join().map_err(|_| anyhow::anyhow!("the summary publisher panicked"))?;
        self.worker.join().map_err(|_| anyhow::anyhow!("the worker thread panicked"))??;
        Ok(totals)
    }
}

fn measure_views(kafka: &KafkaConfig, size: FleetSize, history: u64) -> anyhow::Result<Vec<Figure>> {
    let per_machine = u64::from(size.days) * 24;
    let began = Instant::now();
    wait_for_complete_summaries(kafka, size.machines as usize, per_machine)?;
    let settled = began.elapsed();
    let (worst_cold, bytes) = cold_start(kafka, size)?;
    let (p50, p99) = freshness(kafka, size, per_machine)?;
    let machines = thousands(f64::from(size.machines));
    Ok(vec![
        Figure::new(
            &format!(
                "fleet: {machines} machines × {} day(s) billed ({} records) to complete summaries",
                size.days,
                thousands(history as f64)
            ),
            format!("{:.1} s", settled.as_secs_f64()),
            "",
            None,
            String::new(),
        ),
        Figure::new(
            &format!("desktop cold start to a full table of {machines} machines (worst of {})", size.desktops),
            format!("{} ms", worst_cold.as_millis()),
            "≤ 2 s",
            Some(worst_cold <= Duration::from_secs(2)),
            "whole feed: 6 s for 50 machines × 1 day (measured by the issue)".into(),
        ),
        Figure::new(
            "desktop: bytes the broker sends at cold start",
            format!(
                "{:.1} MB in {} messages ({:.1} a machine: the topic is {:.0} s old and not compacted yet; compacted, one a machine: {:.1} MB)",
                bytes.0 as f64 / 1e6,
                thousands(bytes.1 as f64),
                bytes.1 as f64 / f64::from(size.machines),
                settled.as_secs_f64(),
                bytes.0 as f64 / bytes.1.max(1) as f64 * f64::from(size.machines) / 1e6
            ),
            "",
            None,
            "whole feed: grows with fleet × history".into(),
        ),
        Figure::new(
            "desktop: cost view's bytes on disk",
            "0 MB (held in memory)".into(),
            "≤ 20 MB",
            Some(true),
            "103 MB feed.db for 50 machines × 1 day".into(),
        ),
        Figure::new(&format!("freshness, {} desktops: p50", size.desktops), format!("{p50} ms"), "", None, String::new()),
        Figure::new(
            &format!("freshness, {} desktops: p99", size.desktops),
            format!("{p99} ms"),
            "≤ 2,000 ms",
            Some(p99 <= 2_000),
            String::new(),
        ),
    ])
}

/// Opens `size.desktops` views one after another, each read until caught up; returns the slowest
/// one's time and the bytes a view read.
fn cold_start(kafka: &KafkaConfig, size: FleetSize) -> anyhow::Result<(Duration, (u64, u64))> {
    let (mut worst, mut bytes) = (Duration::ZERO, (0, 0));
    for _ in 0..size.desktops {
        let opened = Instant::now();
        let mut feed = SummaryFeed::open(kafka)?;
        let mut book = SummaryBook::new();
        while !feed.caught_up() {
            feed.poll(&mut book, None, Duration::from_millis(50))?;
        }
        worst = worst.max(opened.elapsed());
        bytes = (feed.bytes_read(), feed.messages_read());
        anyhow::ensure!(book.len() == size.machines as usize, "a desktop read {} of {} machines", book.len(), size.machines);
    }
    Ok((worst, bytes))
}

/// Waits until a reader holds every machine's summary counting all `per_machine` records.
fn wait_for_complete_summaries(kafka: &KafkaConfig, machines: usize, per_machine: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut feed = loop {
        match SummaryFeed::open(kafka) {
            Ok(feed) => break feed,
            Err(error) if Instant::now() < deadline => {
                tracing::debug!("waiting for the summary topic: {}", crate::errors::chain(&error));
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(error) => return Err(error.into()),
        }
    };
    let mut book = SummaryBook::new();
    loop {
        feed.poll(&mut book, None, Duration::from_millis(200))?;
        if book.len() == machines && book.summaries().all(|summary| summary.revision >= per_machine) {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "summaries incomplete after 600 s: {} of {machines} machines", book.len());
    }
}

/// When a desktop first held each (machine, revision), in ms since the epoch.
type FirstSeen = HashMap<(String, u64), i64>;

/// A record sent live: machine, seq, and its end (ms since the epoch).
type Sent = (String, u64, i64);

/// Sends live records and measures, per record and desktop, its end to the desktop holding a
/// summary of its machine whose revision counts it.
fn freshness(kafka: &KafkaConfig, size: FleetSize, per_machine: u64) -> anyhow::Result<(i64, i64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<FirstSeen>>> = Arc::new(Mutex::new(Vec::new()));
    let ready = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let desktops = (0..size.desktops).map(|_| spawn_desktop(kafka, &stop, &seen, &ready)).collect::<anyhow::Result<Vec<_>>>()?;
    // The desktops are open (caught up) before the first live record: freshness, not cold start.
    while ready.load(Ordering::SeqCst) < size.desktops {
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = send_live(kafka, size, per_machine)?;
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::SeqCst);
    for desktop in desktops {
        desktop.join().map_err(|_| anyhow::anyhow!("a desktop thread panicked"))??;
    }
    let seen = seen.lock().expect("the freshness log");
    percentiles(&seen, &sent)
}

/// A desktop's reader: notes when it first holds each machine's revision, until `stop`.
fn spawn_desktop(
    kafka: &KafkaConfig,
    stop: &Arc<AtomicBool>,
    seen: &Arc<Mutex<Vec<FirstSeen>>>,
    ready: &Arc<std::sync::atomic::AtomicU32>,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
    let mut feed = SummaryFeed::open(kafka)?;
    let (stop, seen, ready) = (Arc::clone(stop), Arc::clone(seen), Arc::clone(ready));
    Ok(std::thread::spawn(move || -> anyhow::Result<()> {
        let mut book = SummaryBook::new();
        while !feed.caught_up() {
            feed.poll(&mut book, None, Duration::from_millis(50))?;
        }
        ready.fetch_add(1, Ordering::SeqCst);
        let mut first_seen = FirstSeen::new();
        let mut revisions: HashMap<String, u64> = HashMap::new();
        while !stop.load(Ordering::SeqCst) {
            if feed.poll(&mut book, None, Duration::from_millis(20))? > 0 {
                let at = UnixMillis::now().0;
                for summary in book.summaries() {
                    if revisions.get(&summary.machine_id) != Some(&summary.revision) {
                        revisions.insert(summary.machine_id.clone(), summary.revision);
                        first_seen.entry((summary.machine_id.clone(), summary.revision)).or_insert(at);
                    }
                }
            }
        }
        seen.lock().expect("the freshness log").push(first_seen);
        Ok(())
    }))
}

/// Sends `LIVE_PER_SECOND` records a second for `LIVE_SECONDS`, each of a random machine, its
/// window ending as it is sent and its seq following the machine's history.
fn send_live(kafka: &KafkaConfig, size: FleetSize, per_machine: u64) -> anyhow::Result<Vec<Sent>> {
    let (sender, _deliveries) = std::sync::mpsc::channel();
    let producer = ReportingProducer::new(kafka, crate::record::CONTENT_TYPE, sender)?;
    let mut sent = Vec::new();
    let mut next_seq: HashMap<u32, u64> = HashMap::new();
    let mut random = 0x2545_F491_4F6C_DD1Du64;
    for tick in 0..LIVE_SECONDS * 10 {
        for _ in 0..LIVE_PER_SECOND / 10 {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            let machine = (random % u64::from(size.machines)) as u32;
            let seq = next_seq.entry(machine).or_insert(per_machine);
            *seq += 1;
            let end = UnixMillis::now();
            let name = format!("{}{:05}", crate::simulate::DEFAULT_MACHINE_PREFIX, machine + 1);
            let steady = UsageRecord::steady(&name, 1, end.plus_millis(-1_000), 1_000);
            let record = UsageRecord { seq: *seq, trigger: Trigger::Interval, ..steady };
            producer.send(&kafka.topic, &name, &record.to_json(), tick)?;
            sent.push((name, *seq, end.0));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    producer.flush(Duration::from_secs(10))?;
    Ok(sent)
}

/// p50 and p99 over every desktop and record of the record's end to the desktop first holding a
/// revision that counts it (the revision counts records, so seq `per_machine + k` is counted once
/// the revision reaches it).
fn percentiles(seen: &[FirstSeen], sent: &[Sent]) -> anyhow::Result<(i64, i64)> {
    let mut latencies = Vec::new();
    for desktop in seen {
        let mut by_machine: HashMap<&str, Vec<(u64, i64)>> = HashMap::new();
        for ((machine, revision), at) in desktop {
            by_machine.entry(machine.as_str()).or_default().push((*revision, *at));
        }
        for (machine, seq, end) in sent {
            let held = by_machine.get(machine.as_str()).into_iter().flatten();
            let first = held.filter(|(revision, _)| revision >= seq).map(|(_, at)| *at).min();
            let Some(at) = first else { anyhow::bail!("a desktop never saw {machine} seq {seq}") };
            latencies.push(at - end);
        }
    }
    latencies.sort_unstable();
    anyhow::ensure!(!latencies.is_empty(), "no live record was measured");
    let at = |fraction: f64| latencies[((latencies.len() - 1) as f64 * fraction).round() as usize];
    Ok((at(0.5), at(0.99)))
}
