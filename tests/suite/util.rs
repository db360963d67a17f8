//! The test harness: the broker, temp dirs, and the usagebill binary.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use usagebill::billing::biller::{Biller, RawMessage};
use usagebill::billing::ledger::Ledger;
use usagebill::billing::rate_card::RateCard;
use usagebill::record::{UnixMillis, UsageRecord};

use crate::kafka::{Kafka, Layout, shared_bootstrap};

/// A broker for a test: the shared Apache Kafka node (or `USAGEBILL_TEST_BOOTSTRAP`), or nodes of
/// the test's own that it may freeze, kill or cut.
pub struct Broker {
    /// `host:port` to bootstrap from.
    pub bootstrap: String,
    own: Option<Kafka>,
}

impl Broker {
    /// The shared broker: each test brings its own topics and group ids.
    pub fn start() -> Broker {
        Broker { bootstrap: shared_bootstrap(), own: None }
    }

    /// A single Apache Kafka node of this test's own.
    pub fn start_own() -> Broker {
        Broker::own(Layout::default())
    }

    /// A node of its own that tells clients to connect to `advertised_port` (a proxy in front of it).
    pub fn start_advertising(advertised_port: u16) -> Broker {
        Broker::own(Layout { advertise_port: Some(advertised_port), ..Layout::default() })
    }

    /// A node of its own on `port`, which must be free: for a broker that comes up after its clients.
    pub fn start_on_port(port: u16) -> Broker {
        Broker::own(Layout { port: Some(port), ..Layout::default() })
    }

    /// Nodes of this test's own laid out as `layout`.
    pub fn own(layout: Layout<'_>) -> Broker {
        let kafka = Kafka::start(layout);
        Broker { bootstrap: kafka.bootstrap(), own: Some(kafka) }
    }

    /// A broker someone else runs (or a proxy in front of ours), at `bootstrap`.
    pub fn external(bootstrap: String) -> Broker {
        Broker { bootstrap, own: None }
    }

    /// The nodes of this test's own.
    pub fn kafka(&self) -> &Kafka {
        self.own.as_ref().expect("this test started no broker of its own")
    }

    /// `--brokers B --topic T --cost-topic T.costs`: a test's own topics on any broker.
    pub fn args(&self, topic: &str) -> Vec<String> {
        ["--brokers", &self.bootstrap, "--topic", topic, "--cost-topic", &format!("{topic}.costs")].map(str::to_owned).to_vec()
    }
}

/// A loopback port nobody listens on (yet).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Sends `SIG<name>` to `pid`.
pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status();
}

/// A name unique to this test process and call, for topics and groups.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst))
}

/// The usagebill binary with a clean environment of its own.
pub fn usagebill(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_usagebill"));
    command
        .env_remove("USAGEBILL_BROKERS")
        .env_remove("USAGEBILL_TOPIC")
        .env_remove("USAGEBILL_COST_TOPIC")
        .env_remove("USAGEBILL_MACHINE_ID");
    command.env("USAGEBILL_CONFIG", data_dir.join("config.toml")).env("USAGEBILL_DATA_DIR", data_dir);
    command
}

/// Consumer settings for tests that kill workers: a dead member's partitions move after 6 s
/// rather than librdkafka's default 45 s.
pub const FAST_GROUP: [&str; 4] = ["--kafka-property", "session.timeout.ms=6000", "--kafka-property", "max.poll.interval.ms=6000"];

