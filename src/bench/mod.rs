//! `usagebill bench`: the performance targets measured in one run, printed as a table next to the
//! prototype-style baselines. Speed targets live here, never in timed unit tests.

mod agent_cost;
mod broker;
mod fleet;
mod live_rate;
mod local;
mod rebalance;
mod roles;
mod summary;
mod worker_process;

use std::fmt::Write as _;
use std::path::PathBuf;

pub use self::broker::{BenchBroker, BenchCluster};
pub use self::summary::FleetSize;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Records for the worker throughput run.
    pub worker_records: u64,
    /// Simulated machines for the latency run (each sends one record a second).
    pub latency_machines: u32,
    /// Seconds of the latency run.
    pub latency_seconds: u32,
    /// Records in the ledger the reports are timed on.
    pub report_records: u64,
    /// Seconds the headless agent is watched for.
    pub agent_seconds: u32,
    /// The cost view's fleet run (`None`: skipped).
    pub fleet: Option<FleetSize>,
    /// Where temporary ledgers and outboxes go.
    pub scratch: PathBuf,
    /// The usagebill binary (for the agent run).
    pub binary: PathBuf,
}

/// One line of the result table.
#[derive(Debug, Clone)]
pub struct Figure {
    /// What was measured.
    pub name: String,
    /// The measured value with its unit.
    pub value: String,
    /// The target, if there is one.
    pub target: String,
    /// Whether the target is met (`None`: no target).
    pub met: Option<bool>,
    /// The prototype-style baseline, if one applies.
    pub baseline: String,
    /// The rate measured, when the figure is a rate (for the ratios).
    pub rate: Option<f64>,
}

impl Figure {
    fn new(name: &str, value: String, target: &str, met: Option<bool>, baseline: String) -> Figure {
        Figure { name: name.to_owned(), value, target: target.to_owned(), met, baseline, rate: None }
    }

    fn with_rate(self, rate: f64) -> Figure {
        Figure { rate: Some(rate), ..self }
    }
}

/// Names of the rates the ratios are taken between.
const WORKER: &str = "worker: Kafka → committed ledger";
const PROTOTYPE_WORKER: &str = "prototype-style worker: Kafka → SQLite";
const LEDGER_CEILING: &str = "ledger write: parse + price + insert, 10,000 per transaction";
const WORKER_LEDGER_PATH: &str = "ledger write, checkpoints on their own thread (the worker's)";
const PARSE: &str = "record parse + validate";
const WORKER_CPU: &str = "worker: its CPU a billed record in that run (all threads)";
const BROKER_CPU: &str = "broker: its CPU a billed record in that run (Apache Kafka started by the bench)";
const PRICING: &str = "pricing (time-weighted, exact decimal)";

/// The worker against the prototype-style worker and against the in-process ledger path, from the
/// rates of this run.
fn ratios(figures: &[Figure]) -> Vec<Figure> {
    let rate = |name: &str| figures.iter().find(|figure| figure.name.starts_with(name)).and_then(|figure| figure.rate);
    let mut out = Vec::new();
    if let (Some(worker), Some(prototype)) = (rate(WORKER), rate(PROTOTYPE_WORKER)) {
        out.push(Figure::new(
            "ratio: worker ÷ prototype-style worker (same broker, this run)",
            format!("{:.0}×", worker / prototype),
            "",
            None,
            String::new(),
        ));
    }
    if let (Some(worker), Some(ceiling)) = (rate(WORKER), rate(LEDGER_CEILING)) {
        out.push(Figure::new(
            "ratio: worker ÷ in-process ledger path (this run)",
            format!("{:.2}", worker / ceiling),
            "",
            None,
            String::new(),
        ));
    }
    if let (Some(worker), Some(path), Some(parse), Some(pricing), Some(worker_cpu)) =
        (rate(WORKER), rate(WORKER_LEDGER_PATH), rate(PARSE), rate(PRICING), rate(WORKER_CPU))
    {
        out.push(the_cost_in_the_way(worker, path, parse, pricing, worker_cpu, rate(BROKER_CPU)));
    }
    out
}

