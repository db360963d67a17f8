//! Command-line arguments. Flags win over `USAGEBILL_*` env vars, which win over the config file.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand};

use crate::billing::table_format::ReportFormat;
use crate::config::HumanDuration;
use crate::simulate::Profile;

/// Meters what each machine uses and bills it, live, over Apache Kafka.
///
/// With no command, opens the desktop app. With no brokers configured, everything runs in this
/// process (embedded mode); name brokers to use Kafka.
#[derive(Debug, Parser)]
#[command(name = "usagebill", version, about, long_about = None)]
pub struct Cli {
    /// Settings shared by every command.
    #[command(flatten)]
    pub common: CommonArgs,
    /// What to do; none opens the desktop app.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags every command takes.
#[derive(Debug, Args, Clone, Default)]
pub struct CommonArgs {
    /// Config file (TOML); default: `usagebill config path`.
    #[arg(long, global = true, env = "USAGEBILL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Kafka bootstrap brokers, comma-separated; none means embedded mode.
    #[arg(long, global = true, env = "USAGEBILL_BROKERS", value_name = "HOST:PORT,...")]
    pub brokers: Option<String>,
    /// Topic of usage records.
    #[arg(long, global = true, env = "USAGEBILL_TOPIC", value_name = "NAME")]
    pub topic: Option<String>,
    /// Topic of the cost feed (billed lines).
    #[arg(long, global = true, env = "USAGEBILL_COST_TOPIC", value_name = "NAME")]
    pub cost_topic: Option<String>,
    /// Where the outbox, the ledger and the machine id live.
    #[arg(long, global = true, env = "USAGEBILL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sample this machine and send its usage (`--headless`: without a window).
    Agent(AgentArgs),
    /// Bill usage records from Kafka into a ledger.
    Worker(WorkerArgs),
    /// Per-machine totals from a ledger.
    Report(ReportArgs),
    /// Produce synthetic records from a fleet of simulated machines.
    Simulate(SimulateArgs),
    /// Measure the performance targets against a real broker and print a table.
    Bench(BenchArgs),
    /// Check or locate the config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Close billing periods, and list, show and verify statements.
    #[command(subcommand)]
    Statement(StatementCommand),
    /// Test the forecast against history: `--backtest`.
    Forecast(ForecastArgs),
}

/// `usagebill forecast`.
#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// Replay every calendar month the history holds whole: at each of its days, forecast each
    /// machine's month from what was known then, and compare with what it billed.
    #[arg(long, required = true)]
    pub backtest: bool,
    /// Ledger file; default: `worker.ledger` or `ledger.db` in the data dir.
    #[arg(long, value_name = "FILE")]
    pub ledger: Option<PathBuf>,
    /// Read the cost feed instead: materialise `kafka.cost_topic` into `feed.db` in the data dir first.
    #[arg(long, conflicts_with = "ledger")]
    pub from_feed: bool,
    /// Output form: the table of days 3, 10 and 20, or every day as CSV or JSON.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
}

/// `usagebill agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Run without a window (logs to stderr).
    #[arg(long)]
    pub headless: bool,
    /// Auto-send every DUR (e.g. 10s); `off` disables it.
    #[arg(long, value_name = "DUR|off")]
    pub interval: Option<String>,
    /// A threshold rule, e.g. "cpu_pct > 90 for 30s"; repeatable.
    #[arg(long = "rule", value_name = "RULE")]
    pub rules: Vec<String>,
    /// Start paused: windows close into the outbox, nothing is sent.
    #[arg(long)]
    pub paused: bool,
    /// Time between readings.
    #[arg(long, value_name = "DUR")]
    pub sample_interval: Option<HumanDuration>,
    /// Longest window.
    #[arg(long, value_name = "DUR")]
    pub max_window: Option<HumanDuration>,
    /// This machine's id.
    #[arg(long, env = "USAGEBILL_MACHINE_ID", value_name = "ID")]
    pub machine_id: Option<String>,
    /// Stop by itself after DUR (as if Ctrl-C was pressed).
    #[arg(long, value_name = "DUR")]
    pub run_for: Option<HumanDuration>,
    /// Read scripted readings (JSON lines) from FILE instead of sysinfo, one per sample interval.
    #[arg(long, value_name = "FILE", hide = true)]
    pub readings: Option<PathBuf>,
}

