//! The broker the bench runs against: the one named by `--brokers`, or a single Apache Kafka node
//! that the checkout's `scripts/kafka.sh` assembles and this bench starts and stops.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// A broker for the bench; a node started here is stopped on drop.
pub struct BenchBroker {
    /// `host:port`.
    pub bootstrap: String,
    node: Option<(Child, tempfile::TempDir)>,
}

impl BenchBroker {
    /// Uses `brokers` when given, else starts Apache Kafka with `scripts/kafka.sh`.
    pub fn start(brokers: &[String]) -> anyhow::Result<BenchBroker> {
        if !brokers.is_empty() {
            return Ok(BenchBroker { bootstrap: brokers.join(","), node: None });
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka.sh");
        anyhow::ensure!(
            script.is_file(),
            "no broker: pass --brokers HOST:PORT (from a checkout, {} starts Apache Kafka)",
            script.display()
        );
        let dir = tempfile::Builder::new().prefix("usagebill-bench-kafka-").tempdir()?;
        let port = free_base_port(1)?;
        let init = Command::new(&script).arg("init").arg(dir.path()).args(["--port", &port.to_string()]).output()?;
        anyhow::ensure!(init.status.success(), "scripts/kafka.sh init failed: {}", String::from_utf8_lossy(&init.stderr));
        // `run` execs java in the foreground: the child is the broker, killed on drop.
        let child = Command::new(&script)
            .arg("run")
            .arg(dir.path())
            .arg("1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", script.display()))?;
        let broker = BenchBroker { bootstrap: format!("127.0.0.1:{port}"), node: Some((child, dir)) };
        let deadline = Instant::now() + Duration::from_secs(90);
        while TcpStream::connect(&broker.bootstrap).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "Apache Kafka did not listen on {} within 90 s", broker.bootstrap);
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("bench: Apache Kafka on {}", broker.bootstrap);
        Ok(broker)
    }
}

impl BenchBroker {
    /// CPU time the broker used so far, when the bench started it (`None` for `--brokers`).
    pub fn cpu(&self) -> Option<Duration> {
        let (child, _) = self.node.as_ref()?;
        // `run` execs java, so the child's pid is the broker's.
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).ok()?;
        // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // SAFETY: sysconf with a valid name has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Some(Duration::from_millis(ticks * 1000 / per_second))
    }
}

/// CPU time this process used so far, all its threads.
pub fn own_cpu() -> Duration {
    // SAFETY: a zeroed rusage is a valid value for getrusage to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    cpu_of(&usage)
}

/// User and system time of a resource usage.
pub fn cpu_of(usage: &libc::rusage) -> Duration {
    let time = |value: libc::timeval| Duration::from_secs(value.tv_sec as u64) + Duration::from_micros(value.tv_usec as u64);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// A base port whose four listener ports for each of `nodes` nodes are free (node N from BASE +
/// 10 (N - 1)), below the ephemeral range.
fn free_base_port(nodes: u16) -> anyhow::Result<u16> {
    let seed = std::process::id() as u16 % 1_000;
    let ports = |base: u16| (0..nodes).flat_map(move |node| (0..4).map(move |offset| base + node * 10 + offset));
    (0..1_000u16)
        .map(|step| 20_000 + ((seed + step * 7) % 1_000) * 10)
        .filter(|base| u32::from(*base) + u32::from(nodes) * 10 < 30_000)
        .find(|base| ports(*base).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok()))
        .context("no free ports for Kafka nodes between 20000 and 30000")
}

/// A three-node Apache Kafka cluster (KRaft, each node a controller and a broker) that the
/// checkout's `scripts/kafka.sh` assembles; stopped on drop.
pub struct BenchCluster {
    /// `host:port,host:port,host:port`.
    pub bootstrap: String,
    script: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl BenchCluster {
    /// Starts the three nodes and waits for each to listen.
    pub fn start() -> anyhow::Result<BenchCluster> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka.sh");
        anyhow::ensure!(script.is_file(), "the three-node run needs {} (run the bench from a checkout)", script.display());
        let dir = tempfile::Builder::new().prefix("usagebill-bench-cluster-").tempdir()?;
        let port = free_base_port(3)?;
        let init = Command::new(&script).arg("init").arg(dir.path()).args(["--nodes", "3", "--port", &port.to_string()]).output()?;
        anyhow::ensure!(init.status.success(), "scripts/kafka.sh init --nodes 3 failed: {}", String::from_utf8_lossy(&init.stderr));
        // `init` ends by printing the bootstrap list.
        let printed = String::from_utf8_lossy(&init.stdout).into_owned();
        let bootstrap = printed.lines().last().unwrap_or_default().trim().to_owned();
        anyhow::ensure!(bootstrap.contains(':'), "scripts/kafka.sh init printed no bootstrap list: {printed:?}");
        let cluster = BenchCluster { bootstrap, script, dir };
        let started = Command::new(&cluster.script).arg("start").arg(cluster.dir.path()).stdout(Stdio::null()).output()?;
        anyhow::ensure!(started.status.success(), "scripts/kafka.sh start failed: {}", String::from_utf8_lossy(&started.stderr));
        eprintln!("bench: a three-node Apache Kafka cluster on {}", cluster.bootstrap);
        Ok(cluster)
    }
}

impl Drop for BenchCluster {
    fn drop(&mut self) {
        let _ = Command::new(&self.script).arg("stop").arg(self.dir.path()).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

impl Drop for BenchBroker {
    fn drop(&mut self) {
        if let Some((process, _)) = &mut self.node {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}
