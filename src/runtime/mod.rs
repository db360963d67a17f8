//! What the app and the headless commands run: the settings in force, starting the agent on its
//! background threads, the desktop app's supervisor and cost reader behind one handle
//! ([`background::Background`]), and errors described for a person.

mod agent;
pub mod background;
pub mod cost_reader;
mod embedded;
mod settings;
pub mod statement_reader;
pub mod statements;
pub mod supervisor;
mod worker;

pub use self::agent::{AgentOverrides, ReadingSource, RunningAgent, machine_id, start_agent};
pub use self::embedded::{EMBEDDED_TOPIC, EmbeddedTransport};
pub use self::settings::Settings;
pub use self::worker::run_worker;

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
