//! Verifying a final statement: its stored bytes must be its canonical form with a matching hash,
//! and deriving it again, from the records it and the statements before it named and with what
//! was issued before it, must give the same statement, field for field.

use serde_json::Value;

use super::close::Issued;
use super::compute::{Sources, drafts};
use super::{Statement, Status};

/// The differences found, each naming the field and both values; none means the statement verifies.
pub fn verify(sources: &Sources<'_>, issued: &Issued, stored: &[u8]) -> Vec<String> {
    let statement = match Statement::parse(stored) {
        Ok(statement) => statement,
        Err(error) => return vec![format!("stored bytes: {error}")],
    };
    let (Some(number), Some(issued_at), Status::Final) = (statement.number, statement.issued_at, statement.status) else {
        return vec!["stored bytes: the statement is not final (no number or issue time)".to_owned()];
    };
    let before = issued.before(number);
    let mut named = before.clone();
    named.add(statement.clone());
    let sources = Sources { named_by: Some(&named), ..*sources };
    let derived = match drafts(&sources, statement.period, &before, Some(&statement.account.id)) {
        Ok(mut derived) if !derived.is_empty() => derived.remove(0).finalized(number, issued_at),
        Ok(_) => return vec![format!("derived: no records of account {} in {} were found", statement.account.id, statement.period)],
        Err(error) => return vec![format!("derived: {error}")],
    };
    let mut differences = Vec::new();
    let stored_value = serde_json::to_value(&statement).expect("a statement serialises");
    let derived_value = serde_json::to_value(&derived).expect("a statement serialises");
    compare("", &stored_value, &derived_value, &mut differences);
    differences
}

/// Appends each path where `stored` and `derived` differ.
fn compare(path: &str, stored: &Value, derived: &Value, differences: &mut Vec<String>) {
    const MOST: usize = 50;
    if differences.len() >= MOST || stored == derived {
        return;
    }
    match (stored, derived) {
        (Value::Object(left), Value::Object(right)) => {
            for (key, value) in left {
                compare(&format!("{path}.{key}"), value, right.get(key).unwrap_or(&Value::Null), differences);
            }
        }
        (Value::Array(left), Value::Array(right)) if left.len() == right.len() => {
            for (index, (one, other)) in left.iter().zip(right).enumerate() {
                compare(&format!("{path}[{index}]"), one, other, differences);
            }
        }
        _ => differences.push(format!("{}: stored {stored}, derived {derived}", path.trim_start_matches('.'))),
    }
}
