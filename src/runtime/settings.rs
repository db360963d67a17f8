//! The settings in force for a run, built once: the config file, the environment and the flags
//! merged (see `commands`), checked, and the values the library needs parsed out of them (the
//! threshold rules, the budgets, the accounts). Its methods give the library objects, so nothing downstream
//! parses a config string again. (ripgrep's shape: low-level arguments, then one validated value.)

use std::path::PathBuf;

use super::autostart::Autostart;
use super::notices::NotificationBus;
use crate::billing::budget::{BudgetError, Budgets};
use crate::billing::statement::{Accounts, Cycle};
use crate::config::{Config, ConfigError};
use crate::transmit::rule::ThresholdRule;

/// The configuration in force for this run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// File, env and flags merged. Read-only: change it through [`Settings::with_config`], which
    /// checks and parses again.
    pub config: Config,
    /// The config file it was read from (it may not exist).
    pub config_path: PathBuf,
    /// The data dir.
    pub data_dir: PathBuf,
    rules: Vec<ThresholdRule>,
    budgets: Budgets,
    accounts: Accounts,
    autostart: Option<Autostart>,
    notification_bus: NotificationBus,
}

impl Settings {
    /// Checks `config` (read from `config_path`) and parses what the library needs from it; an
    /// error names the key and the value.
    pub fn new(config: Config, config_path: PathBuf, data_dir: PathBuf) -> Result<Settings, ConfigError> {
        let origin = config_path.display().to_string();
        config.validate(&origin)?;
        let invalid =
            |key: &'static str, value: String, expected: String| ConfigError::Invalid { origin: origin.clone(), key, value, expected };
        let rules = config
            .agent
            .rules
            .iter()
            .map(|rule| ThresholdRule::parse(rule).map_err(|error| invalid("agent.rules", format!("{rule:?}"), error)))
            .collect::<Result<Vec<_>, _>>()?;
        let budgets = Budgets::parse(&config.billing.budgets).map_err(|error| {
            let value = match &error {
                BudgetError::Pattern { pattern, .. } => format!("{pattern:?}"),
                BudgetError::Amount { pattern, amount } => format!("{pattern:?} = {amount:?}"),
            };
            invalid("billing.budgets", value, error.to_string())
        })?;
        let accounts = Accounts::load(config.billing.accounts.as_deref()).map_err(|error| {
            let value = config.billing.accounts.as_ref().map(|path| path.display().to_string()).unwrap_or_default();
            invalid("billing.accounts", value, crate::errors::chain(&error))
        })?;
        Ok(Settings {
            config,
            config_path,
            data_dir,
            rules,
            budgets,
            accounts,
            autostart: Autostart::for_user(),
            notification_bus: NotificationBus::Session,
        })
    }

    /// These settings with another config and data dir (the Settings tab's edits), checked again.
    pub fn with_config(&self, config: Config, data_dir: PathBuf) -> Result<Settings, ConfigError> {
        let next = Settings::new(config, self.config_path.clone(), data_dir)?;
        Ok(Settings { autostart: self.autostart.clone(), notification_bus: self.notification_bus.clone(), ..next })
    }

    /// These settings with the start-at-login entry at another place (a test's own folder).
    pub fn with_autostart(self, autostart: Autostart) -> Settings {
        Settings { autostart: Some(autostart), ..self }
    }

    /// These settings with notifications on another bus (a test's private one).
    pub fn with_notification_bus(self, bus: NotificationBus) -> Settings {
        Settings { notification_bus: bus, ..self }
    }

    /// The bus of the desktop's notification service.
    pub fn notification_bus(&self) -> &NotificationBus {
        &self.notification_bus
    }

    /// This user's start-at-login entry; `None` when there is no home to put it in.
    pub fn autostart(&self) -> Option<&Autostart> {
        self.autostart.as_ref()
    }

    /// The configured threshold rules.
    pub fn rules(&self) -> &[ThresholdRule] {
        &self.rules
    }

    /// The configured budgets.
    pub fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    /// Which account each machine bills to.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Who issues the statements.
    pub fn issuer(&self) -> &str {
        &self.config.billing.issuer
    }

    /// How long billing periods last and how long after its end one closes.
    pub fn cycle(&self) -> Cycle {
        Cycle { length: self.config.billing.period, grace: self.config.billing.grace.0 }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_of(toml: &str) -> Result<Settings, ConfigError> {
        let config: Config = toml::from_str(toml).unwrap();
        Settings::new(config, PathBuf::from("/etc/usagebill.toml"), PathBuf::from("/var/lib/usagebill"))
    }

    #[test]
    fn rules_and_budgets_are_parsed_once_here() {
        let settings = settings_of("[agent]\nrules = [\"cpu_pct > 90 for 30s\"]\n[billing.budgets]\n\"gpu-*\" = \"500.00\"\n").unwrap();
        assert_eq!(settings.rules().len(), 1);
        assert!(settings.budgets().for_machine("gpu-7").is_some());
    }

    #[test]
    fn a_bad_rule_or_budget_names_the_file_the_key_and_the_value() {
        let error = settings_of("[agent]\nrules = [\"cpu_pct >> 90\"]\n").unwrap_err().to_string();
        assert!(error.contains("/etc/usagebill.toml") && error.contains("agent.rules") && error.contains("cpu_pct >> 90"), "{error}");
        let cases = [
            ("[agent]\nrules = [\"cpu > 9 for 1s\"]", "agent.rules", "cpu > 9 for 1s"),
            ("[billing.budgets]\n\"gpu-*\" = \"lots\"", "billing.budgets", "lots"),
            ("[billing.budgets]\n\"gpu-[\" = \"5\"", "billing.budgets", "gpu-["),
        ];
        for (text, key, value) in cases {
            let error = settings_of(text).unwrap_err().to_string();
            assert!(error.contains("/etc/usagebill.toml") && error.contains(key) && error.contains(value), "{error}");
        }
    }
}
