//! `usagebill simulate`: a fleet of synthetic machines producing valid records, deterministic for a seed.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::config::KafkaConfig;
use crate::record::{Trigger, UnixMillis, UsageRecord};
use crate::transmit::kafka::{KafkaSetupError, ReportingProducer, ensure_topic};

/// How simulated machines behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Every machine: 50 % of 8 cores, 4 GiB used of 16, 1 MB/s each way on disk and network.
    Constant,
    /// Levels and volumes drawn from the seed.
    Random,
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// Machines, named `sim-00001` upwards.
    pub machines: u32,
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

/// Record `index` (0-based) of the fleet: machine `index % machines`, seq `index / machines + 1`.
pub fn record_at(fleet: &Fleet, index: u64) -> UsageRecord {
    let machine = index % u64::from(fleet.machines);
    let seq = index / u64::from(fleet.machines) + 1;
    let window_millis = fleet.window.as_millis() as i64;
    let start = fleet.start.plus_millis((seq as i64 - 1) * window_millis);
    let seconds = window_millis as u64 / 1000;
    let mut record = UsageRecord {
        machine_id: format!("sim-{:05}", machine + 1),
        seq,
        start,
        end: start.plus_millis(window_millis),
        cpu_pct: 50.0,
        cpu_cores: 8,
        mem_used_bytes: 4 << 30,
        mem_total_bytes: 16 << 30,
        disk_read_bytes: 1_000_000 * window_millis as u64 / 1000,
        disk_write_bytes: 1_000_000 * window_millis as u64 / 1000,
        net_rx_bytes: 1_000_000 * window_millis as u64 / 1000,
        net_tx_bytes: 1_000_000 * window_millis as u64 / 1000,
        samples: seconds.max(1) as u32,
        trigger: Trigger::Replay,
    };
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

/// A small, well-known generator: the same seed gives the same fleet on every machine.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
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
    ensure_topic(kafka, &kafka.topic)?;
    let (deliveries_tx, deliveries) = mpsc::channel();
    let producer = ReportingProducer::new(kafka, deliveries_tx)?;
    let began = Instant::now();
    let mut delivered = 0u64;
    let mut failures = Vec::new();
    let drain = |deliveries: &mpsc::Receiver<_>, delivered: &mut u64, failures: &mut Vec<String>| {
        for delivery in deliveries.try_iter() {
            let delivery: crate::transmit::kafka::Delivery = delivery;
            match delivery.outcome {
                Ok(()) => *delivered += 1,
                Err(reason) => failures.push(reason),
            }
        }
    };
    for index in 0..fleet.records {
        if rate > 0 {
            let due = began + Duration::from_secs_f64(index as f64 / rate as f64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        let record = record_at(fleet, index);
        let payload = record.to_json();
        loop {
            match producer.send(&record.machine_id, &payload, index) {
                Ok(()) => break,
                Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {
                    std::thread::sleep(Duration::from_millis(5));
                    drain(&deliveries, &mut delivered, &mut failures);
                }
                Err(error) => {
                    failures.push(error.to_string());
                    break;
                }
            }
        }
    }
    // Waits for every report: each message is delivered or times out after message.timeout.ms.
    while producer.in_flight() > 0 {
        let _ = producer.flush(Duration::from_millis(100));
        drain(&deliveries, &mut delivered, &mut failures);
    }
    drop(producer);
    drain(&deliveries, &mut delivered, &mut failures);
    if let Some(first) = failures.first() {
        return Err(SimulateError::Undelivered { failed: failures.len() as u64, total: fleet.records, first: first.clone() });
    }
    Ok(delivered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(profile: Profile) -> Fleet {
        Fleet { machines: 3, records: 10, window: Duration::from_secs(5), profile, seed: 42, start: UnixMillis(1_767_225_600_000) }
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
    fn the_same_seed_gives_the_same_records() {
        let fleet = fleet(Profile::Random);
        let first: Vec<_> = (0..fleet.records).map(|index| record_at(&fleet, index)).collect();
        let second: Vec<_> = (0..fleet.records).map(|index| record_at(&fleet, index)).collect();
        assert_eq!(first, second);
        assert!(first.iter().all(|record| record.validate().is_ok()));
        let other = Fleet { seed: 43, ..fleet };
        assert_ne!(record_at(&other, 0), first[0]);
    }
}
