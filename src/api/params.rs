//! Query-string parsing: percent-decoding, the parameters each endpoint knows, and typed readers
//! whose errors name the parameter and the value, so a client sees exactly what to fix.

pub use crate::billing::ledger::GroupBy;
use crate::billing::report::TimeRange;
use crate::record::UnixMillis;

/// Shortest `step` of a usage series.
pub const MIN_STEP_MILLIS: i64 = 1_000;

/// A query parameter that is unknown, repeated, badly encoded or out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter `{name}` = {value:?}: {expected}")]
pub struct ParamError {
    /// The parameter (or path segment) at fault.
    pub name: String,
    /// The value as received (decoded when it could be).
    pub value: String,
    /// What would have been accepted.
    pub expected: String,
}

impl ParamError {
    /// `name`=`value` refused; `expected` says what would be accepted.
    pub fn new(name: &str, value: &str, expected: impl Into<String>) -> ParamError {
        ParamError { name: name.to_owned(), value: value.to_owned(), expected: expected.into() }
    }
}

/// How a table is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json` (the default).
    Json,
    /// `text/csv` with a header row.
    Csv,
}

/// The decoded parameters of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Decodes `raw` (the part after `?`), refusing parameters not in `allowed` and repeated ones.
    /// A `+` stays a `+`: this is not a form, and RFC 3339 offsets such as `+01:00` must survive.
    pub fn parse(raw: &str, allowed: &[&str]) -> Result<Query, ParamError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for piece in raw.split('&').filter(|piece| !piece.is_empty()) {
            let (raw_name, raw_value) = piece.split_once('=').unwrap_or((piece, ""));
            let name = percent_decode(raw_name).ok_or_else(|| ParamError::new(raw_name, raw_value, "a percent-encoded UTF-8 name"))?;
            let value = percent_decode(raw_value).ok_or_else(|| ParamError::new(&name, raw_value, "a percent-encoded UTF-8 value"))?;
            if !allowed.contains(&name.as_str()) {
                let known = if allowed.is_empty() { "no parameters here".to_owned() } else { format!("one of: {}", allowed.join(", ")) };
                return Err(ParamError::new(&name, &value, format!("unknown parameter; this endpoint takes {known}")));
            }
            if pairs.iter().any(|(seen, _)| *seen == name) {
                return Err(ParamError::new(&name, &value, "given more than once"));
            }
            pairs.push((name, value));
        }
        Ok(Query { pairs })
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// An RFC 3339 time.
    pub fn time(&self, name: &str) -> Result<Option<UnixMillis>, ParamError> {
        self.get(name)
            .map(|text| {
                UnixMillis::parse_rfc3339(text).ok_or_else(|| ParamError::new(name, text, "an RFC 3339 time, e.g. 2026-11-01T00:00:00Z"))
            })
            .transpose()
    }

    /// `from` and `to`, each optional. A `to` at or before `from` is an empty range, not an error:
    /// each bound is a filter on a window's start, no window passes both, and `usagebill report`
    /// answers such a range with no rows too, so the API's tables agree with it.
    pub fn range(&self) -> Result<TimeRange, ParamError> {
        Ok(TimeRange { from: self.time("from")?, to: self.time("to")? })
    }

    /// `format`: `json` (default) or `csv`.
    pub fn format(&self) -> Result<Format, ParamError> {
        match self.get("format") {
            None | Some("json") => Ok(Format::Json),
            Some("csv") => Ok(Format::Csv),
            Some(other) => Err(ParamError::new("format", other, "json or csv")),
        }
    }

    /// `group_by`: `machine` (default), `day` or `hour`.
    pub fn group_by(&self) -> Result<GroupBy, ParamError> {
        match self.get("group_by") {
            None | Some("machine") => Ok(GroupBy::Machine),
            Some("day") => Ok(GroupBy::Day),
            Some("hour") => Ok(GroupBy::Hour),
            Some(other) => Err(ParamError::new("group_by", other, "machine, day or hour")),
        }
    }

    /// `step` of a usage series in milliseconds (default one hour): 1 to 7 digits without a leading
    /// zero and a unit `s`, `m`, `h` or `d`, exactly the OpenAPI pattern, so the document and the
    /// server accept the same steps.
    pub fn step_millis(&self) -> Result<i64, ParamError> {
        let Some(text) = self.get("step") else { return Ok(3_600_000) };
        let refuse = || ParamError::new("step", text, "1 to 7 digits (no leading zero) and a unit s, m, h or d, e.g. 30s, 15m, 1h, 1d");
        let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (digits, unit) = text.split_at(digits_end);
        if digits.is_empty() || digits.len() > 7 || digits.starts_with('0') {
            return Err(refuse());
        }
        let millis_per_unit = match unit {
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(refuse()),
        };
        // At most 9,999,999 days: far inside i64 milliseconds, and never below one second.
        let millis = digits.parse::<i64>().map_err(|_| refuse())? * millis_per_unit;
        Ok(millis.max(MIN_STEP_MILLIS))
    }

    /// A whole number in `low..=high`, `default` when absent.
    pub fn integer(&self, name: &str, low: i64, high: i64, default: i64) -> Result<i64, ParamError> {
        let Some(text) = self.get(name) else { return Ok(default) };
        text.parse::<i64>()
            .ok()
            .filter(|value| (low..=high).contains(value))
            .ok_or_else(|| ParamError::new(name, text, format!("a whole number from {low} to {high}")))
    }
}

/// Splits a request target into its path and its raw query (empty when there is none).
pub fn split_target(target: &str) -> (&str, &str) {
    // A fragment is never sent by a client, but a hand-written one must not reach a parameter.
    let target = target.split_once('#').map_or(target, |(before, _)| before);
    target.split_once('?').unwrap_or((target, ""))
}

/// Decodes `%XX` escapes; `None` for a broken escape or bytes that are not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let high = hex_value(*bytes.get(index + 1)?)?;
            let low = hex_value(*bytes.get(index + 2)?)?;
            decoded.push(high << 4 | low);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
