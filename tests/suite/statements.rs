//! Statements on Apache Kafka: two workers bill three accounts' month, the month closes (by the
//! workers' leader and by `statement close`), the statements equal the deduplicated feed, late
//! records become adjustments on the next draft while the finals stay byte for byte the same, two
//! closers at once number gaplessly, and a closer killed mid-transaction issues the same bytes on
//! its next run.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use crate::billing::worker;
use crate::util::{Broker, run_ok, signal, unique, usagebill};

const PREFIXES: [&str; 3] = ["acme-", "beta-", "gamma-"];
const MACHINES: u64 = 20;
/// Hourly windows per machine from November 1st: up to November 30th 04:00, so later seqs still
/// fall in November.
const HOURS: u64 = 700;
const RECORDS: u64 = 3 * MACHINES * HOURS;
const NOVEMBER: [&str; 2] = ["2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"];

/// A data dir whose config bills with the accounts file, `grace`, and statements of `issuer` on
/// `statement_topic` (the default beside the costs topic when empty).
fn configured(accounts: &Path, grace: &str, issuer: &str, statement_topic: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    configure(dir.path(), accounts, grace, issuer, statement_topic);
    dir
}

fn configure(dir: &Path, accounts: &Path, grace: &str, issuer: &str, statement_topic: &str) {
    let mut text = format!("[billing]\naccounts = {:?}\nissuer = {issuer:?}\ngrace = {grace:?}\n", accounts.display().to_string());
    if !statement_topic.is_empty() {
        text += &format!("[kafka]\nstatement_topic = {statement_topic:?}\n");
    }
    std::fs::write(dir.join("config.toml"), text).unwrap();
}

