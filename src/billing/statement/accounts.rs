//! Which account each machine bills to: a TOML file of versions, each effective from a date, each
//! listing accounts with the machines they hold (exact ids, or prefixes ending in `*`). A period
//! is billed with the version in effect at its start. A machine no account names falls in the
//! default account, which statements list as such.
//!
//! ```toml
//! [[version]]
//! effective_from = "2026-01-01T00:00:00Z"
//!
//! [[version.account]]
//! id = "acme"
//! name = "Acme Corp"
//! machines = ["build-01", "lab-*"]
//! ```
//!
//! An exact id wins over a prefix. Two accounts may not claim the same id, nor prefixes one of which
//! starts the other: the file is refused, naming both lines.

use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::record::{UnixMillis, validate_machine_id};

/// The account of machines no account names.
pub const DEFAULT_ACCOUNT_ID: &str = "unassigned";

/// An account: who a statement is addressed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Stable id (letters, digits, '.', '_' and '-').
    pub id: String,
    /// Display name.
    pub name: String,
}

impl Account {
    /// The account of machines no account names.
    pub fn unassigned() -> Account {
        Account { id: DEFAULT_ACCOUNT_ID.to_owned(), name: "Machines without an account".to_owned() }
    }
}

/// A machine pattern as written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    Prefix(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    effective_from: UnixMillis,
    /// Each pattern with the index of its account in `accounts`.
    patterns: Vec<(Pattern, usize)>,
    accounts: Vec<Account>,
}

/// The accounts file, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounts {
    /// Oldest first.
    versions: Vec<Version>,
}

