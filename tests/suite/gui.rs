//! The desktop app driven through egui_kittest with its real parts behind it: a scripted agent, the
//! embedded biller and ledger on a temp data dir, and the test broker in Kafka mode. Widgets are found
//! by label; charts are checked through their plot bounds and data, not pixels.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{By, NodeT, Queryable};
use rust_decimal::Decimal;
use usagebill::billing::biller::{Biller, RawMessage};
use usagebill::billing::cost_engine::{CostSummary, PeriodTotal, Series};
use usagebill::billing::ledger::Ledger;
use usagebill::billing::rate_card::RateCard;
use usagebill::config::Config;
use usagebill::gui::UsageApp;
use usagebill::gui::format;
use usagebill::gui::usage_view::{Chart, FULL_SCALE_HEADROOM};
use usagebill::record::{Trigger, UnixMillis, UsageRecord};
use usagebill::runtime::cost_reader::CostState;
use usagebill::runtime::{AgentOverrides, ReadingSource, Settings};

use crate::util::{Broker, read_topic, unique};

mod statements;

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
const IDLE: &str = r#"{"cpu_pct": 10, "mem_used_bytes": 1000000000}"#;
const BUSY: &str = r#"{"cpu_pct": 97, "mem_used_bytes": 1000000000}"#;

/// `(seq, trigger)` of every record billed for `machine`.
fn billed(ledger: &Path, machine: &str) -> Vec<(u64, String)> {
    let Ok(ledger) = Ledger::open_read_only(ledger) else { return Vec::new() };
    let mut statement = ledger
        .connection()
        .prepare("SELECT r.seq, r.trigger FROM records r JOIN machines m ON m.id = r.machine WHERE m.name = ?1 ORDER BY r.seq")
        .unwrap();
    statement.query_map([machine], |row| Ok((row.get::<_, i64>(0)? as u64, row.get(1)?))).unwrap().map(Result::unwrap).collect()
}

#[test]
fn send_now_bills_a_record_and_confirms_it() {
    let data = tempfile::tempdir().unwrap();
    let settings = embedded_settings(data.path(), "desk-1");
    let ledger = settings.ledger_path();
    let mut harness = open_app(settings, manual_only(), script(data.path(), &[STEADY]));
    click(&mut harness, "Send");
    assert!(billed(&ledger, "desk-1").is_empty(), "nothing is sent before the person asks");
    click(&mut harness, "Send now");
    wait_for(&mut harness, "the delivery", Duration::from_secs(10), |app| {
        app.live().status.as_ref().is_some_and(|s| s.delivered_total >= 1)
    });
    let records = billed(&ledger, "desk-1");
    assert_eq!(records, vec![(1, "manual".to_owned())]);
    let notice = app(&harness).send_view().notice().expect("a notice").text.clone();
    assert!(notice.starts_with("Sent successfully: 1 record(s)"), "{notice}");
    harness.get_by_label(&notice);
    harness.get_by_label_contains("Sent today: 1 record(s)");
    harness.get_by_label_contains("Mode: embedded");
    // The Usage tab shows this machine's money beside the charts.
    click(&mut harness, "Usage");
    wait_for(&mut harness, "this machine's summary", Duration::from_secs(5), |app| {
        app.live().costs.summaries.iter().any(|summary| summary.machine_id == "desk-1")
    });
    let period = app(&harness).live().costs.summaries[0].period;
    assert!(period > Decimal::ZERO);
    harness.get_by_label_contains(&format!("this period {}", format::money(period, "USD")));
    harness.get_by_label_contains("(estimate)");
    // Closing sends the window still open; opened again, the app counts both of today's records
    // (the outbox keeps the count).
    drop(harness);
    assert_eq!(billed(&ledger, "desk-1").len(), 2, "the last window was sent on closing");
    let outbox = rusqlite::Connection::open(data.path().join("outbox.db")).unwrap();
    let stored: i64 = outbox.query_row("SELECT value FROM state WHERE key = 'sent_on_day'", [], |row| row.get(0)).unwrap();
    assert_eq!(stored, 2, "the outbox counts both of today's records");
    drop(outbox);
    let mut harness = open_app(embedded_settings(data.path(), "desk-1"), manual_only(), script(data.path(), &[STEADY]));
    click(&mut harness, "Send");
    harness.get_by_label_contains("Sent today: 2 record(s)");
}

