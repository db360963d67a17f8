//! Starting an agent: machine identity, the reading source, the transport for the mode, the thread.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use super::EmbeddedTransport;
use super::Settings;
use crate::billing::biller::Biller;
use crate::billing::ledger::Ledger;
use crate::billing::rate_card::RateCard;
use crate::collect::Reading;
use crate::collect::clock::ClockReading;
use crate::collect::sampler::{self, Sampler};
use crate::collect::window::MachineFacts;
use crate::record::validate_machine_id;
use crate::transmit::agent::{Agent, AgentSettings, AgentStatus, Input, Update};
use crate::transmit::outbox::Outbox;
use crate::transmit::policy::{PolicySettings, SendPolicy};
use crate::transmit::rule::ThresholdRule;
use crate::transmit::transport::KafkaTransport;

/// Settings given on the command line for this run only.
#[derive(Debug, Clone, Default)]
pub struct AgentOverrides {
    /// `--interval`: `Some(None)` turns auto-send off.
    pub interval: Option<Option<Duration>>,
    /// `--rule`, replacing the configured rules when any is given.
    pub rules: Vec<ThresholdRule>,
    /// `--paused`.
    pub paused: bool,
    /// `--sample-interval`.
    pub sample_interval: Option<Duration>,
    /// `--max-window`.
    pub max_window: Option<Duration>,
    /// `--machine-id`.
    pub machine_id: Option<String>,
}

/// Where readings come from.
#[derive(Debug, Clone)]
pub enum ReadingSource {
    /// The real machine, through sysinfo.
    Machine,
    /// Scripted readings (JSON lines), the last one repeating, for tests and demos.
    Script(PathBuf),
}

/// A running agent thread.
pub struct RunningAgent {
    /// Commands and readings go here.
    pub inputs: Sender<Input>,
    /// Ends with the final status.
    pub handle: JoinHandle<AgentStatus>,
    /// This machine's id.
    pub machine_id: String,
}

/// The machine id: configured, else kept in `machine-id` in the data dir, else made from the
/// hostname and a random suffix and kept there.
pub fn machine_id(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<String> {
    if let Some(id) = configured {
        validate_machine_id(id).map_err(|reason| anyhow::anyhow!("machine id {id:?}: {reason}"))?;
        return Ok(id.to_owned());
    }
    let file = data_dir.join("machine-id");
    if let Ok(stored) = std::fs::read_to_string(&file) {
        let stored = stored.trim().to_owned();
        validate_machine_id(&stored).map_err(|reason| anyhow::anyhow!("{}: {stored:?}: {reason}", file.display()))?;
        return Ok(stored);
    }
    let host = sysinfo::System::host_name().unwrap_or_else(|_| "machine".into());
    let mut safe: String =
        host.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' { c } else { '-' }).take(100).collect();
    if safe.is_empty() {
        safe = "machine".into();
    }
    let id = format!("{safe}-{:06x}", rand::random::<u32>() & 0xFF_FFFF);
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating the data dir {}", data_dir.display()))?;
    std::fs::write(&file, format!("{id}\n")).with_context(|| format!("writing {}", file.display()))?;
    Ok(id)
}

/// Starts the sampler and the agent thread for `settings`; `updates` hears every reading and status.
pub fn start_agent(
    settings: &Settings,
    overrides: &AgentOverrides,
    source: ReadingSource,
    updates: Box<dyn Fn(Update) + Send>,
) -> anyhow::Result<RunningAgent> {
    let agent_config = &settings.config.agent;
    let machine_id = machine_id(overrides.machine_id.as_deref().or(agent_config.machine_id.as_deref()), &settings.data_dir)?;
    let rules = if overrides.rules.is_empty() { settings.rules().to_vec() } else { overrides.rules.clone() };
    let policy = SendPolicy::new(PolicySettings {
        interval: overrides.interval.unwrap_or(agent_config.send_interval.map(|interval| interval.0)),
        max_window: overrides.max_window.unwrap_or(agent_config.max_window.0),
        rules,
        cooldown: agent_config.rule_cooldown.0,
        paused: overrides.paused || agent_config.paused,
    });
    let sample_interval = overrides.sample_interval.unwrap_or(agent_config.sample_interval.0);
    let (inputs, receiver) = mpsc::channel();
    let facts = start_readings(source, &machine_id, sample_interval, inputs.clone())?;
    let outbox = Outbox::open(&settings.outbox_path())?;
    let agent_settings = AgentSettings {
        facts,
        policy,
        outbox_max_bytes: agent_config.outbox_max_bytes,
        stop_grace: Duration::from_secs(5),
        sample_interval,
    };
    let handle = if settings.embedded() {
        let ledger = Ledger::open(&settings.ledger_path())?;
        let card = RateCard::load(settings.config.worker.rate_card.as_deref())?;
        let agent = Agent::new(agent_settings, outbox, EmbeddedTransport::new(Biller::new(ledger, card)))?;
        spawn(agent, receiver, updates)?
    } else {
        let transport = KafkaTransport::new(&settings.config.kafka)?;
        let agent = Agent::new(agent_settings, outbox, transport)?;
        spawn(agent, receiver, updates)?
    };
    Ok(RunningAgent { inputs, handle, machine_id })
}

fn spawn<T: crate::transmit::transport::Transport + 'static>(
    agent: Agent<T>,
    receiver: mpsc::Receiver<Input>,
    updates: Box<dyn Fn(Update) + Send>,
) -> anyhow::Result<JoinHandle<AgentStatus>> {
    std::thread::Builder::new().name("agent".into()).spawn(move || agent.run(receiver, &*updates)).context("starting the agent thread")
}

