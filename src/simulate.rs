//! `usagebill simulate`: a fleet of synthetic machines producing valid records, deterministic for a seed.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::kafka::KafkaConfig;
use crate::kafka::{KafkaSetupError, ReportingProducer, ensure_topic};
use crate::record::{Trigger, UnixMillis, UsageRecord};

mod office;

/// How simulated machines behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Every machine: 50 % of 8 cores, 4 GiB used of 16, 1 MB/s each way on disk and network.
    Constant,
    /// Levels and volumes drawn from the seed.
    Random,
    /// Office machines in their own time zones: busy on weekday working hours (09–17), idle early
    /// and in the evening (08–09, 17–20), asleep at night, at weekends, on their zone's holidays
    /// and their user's days off, with a level that varies by day and noise on every window; one
    /// machine in twenty is always on.
    Office,
}

/// What simulated machines are named by default: `sim-00001` upwards.
pub const DEFAULT_MACHINE_PREFIX: &str = "sim-";

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// Machines, named `{machine_prefix}00001` upwards.
    pub machines: u32,
    /// What each machine's name starts with ([`DEFAULT_MACHINE_PREFIX`] unless told), so several
    /// simulated groups can share one topic.
    pub machine_prefix: String,
    /// Records in all, spread round-robin over the machines.
    pub records: u64,
    /// Length of each window.
    pub window: Duration,
    /// Usage profile.
    pub profile: Profile,
    /// Seed of the random profile.
    pub seed: u64,
    /// Start of every machine's first window.
    pub start: UnixMillis,
}

impl Fleet {
    /// The name of machine `machine` (0-based): the prefix and its 1-based number in five digits.
    pub fn machine_name(&self, machine: u64) -> String {
        format!("{}{:05}", self.machine_prefix, machine + 1)
    }
}

/// Record `index` (0-based) of the fleet: machine `index % machines`, seq `index / machines + 1`.
pub fn record_at(fleet: &Fleet, index: u64) -> UsageRecord {
    let machine = index % u64::from(fleet.machines);
    let seq = index / u64::from(fleet.machines) + 1;
    let window_millis = fleet.window.as_millis() as i64;
    let seconds = window_millis as u64 / 1000;
    let steady = UsageRecord::steady(&fleet.machine_name(machine), seq, fleet.start, window_millis);
    let mut record = UsageRecord { trigger: Trigger::Replay, ..steady };
    if fleet.profile == Profile::Office {
        return office::record(fleet.seed, machine, record);
    }
    if fleet.profile == Profile::Random {
        let mut random = SplitMix64(fleet.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        record.cpu_pct = (random.next() % 100_001) as f64 / 1000.0;
        record.mem_used_bytes = random.next() % (record.mem_total_bytes + 1);
        record.disk_read_bytes = random.next() % (4_000_000 * seconds.max(1));
        record.disk_write_bytes = random.next() % (4_000_000 * seconds.max(1));
        record.net_rx_bytes = random.next() % (4_000_000 * seconds.max(1));
        record.net_tx_bytes = random.next() % (4_000_000 * seconds.max(1));
    }
    record
}

/// Departures from the plain fleet, for billing tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Variations {
    /// Each inner window boundary moves by up to ±`jitter_pct`/2 % of the window.
    pub jitter_pct: u32,
    /// Malformed messages sent among the records, spread evenly.
    pub malformed: u64,
    /// Live: windows end now and onwards, machines staggered across the window, and each record is
    /// sent the moment its window ends (for latency runs: one record per machine per window).
    pub live: bool,
}

/// Record `index` of a live fleet: machine `m` of `n` is offset by `m/n` of a window, so the fleet's
/// records end evenly spread in time; `fleet.start` should be one window before now.
pub fn live_record_at(fleet: &Fleet, index: u64) -> UsageRecord {
    let window_millis = fleet.window.as_millis() as i64;
    let machine = (index % u64::from(fleet.machines)) as i64;
    let offset = machine * window_millis / i64::from(fleet.machines);
    let mut record = record_at(fleet, index);
    record.start = record.start.plus_millis(offset);
    record.end = record.end.plus_millis(offset);
    record
}

