use super::*;
use crate::billing::price::price;
use crate::billing::rate_card::RateCard;
use crate::billing::report::{TimeRange, machine_totals};
use crate::record::RecordKind;

fn record(machine: &str, seq: u64) -> UsageRecord {
    UsageRecord::steady(machine, seq, UnixMillis(1_767_225_600_000), 10_000)
}

/// Every 7th window asleep; every 5th (lived) one partly late and seeing a clock step.
fn with_time_health(record: UsageRecord) -> UsageRecord {
    match record.seq {
        seq if seq % 7 == 0 => record.unlived(RecordKind::Asleep),
        seq if seq % 5 == 0 => UsageRecord { late_millis: 3_000, clock_steps: 1, ..record },
        _ => record,
    }
}

fn batch(records: &[UsageRecord], next_offset: i64) -> Batch {
    let card = RateCard::built_in();
    Batch {
        priced: records
            .iter()
            .map(|record| (record.clone(), Origin::default(), price(record, card.version_at(record.start)).unwrap()))
            .collect(),
        quarantined: Vec::new(),
        offsets: vec![("usage".into(), 0, next_offset)],
        alerts: Vec::new(),
    }
}

#[test]
fn a_redelivered_record_changes_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&directory.path().join("ledger.db")).unwrap();
    let records = [record("a", 1), record("a", 2)];
    assert_eq!(ledger.write_batch(&batch(&records, 2)).unwrap().billed, 2);
    let before = machine_totals(&ledger, TimeRange::default()).unwrap();
    let again = ledger.write_batch(&batch(&records, 2)).unwrap();
    assert_eq!((again.billed, again.duplicates), (0, 2));
    assert_eq!(machine_totals(&ledger, TimeRange::default()).unwrap(), before);
}

#[test]
fn offsets_are_stored_with_the_batch_and_never_go_back() {
    let directory = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&directory.path().join("ledger.db")).unwrap();
    ledger.write_batch(&batch(&[record("a", 1)], 41)).unwrap();
    ledger.write_batch(&batch(&[record("a", 2)], 17)).unwrap();
    assert_eq!(ledger.offsets("usage").unwrap().get(&0), Some(&41));
}

#[test]
fn gaps_are_counted_and_filled_by_a_late_record() {
    let directory = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&directory.path().join("ledger.db")).unwrap();
    ledger.write_batch(&batch(&[record("a", 1), record("a", 4)], 2)).unwrap();
    let totals = machine_totals(&ledger, TimeRange::default()).unwrap();
    assert_eq!((totals[0].records, totals[0].gaps), (2, 2));
    ledger.write_batch(&batch(&[record("a", 2), record("a", 3)], 4)).unwrap();
    let totals = machine_totals(&ledger, TimeRange::default()).unwrap();
    assert_eq!((totals[0].records, totals[0].gaps, totals[0].last_seq), (4, 0, 4));
}

#[test]
fn quarantined_messages_keep_their_reason_and_capped_bytes() {
    let directory = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&directory.path().join("ledger.db")).unwrap();
    let quarantined = Quarantined { topic: "usage".into(), partition: 3, offset: 9, reason: "not JSON".into(), raw: vec![b'x'; 10_000] };
    let batch = Batch { quarantined: vec![quarantined], ..Batch::default() };
    assert_eq!(ledger.write_batch(&batch).unwrap().quarantined, 1);
    let (reason, kept, size): (String, Vec<u8>, i64) = ledger
        .connection()
        .query_row("SELECT reason, raw, raw_size FROM quarantine", [], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap();
    assert_eq!((reason.as_str(), kept.len(), size), ("not JSON", QUARANTINE_RAW_CAP, 10_000));
}

#[test]
fn a_newer_or_damaged_ledger_is_refused_and_left_alone() {
    let directory = tempfile::tempdir().unwrap();
    let newer = directory.path().join("newer.db");
    Connection::open(&newer).unwrap().pragma_update(None, "user_version", CURRENT_VERSION + 1).unwrap();
    let error = Ledger::open(&newer).err().unwrap();
    assert!(matches!(error, LedgerError::TooNew { .. }), "{error}");

    let damaged = directory.path().join("damaged.db");
    let garbage = vec![0x5a; 8192];
    std::fs::write(&damaged, &garbage).unwrap();
    let error = Ledger::open(&damaged).err().unwrap();
    assert!(matches!(error, LedgerError::Damaged { .. }), "{error}");
    assert_eq!(std::fs::read(&damaged).unwrap(), garbage, "nothing is deleted to recover");
}

