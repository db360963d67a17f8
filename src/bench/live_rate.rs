//! Desktop cold start while the fleet is billed live: every machine sends a record each window (1 s
//! or 10 s), one worker bills them and its summary leader publishes. After a warm-up long enough for
//! the summary topic to have been cleaned (its segments roll every 10 s, and the full summaries go
//! at most every five minutes a machine), desktops open one after another while the fleet keeps
//! sending: the time to a full table, what the brokers sent each (compressed, on the wire, and the
//! messages' own bytes), and how far the table they open on is behind the fleet.

use std::time::{Duration, Instant};

use super::summary::{Billing, FleetSize};
use super::{BenchBroker, BenchOptions, Figure, thousands};
use crate::feed::summary::{SummaryBook, SummaryFeed};
use crate::kafka::{KafkaConfig, ensure_topic};
use crate::record::UnixMillis;
use crate::simulate::{self, Fleet, Profile, Variations};

/// One desktop's cold start.
struct ColdStart {
    took: Duration,
    wire_bytes: u64,
    payload_bytes: u64,
    messages: u64,
    /// The newest window end of the machine least up to date in its table, behind the moment the
    /// table was full.
    worst_behind: Duration,
}

/// The live-rate run with `window`: `size.machines` machines, warmed up for `size.live_warmup`.
pub fn measure(options: &BenchOptions, broker: &BenchBroker, size: FleetSize, window: Duration) -> anyhow::Result<Vec<Figure>> {
    let kafka = super::fleet::kafka(broker, &format!("live{}s", window.as_secs()));
    ensure_topic(&kafka, &kafka.topic)?;
    let scratch = tempfile::tempdir_in(&options.scratch)?;
    let billing = Billing::start(&kafka, &scratch.path().join("ledger.db"))?;
    // Sends for the warm-up, then long enough for every desktop to open while it still sends.
    let seconds = size.live_warmup.as_secs() + 10 * u64::from(size.desktops) + 10;
    let windows = (seconds / window.as_secs().max(1)).max(1);
    let fleet = Fleet {
        machines: size.machines,
        machine_prefix: crate::simulate::DEFAULT_MACHINE_PREFIX.into(),
        records: u64::from(size.machines) * windows,
        window,
        profile: Profile::Constant,
        seed: 0,
        start: UnixMillis::now(),
    };
    let producer_kafka = kafka.clone();
    let producer =
        std::thread::spawn(move || simulate::produce_with(&producer_kafka, &fleet, 0, Variations { live: true, ..Variations::default() }));
    let warm_until = Instant::now() + size.live_warmup;
    while Instant::now() < warm_until && !producer.is_finished() {
        std::thread::sleep(Duration::from_millis(200));
    }
    anyhow::ensure!(!producer.is_finished(), "the live fleet stopped sending before the desktops opened");
    let starts = (0..size.desktops).map(|_| cold_start(&kafka, size.machines)).collect::<anyhow::Result<Vec<_>>>();
    let sent = producer.join().map_err(|_| anyhow::anyhow!("the live fleet's thread panicked"))?;
    let totals = billing.finish()?;
    let (starts, sent) = (starts?, sent?);
    Ok(figures(size, window, &starts, sent, totals))
}

fn figures(
    size: FleetSize,
    window: Duration,
    starts: &[ColdStart],
    sent: u64,
    totals: crate::feed::summary::PublisherTotals,
) -> Vec<Figure> {
    let label = format!("{} machines, a record each {} s", thousands(f64::from(size.machines)), window.as_secs());
    let worst = starts.iter().map(|start| start.took).max().unwrap_or_default();
    let most_wire = starts.iter().map(|start| start.wire_bytes).max().unwrap_or_default();
    let most_payload = starts.iter().map(|start| start.payload_bytes).max().unwrap_or_default();
    let most_messages = starts.iter().map(|start| start.messages).max().unwrap_or_default();
    let behind = starts.iter().map(|start| start.worst_behind).max().unwrap_or_default();
    let mb = |bytes: u64| bytes as f64 / 1e6;
    vec![
        Figure::new(
            &format!("desktop cold start while {label} (worst of {}, after {} s of billing)", size.desktops, size.live_warmup.as_secs()),
            format!("{} ms", worst.as_millis()),
            "≤ 2 s",
            Some(worst <= Duration::from_secs(2)),
            String::new(),
        ),
        Figure::new(
            &format!("desktop: what the brokers send at cold start while {label}"),
            format!(
                "{:.1} MB on the wire (lz4); {:.1} MB of messages, {} messages ({:.1} a machine)",
                mb(most_wire),
                mb(most_payload),
                thousands(most_messages as f64),
                most_messages as f64 / f64::from(size.machines)
            ),
            "≤ 10 MB",
            Some(most_wire <= 10_000_000),
            String::new(),
        ),
        Figure::new(
            &format!("desktop: its table at cold start behind the fleet, while {label}"),
            format!("{} ms (the machine least up to date, worst desktop)", behind.as_millis()),
            "",
            None,
            String::new(),
        ),
        Figure::new(
            &format!("summary leader while {label}: messages published"),
            format!(
                "{} records sent; {} full summaries, {} live shards",
                thousands(sent as f64),
                thousands(totals.published as f64),
                thousands(totals.live_published as f64)
            ),
            "",
            None,
            String::new(),
        ),
    ]
}

/// Opens a desktop's view and reads until caught up; every machine must be in its table.
fn cold_start(kafka: &KafkaConfig, machines: u32) -> anyhow::Result<ColdStart> {
    let opened = Instant::now();
    let mut feed = SummaryFeed::open_counting(kafka, true)?;
    let mut book = SummaryBook::new();
    while !feed.caught_up() {
        feed.poll(&mut book, None, Duration::from_millis(50))?;
    }
    let took = opened.elapsed();
    let full_at = UnixMillis::now();
    let (payload_bytes, messages) = (feed.bytes_read(), feed.messages_read());
    anyhow::ensure!(book.len() == machines as usize, "a desktop read {} of {machines} machines", book.len());
    let oldest = book.summaries().map(|summary| summary.last_seen.0).min().unwrap_or(full_at.0);
    // librdkafka's statistics come every 100 ms: the count after the read is at most that late.
    // What arrives meanwhile (live shards) is counted too, so the figure errs high.
    let settle = Instant::now() + Duration::from_millis(300);
    while Instant::now() < settle {
        feed.poll(&mut book, None, Duration::from_millis(50))?;
    }
    let wire_bytes = feed.wire_bytes().ok_or_else(|| anyhow::anyhow!("librdkafka gave no statistics"))?;
    Ok(ColdStart {
        took,
        wire_bytes,
        payload_bytes,
        messages,
        worst_behind: Duration::from_millis(u64::try_from(full_at.0 - oldest).unwrap_or(0)),
    })
}
