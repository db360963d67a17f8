//! One function per command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{init_logging, parse_time, resolve_settings};
use crate::api::{self, ApiServer, ApiSettings, ApiToken};
use crate::billing::cost_engine::{calendar, range};
use crate::billing::ledger::Ledger;
use crate::billing::rate_card::RateCard;
use crate::billing::report::{self, TimeRange};
use crate::billing::{listings, verify};
use crate::cli::{AgentArgs, CommonArgs, ConfigCommand, ReportArgs, SimulateArgs, WorkerArgs};
use crate::config::{self, Config, HumanDuration};
use crate::feed::{self, summary};
use crate::runtime::{AgentOverrides, Publishing, ReadingSource, Settings, run_worker, start_agent};
use crate::simulate::{self, Fleet};
use crate::transmit::agent::{Command, Input, Update};
use crate::transmit::rule::ThresholdRule;
use crate::worker::{self, WorkerMetrics, WorkerOptions};

/// The desktop app.
pub fn desktop(common: &CommonArgs, args: Option<AgentArgs>) -> anyhow::Result<ExitCode> {
    init_logging("info");
    let settings = resolve_settings(common)?;
    let overrides = match &args {
        Some(args) => overrides(args)?,
        None => AgentOverrides::default(),
    };
    crate::gui::run(settings, overrides)?;
    Ok(ExitCode::SUCCESS)
}