#[test]
fn a_missing_ledger_is_not_created_by_a_report() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("none.db");
    assert!(matches!(Ledger::open_read_only(&path), Err(LedgerError::Missing(_))));
    assert!(!path.exists());
}

#[test]
fn rollups_agree_with_the_records_for_any_range() {
    let directory = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&directory.path().join("ledger.db")).unwrap();
    // 10 s windows over about three hours for two machines, in two batches.
    let records: Vec<_> = (1..=1_100).flat_map(|seq| [record("a", seq), record("b", seq)]).filter(|record| record.seq % 97 != 0).collect();
    let (first, second) = records.split_at(700);
    ledger.write_batch(&batch(first, 1)).unwrap();
    ledger.write_batch(&batch(second, 2)).unwrap();
    let base = records[0].start.0;
    let ranges = [
        (None, None),
        (Some(base + 1_234_567), None),
        (None, Some(base + 7_777_777)),
        (Some(base + 3_000_000), Some(base + 3_500_000)),
        (Some(base + 10), Some(base + 10_000_000)),
    ];
    for (from, to) in ranges {
        let range = TimeRange { from: from.map(UnixMillis), to: to.map(UnixMillis) };
        let totals = machine_totals(&ledger, range).unwrap();
        for total in &totals {
            let (count, cost, first_seq, last_seq): (i64, String, i64, i64) = ledger
                .connection()
                .query_row(
                    "SELECT count(*), decimal_sum(r.total), min(r.seq), max(r.seq) FROM records r
                     JOIN machines m ON m.id = r.machine WHERE m.name = ?1 AND r.start_ms >= ?2 AND r.start_ms < ?3",
                    params![total.machine_id, from.unwrap_or(i64::MIN), to.unwrap_or(i64::MAX)],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                )
                .unwrap();
            assert_eq!(total.records, count as u64, "{range:?}");
            assert_eq!(total.cost.to_string(), cost, "{range:?}");
            assert_eq!((total.first_seq, total.last_seq), (first_seq as u64, last_seq as u64), "{range:?}");
        }
        assert_eq!(totals.len(), 2, "{range:?}");
    }
}

#[test]
fn a_corrupt_stored_amount_is_an_error_that_names_it_in_every_reader() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ledger.db");
    let mut ledger = Ledger::open(&path).unwrap();
    ledger.write_batch(&batch(&[record("a", 1), record("a", 2)], 2)).unwrap();
    let tamper = rusqlite::Connection::open(&path).unwrap();
    tamper.execute_batch("UPDATE hourly SET cost = 'twelve'; UPDATE records SET total = 'lots' WHERE rowid = 1;").unwrap();
    tamper
        .execute(
            "INSERT INTO budget_alerts (machine, period_start_ms, budget, projected, currency, raised_ms) VALUES ('a', 0, '1', 'much', 'USD', 0)",
            [],
        )
        .unwrap();
    let named = |error: LedgerError, value: &str| {
        let text = crate::errors::chain(&error);
        assert!(text.contains(&format!("stored amount \"{value}\" is not a decimal")), "{text}");
    };
    named(machine_totals(&ledger, TimeRange::default()).unwrap_err(), "twelve");
    let range = TimeRange::default();
    named(crate::api::queries::costs(&ledger, range, crate::api::params::GroupBy::Machine).unwrap_err(), "lots");
    named(ledger.budget_alerts().unwrap_err(), "much");
}

#[test]
fn a_ledger_of_every_older_schema_version_is_migrated_and_bills() {
    for version in 0..schema::MIGRATIONS.len() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("ledger.db");
        let older = crate::sqlite::open_for_writing(&path, &schema::MIGRATIONS[..version], decimal_sum::register);
        drop(older.unwrap());
        let mut ledger = Ledger::open(&path).unwrap_or_else(|error| panic!("from version {version}: {error}"));
        assert_eq!(ledger.write_batch(&batch(&[record("a", 1), record("a", 2)], 2)).unwrap().billed, 2, "from version {version}");
        let found: i64 = ledger.connection().query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
        assert_eq!(found, CURRENT_VERSION);
        assert_eq!(machine_totals(&ledger, TimeRange::default()).unwrap()[0].records, 2);
    }
}

