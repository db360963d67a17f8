//! Threshold rules such as `cpu_pct > 90 for 30s`, parsed from text and checked against readings.

use std::fmt;
use std::time::Duration;

use crate::collect::Reading;
use crate::duration::HumanDuration;

/// A quantity a rule can watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// CPU busy, 0–100.
    CpuPct,
    /// Memory in use, 0–100 of installed.
    MemPct,
    /// Disk reads, bytes per second.
    DiskReadBytesPerSec,
    /// Disk writes, bytes per second.
    DiskWriteBytesPerSec,
    /// Network received, bytes per second.
    NetRxBytesPerSec,
    /// Network sent, bytes per second.
    NetTxBytesPerSec,
}

const METRIC_NAMES: [(&str, Metric); 6] = [
    ("cpu_pct", Metric::CpuPct),
    ("mem_pct", Metric::MemPct),
    ("disk_read_bytes_per_sec", Metric::DiskReadBytesPerSec),
    ("disk_write_bytes_per_sec", Metric::DiskWriteBytesPerSec),
    ("net_rx_bytes_per_sec", Metric::NetRxBytesPerSec),
    ("net_tx_bytes_per_sec", Metric::NetTxBytesPerSec),
];

impl Metric {
    /// The name used in rules.
    pub fn name(self) -> &'static str {
        METRIC_NAMES.iter().find(|(_, metric)| *metric == self).map_or("?", |(name, _)| name)
    }

    /// The metric's value in `reading`.
    pub fn value(self, reading: &Reading) -> f64 {
        match self {
            Metric::CpuPct => reading.cpu_pct,
            Metric::MemPct => reading.mem_pct(),
            Metric::DiskReadBytesPerSec => reading.per_second(reading.disk_read_bytes),
            Metric::DiskWriteBytesPerSec => reading.per_second(reading.disk_write_bytes),
            Metric::NetRxBytesPerSec => reading.per_second(reading.net_rx_bytes),
            Metric::NetTxBytesPerSec => reading.per_second(reading.net_tx_bytes),
        }
    }
}

/// Above or below the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `>`
    Above,
    /// `<`
    Below,
}

/// `METRIC > VALUE for DURATION`: fires once the condition has held for the duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThresholdRule {
    /// What is watched.
    pub metric: Metric,
    /// Direction.
    pub comparison: Comparison,
    /// The limit, in the metric's unit.
    pub limit: f64,
    /// How long the condition must hold.
    pub hold: Duration,
}

impl ThresholdRule {
    /// Parses `cpu_pct > 90 for 30s`; values may carry k, M or G (×1000) for rates.
    /// The error says which part is wrong and what is expected.
    pub fn parse(text: &str) -> Result<ThresholdRule, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let [metric, comparison, limit, for_word, hold] = words.as_slice() else {
            return Err(format!("write `METRIC > VALUE for DURATION`, e.g. `cpu_pct > 90 for 30s`; got {} word(s)", words.len()));
        };
        let metric = METRIC_NAMES.iter().find(|(name, _)| name == metric).map(|(_, metric)| *metric).ok_or_else(|| {
            let names: Vec<&str> = METRIC_NAMES.iter().map(|(name, _)| *name).collect();
            format!("unknown metric `{metric}`: use one of {}", names.join(", "))
        })?;
        let comparison = match *comparison {
            ">" => Comparison::Above,
            "<" => Comparison::Below,
            other => return Err(format!("comparison `{other}` must be > or <")),
        };
        let limit =
            parse_limit(limit).ok_or_else(|| format!("value `{limit}` must be a non-negative number, optionally with k, M or G"))?;
        if matches!(metric, Metric::CpuPct | Metric::MemPct) && limit > 100.0 {
            return Err(format!("value `{limit}` of {} must be between 0 and 100", metric.name()));
        }
        if *for_word != "for" {
            return Err(format!("expected `for` before the duration, got `{for_word}`"));
        }
        let hold: HumanDuration = hold.parse().map_err(|error: crate::duration::DurationError| error.to_string())?;
        let hold = hold.at_least_one_second().map_err(|reason| format!("duration {reason}"))?;
        Ok(ThresholdRule { metric, comparison, limit, hold })
    }

    /// Whether `reading` meets the condition.
    pub fn holds_for(&self, reading: &Reading) -> bool {
        let value = self.metric.value(reading);
        match self.comparison {
            Comparison::Above => value > self.limit,
            Comparison::Below => value < self.limit,
        }
    }
}

impl fmt::Display for ThresholdRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.comparison == Comparison::Above { ">" } else { "<" };
        write!(f, "{} {sign} {} for {}", self.metric.name(), self.limit, HumanDuration(self.hold))
    }
}

fn parse_limit(text: &str) -> Option<f64> {
    let (number, scale) = match text.as_bytes().last()? {
        b'k' | b'K' => (&text[..text.len() - 1], 1e3),
        b'M' => (&text[..text.len() - 1], 1e6),
        b'G' => (&text[..text.len() - 1], 1e9),
        _ => (text, 1.0),
    };
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let rule = ThresholdRule::parse("cpu_pct > 90 for 30s").unwrap();
        assert_eq!(
            (rule.metric, rule.comparison, rule.limit, rule.hold),
            (Metric::CpuPct, Comparison::Above, 90.0, Duration::from_secs(30))
        );
        let rule = ThresholdRule::parse("net_tx_bytes_per_sec > 10M for 1m").unwrap();
        assert_eq!(rule.limit, 10_000_000.0);
        assert_eq!(rule.to_string(), "net_tx_bytes_per_sec > 10000000 for 1m");
        assert!(ThresholdRule::parse("mem_pct < 5 for 10s").is_ok());
    }

    #[test]
    fn errors_name_the_wrong_part() {
        let cases = [
            ("cpu > 90 for 30s", "`cpu`"),
            ("cpu_pct >= 90 for 30s", "`>=`"),
            ("cpu_pct > ninety for 30s", "`ninety`"),
            ("cpu_pct > 150 for 30s", "`150`"),
            ("cpu_pct > 90 during 30s", "`during`"),
            ("cpu_pct > 90 for 30", "`30`"),
            ("cpu_pct > 90", "3 word(s)"),
        ];
        for (text, named) in cases {
            let error = ThresholdRule::parse(text).unwrap_err();
            assert!(error.contains(named), "{text}: {error}");
        }
    }
}
