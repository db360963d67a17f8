//! The Send and Usage tabs over the scripted agent: sending now, pausing, threshold rules typed in
//! the UI, the usage charts, and Send now in Kafka mode.

use std::time::Duration;

use egui_kittest::kittest::Queryable;
use rust_decimal::Decimal;
use usagebill::gui::format;
use usagebill::gui::usage_view::{Chart, FULL_SCALE_HEADROOM};
use usagebill::record::Trigger;
use usagebill::runtime::AgentOverrides;

use super::{STEADY, app, billed, click, embedded_settings, kafka_settings, manual_only, open_app, script, wait_for};
use crate::util::{Broker, read_topic};

const IDLE: &str = r#"{"cpu_pct": 10, "mem_used_bytes": 1000000000}"#;
const BUSY: &str = r#"{"cpu_pct": 97, "mem_used_bytes": 1000000000}"#;

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
    // One window is far too little to forecast a month from: the tab says so instead of a number.
    harness.get_by_label_contains("not enough history to project (0 h so far)");
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

#[test]
fn closing_returns_at_once_while_the_agent_keeps_its_last_window_for_the_brokers() {
    let data = tempfile::tempdir().unwrap();
    // Nothing listens here: every delivery waits out its timeout, as with brokers gone.
    let unreachable = crate::util::Broker::external(format!("127.0.0.1:{}", crate::util::free_port()));
    let mut settings = super::kafka_settings(data.path(), &unreachable, "desk-close");
    settings.config.kafka.message_timeout = usagebill::config::HumanDuration::from_secs(2);
    let overrides = usagebill::runtime::AgentOverrides { interval: Some(Some(Duration::from_secs(1))), ..manual_only() };
    let mut harness = open_app(settings, overrides, script(data.path(), &[STEADY]));
    // The Send tab says, in plain words, since when the link is down, when it tries next and what waits.
    click(&mut harness, "Send");
    wait_for(&mut harness, "the link down", Duration::from_secs(30), |app| {
        app.live().status.as_ref().is_some_and(|status| status.down_since.is_some() && status.outbox_depth > 0 && status.problem.is_some())
    });
    harness.get_by_label_contains("unreachable since ");
    harness.get_by_label_contains("record(s) wait in the outbox, kept on disk, and go as soon as it answers");
    // On the tab, and on the status bar, with the library's words behind "details" and on hover.
    let plain = "Can't deliver to the brokers: the records stay in the outbox and go again.";
    assert_eq!(harness.query_all_by_label(plain).count(), 2);
    harness.get_by_label("details");
    let waiting_before: u64 = app(&harness).live().status.as_ref().map_or(0, |status| status.outbox_depth);
    let began = std::time::Instant::now();
    let stopping = harness.state_mut().app.as_mut().unwrap().close();
    let closed_in = began.elapsed();
    assert!(closed_in < Duration::from_millis(200), "closing took {closed_in:?} on the UI thread");
    stopping.wait();
    let outbox = rusqlite::Connection::open(data.path().join("outbox.db")).unwrap();
    let waiting: i64 = outbox.query_row("SELECT count(*) FROM waiting", [], |row| row.get(0)).unwrap();
    assert!(
        waiting as u64 > waiting_before,
        "the window open at closing waits in the outbox for the brokers ({waiting} after {waiting_before})"
    );
}
