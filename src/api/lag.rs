//! The consumer-lag probe: a thread with its own Kafka client that, every few seconds, asks the
//! broker for the high watermarks of the partitions this worker holds and subtracts the offsets
//! its ledger committed. The network round trips happen here, never on the billing loop.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::ApiError;
use crate::billing::ledger::Ledger;
use crate::kafka::KafkaConfig;
use crate::kafka::{ClientRole, KafkaSetupError, client_config};
use crate::worker::metrics::{PartitionPosition, WorkerMetrics};

/// Time between two lag measurements.
const PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// Longest wait for one partition's watermarks.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(2);

/// Starts the probe; it stops when `stop` is set.
pub fn start_probe(
    kafka: &KafkaConfig,
    ledger_path: PathBuf,
    metrics: Arc<WorkerMetrics>,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, ApiError> {
    // No group.id: this client only asks for watermarks and never joins the worker's group.
    let consumer: BaseConsumer =
        client_config(kafka, ClientRole::Consumer)?.create().map_err(|source| KafkaSetupError::kafka("creating the lag probe", source))?;
    std::thread::Builder::new()
        .name("consumer-lag".into())
        .spawn(move || {
            let mut last_probe: Option<Instant> = None;
            while !stop.load(Ordering::SeqCst) {
                if last_probe.is_none_or(|at| at.elapsed() >= PROBE_INTERVAL) {
                    last_probe = Some(Instant::now());
                    metrics.set_consumer_lag(measure(&consumer, &ledger_path, &metrics.positions()));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .map_err(ApiError::Thread)
}

/// Messages behind the high watermarks over `positions`; `None` when nothing is assigned yet or a
/// broker did not answer.
fn measure(consumer: &BaseConsumer, ledger_path: &std::path::Path, positions: &[PartitionPosition]) -> Option<i64> {
    if positions.is_empty() {
        return None;
    }
    // The ledger's offsets are what is truly billed; a fresh read each time sees the latest commit.
    let ledger = Ledger::open_read_only(ledger_path).ok();
    let mut lag = 0;
    for position in positions {
        let (low, high) = consumer.fetch_watermarks(&position.topic, position.partition, WATERMARK_TIMEOUT).ok()?;
        let committed = ledger.as_ref().and_then(|ledger| ledger.offsets(&position.topic).ok()?.get(&position.partition).copied());
        let consumed = committed.into_iter().chain(position.next_offset).max().unwrap_or(low);
        lag += (high - consumed).max(0);
    }
    Some(lag)
}