#[test]
fn rollups_merged_batch_by_batch_equal_rollups_computed_from_all_records() {
    let directory = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&directory.path().join("ledger.db")).unwrap();
    // Three machines interleaved, in uneven batches that cut hours apart, with redeliveries.
    let records: Vec<_> = (1..=800).flat_map(|seq| [record("c", seq), record("a", seq), record("b", seq)]).map(with_time_health).collect();
    for (index, chunk) in records.chunks(317).enumerate() {
        ledger.write_batch(&batch(chunk, index as i64)).unwrap();
        ledger.write_batch(&batch(&chunk[..chunk.len() / 3], index as i64)).unwrap();
    }
    // machine, hour, records, cost, min seq, max seq, min start, max end, covered, asleep, late, steps.
    type HourRow = (i64, i64, i64, String, i64, i64, i64, i64, i64, i64, i64, i64);
    let rows = |sql: &str| -> Vec<HourRow> {
        let mut statement = ledger.connection().prepare(sql).unwrap();
        let rows = statement.query_map([], |row| {
            let cost: String = row.get(3)?;
            let cost = read_amount(row, 3).map(|amount| amount.normalize().to_string()).unwrap_or(cost);
            let (machine, hour, records) = (row.get(0)?, row.get(1)?, row.get(2)?);
            let bounds = (row.get(4)?, row.get(5)?, row.get(6)?, row.get(7)?);
            let times = (row.get(8)?, row.get(9)?, row.get(10)?, row.get(11)?);
            Ok((machine, hour, records, cost, bounds.0, bounds.1, bounds.2, bounds.3, times.0, times.1, times.2, times.3))
        });
        rows.unwrap().collect::<Result<_, _>>().unwrap()
    };
    let merged = rows(
        "SELECT machine, hour_ms, records, cost, min_seq, max_seq, min_start_ms, max_end_ms, covered_ms, asleep_ms, late_ms, clock_steps
         FROM hourly ORDER BY machine, hour_ms",
    );
    let computed = rows(
        "SELECT r.machine, (r.start_ms / 3600000) * 3600000 AS hour, count(*), decimal_sum(r.total), min(r.seq), max(r.seq),
                min(r.start_ms), max(r.end_ms), sum(r.end_ms - r.start_ms),
                sum(CASE WHEN r.kind = 'asleep' THEN r.end_ms - r.start_ms ELSE 0 END), sum(r.late_ms), sum(r.clock_steps)
         FROM records r GROUP BY r.machine, hour ORDER BY r.machine, hour",
    );
    assert_eq!(merged.len(), 3 * 3, "three machines over about two and a quarter hours");
    assert!(merged.iter().all(|row| row.9 > 0 && row.10 > 0 && row.11 > 0), "every hour has some of each");
    assert_eq!(merged, computed);
}

/// Three records billed by this code into `current.db`, then copied by `copy` (SQL reading the
/// attached `current`) into `ledger.db` at schema `version`: a ledger as an older version kept
/// the same bills. Returns both paths and the records.
fn bills_in_an_older_ledger(
    directory: &std::path::Path,
    version: usize,
    copy: &str,
) -> (std::path::PathBuf, std::path::PathBuf, [UsageRecord; 3]) {
    let current = directory.join("current.db");
    let records = [record("a", 1), record("a", 2), record("b", 1)];
    Ledger::open(&current).unwrap().write_batch(&batch(&records, 3)).unwrap();
    let path = directory.join("ledger.db");
    let older = crate::sqlite::open_for_writing(&path, &schema::MIGRATIONS[..version], decimal_sum::register).unwrap();
    older.execute("ATTACH DATABASE ?1 AS current", [current.to_str().unwrap()]).unwrap();
    older.execute_batch(copy).unwrap();
    (current, path, records)
}

