//! The worker's HTTP API against a real worker process, a real broker and a real ledger: every
//! table agrees with `usagebill report`, refusals are 4xx, and the token rules hold.

mod http_client;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::str::FromStr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use usagebill::record::{RecordKind, Trigger, UnixMillis, UsageRecord};

use self::http_client::{HttpResponse, get, request};
use crate::util::{Broker, FAST_GROUP, report_json, run_ok, unique, usagebill};

/// A worker process serving the API; stopped with SIGTERM when dropped.
struct ServingWorker {
    child: Child,
    address: String,
    log: Arc<Mutex<String>>,
}

impl ServingWorker {
    /// Starts `usagebill worker --http <http>` with `extra` flags and waits for the listening line.
    fn start(data: &Path, kafka: &[String], http: &str, extra: &[&str]) -> ServingWorker {
        let mut child = usagebill(data)
            .env("NO_COLOR", "1")
            .env_remove("USAGEBILL_API_TOKEN")
            .args(kafka)
            .args(["worker", "--http", http])
            .args(FAST_GROUP)
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the worker");
        let log = Arc::new(Mutex::new(String::new()));
        let (address_sender, address_receiver) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let thread_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some((_, rest)) = line.split_once("listening on http://") {
                    let _ = address_sender.send(rest.split_whitespace().next().unwrap_or_default().to_owned());
                }
                thread_log.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let Ok(address) = address_receiver.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            panic!("the worker did not start its API:\n{}", log.lock().unwrap());
        };
        ServingWorker { child, address, log }
    }

    /// Polls `/metrics` until `usagebill_records_billed_total` reaches `want`.
    fn wait_until_billed(&self, want: u64, token: Option<&str>) -> HashMap<String, f64> {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let metrics = parse_prometheus(&request(&self.address, "GET", "/metrics", token));
            if metrics.get("usagebill_records_billed_total").copied().unwrap_or_default() >= want as f64 {
                return metrics;
            }
            assert!(Instant::now() < deadline, "only {metrics:?} after 40 s; worker log:\n{}", self.log.lock().unwrap());
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for ServingWorker {
    fn drop(&mut self) {
        crate::util::signal(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses Prometheus text: every sample line must be `series value`; comments must be HELP or TYPE.
fn parse_prometheus(response: &HttpResponse) -> HashMap<String, f64> {
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response.header("content-type").unwrap_or_default().starts_with("text/plain; version=0.0.4"));
    let mut samples = HashMap::new();
    for line in response.body.lines().filter(|line| !line.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(comment.starts_with("HELP ") || comment.starts_with("TYPE "), "stray comment {line:?}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line:?}"));
        let name_end = series.find('{').unwrap_or(series.len());
        assert!(series[..name_end].bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_'), "bad metric name in {line:?}");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number in {line:?}"));
        samples.insert(series.to_owned(), value);
    }
    samples
}

fn decimal(value: &serde_json::Value) -> Decimal {
    Decimal::from_str(value.as_str().unwrap_or_else(|| panic!("{value} is not a decimal string"))).unwrap()
}

/// Produces `payloads` (key, bytes) to `topic`, waiting for every delivery.
pub fn produce(bootstrap: &str, topic: &str, payloads: &[(&str, Vec<u8>)]) {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let producer: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("creating a test producer");
    for (key, payload) in payloads {
        producer.send(BaseRecord::to(topic).key(*key).payload(payload)).map_err(|(error, _)| error).expect("queueing a message");
    }
    producer.flush(Duration::from_secs(10)).expect("delivering the test messages");
}

/// A two-hour window as a version-1 agent wrote it (the v1 type; no kind, late time or steps).
fn version_1_night() -> Vec<u8> {
    let record = UsageRecord::steady("old-agent", 1, new_year(), 2 * 3_600_000);
    let mut event: serde_json::Value = serde_json::from_slice(&record.to_json()).unwrap();
    event["type"] = usagebill::record::EVENT_TYPE_V1.into();
    let data = event["data"].as_object_mut().unwrap();
    for field in ["kind", "late_millis", "clock_steps"] {
        data.remove(field);
    }
    serde_json::to_vec(&event).unwrap()
}

fn new_year() -> UnixMillis {
    UnixMillis::parse_rfc3339("2026-01-01T00:00:00Z").unwrap()
}

/// A record of `gappy`, a machine whose seq 2 never arrives.
fn gappy_record(seq: u64) -> UsageRecord {
    let start = UnixMillis::parse_rfc3339("2026-01-01T00:00:00Z").unwrap().plus_millis((seq as i64 - 1) * 60_000);
    UsageRecord {
        machine_id: "gappy".into(),
        seq,
        start,
        end: start.plus_millis(60_000),
        cpu_pct: 10.0,
        cpu_cores: 2,
        mem_used_bytes: 1 << 30,
        mem_total_bytes: 4 << 30,
        disk_read_bytes: 0,
        disk_write_bytes: 0,
        net_rx_bytes: 0,
        net_tx_bytes: 0,
        samples: 60,
        trigger: Trigger::Interval,
        kind: RecordKind::Usage,
        late_millis: 0,
        clock_steps: 0,
    }
}

/// `sleepy`'s three windows from `start`: an hour of use, 30 s of it observed late, that saw a
/// clock step; an hour asleep holding its memory; and an hour the wall clock skipped.
pub fn sleepy_records(start: UnixMillis) -> [UsageRecord; 3] {
    let hour = |seq: u64| UsageRecord::steady("sleepy", seq, start, 3_600_000);
    let not_lived = |kind: RecordKind, seq: u64| UsageRecord {
        kind,
        cpu_pct: 0.0,
        mem_used_bytes: if kind == RecordKind::Asleep { 1 << 30 } else { 0 },
        disk_read_bytes: 0,
        disk_write_bytes: 0,
        net_rx_bytes: 0,
        net_tx_bytes: 0,
        samples: 0,
        ..hour(seq)
    };
    [UsageRecord { late_millis: 30_000, clock_steps: 1, ..hour(1) }, not_lived(RecordKind::Asleep, 2), not_lived(RecordKind::ClockStep, 3)]
}

#[test]
fn the_api_serves_what_the_ledger_holds() {
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let topic = unique("usage");
    let group = unique("billing");
    let kafka = broker.args(&topic);
    run_ok(usagebill(data.path()).args(&kafka).args(["simulate", "--machines", "4", "--records", "400", "--window", "30m"]));
    produce(
        &broker.bootstrap,
        &topic,
        &[
            ("gappy", gappy_record(1).to_json()),
            ("gappy", gappy_record(3).to_json()),
            ("sleepy", sleepy_records(new_year())[0].to_json()),
            ("sleepy", sleepy_records(new_year())[1].to_json()),
            ("sleepy", sleepy_records(new_year())[2].to_json()),
            ("junk", b"{not json".to_vec()),
            ("junk", Vec::new()),
            ("old-agent", version_1_night()),
        ],
    );
    let worker = ServingWorker::start(data.path(), &kafka, "127.0.0.1:0", &["--group", &group]);
    let metrics = worker.wait_until_billed(405, None);
    assert_eq!(metrics["usagebill_records_billed_total"], 405.0);
    let address = worker.address.as_str();
    let deadline = Instant::now() + Duration::from_secs(10);
    while parse_prometheus(&get(address, "/metrics")).get("usagebill_records_quarantined_total") != Some(&3.0) {
        assert!(Instant::now() < deadline, "the two junk messages and the v1 night were not quarantined");
        std::thread::sleep(Duration::from_millis(100));
    }

    let report = report_json(data.path());
    let machines = get(address, "/api/v1/machines");
    assert_eq!(machines.header("x-usagebill-ledger"), Some("ok"));
    assert_eq!(machines.json()["machines"], serde_json::Value::Array(report.clone()), "/machines is `report --format json`");
    let csv = run_ok(usagebill(data.path()).args(["report", "--format", "csv"]));
    let machines_csv = get(address, "/api/v1/machines?format=csv");
    assert!(machines_csv.header("content-type").unwrap().starts_with("text/csv"));
    assert_eq!(machines_csv.body, String::from_utf8(csv.stdout).unwrap(), "CSV is `report --format csv`");

    let report_total: Decimal = report.iter().map(|machine| decimal(&machine["cost"])).sum();
    for group_by in ["machine", "day", "hour"] {
        let costs = get(address, &format!("/api/v1/costs?group_by={group_by}")).json();
        assert_eq!(costs["totals"].as_array().unwrap().len(), 1, "one currency");
        assert_eq!(decimal(&costs["totals"][0]["cost"]), report_total, "group_by={group_by}");
        assert_eq!(costs["totals"][0]["records"], 405);
        let groups: Decimal = costs["groups"].as_array().unwrap().iter().map(|group| decimal(&group["cost"])).sum();
        assert_eq!(groups, report_total, "group_by={group_by}");
    }
    let by_day = get(address, "/api/v1/costs?group_by=day&format=csv");
    assert_eq!(by_day.body.lines().next(), Some("group,currency,records,cost"));
    assert_eq!(by_day.body.lines().count(), 1 + 3, "100 half-hour windows per machine span Jan 1 to Jan 3:\n{}", by_day.body);

    // Time health next to gaps: in the report's JSON (which /machines equals, above), its table,
    // and its CSV (which /machines?format=csv equals); the asleep and skipped hours cost nothing.
    let sleepy = report.iter().find(|machine| machine["machine_id"] == "sleepy").unwrap();
    let figures = |row: &serde_json::Value| (row["asleep_ms"].as_u64(), row["late_ms"].as_u64(), row["clock_steps"].as_u64());
    assert_eq!(figures(sleepy), (Some(3_600_000), Some(30_000), Some(1)), "{sleepy}");
    assert!(
        report.iter().filter(|machine| machine["machine_id"] != "sleepy").all(|machine| figures(machine) == (Some(0), Some(0), Some(0)))
    );
    let lived = &sleepy_records(new_year())[0];
    let card = usagebill::billing::rate_card::RateCard::built_in();
    assert_eq!(decimal(&sleepy["cost"]), usagebill::billing::price::price(lived, card.version_at(lived.start)).unwrap().total);
    assert!(machines_csv.body.starts_with("machine_id,records,first_seq,last_seq,gaps,asleep_ms,late_ms,clock_steps,cost,"));
    assert!(machines_csv.body.lines().any(|line| line.starts_with("sleepy,3,1,3,0,3600000,30000,1,")), "{}", machines_csv.body);
    let table = String::from_utf8(run_ok(usagebill(data.path()).arg("report")).stdout).unwrap();
    let header = table.lines().next().unwrap();
    assert!(header.contains("gaps") && header.contains("asleep") && header.contains("late") && header.contains("steps"), "{table}");
    let row = table.lines().find(|line| line.starts_with("sleepy ")).unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("1h 0m") && row.contains("30s"), "{table}");

    let first = report.iter().find(|machine| !["gappy", "sleepy"].contains(&machine["machine_id"].as_str().unwrap())).unwrap();
    let machine_id = first["machine_id"].as_str().unwrap();
    let usage = get(address, &format!("/api/v1/machines/{machine_id}/usage?step=6h")).json();
    let buckets = usage["buckets"].as_array().unwrap();
    assert_eq!(buckets.iter().map(|bucket| bucket["records"].as_u64().unwrap()).sum::<u64>(), first["records"].as_u64().unwrap());
    assert_eq!(buckets.iter().map(|bucket| decimal(&bucket["cost"])).sum::<Decimal>(), decimal(&first["cost"]));

    let gaps = get(address, "/api/v1/gaps").json();
    let expected_gap = serde_json::json!([{
        "machine_id": "gappy", "first_missing_seq": 2, "last_missing_seq": 2, "missing": 1,
        "unmetered_from": "2026-01-01T00:01:00.000Z", "unmetered_to": "2026-01-01T00:02:00.000Z"
    }]);
    assert_eq!(gaps["gaps"], expected_gap);
    let report_gaps: u64 = report.iter().map(|machine| machine["gaps"].as_u64().unwrap()).sum();
    assert_eq!(report_gaps, 1);
    let quarantine = get(address, "/api/v1/quarantine").json();
    let reasons: Vec<&str> = quarantine["quarantine"].as_array().unwrap().iter().map(|entry| entry["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons.len(), 3, "{quarantine}");
    assert!(reasons.iter().any(|reason| reason.contains("not a usage record")), "{reasons:?}");
    assert!(reasons.iter().any(|reason| reason.contains("version-1 window longer than 1 h")), "{reasons:?}");

    let bad = get(address, "/api/v1/costs?group_by=week");
    assert_eq!((bad.status, bad.json()["parameter"].as_str(), bad.json()["value"].as_str()), (400, Some("group_by"), Some("week")));
    let bad_time = get(address, "/api/v1/machines?from=2026-13-01T00:00:00Z");
    assert_eq!((bad_time.status, bad_time.json()["parameter"].as_str()), (400, Some("from")));
    assert_eq!(get(address, "/api/v1/invoices").status, 404);
    assert_eq!(get(address, &format!("/api/v1/machines/{machine_id}-nope/usage")).status, 404);
    let post = request(address, "POST", "/api/v1/machines", None);
    assert_eq!((post.status, post.header("allow")), (405, Some("GET")));
    let health = get(address, "/healthz").json();
    assert_eq!((health["status"].as_str(), health["ledger"].as_str()), (Some("ok"), Some("ok")));
    let document = get(address, "/api/v1/openapi.json").json();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
}

#[test]
fn a_token_is_required_off_loopback_and_on_every_request() {
    let data = tempfile::tempdir().unwrap();
    let refused = usagebill(data.path())
        .env_remove("USAGEBILL_API_TOKEN")
        .args(["--brokers", "127.0.0.1:9", "worker", "--http", "0.0.0.0:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a loopback address") && stderr.contains("--api-token-file"), "{stderr}");

    let broker = Broker::start();
    let secret = "integration-test-token-5e1f";
    let token_file = data.path().join("api-token");
    std::fs::write(&token_file, format!("{secret}\n")).unwrap();
    let kafka = broker.args(&unique("tokens"));
    let worker = ServingWorker::start(data.path(), &kafka, "0.0.0.0:0", &["--api-token-file", token_file.to_str().unwrap()]);
    let port = worker.address.rsplit_once(':').unwrap().1;
    let loopback = format!("127.0.0.1:{port}");
    for target in ["/healthz", "/metrics", "/api/v1/machines", "/api/v1/nowhere"] {
        assert_eq!(request(&loopback, "GET", target, None).status, 401, "{target} without a token");
        assert_eq!(request(&loopback, "GET", target, Some("integration-test-token-5e1e")).status, 401, "{target} with a wrong token");
    }
    let health = request(&loopback, "GET", "/healthz", Some(secret));
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(request(&loopback, "GET", "/api/v1/machines?format=csv", Some(secret)).status, 200);
    let log = Arc::clone(&worker.log);
    drop(worker);
    let log = log.lock().unwrap();
    assert!(log.contains("bearer token required"), "{log}");
    assert!(!log.contains(secret), "the token was logged");
}
