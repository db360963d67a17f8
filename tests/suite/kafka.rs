//! Apache Kafka for the suite, run through `scripts/kafka.sh`: one shared node for the tests that only
//! need a broker (each test its own topics and groups), and nodes or a three-node cluster of a test's
//! own for the tests that freeze, kill, cut or secure a broker.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// How to get what the broker needs, for the message of a test that finds it missing.
pub const HOW_TO_GET_ONE: &str = "the tests run Apache Kafka from Maven Central with scripts/kafka.sh: they need Java 17 \
and Maven (Debian: apt-get install openjdk-17-jre-headless maven; ./scripts/test.sh installs them), or point \
USAGEBILL_TEST_BOOTSTRAP=host:port at a running Kafka for the tests that share a broker";

/// Port offsets of one node's listeners from its base port (see `scripts/kafka.sh`).
pub const SASL_PLAINTEXT_OFFSET: u16 = 2;
/// The SASL_SSL listener's offset from a node's base port.
pub const SASL_SSL_OFFSET: u16 = 3;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka.sh")
}

/// Runs `kafka.sh ARGS`, panicking with its own words (they say what is missing) on failure.
pub fn kafka_sh(args: &[&str]) -> String {
    let output = Command::new(script()).args(args).output().unwrap_or_else(|error| panic!("running scripts/kafka.sh: {error}"));
    assert!(
        output.status.success(),
        "scripts/kafka.sh {} failed:\n{}\n{HOW_TO_GET_ONE}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Fetches the broker's jars once per test process (tests start brokers in parallel).
fn fetch_once() {
    static FETCHED: OnceLock<()> = OnceLock::new();
    FETCHED.get_or_init(|| {
        kafka_sh(&["fetch"]);
    });
}

/// A base port whose node listeners (10 ports a node) are all free, below the ephemeral range so
/// that no client's outgoing connection takes one meanwhile.
fn free_base_port(nodes: u16) -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let spread = std::process::id() % 200;
    loop {
        let slot = NEXT.fetch_add(1, Ordering::SeqCst);
        let base = 20_000 + ((spread + slot * 7) % 400) as u16 * 30;
        if (0..nodes * 10).all(|offset| TcpListener::bind(("127.0.0.1", base + offset)).is_ok()) {
            return base;
        }
    }
}

/// One running node: the watchdog that holds it (killing the node when this process dies) and its pid.
struct Node {
    watchdog: Child,
    keep_alive: Option<ChildStdin>,
}

/// Apache Kafka nodes of a test's own (or the shared one), in a temp dir, killed on drop.
pub struct Kafka {
    dir: tempfile::TempDir,
    host: String,
    base_port: u16,
    /// `ip netns exec NAME` for a node inside a network namespace.
    prefix: Vec<String>,
    nodes: Mutex<Vec<Option<Node>>>,
}

/// How to lay out a [`Kafka`].
#[derive(Default)]
pub struct Layout<'a> {
    /// Three nodes (replication 3, min ISR 2) instead of one.
    pub cluster: bool,
    /// The base port, for a broker that must come up on a port chosen earlier.
    pub port: Option<u16>,
    /// Where it listens (an address in a network namespace); loopback by default.
    pub host: Option<&'a str>,
    /// The network namespace to run in.
    pub netns: Option<&'a str>,
    /// Advertise this PLAINTEXT port instead of the node's own (a proxy in front of it).
    pub advertise_port: Option<u16>,
}