/// Records of machine `machine` (0-based) in a fleet of `fleet.records`.
fn records_of_machine(fleet: &Fleet, machine: u64) -> u64 {
    let machines = u64::from(fleet.machines);
    fleet.records / machines + u64::from(machine < fleet.records % machines)
}

/// Record `index` with its window boundaries jittered. The first start and the last end of each
/// machine stay put, so a jittered fleet covers the same time as the plain one; the constant
/// profile's volumes follow the window's length (1 MB/s is exactly 1,000 bytes per millisecond).
pub fn jittered_record_at(fleet: &Fleet, index: u64, jitter_pct: u32) -> UsageRecord {
    let mut record = record_at(fleet, index);
    if jitter_pct == 0 {
        return record;
    }
    let machine = index % u64::from(fleet.machines);
    let window_millis = fleet.window.as_millis() as i64;
    let last_seq = records_of_machine(fleet, machine);
    let boundary = |seq: u64| -> UnixMillis {
        let nominal = fleet.start.plus_millis(seq as i64 * window_millis);
        if seq == 0 || seq >= last_seq {
            return nominal;
        }
        // Strictly inside ±window/2, so consecutive boundaries never meet.
        let reach = (window_millis * i64::from(jitter_pct) / 200).min(window_millis / 2 - 1).max(0);
        let mut random = SplitMix64(fleet.seed ^ machine.wrapping_mul(0xA24B_AED4_963E_E407) ^ seq.wrapping_mul(0x9FB2_1C65_1E98_DF25));
        let offset = (random.next() % (2 * reach as u64 + 1)) as i64 - reach;
        nominal.plus_millis(offset)
    };
    record.start = boundary(record.seq - 1);
    record.end = boundary(record.seq);
    if fleet.profile == Profile::Constant {
        let millis = record.window_millis() as u64;
        let bytes = 1_000 * millis;
        (record.disk_read_bytes, record.disk_write_bytes, record.net_rx_bytes, record.net_tx_bytes) = (bytes, bytes, bytes, bytes);
        record.samples = (millis / 1000).max(1) as u32;
    }
    record
}

/// Malformed message `number`: cycles through not JSON, a bad field, an unknown type, an oversize
/// record and bytes that are not UTF-8, so every quarantine reason is exercised.
pub fn malformed_message(fleet: &Fleet, number: u64) -> Vec<u8> {
    let valid = String::from_utf8(record_at(fleet, number).to_json()).expect("records are UTF-8");
    match number % 5 {
        0 => format!("not a record #{number} {{").into_bytes(),
        1 => valid.replace("\"cpu_pct\":", "\"cpu_pct\":250.0,\"was\":").into_bytes(),
        2 => valid.replace(crate::record::EVENT_TYPE, "usagebill.usage.v9").into_bytes(),
        3 => format!("{}{}", valid, " ".repeat(crate::record::MAX_RECORD_BYTES)).into_bytes(),
        _ => vec![0xff, 0xfe, 0x00, number as u8],
    }
}

/// A small, well-known generator: the same seed gives the same fleet on every machine.
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Why a simulation did not deliver everything.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// Kafka could not be set up.
    #[error(transparent)]
    Setup(#[from] KafkaSetupError),
    /// Some records were not acknowledged.
    #[error("{failed} of {total} records were not delivered; first error: {first}")]
    Undelivered {
        /// Records that failed.
        failed: u64,
        /// Records produced.
        total: u64,
        /// The first failure's reason.
        first: String,
    },
}

/// Produces the fleet to `kafka.topic`, at most `rate` records/s (0: as fast as possible), and waits for
/// every delivery report. Returns the number delivered.
pub fn produce(kafka: &KafkaConfig, fleet: &Fleet, rate: u64) -> Result<u64, SimulateError> {
    produce_with(kafka, fleet, rate, Variations::default())
}

