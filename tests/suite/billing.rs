//! Billing against a real broker with real worker processes: window-length independence, duplicate
//! produce, SIGKILLed workers, scale-out over a consumer group with the cost feed, quarantine, verify.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use crate::util::{Broker, FAST_GROUP, report_json, run_ok, signal, unique, usagebill};

/// The cost of one constant-profile machine for `seconds`, from the built-in card's prices.
pub fn constant_cost(seconds: Decimal) -> Decimal {
    let hours = seconds / Decimal::from(3600);
    let core_hours = Decimal::from(4) * hours; // 50 % of 8 cores
    let memory_gb_hours = Decimal::from_str("4.294967296").unwrap() * hours; // 4 GiB
    let gigabytes = seconds / Decimal::from(1000); // 1 MB/s
    core_hours * Decimal::from_str("0.04").unwrap()
        + memory_gb_hours * Decimal::from_str("0.005").unwrap()
        + gigabytes * Decimal::from_str("0.12").unwrap() // rx 0.01 + tx 0.09 + read 0.01 + write 0.01
}

fn kafka(broker: &Broker, topic: &str) -> Vec<String> {
    broker.args(topic)
}

pub fn simulate(data: &Path, broker: &Broker, topic: &str, args: &[&str]) {
    run_ok(usagebill(data).args(kafka(broker, topic)).arg("simulate").args(args));
}

pub fn worker(data: &Path, broker: &Broker, topic: &str, group: &str, idle: &str) -> Command {
    let mut command = usagebill(data);
    command.args(kafka(broker, topic)).args(["worker", "--group", group, "--exit-when-idle", idle]).args(FAST_GROUP);
    command
}

pub fn totals(machines: &[serde_json::Value]) -> (u64, Decimal) {
    let records = machines.iter().map(|machine| machine["records"].as_u64().unwrap()).sum();
    let cost = machines.iter().map(|machine| Decimal::from_str(machine["cost"].as_str().unwrap()).unwrap()).sum();
    (records, cost)
}

pub fn assert_verifies(data: &Path) {
    let output = run_ok(usagebill(data).args(["report", "--verify"]));
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(text.lines().last(), Some("0 differences"), "{text}");
}

fn feed_report(view: &Path, broker: &Broker, topic: &str) -> Vec<serde_json::Value> {
    let output = run_ok(usagebill(view).args(kafka(broker, topic)).args(["report", "--from-feed", "--format", "json"]));
    serde_json::from_slice(&output.stdout).expect("report --from-feed --format json prints JSON")
}

pub fn ledger_records(ledger: &Path) -> i64 {
    let count = || -> rusqlite::Result<i64> {
        let connection = rusqlite::Connection::open_with_flags(ledger, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        connection.query_row("SELECT count(*) FROM records", [], |row| row.get(0))
    };
    count().unwrap_or(0)
}

/// Every (machine, seq) a ledger billed.
fn ledger_machine_seqs(ledger: &Path) -> Vec<(String, i64)> {
    let connection = rusqlite::Connection::open_with_flags(ledger, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut statement = connection.prepare("SELECT m.name, r.seq FROM records r JOIN machines m ON m.id = r.machine").unwrap();
    statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).unwrap().map(Result::unwrap).collect()
}

/// Waits for a worker to exit 0 within `within`; on failure shows its log, when it writes one.
pub fn wait_success(mut child: Child, within: Duration, log: Option<&Path>) {
    let log_text = || log.map(|log| format!("; its log:\n{}", std::fs::read_to_string(log).unwrap_or_default())).unwrap_or_default();
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "a worker failed: {status}{}", log_text());
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a worker did not exit within {within:?}{}", log_text());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_same_load_bills_the_same_whatever_the_window() {
    let broker = Broker::start();
    // Three machines for ten minutes each, as 1 s, 5 s, 60 s and jittered 5 s windows.
    let shapes: [(&str, &str, &str); 4] = [("1s", "1800", "0"), ("5s", "360", "0"), ("60s", "30", "0"), ("5s", "360", "80")];
    let runs: Vec<_> = shapes
        .iter()
        .map(|(window, records, jitter)| {
            let data = tempfile::tempdir().unwrap();
            let topic = unique("usage");
            simulate(data.path(), &broker, &topic, &["--machines", "3", "--records", records, "--window", window, "--jitter", jitter]);
            let child =
                worker(data.path(), &broker, &topic, &unique("billing"), "2s").arg("--no-feed").stderr(Stdio::null()).spawn().unwrap();
            (data, child)
        })
        .collect();
    let mut bills = Vec::new();
    for ((data, child), (window, _, jitter)) in runs.into_iter().zip(shapes) {
        wait_success(child, Duration::from_secs(60), None);
        let (records, cost) = totals(&report_json(data.path()));
        assert!(records > 0, "window {window} jitter {jitter}: nothing billed");
        bills.push((window, jitter, cost));
    }
    let expected = constant_cost(Decimal::from(600)) * Decimal::from(3);
    for (window, jitter, cost) in bills {
        let relative = ((cost - expected) / expected).abs();
        assert!(relative < Decimal::new(1, 4), "{window} windows (jitter {jitter} %) bill {cost}, expected {expected}");
    }
}

