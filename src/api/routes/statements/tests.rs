//! The statement endpoints against the fixture's ledger, where January 2026 is closed: statement 1
//! is Acme's (alpha), statement 2 the unassigned account's (beta).

use super::*;
use crate::api::routes::ApiRequest;
use crate::api::tests::{body, fixture, get};
use crate::billing::ledger::Ledger;

#[test]
fn the_list_names_each_final_statement_and_filters_by_account_and_period() {
    let fixture = fixture();
    let response = get(&fixture.api, "/api/v1/statements");
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.headers.contains(&(STATEMENTS_HEADER, "ok".to_owned())));
    let listed = body(&response)["statements"].as_array().unwrap().clone();
    let ledger = Ledger::open_read_only(&fixture.api.ledger_path).unwrap();
    let issued = LedgerStatements::new(&ledger).begin().unwrap();
    assert_eq!(listed.len(), 2);
    for (summary, statement) in listed.iter().zip(issued.statements()) {
        assert_eq!(summary["number"], serde_json::json!(statement.number));
        assert_eq!(summary["account"]["id"], statement.account.id.as_str());
        assert_eq!((summary["period"].as_str(), summary["status"].as_str()), (Some("2026-01"), Some("final")));
        assert_eq!(summary["issued_at"], "2026-02-02T00:00:00.000Z");
        assert_eq!(summary["total"], statement.totals.total.to_string());
        assert_eq!(summary["content_hash"], statement.content_hash.as_str());
    }
    let acme = body(&get(&fixture.api, "/api/v1/statements?account=acme&period=2026-01"));
    assert_eq!(acme["statements"].as_array().unwrap().len(), 1);
    assert_eq!(acme["statements"][0]["account"]["name"], "Acme (Europe) Ltd");
    let february = get(&fixture.api, "/api/v1/statements?period=2026-02");
    assert_eq!((february.status, body(&february)["statements"].as_array().unwrap().len()), (200, 0), "a period with none is empty");
}

#[test]
fn a_statement_is_served_as_its_canonical_json_as_csv_and_as_pdf() {
    let fixture = fixture();
    let ledger = Ledger::open_read_only(&fixture.api.ledger_path).unwrap();
    let stored = LedgerStatements::new(&ledger).bytes(1).unwrap().unwrap();
    for target in ["/api/v1/statements/1", "/api/v1/statements/1?format=json"] {
        let json = get(&fixture.api, target);
        assert_eq!((json.status, json.content_type), (200, render::JSON), "{target}");
        assert_eq!(json.body, stored, "{target}: the canonical bytes, exactly");
    }
    let statement = Statement::parse(&stored).unwrap();
    let csv = get(&fixture.api, "/api/v1/statements/1?format=csv");
    assert_eq!((csv.status, csv.content_type), (200, render::CSV));
    assert!(csv.headers.contains(&("Content-Disposition", "attachment; filename=\"statement-1.csv\"".to_owned())));
    let text = csv.text();
    assert!(text.starts_with("kind,period,machine_id,records,seqs,gaps,"), "{text}");
    assert!(text.lines().nth(1).unwrap().starts_with("machine,2026-01,alpha,5,\"1-2,4-6\",1,"), "{text}");
    assert!(text.lines().last().unwrap().ends_with(&format!(",{},{}", statement.totals.total, statement.currency)), "{text}");
    let pdf = get(&fixture.api, "/api/v1/statements/1?format=pdf");
    assert_eq!((pdf.status, pdf.content_type), (200, render::PDF));
    assert!(pdf.headers.contains(&("Content-Disposition", "inline; filename=\"statement-1.pdf\"".to_owned())));
    assert!(pdf.body.starts_with(b"%PDF-1.7\n") && pdf.body.ends_with(b"%%EOF\n"));
    assert_eq!(pdf.body, statement_pdf(&statement));
}

#[test]
fn unknown_and_malformed_numbers_accounts_and_periods_are_4xx_naming_them() {
    let fixture = fixture();
    let unknown = get(&fixture.api, "/api/v1/statements/99");
    assert_eq!((unknown.status, body(&unknown)["number"].as_u64()), (404, Some(99)));
    assert!(body(&unknown)["error"].as_str().unwrap().contains("no statement numbered 99"), "{}", unknown.text());
    for raw in ["0", "-1", "01", "1.5", "one", "99999999999999999999", "%FF"] {
        let response = get(&fixture.api, &format!("/api/v1/statements/{raw}"));
        assert_eq!(response.status, 400, "{raw}: {}", response.text());
        assert_eq!(body(&response)["parameter"], "number", "{raw}");
    }
    let account = get(&fixture.api, "/api/v1/statements?account=nobody");
    assert_eq!((account.status, body(&account)["account"].as_str()), (404, Some("nobody")));
    for (target, parameter, value) in [
        ("/api/v1/statements?period=2026-13", "period", "2026-13"),
        ("/api/v1/statements?period=November", "period", "November"),
        ("/api/v1/statements?account=a%20b", "account", "a b"),
        ("/api/v1/statements?machine=alpha", "machine", "alpha"),
        ("/api/v1/statements/1?format=xml", "format", "xml"),
    ] {
        let response = get(&fixture.api, target);
        assert_eq!(response.status, 400, "{target}");
        assert_eq!((body(&response)["parameter"].as_str(), body(&response)["value"].as_str()), (Some(parameter), Some(value)), "{target}");
    }
    assert_eq!(get(&fixture.api, "/api/v1/statements/1/pdf").status, 404, "no such endpoint");
}

#[test]
fn a_read_of_the_store_answers_for_a_few_seconds() {
    let fixture = fixture();
    let mut cache = LedgerCache::default();
    let ask = |cache: &mut LedgerCache| {
        let response = fixture.api.handle(&ApiRequest { method: "GET", target: "/api/v1/statements", authorization: None }, cache);
        body(&response)["statements"].as_array().unwrap().len()
    };
    assert_eq!(ask(&mut cache), 2);
    Ledger::open(&fixture.api.ledger_path).unwrap().connection().execute("DELETE FROM statements WHERE number = 2", []).unwrap();
    assert_eq!(ask(&mut cache), 2, "the thread's read is still fresh");
    let read = cache.statements.read.as_mut().unwrap();
    read.0 = read.0.checked_sub(STATEMENTS_FRESH_FOR).expect("the clock has run longer than the freshness");
    assert_eq!(ask(&mut cache), 1, "a stale read is replaced");
}

#[test]
fn without_a_ledger_there_are_no_statements_yet() {
    let mut fixture = fixture();
    fixture.api.ledger_path = fixture.api.ledger_path.with_file_name("absent.db");
    let listed = get(&fixture.api, "/api/v1/statements");
    assert_eq!((listed.status, body(&listed)["statements"].as_array().unwrap().len()), (200, 0));
    assert_eq!(get(&fixture.api, "/api/v1/statements/1").status, 404);
}
