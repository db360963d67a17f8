//! Time truth on a real clock: headless agents in embedded mode, one under libfaketime whose wall
//! clock a test steps, one stopped with SIGSTOP, each beside a control agent that samples the same
//! machine over the same real seconds. Each must bill what the control bills, in windows that tile
//! time without overlap and hold no more readings than seconds.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use usagebill::billing::ledger::Ledger;

use crate::util::{report_json, signal, usagebill};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
/// How long every agent runs, by its own monotonic clock.
const RUN_FOR_SECS: u64 = 36;
/// When the subjects' clocks are stepped or the stalled one is stopped.
const DISTURB_AFTER: Duration = Duration::from_secs(12);
/// How long the stalled agent stays stopped.
const STALL: Duration = Duration::from_secs(20);

/// A headless agent process with a data dir of its own.
struct AgentProcess {
    name: &'static str,
    data_dir: PathBuf,
    child: Child,
}

impl AgentProcess {
    /// Starts `name`; with `faketime` its wall clock follows that file (the monotonic clock stays real).
    fn start(root: &Path, name: &'static str, faketime: Option<&Path>) -> AgentProcess {
        let data_dir = root.join(name);
        std::fs::create_dir_all(&data_dir).unwrap();
        let mut command = usagebill(&data_dir);
        let run_for = format!("{RUN_FOR_SECS}s");
        command.args(["agent", "--headless", "--interval", "10s", "--run-for", &run_for, "--machine-id", name]);
        if let Some(file) = faketime {
            command
                .env("LD_PRELOAD", LIBFAKETIME)
                .env("FAKETIME_TIMESTAMP_FILE", file)
                .env("FAKETIME_NO_CACHE", "1")
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        let log = std::fs::File::create(root.join(format!("{name}.log"))).unwrap();
        let child = command.stdout(Stdio::null()).stderr(log).spawn().expect("starting the agent");
        AgentProcess { name, data_dir, child }
    }

    fn wait(&mut self) {
        let status = self.child.wait().unwrap();
        assert!(status.success(), "agent {} ended with {status}", self.name);
    }

    /// The report row of this agent's machine.
    fn report(&self) -> serde_json::Value {
        let rows = report_json(&self.data_dir);
        assert_eq!(rows.len(), 1, "{}: {rows:?}", self.name);
        rows[0].clone()
    }

    fn cost(&self) -> Decimal {
        self.report()["cost"].as_str().unwrap().parse().unwrap()
    }

    /// `(start_ms, end_ms, samples)` of every billed window, in seq order.
    fn windows(&self) -> Vec<(i64, i64, i64)> {
        let ledger = Ledger::open_read_only(&self.data_dir.join("ledger.db")).unwrap();
        let mut statement = ledger.connection().prepare("SELECT start_ms, end_ms, samples FROM records ORDER BY seq").unwrap();
        statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?))).unwrap().map(Result::unwrap).collect()
    }

    /// Asserts the windows tile time, none overlapping, none with more readings than seconds.
    fn assert_honest_windows(&self) {
        let windows = self.windows();
        assert!(!windows.is_empty(), "{} billed nothing", self.name);
        for pair in windows.windows(2) {
            assert_eq!(pair[1].0, pair[0].1, "{}: a window starts where the last ended: {pair:?}", self.name);
        }
        for &(start, end, samples) in &windows {
            assert!(end > start, "{}: window [{start}, {end}) runs backwards", self.name);
            let seconds = ((end - start) as f64 / 1000.0).ceil() as i64;
            assert!(samples <= seconds, "{}: {samples} readings in a {:.1} s window", self.name, (end - start) as f64 / 1000.0);
        }
    }
}

/// Asserts `subject` billed within 5 % of `control`.
fn assert_bills_like(subject: &AgentProcess, control: &AgentProcess) {
    let (billed, expected) = (subject.cost(), control.cost());
    assert!(expected > Decimal::ZERO, "the control billed {expected}");
    let ratio = billed / expected;
    eprintln!("{} billed {billed}, {ratio:.4} × the control's {expected}", subject.name);
    assert!(
        (Decimal::new(95, 2)..=Decimal::new(105, 2)).contains(&ratio),
        "{} billed {billed}, {ratio:.3} × the control's {expected}",
        subject.name
    );
}

#[test]
fn agents_whose_clock_steps_or_that_stall_bill_what_a_control_beside_them_bills() {
    assert!(Path::new(LIBFAKETIME).exists(), "{LIBFAKETIME} is missing: install the Debian package libfaketime (scripts/test.sh does)");
    let root = tempfile::tempdir().unwrap();
    let forward_file = root.path().join("forward.faketime");
    let back_file = root.path().join("back.faketime");
    std::fs::write(&forward_file, "+0").unwrap();
    std::fs::write(&back_file, "+0").unwrap();
    let started = Instant::now();
    let mut control = AgentProcess::start(root.path(), "control", None);
    let mut forward = AgentProcess::start(root.path(), "stepped-forward", Some(&forward_file));
    let mut back = AgentProcess::start(root.path(), "stepped-back", Some(&back_file));
    let mut stalled = AgentProcess::start(root.path(), "stalled", None);

    std::thread::sleep(DISTURB_AFTER.saturating_sub(started.elapsed()));
    std::fs::write(&forward_file, "+2h").unwrap();
    std::fs::write(&back_file, "-1h").unwrap();
    signal(stalled.child.id(), "STOP");
    std::thread::sleep(STALL);
    signal(stalled.child.id(), "CONT");
    for agent in [&mut control, &mut forward, &mut back, &mut stalled] {
        agent.wait();
    }

    for agent in [&control, &forward, &back, &stalled] {
        agent.assert_honest_windows();
    }
    assert_bills_like(&forward, &control);
    assert_bills_like(&back, &control);
    assert_bills_like(&stalled, &control);

    let forward_row = forward.report();
    assert!(forward_row["clock_steps"].as_u64() >= Some(1), "the forward step is counted: {forward_row}");
    let forward_windows = forward.windows();
    let unlived: i64 = forward_windows.iter().filter(|window| window.2 == 0).map(|window| window.1 - window.0).sum();
    assert!((unlived - 2 * 3_600_000).abs() < 2_000, "two hours recorded as not lived: {unlived} ms");
    let back_row = back.report();
    assert!(back_row["clock_steps"].as_u64() >= Some(1), "the backward step is counted: {back_row}");
    let stalled_row = stalled.report();
    let late = stalled_row["late_ms"].as_u64().unwrap();
    assert!(late + 2_000 >= STALL.as_millis() as u64, "the stall is marked late: {stalled_row}");
    let control_row = control.report();
    assert_eq!((control_row["clock_steps"].as_u64(), control_row["late_ms"].as_u64()), (Some(0), Some(0)), "{control_row}");
}
