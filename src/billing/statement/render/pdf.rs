//! A statement as a PDF for people: A4 pages of text with the issuer, the account, the period, the
//! number (or when a draft closes), the lines, each machine's metering health, the adjustment lines
//! and the totals; the canonical JSON attached as `statement-<number>.json`, and its content hash in
//! every page's footer, so a reader can check the printed bill against the machine-readable one.
//!
//! Why a small writer of our own rather than a PDF crate such as krilla 0.8: a statement is text
//! and rules, which the standard base-14 fonts (Helvetica, Helvetica-Bold) draw without embedding
//! any font, in a few hundred lines ([`super::pdf_file`], [`super::pdf_layout`]). krilla would add a
//! large dependency tree (font parsing, subsetting, images) and embed a font file to do the same.
//! The price of that choice: the files are not PDF/A (which requires embedded fonts), and text is
//! limited to the WinAnsi characters, others printing as `?` (the attached JSON keeps them exact).

use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use super::super::Statement;
use super::pdf_file::{ObjectId, PdfFile, literal, text_string};
use super::pdf_layout::{BODY, Column, Font, LEADING, Layout, MARGIN, PAGE_HEIGHT, PAGE_WIDTH, Page};
use super::{file_stem, number_text, when};
use crate::billing::time_health::span;

/// Digits the quantities are printed with (the JSON and CSV keep all of them).
const PRINTED_QUANTITY_DIGITS: u32 = 3;

/// `statement` as the bytes of a PDF file. The same statement always gives the same bytes.
pub fn statement_pdf(statement: &Statement) -> Vec<u8> {
    let mut layout = Layout::new();
    front(&mut layout, statement);
    machines(&mut layout, statement);
    health(&mut layout, statement);
    adjustments(&mut layout, statement);
    totals(&mut layout, statement);
    let mut pages = layout.into_pages();
    let count = pages.len();
    for (index, page) in pages.iter_mut().enumerate() {
        footer(page, statement, index + 1, count);
    }
    write_file(statement, &pages)
}

fn front(layout: &mut Layout, statement: &Statement) {
    layout.line(Font::Bold, 16.0, &statement.issuer);
    layout.line(Font::Regular, 12.0, &format!("Statement {}", number_text(statement)));
    layout.down(LEADING / 2.0);
    let account = format!("{} ({})", statement.account.name, statement.account.id);
    let period = format!("{} (from {} to {})", statement.period, when(statement.period_start), when(statement.period_end));
    let issued = statement.issued_at.map_or_else(|| "not yet: this is a draft and may still change".to_owned(), when);
    let versions = if statement.card_versions.is_empty() { "none".to_owned() } else { statement.card_versions.join(", ") };
    let number = number_text(statement);
    for (label, value) in [
        ("Issuer", statement.issuer.as_str()),
        ("Account", account.as_str()),
        ("Period", period.as_str()),
        ("Number", number.as_str()),
        ("Issued", issued.as_str()),
        ("Currency", statement.currency.as_str()),
        ("Rounding", statement.rounding.as_str()),
        ("Card versions", versions.as_str()),
    ] {
        layout.labelled(label, value);
    }
}

fn amount(value: Decimal) -> String {
    value.to_string()
}

fn quantity(value: Decimal) -> String {
    value.round_dp(PRINTED_QUANTITY_DIGITS).to_string()
}

fn machines(layout: &mut Layout, statement: &Statement) {
    layout.heading(&format!("Machines ({})", statement.machines.len()));
    let columns = [
        Column { title: "Machine", width: 195.0, right: false },
        Column { title: "Records", width: 60.0, right: true },
        Column { title: "Core-hours", width: 80.0, right: true },
        Column { title: "GB-hours", width: 80.0, right: true },
        Column { title: "Total", width: 80.28, right: true },
    ];
    let rows: Vec<Vec<String>> = statement
        .machines
        .iter()
        .map(|line| {
            vec![
                line.machine_id.clone(),
                line.records.to_string(),
                quantity(line.quantities.cpu_core_hours),
                quantity(line.quantities.memory_gb_hours),
                amount(line.total),
            ]
        })
        .collect();
    layout.table(&columns, &rows);
}

fn health(layout: &mut Layout, statement: &Statement) {
    layout.heading("Metering health");
    let columns = [
        Column { title: "Machine", width: 165.0, right: false },
        Column { title: "Gaps", width: 50.0, right: true },
        Column { title: "Asleep", width: 65.0, right: true },
        Column { title: "Late", width: 65.0, right: true },
        Column { title: "Clock steps", width: 65.0, right: true },
        Column { title: "   Card versions", width: 85.28, right: false },
    ];
    let rows: Vec<Vec<String>> = statement
        .machines
        .iter()
        .map(|line| {
            vec![
                line.machine_id.clone(),
                line.gaps.to_string(),
                span(line.asleep_ms),
                span(line.late_ms),
                line.clock_steps.to_string(),
                format!("   {}", line.card_versions.join(", ")),
            ]
        })
        .collect();
    layout.table(&columns, &rows);
}

fn adjustments(layout: &mut Layout, statement: &Statement) {
    layout.heading("Adjustments: records of closed periods that arrived late");
    if statement.adjustments.is_empty() {
        layout.line(Font::Regular, BODY, "None.");
        return;
    }
    let columns = [
        Column { title: "Period", width: 60.0, right: false },
        Column { title: "Machine", width: 150.0, right: false },
        Column { title: "Records", width: 55.0, right: true },
        Column { title: "   Seqs", width: 150.0, right: false },
        Column { title: "Amount", width: 80.28, right: true },
    ];
    let rows: Vec<Vec<String>> = statement
        .adjustments
        .iter()
        .map(|line| {
            let seqs = format!("   {}", line.seqs);
            vec![line.period.to_string(), line.machine_id.clone(), line.records.to_string(), seqs, amount(line.amount)]
        })
        .collect();
    layout.table(&columns, &rows);
}

