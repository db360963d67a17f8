//! ACLs: a principal missing a permission is told which one, and neither the agent nor the worker
//! hangs on the refusal.

use std::time::{Duration, Instant};

use super::{Secured, agent, agent_output, as_pairs, send_failure, write_config};
use crate::faults::waiting_in_outbox;
use crate::util::{report_json, run_ok, usagebill};

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