fn start_readings(source: ReadingSource, machine_id: &str, interval: Duration, inputs: Sender<Input>) -> anyhow::Result<MachineFacts> {
    match source {
        ReadingSource::Machine => {
            let mut sampler = Sampler::new().context("reading this machine through sysinfo")?;
            let facts = MachineFacts {
                machine_id: machine_id.to_owned(),
                cpu_cores: sampler.cpu_cores(),
                mem_total_bytes: sampler.mem_total_bytes(),
            };
            sampler::spawn(sampler, interval, move |reading| inputs.send(Input::Reading(reading)).is_ok())
                .context("starting the sampler thread")?;
            Ok(facts)
        }
        ReadingSource::Script(path) => {
            let script = load_script(&path)?;
            let first = script.first().context("the readings script is empty")?;
            let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get() as u32);
            let facts = MachineFacts { machine_id: machine_id.to_owned(), cpu_cores: cores, mem_total_bytes: first.mem_total_bytes };
            std::thread::Builder::new().name("script".into()).spawn(move || play_script(&script, interval, &inputs))?;
            Ok(facts)
        }
    }
}

/// One scripted reading; rates are per second.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptedReading {
    cpu_pct: f64,
    #[serde(default)]
    mem_used_bytes: u64,
    #[serde(default = "sixteen_gib")]
    mem_total_bytes: u64,
    #[serde(default)]
    disk_read_bytes_per_sec: u64,
    #[serde(default)]
    disk_write_bytes_per_sec: u64,
    #[serde(default)]
    net_rx_bytes_per_sec: u64,
    #[serde(default)]
    net_tx_bytes_per_sec: u64,
}

fn sixteen_gib() -> u64 {
    16 << 30
}

fn load_script(path: &Path) -> anyhow::Result<Vec<ScriptedReading>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| serde_json::from_str(line).with_context(|| format!("{} line {}", path.display(), number + 1)))
        .collect()
}

/// Plays the script like the sampler would: on the real clocks, skipping ticks missed in a stall,
/// each reading covering the time since the previous one (so the agent sees sleeps, steps and
/// stalls exactly as with the machine's own readings).
fn play_script(script: &[ScriptedReading], interval: Duration, inputs: &Sender<Input>) {
    let mut previous = ClockReading::now();
    let mut due = std::time::Instant::now() + interval;
    for index in 0.. {
        std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
        due = sampler::next_tick(due, interval, std::time::Instant::now());
        let step = &script[index.min(script.len() - 1)];
        let clocks = ClockReading::now();
        let millis = (clocks.monotonic_millis - previous.monotonic_millis).max(0) as u64;
        previous = clocks;
        let reading = Reading {
            at: clocks.wall,
            clocks,
            cpu_pct: step.cpu_pct,
            mem_used_bytes: step.mem_used_bytes.min(step.mem_total_bytes),
            mem_total_bytes: step.mem_total_bytes,
            disk_read_bytes: step.disk_read_bytes_per_sec * millis / 1000,
            disk_write_bytes: step.disk_write_bytes_per_sec * millis / 1000,
            net_rx_bytes: step.net_rx_bytes_per_sec * millis / 1000,
            net_tx_bytes: step.net_tx_bytes_per_sec * millis / 1000,
            elapsed_millis: millis,
        };
        if inputs.send(Input::Reading(reading)).is_err() {
            return;
        }
    }
}
