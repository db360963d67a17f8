//! Which configuration values are secrets, and how to show them without showing the secret.
//!
//! One place decides, so the Settings tab, `Debug` output and error messages agree: a value is
//! secret when its key says so ([`is_secret_key`]), and a secret is shown as [`MASK`] unless it is a
//! `${env:NAME}` / `${file:PATH}` reference, which only says where the secret lives.

use std::collections::BTreeMap;
use std::fmt;

/// What a secret is shown as. Always the same length, so it tells nothing about the secret.
pub const MASK: &str = "••••••";

/// Whether the value of property or config `key` is a secret (a password, a private key, a client
/// secret, a token). Errs on the side of masking: a masked non-secret costs a click to retype it, a
/// secret shown in clear cannot be taken back.
///
/// Matches, ignoring case: anything with `password`, `passphrase` or `secret` in it
/// (`sasl.password`, `ssl.key.password`, `ssl.keystore.password`, `sasl.oauthbearer.client.secret`);
/// private keys written inline (`ssl.key.pem`, `*.private.key.pem`); `sasl.oauthbearer.config`,
/// whose free-form text may hold a token; and keys whose last word is `token` (`api_token`), but
/// not `*_token_file` or `*.token.endpoint.url`, which say where a token is, not what it is.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.trim().trim_matches(|c| c == '"' || c == '\'').to_ascii_lowercase();
    let last_word = key.rsplit(['.', '_', '-']).next().unwrap_or_default();
    ["password", "passphrase", "secret"].iter().any(|word| key.contains(word))
        || (key.ends_with(".pem") && key.contains("key"))
        || key == "sasl.oauthbearer.config"
        || last_word == "token"
}

/// Whether `value` is a `${env:NAME}` or `${file:PATH}` reference rather than a secret itself.
/// Showing a reference is safe: it names a variable or a file, and reading either takes access to
/// the machine. Anything else in `${…}` is not a reference (and is refused when Kafka is set up).
pub fn is_reference(value: &str) -> bool {
    let value = value.trim();
    value
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
        .is_some_and(|inner| inner.strip_prefix("env:").or_else(|| inner.strip_prefix("file:")).is_some_and(|name| !name.is_empty()))
}

/// `value` as it may be shown for `key`: itself, or [`MASK`] when it is a secret in clear.
pub fn redacted<'a>(key: &str, value: &'a str) -> &'a str {
    if is_secret_key(key) && !is_reference(value) { MASK } else { value }
}

/// `Debug` for a property map (`[kafka.properties]`) with every secret masked.
pub struct RedactedProperties<'a>(pub &'a BTreeMap<String, String>);

impl fmt::Debug for RedactedProperties<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter().map(|(key, value)| (key, redacted(key, value)))).finish()
    }
}

/// `text` with every secret written as `KEY = VALUE` in `source` (TOML) masked out.
///
/// For error messages about `source`: TOML's errors quote the offending line, and a type error
/// quotes the value (``invalid type: integer `1234` ``), so a mistake on a secret's line would put
/// the secret in a log or on the screen. Each secret's value is searched for as written and without
/// its quotes, whether it has a line of its own or sits in a one-line inline table
/// (`properties = { "sasl.password" = "…" }`). Multi-line strings are not followed.
pub fn scrub(text: &str, source: &str) -> String {
    let mut scrubbed = text.to_owned();
    for (key, value) in source.lines().flat_map(pairs) {
        let value = value.trim();
        if !is_secret_key(key) || is_reference(value.trim_matches(|c| c == '"' || c == '\'')) {
            continue;
        }
        // As written, between its quotes (a comment may follow), and with any quotes trimmed (an
        // escaped quote inside cuts the second form short); the longest first.
        let between_quotes = match value.chars().next() {
            Some(quote @ ('"' | '\'')) => value[1..].split(quote).next().unwrap_or_default(),
            _ => value,
        };
        let unquoted = value.trim_matches(|c| c == '"' || c == '\'');
        let mut forms = [value, unquoted, between_quotes];
        forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
        for written in forms.into_iter().filter(|form| !form.is_empty()) {
            scrubbed = scrubbed.replace(written, MASK);
        }
    }
    scrubbed
}