/// An accounts file that cannot be used; names the file, the line and the value.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// The file cannot be read.
    #[error("cannot read the accounts file {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("accounts file {source_name}, line {line}: {reason}")]
    Invalid {
        /// The file.
        source_name: String,
        /// The line (1-based).
        line: usize,
        /// What is wrong, naming the value.
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsFile {
    #[serde(rename = "version")]
    versions: Vec<VersionFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionFile {
    effective_from: Spanned<String>,
    #[serde(rename = "account", default)]
    accounts: Vec<AccountFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountFile {
    id: Spanned<String>,
    name: String,
    #[serde(default)]
    machines: Vec<Spanned<String>>,
}

impl Accounts {
    /// The accounts in `path`; with none, every machine is in the default account.
    pub fn load(path: Option<&Path>) -> Result<Accounts, AccountsError> {
        let Some(path) = path else { return Ok(Accounts::default()) };
        let text = std::fs::read_to_string(path).map_err(|source| AccountsError::Read { path: path.display().to_string(), source })?;
        Accounts::parse(&text, &path.display().to_string())
    }

    /// Parses and checks the file's text; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Accounts, AccountsError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let fail =
            |offset: usize, reason: String| AccountsError::Invalid { source_name: source_name.to_owned(), line: line_of(offset), reason };
        let file: AccountsFile = toml::from_str(text).map_err(|error| {
            let offset = error.span().map_or(0, |span| span.start);
            fail(offset, error.message().to_owned())
        })?;
        let mut versions: Vec<Version> = Vec::new();
        for version in file.versions {
            let effective_from = UnixMillis::parse_rfc3339(version.effective_from.get_ref()).ok_or_else(|| {
                let reason = format!(
                    "effective_from = {:?} is not an RFC 3339 time, e.g. \"2026-01-01T00:00:00Z\"",
                    version.effective_from.get_ref()
                );
                fail(version.effective_from.span().start, reason)
            })?;
            if let Some(before) = versions.last().filter(|before| before.effective_from >= effective_from) {
                let reason = format!(
                    "effective_from = {:?} is not after the version before it ({})",
                    version.effective_from.get_ref(),
                    before.effective_from
                );
                return Err(fail(version.effective_from.span().start, reason));
            }
            // Each pattern with its account and the offset it was written at, to name both lines of a clash.
            let mut claimed: Vec<(Pattern, usize, usize)> = Vec::new();
            let mut accounts = Vec::new();
            for account in version.accounts {
                let id = account.id.get_ref();
                if let Err(reason) = validate_machine_id(id) {
                    return Err(fail(account.id.span().start, format!("account id {id:?}: {}", reason.replace("machine id", "an id"))));
                }
                if id == DEFAULT_ACCOUNT_ID || accounts.iter().any(|known: &Account| known.id == *id) {
                    return Err(fail(account.id.span().start, format!("account id {id:?} is used twice (or is the default account's)")));
                }
                let index = accounts.len();
                for machine in &account.machines {
                    let pattern = parse_pattern(machine.get_ref()).map_err(|reason| fail(machine.span().start, reason))?;
                    if let Some((_, other, at)) = claimed.iter().find(|(known, other, _)| *other != index && clashes(known, &pattern)) {
                        let reason = format!(
                            "machines {:?} of account {id:?} overlap a pattern of account {:?} on line {}: a machine must belong to one account",
                            machine.get_ref(),
                            accounts[*other].id,
                            line_of(*at)
                        );
                        return Err(fail(machine.span().start, reason));
                    }
                    claimed.push((pattern, index, machine.span().start));
                }
                accounts.push(Account { id: id.clone(), name: account.name });
            }
            let patterns = claimed.into_iter().map(|(pattern, index, _)| (pattern, index)).collect();
            versions.push(Version { effective_from, patterns, accounts });
        }
        Ok(Accounts { versions })
    }

    /// The account `machine_id` bills to in the period starting at `period_start`.
    pub fn account_of(&self, machine_id: &str, period_start: UnixMillis) -> Account {
        let Some(version) = self.versions.iter().rev().find(|version| version.effective_from <= period_start) else {
            return Account::unassigned();
        };
        let exact = version.patterns.iter().find(|(pattern, _)| matches!(pattern, Pattern::Exact(id) if id == machine_id));
        let prefix = || {
            version
                .patterns
                .iter()
                .find(|(pattern, _)| matches!(pattern, Pattern::Prefix(prefix) if machine_id.starts_with(prefix.as_str())))
        };
        exact.or_else(prefix).map_or_else(Account::unassigned, |(_, index)| version.accounts[*index].clone())
    }
}

fn parse_pattern(text: &str) -> Result<Pattern, String> {
    let (body, prefix) = match text.strip_suffix('*') {
        Some(body) => (body, true),
        None => (text, false),
    };
    if prefix && body.is_empty() {
        return Ok(Pattern::Prefix(String::new()));
    }
    validate_machine_id(body).map_err(|reason| {
        format!("machines {text:?} is not a machine id or a prefix ending in '*' ({reason}); other glob forms are not supported")
    })?;
    Ok(if prefix { Pattern::Prefix(body.to_owned()) } else { Pattern::Exact(body.to_owned()) })
}

/// Whether two accounts' patterns could claim one machine (an exact id wins over a prefix, so an
/// exact id and a prefix never clash).
fn clashes(a: &Pattern, b: &Pattern) -> bool {
    match (a, b) {
        (Pattern::Exact(a), Pattern::Exact(b)) => a == b,
        (Pattern::Prefix(a), Pattern::Prefix(b)) => a.starts_with(b.as_str()) || b.starts_with(a.as_str()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_VERSIONS: &str = r#"
[[version]]
effective_from = "2026-01-01T00:00:00Z"

[[version.account]]
id = "acme"
name = "Acme Corp"
machines = ["build-01", "lab-*"]

[[version.account]]
id = "beta"
name = "Beta Ltd"
machines = ["lab-gpu", "ci-*"]

[[version]]
effective_from = "2026-06-01T00:00:00Z"

[[version.account]]
id = "beta"
name = "Beta Ltd"
machines = ["*"]
"#;

    #[test]
    fn machines_map_to_accounts_by_exact_id_then_prefix_in_the_version_of_the_period() {
        let accounts = Accounts::parse(TWO_VERSIONS, "accounts.toml").unwrap();
        let march = UnixMillis::parse_rfc3339("2026-03-01T00:00:00Z").unwrap();
        assert_eq!(accounts.account_of("build-01", march).id, "acme");
        assert_eq!(accounts.account_of("lab-7", march).id, "acme");
        assert_eq!(accounts.account_of("lab-gpu", march).id, "beta", "an exact id wins over a prefix");
        assert_eq!(accounts.account_of("desk-3", march), Account::unassigned());
        let july = UnixMillis::parse_rfc3339("2026-07-01T00:00:00Z").unwrap();
        assert_eq!(accounts.account_of("build-01", july).id, "beta");
        let before = UnixMillis::parse_rfc3339("2025-12-01T00:00:00Z").unwrap();
        assert_eq!(accounts.account_of("build-01", before), Account::unassigned());
        assert_eq!(Accounts::load(None).unwrap().account_of("x", july), Account::unassigned());
    }

    #[test]
    fn a_machine_claimed_by_two_accounts_is_refused_naming_both_lines() {
        let text = "[[version]]\neffective_from = \"2026-01-01T00:00:00Z\"\n[[version.account]]\nid = \"a\"\nname = \"A\"\nmachines = [\"lab-*\"]\n[[version.account]]\nid = \"b\"\nname = \"B\"\nmachines = [\"lab-g*\"]\n";
        let error = Accounts::parse(text, "accounts.toml").unwrap_err().to_string();
        assert!(error.starts_with("accounts file accounts.toml, line 10:"), "{error}");
        assert!(error.contains("\"lab-g*\"") && error.contains("account \"a\" on line 6"), "{error}");
    }

    #[test]
    fn bad_dates_ids_and_patterns_name_the_line_and_value() {
        let bad_date = "[[version]]\neffective_from = \"January\"\n";
        let error = Accounts::parse(bad_date, "f").unwrap_err().to_string();
        assert!(error.contains("line 2") && error.contains("\"January\""), "{error}");
        let out_of_order =
            "[[version]]\neffective_from = \"2026-02-01T00:00:00Z\"\n[[version]]\neffective_from = \"2026-01-01T00:00:00Z\"\n";
        let error = Accounts::parse(out_of_order, "f").unwrap_err().to_string();
        assert!(error.contains("line 4") && error.contains("not after"), "{error}");
        let glob = "[[version]]\neffective_from = \"2026-01-01T00:00:00Z\"\n[[version.account]]\nid = \"a\"\nname = \"A\"\nmachines = [\"lab-?\"]\n";
        let error = Accounts::parse(glob, "f").unwrap_err().to_string();
        assert!(error.contains("line 6") && error.contains("\"lab-?\""), "{error}");
        let twice = "[[version]]\neffective_from = \"2026-01-01T00:00:00Z\"\n[[version.account]]\nid = \"a\"\nname = \"A\"\n[[version.account]]\nid = \"a\"\nname = \"A2\"\n";
        let error = Accounts::parse(twice, "f").unwrap_err().to_string();
        assert!(error.contains("line 7") && error.contains("twice"), "{error}");
        let unknown = "[[version]]\neffective_from = \"2026-01-01T00:00:00Z\"\ncolour = 1\n";
        let error = Accounts::parse(unknown, "f").unwrap_err().to_string();
        assert!(error.contains("line 3") && error.contains("colour"), "{error}");
    }
}
