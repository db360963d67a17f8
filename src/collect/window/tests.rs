use super::*;
use crate::collect::clock::ClockReading;

fn facts() -> MachineFacts {
    MachineFacts { machine_id: "m1".into(), cpu_cores: 4, mem_total_bytes: 8_000 }
}

fn reading(cpu_pct: f64, mem_used_bytes: u64, bytes: u64, elapsed_millis: u64) -> Reading {
    Reading {
        at: UnixMillis(0),
        clocks: ClockReading { wall: UnixMillis(0), monotonic_millis: 0, boot_millis: None },
        cpu_pct,
        mem_used_bytes,
        mem_total_bytes: 8_000,
        disk_read_bytes: bytes,
        disk_write_bytes: bytes * 2,
        net_rx_bytes: bytes * 3,
        net_tx_bytes: bytes * 4,
        elapsed_millis,
    }
}

#[test]
fn levels_are_weighted_by_the_time_each_reading_covers_and_counts_add_up() {
    let mut window = OpenWindow::new(UnixMillis(1_000));
    window.add(&reading(10.0, 1_000, 5, 3_000), UnixMillis(4_000), 0);
    window.add(&reading(50.0, 5_000, 7, 1_000), UnixMillis(5_000), 0);
    let record = window.close(1, &facts(), Trigger::Interval).unwrap();
    assert_eq!((record.start, record.end), (UnixMillis(1_000), UnixMillis(5_000)));
    assert_eq!(record.cpu_pct, 20.0, "3 s at 10 % and 1 s at 50 %");
    assert_eq!(record.mem_used_bytes, 2_000);
    assert_eq!((record.disk_read_bytes, record.disk_write_bytes), (12, 24));
    assert_eq!((record.net_rx_bytes, record.net_tx_bytes), (36, 48));
    assert_eq!(record.samples, 2);
}

#[test]
fn readings_bunched_after_a_stall_do_not_outweigh_the_time_before_them() {
    let mut window = OpenWindow::new(UnixMillis(0));
    window.add(&reading(10.0, 1_000, 0, 90_000), UnixMillis(90_000), 89_000);
    let mut end = 90_000;
    for _ in 0..9 {
        end += 5;
        window.add(&reading(100.0, 1_000, 0, 5), UnixMillis(end), 0);
    }
    let record = window.close(1, &facts(), Trigger::Interval).unwrap();
    assert!(record.cpu_pct < 10.1, "{}", record.cpu_pct);
    assert_eq!(record.late_millis, 89_000);
}

#[test]
fn consecutive_windows_tile_time_and_an_empty_one_does_not_close() {
    let mut window = OpenWindow::new(UnixMillis(1_000));
    window.add(&reading(10.0, 1_000, 5, 1_500), UnixMillis(2_500), 0);
    let first = window.close(1, &facts(), Trigger::Manual).unwrap();
    assert!(window.close(2, &facts(), Trigger::Manual).is_none(), "no reading, no window");
    assert_eq!(window.start(), UnixMillis(2_500));
    window.add(&reading(20.0, 1_000, 5, 1_000), UnixMillis(3_500), 0);
    let second = window.close(2, &facts(), Trigger::Manual).unwrap();
    assert_eq!(first.end, second.start);
}

#[test]
fn an_asleep_span_across_a_month_end_is_split_at_the_hours_and_keeps_the_memory_in_use() {
    let month_end = 1_764_547_200_000; // 2026-12-01T00:00:00Z
    let fell_asleep = UnixMillis(month_end - 90 * 60_000);
    let mut window = OpenWindow::new(fell_asleep.plus_millis(-1_000));
    window.add(&reading(30.0, 3_000, 1, 1_000), fell_asleep, 0);
    let last_usage = window.close(7, &facts(), Trigger::Interval).unwrap();
    let woke = UnixMillis(month_end + 150 * 60_000);
    let span = UnlivedSpan { start: fell_asleep, end: woke, kind: RecordKind::Asleep };
    let asleep = window.unlived_records(span, 8, &facts());
    let bounds: Vec<(i64, i64)> = asleep.iter().map(|record| (record.start.0 - month_end, record.end.0 - month_end)).collect();
    let minute = 60_000;
    assert_eq!(
        bounds,
        vec![(-90 * minute, -60 * minute), (-60 * minute, 0), (0, 60 * minute), (60 * minute, 120 * minute), (120 * minute, 150 * minute)]
    );
    assert_eq!(last_usage.end, asleep[0].start);
    assert!(asleep.iter().all(|record| record.kind == RecordKind::Asleep && record.cpu_pct == 0.0 && record.mem_used_bytes == 3_000));
    assert_eq!(asleep.iter().map(|record| record.seq).collect::<Vec<_>>(), vec![8, 9, 10, 11, 12]);
    assert!(asleep.iter().all(|record| record.validate().is_ok()));
    assert_eq!(window.start(), woke, "the next window opens when the machine woke");
}

#[test]
fn a_clock_step_span_holds_no_usage_at_all() {
    let mut window = OpenWindow::new(UnixMillis(0));
    window.add(&reading(30.0, 3_000, 1, 1_000), UnixMillis(1_000), 0);
    window.close(1, &facts(), Trigger::Interval).unwrap();
    let span = UnlivedSpan { start: UnixMillis(1_000), end: UnixMillis(7_201_000), kind: RecordKind::ClockStep };
    let stepped = window.unlived_records(span, 2, &facts());
    assert_eq!(stepped.len(), 3, "split at the two hours it crosses");
    assert!(stepped.iter().all(|record| record.mem_used_bytes == 0 && record.kind == RecordKind::ClockStep));
}
