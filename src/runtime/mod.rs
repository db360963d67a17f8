//! What the app and the headless commands run: the settings in force, starting the agent on its
//! background threads, and the desktop app's supervisor and cost reader behind one handle
//! ([`background::Background`]).

mod agent;
pub mod autostart;
pub mod background;
pub mod cost_reader;
pub mod cost_snapshot;
mod embedded;
pub mod notices;
mod settings;
pub mod statement_files;
pub mod statement_reader;
pub mod statements;
pub mod supervisor;
pub mod tray;
mod worker;

pub use self::agent::{AgentOverrides, ReadingSource, RunningAgent, machine_id, start_agent};
pub use self::embedded::{EMBEDDED_TOPIC, EmbeddedTransport};
pub use self::settings::Settings;
pub use self::worker::{Publishing, run_worker};

#[cfg(test)]
mod tests {
    use crate::billing::ledger::LedgerError;

    /// A ledger error from a real SQLite failure, behind an anyhow context, as the CLI prints it:
    /// SQLite's words once, after the words of each layer above it.
    #[test]
    fn an_error_chain_names_sqlites_words_once() {
        let sqlite = rusqlite::Connection::open_in_memory().unwrap().execute("NOT SQL", []).unwrap_err();
        let words = sqlite.to_string();
        let ledger = LedgerError::from(sqlite);
        assert_eq!(crate::errors::chain(&ledger).matches(&words).count(), 1, "{}", crate::errors::chain(&ledger));
        let error = anyhow::Error::from(ledger).context("writing the ledger");
        let shown = format!("{error:#}");
        assert_eq!(shown.matches(&words).count(), 1, "{shown}");
        assert!(shown.starts_with(&format!("writing the ledger: SQLite failed on the ledger: {words}")), "{shown}");
    }
}