impl Kafka {
    /// Writes, formats and starts a node (or three), and waits until each answers metadata.
    pub fn start(layout: Layout<'_>) -> Kafka {
        fetch_once();
        let nodes: u16 = if layout.cluster { 3 } else { 1 };
        let base_port = layout.port.unwrap_or_else(|| free_base_port(nodes));
        let host = layout.host.unwrap_or("127.0.0.1").to_owned();
        let dir = tempfile::Builder::new().prefix("kafka-").tempdir().expect("a temp dir for Kafka");
        let dir_text = dir.path().to_str().unwrap().to_owned();
        let (nodes_text, port_text) = (nodes.to_string(), base_port.to_string());
        let mut init = vec!["init", dir_text.as_str(), "--nodes", &nodes_text, "--port", &port_text, "--host", &host];
        let advertise = layout.advertise_port.map(|port| port.to_string());
        if let Some(port) = &advertise {
            init.extend(["--advertise-port", port]);
        }
        kafka_sh(&init);
        let prefix = layout.netns.map_or_else(Vec::new, |name| vec!["ip".into(), "netns".into(), "exec".into(), name.to_owned()]);
        let kafka = Kafka { dir, host, base_port, prefix, nodes: Mutex::new((0..nodes).map(|_| None).collect()) };
        for node in 1..=nodes {
            kafka.spawn(node);
        }
        for node in 1..=nodes {
            kafka.wait_ready(node, Duration::from_secs(90));
        }
        kafka.wait_for_brokers(nodes as usize);
        kafka
    }