/// `usagebill worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Ledger file; default: `ledger.db` in the data dir.
    #[arg(long, value_name = "FILE")]
    pub ledger: Option<PathBuf>,
    /// Stop once nothing arrived for DUR (counted from the first partition assignment).
    #[arg(long, value_name = "DUR")]
    pub exit_when_idle: Option<HumanDuration>,
    /// Consumer group.
    #[arg(long, value_name = "ID")]
    pub group: Option<String>,
    /// Rate card file (TOML).
    #[arg(long, value_name = "FILE")]
    pub rate_card: Option<PathBuf>,
    /// Most records per ledger transaction.
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Librdkafka property for this worker, KEY=VALUE; repeatable (e.g. session.timeout.ms=6000).
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    pub kafka_properties: Vec<PropertyArg>,
    /// Do not publish billed lines to the cost feed (`kafka.cost_topic`).
    #[arg(long)]
    pub no_feed: bool,
    /// Publish the cost feed but stay out of the summary election (no summaries, no feed view).
    #[arg(long)]
    pub no_summary: bool,
    /// Serve the read-only HTTP API on ADDR (`HOST:PORT`, or `PORT` for 127.0.0.1); off by default.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// File holding the API's bearer token (else env USAGEBILL_API_TOKEN); required off loopback.
    #[arg(long, value_name = "FILE")]
    pub api_token_file: Option<PathBuf>,
}

/// `usagebill report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Ledger file; default: `ledger.db` in the data dir.
    #[arg(long, value_name = "FILE")]
    pub ledger: Option<PathBuf>,
    /// Windows starting at or after T (RFC 3339).
    #[arg(long, value_name = "T")]
    pub from: Option<String>,
    /// Windows starting before T (RFC 3339).
    #[arg(long, value_name = "T")]
    pub to: Option<String>,
    /// Output form.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
    /// Reprice every line with the card version it names; print differences and `N differences`
    /// (exit 1 when N > 0).
    #[arg(long, conflicts_with_all = ["quarantine", "gaps"])]
    pub verify: bool,
    /// Rate card file (TOML) for --verify and graduated tiers; default: `worker.rate_card` or the built-in card.
    #[arg(long, value_name = "FILE")]
    pub rate_card: Option<PathBuf>,
    /// List quarantined messages instead of totals.
    #[arg(long, conflicts_with = "gaps")]
    pub quarantine: bool,
    /// List metering gaps (machine, first and last missing seq, the unmetered time) instead of totals.
    #[arg(long)]
    pub gaps: bool,
    /// Report from the cost feed: materialise `kafka.cost_topic` into `feed.db` in the data dir first.
    #[arg(long, conflicts_with = "ledger")]
    pub from_feed: bool,
    /// Print the per-machine cost table exactly as the app's Costs tab shows it, from the workers'
    /// compacted summary topic (`kafka.summary_topic`), read from its start.
    #[arg(long, conflicts_with_all = ["ledger", "from_feed", "verify", "quarantine", "gaps", "from", "to"])]
    pub from_summary: bool,
    /// With --from-summary: the period, by its first day (`2026-11-01`); default: the current one.
    #[arg(long, value_name = "DATE", requires = "from_summary")]
    pub period: Option<String>,
}

/// `usagebill simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Simulated machines.
    #[arg(long, default_value_t = 10)]
    pub machines: u32,
    /// What the machines' names start with: PREFIX00001 upwards (several simulated groups can
    /// share one topic under different prefixes).
    #[arg(long, default_value = crate::simulate::DEFAULT_MACHINE_PREFIX, value_name = "PREFIX")]
    pub machine_prefix: String,
    /// Records in all.
    #[arg(long, default_value_t = 1000)]
    pub records: u64,
    /// Window of each record.
    #[arg(long, default_value = "10s", value_name = "DUR")]
    pub window: HumanDuration,
    /// Usage profile.
    #[arg(long, value_enum, default_value = "constant")]
    pub profile: Profile,
    /// Seed of the random profile.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Records per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Start of the first window (RFC 3339).
    #[arg(long, default_value = "2026-01-01T00:00:00Z", value_name = "T")]
    pub start: String,
    /// Move each window boundary by up to ±PCT/2 % of the window (deterministic for the seed); the
    /// windows still tile time and each machine's span is unchanged.
    #[arg(long, default_value_t = 0, value_name = "PCT", value_parser = clap::value_parser!(u32).range(0..=100))]
    pub jitter: u32,
    /// Also send N malformed messages (not JSON, bad fields, unknown type, oversize), spread evenly.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub malformed: u64,
    /// Live: windows end from now on, machines staggered, each record sent when its window ends
    /// (one record per machine per window; for latency runs). Ignores --rate and --start.
    #[arg(long)]
    pub live: bool,
}

/// `usagebill config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a config file (default: the one in use) and print what is wrong.
    Check {
        /// The file.
        file: Option<PathBuf>,
    },
    /// Print where the config file is read from.
    Path,
}

