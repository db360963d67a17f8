//! Wiring: resolves settings (flag > env > file > default) and runs each command.

mod agent;
mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::cli::{Cli, Command, CommonArgs};
use crate::config::{self, Config, validate_broker, validate_topic};

pub use self::agent::{AgentOverrides, ReadingSource, RunningAgent, machine_id, start_agent};

/// The error and its causes, as the CLI prints them and the app shows them, skipping a cause whose
/// words are already there (a typed error that prints its source and also returns it from
/// `source()` would otherwise show SQLite's message once per layer).
pub fn describe_error(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

/// The configuration in force for this run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// File, env and flags merged.
    pub config: Config,
    /// The config file it was read from (it may not exist).
    pub config_path: PathBuf,
    /// The data dir.
    pub data_dir: PathBuf,
}

impl Settings {
    /// Reads the config file and applies env vars and flags over it.
    pub fn resolve(common: &CommonArgs) -> anyhow::Result<Settings> {
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
        Ok(Settings { config, config_path, data_dir })
    }

    /// No brokers: the whole chain runs in this process.
    pub fn embedded(&self) -> bool {
        self.config.kafka.brokers.is_empty()
    }

    /// The ledger file.
    pub fn ledger_path(&self) -> PathBuf {
        self.config.worker.ledger.clone().unwrap_or_else(|| self.data_dir.join("ledger.db"))
    }

    /// The outbox file.
    pub fn outbox_path(&self) -> PathBuf {
        self.data_dir.join("outbox.db")
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        None => commands::desktop(&cli.common, None),
        Some(Command::Agent(args)) if !args.headless => commands::desktop(&cli.common, Some(args)),
        Some(Command::Agent(args)) => commands::headless_agent(&cli.common, args),
        Some(Command::Worker(args)) => commands::worker(&cli.common, args),
        Some(Command::Report(args)) => commands::report(&cli.common, args),
        Some(Command::Simulate(args)) => commands::simulate(&cli.common, args),
        Some(Command::Config(command)) => commands::config(&cli.common, command),
        Some(Command::Bench(args)) => commands::bench(&cli.common, args),
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

#[cfg(test)]
mod tests {
    use super::describe_error;
    use crate::billing::ledger::LedgerError;

    #[test]
    fn an_error_chain_names_sqlites_words_once() {
        let sqlite = rusqlite::Connection::open_in_memory().unwrap().execute("NOT SQL", []).unwrap_err();
        let words = sqlite.to_string();
        let error = anyhow::Error::from(LedgerError::from(sqlite)).context("writing the ledger");
        assert_eq!(format!("{error:#}").matches(&words).count(), 2, "anyhow's own chain repeats it: {error:#}");
        let described = describe_error(&error);
        assert_eq!(described.matches(&words).count(), 1, "{described}");
        assert!(described.starts_with("writing the ledger: ledger: "), "{described}");
    }
}
