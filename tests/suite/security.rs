//! SASL/SCRAM-SHA-512 over SASL_PLAINTEXT and SASL_SSL, and ACLs, on Apache Kafka's own listeners
//! (`scripts/kafka.sh` makes the users, the test CA and the StandardAuthorizer), through
//! passed-through librdkafka properties.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use crate::faults::waiting_in_outbox;
use crate::kafka::{SASL_PLAINTEXT_OFFSET, SASL_SSL_OFFSET};
use crate::util::{Broker, assert_tiled_once_in_order, report_json, run_ok, signal, unique, usagebill};

const INSTALL_TOOLS: &str =
    "the security tests need the `openssl` command: run ./scripts/test.sh (it installs it) or `sudo apt-get install openssl`";

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

/// A CA of its own that signed nothing the broker uses: a client trusting only it must refuse.
fn other_ca(dir: &Path) -> PathBuf {
    let output = Command::new("openssl")
        .args(["req", "-x509", "-days", "2", "-subj", "/CN=some other CA", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args(["-nodes", "-keyout", "other-ca.key", "-out", "other-ca.pem"])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|error| panic!("cannot run `openssl` ({error}); {INSTALL_TOOLS}"));
    assert!(output.status.success(), "openssl failed:\n{}", String::from_utf8_lossy(&output.stderr));
    dir.join("other-ca.pem")
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

#[test]
fn scram_over_sasl_ssl_and_sasl_plaintext_meters_bills_and_reads_the_feed_with_least_privilege() {
    let began = Instant::now();
    let secured = Secured::start();
    let ca = secured.broker.kafka().ca();
    let data = tempfile::tempdir().unwrap();
    let agent_login = secured.login("agent", "agent-secret", Some(&ca));
    write_config(data.path(), &as_pairs(&agent_login));
    let running = agent(data.path(), &secured.bootstrap(true), &secured.topic, "scram-box", &[]);
    std::thread::sleep(Duration::from_secs(5));
    running.stop_gracefully();
    let log = agent_output(data.path());
    assert_eq!(waiting_in_outbox(data.path()), 0, "everything was delivered over SASL_SSL:\n{log}");
    // A fresh broker may answer "coordinator load in progress" once (a librdkafka WARN it retries).
    assert!(!log.contains("send failed") && !log.contains("ERROR"), "a clean run over SASL_SSL:\n{log}");
    let records = secured.records(1_000);
    assert!(records.len() >= 4, "about 5 one-second windows over SASL_SSL, got {}", records.len());
    assert_tiled_once_in_order(&records);

    // The worker over SASL_PLAINTEXT, allowed to read the usage topic and write the cost feed.
    let ledger = tempfile::tempdir().unwrap();
    let worker_login = as_flags(&secured.login("worker", "worker-secret", None));
    let output = run_within(
        usagebill(ledger.path())
            .args(secured.args(false))
            .args(["worker", "--group", &secured.group, "--exit-when-idle", "2s"])
            .args(worker_login),
        ledger.path(),
        Duration::from_secs(60),
    );
    let worker_log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the worker over SASL_PLAINTEXT failed ({}):\n{worker_log}", output.status);
    let machines = report_json(ledger.path());
    assert_eq!(machines.len(), 1, "{machines:?}");
    assert_eq!(machines[0]["records"].as_u64(), Some(records.len() as u64), "the worker billed every record");

    // The feed view over SASL_SSL as a reader of the cost topic alone.
    let view = tempfile::tempdir().unwrap();
    write_config(view.path(), &as_pairs(&secured.login("reader", "reader-secret", Some(&ca))));
    let output = run_within(
        usagebill(view.path()).args(secured.args(true)).args(["report", "--from-feed", "--format", "json"]),
        view.path(),
        Duration::from_secs(60),
    );
    assert!(output.status.success(), "the feed view over SASL_SSL failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let feed: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(feed.len(), 1, "{feed:?}");
    assert_eq!(feed[0]["records"], machines[0]["records"], "the feed holds every billed line");
    assert_eq!(feed[0]["cost"], machines[0]["cost"], "the feed's cost is the ledger's");
    eprintln!(
        "SCRAM: {} records sent over SASL_SSL, billed over SASL_PLAINTEXT, read back; {:.1} s",
        records.len(),
        began.elapsed().as_secs_f64()
    );
}

#[test]
fn a_wrong_password_keeps_the_windows_says_why_never_shows_the_password_and_loses_nothing() {
    let began = Instant::now();
    let secured = Secured::start();
    let data = tempfile::tempdir().unwrap();
    let password = format!("pw-{}-do-not-print", unique("secret"));
    let mut login = secured.login("agent", "${env:USAGEBILL_TEST_SASL_PASSWORD}", None);
    write_config(data.path(), &as_pairs(&login));
    // The most talkative log level, so that a password anywhere in the app's logging would show.
    let env = [("RUST_LOG", "debug"), ("USAGEBILL_TEST_SASL_PASSWORD", password.as_str())];
    let running = agent(data.path(), &secured.bootstrap(false), &secured.topic, "sasl-box", &env);
    std::thread::sleep(Duration::from_secs(6));
    running.stop_gracefully();
    let log = agent_output(data.path());
    let waiting = waiting_in_outbox(data.path());
    assert!(waiting >= 4, "the refused windows wait in the outbox, found {waiting}:\n{log}");
    let send_failed = send_failure(&log).to_owned();
    assert!(
        send_failed.contains("SASL authentication error") && send_failed.contains("invalid credentials"),
        "the send failure names its cause: {send_failed}"
    );
    assert!(!log.contains(&password), "the password appears in the agent's output");
    for entry in std::fs::read_dir(data.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let found = bytes.windows(password.len()).any(|window| window == password.as_bytes());
        assert!(!found, "the password appears in {}", path.display());
    }
    assert!(secured.records(1).is_empty(), "nothing reached the topic");

    // With the right password the kept windows go out: nothing was lost.
    login[3].1 = "agent-secret".into();
    write_config(data.path(), &as_pairs(&login));
    let running = agent(data.path(), &secured.bootstrap(false), &secured.topic, "sasl-box", &[]);
    std::thread::sleep(Duration::from_secs(4));
    running.stop_gracefully();
    assert_eq!(waiting_in_outbox(data.path()), 0, "the kept windows were delivered:\n{}", agent_output(data.path()));
    let records = secured.records(1_000);
    assert!(records.len() as i64 > waiting, "the {waiting} kept windows and the new ones arrived: {}", records.len());
    for (expected, record) in (1u64..).zip(&records) {
        assert_eq!(record.seq, expected, "every seq once, in order");
    }
    eprintln!(
        "wrong password: {waiting} windows kept; {send_failed}; then {} delivered; {:.1} s",
        records.len(),
        began.elapsed().as_secs_f64()
    );
}

#[test]
fn an_agent_that_does_not_trust_the_brokers_certificate_keeps_its_windows_and_says_why() {
    let began = Instant::now();
    let secured = Secured::start();
    let data = tempfile::tempdir().unwrap();
    let other_ca = other_ca(data.path());
    write_config(data.path(), &as_pairs(&secured.login("agent", "agent-secret", Some(&other_ca))));
    let running = agent(data.path(), &secured.bootstrap(true), &secured.topic, "untrusting-box", &[]);
    std::thread::sleep(Duration::from_secs(6));
    running.stop_gracefully();
    let log = agent_output(data.path());
    let waiting = waiting_in_outbox(data.path());
    assert!(waiting >= 4, "the refused windows wait in the outbox, found {waiting}:\n{log}");
    // The agent's own send error carries the cause, not just "message timed out".
    let send_failed = send_failure(&log);
    assert!(send_failed.contains("certificate verify failed"), "the send failure names its cause: {send_failed}");
    assert!(secured.records(1).is_empty(), "nothing reached the topic");
    eprintln!("untrusted CA: {waiting} windows kept; {send_failed}; {:.1} s", began.elapsed().as_secs_f64());
}

#[test]
fn a_principal_without_a_permission_is_told_which_and_does_not_hang() {
    let secured = Secured::start();
    // An authenticated user with no ACL at all: the agent's sends are refused at once, by name.
    let data = tempfile::tempdir().unwrap();
    write_config(data.path(), &as_pairs(&secured.login("nobody", "nobody-secret", None)));
    let running = agent(data.path(), &secured.bootstrap(false), &secured.topic, "acl-box", &[]);
    std::thread::sleep(Duration::from_secs(5));
    running.stop_gracefully();
    let log = agent_output(data.path());
    let send_failed = send_failure(&log);
    assert!(send_failed.contains("Topic authorization failed"), "the send failure names the missing permission: {send_failed}");
    assert!(waiting_in_outbox(data.path()) >= 3, "the refused windows wait in the outbox:\n{log}");

    // The agent's principal may write usage but not read it in a group: the worker stops and says so.
    let ledger = tempfile::tempdir().unwrap();
    let began = Instant::now();
    let output = secured.run_worker_as("agent", ledger.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "the refused worker exits with an error:\n{stderr}");
    assert!(stderr.contains("authorization failed") && stderr.contains("needs READ"), "the worker names the missing permission:\n{stderr}");
    let consumer_refused_after = began.elapsed();

    // A principal that may read usage but not write the cost feed bills, then stops and says so.
    // Without WRITE on any topic the broker refuses the feed's producer an idempotent identity (a
    // fatal producer error); with WRITE elsewhere, each line's delivery is refused (before, retried
    // and logged forever).
    secured.allow("nobody", &["Read", "Describe"], &["--topic", &secured.topic, "--group", &secured.group]);
    let plaintext = secured.broker.bootstrap.clone();
    run_ok(usagebill(ledger.path()).args([
        "simulate",
        "--brokers",
        &plaintext,
        "--topic",
        &secured.topic,
        "--machines",
        "2",
        "--records",
        "20",
    ]));
    let costs = format!("{}.costs", secured.topic);
    let mut stopped_after = Vec::new();
    for write_elsewhere in [false, true] {
        if write_elsewhere {
            secured.allow("nobody", &["Write"], &["--topic", &secured.topic]);
        }
        let data = tempfile::tempdir().unwrap();
        let began = Instant::now();
        let output = secured.run_worker_as("nobody", data.path());
        stopped_after.push(began.elapsed().as_secs_f64());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "the refused feed stops the worker with an error:\n{stderr}");
        assert!(
            stderr.contains("refused the worker's messages for the cost topic")
                && stderr.contains(&format!("needs WRITE and DESCRIBE on the cost topic {costs}")),
            "the worker names the missing permission on the cost topic (WRITE elsewhere: {write_elsewhere}):\n{stderr}"
        );
        let billed = report_json(data.path());
        assert_eq!(billed.iter().map(|row| row["records"].as_u64().unwrap()).sum::<u64>(), 20, "what was billed stays billed");
    }
    eprintln!(
        "ACLs: agent refused ({send_failed}); worker stopped after {:.1} s without READ; without WRITE on the feed after {:.1} s \
         (no WRITE anywhere) and {:.1} s (WRITE elsewhere)",
        consumer_refused_after.as_secs_f64(),
        stopped_after[0],
        stopped_after[1]
    );
}
