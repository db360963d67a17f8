//! The Costs tab: each machine's total and cost chart, graduated tiers priced as the report prices
//! them, the app's in-process worker with budgets, a fleet read from the summary topic, and the
//! empty state before the first bill.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use egui_kittest::kittest::{NodeT, Queryable};
use rust_decimal::Decimal;
use usagebill::billing::biller::{Biller, RawMessage};
use usagebill::billing::cost_engine::{CostSummary, PeriodTotal, Series};
use usagebill::billing::ledger::Ledger;
use usagebill::billing::rate_card::RateCard;
use usagebill::config::Config;
use usagebill::gui::format;
use usagebill::record::{UnixMillis, UsageRecord};
use usagebill::runtime::cost_reader::CostState;
use usagebill::runtime::{Settings, cost_snapshot};

use super::{STEADY, app, click, embedded_settings, kafka_settings, manual_only, open_app, script, wait_for};
use crate::util::{Broker, unique};

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
    let projected = shown.expected_at(UnixMillis::now());
    assert!(shown.today <= shown.period && projected >= shown.period, "{shown:?}");
    let money = format::money(reported, "USD");
    assert!(harness.query_all_by_label(&money).count() >= 1, "the table shows {money}");
}

#[test]
fn the_apps_in_process_worker_bills_with_the_configured_budgets() {
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let topic = unique("usage");
    // 4 machines × 100 windows of 10 s ending now: about 0.17 USD each this period, past the
    // 0.1 budget already (17 minutes is too little history to forecast from).
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
    config.billing.budgets.insert("sim-*".into(), "0.1".into());
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
        forecast: usagebill::billing::cost_engine::Outlook::Unknown,
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

#[test]
fn offline_the_costs_tab_shows_the_kept_costs_with_their_age_in_money_people_read() {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    // A port nothing listens on: the brokers cannot be reached.
    config.kafka.brokers = vec!["127.0.0.1:9".into()];
    config.agent.machine_id = Some("desk-1".into());
    let settings = Settings::new(config, data.path().join("config.toml"), data.path().to_owned()).unwrap();
    let now = UnixMillis::now();
    let saved_at = now.plus_millis(-12 * 60_000);
    let amount = |text: &str| Decimal::from_str(text).unwrap();
    let mut euro = fleet_summary("eu-desk", 5, amount("12.5"), None, now);
    euro.currency = "EUR".into();
    let kept = [
        fleet_summary("big-rack", 900, amount("6134.748365"), None, now),
        fleet_summary("cent-box", 5, amount("0.0704"), None, now),
        fleet_summary("tiny-box", 1, amount("0.000067"), None, now),
        euro,
    ];
    cost_snapshot::save(&cost_snapshot::snapshot_path(data.path()), saved_at, &kept.iter().collect::<Vec<_>>()).unwrap();
    let mut harness = open_app(settings, manual_only(), script(data.path(), &[STEADY]));
    click(&mut harness, "Costs");
    wait_for(&mut harness, "the kept costs and the brokers' trouble", Duration::from_secs(60), |app| {
        let costs = &app.live().costs;
        costs.saved_at == Some(saved_at) && costs.problem.is_some()
    });
    let status = harness.get_by_label_contains("Showing costs as of ").accesskit_node();
    let status = status.label().or(status.value()).unwrap_or_default();
    assert!(status.contains("(12 min ago); can't reach the brokers at 127.0.0.1:9 since "), "{status}");
    assert!(status.contains("retrying every 2s"), "{status}");
    // Thousands apart, cents, under a cent (exact on hover and in exports), a second currency.
    for shown in ["$6,134.75", "$0.07", "< $0.01", "€12.50"] {
        assert!(harness.query_all_by_label(shown).count() >= 1, "{shown} is not in the table");
    }
    // The fleet adds the dollars only, and says what it left out.
    let fleet_period = format::money(amount("6134.748365") + amount("0.0704") + amount("0.000067"), "USD");
    harness.get_by_label(&format!("period {fleet_period}"));
    harness.get_by_label("1 machine(s) billed in other currencies, not added");
    assert_eq!(harness.query_all_by_label_contains("period $0.00").count(), 0, "no zeros for data it does not have");
}
