//! How numbers, money and instants read in the app: units always shown, amounts rounded only here.

use rust_decimal::Decimal;

use crate::billing::cost_engine::Forecast;
use crate::billing::money_text::money_to;
pub use crate::billing::money_text::{exact_money, minor_unit_digits, money};
use crate::record::UnixMillis;

/// A byte count with a binary prefix, e.g. `1.5 GiB`.
pub fn bytes(count: f64) -> String {
    scaled(count, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB"])
}

/// A rate in bytes per second with a decimal prefix, e.g. `12.3 MB/s` (the rule syntax uses k, M, G ×1000).
pub fn bytes_per_sec(rate: f64) -> String {
    scaled(rate, 1000.0, &["B/s", "kB/s", "MB/s", "GB/s", "TB/s"])
}

fn scaled(value: f64, step: f64, units: &[&str]) -> String {
    let mut value = value.max(0.0);
    let mut unit = 0;
    while value >= step && unit + 1 < units.len() {
        value /= step;
        unit += 1;
    }
    if unit == 0 || value >= 100.0 { format!("{value:.0} {}", units[unit]) } else { format!("{value:.1} {}", units[unit]) }
}

/// A forecast as people read it: `≈ $412 by 30 Nov (likely $380–$451)`.
pub fn forecast_line(forecast: &Forecast, currency: &str) -> String {
    let last_day = forecast.period_end.plus_millis(-1).to_string();
    let month = last_day.get(5..7).and_then(|month| month.parse::<usize>().ok()).and_then(|month| MONTHS.get(month.wrapping_sub(1)));
    let day = last_day.get(8..10).map_or("", |day| day.trim_start_matches('0'));
    // One precision for the three, the high end's, so that a band reads `$0.25–$1.29`, not `$0.25–$1`.
    let digits = if forecast.high >= Decimal::ONE_HUNDRED { 0 } else { minor_unit_digits(currency) };
    let rough = |amount: Decimal| money_to(amount, currency, digits);
    format!(
        "≈ {} by {day} {} (likely {}–{})",
        rough(forecast.estimate),
        month.copied().unwrap_or(""),
        rough(forecast.low),
        rough(forecast.high)
    )
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// An instant as `2026-11-25 11:02:44 UTC`.
pub fn instant(at: UnixMillis) -> String {
    let text = at.to_string();
    // The RFC 3339 form is `YYYY-MM-DDTHH:MM:SS.mmmZ`; people read the date and time apart, without millis.
    match text.get(..19) {
        Some(head) if text.len() == 24 => format!("{} UTC", head.replacen('T', " ", 1)),
        _ => text,
    }
}

/// A time of day as `11:02:44 UTC`.
pub fn time_of_day(at: UnixMillis) -> String {
    let text = instant(at);
    text.get(11..).map_or(text.clone(), str::to_owned)
}

/// A time of day to the minute, as `14:02 UTC`.
pub fn hour_minute(at: UnixMillis) -> String {
    let text = instant(at);
    text.get(11..16).map_or(text.clone(), |hour_minute| format!("{hour_minute} UTC"))
}

/// How long before `now` `at` was, roughly: `just now`, `12 min ago`, `3 h ago`, `2 days ago`.
pub fn ago(at: UnixMillis, now: UnixMillis) -> String {
    let minutes = (now.0 - at.0).max(0) / 60_000;
    match minutes {
        0 => "just now".to_owned(),
        1..=119 => format!("{minutes} min ago"),
        120..=2879 => format!("{} h ago", minutes / 60),
        _ => format!("{} days ago", minutes / 1440),
    }
}

/// An axis tick for "seconds before now": `-45 s`, `-10 min`, `now`.
pub fn seconds_ago(seconds: f64) -> String {
    let magnitude = seconds.abs();
    if magnitude < 0.5 {
        "now".to_owned()
    } else if magnitude < 120.0 {
        format!("-{magnitude:.0} s")
    } else {
        format!("-{:.0} min", magnitude / 60.0)
    }
}

/// A duration written as the config and the rules write it (`10s`, `5m`).
pub fn duration(value: std::time::Duration) -> String {
    crate::config::HumanDuration(value).to_string()
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn a_forecast_reads_as_a_rough_figure_by_the_periods_last_day_with_its_band() {
        use crate::billing::cost_engine::forecast::{Forecast, Method};
        let amount = |text: &str| Decimal::from_str(text).unwrap();
        let forecast = |estimate: &str, low: &str, high: &str| Forecast {
            method: Method::Seasonal,
            history_hours: 700,
            weeks: 4,
            made_at: UnixMillis::parse_rfc3339("2026-11-20T10:00:00Z").unwrap(),
            period_end: UnixMillis::parse_rfc3339("2026-12-01T00:00:00Z").unwrap(),
            billed: amount("300"),
            estimate: amount(estimate),
            low: amount(low),
            high: amount(high),
            daily_spread: amount("4"),
            level_spread: amount("0.05"),
            path: Vec::new(),
            flags: Vec::new(),
        };
        assert_eq!(forecast_line(&forecast("412.4", "380.2", "450.9"), "USD"), "≈ $412 by 30 Nov (likely $380–$451)");
        assert_eq!(forecast_line(&forecast("1412.4", "1380.2", "1450.9"), "CHF"), "≈ CHF 1,412 by 30 Nov (likely CHF 1,380–CHF 1,451)");
        // The band's high end sets one precision for all three.
        assert_eq!(forecast_line(&forecast("0.504221", "0.252125", "101.2907"), "EUR"), "≈ €1 by 30 Nov (likely < €1–€101)");
        assert_eq!(forecast_line(&forecast("0.504221", "0.002125", "1.2907"), "EUR"), "≈ €0.50 by 30 Nov (likely < €0.01–€1.29)");
    }

    #[test]
    fn units_scale_and_stay_visible() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1.5 * 1024.0 * 1024.0 * 1024.0), "1.5 GiB");
        assert_eq!(bytes_per_sec(12_300_000.0), "12.3 MB/s");
        assert_eq!(bytes_per_sec(0.0), "0 B/s");
        assert_eq!(bytes_per_sec(250_000.0), "250 kB/s");
    }

    #[test]
    fn instants_and_ticks_read_plainly() {
        let at = UnixMillis::parse_rfc3339("2026-11-25T11:02:44.123Z").unwrap();
        assert_eq!(instant(at), "2026-11-25 11:02:44 UTC");
        assert_eq!(time_of_day(at), "11:02:44 UTC");
        assert_eq!(seconds_ago(-45.0), "-45 s");
        assert_eq!(seconds_ago(-600.0), "-10 min");
        assert_eq!(seconds_ago(0.0), "now");
        assert_eq!(hour_minute(at), "11:02 UTC");
        assert_eq!(ago(at, at.plus_millis(30_000)), "just now");
        assert_eq!(ago(at, at.plus_millis(12 * 60_000)), "12 min ago");
        assert_eq!(ago(at, at.plus_millis(3 * 3_600_000)), "3 h ago");
        assert_eq!(ago(at, at.plus_millis(50 * 3_600_000)), "2 days ago");
    }
}