/// `usagebill statement ...`.
#[derive(Debug, Subcommand)]
pub enum StatementCommand {
    /// Close a period (and every earlier one with usage still open): its drafts become final,
    /// numbered statements. Idempotent: closing a closed period prints its statements again.
    Close {
        /// The period: `YYYY-MM` (a month), or with `billing.period` set, `YYYY-Www` or `YYYY-MM-DD`.
        #[arg(long, value_name = "YYYY-MM")]
        period: String,
        /// Print only this account's statement (the period closes for every account at once).
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        /// Rate card file (TOML) for the graduated tiers; default: `worker.rate_card` or the built-in card.
        #[arg(long, value_name = "FILE")]
        rate_card: Option<PathBuf>,
    },
    /// List the final statements and the drafts of the open periods.
    List {
        /// Only this account's.
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        /// Only this period's (`YYYY-MM`, `YYYY-Www` or `YYYY-MM-DD`, as `billing.period` says).
        #[arg(long, value_name = "YYYY-MM")]
        period: Option<String>,
        /// Output form.
        #[arg(long, value_enum, default_value = "table")]
        format: ReportFormat,
        /// Rate card file (TOML) for the drafts' tiers; default: `worker.rate_card` or the built-in card.
        #[arg(long, value_name = "FILE")]
        rate_card: Option<PathBuf>,
    },
    /// Print or save a final statement.
    Show {
        /// Its number.
        number: u64,
        /// Output form.
        #[arg(long, value_enum, default_value = "json")]
        format: StatementFormat,
        /// Write to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Derive a final statement again and compare; prints each difference (exit 1 when any).
    Verify {
        /// Its number.
        number: u64,
        /// Rate card file (TOML) for the tiers; default: `worker.rate_card` or the built-in card.
        #[arg(long, value_name = "FILE")]
        rate_card: Option<PathBuf>,
    },
}

/// Forms of one statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatementFormat {
    /// The canonical JSON (with its content hash).
    Json,
    /// Its lines, one row each.
    Csv,
    /// For people.
    Pdf,
}

/// `usagebill bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Records for the worker throughput run.
    #[arg(long, default_value_t = 500_000)]
    pub worker_records: u64,
    /// Machines of the latency run, each sending one record a second.
    #[arg(long, default_value_t = 10_000)]
    pub latency_machines: u32,
    /// Seconds of the latency run.
    #[arg(long, default_value_t = 20)]
    pub latency_seconds: u32,
    /// Records in the ledger the reports are timed on.
    #[arg(long, default_value_t = 10_000_000)]
    pub report_records: u64,
    /// Seconds the headless agent is watched for.
    #[arg(long, default_value_t = 30)]
    pub agent_seconds: u32,
    /// Machines of the cost view's fleet run (0 skips it).
    #[arg(long, default_value_t = 10_000)]
    pub fleet_machines: u32,
    /// Days of hourly history per machine in the fleet run.
    #[arg(long, default_value_t = 1)]
    pub fleet_days: u32,
    /// Desktops reading the summary topic at once in the fleet run.
    #[arg(long, default_value_t = 3)]
    pub fleet_desktops: u32,
    /// Only the cost view's fleet run.
    #[arg(long)]
    pub fleet_only: bool,
    /// Only the scale-out runs: a rebalance over a month of retention, and CPU per billed record
    /// by summary role on a three-node cluster.
    #[arg(long, conflicts_with = "fleet_only")]
    pub scale_out_only: bool,
    /// Seconds the fleet is billed live (a record a machine each 1 s, then each 10 s) before
    /// desktops start cold; 0 skips these runs.
    #[arg(long, default_value_t = 150)]
    pub live_warmup_seconds: u64,
    /// Smaller runs (100k records, 1M-record ledger, 10 s each, 1,000 machines) for a quick look.
    #[arg(long)]
    pub quick: bool,
    /// Directory for the temporary ledgers and outboxes (default: the system temp dir).
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
}

/// One `--kafka-property` as typed. Split into key and value later, where a malformed one can be
/// reported without echoing a secret (clap's own errors quote the value); its `Debug` masks the
/// value of a secret key.
#[derive(Clone)]
pub struct PropertyArg(pub String);

impl FromStr for PropertyArg {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(PropertyArg(text.to_owned()))
    }
}

impl fmt::Debug for PropertyArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.split_once('=') {
            Some((key, value)) => write!(f, "{key}={}", crate::kafka::secret::redacted(key, value)),
            None if crate::kafka::secret::is_secret_key(&self.0) => f.write_str(crate::kafka::secret::MASK),
            None => write!(f, "{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn debug_of_the_arguments_masks_a_secret_property() {
        let cli = Cli::try_parse_from([
            "usagebill",
            "worker",
            "--kafka-property",
            "sasl.password=hunter2-secret",
            "--kafka-property",
            "sasl.username=me",
        ])
        .unwrap();
        let shown = format!("{cli:?}");
        assert!(!shown.contains("hunter2") && shown.contains("sasl.username=me"), "{shown}");
    }
}
