//! Faults on a three-broker Apache Kafka cluster (replication 3, min ISR 2, acks=all) while an agent
//! streams one-second windows and workers bill them: the partition leader SIGKILLed, the active
//! controller SIGKILLed, a rolling restart, and two brokers of three down. Each ends with the final
//! read (nothing lost, nothing billed twice, the exact cost), and the running workers' cost feed
//! must hold every window once: no stuck group, no hole in the feed view.

use std::process::{Child, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rust_decimal::Decimal;

use crate::audit::{Audit, audit_agent_run};
use crate::faults::{headless_command, stop_gracefully, waiting_in_outbox};
use crate::kafka::Layout;
use crate::util::{Broker, FAST_GROUP, create_topics, run_ok, signal, unique, usagebill};

const MACHINE: &str = "fault-box";

/// A cluster, a topic on it (replicated three times), an agent streaming 1 s windows and `workers`
/// billing workers in one group, each with a data dir of its own.
struct Run {
    broker: Broker,
    topic: String,
    agent_dir: tempfile::TempDir,
    agent: Option<Child>,
    workers: Vec<(tempfile::TempDir, Child)>,
}

impl Run {
    fn start(workers: usize) -> Run {
        let broker = Broker::own(Layout { cluster: true, ..Layout::default() });
        let topic = unique("usage");
        create_topics(&broker.bootstrap, &[&topic, &format!("{topic}.costs")]);
        let group = unique("billing");
        let workers = (0..workers)
            .map(|_| {
                let dir = tempfile::tempdir().unwrap();
                let child = usagebill(dir.path())
                    .args(broker.args(&topic))
                    .args(["worker", "--group", &group])
                    .args(FAST_GROUP)
                    .env("RUST_LOG", "warn")
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(dir.path().join("worker.log")).unwrap())
                    .spawn()
                    .expect("starting a worker");
                (dir, child)
            })
            .collect();
        let agent_dir = tempfile::tempdir().unwrap();
        let agent = headless_command(
            agent_dir.path(),
            &broker,
            &topic,
            &["--interval", "1s", "--sample-interval", "250ms", "--readings", "readings.jsonl"],
        )
        .stderr(std::fs::File::create(agent_dir.path().join("agent.log")).unwrap())
        .spawn()
        .expect("starting the headless agent");
        let run = Run { broker, topic, agent_dir, agent: Some(agent), workers };
        std::thread::sleep(Duration::from_secs(5));
        run
    }

    fn nodes(&self) -> &crate::kafka::Kafka {
        self.broker.kafka()
    }

    /// The node that leads the topic's partition 0.
    fn partition_leader(&self) -> u16 {
        let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &self.broker.bootstrap).create().unwrap();
        let metadata = consumer.fetch_metadata(Some(&self.topic), Duration::from_secs(10)).expect("topic metadata");
        let leader = metadata.topics()[0].partitions()[0].leader();
        u16::try_from(leader).unwrap_or_else(|_| panic!("partition 0 of {} has no leader ({leader})", self.topic))
    }

    /// Stops the agent, audits the topic, then stops the workers and checks their cost feed.
    fn finish(mut self) -> Audit {
        std::thread::sleep(Duration::from_secs(10));
        stop_gracefully(self.agent.take().unwrap());
        let audit = audit_agent_run(&self.broker, &self.topic, self.agent_dir.path(), MACHINE);
        audit.assert_tiled();
        // The running workers catch up with the last windows, then their feed must hold each once.
        let deadline = Instant::now() + Duration::from_secs(60);
        let (records, cost) = loop {
            let (records, cost) = self.feed_totals();
            if records >= audit.closed || Instant::now() > deadline {
                break (records, cost);
            }
            std::thread::sleep(Duration::from_secs(2));
        };
        for (dir, mut worker) in self.workers.drain(..) {
            signal(worker.id(), "TERM");
            let status = worker.wait().unwrap();
            let log = std::fs::read_to_string(dir.path().join("worker.log")).unwrap_or_default();
            assert!(status.success(), "a worker failed ({status}):\n{log}");
        }
        assert_eq!(records, audit.closed, "the workers' cost feed holds every closed window once");
        assert_eq!(cost, audit.cost, "the feed's cost is the audited cost");
        eprintln!("cluster: the running workers' feed holds {records} records, {cost}");
        audit
    }

    /// Records and cost in the deduplicated cost feed, read into a fresh view.
    fn feed_totals(&self) -> (u64, Decimal) {
        let view = tempfile::tempdir().unwrap();
        let output = run_ok(usagebill(view.path()).args(self.broker.args(&self.topic)).args(["report", "--from-feed", "--format", "json"]));
        let machines: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
        let records = machines.iter().map(|machine| machine["records"].as_u64().unwrap()).sum();
        let cost = machines.iter().map(|machine| Decimal::from_str(machine["cost"].as_str().unwrap()).unwrap()).sum();
        (records, cost)
    }
}