fn totals(layout: &mut Layout, statement: &Statement) {
    layout.heading("Totals");
    let columns = [Column { title: "", width: 415.0, right: false }, Column { title: "", width: 80.28, right: true }];
    let currency = &statement.currency;
    layout.need(LEADING * 4.0);
    layout.row(&columns, &[format!("Machines ({currency})"), amount(statement.totals.machines)], Font::Regular);
    layout.row(&columns, &[format!("Adjustments ({currency})"), amount(statement.totals.adjustments)], Font::Regular);
    layout.row(&columns, &[format!("Total ({currency})"), amount(statement.totals.total)], Font::Bold);
    layout.down(LEADING);
    layout.line(Font::Regular, BODY, &format!("The statement's canonical JSON is attached to this file as {}.json.", file_stem(statement)));
}

fn footer(page: &mut Page, statement: &Statement, number: usize, count: usize) {
    let hash = if statement.content_hash.is_empty() { "not sealed" } else { &statement.content_hash };
    page.rule(MARGIN, PAGE_WIDTH - MARGIN, 48.0);
    page.text(MARGIN, 36.0, Font::Regular, 7.0, &format!("Content hash {hash}"));
    let label = format!("{} {} \u{2013} page {number} of {count}", statement.account.id, statement.period);
    let width = super::pdf_file::text_width(&label, 7.0, false);
    page.text(PAGE_WIDTH - MARGIN - width, 36.0, Font::Regular, 7.0, &label);
}

/// The objects: catalog, page tree, the two fonts, the pages and their contents, the attached JSON
/// with its file specification, and the document information.
fn write_file(statement: &Statement, pages: &[Page]) -> Vec<u8> {
    let mut file = PdfFile::new();
    let (catalog, tree, regular, bold, info) = (file.reserve(), file.reserve(), file.reserve(), file.reserve(), file.reserve());
    let (json, filespec) = (file.reserve(), file.reserve());
    let mut kids = Vec::new();
    for page in pages {
        let (page_id, content) = (file.reserve(), file.reserve());
        file.stream(content, "", page.content());
        let resources = format!("<< /Font << /F1 {} /F2 {} >> >>", regular.reference(), bold.reference());
        file.object(
            page_id,
            &format!(
                "<< /Type /Page /Parent {} /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] /Resources {resources} /Contents {} >>",
                tree.reference(),
                content.reference()
            ),
        );
        kids.push(page_id.reference());
    }
    file.object(tree, &format!("<< /Type /Pages /Kids [{}] /Count {} >>", kids.join(" "), pages.len()));
    for (id, name) in [(regular, "Helvetica"), (bold, "Helvetica-Bold")] {
        file.object(id, &format!("<< /Type /Font /Subtype /Type1 /BaseFont /{name} /Encoding /WinAnsiEncoding >>"));
    }
    attach(&mut file, statement, json, filespec);
    let name = literal(&format!("{}.json", file_stem(statement)));
    file.object(
        catalog,
        &format!(
            "<< /Type /Catalog /Pages {} /Names << /EmbeddedFiles << /Names [{name} {}] >> >> /AF [{}] >>",
            tree.reference(),
            filespec.reference(),
            filespec.reference()
        ),
    );
    let title = format!("Statement {} \u{2013} {} {}", number_text(statement), statement.account.name, statement.period);
    let created = statement.issued_at.map(|at| format!(" /CreationDate ({})", pdf_date(&at.to_string()))).unwrap_or_default();
    file.object(
        info,
        &format!("<< /Title {} /Author {} /Producer (usagebill){created} >>", text_string(&title), text_string(&statement.issuer)),
    );
    let digest = Sha256::digest(statement.canonical_bytes());
    let file_id: String = digest[..16].iter().map(|byte| format!("{byte:02X}")).collect();
    file.finish(catalog, info, &file_id)
}

/// The canonical JSON as an embedded file and the file specification naming it.
fn attach(file: &mut PdfFile, statement: &Statement, json: ObjectId, filespec: ObjectId) {
    let bytes = statement.canonical_bytes();
    let mut params = format!("/Size {}", bytes.len());
    if let Some(at) = statement.issued_at {
        params += &format!(" /ModDate ({})", pdf_date(&at.to_string()));
    }
    file.stream(json, &format!("/Type /EmbeddedFile /Subtype /application#2Fjson /Params << {params} >>"), &bytes);
    let name = format!("{}.json", file_stem(statement));
    file.object(
        filespec,
        &format!(
            "<< /Type /Filespec /F {} /UF {} /Desc {} /AFRelationship /Source /EF << /F {} /UF {} >> >>",
            literal(&name),
            text_string(&name),
            text_string("The statement's canonical JSON; each page's footer names its content hash"),
            json.reference(),
            json.reference()
        ),
    );
}

/// `2026-12-02T00:00:00.000Z` as a PDF date, `D:20261202000000Z`.
fn pdf_date(rfc3339: &str) -> String {
    let digits: String = rfc3339.chars().take(19).filter(char::is_ascii_digit).collect();
    format!("D:{digits}Z")
}
