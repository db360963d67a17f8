//! Configuration: one TOML file in the OS config dir, overridden by `USAGEBILL_*` env vars and flags.
//!
//! Every key is documented in `config.example.toml`; unknown keys are rejected.

mod notifications;
mod suggest;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use self::notifications::{NotificationsConfig, QuietHours};
pub use crate::duration::{HumanDuration, PeriodLength};
pub use crate::kafka::KafkaConfig;
use crate::kafka::secret;

/// Why a configuration cannot be used; names the file, the key and the value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What TOML or the schema said, with line and key.
        message: String,
    },
    /// A value parses but is out of range.
    #[error("{origin}: `{key}` = {value}: {expected}")]
    Invalid {
        /// Where the value came from (a file path, a flag or an env var).
        origin: String,
        /// The dotted key.
        key: &'static str,
        /// The offending value.
        value: String,
        /// The expected form.
        expected: String,
    },
    /// The config file cannot be written.
    #[error("cannot write config file {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the outbox, the ledger and the machine id live; default: the OS data dir.
    pub data_dir: Option<PathBuf>,
    /// The agent: sampling and sending.
    pub agent: AgentConfig,
    /// The broker; no brokers means the embedded, one-process mode.
    pub kafka: KafkaConfig,
    /// The billing worker.
    pub worker: WorkerConfig,
    /// Billing rules beyond the rate card: budgets, accounts and statements.
    pub billing: BillingConfig,
    /// What the desktop app tells the person through desktop notifications.
    pub notifications: NotificationsConfig,
    /// How the desktop app's window behaves.
    pub desktop: DesktopConfig,
}

/// `[desktop]`: how the desktop app's window behaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DesktopConfig {
    /// Closing the window keeps the agent running in the tray, where there is a tray host (without
    /// one closing quits, whatever this says). Quit from the tray's menu.
    pub close_to_tray: bool,
}

impl Default for DesktopConfig {
    fn default() -> Self {
        DesktopConfig { close_to_tray: true }
    }
}

/// `[billing]`: rules applied to what is billed, and how it ends in statements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BillingConfig {
    /// The accounts file (TOML): which account each machine bills to; none puts every machine in
    /// the default account. See docs/billing.md.
    pub accounts: Option<PathBuf>,
    /// Who issues the statements (their header; numbers are gapless per issuer).
    pub issuer: String,
    /// How long a billing period lasts: `"month"` (calendar months, the default), `"week"` (ISO
    /// weeks from Monday) or `"day"`, in UTC. Fixed per issuer once a period has closed.
    pub period: PeriodLength,
    /// How long after its end a period closes; records of the period arriving later are billed
    /// as adjustments on the next statement.
    pub grace: HumanDuration,
    /// `[billing.budgets]`: machine id or glob → budget per period (a calendar month, UTC) as a
    /// decimal string in the rate card's currency, e.g. `"gpu-*" = "500.00"`. When a machine's
    /// projected cost for the period crosses its budget the worker logs an alert, stores it and
    /// publishes it on the cost feed. The most specific pattern wins (an exact id beats a glob).
    pub budgets: BTreeMap<String, String>,
}

impl Default for BillingConfig {
    fn default() -> Self {
        BillingConfig {
            accounts: None,
            issuer: "usagebill".into(),
            period: PeriodLength::Month,
            grace: HumanDuration::from_secs(86_400),
            budgets: BTreeMap::new(),
        }
    }
}

/// `[agent]`: what the desktop app and `usagebill agent` do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Stable id of this machine; default: hostname plus a random suffix kept in the data dir.
    pub machine_id: Option<String>,
    /// Time between readings.
    pub sample_interval: HumanDuration,
    /// Auto-send every this long; absent means only send-now, thresholds and `max_window` close windows.
    pub send_interval: Option<HumanDuration>,
    /// Longest window; reached while paused or idle, the window closes into the outbox.
    pub max_window: HumanDuration,
    /// Start paused: windows close into the outbox and nothing is sent until resumed.
    pub paused: bool,
    /// Threshold rules such as `cpu_pct > 90 for 30s`.
    pub rules: Vec<String>,
    /// After a rule fires, it cannot fire again for this long.
    pub rule_cooldown: HumanDuration,
    /// Largest outbox file; past it the oldest waiting windows are merged, never dropped.
    pub outbox_max_bytes: u64,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            machine_id: None,
            sample_interval: HumanDuration::from_secs(1),
            send_interval: Some(HumanDuration::from_secs(10)),
            max_window: HumanDuration::from_secs(60),
            paused: false,
            rules: Vec::new(),
            rule_cooldown: HumanDuration::from_secs(60),
            outbox_max_bytes: 1 << 30,
        }
    }
}

/// `[worker]`: the billing worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Ledger file; default: `ledger.db` in the data dir.
    pub ledger: Option<PathBuf>,
    /// Rate card file (TOML); default: the built-in card.
    pub rate_card: Option<PathBuf>,
    /// Most records written in one ledger transaction.
    pub batch_size: usize,
    /// Run a billing worker inside the desktop app even when brokers are configured.
    pub embedded: bool,
    /// Serve the read-only HTTP API on this address (`HOST:PORT`, or `PORT` for 127.0.0.1); absent: off.
    pub http: Option<String>,
    /// File holding the HTTP API's bearer token; required to listen off loopback.
    pub api_token_file: Option<PathBuf>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig { ledger: None, rate_card: None, batch_size: 10_000, embedded: false, http: None, api_token_file: None }
    }
}

