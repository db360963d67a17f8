//! In-process measurements: parsing, pricing, outbox writes, ledger writes and reports.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

use super::{BenchOptions, Figure, fleet, thousands};
use crate::billing::biller::{Biller, RawMessage};
use crate::billing::cost_engine::{CostEngine, range};
use crate::billing::ledger::{Checkpointer, Ledger, WalBound, WalWatch};
use crate::billing::price::price;
use crate::billing::rate_card::RateCard;
use crate::billing::report::TimeRange;
use crate::record::UsageRecord;
use crate::simulate::record_at;
use crate::transmit::outbox::Outbox;

fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Parsing, pricing, outbox and ledger write rates, with the prototype-style ledger baseline.
pub fn measure(options: &BenchOptions) -> anyhow::Result<Vec<Figure>> {
    let fleet = fleet(1_000, 200_000);
    let payloads: Vec<Vec<u8>> = (0..fleet.records).map(|index| record_at(&fleet, index).to_json()).collect();
    let began = Instant::now();
    let records: Vec<UsageRecord> = payloads.iter().map(|payload| UsageRecord::parse(payload)).collect::<Result<_, _>>()?;
    let parse_rate = per_second(records.len() as u64, began.elapsed());

    let card = RateCard::built_in();
    let began = Instant::now();
    for record in &records {
        price(record, card.version_at(record.start))?;
    }
    let price_rate = per_second(records.len() as u64, began.elapsed());

    let scratch = tempfile::tempdir_in(&options.scratch)?;
    let mut outbox = Outbox::open(&scratch.path().join("outbox.db"))?;
    let single: Vec<UsageRecord> = records.iter().filter(|record| record.machine_id == "sim-00001").cloned().collect();
    let began = Instant::now();
    for record in &single {
        outbox.append(std::slice::from_ref(record))?;
    }
    let outbox_single = per_second(single.len() as u64, began.elapsed());
    let mut outbox = Outbox::open(&scratch.path().join("outbox-batched.db"))?;
    let began = Instant::now();
    for chunk in single.chunks(100) {
        outbox.append(chunk)?;
    }
    let outbox_batched = per_second(single.len() as u64, began.elapsed());

    let messages: Vec<RawMessage> = payloads
        .into_iter()
        .enumerate()
        .map(|(offset, payload)| RawMessage { topic: "bench".into(), partition: 0, offset: offset as i64, payload: Some(payload) })
        .collect();
    let (ledger_rate, inline_wal) = bill_into_ledger(&scratch.path().join("ledger.db"), &card, &messages, None)?;
    let (checkpointed_rate, bounded_wal) =
        bill_into_ledger(&scratch.path().join("ledger-checkpointed.db"), &card, &messages, Some(WalBound::default()))?;
    let baseline = prototype_style_inserts(&scratch.path().join("prototype.db"), &records[..2_000])?;

    Ok(vec![
        Figure::new(super::PARSE, format!("{} records/s", thousands(parse_rate)), "", None, String::new()).with_rate(parse_rate),
        Figure::new(super::PRICING, format!("{} lines/s", thousands(price_rate)), "", None, String::new()).with_rate(price_rate),
        Figure::new(
            "outbox write, one record per transaction (agent)",
            format!("{} records/s", thousands(outbox_single)),
            "≥ 50,000 records/s",
            Some(outbox_single >= 50_000.0),
            String::new(),
        ),
        Figure::new(
            "outbox write, 100 records per transaction (replay)",
            format!("{} records/s", thousands(outbox_batched)),
            "",
            None,
            String::new(),
        ),
        Figure::new(
            super::LEDGER_CEILING,
            format!("{} records/s", thousands(ledger_rate)),
            "",
            None,
            format!("{} records/s (connect, insert, commit per message)", thousands(baseline)),
        )
        .with_rate(ledger_rate),
        Figure::new(
            super::WORKER_LEDGER_PATH,
            format!(
                "{} records/s, WAL at most {:.0} MB ({} wait(s) at the hard size)",
                thousands(checkpointed_rate),
                bounded_wal.peak_bytes as f64 / 1e6,
                bounded_wal.writer_waits
            ),
            &format!("WAL ≤ {:.0} MB + a batch", WalBound::default().hard as f64 / 1e6),
            Some(bounded_wal.peak_bytes <= WalBound::default().hard + (16 << 20)),
            format!(
                "{} records/s, WAL at most {:.0} MB (SQLite's checkpoints in the commit)",
                thousands(ledger_rate),
                inline_wal.peak_bytes as f64 / 1e6
            ),
        )
        .with_rate(checkpointed_rate),
    ])
}

