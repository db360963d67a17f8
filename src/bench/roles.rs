//! CPU time per billed record by summary role, on a three-node Apache Kafka cluster: a lone worker
//! kept out of the summary election (the baseline: it bills and publishes the cost feed), a lone
//! worker that leads the summaries, and three workers in one group (a leader, a standby and one
//! that only bills). Each is a process of its own, reaped for its CPU time; the records billed are
//! counted in its ledger, and its role is the last one it logged.

use std::time::Duration;

use super::worker_process::{Reaped, WorkerLaunch};
use super::{BenchCluster, BenchOptions, Figure, thousands};
use crate::kafka::{KafkaConfig, ensure_topic};
use crate::record::UnixMillis;
use crate::simulate::{self, Fleet, Profile};

/// Records the role runs bill (each run bills all of them, from a group of its own).
pub fn records(options: &BenchOptions) -> u64 {
    options.worker_records.clamp(100_000, 600_000)
}

/// Idle time before a worker stops by itself: long enough for a leader's view to follow the feed.
const IDLE: &str = "6s";
/// Longest a run may take.
const LIMIT: Duration = Duration::from_secs(600);

pub fn measure(options: &BenchOptions, cluster: &BenchCluster) -> anyhow::Result<Vec<Figure>> {
    let suffix = format!("{}-{}", std::process::id(), UnixMillis::now().0);
    let topic = format!("bench-roles-{suffix}");
    let kafka = KafkaConfig { brokers: vec![cluster.bootstrap.clone()], topic: topic.clone(), ..KafkaConfig::default() };
    ensure_topic(&kafka, &topic)?;
    let fleet = Fleet {
        machines: 1_000,
        machine_prefix: simulate::DEFAULT_MACHINE_PREFIX.into(),
        records: records(options),
        window: Duration::from_secs(10),
        profile: Profile::Random,
        seed: 11,
        start: UnixMillis(1_767_225_600_000),
    };
    simulate::produce(&kafka, &fleet, 0)?;
    let scratch = tempfile::tempdir_in(&options.scratch)?;
    // Each run its own group and cost feed (and so its own summary topics), on the same records.
    let run = |name: &str, workers: usize, extra: &[&str]| -> anyhow::Result<Vec<Reaped>> {
        let (group, cost_topic) = (format!("{topic}-{name}"), format!("{topic}.{name}.costs"));
        let mut launch_extra = vec!["--exit-when-idle", IDLE];
        launch_extra.extend_from_slice(extra);
        let launch = WorkerLaunch {
            binary: &options.binary,
            bootstrap: &cluster.bootstrap,
            topic: &topic,
            cost_topic: &cost_topic,
            group: &group,
            extra: &launch_extra,
        };
        let started =
            (0..workers).map(|index| launch.spawn(&scratch.path().join(format!("{name}-{index}")))).collect::<Result<Vec<_>, _>>()?;
        let reaped = started.into_iter().map(|worker| worker.reap(LIMIT)).collect::<anyhow::Result<Vec<_>>>()?;
        let billed: u64 = reaped.iter().map(|worker| worker.billed).sum();
        anyhow::ensure!(billed >= fleet.records, "the {name} run billed {billed} of {} records", fleet.records);
        Ok(reaped)
    };
    eprintln!("bench: a lone worker without the summary ({} records)…", thousands(fleet.records as f64));
    let lone = run("lone", 1, &["--no-summary"])?.remove(0);
    eprintln!("bench: a lone worker leading the summary…");
    let leading = run("leading", 1, &[])?.remove(0);
    eprintln!("bench: three workers in one group…");
    let three = run("three", 3, &[])?;
    let mut figures = figures(&lone, &leading, &three);
    eprintln!("bench: a takeover by a worker without a feed view…");
    figures.push(cold_takeover(options, cluster, &topic, &scratch.path().join("takeover"))?);
    Ok(figures)
}

/// A worker with no view joins the three-worker run's group once its members are gone: it leads,
/// so it catches a view up with that run's whole feed before it publishes (the worst takeover: no
/// standby). The time is the one it logs.
fn cold_takeover(options: &BenchOptions, cluster: &BenchCluster, topic: &str, dir: &std::path::Path) -> anyhow::Result<Figure> {
    let (group, cost_topic) = (format!("{topic}-three"), format!("{topic}.three.costs"));
    let launch = WorkerLaunch {
        binary: &options.binary,
        bootstrap: &cluster.bootstrap,
        topic,
        cost_topic: &cost_topic,
        group: &group,
        // Idle from its assignment: long enough for the view to catch up before it stops.
        extra: &["--exit-when-idle", "30s"],
    };
    let worker = launch.spawn(dir)?;
    let log = worker.log.clone();
    let reaped = worker.reap(LIMIT)?;
    let text = std::fs::read_to_string(&log)?;
    let line = text
        .lines()
        .find(|line| line.contains("the feed view caught up with"))
        .ok_or_else(|| anyhow::anyhow!("the worker that took over never caught its view up; its log: {}", log.display()))?;
    let caught_up = line.split_once("caught up with ").map_or(line, |(_, rest)| rest);
    let took = caught_up.split_once(" in ").map_or(caught_up, |(_, rest)| rest);
    Ok(Figure::new(
        "takeover by a worker without a feed view (three-node cluster): its view caught up with the whole feed",
        format!("in {took}; its role then: {}; records it billed again: {}", reaped.role, thousands(reaped.billed as f64)),
        "",
        None,
        String::new(),
    ))
}

fn per_record(worker: &Reaped) -> f64 {
    worker.cpu.as_secs_f64() * 1e6 / worker.billed.max(1) as f64
}

fn figures(lone: &Reaped, leading: &Reaped, three: &[Reaped]) -> Vec<Figure> {
    let baseline = per_record(lone);
    let describe = |worker: &Reaped| {
        format!(
            "{:.2} µs a record ({:.2} s CPU, {} records; {:.2}× the lone worker without the summary)",
            per_record(worker),
            worker.cpu.as_secs_f64(),
            thousands(worker.billed as f64),
            per_record(worker) / baseline
        )
    };
    let mut figures = vec![
        Figure::new(
            "CPU per billed record, three-node cluster: a lone worker without the summary",
            format!("{:.2} µs a record ({:.2} s CPU, {} records)", baseline, lone.cpu.as_secs_f64(), thousands(lone.billed as f64)),
            "",
            None,
            String::new(),
        ),
        Figure::new(
            &format!("CPU per billed record, three-node cluster: a lone worker, role {}", leading.role),
            describe(leading),
            "",
            None,
            String::new(),
        ),
    ];
    for worker in three {
        let only_bills = worker.role == "neither";
        let ratio = per_record(worker) / baseline;
        figures.push(Figure::new(
            &format!("CPU per billed record, three workers in one group: role {}", worker.role),
            describe(worker),
            if only_bills { "≤ 1.10× the lone worker" } else { "" },
            only_bills.then_some(ratio <= 1.10),
            String::new(),
        ));
    }
    figures
}
