//! The CSV and PDF forms of a hand-made statement: rows and totals, the PDF's structure parsed back
//! (every cross-reference offset lands on its object), page breaks, and a real reader's view of the
//! file through poppler's command-line tools.

use std::process::Command;
use std::str::FromStr;

use rust_decimal::Decimal;

use super::super::{
    Account, AdjustmentLine, FlatAmounts, MachineLine, Period, Quantities, STATEMENT_SCHEMA, SeqSet, Statement, Status, Totals,
};
use super::{csv, file_stem, statement_csv, statement_pdf};
use crate::billing::table_format::CsvRow;

fn decimal(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

fn machine(index: usize) -> MachineLine {
    let seqs = SeqSet::parse("1-90,92-100").unwrap();
    let flat = FlatAmounts { cpu: decimal("1.2345"), memory: decimal("0.5"), net_rx: decimal("0.01"), ..FlatAmounts::default() };
    MachineLine {
        machine_id: format!("build-{index:03}"),
        records: seqs.len(),
        gaps: seqs.gaps(),
        seqs,
        asleep_ms: 8 * 3_600_000,
        late_ms: 90_000,
        clock_steps: 2,
        card_versions: vec!["v1".into()],
        quantities: Quantities { cpu_core_hours: decimal("12.345678"), memory_gb_hours: decimal("200.000001"), ..Quantities::default() },
        flat,
        flat_total: decimal("1.7445"),
        tier_adjustment: decimal("-0.1"),
        exact_total: decimal("1.6445"),
        total: decimal("1.64"),
    }
}

/// A final statement numbered 42 of `machines` machines and one adjustment line, for an account
/// whose name needs escaping in PDF strings and holds a character WinAnsi lacks.
fn sample(machines: usize) -> Statement {
    let period = Period::parse("2026-11").unwrap();
    let draft = Statement {
        schema: STATEMENT_SCHEMA.into(),
        issuer: "Example Billing Ltd".into(),
        status: Status::Draft,
        number: None,
        account: Account { id: "acme".into(), name: "Acme (Europe) \\ Søn, \u{4e2d} Corp".into() },
        period,
        period_start: period.start(),
        period_end: period.end(),
        closes_at: super::super::Cycle::DEFAULT.closes_at(period),
        issued_at: None,
        currency: "EUR".into(),
        minor_unit_digits: 2,
        rounding: Statement::rounding_rule(2),
        card_versions: vec!["v1".into()],
        machines: (0..machines).map(machine).collect(),
        adjustments: vec![AdjustmentLine {
            period: period.previous(),
            machine_id: "build-000".into(),
            records: 10,
            seqs: SeqSet::parse("201-210").unwrap(),
            exact_amount: decimal("0.123"),
            amount: decimal("0.12"),
        }],
        totals: Totals::default(),
        content_hash: String::new(),
    };
    let issued_at = draft.closes_at;
    draft.seal().finalized(42, issued_at)
}

#[test]
fn the_csv_has_a_header_a_row_per_line_and_a_totals_row() {
    let statement = sample(2);
    let text = statement_csv(&statement);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 2 + 1 + 1, "{text}");
    assert_eq!(
        lines[0],
        "kind,period,machine_id,records,seqs,gaps,asleep_ms,late_ms,clock_steps,cpu_core_hours,memory_gb_hours,net_rx_gb,\
         net_tx_gb,disk_read_gb,disk_write_gb,cpu,memory,net_rx,net_tx,disk_read,disk_write,flat_total,tier_adjustment,\
         exact_total,total,currency"
    );
    assert_eq!(
        lines[1],
        "machine,2026-11,build-000,99,\"1-90,92-100\",1,28800000,90000,2,12.345678,200.000001,0,0,0,0,1.2345,0.5,0.01,0,0,0,\
         1.7445,-0.1,1.6445,1.64,EUR"
    );
    assert_eq!(lines[3], "adjustment,2026-10,build-000,10,201-210,,,,,,,,,,,,,,,,,,,0.123,0.12,EUR");
    let total = lines[4];
    assert!(total.starts_with("total,2026-11,,208,,2,57600000,180000,4,24.691356,400.000002,"), "{total}");
    assert!(total.ends_with(",3.4120,3.40,EUR"), "the exact sum, then the statement's total: {total}");
    assert_eq!(statement.totals.total, decimal("3.40"));
    // Every row has the header's columns (the quoted seqs hold a comma).
    for row in csv::statement_rows(&statement) {
        assert_eq!(row.cells().len(), csv::StatementLineRow::HEADER.len());
    }
}

/// Every `N 0 obj` the cross-reference table points at, checked against the table's own count.
fn objects(pdf: &[u8]) -> Vec<usize> {
    let text = String::from_utf8_lossy(pdf);
    let tail = text.rsplit_once("startxref\n").expect("a startxref").1;
    let xref_at: usize = tail.lines().next().unwrap().parse().unwrap();
    let table = &pdf[xref_at..];
    assert!(table.starts_with(b"xref\n0 "), "startxref points at the table");
    // "xref\n0 N\n", then N entries of exactly 20 bytes.
    let subsection = "xref\n".len();
    let entries_at = subsection + table[subsection..].iter().position(|&byte| byte == b'\n').unwrap() + 1;
    let count: usize = std::str::from_utf8(&table[subsection..entries_at]).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let entries = &table[entries_at..entries_at + 20 * count];
    assert_eq!(&entries[..20], b"0000000000 65535 f\r\n");
    let mut offsets = Vec::new();
    for number in 1..count {
        let entry = std::str::from_utf8(&entries[20 * number..20 * (number + 1)]).unwrap();
        assert!(entry.ends_with(" 00000 n\r\n"), "entry {number}: {entry:?}");
        let offset: usize = entry[..10].parse().unwrap();
        let expected = format!("{number} 0 obj\n");
        assert!(pdf[offset..].starts_with(expected.as_bytes()), "object {number}'s offset {offset} does not point at it");
        offsets.push(offset);
    }
    assert!(text.contains(&format!("/Size {count} ")), "the trailer's /Size is the table's count");
    offsets
}

