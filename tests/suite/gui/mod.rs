//! The desktop app driven through egui_kittest with its real parts behind it: a scripted agent, the
//! embedded biller and ledger on a temp data dir, and the test broker in Kafka mode. Widgets are found
//! by label; charts are checked through their plot bounds and data, not pixels. This file holds what
//! the tests share (opening the app, stepping frames, settings, scripts); the tests sit by topic below.

mod agent;
mod costs;
mod forecast;
mod notifications;
mod packaging;
mod settings;
mod statements;
mod tray;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use usagebill::billing::ledger::Ledger;
use usagebill::config::Config;
use usagebill::gui::UsageApp;
use usagebill::runtime::{AgentOverrides, ReadingSource, Settings};

use crate::util::{Broker, unique};

/// The harness state: the app is built inside the first frame, where the harness's egui context exists.
struct Slot {
    make: Option<Box<dyn FnOnce(egui::Context) -> UsageApp>>,
    app: Option<UsageApp>,
}

type AppHarness = Harness<'static, Slot>;

fn open_app(settings: Settings, overrides: AgentOverrides, script: PathBuf) -> AppHarness {
    let make: Box<dyn FnOnce(egui::Context) -> UsageApp> =
        Box::new(move |ctx| UsageApp::new(settings, overrides, ReadingSource::Script(script), ctx).expect("starting the app"));
    let mut harness = Harness::builder().with_size(egui::vec2(1100.0, 780.0)).build_ui_state(
        |ui, slot: &mut Slot| {
            if let Some(make) = slot.make.take() {
                slot.app = Some(make(ui.ctx().clone()));
            }
            slot.app.as_mut().expect("built in the first frame").show(ui);
        },
        Slot { make: Some(make), app: None },
    );
    wait_for(&mut harness, "the agent's first status and reading", Duration::from_secs(15), |app| {
        app.live().status.is_some() && !app.live().history.is_empty()
    });
    harness
}

fn app(harness: &AppHarness) -> &UsageApp {
    harness.state().app.as_ref().expect("the app is built")
}

/// Steps frames until `condition` holds for the app.
fn wait_for(harness: &mut AppHarness, what: &str, timeout: Duration, condition: impl Fn(&UsageApp) -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        harness.step();
        if harness.state().app.as_ref().is_some_and(&condition) {
            harness.run_ok();
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; status: {:?}; readings: {:?}",
            harness.state().app.as_ref().map(|a| &a.live().status),
            harness.state().app.as_ref().map(|a| if a.live().history.is_empty() { "none" } else { "some" })
        );
        std::thread::sleep(Duration::from_millis(40));
    }
}

fn click(harness: &mut AppHarness, label: &str) {
    harness.get_by_label(label).click();
    harness.run_ok();
}

fn embedded_settings(data_dir: &Path, machine_id: &str) -> Settings {
    let mut config = Config::default();
    config.agent.machine_id = Some(machine_id.into());
    Settings::new(config, data_dir.join("config.toml"), data_dir.to_owned()).unwrap()
}

/// Kafka mode on `broker` with the test's own topics (one partition) for `machine_id`.
fn kafka_settings(data_dir: &Path, broker: &Broker, machine_id: &str) -> Settings {
    let mut config = Config::default();
    config.kafka.brokers = vec![broker.bootstrap.clone()];
    config.kafka.topic = unique("usage");
    config.kafka.cost_topic = format!("{}.costs", config.kafka.topic);
    config.kafka.partitions = 1;
    config.agent.machine_id = Some(machine_id.into());
    Settings::new(config, data_dir.join("config.toml"), data_dir.to_owned()).unwrap()
}

/// Only Send now (and the window length) closes windows; readings every 200 ms.
fn manual_only() -> AgentOverrides {
    AgentOverrides { interval: Some(None), sample_interval: Some(Duration::from_millis(200)), ..AgentOverrides::default() }
}

fn script(dir: &Path, lines: &[&str]) -> PathBuf {
    let path = dir.join("readings.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

const STEADY: &str = r#"{"cpu_pct": 40, "mem_used_bytes": 4000000000, "mem_total_bytes": 16000000000, "disk_read_bytes_per_sec": 2000000, "net_tx_bytes_per_sec": 500000}"#;

/// `(seq, trigger)` of every record billed for `machine`.
fn billed(ledger: &Path, machine: &str) -> Vec<(u64, String)> {
    let Ok(ledger) = Ledger::open_read_only(ledger) else { return Vec::new() };
    let mut statement = ledger
        .connection()
        .prepare("SELECT r.seq, r.trigger FROM records r JOIN machines m ON m.id = r.machine WHERE m.name = ?1 ORDER BY r.seq")
        .unwrap();
    statement.query_map([machine], |row| Ok((row.get::<_, i64>(0)? as u64, row.get(1)?))).unwrap().map(Result::unwrap).collect()
}