#[test]
fn the_same_batch_produced_twice_bills_once_and_budgets_alert() {
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let topic = unique("usage");
    let cost_topic = unique("costs");
    let config = format!("[kafka]\ncost_topic = \"{cost_topic}\"\n\n[billing.budgets]\n\"sim-*\" = \"0.1\"\n");
    std::fs::write(data.path().join("config.toml"), config).unwrap();
    // 4 machines × 100 windows of 10 s ending now: about 0.17 USD each this period, past the
    // 0.1 budget already (17 minutes is too little history to forecast from).
    let start = usagebill::record::UnixMillis::now().plus_millis(-1_000_000).to_string();
    let args = ["--machines", "4", "--records", "400", "--window", "10s", "--start", start.as_str()];
    simulate(data.path(), &broker, &topic, &args);
    simulate(data.path(), &broker, &topic, &args);
    let output = run_ok(&mut worker(data.path(), &broker, &topic, &unique("billing"), "3s"));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("400 billed, 400 duplicates"), "{log}");
    assert!(log.contains("budget alert: machine sim-00001"), "{log}");
    let (records, cost) = totals(&report_json(data.path()));
    assert_eq!(records, 400);
    assert_eq!(cost, constant_cost(Decimal::from(10)) * Decimal::from(400));
    assert_verifies(data.path());

    let view = tempfile::tempdir().unwrap();
    std::fs::copy(data.path().join("config.toml"), view.path().join("config.toml")).unwrap();
    let (feed_records, feed_cost) = totals(&feed_report(view.path(), &broker, &topic));
    assert_eq!((feed_records, feed_cost), (400, cost), "the feed view holds each record once");
    let connection = rusqlite::Connection::open(view.path().join("feed.db")).unwrap();
    let alerts: i64 = connection.query_row("SELECT count(*) FROM budget_alerts", [], |row| row.get(0)).unwrap();
    assert_eq!(alerts, 4, "one alert per machine reached the feed view");
}