/// The `KEY = VALUE` pairs written on `line`: the whole line split at its first `=` (which keeps
/// a broken, unquoted value whole), and, when the line holds an inline table, each of its pairs,
/// cut at braces and commas outside quotes.
fn pairs(line: &str) -> Vec<(&str, &str)> {
    let mut found: Vec<(&str, &str)> = line.split_once('=').into_iter().collect();
    let mut segments = Vec::new();
    let mut quote = None;
    let mut escaped = false;
    let mut segment_start = 0;
    for (index, character) in line.char_indices() {
        match (quote, character) {
            // In a basic string a backslash escapes the next character, a quote included.
            (Some('"'), _) if escaped => escaped = false,
            (Some('"'), '\\') => escaped = true,
            (Some(open), _) if character == open => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(character),
            (None, '{' | '}' | ',') => {
                segments.push(&line[segment_start..index]);
                segment_start = index + 1;
            }
            (None, _) => {}
        }
    }
    if !segments.is_empty() {
        segments.push(&line[segment_start..]);
        found.extend(segments.into_iter().filter_map(|segment| segment.split_once('=')));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_told_from_the_rest() {
        for key in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "ssl.truststore.password",
            "ssl.key.pem",
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.config",
            "sasl.oauthbearer.assertion.private.key.pem",
            "sasl.oauthbearer.assertion.private.key.passphrase",
            "SASL.PASSWORD",
            "\"sasl.password\"",
            "kafka.properties.\"sasl.password\"",
            "my.client_secret",
            "api_token",
            "worker.api-token",
            "token",
        ] {
            assert!(is_secret_key(key), "{key} is a secret");
        }
        for key in [
            "sasl.username",
            "sasl.mechanism",
            "security.protocol",
            "ssl.ca.location",
            "ssl.key.location",
            "ssl.keystore.location",
            "ssl.certificate.pem",
            "ssl.ca.pem",
            "client.id",
            "api_token_file",
            "sasl.oauthbearer.token.endpoint.url",
            "compression.type",
        ] {
            assert!(!is_secret_key(key), "{key} is not a secret");
        }
    }

    #[test]
    fn references_are_shown_and_secrets_are_masked() {
        assert!(is_reference("${env:KAFKA_PASSWORD}") && is_reference(" ${file:/etc/kafka/password} "));
        assert!(!is_reference("${env:}") && !is_reference("${vault:x}") && !is_reference("hunter2") && !is_reference("${env:X"));
        assert_eq!(redacted("sasl.password", "hunter2-secret"), MASK);
        assert_eq!(redacted("sasl.password", "${env:KAFKA_PASSWORD}"), "${env:KAFKA_PASSWORD}");
        assert_eq!(redacted("sasl.password", "${vault:hunter2}"), MASK, "not a reference we read, so maybe a secret");
        assert_eq!(redacted("sasl.username", "usagebill"), "usagebill");
        let properties = BTreeMap::from([
            ("sasl.password".to_owned(), "hunter2-secret".to_owned()),
            ("ssl.key.password".to_owned(), "${file:/run/key-pass}".to_owned()),
            ("sasl.username".to_owned(), "usagebill".to_owned()),
        ]);
        let shown = format!("{:?}", RedactedProperties(&properties));
        assert!(!shown.contains("hunter2") && shown.contains(MASK), "{shown}");
        assert!(shown.contains("${file:/run/key-pass}") && shown.contains("usagebill"), "{shown}");
    }

    #[test]
    fn error_text_loses_the_secrets_of_its_source() {
        let source = "[kafka.properties]\n\"sasl.password\" = hunter2-secret\n'ssl.key.password' = 987654\n\"sasl.username\" = 'me'\n";
        let error = "line 2: \"sasl.password\" = hunter2-secret\ninvalid type: integer `987654`; user me";
        let scrubbed = scrub(error, source);
        assert!(!scrubbed.contains("hunter2") && !scrubbed.contains("987654"), "{scrubbed}");
        assert!(scrubbed.contains("sasl.password") && scrubbed.contains("user me"), "{scrubbed}");
        let quoted = scrub("expected a string, found `\"hunter2-secret\"`", "sasl.password = \"hunter2-secret\"");
        assert!(!quoted.contains("hunter2"), "{quoted}");
        let commented = scrub("found `hunter2-secret`", "sasl.password = \"hunter2-secret\" # from the vault");
        assert!(!commented.contains("hunter2"), "{commented}");
    }

    #[test]
    fn secrets_in_one_line_inline_tables_are_masked_too() {
        let source = "[kafka]\nproperties = { \"sasl.username\" = \"me, myself\", \"sasl.password\" = \"hunter2-secret\", \"linger.ms\" = 5 }\n\
                      worker = { api_token = 'tok\"en-123', rate_card = \"card.toml\" }\n\
                      other = { nested = { \"ssl.key.password\" = \"p\\\"ass,word\" } }\n";
        let error = format!("TOML parse error at line 2:\n{source}\nexpected `}}`");
        let scrubbed = scrub(&error, source);
        for secret in ["hunter2-secret", "tok\"en-123", "p\\\"ass,word"] {
            assert!(!scrubbed.contains(secret), "{secret} in {scrubbed}");
        }
        assert!(scrubbed.contains("me, myself") && scrubbed.contains("card.toml") && scrubbed.contains("linger.ms"), "{scrubbed}");
    }
}
