//! `[notifications]`: which events the desktop app tells the person about through the desktop's
//! notification service, and the quiet hours when it tells nobody.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::HumanDuration;

/// `[notifications]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// A threshold rule held and sent a window (once per rule per episode).
    pub threshold: bool,
    /// A machine's cost crossed its budget, or its forecast will.
    pub budget: bool,
    /// The brokers unreachable for `outage_after` with windows waiting, and delivery resumed.
    pub outage: bool,
    /// How long the brokers must be unreachable before the outage is told.
    pub outage_after: HumanDuration,
    /// `"HH:MM-HH:MM"` in this machine's local time: nothing is shown between (a range may pass
    /// midnight); none by default. The desktop's own do-not-disturb applies as well.
    pub quiet_hours: Option<QuietHours>,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig { threshold: true, budget: true, outage: true, outage_after: HumanDuration::from_secs(600), quiet_hours: None }
    }
}

/// A daily span of local time, `[start, end)` in minutes after midnight; `end < start` passes midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    /// First quiet minute of the day.
    pub start: u16,
    /// First minute after the quiet span.
    pub end: u16,
}

impl QuietHours {
    /// Parses `HH:MM-HH:MM`; the error says what is expected.
    pub fn parse(text: &str) -> Result<QuietHours, String> {
        let expected = || format!("{text:?} is not a span of local time like \"22:00-07:00\"");
        let minute = |part: &str| -> Option<u16> {
            let (hours, minutes) = part.trim().split_once(':')?;
            let (hours, minutes) = (hours.parse::<u16>().ok()?, minutes.parse::<u16>().ok()?);
            (hours < 24 && minutes < 60 && part.trim().len() == 5).then_some(hours * 60 + minutes)
        };
        let (start, end) = text.split_once('-').ok_or_else(expected)?;
        let (start, end) = (minute(start).ok_or_else(expected)?, minute(end).ok_or_else(expected)?);
        if start == end {
            return Err(format!("{text:?} starts and ends at the same minute: an empty span (leave quiet_hours out for none)"));
        }
        Ok(QuietHours { start, end })
    }

    /// Whether `minute` (after local midnight) is quiet.
    pub fn contains(&self, minute: u16) -> bool {
        if self.start < self.end { (self.start..self.end).contains(&minute) } else { minute >= self.start || minute < self.end }
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}-{:02}:{:02}", self.start / 60, self.start % 60, self.end / 60, self.end % 60)
    }
}

impl Serialize for QuietHours {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for QuietHours {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        QuietHours::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_parse_and_may_pass_midnight() {
        let night = QuietHours::parse("22:00-07:00").unwrap();
        assert_eq!(night.to_string(), "22:00-07:00");
        assert!(night.contains(23 * 60) && night.contains(0) && night.contains(6 * 60 + 59));
        assert!(!night.contains(7 * 60) && !night.contains(12 * 60));
        let lunch = QuietHours::parse("12:00-13:30").unwrap();
        assert!(lunch.contains(12 * 60 + 45) && !lunch.contains(13 * 60 + 30) && !lunch.contains(11 * 60));
        for bad in ["22-07", "25:00-07:00", "22:00", "7:00-8:00", "09:00-09:00"] {
            assert!(QuietHours::parse(bad).unwrap_err().contains(bad), "{bad}");
        }
    }
}