#[test]
fn the_usage_charts_plot_the_scripted_load_over_the_chosen_range() {
    let data = tempfile::tempdir().unwrap();
    let mut harness = open_app(embedded_settings(data.path(), "desk-1"), manual_only(), script(data.path(), &[STEADY]));
    wait_for(&mut harness, "a few readings", Duration::from_secs(10), |app| app.live().history.len() >= 5);
    harness.get_by_label("40.0 %");
    let usage = app(&harness).usage_view();
    let cpu = usage.drawn(Chart::Cpu).expect("the CPU chart is drawn");
    assert_eq!((cpu.bounds.min(), cpu.bounds.max()), ([-60.0, 0.0], [0.0, 100.0 * FULL_SCALE_HEADROOM]));
    let points = &cpu.lines[0].1;
    assert!(points.len() >= 5 && points.iter().all(|[x, y]| (-60.0..=0.0).contains(x) && *y == 40.0), "{points:?}");
    assert_eq!(points.last().unwrap()[0], 0.0, "the newest reading sits at the right edge");
    let memory = usage.drawn(Chart::Memory).unwrap();
    assert_eq!(memory.bounds.max()[1], 16e9 * FULL_SCALE_HEADROOM, "memory is drawn against the installed total");
    let disk = usage.drawn(Chart::Disk).unwrap();
    let read = &disk.lines.iter().find(|(name, _)| name == "read").unwrap().1;
    assert!(read.iter().all(|[_, rate]| (*rate - 2e6).abs() < 1.0), "2 MB/s read: {read:?}");
    assert!((disk.bounds.max()[1] - 2.3e6).abs() < 1.0, "the rate axis fits the data: {:?}", disk.bounds);
    click(&mut harness, "15 min");
    let network = app(&harness).usage_view().drawn(Chart::Network).unwrap();
    assert_eq!(network.bounds.min()[0], -900.0);
    let sent = &network.lines.iter().find(|(name, _)| name == "sent").unwrap().1;
    assert!(sent.iter().all(|[_, rate]| (*rate - 5e5).abs() < 1.0));
}

#[test]
fn pause_holds_the_windows_and_resume_delivers_them() {
    let data = tempfile::tempdir().unwrap();
    let settings = embedded_settings(data.path(), "desk-1");
    let ledger = settings.ledger_path();
    let overrides = AgentOverrides { max_window: Some(Duration::from_secs(1)), ..manual_only() };
    let mut harness = open_app(settings, overrides, script(data.path(), &[STEADY]));
    click(&mut harness, "Send");
    click(&mut harness, "Pause");
    wait_for(&mut harness, "paused", Duration::from_secs(5), |app| app.live().status.as_ref().is_some_and(|s| s.paused));
    let before = billed(&ledger, "desk-1").len();
    wait_for(&mut harness, "three held windows", Duration::from_secs(10), |app| {
        app.live().status.as_ref().is_some_and(|s| s.outbox_depth >= 3)
    });
    assert_eq!(billed(&ledger, "desk-1").len(), before, "nothing is billed while paused");
    harness.get_by_label_contains("Paused:");
    click(&mut harness, "Resume");
    wait_for(&mut harness, "the held windows delivered", Duration::from_secs(10), |app| {
        app.live().status.as_ref().is_some_and(|s| !s.paused && s.outbox_depth == 0)
    });
    let records = billed(&ledger, "desk-1");
    assert!(records.len() >= before + 3, "held windows billed after resume: {records:?}");
    assert!(records.iter().map(|(seq, _)| *seq).eq(1..=records.len() as u64), "in order, once each: {records:?}");
}