/// [`produce`] with jittered windows and malformed messages mixed in; malformed ones count as sent.
pub fn produce_with(kafka: &KafkaConfig, fleet: &Fleet, rate: u64, variations: Variations) -> Result<u64, SimulateError> {
    ensure_topic(kafka, &kafka.topic)?;
    let (deliveries_tx, deliveries) = mpsc::channel();
    let mut sender = Sender {
        producer: ReportingProducer::new(kafka, crate::record::CONTENT_TYPE, deliveries_tx)?,
        topic: kafka.topic.clone(),
        deliveries,
        delivered: 0,
        failures: Vec::new(),
    };
    let live_fleet;
    let fleet = if variations.live {
        // Live windows end from now on: the producer connects first, as a running agent's has, so
        // the first second's records do not wait for it.
        if let Err(error) = sender.producer.wait_connected(&kafka.topic, Duration::from_secs(10)) {
            tracing::warn!("the producer has not reached the broker yet ({error}); sending anyway");
        }
        live_fleet = Fleet { start: UnixMillis::now().plus_millis(-(fleet.window.as_millis() as i64)), ..fleet.clone() };
        &live_fleet
    } else {
        fleet
    };
    let live_epoch = (Instant::now(), fleet.start.plus_millis(fleet.window.as_millis() as i64));
    let progress = crate::progress::bar(fleet.records, "records");
    let began = Instant::now();
    // One malformed message after every `every` records; any a short fleet had no room for go last.
    let every = (fleet.records / variations.malformed.max(1)).max(1);
    let malformed_inline = (fleet.records / every).min(variations.malformed);
    let malformed_key = format!("{}malformed", fleet.machine_prefix);
    for index in 0..fleet.records {
        let record = if variations.live {
            let record = live_record_at(fleet, index);
            let due = live_epoch.0 + Duration::from_millis(record.end.millis_since(live_epoch.1).max(0) as u64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            record
        } else {
            if rate > 0 {
                let due = began + Duration::from_secs_f64(index as f64 / rate as f64);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
            jittered_record_at(fleet, index, variations.jitter_pct)
        };
        if index % 1_000 == 0 {
            progress.set_position(index);
        }
        sender.send(&record.machine_id, &record.to_json(), index);
        if index % every == every - 1 && index / every < malformed_inline {
            sender.send(&malformed_key, &malformed_message(fleet, index / every), index);
        }
    }
    for number in malformed_inline..variations.malformed {
        sender.send(&malformed_key, &malformed_message(fleet, number), fleet.records + number);
    }
    progress.finish_and_clear();
    // Waits for every report: each message is delivered or times out after message.timeout.ms.
    while sender.producer.in_flight() > 0 {
        let _ = sender.producer.flush(Duration::from_millis(100));
        sender.drain();
    }
    let Sender { producer, deliveries, mut delivered, mut failures, .. } = sender;
    drop(producer);
    for delivery in deliveries.try_iter() {
        match delivery.outcome {
            Ok(()) => delivered += 1,
            Err(reason) => failures.push(reason),
        }
    }
    if let Some(first) = failures.first() {
        return Err(SimulateError::Undelivered { failed: failures.len() as u64, total: fleet.records, first: first.clone() });
    }
    Ok(delivered)
}

/// The producer with its delivery count.
struct Sender {
    producer: ReportingProducer,
    topic: String,
    deliveries: mpsc::Receiver<crate::kafka::Delivery>,
    delivered: u64,
    failures: Vec<String>,
}

impl Sender {
    fn send(&mut self, key: &str, payload: &[u8], tag: u64) {
        loop {
            match self.producer.send(&self.topic, key, payload, tag) {
                Ok(()) => return,
                Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {
                    std::thread::sleep(Duration::from_millis(5));
                    self.drain();
                }
                Err(error) => {
                    self.failures.push(error.to_string());
                    return;
                }
            }
        }
    }

    fn drain(&mut self) {
        for delivery in self.deliveries.try_iter() {
            match delivery.outcome {
                Ok(()) => self.delivered += 1,
                Err(reason) => self.failures.push(reason),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(profile: Profile) -> Fleet {
        Fleet {
            machines: 3,
            machine_prefix: DEFAULT_MACHINE_PREFIX.into(),
            records: 10,
            window: Duration::from_secs(5),
            profile,
            seed: 42,
            start: UnixMillis(1_767_225_600_000),
        }
    }

    #[test]
    fn windows_of_each_machine_are_contiguous_and_seqs_count_up() {
        let fleet = fleet(Profile::Constant);
        let records: Vec<_> = (0..fleet.records).map(|index| record_at(&fleet, index)).collect();
        for machine in ["sim-00001", "sim-00002", "sim-00003"] {
            let own: Vec<_> = records.iter().filter(|record| record.machine_id == machine).collect();
            for (expected_seq, record) in (1..).zip(&own) {
                assert_eq!(record.seq, expected_seq);
            }
            for pair in own.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
            }
        }
        assert!(records.iter().all(|record| record.validate().is_ok()));
    }

    #[test]
    fn machines_are_named_by_the_prefix() {
        let fleet = Fleet { machine_prefix: "acme-".into(), ..fleet(Profile::Constant) };
        let names: Vec<String> = (0..4).map(|index| record_at(&fleet, index).machine_id).collect();
        assert_eq!(names, ["acme-00001", "acme-00002", "acme-00003", "acme-00001"]);
        assert_eq!(record_at(&self::tests::fleet(Profile::Constant), 1).machine_id, "sim-00002", "sim- by default");
    }

    #[test]
    fn jittered_windows_tile_the_same_span_with_the_same_usage() {
        let fleet = Fleet { records: 60, ..fleet(Profile::Constant) };
        for machine in 0..3 {
            let own: Vec<_> = (machine..fleet.records).step_by(3).map(|index| jittered_record_at(&fleet, index, 80)).collect();
            assert!(own.iter().all(|record| record.validate().is_ok()));
            for pair in own.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
            }
            assert_eq!(own.first().unwrap().start, fleet.start);
            assert_eq!(own.last().unwrap().end, fleet.start.plus_millis(20 * 5_000));
            assert!(own.iter().any(|record| record.window_millis() != 5_000), "some boundary moved");
            assert_eq!(own.iter().map(|record| record.net_tx_bytes).sum::<u64>(), 100_000_000, "1 MB/s for 100 s");
        }
    }

    #[test]
    fn malformed_messages_never_parse() {
        let fleet = fleet(Profile::Constant);
        for number in 0..10 {
            assert!(UsageRecord::parse(&malformed_message(&fleet, number)).is_err(), "message {number} parsed");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_records() {
        let fleet = fleet(Profile::Random);
        let first: Vec<_> = (0..fleet.records).map(|index| record_at(&fleet, index)).collect();
        let second: Vec<_> = (0..fleet.records).map(|index| record_at(&fleet, index)).collect();
        assert_eq!(first, second);
        assert!(first.iter().all(|record| record.validate().is_ok()));
        let other = Fleet { seed: 43, ..fleet };
        assert_ne!(record_at(&other, 0), first[0]);
    }

    #[test]
    fn a_live_fleet_staggers_machines_and_keeps_windows_contiguous() {
        let fleet = Fleet {
            machines: 4,
            machine_prefix: DEFAULT_MACHINE_PREFIX.into(),
            records: 12,
            window: Duration::from_secs(2),
            profile: Profile::Constant,
            seed: 0,
            start: UnixMillis(1_000_000),
        };
        let records: Vec<_> = (0..fleet.records).map(|index| live_record_at(&fleet, index)).collect();
        let ends: Vec<i64> = records[..4].iter().map(|record| record.end.0).collect();
        assert_eq!(ends, [1_002_000, 1_002_500, 1_003_000, 1_003_500], "ends spread evenly over a window");
        for machine in 0..4 {
            let own: Vec<_> = records.iter().skip(machine).step_by(4).collect();
            assert!(own.windows(2).all(|pair| pair[0].end == pair[1].start));
        }
    }
}
