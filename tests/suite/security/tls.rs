//! TLS trust: an agent that does not trust the broker's certificate keeps its windows and says why.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{Secured, agent, agent_output, as_pairs, send_failure, write_config};
use crate::faults::waiting_in_outbox;

const INSTALL_TOOLS: &str =
    "the security tests need the `openssl` command: run ./scripts/test.sh (it installs it) or `sudo apt-get install openssl`";

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