#[test]
fn a_threshold_rule_typed_in_the_ui_fires_under_load() {
    let data = tempfile::tempdir().unwrap();
    let settings = embedded_settings(data.path(), "desk-1");
    let ledger = settings.ledger_path();
    // About 3 s idle, then busy from then on.
    let lines: Vec<&str> = [IDLE; 15].into_iter().chain([BUSY]).collect();
    let mut harness = open_app(settings, manual_only(), script(data.path(), &lines));
    click(&mut harness, "Send");
    click(&mut harness, "Add rule");
    harness.get_by_label("Rule 1").set_text_value_accesskit("cpu_pct >> 90 for 1s");
    harness.run_ok();
    harness.get_by_label("comparison `>>` must be > or <");
    harness.get_by_label("Rule 1").set_text_value_accesskit("cpu_pct > 90 for 1s");
    harness.run_ok();
    click(&mut harness, "Apply rules");
    wait_for(&mut harness, "the rule in force", Duration::from_secs(5), |app| {
        app.live().status.as_ref().is_some_and(|s| s.rules.len() == 1)
    });
    harness.get_by_label("In force: cpu_pct > 90 for 1s");
    wait_for(&mut harness, "the threshold window billed", Duration::from_secs(15), |app| {
        app.live().status.as_ref().is_some_and(|s| s.delivered_total >= 1)
    });
    assert_eq!(billed(&ledger, "desk-1"), vec![(1, Trigger::Threshold.as_str().to_owned())]);
}

/// A 10 s window at 50 % of 8 cores, 4 GiB, 1 MB/s each way on disk and network.
fn steady_record(machine: &str, seq: u64, end: UnixMillis) -> UsageRecord {
    UsageRecord { seq, ..UsageRecord::steady(machine, 1, end.plus_millis(-10_000), 10_000) }
}

/// The built-in card's price of one [`steady_record`], worked out by hand.
fn steady_record_cost() -> Decimal {
    let hours = Decimal::from(10) / Decimal::from(3600);
    let cpu = Decimal::from(4) * hours * Decimal::from_str("0.04").unwrap();
    let memory = Decimal::from_str("4.294967296").unwrap() * hours * Decimal::from_str("0.005").unwrap();
    let traffic = Decimal::from_str("0.01").unwrap()
        * (Decimal::from_str("0.01").unwrap() + Decimal::from_str("0.09").unwrap() + Decimal::from_str("0.02").unwrap());
    cpu + memory + traffic
}

/// Bills `count` consecutive records of `machine`, the last ending two minutes ago.
fn prebill(ledger: &Path, machine: &str, count: u64) {
    prebill_with(ledger, machine, count, RateCard::built_in());
}

/// [`prebill`] under `card`.
fn prebill_with(ledger: &Path, machine: &str, count: u64, card: RateCard) {
    let mut biller = Biller::new(Ledger::open(ledger).unwrap(), card);
    let last_end = UnixMillis::now().plus_millis(-120_000);
    let messages: Vec<RawMessage> = (1..=count)
        .map(|seq| {
            let end = last_end.plus_millis(-10_000 * (count - seq) as i64);
            RawMessage { topic: "seed".into(), partition: 0, offset: seq as i64, payload: Some(steady_record(machine, seq, end).to_json()) }
        })
        .collect();
    biller.bill(&messages).unwrap();
}

