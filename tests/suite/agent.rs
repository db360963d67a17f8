//! The agent's controls against a real broker: every control sends exactly the records it should.

use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use usagebill::config::Config;
use usagebill::record::Trigger;
use usagebill::runtime::{AgentOverrides, ReadingSource, RunningAgent, Settings, start_agent};
use usagebill::transmit::agent::{AgentStatus, Command, Input, Update};
use usagebill::transmit::rule::ThresholdRule;

use crate::util::{Broker, assert_tiled_once_in_order, read_topic, unique};

/// An agent running in this process, with its status updates.
pub struct TestAgent {
    running: RunningAgent,
    statuses: Receiver<AgentStatus>,
    latest: Option<AgentStatus>,
}

impl TestAgent {
    pub fn start(settings: &Settings, overrides: AgentOverrides, script: &Path) -> TestAgent {
        let (sender, statuses) = mpsc::channel();
        let updates = Box::new(move |update| {
            if let Update::Status(status) = update {
                let _ = sender.send(status);
            }
        });
        let running = start_agent(settings, &overrides, ReadingSource::Script(script.to_owned()), updates).expect("starting the agent");
        TestAgent { running, statuses, latest: None }
    }

    pub fn command(&self, command: Command) {
        self.running.inputs.send(Input::Command(command)).expect("the agent is running");
    }

