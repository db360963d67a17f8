//! A silent drop: the broker runs in a network namespace of its own, reached over a veth pair, and
//! nftables in that namespace drops every packet sent to it: no reset, no ICMP, only silence, as
//! when a firewall or a dead route swallows the traffic. The proxy test covers loud cuts.

use std::process::{Command, Stdio};

use std::time::Duration;

use crate::audit::audit_agent_run;
use crate::faults::{headless, stop_gracefully, waiting_in_outbox};
use crate::kafka::Layout;
use crate::util::{Broker, free_port, unique};

/// A network namespace with a veth pair to the host, deleted on drop.
struct Namespace {
    name: String,
    /// The host's end of the pair.
    host_link: String,
    /// The namespace's address, where the broker listens.
    address: String,
}

impl Namespace {
    fn create() -> Namespace {
        let id = std::process::id() % 100_000;
        let name = format!("ubns{id}");
        let (host_link, inner_link) = (format!("ubh{id}"), format!("ubn{id}"));
        // A /30 of its own per test process, so two runs on one machine do not collide.
        let subnet = format!("10.251.{}.{}", id % 250, (id / 250 % 64) * 4);
        let prefix = subnet.rsplit_once('.').unwrap().0.to_owned();
        let last: u32 = subnet.rsplit_once('.').unwrap().1.parse().unwrap();
        let (host_address, address) = (format!("{prefix}.{}", last + 1), format!("{prefix}.{}", last + 2));
        let namespace = Namespace { name: name.clone(), host_link: host_link.clone(), address: address.clone() };
        let steps: [&[&str]; 8] = [
            &["netns", "add", &name],
            &["link", "add", &host_link, "type", "veth", "peer", "name", &inner_link],
            &["link", "set", &inner_link, "netns", &name],
            &["addr", "add", &format!("{host_address}/30"), "dev", &host_link],
            &["link", "set", &host_link, "up"],
            &["-n", &name, "addr", "add", &format!("{address}/30"), "dev", &inner_link],
            &["-n", &name, "link", "set", &inner_link, "up"],
            &["-n", &name, "link", "set", "lo", "up"],
        ];
        for step in steps {
            let output = Command::new("ip").args(step).output();
            match output {
                Ok(output) if output.status.success() => {}
                other => panic!(
                    "this test needs a network namespace (root, iproute2; ./scripts/test.sh installs it): `ip {}` failed: {other:?}",
                    step.join(" ")
                ),
            }
        }
        namespace
    }

    /// Runs `nft` inside the namespace.
    fn nft(&self, rule: &[&str]) {
        let output = Command::new("ip").args(["netns", "exec", &self.name, "nft"]).args(rule).output();
        match output {
            Ok(output) if output.status.success() => {}
            other => panic!("`nft {}` in {} failed (install nftables; ./scripts/test.sh does): {other:?}", rule.join(" "), self.name),
        }
    }

    /// Drops, silently, every TCP packet arriving for `port`.
    fn drop_silently(&self, port: u16) {
        self.nft(&["add", "table", "inet", "silence"]);
        self.nft(&["add", "chain", "inet", "silence", "input", "{ type filter hook input priority 0 ; policy accept ; }"]);
        self.nft(&["add", "rule", "inet", "silence", "input", "tcp", "dport", &port.to_string(), "drop"]);
    }

    fn heal(&self) {
        self.nft(&["delete", "table", "inet", "silence"]);
    }

    /// Starts an Apache Kafka node inside the namespace, listening on its address.
    fn start_broker(&self, port: u16) -> Broker {
        Broker::own(Layout { port: Some(port), host: Some(&self.address), netns: Some(&self.name), ..Layout::default() })
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
        let _ = Command::new("ip").args(["link", "del", &self.host_link]).stderr(Stdio::null()).status();
    }
}

#[test]
fn a_silent_drop_of_30_seconds_loses_and_duplicates_nothing() {
    let namespace = Namespace::create();
    let port = free_port();
    let broker = namespace.start_broker(port);
    let data = tempfile::tempdir().unwrap();
    let topic = unique("usage");
    let agent = headless(data.path(), &broker, &topic, &["--interval", "1s", "--sample-interval", "250ms", "--readings", "readings.jsonl"]);
    std::thread::sleep(Duration::from_secs(4));
    namespace.drop_silently(port);
    std::thread::sleep(Duration::from_secs(30));
    let waiting = waiting_in_outbox(data.path());
    namespace.heal();
    eprintln!("{waiting} windows waited in the outbox during the silence");
    assert!(waiting >= 20, "the windows closed during the silence waited in the outbox, found {waiting}");
    std::thread::sleep(Duration::from_secs(15));
    stop_gracefully(agent);
    let audit = audit_agent_run(&broker, &topic, data.path(), "fault-box");
    assert!(audit.closed >= 45, "about 49 one-second windows, got {}", audit.closed);
    audit.assert_tiled();
    drop(broker);
}