#[test]
fn a_worker_killed_twenty_times_bills_100k_records_exactly() {
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let topic = unique("usage");
    simulate(data.path(), &broker, &topic, &["--machines", "100", "--records", "100000", "--window", "10s"]);
    let ledger = data.path().join("ledger.db");
    for kill in 0..20 {
        let before = ledger_records(&ledger);
        // A new group each time: the ledger's offsets are what the worker resumes from, and a fresh
        // group does not wait for the killed member's session to time out.
        let mut child = worker(data.path(), &broker, &topic, &unique("billing"), "3s")
            .args(["--batch-size", "1000"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while ledger_records(&ledger) == before && before < 100_000 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(rand::random_range(0..400)));
        signal(child.id(), "KILL");
        child.wait().unwrap();
        eprintln!("kill {kill}: {} records in the ledger", ledger_records(&ledger));
    }
    run_ok(&mut worker(data.path(), &broker, &topic, &unique("billing"), "3s"));
    let machines = report_json(data.path());
    let (records, cost) = totals(&machines);
    assert_eq!((machines.len(), records), (100, 100_000));
    assert_eq!(cost, constant_cost(Decimal::from(10)) * Decimal::from(100_000));
    assert!(machines.iter().all(|machine| machine["gaps"] == 0));
    assert_verifies(data.path());
    // Lines billed before a kill and not yet acknowledged by the feed were sent again after restart.
    let view = tempfile::tempdir().unwrap();
    assert_eq!(totals(&feed_report(view.path(), &broker, &topic)), (records, cost));
}

#[test]
fn three_workers_a_kill_and_a_late_joiner_bill_the_fleet_exactly_once_with_eager_assignment() {
    // librdkafka's default assignors (range, roundrobin) are eager: a rebalance revokes everything.
    fleet_exactly_once("range");
}

#[test]
fn three_workers_a_kill_and_a_late_joiner_bill_the_fleet_exactly_once_with_cooperative_assignment() {
    // Cooperative: a rebalance moves only the partitions that change owner; the others keep billing.
    fleet_exactly_once("cooperative-sticky");
}

fn fleet_exactly_once(assignor: &str) {
    let broker = Broker::start();
    let topic = unique("usage");
    let group = unique("billing");
    let producer_dir = tempfile::tempdir().unwrap();
    let mut producer = usagebill(producer_dir.path())
        .args(kafka(&broker, &topic))
        .args(["simulate", "--machines", "60", "--records", "30000", "--window", "10s", "--rate", "3000"])
        .spawn()
        .unwrap();
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let strategy = format!("partition.assignment.strategy={assignor}");
    let start = |index: usize| {
        worker(dirs[index].path(), &broker, &topic, &group, "15s")
            .args(["--kafka-property", &strategy])
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut workers: Vec<Child> = (0..3).map(start).collect();
    std::thread::sleep(Duration::from_secs(4));
    signal(workers[1].id(), "KILL");
    workers[1].wait().unwrap();
    workers[1] = start(1);
    std::thread::sleep(Duration::from_secs(3));
    workers.push(start(3));
    assert!(producer.wait().unwrap().success(), "simulate failed");
    for child in workers {
        wait_success(child, Duration::from_secs(120), None);
    }
    let per_ledger: Vec<i64> = dirs.iter().map(|dir| ledger_records(&dir.path().join("ledger.db"))).collect();
    eprintln!("{assignor}: records per worker ledger: {per_ledger:?}");
    assert!(per_ledger[3] > 0, "the late joiner took partitions");
    // The workers' ledgers together hold every record: a shortfall below is the feed's, not billing's.
    let billed: std::collections::BTreeSet<(String, i64)> =
        dirs.iter().flat_map(|dir| ledger_machine_seqs(&dir.path().join("ledger.db"))).collect();
    assert_eq!(billed.len(), 30_000, "every distinct record billed by some worker");

    let view = tempfile::tempdir().unwrap();
    let (records, cost) = totals(&feed_report(view.path(), &broker, &topic));
    let expected = constant_cost(Decimal::from(10)) * Decimal::from(30_000);
    assert_eq!(records, 30_000, "every distinct record exactly once");
    assert_eq!(cost.round_dp(2), expected.round_dp(2), "to the cent");
    assert_eq!(cost, expected, "and exactly");
}

#[test]
fn the_feed_view_reads_to_the_end_of_a_last_batch_of_many_lines() {
    // One worker publishes 200 lines of one machine at once: librdkafka sends them in a few batches
    // of many records, the last of which tansu's ListOffsets answer does not cover.
    let broker = Broker::start();
    let topic = unique("usage");
    let data = tempfile::tempdir().unwrap();
    simulate(data.path(), &broker, &topic, &["--machines", "1", "--records", "200", "--window", "10s"]);
    run_ok(&mut worker(data.path(), &broker, &topic, &unique("billing"), "2s"));
    let billed = totals(&report_json(data.path()));
    assert_eq!(billed.0, 200);
    let view = tempfile::tempdir().unwrap();
    assert_eq!(totals(&feed_report(view.path(), &broker, &topic)), billed, "the view holds every line the worker billed");
}

/// The cost feed's cursor in a ledger: the highest row the broker acknowledged (0 before any).
fn feed_cursor(ledger: &Path) -> i64 {
    let read = || -> rusqlite::Result<i64> {
        let connection = rusqlite::Connection::open_with_flags(ledger, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        connection.query_row("SELECT coalesce(max(value), 0) FROM meta WHERE key = 'feed_published_through'", [], |row| row.get(0))
    };
    read().unwrap_or(0)
}

#[test]
fn a_running_worker_publishes_every_line_of_a_burst_without_waiting_for_more() {
    // A burst in small batches: the feed thread, which yields to billing, falls behind and the
    // ledger thread leaves lines in the ledger for it. With no record after the burst, those lines
    // must still reach the feed while the worker runs, not when it stops.
    const RECORDS: i64 = 60_000;
    let broker = Broker::start();
    let topic = unique("usage");
    let data = tempfile::tempdir().unwrap();
    simulate(data.path(), &broker, &topic, &["--machines", "100", "--records", &RECORDS.to_string(), "--window", "10s"]);
    let mut child = worker(data.path(), &broker, &topic, &unique("billing"), "10m").args(["--batch-size", "200"]).spawn().unwrap();
    let ledger = data.path().join("ledger.db");
    let deadline = Instant::now() + Duration::from_secs(120);
    while feed_cursor(&ledger) < RECORDS {
        assert!(child.try_wait().unwrap().is_none(), "the worker stopped before the feed caught up");
        let (billed, published) = (ledger_records(&ledger), feed_cursor(&ledger));
        assert!(Instant::now() < deadline, "after 120 s the running worker billed {billed} and the feed holds {published} of {RECORDS}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(ledger_records(&ledger), RECORDS);
    signal(child.id(), "TERM");
    wait_success(child, Duration::from_secs(60), None);
    let view = tempfile::tempdir().unwrap();
    assert_eq!(totals(&feed_report(view.path(), &broker, &topic)), totals(&report_json(data.path())), "the feed holds every line");
}

#[test]
fn a_thousand_malformed_messages_among_100k_are_quarantined() {
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let topic = unique("usage");
    simulate(data.path(), &broker, &topic, &["--machines", "50", "--records", "100000", "--malformed", "1000"]);
    let output = run_ok(worker(data.path(), &broker, &topic, &unique("billing"), "3s").arg("--no-feed"));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or_default());
    let (records, _) = totals(&report_json(data.path()));
    assert_eq!(records, 100_000);
    let output = run_ok(usagebill(data.path()).args(["report", "--quarantine", "--format", "json"]));
    let quarantined: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(quarantined.len(), 1_000);
    for entry in &quarantined {
        for field in ["topic", "partition", "offset", "reason", "raw", "raw_size", "received"] {
            assert!(!entry[field].is_null(), "{field} missing in {entry}");
        }
    }
    let reasons = |needle: &str| quarantined.iter().filter(|entry| entry["reason"].as_str().unwrap().contains(needle)).count();
    assert_eq!(reasons("data.cpu_pct"), 200, "bad fields are named");
    assert_eq!(reasons("usagebill.usage.v9"), 200, "unknown types are named");
    assert_eq!(reasons("byte limit"), 200, "oversize messages are named");
    assert_eq!(quarantined.iter().filter(|entry| entry["raw_encoding"] == "base64").count(), 200, "binary kept as base64");
    let gaps = run_ok(usagebill(data.path()).args(["report", "--gaps", "--format", "json"]));
    assert_eq!(serde_json::from_slice::<Vec<serde_json::Value>>(&gaps.stdout).unwrap().len(), 0);
    assert_verifies(data.path());
}
