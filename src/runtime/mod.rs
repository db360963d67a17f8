//! What the app and the headless commands run: the settings in force, starting the agent on its
//! background threads, the desktop app's supervisor and cost reader behind one handle
//! ([`background::Background`]), and errors described for a person.

mod agent;
pub mod background;
pub mod costs;
mod embedded;
pub mod supervisor;

use std::path::PathBuf;

use crate::config::Config;

pub use self::agent::{AgentOverrides, ReadingSource, RunningAgent, machine_id, start_agent};
pub use self::embedded::{EMBEDDED_TOPIC, EmbeddedTransport};

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
