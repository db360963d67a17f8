//! Faults under the worker's ledger: a full disk and I/O errors injected with strace. The worker
//! keeps the refused batch, says why, retries, and bills every record exactly once after the fault.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use crate::billing::{assert_verifies, constant_cost, ledger_records, simulate, totals, wait_success, worker};
use crate::disk::SmallDisk;
use crate::util::{Broker, report_json, unique};

const RECORDS: u64 = 20_000;

/// Asserts SQLite's `PRAGMA integrity_check` says ok for `database`.
pub fn assert_integrity(database: &Path) {
    let connection = rusqlite::Connection::open(database).unwrap();
    let verdict: String = connection.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
    assert_eq!(verdict, "ok", "integrity_check of {}", database.display());
}

/// Waits until `log` contains `text`, panicking with the log if `child` exits first or after `within`.
fn wait_for_log(child: &mut Child, log: &Path, text: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let contents = std::fs::read_to_string(log).unwrap_or_default();
        if contents.contains(text) {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the worker exited ({status}) before logging {text:?}; its log:\n{contents}");
        }
        assert!(Instant::now() < deadline, "the worker never logged {text:?} within {within:?}; its log:\n{contents}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every record billed once, priced exactly, no gap, the stored lines re-price the same, the file sound.
fn assert_billed_exactly(data: &Path) {
    let machines = report_json(data);
    let (records, cost) = totals(&machines);
    assert_eq!(records, RECORDS, "every record billed exactly once");
    assert_eq!(cost, constant_cost(Decimal::from(10)) * Decimal::from(RECORDS), "an exact total");
    assert!(machines.iter().all(|machine| machine["gaps"] == 0), "no metering gap");
    assert_verifies(data);
    assert_integrity(&data.join("ledger.db"));
}

#[test]
fn a_full_disk_under_the_ledger_holds_the_batch_and_recovers_by_itself() {
    let broker = Broker::start();
    let topic = unique("usage");
    let producer = tempfile::tempdir().unwrap();
    simulate(producer.path(), &broker, &topic, &["--machines", "20", "--records", &RECORDS.to_string(), "--window", "10s"]);

    // The worker's data dir is a tmpfs with room for all the records, filled but for 2 MiB.
    let disk = SmallDisk::mount("64m");
    let mut fillers = Vec::new();
    let chunk = vec![0u8; 1 << 20];
    loop {
        let filler = disk.path().join(format!("filler{}", fillers.len()));
        if std::fs::write(&filler, &chunk).is_err() {
            std::fs::remove_file(&filler).unwrap();
            break;
        }
        fillers.push(filler);
    }
    for freed in fillers.drain(fillers.len() - 2..) {
        std::fs::remove_file(freed).unwrap();
    }
    let log = producer.path().join("worker.log");
    let mut child = worker(disk.path(), &broker, &topic, &unique("billing"), "3s")
        .args(["--batch-size", "500", "--no-feed"])
        .env("RUST_LOG", "info")
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for_log(&mut child, &log, "refused a write", Duration::from_secs(60));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("disk is full") && logged.contains("ledger.db"), "the error names the cause and the file:\n{logged}");
    let held = ledger_records(&disk.path().join("ledger.db"));
    assert!(held > 0 && (held as u64) < RECORDS, "the disk filled part-way: {held} records billed");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(ledger_records(&disk.path().join("ledger.db")), held, "nothing half-written while the disk is full");

    for filler in fillers {
        std::fs::remove_file(filler).unwrap();
    }
    wait_success(child, Duration::from_secs(90), Some(&log));
    assert!(std::fs::read_to_string(&log).unwrap().contains("ledger writable again"), "the worker says it recovered");
    eprintln!("disk full after {held} records; recovered and billed all {RECORDS}");
    assert_billed_exactly(disk.path());
}

/// `command` run under `strace` with `strace_args`: same program, arguments and environment.
fn under_strace(command: &Command, strace_args: &[&str]) -> Command {
    let mut traced = Command::new("strace");
    traced.args(strace_args).arg("--").arg(command.get_program()).args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => traced.env(key, value),
            None => traced.env_remove(key),
        };
    }
    traced
}

#[test]
fn io_errors_injected_into_ledger_writes_are_retried_and_bill_once() {
    let strace = Command::new("strace").arg("-V").output();
    assert!(
        strace.is_ok_and(|output| output.status.success()),
        "this test injects I/O errors with strace: install it (`apt-get install strace`; ./scripts/test.sh does)"
    );
    let broker = Broker::start();
    let topic = unique("usage");
    let data = tempfile::tempdir().unwrap();
    simulate(data.path(), &broker, &topic, &["--machines", "20", "--records", &RECORDS.to_string(), "--window", "10s"]);
    let log = data.path().join("worker.log");
    let mut plain = worker(data.path(), &broker, &topic, &unique("billing"), "3s");
    plain.args(["--batch-size", "500", "--no-feed"]).env("RUST_LOG", "info");
    // SQLite writes its pages with pwrite64; the 400th to 407th such call (while billing, after the
    // ledger was created) fails with EIO.
    let mut child =
        under_strace(&plain, &["-f", "-qq", "-o", "/dev/null", "-e", "trace=pwrite64", "-e", "inject=pwrite64:error=EIO:when=400..407"])
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
    wait_for_log(&mut child, &log, "refused a write", Duration::from_secs(60));
    wait_success(child, Duration::from_secs(90), Some(&log));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("disk I/O error"), "the error names the cause:\n{logged}");
    assert!(logged.contains("ledger writable again"), "the worker says it recovered:\n{logged}");
    assert_billed_exactly(data.path());
}