fn overrides(args: &AgentArgs) -> anyhow::Result<AgentOverrides> {
    let interval = match args.interval.as_deref() {
        None => None,
        Some("off") => Some(None),
        Some(text) => {
            let interval: HumanDuration = text.parse().with_context(|| "--interval")?;
            Some(Some(interval.at_least_one_second().map_err(|reason| anyhow::anyhow!("--interval {reason}"))?))
        }
    };
    let rules = args
        .rules
        .iter()
        .map(|rule| ThresholdRule::parse(rule).map_err(|error| anyhow::anyhow!("--rule {rule:?}: {error}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(id) = &args.machine_id {
        crate::record::validate_machine_id(id).map_err(|reason| anyhow::anyhow!("--machine-id {id:?}: {reason}"))?;
    }
    Ok(AgentOverrides {
        interval,
        rules,
        paused: args.paused,
        sample_interval: args.sample_interval.map(|interval| interval.0),
        max_window: args.max_window.map(|window| window.0),
        machine_id: args.machine_id.clone(),
    })
}

/// `usagebill agent --headless`.
pub fn headless_agent(common: &CommonArgs, args: AgentArgs) -> anyhow::Result<ExitCode> {
    init_logging("info");
    let settings = resolve_settings(common)?;
    let overrides = overrides(&args)?;
    let source = args.readings.clone().map_or(ReadingSource::Machine, ReadingSource::Script);
    let mode = if settings.embedded() {
        "embedded (no broker; billing into the local ledger)".to_owned()
    } else {
        format!("kafka {}", settings.config.kafka.brokers.join(","))
    };
    let running = start_agent(&settings, &overrides, source, Box::new(log_update))?;
    tracing::info!("agent for machine {} started: {mode}; data in {}", running.machine_id, settings.data_dir.display());
    let stop = worker::stop_on_signal();
    let deadline = args.run_for.map(|run_for| Instant::now() + run_for.0);
    while !stop.load(Ordering::SeqCst) && deadline.is_none_or(|deadline| Instant::now() < deadline) {
        std::thread::sleep(Duration::from_millis(50));
        if running.handle.is_finished() {
            break;
        }
    }
    let _ = running.inputs.send(Input::Command(Command::Stop));
    let status = running.handle.join().map_err(|_| anyhow::anyhow!("the agent thread panicked"))?;
    if let Some(problem) = status.problem {
        tracing::warn!("stopped with: {problem}");
    }
    Ok(ExitCode::SUCCESS)
}

fn log_update(update: Update) {
    if let Update::Status(status) = update {
        tracing::debug!(
            "machine {}: link {}, outbox {}, delivered {}, next seq {}",
            status.machine_id,
            status.link.label(),
            status.outbox_depth,
            status.delivered_total,
            status.next_seq
        );
    }
}

/// `usagebill worker`.
pub fn worker(common: &CommonArgs, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    init_logging("info");
    let mut settings = resolve_settings(common)?;
    if let Some(ledger) = args.ledger {
        settings.config.worker.ledger = Some(ledger);
    }
    if let Some(group) = args.group {
        settings.config.kafka.group_id = group;
    }
    for property in args.kafka_properties.iter().map(|property| property.0.as_str()) {
        // Echo the argument only when it names no secret: `sasl.password hunter2` lacks its `=`.
        let shown = if crate::kafka::secret::is_secret_key(property) { crate::kafka::secret::MASK } else { property };
        let (key, value) = property.split_once('=').with_context(|| format!("--kafka-property {shown:?}: write KEY=VALUE"))?;
        settings.config.kafka.properties.insert(key.trim().to_owned(), value.trim().to_owned());
    }
    anyhow::ensure!(
        !settings.embedded(),
        "the worker reads from Kafka: pass --brokers HOST:PORT (in embedded mode the app bills by itself)"
    );
    let card = RateCard::load(args.rate_card.as_deref().or(settings.config.worker.rate_card.as_deref()))?;
    let metrics = Arc::new(WorkerMetrics::default());
    let api = start_api(args.http.as_deref(), args.api_token_file.as_deref(), &settings, &card, &metrics)?;
    let options = WorkerOptions {
        batch_size: args.batch_size.unwrap_or(settings.config.worker.batch_size).max(1),
        batch_linger: Duration::from_millis(10),
        exit_when_idle: args.exit_when_idle.map(|idle| idle.0),
        metrics: api.as_ref().map(|_| metrics),
    };
    let stop = worker::stop_on_signal();
    let publishing = match (args.no_feed, args.no_summary) {
        (true, _) => Publishing::Nothing,
        (false, true) => Publishing::FeedOnly,
        (false, false) => Publishing::FeedAndSummaries,
    };
    run_worker(&settings, card, &options, publishing, &stop)?;
    Ok(ExitCode::SUCCESS)
}

/// Starts the worker's HTTP API when `--http` or `worker.http` asks for it. The token comes from
/// `--api-token-file`, else `USAGEBILL_API_TOKEN`, else `worker.api_token_file`.
fn start_api(
    http: Option<&str>,
    token_file: Option<&std::path::Path>,
    settings: &Settings,
    card: &RateCard,
    metrics: &Arc<WorkerMetrics>,
) -> anyhow::Result<Option<ApiServer>> {
    let Some(listen) = http.or(settings.config.worker.http.as_deref()) else { return Ok(None) };
    let listen = api::parse_listen_address(listen)?;
    let token = match (token_file, std::env::var("USAGEBILL_API_TOKEN")) {
        (Some(file), _) => Some(ApiToken::from_file(file)?),
        (None, Ok(secret)) if !secret.is_empty() => Some(ApiToken::new(&secret, "USAGEBILL_API_TOKEN")?),
        _ => settings.config.worker.api_token_file.as_deref().map(ApiToken::from_file).transpose()?,
    };
    let api_settings = ApiSettings { listen, token, ledger_path: settings.ledger_path(), metrics: Arc::clone(metrics), card: card.clone() };
    Ok(Some(ApiServer::start(api_settings, Some(&settings.config.kafka))?))
}

/// The ledger-schema file a command reads the billed lines from: with `from_feed`, the cost topic
/// materialised into `feed.db` in the data dir; else `ledger`, or the configured ledger.
pub fn billed_lines(settings: &Settings, ledger: Option<PathBuf>, from_feed: bool) -> anyhow::Result<PathBuf> {
    if !from_feed {
        return Ok(ledger.unwrap_or_else(|| settings.ledger_path()));
    }
    anyhow::ensure!(!settings.embedded(), "--from-feed reads the cost topic from Kafka: pass --brokers HOST:PORT");
    let view = settings.data_dir.join("feed.db");
    let totals = feed::materialise_until_caught_up(&settings.config.kafka, &view)?;
    tracing::info!("cost feed materialised into {}: {totals:?}", view.display());
    Ok(view)
}

/// `usagebill report`.
pub fn report(common: &CommonArgs, args: ReportArgs) -> anyhow::Result<ExitCode> {
    init_logging("warn");
    let settings = resolve_settings(common)?;
    if args.from_summary {
        return report_from_summary(&settings, &args);
    }
    let ledger = Ledger::open_read_only(&billed_lines(&settings, args.ledger, args.from_feed)?)?;
    let card = || RateCard::load(args.rate_card.as_deref().or(settings.config.worker.rate_card.as_deref()));
    if args.verify {
        let verification = verify::verify(&ledger, &card()?)?;
        print!("{}", verification.render());
        // 1, not 2: the check ran and found differences; 2 stays "an error stopped the command".
        return Ok(if verification.differences.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    if args.quarantine {
        print!("{}", listings::render_quarantine(&listings::quarantined(&ledger)?, args.format));
        return Ok(ExitCode::SUCCESS);
    }
    if args.gaps {
        print!("{}", listings::render_gaps(&crate::billing::ledger::gaps(&ledger, None)?, args.format));
        return Ok(ExitCode::SUCCESS);
    }
    let range = TimeRange {
        from: args.from.as_deref().map(|text| parse_time("--from", text)).transpose()?,
        to: args.to.as_deref().map(|text| parse_time("--to", text)).transpose()?,
    };
    let totals = range::totals(&ledger, &card()?, range)?;
    print!("{}", report::render(&totals, args.format));
    Ok(ExitCode::SUCCESS)
}

/// `usagebill report --from-summary`: the Costs tab's table, from the summary topic.
fn report_from_summary(settings: &Settings, args: &ReportArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(!settings.embedded(), "--from-summary reads the summary topic from Kafka: pass --brokers HOST:PORT");
    let card = RateCard::load(args.rate_card.as_deref().or(settings.config.worker.rate_card.as_deref()))?;
    let book = summary::read_until_caught_up(&settings.config.kafka, Some(&card))?;
    let (skipped, reasons) = book.skipped();
    if skipped > 0 {
        eprintln!("skipped {skipped} summary message(s); the latest reason: {}", reasons.last().map_or("", String::as_str));
    }
    let now = crate::record::UnixMillis::now();
    let period = match &args.period {
        Some(text) => calendar::month_of(parse_time("--period", text)?).0,
        None => calendar::month_of(now).0,
    };
    print!("{}", summary::render(&summary::rows(&book, period, now), args.format));
    Ok(ExitCode::SUCCESS)
}

/// `usagebill simulate`.
pub fn simulate(common: &CommonArgs, args: SimulateArgs) -> anyhow::Result<ExitCode> {
    init_logging("warn");
    let settings = resolve_settings(common)?;
    anyhow::ensure!(!settings.embedded(), "simulate produces to Kafka: pass --brokers HOST:PORT");
    anyhow::ensure!(args.machines >= 1, "--machines {}: must be at least 1", args.machines);
    anyhow::ensure!(args.window.0 >= Duration::from_millis(1), "--window {}: must be at least 1ms", args.window);
    let fleet = Fleet {
        machines: args.machines,
        machine_prefix: args.machine_prefix.clone(),
        records: args.records,
        window: args.window.0,
        profile: args.profile,
        seed: args.seed,
        start: parse_time("--start", &args.start)?,
    };
    let last_name = fleet.machine_name(u64::from(fleet.machines) - 1);
    if let Err(reason) = crate::record::validate_machine_id(&last_name) {
        anyhow::bail!("--machine-prefix {:?}: the machines would be named up to {last_name:?}, but {reason}", fleet.machine_prefix);
    }
    let began = Instant::now();
    let variations = simulate::Variations { jitter_pct: args.jitter, malformed: args.malformed, live: args.live };
    let delivered = simulate::produce_with(&settings.config.kafka, &fleet, args.rate, variations)?;
    let seconds = began.elapsed().as_secs_f64();
    eprintln!(
        "delivered {delivered} record(s) from {} machine(s) in {seconds:.2}s ({:.0} records/s)",
        fleet.machines,
        delivered as f64 / seconds.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

/// `usagebill config check|path`.
pub fn config(common: &CommonArgs, command: ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Path => {
            println!("{}", common.config.clone().unwrap_or_else(config::default_config_path).display());
            Ok(ExitCode::SUCCESS)
        }
        ConfigCommand::Check { file } => {
            let path = file.or_else(|| common.config.clone()).unwrap_or_else(config::default_config_path);
            if !path.exists() {
                println!("{}: no such file; the defaults apply", path.display());
                return Ok(ExitCode::SUCCESS);
            }
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let config = Config::parse(&text, &path)?;
            // The same check every command makes at start, rules and budgets included.
            Settings::new(config, path.clone(), config::default_data_dir())?;
            println!("{}: ok", path.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `usagebill bench`.
pub fn bench(common: &CommonArgs, args: crate::cli::BenchArgs) -> anyhow::Result<ExitCode> {
    if let Some(scratch) = &args.scratch
        && !scratch.is_dir()
    {
        anyhow::bail!(
            "--scratch {}: no such directory (the bench writes its ledgers and data dirs there; create it first)",
            scratch.display()
        );
    }
    init_logging("warn");
    let settings = resolve_settings(common)?;
    let quick = args.quick;
    let options = crate::bench::BenchOptions {
        worker_records: if quick { 100_000 } else { args.worker_records },
        latency_machines: args.latency_machines,
        latency_seconds: if quick { 10 } else { args.latency_seconds },
        report_records: if quick { 1_000_000 } else { args.report_records },
        agent_seconds: if quick { 10 } else { args.agent_seconds },
        fleet: (args.fleet_machines > 0).then_some(crate::bench::FleetSize {
            machines: if quick { args.fleet_machines.min(1_000) } else { args.fleet_machines },
            days: args.fleet_days.max(1),
            desktops: args.fleet_desktops.max(1),
            live_warmup: std::time::Duration::from_secs(if quick { args.live_warmup_seconds.min(90) } else { args.live_warmup_seconds }),
        }),
        scratch: args.scratch.unwrap_or_else(std::env::temp_dir),
        binary: std::env::current_exe().context("locating the usagebill binary")?,
    };
    let broker = crate::bench::BenchBroker::start(&settings.config.kafka.brokers)?;
    let figures = if args.fleet_only {
        crate::bench::run_fleet(&options, &broker)?
    } else if args.scale_out_only {
        crate::bench::scale_out(&options, &broker)?
    } else {
        crate::bench::run(&options, &broker)?
    };
    println!("{}", crate::bench::render(&figures));
    Ok(ExitCode::SUCCESS)
}