/// A copy of `from`'s materialised feed in `to`, so a new reader only catches up on what is new.
fn copy_feed(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap().map(Result::unwrap) {
        if entry.file_name().to_string_lossy().starts_with("feed.db") {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

fn statement(dir: &Path, broker: &Broker, topic: &str, args: &[&str]) -> Command {
    let mut command = usagebill(dir);
    command.args(broker.args(topic)).arg("statement").args(args);
    command
}

/// `machine → exact cost` from the deduplicated feed over `[from, to)`.
fn feed_costs(dir: &Path, broker: &Broker, topic: &str, from: &str, to: &str) -> BTreeMap<String, (u64, Decimal)> {
    let args = ["report", "--from-feed", "--from", from, "--to", to, "--format", "json"];
    let output = run_ok(usagebill(dir).args(broker.args(topic)).args(args));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).expect("JSON rows");
    rows.iter()
        .map(|row| {
            let cost = Decimal::from_str(row["cost"].as_str().unwrap()).unwrap();
            (row["machine_id"].as_str().unwrap().to_owned(), (row["records"].as_u64().unwrap(), cost))
        })
        .collect()
}

fn wait_for_records(dir: &Path, broker: &Broker, topic: &str, want: u64, within: Duration) -> BTreeMap<String, (u64, Decimal)> {
    let deadline = Instant::now() + within;
    loop {
        let costs = feed_costs(dir, broker, topic, NOVEMBER[0], NOVEMBER[1]);
        let records: u64 = costs.values().map(|(records, _)| records).sum();
        if records == want {
            return costs;
        }
        assert!(Instant::now() < deadline, "the feed holds {records} November records, expected {want}");
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// `statement list --format json`.
fn list(dir: &Path, broker: &Broker, topic: &str) -> Vec<serde_json::Value> {
    let output = run_ok(&mut statement(dir, broker, topic, &["list", "--format", "json"]));
    serde_json::from_slice(&output.stdout).expect("statement list --format json prints JSON")
}

/// `(number, account)` of the final statements listed.
fn finals(rows: &[serde_json::Value]) -> Vec<(u64, String)> {
    rows.iter()
        .filter(|row| row["status"] == "final")
        .map(|row| (row["number"].as_u64().unwrap(), row["account"].as_str().unwrap().to_owned()))
        .collect()
}

fn show(dir: &Path, broker: &Broker, topic: &str, number: u64) -> Vec<u8> {
    run_ok(&mut statement(dir, broker, topic, &["show", &number.to_string(), "--format", "json"])).stdout
}

/// Rounded to cents as statements round: half away from zero.
fn cents(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

fn decimal(value: &serde_json::Value) -> Decimal {
    Decimal::from_str(value.as_str().unwrap_or_else(|| panic!("a decimal string, not {value}"))).unwrap()
}

/// Asserts final statement `bytes` bills `account` for November exactly as the feed does.
fn assert_equals_feed(bytes: &[u8], account: &str, costs: &BTreeMap<String, (u64, Decimal)>) {
    let statement: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    assert_eq!((statement["account"]["id"].as_str(), statement["period"].as_str()), (Some(account), Some("2026-11")));
    let lines = statement["machines"].as_array().unwrap();
    let prefix = format!("{account}-");
    let expected: Vec<(&String, &(u64, Decimal))> = costs.iter().filter(|(machine, _)| machine.starts_with(&prefix)).collect();
    assert_eq!(lines.len(), expected.len(), "{account}: one line per machine");
    let mut total = Decimal::ZERO;
    for (line, (machine, (records, cost))) in lines.iter().zip(expected) {
        assert_eq!(line["machine_id"].as_str(), Some(machine.as_str()));
        assert_eq!(line["records"].as_u64(), Some(*records), "{machine}: records");
        assert_eq!(decimal(&line["exact_total"]), *cost, "{machine}: the line's exact total is the feed's cost");
        assert_eq!(decimal(&line["total"]), cents(*cost), "{machine}: rounded once to cents");
        total += cents(*cost);
    }
    assert_eq!(decimal(&statement["totals"]["total"]), total, "{account}: the total is the sum of the rounded lines");
}

fn start_workers(dirs: &[tempfile::TempDir], broker: &Broker, topic: &str, group: &str) -> Vec<Child> {
    dirs.iter()
        .map(|dir| {
            let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.path().join("worker.log")).unwrap();
            worker(dir.path(), broker, topic, group, "600s").stderr(Stdio::from(log)).spawn().unwrap()
        })
        .collect()
}

fn stop(children: Vec<Child>) {
    for mut child in children {
        signal(child.id(), "TERM");
        let _ = child.wait();
    }
}

fn logs(dirs: &[tempfile::TempDir]) -> String {
    dirs.iter().map(|dir| std::fs::read_to_string(dir.path().join("worker.log")).unwrap_or_default()).collect()
}

#[test]
fn a_month_closes_into_gapless_statements_that_equal_the_feed_and_never_change() {
    let began = Instant::now();
    let broker = Broker::start();
    let topic = unique("usage");
    let group = unique("billing");
    let files = tempfile::tempdir().unwrap();
    let accounts = files.path().join("accounts.toml");
    let mut text = String::from("[[version]]\neffective_from = \"2026-01-01T00:00:00Z\"\n");
    for prefix in PREFIXES {
        let id = prefix.trim_end_matches('-');
        text += &format!("[[version.account]]\nid = \"{id}\"\nname = \"{id} Ltd\"\nmachines = [\"{prefix}*\"]\n");
    }
    std::fs::write(&accounts, text).unwrap();

    // Billing first, with a grace so long that November cannot close yet.
    let workers: Vec<_> = (0..2).map(|_| configured(&accounts, "60d", "usagebill", "")).collect();
    let running = start_workers(&workers, &broker, &topic, &group);
    let simulations: Vec<Child> = PREFIXES
        .iter()
        .map(|prefix| {
            let records = (MACHINES * HOURS).to_string();
            let args = ["--machines", "20", "--records", &records, "--window", "1h", "--rate", "20000", "--start", NOVEMBER[0]];
            let mut command = usagebill(files.path());
            command.args(broker.args(&topic)).args(["simulate", "--machine-prefix", prefix]).args(args);
            command.stderr(Stdio::null()).spawn().unwrap()
        })
        .collect();
    for mut simulation in simulations {
        assert!(simulation.wait().unwrap().success(), "simulate failed");
    }
    let manual = configured(&accounts, "1d", "manual", &format!("{topic}.manual"));
    let costs = wait_for_records(manual.path(), &broker, &topic, RECORDS, Duration::from_secs(120));
    assert_eq!(costs.len(), 60);
    eprintln!("{RECORDS} records billed and in the feed after {:?}", began.elapsed());
    assert!(!logs(&workers).contains("closed period"), "nothing closed while November was in its grace");

    // `statement close` closes November: one statement per account, numbered 1..=3.
    let output = run_ok(&mut statement(manual.path(), &broker, &topic, &["close", "--period", "2026-11"]));
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(PREFIXES.iter().all(|prefix| table.contains(prefix.trim_end_matches('-'))), "{table}");
    let expected: Vec<(u64, String)> = (1..).zip(["acme", "beta", "gamma"].map(String::from)).collect();
    assert_eq!(finals(&list(manual.path(), &broker, &topic)), expected);
    let manual_bytes: Vec<Vec<u8>> = (1..=3).map(|number| show(manual.path(), &broker, &topic, number)).collect();
    for ((_, account), bytes) in expected.iter().zip(&manual_bytes) {
        assert_equals_feed(bytes, account, &costs);
    }

    // With a day's grace, the workers' leader closes November by itself at the start of its term,
    // into the default statement topic: the same statements but for the issuer.
    stop(running);
    workers.iter().for_each(|dir| configure(dir.path(), &accounts, "1d", "usagebill", ""));
    let running = start_workers(&workers, &broker, &topic, &group);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !logs(&workers).contains("closed period 2026-11: 3 final statement(s), numbers 1..=3") {
        assert!(Instant::now() < deadline, "the leader did not close November; logs:\n{}", logs(&workers));
        std::thread::sleep(Duration::from_millis(500));
    }
    let reader = configured(&accounts, "1d", "usagebill", "");
    copy_feed(manual.path(), reader.path());
    assert_eq!(finals(&list(reader.path(), &broker, &topic)), expected);
    let finals_before: Vec<Vec<u8>> = (1..=3).map(|number| show(reader.path(), &broker, &topic, number)).collect();
    for (((_, account), auto), manual) in expected.iter().zip(&finals_before).zip(&manual_bytes) {
        assert_equals_feed(auto, account, &costs);
        assert_eq!(without_issuer(auto), without_issuer(manual), "{account}: the leader's statement is the command's");
    }
    for number in ["1", "2", "3"] {
        run_ok(&mut statement(reader.path(), &broker, &topic, &["verify", number]));
    }

    // Late November records: an adjustment on acme's December draft; the finals do not change.
    let late: Vec<(&str, Vec<u8>)> = (HOURS + 1..=HOURS + 3)
        .map(|seq| ("acme-00001", usagebill::record::UsageRecord::steady("acme-00001", seq, november_first(), 3_600_000).to_json()))
        .collect();
    crate::api::produce(&broker.bootstrap, &topic, &late);
    let costs_now = wait_for_records(reader.path(), &broker, &topic, RECORDS + 3, Duration::from_secs(60));
    let rows = list(reader.path(), &broker, &topic);
    let drafts: Vec<&serde_json::Value> = rows.iter().filter(|row| row["status"] == "draft").collect();
    assert_eq!(drafts.len(), 1, "only acme has anything in December: {rows:?}");
    let billed: serde_json::Value = serde_json::from_slice(&finals_before[0]).unwrap();
    let late_cost = costs_now["acme-00001"].1 - decimal(&billed["machines"][0]["exact_total"]);
    assert!(late_cost > Decimal::ZERO);
    let draft = drafts[0];
    assert_eq!((draft["account"].as_str(), draft["period"].as_str()), (Some("acme"), Some("2026-12")));
    assert_eq!((draft["machines"].as_u64(), draft["adjustments"].as_u64()), (Some(0), Some(1)));
    assert_eq!(decimal(&draft["total"]), cents(late_cost), "the adjustment bills what November now costs more");
    let finals_after: Vec<Vec<u8>> = (1..=3).map(|number| show(reader.path(), &broker, &topic, number)).collect();
    assert_eq!(finals_after, finals_before, "final statements never change");
    stop(running);

    // Two closers at once, held mid-transaction so they overlap: one number per account, no gap.
    let racers: Vec<_> = (0..2).map(|_| configured(&accounts, "1d", "race", &format!("{topic}.race"))).collect();
    racers.iter().for_each(|dir| copy_feed(reader.path(), dir.path()));
    let closers: Vec<Child> = racers.iter().map(|dir| closer(dir.path(), &broker, &topic, Some(3_000)).spawn().unwrap()).collect();
    let outputs: Vec<Output> = closers.into_iter().map(|child| child.wait_with_output().unwrap()).collect();
    let succeeded = outputs.iter().filter(|output| output.status.success()).count();
    for output in outputs.iter().filter(|output| !output.status.success()) {
        let error = String::from_utf8_lossy(&output.stderr);
        assert!(error.contains("took over"), "a closer failed other than by being fenced: {error}");
        eprintln!("the fenced closer: {}", error.trim());
    }
    assert!(succeeded >= 1, "neither closer succeeded");
    eprintln!("two closers at once: {succeeded} succeeded, the other was fenced");
    assert_eq!(finals(&list(racers[0].path(), &broker, &topic)), expected, "{succeeded} closer(s) succeeded");

    // A closer killed with its transaction open, then run again: the same bytes as a clean close.
    let killed = configured(&accounts, "1d", "third", &format!("{topic}.killed"));
    let clean = configured(&accounts, "1d", "third", &format!("{topic}.clean"));
    [&killed, &clean].iter().for_each(|dir| copy_feed(reader.path(), dir.path()));
    let mut held = closer(killed.path(), &broker, &topic, Some(60_000)).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while high_watermark(&broker.bootstrap, &format!("{topic}.killed")) == 0 {
        assert!(held.try_wait().unwrap().is_none(), "the held closer exited before it was killed");
        assert!(Instant::now() < deadline, "the held closer sent nothing within a minute");
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(held.id(), "KILL");
    held.wait().unwrap();
    run_ok(&mut closer(killed.path(), &broker, &topic, None));
    run_ok(&mut closer(clean.path(), &broker, &topic, None));
    assert_eq!(finals(&list(killed.path(), &broker, &topic)), expected);
    for number in 1..=3 {
        assert_eq!(show(killed.path(), &broker, &topic, number), show(clean.path(), &broker, &topic, number), "statement {number}");
        run_ok(&mut statement(killed.path(), &broker, &topic, &["verify", &number.to_string()]));
    }
    eprintln!("{} records, wall time {:?}", RECORDS + 3, began.elapsed());
}

fn november_first() -> usagebill::record::UnixMillis {
    usagebill::record::UnixMillis::parse_rfc3339(NOVEMBER[0]).unwrap()
}

/// A statement's JSON without its issuer and content hash (which covers the issuer).
fn without_issuer(bytes: &[u8]) -> serde_json::Value {
    let mut statement: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let object = statement.as_object_mut().unwrap();
    object.remove("issuer");
    object.remove("content_hash");
    statement
}

/// `statement close --period 2026-11`, holding its transaction open `hold_ms` before the commit.
fn closer(dir: &Path, broker: &Broker, topic: &str, hold_ms: Option<u64>) -> Command {
    let mut command = statement(dir, broker, topic, &["close", "--period", "2026-11"]);
    if let Some(hold_ms) = hold_ms {
        command.env("USAGEBILL_TEST_HOLD_STATEMENT_COMMIT_MS", hold_ms.to_string());
    }
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

/// The high watermark of partition 0 of `topic` (0 while it does not exist): it counts messages of
/// open transactions too.
fn high_watermark(bootstrap: &str, topic: &str) -> i64 {
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    // read_uncommitted: the offset a read_committed client is told is the last stable one.
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).set("isolation.level", "read_uncommitted").create().expect("a consumer");
    consumer.fetch_watermarks(topic, 0, Duration::from_secs(5)).map_or(0, |(_, high)| high)
}
