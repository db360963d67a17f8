//! What the worker tells `/metrics`: counters the billing loop updates after each committed batch,
//! consumer positions it samples every few seconds, and the Prometheus text rendering of them.
//!
//! Everything is an atomic or a short-held mutex, so the worker's hot loop never waits on a scrape.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::topic_partition_list::Offset;

use crate::billing::biller::BillerTotals;

/// Upper bounds (seconds) of the commit-latency histogram buckets; `+Inf` is implied.
pub const COMMIT_LATENCY_BOUNDS_SECONDS: [f64; 13] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How often the worker loop samples its consumer positions (a local librdkafka call).
const POSITION_SAMPLE_INTERVAL: Duration = Duration::from_secs(2);

/// Where one assigned partition stands: the next offset the worker will read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionPosition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Next offset to consume; `None` before the first message of the partition arrived.
    pub next_offset: Option<i64>,
}

/// Live numbers of one worker process, shared between the billing loop and the HTTP API.
#[derive(Debug)]
pub struct WorkerMetrics {
    created: Instant,
    records_billed: AtomicU64,
    duplicates: AtomicU64,
    quarantined: AtomicU64,
    batches: AtomicU64,
    commit_latency_buckets: [AtomicU64; COMMIT_LATENCY_BOUNDS_SECONDS.len() + 1],
    commit_latency_sum_micros: AtomicU64,
    commit_latency_count: AtomicU64,
    /// Millis since `created` of the last position sample, so the loop samples at most every 2 s.
    positions_sampled_at_millis: AtomicU64,
    positions: Mutex<Vec<PartitionPosition>>,
    /// Messages behind the high watermarks over the assigned partitions; -1 while unknown.
    consumer_lag: AtomicI64,
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        WorkerMetrics {
            created: Instant::now(),
            records_billed: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            quarantined: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            commit_latency_buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            commit_latency_sum_micros: AtomicU64::new(0),
            commit_latency_count: AtomicU64::new(0),
            positions_sampled_at_millis: AtomicU64::new(0),
            positions: Mutex::new(Vec::new()),
            consumer_lag: AtomicI64::new(-1),
        }
    }
}

impl WorkerMetrics {
    /// Records one committed batch: the biller's running totals and how long the commit took.
    pub fn record_commit(&self, totals: BillerTotals, latency: Duration) {
        // The biller's totals are cumulative, so storing them (not adding) stays right if a call is missed.
        self.records_billed.store(totals.billed, Ordering::Relaxed);
        self.duplicates.store(totals.duplicates, Ordering::Relaxed);
        self.quarantined.store(totals.quarantined, Ordering::Relaxed);
        self.batches.store(totals.batches, Ordering::Relaxed);
        let seconds = latency.as_secs_f64();
        let bucket =
            COMMIT_LATENCY_BOUNDS_SECONDS.iter().position(|bound| seconds <= *bound).unwrap_or(COMMIT_LATENCY_BOUNDS_SECONDS.len());
        self.commit_latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.commit_latency_sum_micros.fetch_add(latency.as_micros().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
        self.commit_latency_count.fetch_add(1, Ordering::Relaxed);
    }

    /// Samples the consumer's positions, at most every 2 s; cheap enough to call on every loop turn
    /// because `position()` asks librdkafka's local state, not the broker.
    pub fn sample_positions<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) {
        let now_millis = self.created.elapsed().as_millis() as u64;
        let last = self.positions_sampled_at_millis.load(Ordering::Relaxed);
        if last != 0 && now_millis.saturating_sub(last) < POSITION_SAMPLE_INTERVAL.as_millis() as u64 {
            return;
        }
        self.positions_sampled_at_millis.store(now_millis.max(1), Ordering::Relaxed);
        let Ok(list) = consumer.position() else { return };
        let positions = list
            .elements()
            .iter()
            .map(|element| PartitionPosition {
                topic: element.topic().to_owned(),
                partition: element.partition(),
                next_offset: match element.offset() {
                    Offset::Offset(next) => Some(next),
                    _ => None,
                },
            })
            .collect();
        *self.positions.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = positions;
    }

