//! Durations written the way people write them: `500ms`, `3s`, `1m`, `2h`, `1d`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration parsed from `<number><unit>`, unit one of `ms`, `s`, `m`, `h`, `d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

/// A duration that does not parse; says what was given and what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{given}` is not a duration: write a whole number and a unit, like 500ms, 3s, 1m, 2h or 1d")]
pub struct DurationError {
    given: String,
}

impl HumanDuration {
    /// Seconds, as a whole number.
    pub fn from_secs(secs: u64) -> Self {
        HumanDuration(Duration::from_secs(secs))
    }

    /// The duration in milliseconds.
    pub fn as_millis(self) -> i64 {
        self.0.as_millis().min(i64::MAX as u128) as i64
    }

    /// The duration, if it is at least one second: the shortest send interval, window, rule hold or
    /// message timeout usagebill takes. The error says what is wrong with it.
    pub fn at_least_one_second(self) -> Result<Duration, String> {
        if self.0 < Duration::from_secs(1) { Err(format!("`{self}` is too short: at least 1s")) } else { Ok(self.0) }
    }
}

impl FromStr for HumanDuration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || DurationError { given: text.to_owned() };
        let trimmed = text.trim();
        let digits_end = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(digits_end);
        let number: u64 = number.parse().map_err(|_| error())?;
        let millis_per_unit: u64 = match unit.trim() {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(error()),
        };
        let millis = number.checked_mul(millis_per_unit).ok_or_else(error)?;
        Ok(HumanDuration(Duration::from_millis(millis)))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        let units = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1_000, "s")];
        for (size, unit) in units {
            if millis >= size && millis.is_multiple_of(size) {
                return write!(f, "{}{unit}", millis / size);
            }
        }
        write!(f, "{millis}ms")
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// How long a billing period lasts: a calendar month (the default), an ISO week (Monday to
/// Monday) or a day, all in UTC. Written in the config as `period = "month"`, `"week"` or `"day"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodLength {
    /// A calendar month.
    #[default]
    Month,
    /// An ISO week, starting Monday 00:00 UTC.
    Week,
    /// A day, starting 00:00 UTC.
    Day,
}

impl fmt::Display for PeriodLength {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            PeriodLength::Month => "month",
            PeriodLength::Week => "week",
            PeriodLength::Day => "day",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        let cases = [("500ms", 500), ("3s", 3_000), ("1m", 60_000), ("2h", 7_200_000), ("1d", 86_400_000)];
        for (text, millis) in cases {
            assert_eq!(text.parse::<HumanDuration>().unwrap().as_millis(), millis, "{text}");
        }
    }

    #[test]
    fn rejects_missing_units_and_junk_naming_the_value() {
        for text in ["30", "s", "1.5s", "-1s", "3 weeks", ""] {
            let error = text.parse::<HumanDuration>().unwrap_err();
            assert!(error.to_string().contains(&format!("`{text}`")), "{error}");
        }
    }

    #[test]
    fn displays_in_the_largest_whole_unit() {
        assert_eq!(HumanDuration::from_secs(120).to_string(), "2m");
        assert_eq!("1500ms".parse::<HumanDuration>().unwrap().to_string(), "1500ms");
    }
}
