//! An error as a person reads it: its message, then each cause's, joined with ": ".
//!
//! usagebill's errors name what failed and return the cause from `source()` instead of printing it
//! too, so walking the chain once shows every cause exactly once. An `anyhow::Error` prints the same
//! with `{:#}`; this is for a typed error that is turned into text (a log line, a GUI status).

use std::error::Error;

/// `error` and its causes, outermost first, joined with ": ".
pub fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read settings {path}")]
    struct Unreadable {
        path: &'static str,
        source: std::io::Error,
    }

    #[test]
    fn each_cause_is_shown_once_in_order() {
        let error = Unreadable { path: "/x/y.toml", source: std::io::Error::other("permission denied") };
        assert_eq!(chain(&error), "cannot read settings /x/y.toml: permission denied");
    }
}
