//! A small real ledger for the API's unit tests, and tests of binding, the token rule and one real
//! HTTP round trip.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use super::*;
use crate::billing::biller::{Biller, RawMessage};
use crate::billing::ledger::Ledger;
use crate::billing::rate_card::RateCard;
use crate::record::{RecordKind, Trigger, UnixMillis, UsageRecord};

/// A ledger file in a temp dir and an `Api` over it.
pub(super) struct Fixture {
    _dir: tempfile::TempDir,
    pub(super) api: Api,
}

/// A 20-minute window of `machine`, starting `seq - 1` windows after 2026-01-01T23:00:00Z.
pub(super) fn window(machine: &str, seq: u64) -> UsageRecord {
    let start = UnixMillis::parse_rfc3339("2026-01-01T23:00:00Z").unwrap().plus_millis((seq as i64 - 1) * 1_200_000);
    UsageRecord {
        machine_id: machine.into(),
        seq,
        start,
        end: start.plus_millis(1_200_000),
        cpu_pct: 25.0,
        cpu_cores: 4,
        mem_used_bytes: 2_000_000_000,
        mem_total_bytes: 8_000_000_000,
        disk_read_bytes: 1_000,
        disk_write_bytes: 2_000,
        net_rx_bytes: 3_000,
        net_tx_bytes: 4_000,
        samples: 1200,
        trigger: Trigger::Interval,
        kind: RecordKind::Usage,
        late_millis: 0,
        clock_steps: 0,
    }
}

/// alpha: seqs 1, 2, 4, 5, 6 (seq 3 missing); beta: seqs 1–4; one malformed message. The windows
/// run from 23:00 on Jan 1 into Jan 2, so day and hour groups differ.
pub(super) fn fixture() -> Fixture {
    fixture_priced_by(RateCard::built_in())
}

/// [`fixture`], billed with `card` and served with it.
pub(super) fn fixture_priced_by(card: RateCard) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let mut biller = Biller::new(Ledger::open(&path).unwrap(), card.clone());
    let records = [1, 2, 4, 5, 6].map(|seq| window("alpha", seq)).into_iter().chain((1..=4).map(|seq| window("beta", seq)));
    let mut messages: Vec<RawMessage> = records
        .enumerate()
        .map(|(offset, record)| RawMessage { topic: "usage".into(), partition: 0, offset: offset as i64, payload: Some(record.to_json()) })
        .collect();
    messages.push(RawMessage { topic: "usage".into(), partition: 1, offset: 7, payload: Some(b"not json, \"quoted\"".to_vec()) });
    let outcome = biller.bill(&messages).unwrap().outcome;
    assert_eq!((outcome.billed, outcome.quarantined), (9, 1));
    close_january(biller.ledger(), &card);
    let api = Api { ledger_path: path, token: None, metrics: Arc::new(WorkerMetrics::default()), card, kafka: None };
    Fixture { _dir: dir, api }
}

/// The accounts of the statements the fixture issues: alpha is Acme's, beta has no account.
pub(super) const ACCOUNTS: &str = r#"
[[version]]
effective_from = "2026-01-01T00:00:00Z"

[[version.account]]
id = "acme"
name = "Acme (Europe) Ltd"
machines = ["alpha"]
"#;

/// Closes January 2026 in the ledger's statement store: statement 1 is Acme's (alpha), 2 the
/// unassigned account's (beta).
fn close_january(ledger: &Ledger, card: &RateCard) {
    use crate::billing::statement::{Accounts, Cycle, LedgerStatements, Period, Sources, close_period};
    let accounts = Accounts::parse(ACCOUNTS, "accounts.toml").unwrap();
    let sources = Sources { ledger, card, accounts: &accounts, issuer: "Example Billing Ltd", cycle: Cycle::DEFAULT, named_by: None };
    let january = Period::parse("2026-01").unwrap();
    let issued = close_period(&mut LedgerStatements::new(ledger), &sources, january, january, Cycle::DEFAULT.closes_at(january)).unwrap();
    assert_eq!(issued.iter().map(|statement| statement.number).collect::<Vec<_>>(), [Some(1), Some(2)]);
}

/// GETs `target` from `api` without a token.
pub(super) fn get(api: &Api, target: &str) -> ApiResponse {
    api.handle(&ApiRequest { method: "GET", target, authorization: None }, &mut LedgerCache::default())
}

/// The body of a JSON response.
pub(super) fn body(response: &ApiResponse) -> serde_json::Value {
    serde_json::from_slice(&response.body).unwrap_or_else(|error| panic!("{error}: {}", response.text()))
}

#[test]
fn listen_addresses_default_to_loopback() {
    assert_eq!(parse_listen_address("8080").unwrap(), "127.0.0.1:8080".parse().unwrap());
    assert_eq!(parse_listen_address(":9464").unwrap(), "127.0.0.1:9464".parse().unwrap());
    assert_eq!(parse_listen_address("0.0.0.0:80").unwrap(), "0.0.0.0:80".parse().unwrap());
    assert_eq!(parse_listen_address("[::1]:80").unwrap(), "[::1]:80".parse().unwrap());
    for bad in ["70000", "nohost", "1.2.3.4", ""] {
        let error = parse_listen_address(bad).unwrap_err().to_string();
        assert!(error.contains(&format!("{bad:?}")), "{error}");
    }
}

#[test]
fn a_non_loopback_address_needs_a_token() {
    let settings = |listen: &str, token: Option<ApiToken>| ApiSettings {
        listen: listen.parse().unwrap(),
        token,
        ledger_path: "/nonexistent/ledger.db".into(),
        metrics: Arc::new(WorkerMetrics::default()),
        card: RateCard::built_in(),
    };
    let refused = ApiServer::start(settings("0.0.0.0:0", None), None).err().expect("0.0.0.0 without a token is refused");
    assert!(matches!(refused, ApiError::TokenRequired { .. }), "{refused}");
    assert!(refused.to_string().contains("--api-token-file"), "{refused}");
    let token = ApiToken::new("a-long-enough-secret-token", "test").unwrap();
    let server = ApiServer::start(settings("0.0.0.0:0", Some(token)), None).unwrap();
    assert!(server.address().port() > 0);
}

#[test]
fn answers_over_http_with_its_headers() {
    let fixture = fixture();
    let settings = ApiSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: None,
        ledger_path: fixture.api.ledger_path.clone(),
        metrics: Arc::clone(&fixture.api.metrics),
        card: RateCard::built_in(),
    };
    let server = ApiServer::start(settings, None).unwrap();
    let mut stream = TcpStream::connect(server.address()).unwrap();
    stream.write_all(b"GET /api/v1/machines?format=csv HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/csv"), "{head}");
    assert!(head.contains("X-Usagebill-Ledger: ok"), "{head}");
    assert_eq!(body.lines().count(), 3, "a header and two machines:\n{body}");
}
