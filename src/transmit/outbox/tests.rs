use super::*;
use crate::record::{RecordKind, Trigger, UnixMillis};

fn record(seq: u64) -> UsageRecord {
    let start = UnixMillis(1_767_225_600_000 + (seq as i64 - 1) * 1_000);
    UsageRecord {
        machine_id: "m1".into(),
        seq,
        start,
        end: start.plus_millis(1_000),
        cpu_pct: seq as f64,
        cpu_cores: 4,
        mem_used_bytes: 1_000 * seq,
        mem_total_bytes: 1 << 30,
        disk_read_bytes: 10,
        disk_write_bytes: 20,
        net_rx_bytes: 30,
        net_tx_bytes: 40,
        samples: 1,
        trigger: Trigger::Interval,
        kind: RecordKind::Usage,
        late_millis: 0,
        clock_steps: 0,
    }
}

#[test]
fn seqs_and_waiting_records_survive_reopening() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("outbox.db");
    {
        let mut outbox = Outbox::open(&path).unwrap();
        assert_eq!(outbox.next_seq().unwrap(), 1);
        outbox.append(&[record(1), record(2), record(3)]).unwrap();
        outbox.remove(&[1], UnixMillis::now()).unwrap();
    }
    let outbox = Outbox::open(&path).unwrap();
    assert_eq!(outbox.next_seq().unwrap(), 4);
    let waiting: Vec<u64> = outbox.waiting_after(0, 10).unwrap().iter().map(|item| item.seq).collect();
    assert_eq!(waiting, [2, 3]);
    assert_eq!(outbox.depth(), 2);
}

#[test]
fn merging_keeps_every_byte_and_second_and_leaves_no_seq_hole() {
    let directory = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open(&directory.path().join("outbox.db")).unwrap();
    let records: Vec<_> = (1..=6).map(record).collect();
    outbox.append(&records).unwrap();
    outbox.mark_attempted(1).unwrap();
    let merged = outbox.merge_oldest(2).unwrap();
    assert_eq!(merged, 2);
    let after = outbox.records_after(0).unwrap();
    let seqs: Vec<u64> = after.iter().map(|record| record.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4], "seq 1 was offered and stays; 2+3 and 4+5 merge; 6 is renumbered");
    assert_eq!(outbox.next_seq().unwrap(), 5);
    assert_eq!(after[1].start, records[1].start);
    assert_eq!(after[1].end, records[2].end);
    assert_eq!(after[1].cpu_pct, 2.5);
    for pair in after.windows(2) {
        assert_eq!(pair[0].end, pair[1].start, "windows still tile");
    }
    let total = |records: &[UsageRecord]| records.iter().map(|record| record.disk_write_bytes + record.net_tx_bytes).sum::<u64>();
    assert_eq!(total(&after), total(&records));
}

#[test]
fn a_newer_outbox_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("outbox.db");
    Connection::open(&path).unwrap().pragma_update(None, "user_version", 9).unwrap();
    let error = Outbox::open(&path).err().unwrap().to_string();
    assert!(error.contains("schema version 9"), "{error}");
}

#[test]
fn seqs_of_delivered_records_are_never_issued_again() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("outbox.db");
    {
        let mut outbox = Outbox::open(&path).unwrap();
        outbox.append(&[record(1), record(2), record(3)]).unwrap();
        outbox.remove(&[1, 2, 3], UnixMillis::now()).unwrap();
        assert_eq!(outbox.depth(), 0);
    }
    assert_eq!(Outbox::open(&path).unwrap().next_seq().unwrap(), 4);
}

#[test]
fn records_sent_today_are_counted_across_a_restart_and_from_zero_the_next_day() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("outbox.db");
    let midnight = UnixMillis(1_767_225_600_000);
    {
        let mut outbox = Outbox::open(&path).unwrap();
        outbox.append(&[record(1), record(2), record(3)]).unwrap();
        outbox.remove(&[1, 2], midnight.plus_millis(1_000)).unwrap();
        assert_eq!(outbox.sent_on_day_of(midnight.plus_millis(5_000)), 2);
    }
    let mut outbox = Outbox::open(&path).unwrap();
    assert_eq!(outbox.sent_on_day_of(midnight.plus_millis(86_399_999)), 2, "kept across a restart, all day");
    assert_eq!(outbox.sent_on_day_of(midnight.plus_millis(86_400_000)), 0, "the next day starts at zero");
    // A report repeated for the same seq counts once.
    outbox.remove(&[3, 3, 1], midnight.plus_millis(86_400_500)).unwrap();
    assert_eq!(outbox.sent_on_day_of(midnight.plus_millis(86_400_600)), 1);
}

#[test]
fn an_outbox_of_version_1_gains_the_machine_column_from_its_payloads() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("outbox.db");
    {
        let old = Connection::open(&path).unwrap();
        old.execute_batch(MIGRATIONS[0]).unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        let payload = record(1).to_json();
        old.execute("INSERT INTO waiting (seq, start_ms, end_ms, payload) VALUES (1, 0, 1, ?1)", [payload]).unwrap();
    }
    let outbox = Outbox::open(&path).unwrap();
    let waiting = outbox.waiting_after(0, 10).unwrap();
    assert_eq!((waiting[0].seq, waiting[0].machine_id.as_str()), (1, record(1).machine_id.as_str()));
}

#[test]
fn an_asleep_span_never_merges_into_usage() {
    let directory = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open(&directory.path().join("outbox.db")).unwrap();
    let mut records: Vec<_> = (1..=4).map(record).collect();
    for record in &mut records[1..3] {
        *record = record.clone().unlived(RecordKind::Asleep);
    }
    outbox.append(&records).unwrap();
    assert_eq!(outbox.merge_oldest(3).unwrap(), 1, "only the two asleep spans are alike");
    let kinds: Vec<RecordKind> = outbox.records_after(0).unwrap().iter().map(|record| record.kind).collect();
    assert_eq!(kinds, [RecordKind::Usage, RecordKind::Asleep, RecordKind::Usage]);
}
