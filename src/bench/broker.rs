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
        let port = free_base_port()?;
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

/// A base port whose four listener ports are free, below the ephemeral range.
fn free_base_port() -> anyhow::Result<u16> {
    let seed = std::process::id() as u16 % 1_000;
    (0..1_000u16)
        .map(|step| 20_000 + ((seed + step * 7) % 1_000) * 10)
        .find(|base| (0..4).all(|offset| TcpListener::bind(("127.0.0.1", base + offset)).is_ok()))
        .context("no free ports for a Kafka node between 20000 and 30000")
}

impl Drop for BenchBroker {
    fn drop(&mut self) {
        if let Some((process, _)) = &mut self.node {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}