#[test]
fn the_costs_tab_shows_each_machine_with_its_total_and_charts_the_selected_one() {
    let data = tempfile::tempdir().unwrap();
    let settings = embedded_settings(data.path(), "desk-1");
    let ledger = settings.ledger_path();
    prebill(&ledger, "rack-a", 3);
    prebill(&ledger, "rack-b", 5);
    let mut harness = open_app(settings, manual_only(), script(data.path(), &[STEADY]));
    click(&mut harness, "Costs");
    wait_for(&mut harness, "both machines", Duration::from_secs(5), |app| app.live().costs.summaries.len() == 2);
    for (machine, records) in [("rack-a", 3), ("rack-b", 5)] {
        let expected = steady_record_cost() * Decimal::from(records);
        let cost = app(&harness).live().costs.summaries.iter().find(|cost| cost.machine_id == machine).unwrap().clone();
        assert_eq!((cost.period, cost.period_records, cost.gaps), (expected, records, 0), "{machine}");
        // The row shows the rounded total beside the machine's name.
        let row = harness.get_by_label(machine).rect();
        let shown = format::money(expected, "USD");
        let beside =
            harness.query_all_by_label(&shown).any(|cell| cell.rect().center().y > row.min.y && cell.rect().center().y < row.max.y);
        assert!(beside, "{shown} is not on the row of {machine}");
    }
    // Highest cost first by default; a click on the column sorts low to high.
    assert!(harness.get_by_label("rack-b").rect().min.y < harness.get_by_label("rack-a").rect().min.y);
    click(&mut harness, "Period");
    assert!(harness.get_by_label("rack-a").rect().min.y < harness.get_by_label("rack-b").rect().min.y);
    click(&mut harness, "rack-b");
    wait_for(&mut harness, "rack-b's cost series", Duration::from_secs(5), |app| {
        app.costs_view().chart().is_some_and(|chart| chart.machine == "rack-b" && !chart.bars.is_empty())
    });
    let chart = app(&harness).costs_view().chart().unwrap().clone();
    let charted: f64 = chart.bars.iter().map(|bar| bar[1]).sum();
    let expected = f64::try_from(steady_record_cost() * Decimal::from(5)).unwrap();
    assert!((charted - expected).abs() < 1e-12, "bars add up to the period total: {charted} vs {expected}");
    assert_eq!((chart.bounds.min()[0], chart.bounds.max()[0]), (-24.0, 1.0), "the last day, in hours");
    assert!(chart.bars.iter().all(|[hours, _]| (-2.0..=0.0).contains(hours)), "billed 2–3 minutes ago: {:?}", chart.bars);
    // A record billed now shows within a second, on this machine's row pinned at the top.
    click(&mut harness, "Send");
    click(&mut harness, "Send now");
    click(&mut harness, "Costs");
    let asked = Instant::now();
    wait_for(&mut harness, "this machine's first bill", Duration::from_secs(5), |app| app.live().costs.summaries.len() == 3);
    assert!(asked.elapsed() < Duration::from_millis(1_500), "took {:?}", asked.elapsed());
    harness.run_ok();
    let own = harness.get_by_label("desk-1").rect();
    assert!(own.min.y < harness.get_by_label("rack-a").rect().min.y && own.min.y < harness.get_by_label("rack-b").rect().min.y);
    harness.get_by_label("this machine");
}

/// The built-in prices, with a CPU tier from 0.02 core-hours and a traffic tier from 0.01 GB sent.
const TIERED_CARD: &str = r#"
[[version]]
name = "tiered"
effective_from = "2020-01-01T00:00:00Z"
currency = "USD"
cpu_core_hour = "0.04"
memory_gb_hour = "0.005"
net_rx_gb = "0.01"
net_tx_gb = "0.09"
disk_read_gb = "0.01"
disk_write_gb = "0.01"
tiers.cpu_core_hour = [{ from = "0.02", price = "0.01" }]
tiers.net_tx_gb = [{ from = "0.01", price = "0.03" }]
"#;

#[test]
fn the_costs_tab_prices_graduated_tiers_as_the_report_does() {
    let data = tempfile::tempdir().unwrap();
    let card_path = data.path().join("tiered.toml");
    std::fs::write(&card_path, TIERED_CARD).unwrap();
    let mut settings = embedded_settings(data.path(), "desk-1");
    settings.config.worker.rate_card = Some(card_path.clone());
    // Eight 10 s windows at 4 busy cores: 0.089 core-hours, most of it past the tier.
    prebill_with(&settings.ledger_path(), "rack-a", 8, RateCard::load(Some(&card_path)).unwrap());
    let mut harness = open_app(settings, manual_only(), script(data.path(), &[STEADY]));
    click(&mut harness, "Costs");
    wait_for(&mut harness, "the machine", Duration::from_secs(5), |app| app.live().costs.summaries.len() == 1);
    let shown = app(&harness).live().costs.summaries[0].clone();
    let output =
        crate::util::run_ok(crate::util::usagebill(data.path()).args(["report", "--format", "json", "--rate-card"]).arg(&card_path));
    let report: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    let reported = Decimal::from_str(report[0]["cost"].as_str().unwrap()).unwrap();
    assert_eq!(shown.period, reported, "the period cost is the report's tiered total");
    assert!(shown.period < steady_record_cost() * Decimal::from(8), "the tiers lowered it: {}", shown.period);
    let projected = shown.projection_at(UnixMillis::now()).estimate;
    assert!(shown.today <= shown.period && projected >= shown.period, "{shown:?}");
    let money = format::money(reported, "USD");
    assert!(harness.query_all_by_label(&money).count() >= 1, "the table shows {money}");
}