    /// Waits until `condition` holds for the latest status.
    pub fn wait_for(&mut self, what: &str, timeout: Duration, condition: impl Fn(&AgentStatus) -> bool) -> AgentStatus {
        let deadline = Instant::now() + timeout;
        loop {
            while let Ok(status) = self.statuses.try_recv() {
                self.latest = Some(status);
            }
            if let Some(status) = &self.latest
                && condition(status)
            {
                return status.clone();
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; last status: {:?}", self.latest);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(self) -> AgentStatus {
        self.command(Command::Stop);
        self.running.handle.join().expect("the agent thread ends")
    }
}

fn kafka_settings(broker: &Broker, data_dir: &Path) -> Settings {
    let mut config = Config::default();
    config.kafka.brokers = vec![broker.bootstrap.clone()];
    config.kafka.topic = unique("usage");
    config.kafka.cost_topic = format!("{}.costs", config.kafka.topic);
    config.kafka.partitions = 1;
    config.agent.machine_id = Some("agent-under-test".into());
    Settings::new(config, data_dir.join("config.toml"), data_dir.to_owned()).unwrap()
}

pub fn script(dir: &Path, lines: &[&str]) -> std::path::PathBuf {
    let path = dir.join("readings.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

pub const IDLE: &str = r#"{"cpu_pct": 10, "mem_used_bytes": 1000000000, "net_tx_bytes_per_sec": 1000}"#;
const BUSY: &str = r#"{"cpu_pct": 97, "mem_used_bytes": 1000000000, "net_tx_bytes_per_sec": 1000}"#;

pub fn manual_only() -> AgentOverrides {
    AgentOverrides { interval: Some(None), sample_interval: Some(Duration::from_millis(200)), ..AgentOverrides::default() }
}

#[test]
fn send_now_sends_exactly_the_closed_window() {
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let settings = kafka_settings(&broker, data.path());
    let mut agent = TestAgent::start(&settings, manual_only(), &script(data.path(), &[IDLE]));
    std::thread::sleep(Duration::from_millis(1_200));
    agent.command(Command::SendNow);
    agent.wait_for("the first delivery", Duration::from_secs(30), |status| status.delivered_total == 1);
    std::thread::sleep(Duration::from_millis(500));
    agent.command(Command::SendNow);
    agent.wait_for("the second delivery", Duration::from_secs(30), |status| status.delivered_total == 2);
    let records = read_topic(&broker.bootstrap, &settings.config.kafka.topic, 3, Duration::from_secs(3));
    assert_eq!(records.len(), 2, "only the two send-now windows went out");
    assert!(records.iter().all(|record| record.trigger == Trigger::Manual));
    assert!(records[0].samples >= 4, "about 6 readings at 200 ms in 1.2 s, got {}", records[0].samples);
    assert_eq!(records[0].cpu_pct, 10.0);
    assert_tiled_once_in_order(&records);
    agent.stop();
}

#[test]
fn pause_holds_windows_and_resume_delivers_them_in_order() {
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let settings = kafka_settings(&broker, data.path());
    let overrides = AgentOverrides { paused: true, max_window: Some(Duration::from_secs(1)), ..manual_only() };
    let mut agent = TestAgent::start(&settings, overrides, &script(data.path(), &[IDLE]));
    let held = agent.wait_for("three held windows", Duration::from_secs(10), |status| status.outbox_depth >= 3);
    assert_eq!(held.delivered_total, 0);
    assert!(held.paused);
    let early = read_topic(&broker.bootstrap, &settings.config.kafka.topic, 1, Duration::from_secs(1));
    assert!(early.is_empty(), "nothing goes to the broker while paused, got {early:?}");
    agent.command(Command::Pause); // idempotent
    agent.command(Command::Resume);
    let resumed = agent
        .wait_for("the held windows delivered", Duration::from_secs(30), |status| status.delivered_total >= 3 && status.outbox_depth == 0);
    let final_status = agent.stop();
    let sent = final_status.delivered_total as usize;
    let records = read_topic(&broker.bootstrap, &settings.config.kafka.topic, sent, Duration::from_secs(5));
    assert_eq!(records.len(), sent, "status said {sent} delivered (resume saw {})", resumed.delivered_total);
    assert_tiled_once_in_order(&records);
    assert!(records[..3].iter().all(|record| record.trigger == Trigger::Interval && record.window_millis() >= 1_000));
}

#[test]
fn the_interval_closes_and_sends_a_window_every_period() {
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let settings = kafka_settings(&broker, data.path());
    let overrides = AgentOverrides { interval: Some(Some(Duration::from_secs(1))), ..manual_only() };
    let mut agent = TestAgent::start(&settings, overrides, &script(data.path(), &[IDLE]));
    agent.wait_for("four interval windows", Duration::from_secs(30), |status| status.delivered_total >= 4);
    agent.command(Command::SetInterval(Some(Duration::from_secs(2))));
    let before = agent.wait_for("the new interval", Duration::from_secs(5), |status| status.interval == Some(Duration::from_secs(2)));
    agent.wait_for("a 2 s window", Duration::from_secs(30), |status| status.delivered_total >= before.delivered_total + 2);
    let status = agent.stop();
    let records = read_topic(&broker.bootstrap, &settings.config.kafka.topic, status.delivered_total as usize, Duration::from_secs(5));
    assert_tiled_once_in_order(&records);
    let interval_windows: Vec<i64> =
        records.iter().filter(|record| record.trigger == Trigger::Interval).map(|record| record.window_millis()).collect();
    // Windows close at the reading nearest the interval (readings every 200 ms here).
    assert!(interval_windows[..4].iter().all(|millis| (900..1_200).contains(millis)), "{interval_windows:?}");
    assert!(interval_windows.iter().any(|millis| (1_900..2_200).contains(millis)), "{interval_windows:?}");
}

#[test]
fn a_threshold_rule_fires_under_a_scripted_load() {
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let settings = kafka_settings(&broker, data.path());
    let rule = ThresholdRule::parse("cpu_pct > 90 for 1s").unwrap();
    let overrides = AgentOverrides { rules: vec![rule], ..manual_only() };
    // 2 s idle, then busy from then on.
    let lines = [IDLE; 10].into_iter().chain([BUSY; 1]).collect::<Vec<_>>();
    let mut agent = TestAgent::start(&settings, overrides, &script(data.path(), &lines));
    agent.wait_for("the threshold window", Duration::from_secs(30), |status| status.delivered_total >= 1);
    let status = agent.stop();
    let records = read_topic(&broker.bootstrap, &settings.config.kafka.topic, status.delivered_total as usize, Duration::from_secs(5));
    assert_eq!(records[0].trigger, Trigger::Threshold);
    assert!(records[0].window_millis() >= 2_500, "the window covers the idle time too: {} ms", records[0].window_millis());
    assert!(records[0].cpu_pct > 10.0 && records[0].cpu_pct < 97.0, "a mix of idle and busy readings: {}", records[0].cpu_pct);
    assert_tiled_once_in_order(&records);
}

#[test]
fn embedded_mode_bills_into_the_local_ledger_without_kafka() {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.agent.machine_id = Some("laptop".into());
    let settings = Settings::new(config, data.path().join("config.toml"), data.path().to_owned()).unwrap();
    let mut agent = TestAgent::start(&settings, manual_only(), &script(data.path(), &[IDLE]));
    std::thread::sleep(Duration::from_millis(600));
    agent.command(Command::SendNow);
    let status = agent.wait_for("the local delivery", Duration::from_secs(10), |status| status.delivered_total == 1);
    assert_eq!(status.link.label(), "embedded (no broker)");
    agent.stop();
    let machines = crate::util::report_json(data.path());
    assert_eq!(machines.len(), 1);
    assert_eq!(machines[0]["machine_id"], "laptop");
    assert_eq!(machines[0]["records"], 2, "the send-now window and the closing window");
}

#[test]
fn an_unreachable_broker_is_one_warning_and_the_agent_says_what_waits() {
    let data = tempfile::tempdir().unwrap();
    let nobody = format!("127.0.0.1:{}", crate::util::free_port());
    let output = crate::util::usagebill(data.path())
        .args(["--brokers", &nobody, "agent", "--headless", "--run-for", "4s", "--interval", "1s"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    let librdkafka_warnings = log.lines().filter(|line| line.contains("WARN librdkafka")).count();
    assert_eq!(librdkafka_warnings, 1, "librdkafka's retries are one warning per outage:\n{log}");
    assert!(!log.contains("ERROR"), "a transient outage is not an error:\n{log}");
    assert_eq!(log.matches("the broker cannot be reached").count(), 1, "{log}");
    assert!(log.contains("waiting in the outbox"), "the agent says what it kept:\n{log}");
}
