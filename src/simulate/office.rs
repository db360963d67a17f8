//! The office profile of `usagebill simulate --profile office`: realistic weeks to test the
//! forecast on. Each machine keeps the hours of an office in its own time zone, with its zone's
//! public holidays and its user's days off.

use super::SplitMix64;
use crate::record::{RecordKind, UsageRecord};

/// UTC offsets (hours) the machines are spread over: the Americas, Europe, India, East Asia.
const ZONES: [i64; 8] = [-8, -5, -3, 0, 1, 2, 5, 9];
/// One machine in this many is always on (a build server, a lab machine).
const ALWAYS_ON_EVERY: u64 = 20;
/// About one weekday in this many is a public holiday, the same for every machine in a time zone.
const HOLIDAY_EVERY: u64 = 25;
/// About one weekday in this many a machine's user takes off.
const DAY_OFF_EVERY: u64 = 40;
const HOUR_MILLIS: i64 = 3_600_000;
const DAY_MILLIS: i64 = 24 * HOUR_MILLIS;

/// What a machine is doing at a moment of its local day.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Activity {
    /// Working hours: CPU around this share.
    Busy,
    /// Early or evening: on, nearly idle.
    Idle,
    /// Night, weekend or holiday: suspended.
    Asleep,
    /// An always-on machine.
    Server,
}

/// `record` (a steady window of machine `machine`) as an office machine lived it.
pub fn record(seed: u64, machine: u64, record: UsageRecord) -> UsageRecord {
    let middle = record.start.0 + record.window_millis() / 2;
    let zone = ZONES[(mix(seed, machine, 0x5A0E) % ZONES.len() as u64) as usize];
    let local = middle + zone * HOUR_MILLIS;
    let local_day = local.div_euclid(DAY_MILLIS);
    let hour = local.rem_euclid(DAY_MILLIS) / HOUR_MILLIS;
    // Day 0 (1970-01-01) was a Thursday: Saturday and Sunday are days 2 and 3 of each week.
    let weekend = matches!(local_day.rem_euclid(7), 2 | 3);
    let holiday = mix(seed ^ zone as u64, local_day as u64, 0x401D).is_multiple_of(HOLIDAY_EVERY)
        || mix(seed ^ machine, local_day as u64, 0x0FF).is_multiple_of(DAY_OFF_EVERY);
    let activity = match hour {
        _ if mix(seed, machine, 0xA1A1).is_multiple_of(ALWAYS_ON_EVERY) => Activity::Server,
        _ if weekend || holiday => Activity::Asleep,
        9..17 => Activity::Busy,
        8 | 17..20 => Activity::Idle,
        _ => Activity::Asleep,
    };
    if activity == Activity::Asleep {
        return record.unlived(RecordKind::Asleep);
    }
    // The day's level (some days busier than others) and each window's own noise.
    let day_level = 0.7 + 0.6 * unit(mix(seed ^ machine, local_day as u64, 0xDA7));
    let noise = 0.8 + 0.4 * unit(mix(seed ^ record.seq, machine, 0x0153));
    let (cpu, bytes_per_second) = match activity {
        Activity::Busy => (55.0 * day_level * noise, 800_000.0 * day_level * noise),
        Activity::Idle => (4.0 * noise, 20_000.0 * noise),
        Activity::Server | Activity::Asleep => (35.0 * noise, 400_000.0 * noise),
    };
    let seconds = record.window_millis() as f64 / 1000.0;
    let bytes = (bytes_per_second * seconds) as u64;
    UsageRecord {
        cpu_pct: cpu.min(100.0),
        disk_read_bytes: bytes,
        disk_write_bytes: bytes / 2,
        net_rx_bytes: bytes,
        net_tx_bytes: bytes / 4,
        ..record
    }
}

fn mix(seed: u64, value: u64, salt: u64) -> u64 {
    SplitMix64(seed ^ value.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xD6E8_FEB8_6659_FD93)).next()
}

/// A number in [0, 1) from random bits.
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{Fleet, Profile, record_at};
    use crate::record::{RecordKind, UnixMillis};

    #[test]
    fn office_machines_work_weekdays_and_sleep_at_night_and_weekends() {
        // Monday 2026-02-02 00:00 UTC, hourly windows, 40 machines for a week.
        let fleet = Fleet {
            machines: 40,
            machine_prefix: "office-".into(),
            records: 40 * 168,
            window: Duration::from_secs(3600),
            profile: Profile::Office,
            seed: 7,
            start: UnixMillis::parse_rfc3339("2026-02-02T00:00:00Z").unwrap(),
        };
        let records: Vec<_> = (0..fleet.records).map(|index| record_at(&fleet, index)).collect();
        assert!(records.iter().all(|record| record.validate().is_ok()));
        let asleep = records.iter().filter(|record| record.kind == RecordKind::Asleep).count() as f64 / records.len() as f64;
        assert!((0.55..0.85).contains(&asleep), "most of a week is nights and a weekend: {asleep}");
        // Saturday 12:00–13:00 UTC: only the always-on machines (and zones already in Sunday or
        // still in Saturday alike) run.
        let saturday: Vec<_> = records.iter().filter(|record| record.seq == 5 * 24 + 13).collect();
        let running = saturday.iter().filter(|record| record.kind == RecordKind::Usage).count();
        assert!(running <= 6, "{running} of 40 run on Saturday noon");
        let busy = records.iter().filter(|record| record.cpu_pct > 30.0).count();
        assert!(busy > records.len() / 8, "working hours are busy: {busy}");
        let again: Vec<_> = (0..fleet.records).map(|index| record_at(&fleet, index)).collect();
        assert_eq!(records, again, "the same seed gives the same weeks");
    }
}