#[test]
fn settings_show_errors_beside_their_fields_and_save_to_the_config_file() {
    let data = tempfile::tempdir().unwrap();
    let settings = embedded_settings(data.path(), "desk-1");
    let config_path = settings.config_path.clone();
    let mut harness = open_app(settings, manual_only(), script(data.path(), &[STEADY]));
    click(&mut harness, "Settings");
    harness.get_by_label("Brokers").set_text_value_accesskit("not a broker");
    harness.run_ok();
    let field = harness.get_by_label("Brokers").rect();
    let error = harness.get_by_label("\"not a broker\" is not host:port, e.g. localhost:9092").rect();
    assert!(error.min.x >= field.max.x && (field.min.y..=field.max.y).contains(&error.center().y), "beside: {field:?} {error:?}");
    assert!(harness.get_by_label("Save and apply").accesskit_node().is_disabled(), "nothing invalid is saved");
    harness.get_by_label("Brokers").set_text_value_accesskit("");
    harness.get_by_label("Topic").set_text_value_accesskit("usage-from-the-ui");
    harness.run_ok();
    assert!(!harness.get_by_label("Save and apply").accesskit_node().is_disabled());
    click(&mut harness, "Save and apply");
    wait_for(&mut harness, "the save", Duration::from_secs(15), |app| app.settings().config.kafka.topic == "usage-from-the-ui");
    let saved = Config::load(&config_path).unwrap();
    assert_eq!((saved.kafka.topic.as_str(), saved.agent.machine_id.as_deref()), ("usage-from-the-ui", Some("desk-1")));
    harness.get_by_label_contains("Saved to");
}

#[test]
fn settings_list_a_secret_property_but_never_show_its_value() {
    const SECRET: &str = "hunter2-secret";
    let data = tempfile::tempdir().unwrap();
    let mut settings = embedded_settings(data.path(), "desk-1");
    let properties = [("sasl.password", SECRET), ("sasl.username", "usagebill"), ("ssl.key.password", "${env:KEY_PASSWORD}")];
    settings.config.kafka.properties = properties.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
    let config_path = settings.config_path.clone();
    let mut harness = open_app(settings, manual_only(), script(data.path(), &[STEADY]));
    click(&mut harness, "Settings");
    let nowhere = |harness: &AppHarness| {
        // Every node of the accessibility tree: labels, values (a text field's text) and descriptions.
        let shows = |text: Option<String>| text.is_some_and(|text| text.contains(SECRET));
        let found: Vec<String> = harness
            .query_all(By::new().predicate(|node| shows(node.label()) || shows(node.value()) || shows(node.description())))
            .map(|node| format!("{node:?}"))
            .collect();
        assert!(found.is_empty(), "the secret is on screen: {found:?}");
        assert_eq!(harness.query_all_by_label_contains(SECRET).count(), 0);
    };
    nowhere(&harness);
    let listed = harness.get_by_label("Kafka properties").accesskit_node().value().unwrap_or_default();
    assert!(listed.contains("sasl.password") && listed.contains("sasl.username = usagebill"), "{listed}");
    assert!(listed.contains("ssl.key.password = ${env:KEY_PASSWORD}"), "a reference is not a secret, so it is shown: {listed}");
    // Saving with the mask untouched keeps the secret; the form still does not show it.
    harness.get_by_label("Topic").set_text_value_accesskit("usage-with-secrets");
    harness.run_ok();
    click(&mut harness, "Save and apply");
    wait_for(&mut harness, "the save", Duration::from_secs(15), |app| app.settings().config.kafka.topic == "usage-with-secrets");
    let saved = Config::load(&config_path).unwrap();
    assert_eq!(saved.kafka.properties.get("sasl.password").map(String::as_str), Some(SECRET));
    nowhere(&harness);
}

#[test]
fn kafka_mode_send_now_delivers_to_the_topic() {
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let settings = kafka_settings(data.path(), &broker, "desk-kafka");
    let topic = settings.config.kafka.topic.clone();
    let mut harness = open_app(settings, manual_only(), script(data.path(), &[STEADY]));
    harness.get_by_label_contains("Mode: Kafka");
    click(&mut harness, "Send");
    click(&mut harness, "Send now");
    wait_for(&mut harness, "the delivery report", Duration::from_secs(30), |app| {
        app.live().status.as_ref().is_some_and(|s| s.delivered_total >= 1)
    });
    harness.get_by_label_contains("Broker: connected");
    let records = read_topic(&broker.bootstrap, &topic, 1, Duration::from_secs(5));
    assert_eq!(records.len(), 1);
    assert_eq!((records[0].machine_id.as_str(), records[0].seq, records[0].trigger), ("desk-kafka", 1, Trigger::Manual));
    assert!(app(&harness).send_view().notice().is_some_and(|notice| !notice.failed));
}

