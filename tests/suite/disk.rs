//! A full disk under the outbox: a clear error, windows held in memory, recovery by itself.

use std::path::Path;
use std::process::Command as Process;
use std::time::Duration;

use usagebill::config::Config;
use usagebill::runtime::{AgentOverrides, Settings};
use usagebill::transmit::agent::{Command, Problem};

use crate::agent::{IDLE, TestAgent, manual_only, script};

/// A small tmpfs, unmounted on drop.
pub struct SmallDisk {
    mount_point: tempfile::TempDir,
}

impl SmallDisk {
    pub fn mount(size: &str) -> SmallDisk {
        let mount_point = tempfile::tempdir().unwrap();
        let status = Process::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(mount_point.path()).status();
        assert!(
            status.is_ok_and(|status| status.success()),
            "this test mounts a small tmpfs to fill the disk: it needs root (as in CI) and the `mount` command"
        );
        SmallDisk { mount_point }
    }

    pub fn path(&self) -> &Path {
        self.mount_point.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Process::new("umount").arg("-l").arg(self.mount_point.path()).status();
    }
}

#[test]
fn a_full_disk_holds_windows_in_memory_and_recovers_by_itself() {
    let disk = SmallDisk::mount("1m");
    let elsewhere = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.agent.machine_id = Some("full-disk-box".into());
    config.worker.ledger = Some(elsewhere.path().join("ledger.db"));
    let settings = Settings::new(config, elsewhere.path().join("config.toml"), disk.path().to_owned()).unwrap();
    let overrides = AgentOverrides { paused: true, max_window: Some(Duration::from_secs(1)), ..manual_only() };
    let mut agent = TestAgent::start(&settings, overrides, &script(elsewhere.path(), &[IDLE]));
    agent.wait_for("a first stored window", Duration::from_secs(10), |status| status.outbox_depth >= 1);

    // Fill the disk to the last byte.
    let filler = disk.path().join("filler");
    let mut written = Vec::new();
    let chunk = vec![0u8; 4096];
    while std::fs::write(disk.path().join(format!("f{}", written.len())), &chunk).is_ok() {
        written.push(disk.path().join(format!("f{}", written.len())));
    }
    let _ = std::fs::write(&filler, b"x");
    let full = agent
        .wait_for("the disk-full error", Duration::from_secs(15), |status| matches!(status.problem, Some(Problem::OutboxWrite { .. })));
    let problem = full.problem.clone().unwrap();
    assert!(matches!(problem, Problem::OutboxWrite { disk_full: true, .. }), "the problem is a full disk: {problem:?}");
    let said = problem.to_string();
    assert!(said.contains("disk full") && said.contains("held in memory"), "and says so: {said}");
    let held =
        agent.wait_for("more windows held in memory", Duration::from_secs(10), |status| status.outbox_depth >= full.outbox_depth + 2);

    for file in written {
        std::fs::remove_file(file).unwrap();
    }
    let recovered = agent.wait_for("recovery", Duration::from_secs(15), |status| status.problem.is_none());
    assert!(recovered.outbox_depth >= held.outbox_depth, "nothing held in memory was lost");
    agent.command(Command::Resume);
    agent.wait_for("everything billed", Duration::from_secs(15), |status| status.outbox_depth == 0 && status.delivered_total > 0);
    let final_status = agent.stop();

    let ledger = usagebill::billing::ledger::Ledger::open_read_only(&elsewhere.path().join("ledger.db")).unwrap();
    let totals = usagebill::billing::report::machine_totals(&ledger, Default::default()).unwrap();
    assert_eq!(totals.len(), 1);
    assert_eq!(totals[0].gaps, 0, "no seq was lost while the disk was full");
    assert_eq!(totals[0].records, final_status.delivered_total);
    assert_eq!(totals[0].last_seq, final_status.next_seq - 1);
}
