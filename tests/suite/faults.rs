//! The headless agent as a real process against a real broker, with faults: a frozen broker,
//! a SIGKILL while records wait, and a long run whose windows must tile time.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use usagebill::record::UsageRecord;

use crate::audit::audit_agent_run;
use crate::util::{Broker, assert_tiled_once_in_order, read_topic, signal, unique, usagebill};

pub fn headless(data_dir: &Path, broker: &Broker, topic: &str, args: &[&str]) -> Child {
    headless_command(data_dir, broker, topic, args).spawn().expect("starting the headless agent")
}

/// The headless agent of machine `fault-box` reading scripted readings, as a command to adjust.
pub fn headless_command(data_dir: &Path, broker: &Broker, topic: &str, args: &[&str]) -> std::process::Command {
    let script = data_dir.join("readings.jsonl");
    if !script.exists() {
        std::fs::write(&script, r#"{"cpu_pct": 25, "mem_used_bytes": 2000000000, "disk_write_bytes_per_sec": 4096}"#).unwrap();
    }
    let mut command = usagebill(data_dir);
    command
        .args(broker.args(topic))
        .args(["agent", "--headless", "--machine-id", "fault-box"])
        .args(args)
        .current_dir(data_dir)
        // USAGEBILL_AGENT_LOG=debug shows, among others, the offset of every delivery.
        .env("RUST_LOG", std::env::var("USAGEBILL_AGENT_LOG").unwrap_or_else(|_| "warn".into()));
    command
}

pub fn waiting_in_outbox(data_dir: &Path) -> i64 {
    let connection = rusqlite::Connection::open(data_dir.join("outbox.db")).unwrap();
    connection.query_row("SELECT count(*) FROM waiting", [], |row| row.get(0)).unwrap()
}

pub fn stop_gracefully(mut agent: Child) {
    signal(agent.id(), "TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = agent.try_wait().unwrap() {
            assert!(status.success(), "the agent exits 0 on SIGTERM, got {status}");
            return;
        }
        assert!(Instant::now() < deadline, "the agent did not stop within 20 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_seqs_once_in_order(records: &[UsageRecord]) {
    let seqs: Vec<u64> = records.iter().map(|record| record.seq).collect();
    let expected: Vec<u64> = (1..=records.len() as u64).collect();
    assert_eq!(seqs, expected, "every seq exactly once, in order");
}

#[test]
fn a_broker_frozen_for_30_seconds_loses_and_duplicates_nothing() {
    let broker = Broker::start_own();
    let data = tempfile::tempdir().unwrap();
    let topic = unique("usage");
    let agent = headless(data.path(), &broker, &topic, &["--interval", "1s", "--sample-interval", "250ms", "--readings", "readings.jsonl"]);
    std::thread::sleep(Duration::from_secs(4));
    broker.kafka().freeze(1, true);
    std::thread::sleep(Duration::from_secs(30));
    broker.kafka().freeze(1, false);
    std::thread::sleep(Duration::from_secs(8));
    stop_gracefully(agent);
    let audit = audit_agent_run(&broker, &topic, data.path(), "fault-box");
    assert!(audit.closed >= 38, "about 42 one-second windows, got {}", audit.closed);
    audit.assert_tiled();
}

#[test]
fn a_broker_down_longer_than_the_message_timeout_loses_and_duplicates_nothing() {
    let port = crate::util::free_port();
    let not_yet_up = Broker::external(format!("127.0.0.1:{port}"));
    let data = tempfile::tempdir().unwrap();
    // Five message timeouts pass with no broker at all: each offer times out and stays in the outbox.
    std::fs::write(data.path().join("config.toml"), "[kafka]\nmessage_timeout = \"2s\"\n").unwrap();
    let topic = unique("usage");
    let agent =
        headless(data.path(), &not_yet_up, &topic, &["--interval", "1s", "--sample-interval", "250ms", "--readings", "readings.jsonl"]);
    std::thread::sleep(Duration::from_secs(10));
    let waiting = waiting_in_outbox(data.path());
    assert!(waiting >= 7, "the windows closed while the broker was down wait in the outbox, found {waiting}");
    let broker = Broker::start_on_port(port);
    // The agent tries again within 8 s (its longest backoff), then delivers what waited.
    std::thread::sleep(Duration::from_secs(12));
    stop_gracefully(agent);
    let audit = audit_agent_run(&broker, &topic, data.path(), "fault-box");
    assert!(audit.closed >= 15, "about 18 one-second windows, got {}", audit.closed);
    audit.assert_tiled();
}

#[test]
fn records_waiting_when_the_agent_is_killed_arrive_after_restart_once() {
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let topic = unique("usage");
    let mut first = headless(
        data.path(),
        &broker,
        &topic,
        &["--paused", "--max-window", "1s", "--sample-interval", "250ms", "--readings", "readings.jsonl"],
    );
    std::thread::sleep(Duration::from_millis(4_500));
    first.kill().unwrap();
    first.wait().unwrap();
    let waiting = waiting_in_outbox(data.path());
    assert!(waiting >= 3, "the paused agent held its windows in the outbox, found {waiting}");
    let second =
        headless(data.path(), &broker, &topic, &["--interval", "1s", "--sample-interval", "250ms", "--readings", "readings.jsonl"]);
    std::thread::sleep(Duration::from_secs(4));
    stop_gracefully(second);
    let audit = audit_agent_run(&broker, &topic, data.path(), "fault-box");
    let records = &audit.messages;
    assert_seqs_once_in_order(records);
    // The windows of each run tile; the time the agent was down is a hole in time, not in seqs.
    let held = waiting as usize;
    assert_tiled_once_in_order(&records[..held]);
    for pair in records[held..].windows(2) {
        assert_eq!(pair[0].end, pair[1].start);
    }
    assert!(records[held].start >= records[held - 1].end);
}

#[test]
fn a_two_minute_run_is_tiled_by_its_windows() {
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let topic = unique("usage");
    let began = usagebill::record::UnixMillis::now();
    let mut agent: Child = usagebill(data.path())
        .args(broker.args(&topic))
        .args(["agent", "--headless", "--interval", "5s", "--run-for", "2m"])
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let status = agent.wait().unwrap();
    let ended = usagebill::record::UnixMillis::now();
    assert!(status.success());
    let records = read_topic(&broker.bootstrap, &topic, 1_000, Duration::from_secs(5));
    assert_tiled_once_in_order(&records);
    let first = records.first().unwrap();
    let last = records.last().unwrap();
    assert!(first.start >= began && last.end <= ended);
    let covered = last.end.millis_since(first.start);
    assert!((119_000..=122_000).contains(&covered), "the windows cover the whole run: {covered} ms");
    assert!((24..=26).contains(&records.len()), "one record per 5 s plus the closing one: {}", records.len());
    assert!(records.iter().all(|record| record.samples <= 6 && record.mem_used_bytes > 0), "real sysinfo readings");
}

#[test]
fn a_network_cut_of_30_seconds_loses_and_duplicates_nothing() {
    let proxy_port = crate::util::free_port();
    let broker = Broker::start_advertising(proxy_port);
    let proxy = crate::proxy::CutProxy::start(proxy_port, broker.bootstrap.clone());
    let through_proxy = Broker::external(format!("127.0.0.1:{proxy_port}"));
    let data = tempfile::tempdir().unwrap();
    let topic = unique("usage");
    let agent =
        headless(data.path(), &through_proxy, &topic, &["--interval", "1s", "--sample-interval", "250ms", "--readings", "readings.jsonl"]);
    std::thread::sleep(Duration::from_secs(4));
    proxy.cut();
    std::thread::sleep(Duration::from_secs(30));
    proxy.heal();
    std::thread::sleep(Duration::from_secs(10));
    stop_gracefully(agent);
    assert!(proxy.dropped.load(std::sync::atomic::Ordering::SeqCst) > 0, "the cut dropped live connections");
    let audit = audit_agent_run(&through_proxy, &topic, data.path(), "fault-box");
    assert!(audit.closed >= 38, "about 44 one-second windows, got {}", audit.closed);
    audit.assert_tiled();
}

#[test]
fn an_agent_killed_at_20_random_moments_loses_no_seq_and_bills_each_once() {
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let topic = unique("usage");
    let args = ["--interval", "1s", "--sample-interval", "250ms", "--readings", "readings.jsonl"];
    // A small generator seeded from the clock: the moments differ between runs, the log shows them.
    let mut state = usagebill::record::UnixMillis::now().0 as u64 | 1;
    let mut moments = Vec::new();
    for _ in 0..20 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let millis = 300 + state % 2_200;
        moments.push(millis);
        let mut agent = headless(data.path(), &broker, &topic, &args);
        std::thread::sleep(Duration::from_millis(millis));
        agent.kill().unwrap();
        agent.wait().unwrap();
    }
    eprintln!("killed after {moments:?} ms");
    let last = headless(data.path(), &broker, &topic, &args);
    std::thread::sleep(Duration::from_secs(4));
    stop_gracefully(last);
    let audit = audit_agent_run(&broker, &topic, data.path(), "fault-box");
    assert!(audit.closed >= 3, "at least the last run's windows, got {}", audit.closed);
}