fn repo_script(name: &str) -> std::process::Command {
    std::process::Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name))
}

#[test]
fn the_deb_package_holds_the_binary_the_desktop_entry_the_icons_and_the_units() {
    let out = tempfile::tempdir().unwrap();
    let output = repo_script("package-deb.sh")
        .args([env!("CARGO_BIN_EXE_usagebill"), out.path().to_str().unwrap()])
        .env("DEB_COMPRESSION", "gzip")
        .output()
        .unwrap();
    assert!(output.status.success(), "package-deb.sh failed: {}", String::from_utf8_lossy(&output.stderr));
    let deb = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
    let listing = std::process::Command::new("dpkg-deb").arg("-c").arg(&deb).output().unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    for path in [
        "./usr/bin/usagebill",
        "./usr/share/applications/usagebill.desktop",
        "./usr/share/icons/hicolor/256x256/apps/usagebill.png",
        "./usr/share/icons/hicolor/scalable/apps/usagebill.svg",
        "./lib/systemd/system/usagebill-agent.service",
        "./lib/systemd/system/usagebill-worker.service",
    ] {
        assert!(listing.lines().any(|line| line.ends_with(path)), "{path} missing from {}:\n{listing}", deb.display());
    }
    assert!(listing.lines().any(|line| line.starts_with("-rwxr-xr-x root/root") && line.ends_with("./usr/bin/usagebill")), "{listing}");
    let control = std::process::Command::new("dpkg-deb").args(["-f"]).arg(&deb).args(["Package", "Depends"]).output().unwrap();
    let control = String::from_utf8(control.stdout).unwrap();
    assert!(control.contains("Package: usagebill") && control.contains("libc6"), "{control}");
    let lintian = std::process::Command::new("lintian").arg(&deb).output();
    let lintian = lintian.unwrap_or_else(|error| panic!("cannot run lintian ({error}): apt-get install lintian (./scripts/test.sh does)"));
    let report = String::from_utf8_lossy(&lintian.stdout);
    let errors: Vec<&str> = report.lines().filter(|line| line.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian finds errors in the package:\n{report}");
}

#[test]
fn install_desktop_puts_the_entry_and_icons_under_the_users_data_home_and_removes_them() {
    let home = tempfile::tempdir().unwrap();
    let data_home = home.path().join("share");
    let run = |args: &[&str]| {
        let output =
            repo_script("install-desktop.sh").args(args).env("HOME", home.path()).env("XDG_DATA_HOME", &data_home).output().unwrap();
        assert!(output.status.success(), "install-desktop.sh {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    run(&[env!("CARGO_BIN_EXE_usagebill")]);
    let installed = home.path().join(".local/bin/usagebill");
    let entry = std::fs::read_to_string(data_home.join("applications/usagebill.desktop")).unwrap();
    assert!(entry.lines().any(|line| line == format!("Exec={}", installed.display())), "{entry}");
    assert!(entry.lines().any(|line| line == "Icon=usagebill") && entry.contains("Type=Application"), "{entry}");
    assert!(data_home.join("icons/hicolor/256x256/apps/usagebill.png").is_file());
    assert!(data_home.join("icons/hicolor/scalable/apps/usagebill.svg").is_file());
    let version = std::process::Command::new(&installed).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("usagebill "), "the installed binary runs");
    run(&["--uninstall"]);
    assert!(!installed.exists() && !data_home.join("applications/usagebill.desktop").exists());
}

#[test]
fn the_apps_in_process_worker_bills_with_the_configured_budgets() {
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let topic = unique("usage");
    // 4 machines × 100 windows of 10 s ending now: this period, inside the projection's burn window.
    let producer = tempfile::tempdir().unwrap();
    let start = UnixMillis::now().plus_millis(-1_000_000).to_string();
    let simulate = ["simulate", "--machines", "4", "--records", "400", "--window", "10s", "--start", start.as_str()];
    let output = crate::util::usagebill(producer.path()).args(broker.args(&topic)).args(simulate).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let mut config = Config::default();
    config.kafka.brokers = vec![broker.bootstrap.clone()];
    config.kafka.topic = topic.clone();
    config.kafka.cost_topic = format!("{topic}.costs");
    config.kafka.group_id = unique("app-billing");
    config.worker.embedded = true;
    config.billing.budgets.insert("sim-*".into(), "1".into());
    config.agent.machine_id = Some("desk-budget".into());
    let settings = Settings::new(config, data.path().join("config.toml"), data.path().to_owned()).unwrap();
    let mut harness = open_app(settings, manual_only(), script(data.path(), &[STEADY]));
    let ledger = data.path().join("ledger.db");
    let alerts = || -> i64 {
        let connection = rusqlite::Connection::open_with_flags(&ledger, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY);
        connection.and_then(|connection| connection.query_row("SELECT count(*) FROM budget_alerts", [], |row| row.get(0))).unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while alerts() < 4 {
        assert!(Instant::now() < deadline, "the app's worker raised {} of 4 budget alerts within 60 s", alerts());
        harness.step();
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A summary of `machine` as a worker would publish it: `period` this month over `records`
/// windows, and, when `last` is given, that cost in the previous month.
fn fleet_summary(machine: &str, records: u64, period: Decimal, last: Option<Decimal>, now: UnixMillis) -> CostSummary {
    let (period_start, _) = usagebill::billing::cost_engine::calendar::month_of(now);
    let last_start = usagebill::billing::cost_engine::calendar::month_of(period_start.plus_millis(-1)).0;
    let hour = now.0 / 3_600_000 * 3_600_000;
    CostSummary {
        schema: usagebill::billing::cost_engine::SUMMARY_SCHEMA.into(),
        machine_id: machine.into(),
        revision: records + last.map_or(0, |_| 100),
        computed_at: now,
        currency: "USD".into(),
        card_version: "2026-01".into(),
        day_start: now.utc_day_start(),
        period_start,
        today: period,
        period,
        period_records: records,
        gaps: 0,
        asleep_ms: 0,
        late_ms: 0,
        clock_steps: 0,
        last_seen: now,
        burn_per_hour: Decimal::new(1, 3),
        burn_low_per_hour: Decimal::new(5, 4),
        burn_high_per_hour: Decimal::new(2, 3),
        hourly: Series { from: UnixMillis(hour - 23 * 3_600_000), costs: vec![Decimal::ZERO; 23].into_iter().chain([period]).collect() },
        daily: Series { from: period_start, costs: vec![period] },
        periods: last.map(|cost| PeriodTotal { start: last_start, cost, records: 100 }).into_iter().collect(),
    }
}

#[test]
fn the_costs_tab_shows_a_fleet_of_ten_thousand_machines_from_the_summary_topic() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let settings = kafka_settings(data.path(), &broker, "desk-1");
    crate::util::create_topics(&broker.bootstrap, &[&settings.config.kafka.summary_topic()]);
    // 10,000 machines at 0.01–0.10 USD; every other one also billed last period; this desktop's own.
    let now = UnixMillis::now();
    let producer: BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", &broker.bootstrap).create().unwrap();
    let mut expected_period = Decimal::ZERO;
    let mut summaries: Vec<CostSummary> = (1..=10_000u64)
        .map(|n| {
            let period = Decimal::new((n % 10 + 1) as i64, 2);
            expected_period += period;
            fleet_summary(&format!("fleet-{n:05}"), 10, period, (n % 2 == 0).then(|| Decimal::new(5, 1)), now)
        })
        .collect();
    // This desktop slept 8 hours, stalled for 90 s and saw its clock stepped twice.
    let slept = CostSummary {
        asleep_ms: 8 * 3_600_000,
        late_ms: 90_000,
        clock_steps: 2,
        ..fleet_summary("desk-1", 3, Decimal::new(7, 3), None, now)
    };
    summaries.push(slept);
    expected_period += Decimal::new(7, 3);
    // An older summary of a machine comes after its newer one: it must not replace it.
    summaries.push(fleet_summary("fleet-00001", 1, Decimal::new(99, 0), None, now));
    let topic = settings.config.kafka.summary_topic();
    for summary in &summaries {
        let payload = summary.encode();
        loop {
            match producer.send(BaseRecord::to(&topic).key(&summary.machine_id).payload(&payload)) {
                Ok(()) => break,
                Err(_) => producer.poll(Duration::from_millis(10)),
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let mut harness = open_app(settings, manual_only(), script(data.path(), &[STEADY]));
    click(&mut harness, "Costs");
    wait_for(&mut harness, "the fleet's summaries", Duration::from_secs(20), |app| app.live().costs.summaries.len() == 10_001);
    harness.run_ok();
    let table = app(&harness).costs_view().table().unwrap().clone();
    assert_eq!((table.total.machines, table.total.period), (10_001, expected_period), "the total row sums the whole fleet");
    harness.get_by_label_contains("Fleet: 10001 machine(s)");
    harness.get_by_label_contains(&format!("period {}", format::money(expected_period, "USD")));
    // This machine is pinned at the top and marked, above the most expensive of the others.
    assert_eq!(table.own.as_ref().map(|row| row.machine_id.as_str()), Some("desk-1"));
    harness.get_by_label("this machine");
    // Its time health sits next to the gaps, and the row, mark included, fits the window.
    let time = harness.get_by_label("asleep 8h 0m, late 1m 30s, 2 steps").rect();
    assert!(time.min.x > harness.get_by_label("Gaps").rect().max.x, "{time:?}");
    assert!(harness.get_by_label("this machine").rect().max.x <= 1100.0, "the row runs past the window");
    let first_other = table.rows[0].machine_id.clone();
    assert!(harness.get_by_label("desk-1").rect().min.y < harness.get_by_label(&first_other).rect().min.y);
    assert_eq!(table.rows.iter().find(|row| row.machine_id == "fleet-00001").unwrap().period, Decimal::new(2, 2), "not the older 99");
    // Only the visible rows are drawn.
    assert!(harness.query_all_by_label_contains("fleet-").count() < 100, "10,000 rows are not all drawn");
    // The filter.
    harness.get_by_label("Filter:").set_text_value_accesskit("fleet-0042");
    harness.run_ok();
    let filtered = app(&harness).costs_view().table().unwrap().clone();
    assert_eq!(filtered.rows.len(), 10, "fleet-00420 to fleet-00429");
    assert!(filtered.rows.iter().all(|row| row.machine_id.contains("fleet-0042")));
    harness.get_by_label("fleet-00425");
    harness.get_by_label("Filter:").set_text_value_accesskit("");
    harness.run_ok();
    // The period picker: last period holds the 5,000 even-numbered machines at 0.5 USD each.
    let last_start =
        usagebill::billing::cost_engine::calendar::month_of(usagebill::billing::cost_engine::calendar::month_of(now).0.plus_millis(-1)).0;
    let label = format!("{} (last period)", &last_start.to_string()[..7]);
    click(&mut harness, &label);
    let last = app(&harness).costs_view().table().unwrap().clone();
    assert_eq!((last.total.machines, last.total.period), (5_000, Decimal::new(2_500, 0)));
    assert!(last.own.is_none(), "this machine had no usage last period");
}

#[test]
fn the_costs_tab_says_no_bills_yet_until_the_first_record_is_billed() {
    let data = tempfile::tempdir().unwrap();
    let mut harness = open_app(embedded_settings(data.path(), "desk-1"), manual_only(), script(data.path(), &[STEADY]));
    click(&mut harness, "Costs");
    wait_for(&mut harness, "the costs read", Duration::from_secs(5), |app| app.live().costs.state == CostState::Ready);
    harness.get_by_label_contains("No bills yet");
    assert_eq!(harness.query_all_by_label_contains("Reading the costs").count(), 0);
    click(&mut harness, "Send");
    click(&mut harness, "Send now");
    click(&mut harness, "Costs");
    wait_for(&mut harness, "the first bill", Duration::from_secs(5), |app| app.live().costs.summaries.len() == 1);
    harness.run_ok();
    assert_eq!(harness.query_all_by_label_contains("No bills yet").count(), 0);
    harness.get_by_label_contains("Fleet: 1 machine(s)");
}
