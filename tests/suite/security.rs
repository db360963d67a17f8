//! TLS and SASL/SCRAM to the broker through passed-through librdkafka properties, against endpoints
//! that enforce them: a stunnel terminating TLS in front of tansu (with a CA made by the test), and
//! a tansu that requires SASL authentication.

use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::faults::waiting_in_outbox;
use crate::util::{Broker, FAST_GROUP, assert_tiled_once_in_order, free_port, read_topic_with, report_json, signal, unique, usagebill};

const INSTALL_TOOLS: &str = "the security tests need the `openssl` and `stunnel` commands: \
run ./scripts/test.sh (it installs them) or `sudo apt-get install openssl stunnel4`";

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

/// Runs a tool the tests need, failing with how to install it when it is missing.
fn tool(name: &str) -> Command {
    match Command::new(name).arg("version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(_) => Command::new(name),
        Err(error) => panic!("cannot run `{name}` ({error}); {INSTALL_TOOLS}"),
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = tool("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(output.status.success(), "openssl {args:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
}

/// A CA, a server certificate it signed for 127.0.0.1, and a second CA that signed nothing here.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn make() -> Pki {
        let pki = Pki { dir: tempfile::tempdir().unwrap() };
        let dir = pki.dir.path();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        for (name, subject) in [("ca", "/CN=usagebill test CA"), ("other-ca", "/CN=some other CA")] {
            let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
            let mut args = vec!["req", "-x509", "-days", "2", "-subj", subject, "-keyout", &key, "-out", &cert];
            args.extend(ec);
            openssl(dir, &args);
        }
        openssl(dir, &[&["req", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr"][..], &ec].concat());
        std::fs::write(dir.join("server.ext"), "subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n").unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        );
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// stunnel accepting TLS on a port of its own and forwarding plaintext to `target`.
struct TlsFront {
    /// `127.0.0.1:port` of the TLS side.
    bootstrap: String,
    log: PathBuf,
    _process: Guard,
}

impl TlsFront {
    fn start(pki: &Pki, port: u16, target: &str) -> TlsFront {
        let config = pki.path("stunnel.conf");
        let log = pki.path("stunnel.log");
        let text = format!(
            "foreground = yes\npid =\ndebug = 5\n\n[kafka]\naccept = 127.0.0.1:{port}\nconnect = {target}\ncert = {}\nkey = {}\n",
            pki.path("server.pem").display(),
            pki.path("server.key").display()
        );
        std::fs::write(&config, text).unwrap();
        let stunnel = ["stunnel", "stunnel4"]
            .into_iter()
            .find(|name| Command::new(name).arg("-version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok())
            .unwrap_or_else(|| panic!("cannot run `stunnel`; {INSTALL_TOOLS}"));
        let child = Command::new(stunnel)
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|error| panic!("starting stunnel: {error}; {INSTALL_TOOLS}"));
        let mut process = Guard::new(child, "stunnel");
        let bootstrap = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&bootstrap).is_err() {
            if let Some(status) = process.exited() {
                panic!("stunnel exited ({status}):\n{}", std::fs::read_to_string(&log).unwrap_or_default());
            }
            assert!(Instant::now() < deadline, "stunnel did not listen on {bootstrap} within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsFront { bootstrap, log, _process: process }
    }

    /// Connections stunnel accepted so far.
    fn accepted(&self) -> usize {
        std::fs::read_to_string(&self.log).unwrap_or_default().matches("accepted connection").count()
    }
}

/// tansu advertising a TLS port, stunnel on that port in front of it, and the test's certificates.
struct TlsBroker {
    _broker: Broker,
    front: TlsFront,
    pki: Pki,
}

impl TlsBroker {
    fn start() -> TlsBroker {
        let pki = Pki::make();
        let tls_port = free_port();
        let broker = Broker::start_advertising(Some(tls_port));
        let front = TlsFront::start(&pki, tls_port, &broker.bootstrap);
        TlsBroker { _broker: broker, front, pki }
    }

    /// The records in `topic`, read over TLS by a client that trusts the test CA.
    fn read_topic(&self, topic: &str, want: usize, quiet: Duration) -> Vec<usagebill::record::UsageRecord> {
        let ca = self.pki.path("ca.pem").display().to_string();
        let tls = [("security.protocol", "ssl"), ("ssl.ca.location", ca.as_str())];
        read_topic_with(&self.front.bootstrap, &tls, topic, want, quiet)
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
        .args(["--brokers", bootstrap, "--topic", topic, "agent", "--headless", "--machine-id", machine])
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

#[test]
fn the_agent_and_the_worker_talk_to_the_broker_over_tls() {
    let began = Instant::now();
    let tls = TlsBroker::start();
    let ca = tls.pki.path("ca.pem").display().to_string();
    let data = tempfile::tempdir().unwrap();
    let topic = unique("usage");
    write_config(data.path(), &[("security.protocol", "ssl"), ("ssl.ca.location", &ca)]);
    let running = agent(data.path(), &tls.front.bootstrap, &topic, "tls-box", &[]);
    std::thread::sleep(Duration::from_secs(5));
    running.stop_gracefully();
    let log = agent_output(data.path());
    assert_eq!(waiting_in_outbox(data.path()), 0, "everything was delivered over TLS:\n{log}");
    assert!(!log.contains("WARN") && !log.contains("ERROR"), "a clean run over TLS:\n{log}");
    let accepted_by_agent = tls.front.accepted();
    assert!(accepted_by_agent > 0, "the agent's connections went through the TLS front");

    // Read back (over TLS too: tansu sends clients to the advertised TLS port), each seq once, in order.
    let records = tls.read_topic(&topic, 1_000, Duration::from_secs(3));
    assert!(records.len() >= 4, "about 5 one-second windows (plus the closing one) over TLS, got {}", records.len());
    assert!(records.iter().all(|record| record.machine_id == "tls-box"));
    assert_tiled_once_in_order(&records);

    // A worker consuming (and publishing its cost feed) over TLS, with the properties as flags.
    let ledger = tempfile::tempdir().unwrap();
    let ssl = ["--kafka-property", "security.protocol=ssl", "--kafka-property"];
    let output = run_within(
        usagebill(ledger.path())
            .args(["--brokers", &tls.front.bootstrap, "--topic", &topic, "worker", "--group", &unique("billing"), "--exit-when-idle", "2s"])
            .args(ssl)
            .arg(format!("ssl.ca.location={ca}"))
            .args(FAST_GROUP),
        ledger.path(),
        Duration::from_secs(45),
    );
    let worker_log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the worker over TLS failed ({}):\n{worker_log}", output.status);
    let machines = report_json(ledger.path());
    assert_eq!(machines.len(), 1, "{machines:?}");
    assert_eq!(machines[0]["records"].as_u64(), Some(records.len() as u64), "the worker billed every record, read over TLS");
    assert!(tls.front.accepted() > accepted_by_agent, "the worker's connections went through the TLS front");
    eprintln!(
        "over TLS: {} records delivered and billed; {} TLS connections accepted ({accepted_by_agent} by the agent); {:.1} s",
        records.len(),
        tls.front.accepted(),
        began.elapsed().as_secs_f64()
    );
}

#[test]
fn an_agent_that_does_not_trust_the_brokers_certificate_keeps_its_windows_and_says_why() {
    let began = Instant::now();
    let tls = TlsBroker::start();
    let data = tempfile::tempdir().unwrap();
    let topic = unique("usage");
    let other_ca = tls.pki.path("other-ca.pem").display().to_string();
    write_config(data.path(), &[("security.protocol", "ssl"), ("ssl.ca.location", &other_ca)]);
    let running = agent(data.path(), &tls.front.bootstrap, &topic, "untrusting-box", &[]);
    std::thread::sleep(Duration::from_secs(6));
    running.stop_gracefully();
    let log = agent_output(data.path());
    let waiting = waiting_in_outbox(data.path());
    assert!(waiting >= 4, "the refused windows wait in the outbox, found {waiting}:\n{log}");
    assert!(log.contains("certificate verify failed"), "the log names the certificate verification failure:\n{log}");
    // The agent's own send error carries the cause, not just "message timed out".
    let send_failed = send_failure(&log);
    assert!(send_failed.contains("certificate verify failed"), "the send failure names its cause: {send_failed}");
    let records = tls.read_topic(&topic, 1, Duration::from_secs(2));
    assert!(records.is_empty(), "nothing reached the topic, found {}", records.len());
    eprintln!("untrusted CA: {waiting} windows kept; {send_failed}; {:.1} s", began.elapsed().as_secs_f64());
}

#[test]
fn an_agent_refused_by_sasl_keeps_its_windows_says_why_and_never_shows_the_password() {
    let began = Instant::now();
    let broker = Broker::start_requiring_authentication();
    let data = tempfile::tempdir().unwrap();
    let topic = unique("usage");
    let password = format!("pw-{}-do-not-print", unique("secret"));
    write_config(
        data.path(),
        &[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "usagebill-agent"),
            ("sasl.password", "${env:USAGEBILL_TEST_SASL_PASSWORD}"),
        ],
    );
    // The most talkative log level, so that a password anywhere in the app's logging would show.
    let env = [("RUST_LOG", "debug"), ("USAGEBILL_TEST_SASL_PASSWORD", password.as_str())];
    let running = agent(data.path(), &broker.bootstrap, &topic, "sasl-box", &env);
    std::thread::sleep(Duration::from_secs(6));
    running.stop_gracefully();
    let log = agent_output(data.path());
    let waiting = waiting_in_outbox(data.path());
    assert!(waiting >= 4, "the refused windows wait in the outbox, found {waiting}:\n{log}");
    assert!(log.contains("SASL authentication error"), "the log names the authentication failure:\n{log}");
    let send_failed = send_failure(&log);
    assert!(send_failed.contains("SASL"), "the send failure names its cause: {send_failed}");
    assert!(!log.contains(&password), "the password appears in the agent's output");
    for entry in std::fs::read_dir(data.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let found = bytes.windows(password.len()).any(|window| window == password.as_bytes());
        assert!(!found, "the password appears in {}", path.display());
    }
    eprintln!("SASL refused: {waiting} windows kept; {send_failed}; {:.1} s", began.elapsed().as_secs_f64());
}