    fn spawn(&self, node: u16) {
        // The watchdog runs the node and kills it when its stdin closes: when this test process
        // exits, however it exits, no broker is left behind.
        let watch = r#""$0" run "$1" "$2" & broker=$!; cat >/dev/null; kill -9 "$broker" 2>/dev/null; wait"#;
        let mut command = match self.prefix.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg("sh");
                command
            }
            None => Command::new("sh"),
        };
        let _ = std::fs::remove_file(self.node_dir(node).join("pid"));
        let mut watchdog = command
            .args(["-c", watch])
            .arg(script())
            .arg(self.dir.path())
            .arg(node.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("starting Kafka node {node}: {error}; {HOW_TO_GET_ONE}"));
        let keep_alive = watchdog.stdin.take();
        self.nodes.lock().unwrap()[usize::from(node - 1)] = Some(Node { watchdog, keep_alive });
    }

    fn node_dir(&self, node: u16) -> PathBuf {
        self.dir.path().join(format!("node-{node}"))
    }

    /// The PLAINTEXT `host:port` of `node`.
    pub fn address(&self, node: u16) -> String {
        self.listener(node, 0)
    }

    /// `host:port` of `node`'s listener at `offset` (see [`SASL_SSL_OFFSET`]).
    pub fn listener(&self, node: u16, offset: u16) -> String {
        format!("{}:{}", self.host, self.base_port + 10 * (node - 1) + offset)
    }

    /// Every node's PLAINTEXT address, comma-separated.
    pub fn bootstrap(&self) -> String {
        self.bootstrap_at(0)
    }

    /// Every node's listener at `offset`, comma-separated.
    pub fn bootstrap_at(&self, offset: u16) -> String {
        let nodes = self.nodes.lock().unwrap().len() as u16;
        (1..=nodes).map(|node| self.listener(node, offset)).collect::<Vec<_>>().join(",")
    }

    /// The test CA that signed the brokers' TLS certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("tls/ca.pem")
    }

    /// The node's java process id (for SIGSTOP or SIGKILL).
    pub fn pid(&self, node: u16) -> u32 {
        let path = self.node_dir(node).join("pid");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(pid) = std::fs::read_to_string(&path).ok().and_then(|text| text.trim().parse().ok()) {
                return pid;
            }
            assert!(Instant::now() < deadline, "node {node} wrote no pid file at {}", path.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `node`'s client port accepts and its metadata answers.
    fn wait_ready(&self, node: u16, limit: Duration) {
        let deadline = Instant::now() + limit;
        let address = self.address(node);
        while TcpStream::connect_timeout(&address.parse().unwrap(), Duration::from_millis(500)).is_err() {
            if let Some(Node { watchdog, .. }) = self.nodes.lock().unwrap()[usize::from(node - 1)].as_mut()
                && let Ok(Some(status)) = watchdog.try_wait()
            {
                panic!("Kafka node {node} exited ({status}) while starting; its log:\n{}", self.log_tail(node));
            }
            assert!(
                Instant::now() < deadline,
                "Kafka node {node} did not open {address} within {limit:?}; its log:\n{}",
                self.log_tail(node)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        metadata_brokers(&address, deadline);
    }

    /// Waits until the cluster's metadata lists `count` brokers.
    fn wait_for_brokers(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while metadata_brokers(&self.bootstrap(), deadline) < count {
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log_tail(&self, node: u16) -> String {
        let text = std::fs::read_to_string(self.node_dir(node).join("server.log")).unwrap_or_default()
            + &std::fs::read_to_string(self.node_dir(node).join("stdout.log")).unwrap_or_default();
        text.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// SIGKILLs `node` and reaps it.
    pub fn kill(&self, node: u16) {
        self.end(node, "KILL");
    }

    /// Stops `node` gracefully (SIGTERM: it hands over leadership first) and waits for it to exit.
    pub fn stop(&self, node: u16) {
        self.end(node, "TERM");
    }

    fn end(&self, node: u16, signal_name: &str) {
        let pid = self.pid(node);
        crate::util::signal(pid, "CONT");
        crate::util::signal(pid, signal_name);
        if let Some(mut running) = self.nodes.lock().unwrap()[usize::from(node - 1)].take() {
            let deadline = Instant::now() + Duration::from_secs(60);
            while running_process(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(running.keep_alive.take());
            let _ = running.watchdog.wait();
        }
    }

    /// Starts a stopped or killed `node` again and waits until it answers.
    pub fn restart(&self, node: u16) {
        self.spawn(node);
        self.wait_ready(node, Duration::from_secs(90));
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) `node`.
    pub fn freeze(&self, node: u16, frozen: bool) {
        crate::util::signal(self.pid(node), if frozen { "STOP" } else { "CONT" });
    }

    /// Runs `kafka.sh acl DIR ARGS` (Kafka's AclCommand, as a super user).
    pub fn acl(&self, args: &[&str]) {
        let dir = self.dir.path().to_str().unwrap();
        kafka_sh(&[&["acl", dir], args].concat());
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        let nodes = self.nodes.lock().map(|nodes| nodes.len()).unwrap_or(0) as u16;
        for node in 1..=nodes {
            if let Ok(pid) = std::fs::read_to_string(self.node_dir(node).join("pid")) {
                crate::util::signal(pid.trim().parse().unwrap_or(0), "CONT");
            }
            if let Ok(mut nodes) = self.nodes.lock()
                && let Some(mut running) = nodes[usize::from(node - 1)].take()
            {
                // Closing the watchdog's stdin makes it SIGKILL its node.
                if let Some(mut stdin) = running.keep_alive.take() {
                    let _ = stdin.flush();
                }
                let _ = running.watchdog.wait();
            }
        }
    }
}

/// Whether `pid` is alive and not yet a zombie (its watchdog reaps it only once told to).
fn running_process(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

/// How many brokers the metadata at `bootstrap` lists, retrying until `deadline`.
pub fn metadata_brokers(bootstrap: &str, deadline: Instant) -> usize {
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("a metadata client");
    loop {
        match consumer.fetch_metadata(None, Duration::from_secs(5)) {
            Ok(metadata) => return metadata.brokers().len(),
            Err(error) => assert!(Instant::now() < deadline, "Kafka at {bootstrap} answered no metadata: {error}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The node every test that only needs a broker shares (or `USAGEBILL_TEST_BOOTSTRAP`), started on
/// first use and killed when the test process exits.
pub fn shared_bootstrap() -> String {
    static SHARED: OnceLock<(String, Option<Kafka>)> = OnceLock::new();
    let (bootstrap, _) = SHARED.get_or_init(|| match std::env::var("USAGEBILL_TEST_BOOTSTRAP") {
        Ok(bootstrap) if !bootstrap.is_empty() => (bootstrap, None),
        _ => {
            let kafka = Kafka::start(Layout::default());
            (kafka.bootstrap(), Some(kafka))
        }
    });
    bootstrap.clone()
}
