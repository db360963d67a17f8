//! The per-machine cost summary on Kafka: the workers' elected publisher keeps the compacted summary
//! topic equal to the deduplicated cost feed, through a SIGKILLed leader and a rebalance, and only
//! the leader and its standby keep a view of the feed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::billing::worker;
use crate::util::{Broker, run_ok, signal, unique, usagebill};

/// A machine's row: cost, records, gaps, and time asleep, observed late and clock steps.
type Row = (String, u64, u64, (u64, u64, u64));

fn rows_of(output: &[u8], cost: &str) -> BTreeMap<String, Row> {
    let rows: Vec<serde_json::Value> = serde_json::from_slice(output).expect("JSON rows");
    let count = |row: &serde_json::Value, field: &str| row[field].as_u64().unwrap_or_else(|| panic!("{field} in {row}"));
    rows.iter()
        .map(|row| {
            let time = (count(row, "asleep_ms"), count(row, "late_ms"), count(row, "clock_steps"));
            let key = row["machine_id"].as_str().unwrap().to_owned();
            (key, (row[cost].as_str().unwrap().to_owned(), count(row, "records"), count(row, "gaps"), time))
        })
        .collect()
}

/// `machine → row` as `report --from-summary` prints them for `period`.
fn from_summary(dir: &Path, broker: &Broker, topic: &str, period: &str) -> BTreeMap<String, Row> {
    let output = run_ok(usagebill(dir).args(broker.args(topic)).args(["report", "--from-summary", "--period", period, "--format", "json"]));
    rows_of(&output.stdout, "period")
}

/// The same from the deduplicated cost feed over `[from, to)`.
fn from_feed(dir: &Path, broker: &Broker, topic: &str, from: &str, to: &str) -> BTreeMap<String, Row> {
    let args = ["report", "--from-feed", "--from", from, "--to", to, "--format", "json"];
    let output = run_ok(usagebill(dir).args(broker.args(topic)).args(args));
    rows_of(&output.stdout, "cost")
}

fn leader_terms(logs: &[std::path::PathBuf]) -> Vec<usize> {
    logs.iter().map(|log| std::fs::read_to_string(log).unwrap_or_default().matches("summary publisher: leading").count()).collect()
}

#[test]
fn the_summary_equals_the_deduplicated_feed_after_the_leader_is_killed_and_partitions_move() {
    let broker = Broker::start();
    let topic = unique("usage");
    let group = unique("billing");
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let logs: Vec<_> = dirs.iter().map(|dir| dir.path().join("worker.log")).collect();
    let start = |index: usize| -> Child {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&logs[index]).unwrap();
        worker(dirs[index].path(), &broker, &topic, &group, "300s").stderr(Stdio::from(log)).spawn().unwrap()
    };
    let mut workers: Vec<Child> = (0..3).map(start).collect();
    // Three hours ago, so the windows are in the past; the period compared is the one they start in.
    let begin = usagebill::record::UnixMillis::now().plus_millis(-3 * 3_600_000);
    let (period_start, period_end) = usagebill::billing::cost_engine::calendar::month_of(begin);
    let producer_dir = tempfile::tempdir().unwrap();
    let mut producer = usagebill(producer_dir.path())
        .args(broker.args(&topic))
        .args(["simulate", "--machines", "40", "--records", "8000", "--window", "10s", "--rate", "800", "--start"])
        .arg(begin.to_string())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        if let Some(index) = leader_terms(&logs).iter().position(|terms| *terms > 0) {
            break index;
        }
        assert!(Instant::now() < deadline, "no worker became the summary leader; logs: {:?}", leader_terms(&logs));
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_secs(3));
    signal(workers[leader].id(), "KILL");
    workers[leader].wait().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    workers[leader] = start(leader);
    std::thread::sleep(Duration::from_secs(2));
    workers.push(start(3));
    assert!(producer.wait().unwrap().success(), "simulate failed");
    // Besides the simulated fleet, a machine that slept an hour, stalled and saw its clock stepped,
    // in the period's first three hours (all past: `begin` is three hours ago, in the period).
    let sleepy = crate::api::sleepy_records(period_start).map(|record| ("sleepy", record.to_json()));
    crate::api::produce(&broker.bootstrap, &topic, &sleepy);

    let checker = tempfile::tempdir().unwrap();
    let (from, to, period) = (period_start.to_string(), period_end.to_string(), period_start.to_string());
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut summary, mut feed);
    loop {
        feed = from_feed(checker.path(), &broker, &topic, &from, &to);
        summary = from_summary(checker.path(), &broker, &topic, &period);
        let records: u64 = feed.values().map(|(_, records, _, _)| records).sum();
        if records == 8003 && summary == feed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the summary did not converge on the feed ({records} records in the feed):\n{summary:?}\n{feed:?}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    assert_eq!(summary.len(), 41);
    assert_eq!(summary["sleepy"].3, (3_600_000, 30_000, 1), "time asleep, observed late and clock steps, next to gaps");
    assert!(summary.iter().filter(|(machine, _)| *machine != "sleepy").all(|(_, row)| row.3 == (0, 0, 0)));
    let terms = leader_terms(&logs);
    eprintln!("leader terms per worker: {terms:?}");
    assert!(terms.iter().sum::<usize>() >= 2, "another worker took over as leader: {terms:?}");
    // Only the leader and its standby keep a view of the whole feed: of four workers at least two
    // end with none, and a worker that never led nor stood by never made one.
    let texts: Vec<String> = logs.iter().map(|log| std::fs::read_to_string(log).unwrap_or_default()).collect();
    let last_role = |text: &str| {
        let roles = ["leading", "standing by", "neither leading nor standing by"];
        let last = |role: &str| text.rfind(&format!("summary publisher: {role}"));
        roles
            .into_iter()
            .filter_map(|role| last(role).map(|at| (at, role)))
            .max()
            .map_or("neither leading nor standing by", |(_, role)| role)
    };
    let roles: Vec<&str> = texts.iter().map(|text| last_role(text)).collect();
    eprintln!("last roles: {roles:?}");
    for line in texts.iter().flat_map(|text| text.lines()).filter(|line| line.contains("the feed view caught up")) {
        eprintln!("{line}");
    }
    assert!(roles.iter().filter(|role| role.starts_with("neither")).count() >= 2, "{roles:?}");
    for (dir, text) in dirs.iter().zip(&texts) {
        let view = dir.path().join("ledger.db.feed-view.db");
        if !text.contains("summary publisher: leading") && !text.contains("summary publisher: standing by") {
            assert!(!view.exists(), "a worker that never led nor stood by made a view: {}", view.display());
        }
    }
    for mut child in workers {
        let _ = child.kill();
        let _ = child.wait();
    }
}
