//! The edge: turns the parsed command line into settings (flag > env > file > default) and runs
//! each command; one function per command in `handlers`.

mod forecast;
mod handlers;
mod statement;

use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::cli::{Cli, Command, CommonArgs};
use crate::config::{self, Config, validate_broker, validate_topic};
use crate::runtime::Settings;

/// Reads the config file and applies env vars and flags over it.
pub fn resolve_settings(common: &CommonArgs) -> anyhow::Result<Settings> {
    let config_path = common.config.clone().unwrap_or_else(config::default_config_path);
    let mut config = Config::load(&config_path)?;
    if let Some(brokers) = &common.brokers {
        config.kafka.brokers = brokers.split(',').map(str::trim).filter(|broker| !broker.is_empty()).map(str::to_owned).collect();
        for broker in &config.kafka.brokers {
            if let Err(expected) = validate_broker(broker) {
                bail!("--brokers / USAGEBILL_BROKERS: {broker:?} is not {expected}");
            }
        }
    }
    if let Some(topic) = &common.topic {
        validate_topic(topic).map_err(|expected| anyhow::anyhow!("--topic / USAGEBILL_TOPIC: {topic:?}: {expected}"))?;
        config.kafka.topic = topic.clone();
    }
    if let Some(topic) = &common.cost_topic {
        validate_topic(topic).map_err(|expected| anyhow::anyhow!("--cost-topic / USAGEBILL_COST_TOPIC: {topic:?}: {expected}"))?;
        config.kafka.cost_topic = topic.clone();
    }
    let data_dir = common.data_dir.clone().or_else(|| config.data_dir.clone()).unwrap_or_else(config::default_data_dir);
    Ok(Settings::new(config, config_path, data_dir)?)
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        None => handlers::desktop(&cli.common, None),
        Some(Command::Agent(args)) if !args.headless => handlers::desktop(&cli.common, Some(args)),
        Some(Command::Agent(args)) => handlers::headless_agent(&cli.common, args),
        Some(Command::Worker(args)) => handlers::worker(&cli.common, args),
        Some(Command::Report(args)) => handlers::report(&cli.common, args),
        Some(Command::Simulate(args)) => handlers::simulate(&cli.common, args),
        Some(Command::Config(command)) => handlers::config(&cli.common, command),
        Some(Command::Bench(args)) => handlers::bench(&cli.common, args),
        Some(Command::Statement(command)) => statement::run(&cli.common, command),
        Some(Command::Forecast(args)) => forecast::run(&cli.common, args),
    }
}

/// Logs to stderr at `default_level` unless `RUST_LOG` says otherwise.
pub fn init_logging(default_level: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colours only for a terminal: in a log file or a journal the escape codes are noise.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour).try_init();
}

fn parse_time(flag: &str, text: &str) -> anyhow::Result<crate::record::UnixMillis> {
    crate::record::UnixMillis::parse_rfc3339(text)
        .with_context(|| format!("{flag} {text:?} is not an RFC 3339 time (e.g. 2026-11-01T00:00:00Z)"))
}
