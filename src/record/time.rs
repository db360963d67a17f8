//! Instants as whole milliseconds since the Unix epoch, written as RFC 3339 with millisecond precision.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// An instant, in milliseconds since 1970-01-01T00:00:00Z. Integer so windows tile exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixMillis(pub i64);

/// Earliest instant a record may carry (2000-01-01); anything earlier is a broken clock.
pub const EARLIEST: UnixMillis = UnixMillis(946_684_800_000);
/// Latest instant a record may carry (2200-01-01).
pub const LATEST: UnixMillis = UnixMillis(7_258_118_400_000);

impl UnixMillis {
    /// The wall clock now.
    pub fn now() -> Self {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        UnixMillis(since.as_millis() as i64)
    }

    /// Midnight UTC starting the day that holds this instant.
    pub fn utc_day_start(self) -> Self {
        UnixMillis(self.0 - self.0.rem_euclid(86_400_000))
    }

    /// Parses RFC 3339 (any offset, any sub-second precision; truncated to milliseconds).
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        Some(UnixMillis((parsed.unix_timestamp_nanos() / 1_000_000) as i64))
    }

    /// Milliseconds from `earlier` to `self` (negative when `earlier` is later).
    pub fn millis_since(self, earlier: UnixMillis) -> i64 {
        self.0 - earlier.0
    }

    /// This instant plus `millis`.
    pub fn plus_millis(self, millis: i64) -> Self {
        UnixMillis(self.0 + millis)
    }
}

impl fmt::Display for UnixMillis {
    /// Writes `2026-11-25T11:02:44.123Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
        let nanos = i128::from(self.0) * 1_000_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(instant) => match instant.format(format) {
                Ok(text) => f.write_str(&text),
                Err(_) => write!(f, "@{}ms", self.0),
            },
            Err(_) => write!(f, "@{}ms", self.0),
        }
    }
}

impl serde::Serialize for UnixMillis {
    /// Serialises as the RFC 3339 text.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for UnixMillis {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        UnixMillis::parse_rfc3339(&text).ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not an RFC 3339 time")))
    }
}

/// Windows that start in `[from, to)`; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive lower bound on a window's start.
    pub from: Option<UnixMillis>,
    /// Exclusive upper bound on a window's start.
    pub to: Option<UnixMillis>,
}

impl TimeRange {
    /// `[from, to)` in milliseconds, an open end as the extreme of `i64`.
    pub fn bounds(&self) -> (i64, i64) {
        (self.from.map_or(i64::MIN, |from| from.0), self.to.map_or(i64::MAX, |to| to.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip_at_millisecond_precision() {
        let instant = UnixMillis(1_764_068_564_123);
        let text = instant.to_string();
        assert_eq!(text, "2025-11-25T11:02:44.123Z");
        assert_eq!(UnixMillis::parse_rfc3339(&text), Some(instant));
    }

    #[test]
    fn parses_offsets_and_rejects_garbage() {
        let with_offset = UnixMillis::parse_rfc3339("2025-11-25T12:02:44.123+01:00");
        assert_eq!(with_offset, Some(UnixMillis(1_764_068_564_123)));
        assert_eq!(UnixMillis::parse_rfc3339("yesterday"), None);
    }
}