#[test]
fn the_pdf_is_well_formed_and_its_cross_references_point_at_their_objects() {
    let statement = sample(3);
    let pdf = statement_pdf(&statement);
    assert!(pdf.starts_with(b"%PDF-1.7\n"));
    assert!(pdf.ends_with(b"%%EOF\n"));
    let offsets = objects(&pdf);
    assert!(offsets.len() >= 9, "catalog, tree, two fonts, info, the JSON, its filespec, a page and its content");
    let text = String::from_utf8_lossy(&pdf);
    assert!(text.contains("/BaseFont /Helvetica ") && text.contains("/BaseFont /Helvetica-Bold "));
    assert!(text.contains("/EmbeddedFiles << /Names [(statement-42.json) "), "the attachment is named for the number");
    // The JSON is attached byte for byte.
    let json = statement.canonical_bytes();
    assert!(pdf.windows(json.len()).any(|window| window == json.as_slice()));
    // Parentheses and backslashes are escaped; a character WinAnsi lacks prints as '?', and 'ø' is
    // its WinAnsi byte (octal 370).
    assert!(text.contains("(Acme \\(Europe\\) \\\\ S\\370n, ? Corp \\(acme\\))"), "{text}");
    assert!(text.contains(&format!("(Content hash {})", statement.content_hash)));
    assert_eq!(pdf, statement_pdf(&statement), "the same statement gives the same bytes");
}

#[test]
fn a_long_statement_runs_onto_several_pages() {
    let pdf = statement_pdf(&sample(200));
    objects(&pdf);
    let text = String::from_utf8_lossy(&pdf);
    let pages = text.matches("/Type /Page /Parent").count();
    assert!(pages >= 5, "200 machine lines and 200 health rows need several pages, got {pages}");
    assert!(text.contains(&format!("/Count {pages} >>")));
    assert!(text.contains(&format!("page {pages} of {pages})")));
    assert!(text.contains("(build-199)"));
}

#[test]
fn a_draft_says_when_it_closes_and_is_named_for_its_account_and_period() {
    let mut draft = sample(1);
    draft.status = Status::Draft;
    draft.number = None;
    draft.issued_at = None;
    let draft = draft.seal();
    assert_eq!(file_stem(&draft), "statement-draft-acme-2026-11");
    let text = String::from_utf8_lossy(&statement_pdf(&draft)).into_owned();
    assert!(text.contains("(Statement DRAFT \\226 closes at 2026-12-02 00:00:00 UTC)"), "the en dash is WinAnsi 0x96");
}

/// Runs poppler's `tool` on `file`; fails, saying how to install it, when poppler-utils is missing.
fn poppler(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool).args(args).output().unwrap_or_else(|error| {
        panic!("cannot run `{tool}` ({error}): this test reads the PDF with poppler; install it with `apt-get install -y poppler-utils`")
    });
    assert!(output.status.success(), "{tool} {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn poppler_reads_the_pages_the_text_and_the_attached_json() {
    let statement = sample(120);
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("statement.pdf");
    std::fs::write(&path, statement_pdf(&statement)).unwrap();
    let path = path.to_str().unwrap();
    let info = poppler("pdfinfo", &[path]);
    // pdfinfo pads its labels to a width that varies between versions: compare the values.
    let field = |label: &str| {
        let line = info.lines().find(|line| line.starts_with(label)).unwrap_or_else(|| panic!("no {label} in:\n{info}"));
        line[label.len()..].trim().to_owned()
    };
    assert_eq!(field("PDF version:"), "1.7");
    assert!(field("Pages:").parse::<u32>().unwrap() > 1, "{info}");
    assert_eq!(field("Page size:"), "595.28 x 841.89 pts (A4)");
    let text = poppler("pdftotext", &["-layout", path, "-"]);
    assert!(text.contains("Statement 42"), "{text}");
    assert!(
        text.lines().any(|line| line.contains("Total (EUR)") && line.trim_end().ends_with(&statement.totals.total.to_string())),
        "{text}"
    );
    assert!(text.contains(&statement.content_hash), "the footer shows the content hash");
    assert!(text.contains("Acme (Europe) \\ Søn, ? Corp"), "{text}");
    let listed = poppler("pdfdetach", &["-list", path]);
    assert!(listed.contains("statement-42.json"), "{listed}");
    let saved = directory.path().join("attached.json");
    poppler("pdfdetach", &["-save", "1", "-o", saved.to_str().unwrap(), path]);
    assert_eq!(std::fs::read(&saved).unwrap(), statement.canonical_bytes(), "the attachment is the canonical JSON");
    assert_eq!(Statement::parse(&std::fs::read(&saved).unwrap()).unwrap(), statement);
}