#[test]
fn the_partition_leader_sigkilled_and_restarted_loses_and_duplicates_nothing() {
    let run = Run::start(1);
    let leader = run.partition_leader();
    run.nodes().kill(leader);
    std::thread::sleep(Duration::from_secs(15));
    let new_leader = run.partition_leader();
    assert_ne!(new_leader, leader, "another broker took over the partition");
    run.nodes().restart(leader);
    let audit = run.finish();
    eprintln!("leader {leader} killed, {new_leader} took over: {}", audit.figures());
    assert!(audit.closed >= 25, "about 30 one-second windows, got {}", audit.closed);
}

#[test]
fn the_active_controller_sigkilled_loses_and_duplicates_nothing() {
    let run = Run::start(1);
    let controller = active_controller(&run);
    run.nodes().kill(controller);
    std::thread::sleep(Duration::from_secs(15));
    let successor = active_controller(&run);
    assert_ne!(successor, controller, "another node leads the metadata quorum");
    run.nodes().restart(controller);
    // A topic usagebill creates with no replication factor configured takes the cluster's default (3).
    let data = tempfile::tempdir().unwrap();
    let topic = unique("replicated");
    run_ok(usagebill(data.path()).args(run.broker.args(&topic)).args(["simulate", "--machines", "1", "--records", "1"]));
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &run.broker.bootstrap).create().unwrap();
    let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10)).unwrap();
    let replicas: Vec<usize> = metadata.topics()[0].partitions().iter().map(|partition| partition.replicas().len()).collect();
    assert_eq!(replicas, vec![3; 6], "six partitions of three replicas each");
    let audit = run.finish();
    eprintln!("controller {controller} killed, {successor} took over: {}", audit.figures());
    assert!(audit.closed >= 25, "about 30 one-second windows, got {}", audit.closed);
}

#[test]
fn a_rolling_restart_of_all_three_brokers_loses_and_duplicates_nothing() {
    let run = Run::start(2);
    for node in 1..=3 {
        run.nodes().stop(node);
        std::thread::sleep(Duration::from_secs(3));
        run.nodes().restart(node);
        // The restarted broker catches up and rejoins the in-sync replicas before the next goes.
        std::thread::sleep(Duration::from_secs(5));
    }
    let audit = run.finish();
    eprintln!("rolling restart: {}", audit.figures());
    assert!(audit.closed >= 35, "about 45 one-second windows, got {}", audit.closed);
}

#[test]
fn two_brokers_of_three_down_for_30_seconds_keep_windows_in_the_outbox_and_lose_nothing() {
    let run = Run::start(1);
    let leader = run.partition_leader();
    let down: Vec<u16> = (1..=3).filter(|node| *node != leader).collect();
    for node in &down {
        run.nodes().kill(*node);
    }
    std::thread::sleep(Duration::from_secs(30));
    let waiting = waiting_in_outbox(run.agent_dir.path());
    for node in &down {
        run.nodes().restart(*node);
    }
    eprintln!("{waiting} windows waited in the outbox with brokers {down:?} down");
    // The agent says why (its status line in the app is the same text).
    let log = std::fs::read_to_string(run.agent_dir.path().join("agent.log")).unwrap();
    let said = log.lines().find(|line| line.contains("send failed")).unwrap_or_else(|| panic!("the agent said nothing:\n{log}"));
    assert!(said.contains("acks=all") && said.contains("the records are kept in the outbox"), "{said}");
    eprintln!("the agent said: {said}");
    assert!(waiting >= 20, "the windows closed while acks=all could not succeed waited in the outbox, found {waiting}");
    let audit = run.finish();
    eprintln!("two of three down: {}", audit.figures());
    assert!(audit.closed >= 45, "about 55 one-second windows, got {}", audit.closed);
}

/// The node id that leads the KRaft metadata quorum, from Kafka's own MetadataQuorumCommand.
fn active_controller(run: &Run) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka.sh"))
            .args(["tool", "org.apache.kafka.tools.MetadataQuorumCommand", "--bootstrap-server", &run.broker.bootstrap])
            .args(["describe", "--status"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        let leader = text.lines().find_map(|line| line.strip_prefix("LeaderId:")).and_then(|id| id.trim().parse().ok());
        if let Some(leader) = leader {
            return leader;
        }
        assert!(Instant::now() < deadline, "no quorum leader within 30 s:\n{text}{}", String::from_utf8_lossy(&output.stderr));
        std::thread::sleep(Duration::from_secs(1));
    }
}