    /// The partitions assigned at the last sample and where the worker stood in each.
    pub fn positions(&self) -> Vec<PartitionPosition> {
        self.positions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Sets the consumer lag in messages; `None` when it cannot be known.
    pub fn set_consumer_lag(&self, lag: Option<i64>) {
        self.consumer_lag.store(lag.unwrap_or(-1), Ordering::Relaxed);
    }

    /// Records billed for the first time since this process started.
    pub fn records_billed(&self) -> u64 {
        self.records_billed.load(Ordering::Relaxed)
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        let counters = [
            ("usagebill_records_billed_total", "Records billed for the first time by this worker process.", &self.records_billed),
            ("usagebill_records_duplicate_total", "Redelivered records found already billed and ignored.", &self.duplicates),
            ("usagebill_records_quarantined_total", "Messages refused and kept in quarantine.", &self.quarantined),
            ("usagebill_batches_committed_total", "Ledger transactions committed.", &self.batches),
        ];
        for (name, help, value) in counters {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n", value.load(Ordering::Relaxed));
        }
        let lag = self.consumer_lag.load(Ordering::Relaxed);
        let name = "usagebill_consumer_lag_messages";
        let _ = write!(
            out,
            "# HELP {name} Messages in the assigned partitions not yet consumed (absent while unknown).\n# TYPE {name} gauge\n"
        );
        if lag >= 0 {
            let _ = writeln!(out, "{name} {lag}");
        }
        self.render_commit_latency(&mut out);
        let name = "usagebill_uptime_seconds";
        let _ = write!(
            out,
            "# HELP {name} Seconds since the worker started.\n# TYPE {name} gauge\n{name} {}\n",
            self.created.elapsed().as_secs()
        );
        out
    }

    fn render_commit_latency(&self, out: &mut String) {
        let name = "usagebill_batch_commit_seconds";
        let _ = write!(out, "# HELP {name} Time to bill and commit one batch into the ledger.\n# TYPE {name} histogram\n");
        let mut cumulative = 0;
        for (index, bound) in COMMIT_LATENCY_BOUNDS_SECONDS.iter().enumerate() {
            cumulative += self.commit_latency_buckets[index].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.commit_latency_buckets[COMMIT_LATENCY_BOUNDS_SECONDS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum_seconds = self.commit_latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum_seconds}");
        let _ = writeln!(out, "{name}_count {}", self.commit_latency_count.load(Ordering::Relaxed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_of<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines().find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
    }

    #[test]
    fn commits_show_as_counters_and_a_cumulative_histogram() {
        let metrics = WorkerMetrics::default();
        let totals = BillerTotals { billed: 1200, duplicates: 3, quarantined: 2, batches: 2 };
        metrics.record_commit(totals, Duration::from_micros(700));
        metrics.record_commit(totals, Duration::from_millis(30));
        let text = metrics.render_prometheus();
        assert_eq!(value_of(&text, "usagebill_records_billed_total"), Some("1200"));
        assert_eq!(value_of(&text, "usagebill_records_duplicate_total"), Some("3"));
        assert_eq!(value_of(&text, "usagebill_records_quarantined_total"), Some("2"));
        assert_eq!(value_of(&text, "usagebill_batch_commit_seconds_bucket{le=\"0.001\"}"), Some("1"));
        assert_eq!(value_of(&text, "usagebill_batch_commit_seconds_bucket{le=\"0.025\"}"), Some("1"));
        assert_eq!(value_of(&text, "usagebill_batch_commit_seconds_bucket{le=\"0.05\"}"), Some("2"));
        assert_eq!(value_of(&text, "usagebill_batch_commit_seconds_bucket{le=\"+Inf\"}"), Some("2"));
        assert_eq!(value_of(&text, "usagebill_batch_commit_seconds_count"), Some("2"));
        assert_eq!(value_of(&text, "usagebill_batch_commit_seconds_sum"), Some("0.0307"));
    }

    #[test]
    fn lag_is_absent_until_known() {
        let metrics = WorkerMetrics::default();
        assert_eq!(value_of(&metrics.render_prometheus(), "usagebill_consumer_lag_messages"), None);
        metrics.set_consumer_lag(Some(42));
        assert_eq!(value_of(&metrics.render_prometheus(), "usagebill_consumer_lag_messages"), Some("42"));
    }
}
