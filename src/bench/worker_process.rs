//! `usagebill worker` as a process of its own, for the runs that measure one worker's CPU time or
//! move partitions between workers: its ledger, log and data dir in a scratch dir, its CPU time
//! taken from the kernel when it is reaped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::billing::ledger::Ledger;

/// A worker process and the files it writes.
pub struct WorkerProcess {
    child: Child,
    /// Its ledger.
    pub ledger: PathBuf,
    /// Its stderr (the log: roles, takeovers).
    pub log: PathBuf,
}

/// What a reaped worker used and billed.
pub struct Reaped {
    /// User and system CPU time, all its threads.
    pub cpu: Duration,
    /// Records in its ledger.
    pub billed: u64,
    /// The last summary role it logged.
    pub role: &'static str,
}

/// How a worker process is started: the broker, topics and group, and its own flags.
pub struct WorkerLaunch<'a> {
    pub binary: &'a Path,
    pub bootstrap: &'a str,
    pub topic: &'a str,
    pub cost_topic: &'a str,
    pub group: &'a str,
    pub extra: &'a [&'a str],
}

impl WorkerLaunch<'_> {
    /// Starts a worker whose files go in `dir` (created).
    pub fn spawn(&self, dir: &Path) -> anyhow::Result<WorkerProcess> {
        std::fs::create_dir_all(dir)?;
        let ledger = dir.join("ledger.db");
        let log = dir.join("worker.log");
        let child = Command::new(self.binary)
            .env("USAGEBILL_DATA_DIR", dir)
            .env("USAGEBILL_CONFIG", dir.join("config.toml"))
            .env("RUST_LOG", "usagebill=info,warn")
            .args(["--brokers", self.bootstrap, "--topic", self.topic, "--cost-topic", self.cost_topic])
            .args(["worker", "--group", self.group, "--ledger"])
            .arg(&ledger)
            .args(self.extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {} worker", self.binary.display()))?;
        Ok(WorkerProcess { child, ledger, log })
    }
}

impl WorkerProcess {
    /// Records in its ledger so far.
    pub fn billed(&self) -> anyhow::Result<u64> {
        if !self.ledger.exists() {
            return Ok(0);
        }
        let ledger = Ledger::open_read_only(&self.ledger)?;
        let count: i64 = ledger.connection().query_row("SELECT count(*) FROM records", [], |row| row.get(0))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Partitions of `topic` its ledger holds offsets for.
    pub fn partitions(&self, topic: &str) -> anyhow::Result<Vec<i32>> {
        let ledger = Ledger::open_read_only(&self.ledger)?;
        let mut statement = ledger.connection().prepare("SELECT partition FROM offsets WHERE topic = ?1 ORDER BY partition")?;
        let partitions = statement.query_map([topic], |row| row.get(0))?.collect::<Result<Vec<i32>, _>>()?;
        Ok(partitions)
    }

    /// Asks it to stop as Ctrl-C would.
    pub fn interrupt(&self) {
        // SAFETY: kill(2) on a child this process spawned and has not reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
    }

    /// Waits for it to exit (at most `limit`, then kills it and fails) and takes its CPU time.
    pub fn reap(self, limit: Duration) -> anyhow::Result<Reaped> {
        let pid = self.child.id() as libc::pid_t;
        let deadline = std::time::Instant::now() + limit;
        let mut status = 0;
        // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: wait4 on our own child with valid pointers; WNOHANG returns at once.
            let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
            anyhow::ensure!(reaped >= 0, "waiting for worker {pid}: {}", std::io::Error::last_os_error());
            if reaped == pid {
                break;
            }
            if std::time::Instant::now() > deadline {
                // SAFETY: as in `interrupt`.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                anyhow::bail!("worker {pid} did not stop within {} s; its log: {}", limit.as_secs(), self.log.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let exited = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        anyhow::ensure!(exited, "worker {pid} failed (status {status}); its log ends: {}", tail(&text));
        Ok(Reaped { cpu: super::broker::cpu_of(&usage), billed: self.billed()?, role: last_role(&text) })
    }
}

/// The last role a worker's log names.
fn last_role(log: &str) -> &'static str {
    let roles = [
        ("summary publisher: leading", "leader"),
        ("summary publisher: standing by", "standby"),
        ("summary publisher: neither", "neither"),
    ];
    roles.into_iter().filter_map(|(line, role)| log.rfind(line).map(|at| (at, role))).max().map_or("no summary", |(_, role)| role)
}

fn tail(text: &str) -> &str {
    let start = text.len().saturating_sub(2_000);
    let start = (start..text.len()).find(|at| text.is_char_boundary(*at)).unwrap_or(text.len());
    &text[start..]
}