/// Runs `command`, asserting success, and returns its output.
pub fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("running usagebill");
    assert!(
        output.status.success(),
        "{command:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `usagebill report --format json` as parsed JSON.
pub fn report_json(data_dir: &Path) -> Vec<serde_json::Value> {
    let output = run_ok(usagebill(data_dir).args(["report", "--format", "json"]));
    serde_json::from_slice(&output.stdout).expect("report --format json prints JSON")
}

/// Every usage record in `topic`, read from the beginning of each partition without a consumer
/// group, until `want` have arrived or nothing new came for `quiet`.
pub fn read_topic(bootstrap: &str, topic: &str, want: usize, quiet: Duration) -> Vec<usagebill::record::UsageRecord> {
    read_topic_with(bootstrap, &[], topic, want, quiet)
}

/// [`read_topic`] with extra client `properties` (e.g. TLS settings).
pub fn read_topic_with(
    bootstrap: &str,
    properties: &[(&str, &str)],
    topic: &str,
    want: usize,
    quiet: Duration,
) -> Vec<usagebill::record::UsageRecord> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};

    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap).set("group.id", unique("reader")).set("enable.auto.commit", "false");
    for (key, value) in properties {
        config.set(*key, *value);
    }
    let consumer: BaseConsumer = config.create().expect("creating a test consumer");
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("reading topic metadata");
    let mut partitions = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|topic| topic.partitions()) {
        partitions.add_partition_offset(topic, partition.id(), Offset::Beginning).unwrap();
    }
    consumer.assign(&partitions).expect("assigning partitions");
    let mut records = Vec::new();
    let mut last_news = Instant::now();
    while records.len() < want && last_news.elapsed() < quiet {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("consuming");
            let payload = message.payload().expect("a payload");
            records.push(usagebill::record::UsageRecord::parse(payload).expect("a valid record"));
            last_news = Instant::now();
        }
    }
    records
}

/// Asserts `records` of one machine have seqs 1..=n in order, once each, and windows that tile.
pub fn assert_tiled_once_in_order(records: &[usagebill::record::UsageRecord]) {
    for (expected, record) in (1u64..).zip(records) {
        assert_eq!(record.seq, expected, "seqs out of order or duplicated: {:?}", records.iter().map(|r| r.seq).collect::<Vec<_>>());
    }
    for pair in records.windows(2) {
        assert_eq!(
            pair[0].end, pair[1].start,
            "seq {} ends at {} but seq {} starts at {}",
            pair[0].seq, pair[0].end, pair[1].seq, pair[1].start
        );
    }
}

/// Creates `topics` (one partition, the broker's default replication) as a client of `bootstrap`.
pub fn create_topics(bootstrap: &str, topics: &[&str]) {
    use rdkafka::ClientConfig;
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("an admin client");
    let new_topics: Vec<NewTopic> = topics.iter().map(|topic| NewTopic::new(topic, 1, TopicReplication::Fixed(-1))).collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in futures_executor::block_on(admin.create_topics(&new_topics, &options)).expect("creating topics") {
        result.unwrap_or_else(|(topic, code)| panic!("creating topic {topic}: {code:?}"));
    }
}

/// An hour in milliseconds.
pub const HOUR: i64 = 3_600_000;

/// Bills `hours` hourly windows of `machine` from `first` under the built-in card: 6 of 8 cores
/// busy from 09 to 17 UTC, a little from 17 to 20, nearly idle otherwise, with a level that
/// differs from day to day so that the forecast has errors to learn a band from.
pub fn bill_office_hours(ledger: &Path, machine: &str, first: UnixMillis, hours: u64) {
    let mut biller = Biller::new(Ledger::open(ledger).unwrap(), RateCard::built_in());
    let messages: Vec<RawMessage> = (0..hours)
        .map(|hour| {
            let start = first.plus_millis(hour as i64 * HOUR);
            let (day, hour_of_day) = (hour / 24, (start.0 / HOUR) % 24);
            let busy = match hour_of_day {
                9..17 => 75.0,
                17..20 => 20.0,
                _ => 2.0,
            };
            let level = [1.0, 0.8, 1.25, 0.9, 1.1][day as usize % 5];
            let record = UsageRecord { cpu_pct: busy * level, seq: hour + 1, ..UsageRecord::steady(machine, 1, start, HOUR) };
            RawMessage { topic: "seed".into(), partition: 0, offset: hour as i64, payload: Some(record.to_json()) }
        })
        .collect();
    biller.bill(&messages).unwrap();
}
