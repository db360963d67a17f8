//! The final read after a fault, as Jepsen does it: once the fault has healed and the agent has
//! stopped, count what the agent closed, what reached the topic and what a fresh worker billed, then
//! assert nothing was lost, nothing unknown appeared, nothing was billed twice, the offsets have no
//! holes, the total matches a recomputation from the card's prices, and every database is sound.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use usagebill::record::UsageRecord;

use crate::ledger_faults::assert_integrity;
use crate::util::{Broker, FAST_GROUP, report_json, run_ok, unique, usagebill};

/// The figures of one audited run.
#[derive(Debug)]
pub struct Audit {
    /// Windows the agent closed (its next seq, less one).
    pub closed: u64,
    /// Messages in the topic, re-sends included.
    pub sent: usize,
    /// Messages that repeat a seq already in the topic (a re-send after a kill or a fenced producer).
    pub duplicated: usize,
    /// Records the fresh worker billed.
    pub billed: u64,
    /// Their exact cost.
    pub cost: Decimal,
    /// Every message of the topic, in partition order, as the audit read it.
    pub messages: Vec<UsageRecord>,
}

/// Audits the run of the agent whose data dir is `agent_dir` and machine id `machine`, which sent
/// to `topic` on `broker`; the agent must have stopped.
pub fn audit_agent_run(broker: &Broker, topic: &str, agent_dir: &Path, machine: &str) -> Audit {
    let outbox = agent_dir.join("outbox.db");
    assert_integrity(&outbox);
    let connection = rusqlite::Connection::open(&outbox).unwrap();
    let waiting: i64 = connection.query_row("SELECT count(*) FROM waiting", [], |row| row.get(0)).unwrap();
    assert_eq!(waiting, 0, "the outbox is empty: everything was delivered");
    let next_seq: i64 = connection.query_row("SELECT value FROM state WHERE key = 'next_seq'", [], |row| row.get(0)).unwrap();
    let closed = next_seq as u64 - 1;

    // A broker may acknowledge a record a moment before a fetch shows it; read again (from the
    // start, so nothing is counted twice) before calling a record lost.
    let mut reads = 0;
    let (messages, partition_ends) = loop {
        reads += 1;
        let (messages, ends) = read_to_end(&broker.bootstrap, topic);
        let seen: BTreeSet<u64> = messages.iter().map(|record| record.seq).collect();
        if seen.len() as u64 >= closed || reads == 5 {
            if reads > 1 && seen.len() as u64 >= closed {
                eprintln!("audit: the topic showed every closed window only at read {reads}");
            }
            if seen.len() as u64 != closed {
                eprintln!("audit: partition ends {ends:?}; {} messages read, seqs {:?}", messages.len(), seen);
            }
            break (messages, ends);
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    let mut by_seq: BTreeMap<u64, &UsageRecord> = BTreeMap::new();
    for record in &messages {
        assert_eq!(record.machine_id, machine, "an unknown machine in the topic: {record:?}");
        assert!((1..=closed).contains(&record.seq), "seq {} was never closed by the agent (closed 1..={closed})", record.seq);
        if let Some(first) = by_seq.insert(record.seq, record) {
            assert_eq!(first, record, "a re-sent seq {} carries the same window and usage", record.seq);
        }
    }
    let lost: Vec<u64> = (1..=closed).filter(|seq| !by_seq.contains_key(seq)).collect();
    assert!(lost.is_empty(), "closed windows lost: seqs {lost:?}");

    let ledger_dir = tempfile::tempdir().unwrap();
    run_ok(
        usagebill(ledger_dir.path())
            .args(broker.args(topic))
            .args(["worker", "--exit-when-idle", "2s", "--no-feed"])
            .args(["--group", &unique("audit")])
            .args(FAST_GROUP),
    );
    let machines = report_json(ledger_dir.path());
    assert_eq!(machines.len(), 1, "one machine billed: {machines:?}");
    let billed = machines[0]["records"].as_u64().unwrap();
    assert_eq!(billed, closed, "every closed window billed exactly once");
    assert_eq!(machines[0]["gaps"], 0, "no metering gap");
    let cost = Decimal::from_str(machines[0]["cost"].as_str().unwrap()).unwrap();
    let expected: Decimal = by_seq.values().map(|record| list_price(record)).sum();
    // The ledger divides in a different order than this recomputation; they agree far below a cent.
    assert!((cost - expected).abs() < Decimal::new(1, 18), "billed {cost}, recomputed {expected}");

    let ledger = ledger_dir.path().join("ledger.db");
    assert_integrity(&ledger);
    let connection = rusqlite::Connection::open(&ledger).unwrap();
    let mut statement = connection.prepare("SELECT partition, next_offset FROM offsets WHERE topic = ?1").unwrap();
    let stored: BTreeMap<i32, i64> =
        statement.query_map([topic], |row| Ok((row.get(0)?, row.get(1)?))).unwrap().map(Result::unwrap).collect();
    let written: BTreeMap<i32, i64> = partition_ends.into_iter().filter(|(_, high)| *high > 0).collect();
    assert_eq!(stored, written, "the ledger's offsets reach the end of every partition: no hole");

    let duplicated = messages.len() - by_seq.len();
    let audit = Audit { closed, sent: messages.len(), duplicated, billed, cost, messages };
    eprintln!(
        "audit: {} windows closed, {} messages sent, 0 lost, {} re-sent and billed once, {} billed, offsets to the end",
        audit.closed, audit.sent, audit.duplicated, audit.billed
    );
    audit
}

impl Audit {
    /// Asserts that the windows, taken once each in seq order, tile time. The topic's order may
    /// differ after a fault: a record that timed out goes again after later ones were delivered
    /// (ordering holds within one producer's attempt, not across a timeout); billing goes by seq.
    pub fn assert_tiled(&self) {
        let mut by_seq: Vec<&UsageRecord> = self.messages.iter().collect();
        by_seq.sort_by_key(|record| record.seq);
        by_seq.dedup_by_key(|record| record.seq);
        for pair in by_seq.windows(2) {
            assert_eq!(
                pair[0].end, pair[1].start,
                "seq {} ends at {} but seq {} starts at {}",
                pair[0].seq, pair[0].end, pair[1].seq, pair[1].start
            );
        }
        let out_of_order = self.messages.windows(2).filter(|pair| pair[1].seq < pair[0].seq).count();
        if out_of_order > 0 {
            eprintln!("audit: {out_of_order} place(s) in the topic where a re-sent window follows later ones");
        }
    }

    /// closed / sent / lost / duplicated / billed / cost, as the notes and docs give them.
    pub fn figures(&self) -> String {
        format!("{} / {} / 0 / {} / {} / {}", self.closed, self.sent, self.duplicated, self.billed, self.cost)
    }
}

/// One record's price under the built-in card, computed here from its published list prices.
fn list_price(record: &UsageRecord) -> Decimal {
    let price = |text: &str| Decimal::from_str(text).unwrap();
    let hours = Decimal::from(record.window_millis()) / Decimal::from(3_600_000);
    let gigabytes = |bytes: u64| Decimal::from(bytes) / Decimal::from(1_000_000_000);
    let cpu_share = Decimal::from_str(&record.cpu_pct.to_string()).unwrap() / Decimal::ONE_HUNDRED;
    cpu_share * Decimal::from(record.cpu_cores) * hours * price("0.04")
        + gigabytes(record.mem_used_bytes) * hours * price("0.005")
        + gigabytes(record.net_rx_bytes) * price("0.01")
        + gigabytes(record.net_tx_bytes) * price("0.09")
        + gigabytes(record.disk_read_bytes) * price("0.01")
        + gigabytes(record.disk_write_bytes) * price("0.01")
}

/// Every message of `topic` from the start of each partition to its end, and each partition's end.
///
/// The end is the high watermark read first, and the read goes on until a fetch reports partition
/// EOF there too, so a message appended meanwhile is read rather than missed.
fn read_to_end(bootstrap: &str, topic: &str) -> (Vec<UsageRecord>, BTreeMap<i32, i64>) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::KafkaError;
    use rdkafka::message::Message;
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("auditor"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("creating the auditor's consumer");
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("reading topic metadata");
    let mut watermarks = BTreeMap::new();
    let mut partitions = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|topic| topic.partitions()) {
        let (_, high) = consumer.fetch_watermarks(topic, partition.id(), Duration::from_secs(10)).expect("reading watermarks");
        watermarks.insert(partition.id(), high);
        partitions.add_partition_offset(topic, partition.id(), Offset::Beginning).unwrap();
    }
    consumer.assign(&partitions).expect("assigning partitions");
    let mut next: BTreeMap<i32, i64> = watermarks.keys().map(|partition| (*partition, 0)).collect();
    let mut at_end = BTreeSet::new();
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while next.iter().any(|(partition, offset)| *offset < watermarks[partition] || !at_end.contains(partition)) {
        assert!(Instant::now() < deadline, "the topic was not read to its end within 30 s: at {next:?} of {watermarks:?}");
        match consumer.poll(Duration::from_millis(100)) {
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
            }
            Some(message) => {
                let message = message.expect("consuming");
                records.push(UsageRecord::parse(message.payload().expect("a payload")).expect("a valid record"));
                next.insert(message.partition(), message.offset() + 1);
                at_end.remove(&message.partition());
            }
            None => {}
        }
    }
    (records, next)
}