#[test]
fn a_version_3_ledger_with_bills_keeps_every_record_and_line_when_they_merge_into_one_row() {
    let directory = tempfile::tempdir().unwrap();
    // The bills, written by this code, then split the way version 3 kept them: a record row and a
    // line row per record, and the rollups as its migration computed them.
    let (current, path, records) = bills_in_an_older_ledger(
        directory.path(),
        3,
        "INSERT INTO machines SELECT * FROM current.machines;
             INSERT INTO records SELECT id, machine, seq, start_ms, end_ms, cpu_pct, cpu_cores, mem_used_bytes, mem_total_bytes,
                 disk_read_bytes, disk_write_bytes, net_rx_bytes, net_tx_bytes, samples, trigger, source_partition, source_offset,
                 billed_ms FROM current.records;
             INSERT INTO lines SELECT id, card_version, currency, cpu, memory, net_rx, net_tx, disk_read, disk_write, total
                 FROM current.records;
             INSERT INTO hourly SELECT machine, hour_ms, records, cost, currency, min_seq, max_seq, min_start_ms, max_end_ms,
                 covered_ms FROM current.hourly;
             DETACH DATABASE current;",
    );

    let mut ledger = Ledger::open(&path).unwrap();
    let card = RateCard::built_in();
    let stored = ledger.lines_after(0, 10).unwrap();
    assert_eq!(stored.len(), 3);
    for (stored, record) in stored.iter().zip(&records) {
        assert_eq!(&stored.record, record);
        assert_eq!(stored.line, price(record, card.version_at(record.start)).unwrap());
    }
    let tables: i64 =
        ledger.connection().query_row("SELECT count(*) FROM sqlite_master WHERE name = 'lines'", [], |row| row.get(0)).unwrap();
    assert_eq!(tables, 0, "the line table is gone");
    let before = machine_totals(&Ledger::open(&current).unwrap(), TimeRange::default()).unwrap();
    assert_eq!(machine_totals(&ledger, TimeRange::default()).unwrap(), before);
    let again = ledger.write_batch(&batch(&[record("a", 2), record("a", 3)], 4)).unwrap();
    assert_eq!((again.billed, again.duplicates), (1, 1), "the unique key survived the move");
    assert_eq!(again.new_rows[0].0, 4, "row ids go on from the old ones");
}

#[test]
fn a_version_4_ledger_gains_kinds_late_time_and_clock_steps_and_keeps_its_bills() {
    let directory = tempfile::tempdir().unwrap();
    // Bills written by this code, copied into a ledger of version 4 (records and rollups as it kept them).
    let (current, path, records) = bills_in_an_older_ledger(
        directory.path(),
        4,
        "INSERT INTO machines SELECT * FROM current.machines;
             INSERT INTO records SELECT id, machine, seq, start_ms, end_ms, cpu_pct, cpu_cores, mem_used_bytes, mem_total_bytes,
                 disk_read_bytes, disk_write_bytes, net_rx_bytes, net_tx_bytes, samples, trigger, source_partition, source_offset,
                 billed_ms, card_version, currency, cpu, memory, net_rx, net_tx, disk_read, disk_write, total FROM current.records;
             INSERT INTO hourly SELECT machine, hour_ms, records, cost, currency, min_seq, max_seq, min_start_ms, max_end_ms,
                 covered_ms FROM current.hourly;
             DETACH DATABASE current;",
    );

    let mut ledger = Ledger::open(&path).unwrap();
    let found: i64 = ledger.connection().query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
    assert_eq!(found, CURRENT_VERSION);
    let stored: Vec<UsageRecord> = ledger.lines_after(0, 10).unwrap().into_iter().map(|line| line.record).collect();
    assert_eq!(stored, records, "each old record reads as a usage window with no late time or step");
    let before = machine_totals(&Ledger::open(&current).unwrap(), TimeRange::default()).unwrap();
    assert_eq!(machine_totals(&ledger, TimeRange::default()).unwrap(), before);
    assert!(before.iter().all(|total| total.time.is_clear()));
    // It bills what the new columns hold, into the rollup hours the old records are in.
    let asleep = record("a", 3).unlived(RecordKind::Asleep);
    let late = UsageRecord { late_millis: 2_500, clock_steps: 3, ..record("a", 4) };
    assert_eq!(ledger.write_batch(&batch(&[asleep.clone(), late.clone()], 4)).unwrap().billed, 2);
    let a = &machine_totals(&ledger, TimeRange::default()).unwrap()[0];
    assert_eq!((a.records, a.time.asleep_ms, a.time.late_ms, a.time.clock_steps), (4, 10_000, 2_500, 3));
    let again: Vec<UsageRecord> = ledger.lines_after(3, 10).unwrap().into_iter().map(|line| line.record).collect();
    assert_eq!(again, [asleep, late]);
}

#[test]
fn a_stored_kind_that_is_not_a_kind_is_reported_as_damage() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ledger.db");
    let mut ledger = Ledger::open(&path).unwrap();
    ledger.write_batch(&batch(&[record("a", 1), record("a", 2)], 2)).unwrap();
    ledger.connection().execute("UPDATE records SET kind = 'dozing' WHERE seq = 2", []).unwrap();
    let error = ledger.lines_after(0, 10).unwrap_err();
    assert!(matches!(error, LedgerError::Damaged { .. }), "{error}");
    assert!(error.to_string().contains("kind \"dozing\" is not a record kind"), "{error}");
}
