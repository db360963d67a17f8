//! The headless agent's CPU and memory at 1 Hz sampling, read from /proc.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{BenchOptions, Figure};

/// Runs `usagebill agent --headless` (embedded mode, scratch data dir) and watches it.
pub fn measure(options: &BenchOptions) -> anyhow::Result<Vec<Figure>> {
    let scratch = tempfile::tempdir_in(&options.scratch)?;
    let mut agent = Command::new(&options.binary)
        .args(["--data-dir"])
        .arg(scratch.path())
        .args(["--config"])
        .arg(scratch.path().join("none.toml"))
        .args(["agent", "--headless", "--interval", "10s"])
        .env_remove("USAGEBILL_BROKERS")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = agent.id();
    // Skip start-up (opening files, the first readings) and measure steady state.
    std::thread::sleep(Duration::from_secs(3));
    let ticks_before = cpu_ticks(pid)?;
    let began = Instant::now();
    std::thread::sleep(Duration::from_secs(u64::from(options.agent_seconds)));
    let ticks = cpu_ticks(pid)? - ticks_before;
    let elapsed = began.elapsed().as_secs_f64();
    let rss_kib = rss_kib(pid)?;
    let _ = agent.kill();
    let _ = agent.wait();
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let cpu_pct = ticks as f64 / ticks_per_second / elapsed * 100.0;
    let rss_mib = rss_kib as f64 / 1024.0;
    Ok(vec![
        Figure::new("headless agent at 1 Hz: CPU", format!("{cpu_pct:.2} % of one core"), "≤ 0.5 %", Some(cpu_pct <= 0.5), String::new()),
        Figure::new("headless agent at 1 Hz: RSS", format!("{rss_mib:.1} MiB"), "≤ 25 MB", Some(rss_mib <= 25.0), String::new()),
    ])
}

fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |index: usize| fields.get(index).and_then(|value| value.parse::<u64>().ok()).unwrap_or(0);
    Ok(field(11) + field(12))
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap_or("VmRSS: 0 kB");
    Ok(line.split_whitespace().nth(1).and_then(|value| value.parse().ok()).unwrap_or(0))
}
