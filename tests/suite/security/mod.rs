//! SASL/SCRAM-SHA-512 over SASL_PLAINTEXT and SASL_SSL, and ACLs, on Apache Kafka's own listeners
//! (`scripts/kafka.sh` makes the users, the test CA and the StandardAuthorizer), through
//! passed-through librdkafka properties. This file holds what the tests share (a secured node, the
//! headless agent and worker under a guard, logins); the tests sit by topic below.

mod acls;
mod scram;
mod tls;

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use crate::kafka::{SASL_PLAINTEXT_OFFSET, SASL_SSL_OFFSET};
use crate::util::{Broker, signal, unique, usagebill};

/// A child process killed (and reaped) when dropped, so a failing test leaves nothing running.
struct Guard {
    child: Option<Child>,
    what: String,
}

impl Guard {
    fn new(child: Child, what: &str) -> Guard {
        Guard { child: Some(child), what: what.to_owned() }
    }

    fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Whether it has exited (then it is reaped).
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|child| child.try_wait().unwrap())
    }

    /// Waits up to `within` for it to exit by itself; kills it and fails if it does not.
    fn wait(mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "{} did not exit within {within:?}", self.what);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then waits up to 20 s for a clean exit.
    fn stop_gracefully(self) {
        signal(self.id(), "TERM");
        let what = self.what.clone();
        let status = self.wait(Duration::from_secs(20));
        assert!(status.success(), "{what} exits 0 on SIGTERM, got {status}");
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Writes `config.toml` in `data` with `[kafka.properties]` and a short message timeout, so a
/// refused record fails (and says why) within the test.
fn write_config(data: &Path, properties: &[(&str, &str)]) {
    let mut text = String::from("[kafka]\nmessage_timeout = \"3s\"\n\n[kafka.properties]\n");
    for (key, value) in properties {
        text.push_str(&format!("{key:?} = {value:?}\n"));
    }
    std::fs::write(data.join("config.toml"), text).unwrap();
    std::fs::write(data.join("readings.jsonl"), r#"{"cpu_pct": 25, "mem_used_bytes": 2000000000, "disk_write_bytes_per_sec": 4096}"#)
        .unwrap();
}

/// The headless agent with 1 s windows, logging at info unless `env` sets RUST_LOG; its stdout
/// and stderr go to files in `data`.
fn agent(data: &Path, bootstrap: &str, topic: &str, machine: &str, env: &[(&str, &str)]) -> Guard {
    let child = usagebill(data)
        .args(["--brokers", bootstrap, "--topic", topic, "--cost-topic", &format!("{topic}.costs")])
        .args(["agent", "--headless", "--machine-id", machine])
        .args(["--interval", "1s", "--sample-interval", "250ms", "--readings", "readings.jsonl"])
        .current_dir(data)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(File::create(data.join("agent.out")).unwrap())
        .stderr(File::create(data.join("agent.err")).unwrap())
        .spawn()
        .expect("starting the headless agent");
    Guard::new(child, "the agent")
}

fn agent_output(data: &Path) -> String {
    let read = |name| std::fs::read_to_string(data.join(name)).unwrap_or_default();
    format!("{}{}", read("agent.out"), read("agent.err"))
}

/// The agent's first "send failed" message (without the log line's time and level).
fn send_failure(log: &str) -> &str {
    let at = log.find("send failed").unwrap_or_else(|| panic!("no send failure logged:\n{log}"));
    log[at..].lines().next().unwrap_or_default()
}

/// Runs `command` to its end within `within` (killed otherwise); its output is captured in files.
fn run_within(command: &mut Command, dir: &Path, within: Duration) -> Output {
    let (out, err) = (dir.join("run.out"), dir.join("run.err"));
    let child = command.stdout(File::create(&out).unwrap()).stderr(File::create(&err).unwrap()).spawn().unwrap();
    let status = Guard::new(child, &format!("{command:?}")).wait(within);
    Output { status, stdout: std::fs::read(out).unwrap(), stderr: std::fs::read(err).unwrap() }
}

/// A node of the test's own with its SASL listeners, the usage and cost topics made by the admin,
/// and the least-privilege ACLs of each role.
struct Secured {
    broker: Broker,
    topic: String,
    group: String,
}

impl Secured {
    fn start() -> Secured {
        let broker = Broker::start_own();
        let (topic, group) = (unique("usage"), unique("billing"));
        let costs = format!("{topic}.costs");
        // PLAINTEXT clients are User:ANONYMOUS, a super user of the test broker: they make the topics.
        crate::util::create_topics(&broker.bootstrap, &[&topic, &costs]);
        let secured = Secured { broker, topic, group };
        secured.allow("agent", &["Write", "Describe"], &["--topic", &secured.topic]);
        secured.allow("worker", &["Read", "Describe"], &["--topic", &secured.topic, "--group", &secured.group]);
        secured.allow("worker", &["Write", "Describe"], &["--topic", &costs]);
        // The feed view assigns partitions itself and commits nothing, but librdkafka still looks up
        // the coordinator of its (never joined) group, `usagebill-view-<pid>`.
        secured.allow("reader", &["Read", "Describe"], &["--topic", &costs]);
        secured.allow("reader", &["Read"], &["--resource-pattern-type", "prefixed", "--group", "usagebill-view-"]);
        secured
    }

    /// Allows `user` the `operations` on `resources` (Kafka's AclCommand flags, e.g. `--topic T`).
    fn allow(&self, user: &str, operations: &[&str], resources: &[&str]) {
        let principal = format!("User:{user}");
        let mut args = vec!["--add", "--allow-principal", principal.as_str()];
        for operation in operations {
            args.extend(["--operation", operation]);
        }
        args.extend(resources);
        self.broker.kafka().acl(&args);
    }

    /// Every node's SASL_PLAINTEXT (or, with `tls`, SASL_SSL) listener.
    fn bootstrap(&self, tls: bool) -> String {
        self.broker.kafka().bootstrap_at(if tls { SASL_SSL_OFFSET } else { SASL_PLAINTEXT_OFFSET })
    }

    /// `--brokers`, `--topic` and `--cost-topic` for a command on the SASL listeners (SASL_SSL with `tls`).
    fn args(&self, tls: bool) -> Vec<String> {
        let costs = format!("{}.costs", self.topic);
        ["--brokers", &self.bootstrap(tls), "--topic", &self.topic, "--cost-topic", &costs].map(str::to_owned).to_vec()
    }

    /// librdkafka properties for `user` with `password` over SASL_SSL trusting `ca`, or SASL_PLAINTEXT.
    fn login(&self, user: &str, password: &str, ca: Option<&Path>) -> Vec<(String, String)> {
        let mut properties = vec![
            ("security.protocol".to_owned(), if ca.is_some() { "sasl_ssl" } else { "sasl_plaintext" }.to_owned()),
            ("sasl.mechanism".to_owned(), "SCRAM-SHA-512".to_owned()),
            ("sasl.username".to_owned(), user.to_owned()),
            ("sasl.password".to_owned(), password.to_owned()),
        ];
        if let Some(ca) = ca {
            properties.push(("ssl.ca.location".to_owned(), ca.display().to_string()));
        }
        properties
    }

    /// Runs `usagebill worker` in the test's group as `user` (password `<user>-secret`) over
    /// SASL_PLAINTEXT with its data in `data`, and waits up to 60 s for it to stop by itself.
    fn run_worker_as(&self, user: &str, data: &Path) -> Output {
        let login = as_flags(&self.login(user, &format!("{user}-secret"), None));
        let mut worker = usagebill(data);
        worker.args(self.args(false)).args(["worker", "--group", &self.group]).args(login);
        run_within(&mut worker, data, Duration::from_secs(60))
    }

    /// The records in the usage topic, read over PLAINTEXT as the admin would.
    fn records(&self, want: usize) -> Vec<usagebill::record::UsageRecord> {
        crate::util::read_topic(&self.broker.bootstrap, &self.topic, want, Duration::from_secs(3))
    }
}

fn as_pairs(properties: &[(String, String)]) -> Vec<(&str, &str)> {
    properties.iter().map(|(key, value)| (key.as_str(), value.as_str())).collect()
}

fn as_flags(properties: &[(String, String)]) -> Vec<String> {
    properties.iter().flat_map(|(key, value)| ["--kafka-property".to_owned(), format!("{key}={value}")]).collect()
}