/// Bills `messages` in batches of 10,000 into a new ledger at `path`, with a checkpoint thread
/// bounding the WAL when `bound` is given (else SQLite checkpoints inside the commits). Returns the
/// rate and what the WAL did.
fn bill_into_ledger(
    path: &std::path::Path,
    card: &RateCard,
    messages: &[RawMessage],
    bound: Option<WalBound>,
) -> anyhow::Result<(f64, WalWatch)> {
    let mut biller = Biller::new(Ledger::open(path)?, card.clone());
    let mut checkpointer = bound.map(|bound| Checkpointer::start(biller.ledger(), bound)).transpose()?;
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let mut inline = WalWatch::default();
    let began = Instant::now();
    for batch in messages.chunks(10_000) {
        biller.bill(batch)?;
        match &mut checkpointer {
            Some(checkpointer) => checkpointer.after_commit(biller.ledger())?,
            None => inline.peak_bytes = inline.peak_bytes.max(std::fs::metadata(&wal).map_or(0, |metadata| metadata.len())),
        }
    }
    let rate = per_second(messages.len() as u64, began.elapsed());
    Ok((rate, checkpointer.map_or(inline, |checkpointer| checkpointer.watch())))
}

/// The prototype's worker: one connection, one insert and one commit per message, float money.
fn prototype_style_inserts(path: &std::path::Path, records: &[UsageRecord]) -> anyhow::Result<f64> {
    Connection::open(path)?.execute_batch("CREATE TABLE usage (machine TEXT, cpu REAL, mem REAL, cost REAL)")?;
    let began = Instant::now();
    for record in records {
        let connection = Connection::open(path)?;
        let mem_pct = record.mem_used_bytes as f64 * 100.0 / record.mem_total_bytes as f64;
        let cost = record.cpu_pct * 0.05 + mem_pct * 0.01;
        connection.execute("INSERT INTO usage VALUES (?1, ?2, ?3, ?4)", params![record.machine_id, record.cpu_pct, mem_pct, cost])?;
    }
    Ok(per_second(records.len() as u64, began.elapsed()))
}

/// `report` and the period costs over a ledger of `options.report_records` records.
pub fn reports(options: &BenchOptions) -> anyhow::Result<Vec<Figure>> {
    let scratch = tempfile::tempdir_in(&options.scratch)?;
    let path = scratch.path().join("big-ledger.db");
    let fleet = fleet(1_000, options.report_records);
    let card = RateCard::built_in();
    let mut biller = Biller::new(Ledger::open(&path)?, card.clone());
    let mut batch = Vec::with_capacity(50_000);
    let progress = crate::progress::bar(fleet.records, "records into the ledger");
    for index in 0..fleet.records {
        batch.push(RawMessage {
            topic: "bench".into(),
            partition: 0,
            offset: index as i64,
            payload: Some(record_at(&fleet, index).to_json()),
        });
        if batch.len() == 50_000 || index + 1 == fleet.records {
            biller.bill(&batch)?;
            batch.clear();
            progress.set_position(index + 1);
        }
    }
    progress.finish_and_clear();
    drop(biller);
    let ledger = Ledger::open_read_only(&path)?;
    let began = Instant::now();
    let totals = range::totals(&ledger, &card, TimeRange::default())?;
    let report_time = began.elapsed();
    anyhow::ensure!(totals.iter().map(|total| total.records).sum::<u64>() == fleet.records, "the report lost records");
    let last_end = record_at(&fleet, fleet.records - 1).end;
    let began = Instant::now();
    let mut engine = CostEngine::load(&ledger, card.clone(), last_end)?;
    let machines = engine.machines();
    engine.summaries(&ledger, &machines, last_end)?;
    let period_time = began.elapsed();
    let target = "< 1 s over 10,000,000 records";
    let within = |elapsed: Duration| Some(elapsed < Duration::from_secs(1) && options.report_records >= 10_000_000);
    Ok(vec![
        Figure::new(
            &format!("report: per-machine totals over {} records", thousands(options.report_records as f64)),
            format!("{:.0} ms", report_time.as_secs_f64() * 1000.0),
            target,
            within(report_time),
            String::new(),
        ),
        Figure::new(
            &format!("cost engine: load and every machine's summary over {} records", thousands(options.report_records as f64)),
            format!("{:.0} ms", period_time.as_secs_f64() * 1000.0),
            target,
            within(period_time),
            String::new(),
        ),
    ])
}
