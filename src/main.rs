//! The binary: parse arguments, hand off to [`usagebill::app`], print errors with their causes.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = usagebill::cli::Cli::parse();
    match usagebill::app::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("usagebill: {}", describe(&error));
            std::process::ExitCode::from(2)
        }
    }
}

/// The error and its causes, skipping a cause whose words are already printed (SQLite's message is
/// repeated by each layer that wraps it).
fn describe(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}