/// What stands between the worker and 200,000 records/s, from this run: the CPU the worker and the
/// broker spend a record, against the machine's cores, and beside it the ledger thread's insert
/// (the in-process ledger path less parsing and pricing, which the consumer thread does), which
/// bounds one ledger thread whatever the cores.
fn the_cost_in_the_way(worker: f64, path: f64, parse: f64, pricing: f64, worker_cpu: f64, broker_cpu: Option<f64>) -> Figure {
    let micros = |rate: f64| 1e6 / rate.max(1e-9);
    let insert = (micros(path) - micros(parse) - micros(pricing)).max(1e-3);
    let (worker_us, broker_us) = (micros(worker_cpu), broker_cpu.map_or(0.0, micros));
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get) as f64;
    // Over the whole run (billing, then the feed catching up), not the busiest second: the cores
    // 200,000 records/s would keep busy, the worker and the broker alone.
    let cores_needed = 200_000.0 * (worker_us + broker_us) / 1e6;
    let broker_part =
        broker_cpu.map_or_else(|| "the broker's not known (--brokers)".to_owned(), |_| format!("the broker {broker_us:.2} µs"));
    Figure::new(
        "what stands in the worker's way (this run)",
        format!(
            "CPU: the worker {worker_us:.2} µs a record over the run (all threads) and {broker_part}: 200,000 records/s would keep {cores_needed:.1} cores busy, on a machine of {cores:.0} (the worker did {} records/s); the ledger thread's insert ({insert:.2} µs a record) alone would allow {}",
            thousands(worker),
            thousands(1e6 / insert),
        ),
        "≥ 200,000 records/s",
        Some(cores_needed <= cores && 1e6 / insert >= 200_000.0),
        String::new(),
    )
}

/// Runs every measurement against `broker`, reporting progress on stderr.
pub fn run(options: &BenchOptions, broker: &BenchBroker) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    eprintln!("bench: parsing, pricing, outbox and ledger writes (in process)…");
    figures.extend(local::measure(options)?);
    eprintln!("bench: worker throughput from Kafka ({} records)…", options.worker_records);
    figures.extend(fleet::worker_throughput(options, broker)?);
    eprintln!("bench: end-to-end latency ({} machines at 1 record/s for {} s)…", options.latency_machines, options.latency_seconds);
    figures.extend(fleet::latency(options, broker)?);
    figures.extend(scale_out(options, broker)?);
    eprintln!("bench: reports over a {}-record ledger…", options.report_records);
    figures.extend(local::reports(options)?);
    eprintln!("bench: headless agent at 1 Hz for {} s…", options.agent_seconds);
    figures.extend(agent_cost::measure(options)?);
    figures.extend(ratios(&figures));
    if let Some(size) = options.fleet {
        eprintln!("bench: the cost view over {} machines × {} day(s), {} desktops…", size.machines, size.days, size.desktops);
        figures.extend(summary::measure(options, broker, size)?);
        figures.extend(live_rates(options, broker, size)?);
    }
    Ok(figures)
}

/// A rebalance over a month of retention, then the CPU time per billed record by summary role on
/// a three-node cluster started for it.
pub fn scale_out(options: &BenchOptions, broker: &BenchBroker) -> anyhow::Result<Vec<Figure>> {
    eprintln!("bench: a rebalance over a month of retention…");
    let mut figures = rebalance::measure(options, broker)?;
    eprintln!("bench: CPU per billed record by summary role ({} records a run)…", roles::records(options));
    let cluster = BenchCluster::start()?;
    figures.extend(roles::measure(options, &cluster)?);
    Ok(figures)
}

/// Desktop cold starts while the fleet is billed live, with 1 s and 10 s windows.
fn live_rates(options: &BenchOptions, broker: &BenchBroker, size: FleetSize) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    if size.live_warmup.is_zero() {
        return Ok(figures);
    }
    for window in [1, 10].map(std::time::Duration::from_secs) {
        eprintln!(
            "bench: desktop cold start while {} machines send a record each {} s ({} s of warm-up)…",
            size.machines,
            window.as_secs(),
            size.live_warmup.as_secs()
        );
        figures.extend(live_rate::measure(options, broker, size, window)?);
    }
    Ok(figures)
}

/// Only the cost view's fleet run.
pub fn run_fleet(options: &BenchOptions, broker: &BenchBroker) -> anyhow::Result<Vec<Figure>> {
    let size = options.fleet.ok_or_else(|| anyhow::anyhow!("--fleet-only needs --fleet-machines above 0"))?;
    eprintln!("bench: the cost view over {} machines × {} day(s), {} desktops…", size.machines, size.days, size.desktops);
    let mut figures = summary::measure(options, broker, size)?;
    figures.extend(live_rates(options, broker, size)?);
    Ok(figures)
}

/// The table as Markdown.
pub fn render(figures: &[Figure]) -> String {
    let mut out = String::from("| figure | value | target | met | prototype-style baseline |\n|---|---|---|---|---|\n");
    for figure in figures {
        let met = match figure.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        let _ = writeln!(out, "| {} | {} | {} | {met} | {} |", figure.name, figure.value, figure.target, figure.baseline);
    }
    out
}

/// `12345.6` as `12,346`.
/// The bench's simulated fleet: `machines` machines, `records` ten-second windows of random load from
/// 2026-01-01, the same for a seed, so every run measures the same records.
fn fleet(machines: u32, records: u64) -> crate::simulate::Fleet {
    crate::simulate::Fleet {
        machines,
        machine_prefix: crate::simulate::DEFAULT_MACHINE_PREFIX.into(),
        records,
        window: std::time::Duration::from_secs(10),
        profile: crate::simulate::Profile::Random,
        seed: 7,
        start: crate::record::UnixMillis(1_767_225_600_000),
    }
}

fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
