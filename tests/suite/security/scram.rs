//! SCRAM logins: the whole path (agent, worker, feed view) with least privilege over both SASL
//! listeners, and a wrong password that keeps the windows without ever showing the password.

use std::time::{Duration, Instant};

use super::{Secured, agent, agent_output, as_flags, as_pairs, run_within, send_failure, write_config};
use crate::faults::waiting_in_outbox;
use crate::util::{assert_tiled_once_in_order, report_json, unique, usagebill};

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
