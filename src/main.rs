//! The binary: parse arguments, hand off to [`usagebill::app`], print errors with their causes.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = usagebill::cli::Cli::parse();
    match usagebill::commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("usagebill: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}
