//! The forms a statement is delivered in besides its canonical JSON, each rendered from the one
//! [`Statement`] so no form can say something the JSON does not: [`csv`] for spreadsheets (one row
//! per line and a totals row) and [`pdf`] for people (the lines, the metering health and the
//! totals on A4 pages, with the canonical JSON attached and its hash in the footer).

pub mod csv;
pub mod pdf;
mod pdf_file;
mod pdf_layout;

use super::{Statement, Status};
use crate::record::UnixMillis;

pub use self::csv::statement_csv;
pub use self::pdf::statement_pdf;

/// The name a statement's files go by, without an extension: `statement-42` for a final statement,
/// `statement-draft-<account>-<period>` for a draft (which has no number yet). Account ids hold only
/// letters, digits, '.', '_' and '-', so the name is safe in a file system and a header.
pub fn file_stem(statement: &Statement) -> String {
    match (statement.status, statement.number) {
        (Status::Final, Some(number)) => format!("statement-{number}"),
        _ => format!("statement-draft-{}-{}", statement.account.id, statement.period),
    }
}

/// What a person reads as the statement's number: `42`, or for a draft when it becomes final.
pub fn number_text(statement: &Statement) -> String {
    match (statement.status, statement.number) {
        (Status::Final, Some(number)) => number.to_string(),
        _ => format!("DRAFT \u{2013} closes at {}", when(statement.closes_at)),
    }
}

/// An instant for people: `2026-12-02 00:00:00 UTC` (statements are issued on whole seconds; the
/// milliseconds show only when they are not zero).
pub fn when(instant: UnixMillis) -> String {
    let text = instant.to_string();
    let Some(body) = text.strip_suffix('Z') else { return text };
    let body = body.strip_suffix(".000").unwrap_or(body);
    format!("{} UTC", body.replacen('T', " ", 1))
}

#[cfg(test)]
mod tests;