impl Config {
    /// Reads `path`; a missing file is the default configuration.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => return Err(ConfigError::Read { path: path.to_owned(), source }),
        };
        Config::parse(&text, path)
    }

    /// Parses and validates TOML text that came from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        // TOML's errors quote the offending line and value; scrubbing keeps a typo on a secret's
        // line from printing the secret (`config check`, the app's start-up error).
        let config: Config = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: path.to_owned(),
            message: secret::scrub(&suggest::with_suggestion(&error.to_string()), text),
        })?;
        config.validate(&path.display().to_string())?;
        Ok(config)
    }

    /// Writes the configuration as TOML.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let text = toml::to_string_pretty(self).expect("the config always serialises");
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            crate::files::replace(path, text.as_bytes())
        };
        write().map_err(|source| ConfigError::Write { path: path.to_owned(), source })
    }

    /// Checks every value's range; `origin` names where the values came from. (Rules and budgets,
    /// which need the library's parsers, are checked and parsed once by `runtime::Settings`.)
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |key: &'static str, value: &dyn std::fmt::Display, expected: &str| ConfigError::Invalid {
            origin: origin.to_owned(),
            key,
            value: value.to_string(),
            expected: expected.to_owned(),
        };
        if let Some(id) = &self.agent.machine_id {
            crate::record::validate_machine_id(id).map_err(|reason| bad("agent.machine_id", &format!("{id:?}"), reason))?;
        }
        let agent = &self.agent;
        if agent.sample_interval.0 < std::time::Duration::from_millis(200) {
            return Err(bad("agent.sample_interval", &agent.sample_interval, "at least 200ms (CPU readings closer are not measured)"));
        }
        if let Some(interval) = agent.send_interval
            && interval.at_least_one_second().is_err()
        {
            return Err(bad("agent.send_interval", &interval, "at least 1s"));
        }
        if agent.max_window.at_least_one_second().is_err() || agent.max_window.0 > std::time::Duration::from_secs(86_400) {
            return Err(bad("agent.max_window", &agent.max_window, "between 1s and 1d"));
        }
        if agent.outbox_max_bytes < 1 << 20 {
            return Err(bad("agent.outbox_max_bytes", &agent.outbox_max_bytes, "at least 1048576 (1 MiB)"));
        }
        for broker in &self.kafka.brokers {
            validate_broker(broker).map_err(|expected| bad("kafka.brokers", &format!("{broker:?}"), expected))?;
        }
        for (key, name) in [("kafka.topic", &self.kafka.topic), ("kafka.cost_topic", &self.kafka.cost_topic)] {
            validate_topic(name).map_err(|expected| bad(key, &format!("{name:?}"), expected))?;
        }
        if !(1..=10_000).contains(&self.kafka.partitions) {
            return Err(bad("kafka.partitions", &self.kafka.partitions, "between 1 and 10000"));
        }
        if let Some(factor) = self.kafka.replication_factor
            && !(1..=32).contains(&factor)
        {
            return Err(bad("kafka.replication_factor", &factor, "between 1 and 32, or left out for the broker's default"));
        }
        if self.kafka.group_id.trim().is_empty() {
            return Err(bad("kafka.group_id", &"\"\"", "a non-empty consumer group name"));
        }
        if self.kafka.message_timeout.at_least_one_second().is_err() {
            return Err(bad("kafka.message_timeout", &self.kafka.message_timeout, "at least 1s"));
        }
        if self.billing.issuer.trim().is_empty() {
            return Err(bad("billing.issuer", &"\"\"", "a non-empty name for the statements' header"));
        }
        if self.billing.grace.0 > std::time::Duration::from_secs(90 * 86_400) {
            return Err(bad("billing.grace", &self.billing.grace, "at most 90d"));
        }
        if self.notifications.outage_after.at_least_one_second().is_err() {
            return Err(bad("notifications.outage_after", &self.notifications.outage_after, "at least 1s"));
        }
        if !(1..=1_000_000).contains(&self.worker.batch_size) {
            return Err(bad("worker.batch_size", &self.worker.batch_size, "between 1 and 1000000"));
        }
        Ok(())
    }
}

/// A broker is `host:port` with a non-empty host and a port from 1 to 65535.
pub fn validate_broker(broker: &str) -> Result<(), &'static str> {
    let expected = "host:port, e.g. localhost:9092";
    let (host, port) = broker.rsplit_once(':').ok_or(expected)?;
    let host_ok = !host.is_empty() && !host.contains(|c: char| c.is_whitespace() || c == ',' || c == '/');
    let port_ok = port.parse::<u16>().is_ok_and(|port| port > 0);
    if host_ok && port_ok { Ok(()) } else { Err(expected) }
}

/// Kafka topic names: 1–249 characters of `A-Z a-z 0-9 . _ -`.
pub fn validate_topic(name: &str) -> Result<(), &'static str> {
    let ok = !name.is_empty() && name.len() <= 249 && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok { Ok(()) } else { Err("1 to 249 characters of letters, digits, '.', '_' and '-'") }
}

impl ConfigError {
    /// The dotted key at fault, when the error is about one value.
    pub fn key(&self) -> Option<&'static str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// The default config file: `usagebill/config.toml` in the OS config dir.
pub fn default_config_path() -> PathBuf {
    project_dirs().map_or_else(|| PathBuf::from("usagebill.toml"), |dirs| dirs.config_dir().join("config.toml"))
}

/// The default data dir: the OS data dir of usagebill.
pub fn default_data_dir() -> PathBuf {
    project_dirs().map_or_else(|| PathBuf::from("usagebill-data"), |dirs| dirs.data_dir().to_owned())
}

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "usagebill")
}

#[cfg(test)]
mod tests;
