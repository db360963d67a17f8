use std::time::Duration;

use super::*;
use crate::billing::biller::Biller;
use crate::billing::ledger::Ledger;
use crate::billing::rate_card::RateCard;
use crate::billing::report::{TimeRange, machine_totals};
use crate::collect::clock::ClockReading;
use crate::record::RecordKind;
use crate::runtime::EmbeddedTransport;
use crate::transmit::policy::PolicySettings;
use crate::transmit::transport::Transport;

/// A one-second reading at wall time `at`, on clocks that have run with the wall clock since `began`.
fn reading(began: UnixMillis, at: UnixMillis) -> Reading {
    let since = at.millis_since(began);
    reading_on(ClockReading { wall: at, monotonic_millis: since, boot_millis: Some(since) }, 1_000)
}

fn reading_on(clocks: ClockReading, elapsed_millis: u64) -> Reading {
    Reading {
        at: clocks.wall,
        clocks,
        cpu_pct: 20.0,
        mem_used_bytes: 1_000,
        mem_total_bytes: 4_000,
        disk_read_bytes: 0,
        disk_write_bytes: elapsed_millis,
        net_rx_bytes: 0,
        net_tx_bytes: 0,
        elapsed_millis,
    }
}

/// A paused agent of machine `machine_id` closing a window every `max_window`, without rules.
fn paused_settings(machine_id: &str, max_window: Duration, outbox_max_bytes: u64) -> AgentSettings {
    AgentSettings {
        facts: MachineFacts { machine_id: machine_id.into(), cpu_cores: 2, mem_total_bytes: 4_000 },
        policy: SendPolicy::new(PolicySettings {
            interval: None,
            max_window,
            rules: Vec::new(),
            cooldown: Duration::from_secs(60),
            paused: true,
        }),
        outbox_max_bytes,
        stop_grace: Duration::from_secs(1),
        sample_interval: Duration::from_secs(1),
    }
}

#[test]
fn an_outbox_over_its_bound_merges_windows_and_loses_no_usage() {
    let directory = tempfile::tempdir().unwrap();
    let ledger_path = directory.path().join("ledger.db");
    let biller = Biller::new(Ledger::open(&ledger_path).unwrap(), RateCard::built_in());
    let settings = paused_settings("bounded", Duration::from_secs(1), 4_000);
    let outbox = Outbox::open(&directory.path().join("outbox.db")).unwrap();
    let mut agent = Agent::new(settings, outbox, EmbeddedTransport::new(biller)).unwrap();
    let began = agent.status().window_start;
    for second in 1..=40 {
        let now = began.plus_millis(second * 1_000);
        agent.on_reading(&reading(began, now));
        agent.step(now);
    }
    let held = agent.status().clone();
    assert!(held.merged_windows > 0, "the bound was hit");
    assert!(held.outbox_depth < 40, "windows were merged: {} left", held.outbox_depth);
    assert_eq!(held.delivered_total, 0, "paused: nothing sent");

    let end = began.plus_millis(40_000);
    agent.on_command(Command::Resume);
    agent.step(end);
    assert_eq!(agent.status().outbox_depth, 0);

    let ledger = Ledger::open_read_only(&ledger_path).unwrap();
    let totals = machine_totals(&ledger, TimeRange::default()).unwrap();
    assert_eq!(totals[0].gaps, 0, "merging renumbers, it never leaves a seq hole");
    assert_eq!(totals[0].first_start, began.to_string());
    assert_eq!(totals[0].last_end, end.to_string());
    let (covered, written): (i64, i64) = ledger
        .connection()
        .query_row("SELECT sum(end_ms - start_ms), sum(disk_write_bytes) FROM records", [], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap();
    assert_eq!(covered, 40_000, "every millisecond billed once");
    assert_eq!(written, 40_000, "every byte billed once");
}

#[test]
fn send_now_sends_while_paused_and_pausing_again_holds() {
    let directory = tempfile::tempdir().unwrap();
    let biller = Biller::new(Ledger::open(&directory.path().join("ledger.db")).unwrap(), RateCard::built_in());
    let settings = paused_settings("paused", Duration::from_secs(5), 1 << 20);
    let outbox = Outbox::open(&directory.path().join("outbox.db")).unwrap();
    let mut agent = Agent::new(settings, outbox, EmbeddedTransport::new(biller)).unwrap();
    let began = agent.status().window_start;
    feed_seconds(&mut agent, began, 1..=11);
    assert_eq!(agent.status().outbox_depth, 2, "the max window closed the first two windows");
    agent.on_command(Command::SendNow);
    agent.step(began.plus_millis(11_000));
    assert_eq!((agent.status().outbox_depth, agent.status().delivered_total), (0, 3));
    feed_seconds(&mut agent, began, 12..=20);
    assert_eq!(agent.status().outbox_depth, 1, "still paused after send-now");
    assert_eq!(agent.status().delivered_total, 3);
}

/// Feeds one reading a second for `seconds` after `began`, stepping after each.
fn feed_seconds<T: Transport>(agent: &mut Agent<T>, began: UnixMillis, seconds: std::ops::RangeInclusive<i64>) {
    for second in seconds {
        let now = began.plus_millis(second * 1_000);
        agent.on_reading(&reading(began, now));
        agent.step(now);
    }
}

#[test]
fn a_window_whose_offer_cannot_be_recorded_is_not_sent_and_the_agent_says_why() {
    let directory = tempfile::tempdir().unwrap();
    let biller = Biller::new(Ledger::open(&directory.path().join("ledger.db")).unwrap(), RateCard::built_in());
    let settings = paused_settings("unmarked", Duration::from_secs(5), 1 << 20);
    let outbox_path = directory.path().join("outbox.db");
    let mut agent = Agent::new(settings, Outbox::open(&outbox_path).unwrap(), EmbeddedTransport::new(biller)).unwrap();
    // Another connection makes the outbox refuse to count an offer (the merge rule relies on that
    // count: an offered window may have reached the broker and must never be merged away).
    let other = rusqlite::Connection::open(&outbox_path).unwrap();
    other.execute_batch("CREATE TRIGGER refuse BEFORE UPDATE ON waiting BEGIN SELECT RAISE(FAIL, 'refused by the test'); END;").unwrap();
    let began = agent.status().window_start;
    feed_seconds(&mut agent, began, 1..=7);
    agent.on_command(Command::SendNow);
    agent.step(began.plus_millis(7_000));
    let status = agent.status().clone();
    assert_eq!(status.delivered_total, 0, "a window whose offer was not recorded was not sent");
    assert!(
        matches!(&status.problem, Some(Problem::Outbox(error)) if error.contains("refused by the test")),
        "the agent says why: {:?}",
        status.problem
    );

    other.execute_batch("DROP TRIGGER refuse;").unwrap();
    feed_seconds(&mut agent, began, 8..=9);
    agent.on_command(Command::SendNow);
    agent.step(began.plus_millis(9_000));
    // The two kept windows and the one send-now closed at 9 s.
    assert_eq!((agent.status().delivered_total, agent.status().outbox_depth), (3, 0), "sent once the outbox takes the count");
    assert_eq!(agent.status().problem, None, "the problem is over");
}

/// The records waiting in a paused agent's outbox, oldest first.
fn waiting<T: Transport>(agent: &Agent<T>) -> Vec<UsageRecord> {
    agent.outbox.waiting_after(0, 100_000).unwrap().iter().map(|waiting| UsageRecord::parse(&waiting.payload).unwrap()).collect()
}

/// Windows tile time: each starts where the last ended, seqs rise by one.
fn assert_tiled(records: &[UsageRecord]) {
    for pair in records.windows(2) {
        assert_eq!(pair[1].start, pair[0].end, "{:?} then {:?}", pair[0], pair[1]);
        assert_eq!(pair[1].seq, pair[0].seq + 1);
    }
}

/// Lived milliseconds and memory-milliseconds of usage windows (what the bill integrates).
fn lived(records: &[UsageRecord]) -> (i64, f64) {
    let usage = records.iter().filter(|record| record.kind == RecordKind::Usage);
    usage.fold((0, 0.0), |(millis, memory), record| {
        (millis + record.window_millis(), memory + record.mem_used_bytes as f64 * record.window_millis() as f64)
    })
}

/// A paused agent with 10 s windows in a fresh directory.
fn paused_agent(directory: &std::path::Path) -> Agent<EmbeddedTransport> {
    let biller = Biller::new(Ledger::open(&directory.join("ledger.db")).unwrap(), RateCard::built_in());
    let settings = paused_settings("laptop", Duration::from_secs(10), 1 << 30);
    Agent::new(settings, Outbox::open(&directory.join("outbox.db")).unwrap(), EmbeddedTransport::new(biller)).unwrap()
}

/// Drives an agent with one reading a second on clocks a test moves by hand.
struct Clocks {
    now: ClockReading,
}

impl Clocks {
    fn starting_at(wall: UnixMillis) -> Clocks {
        Clocks { now: ClockReading { wall, monotonic_millis: 0, boot_millis: Some(0) } }
    }

    /// Moves the clocks and hands the agent the reading taken then.
    fn tick<T: Transport>(&mut self, agent: &mut Agent<T>, wall: i64, monotonic: i64, boot: i64) {
        self.now.wall = self.now.wall.plus_millis(wall);
        self.now.monotonic_millis += monotonic;
        self.now.boot_millis = self.now.boot_millis.map(|millis| millis + boot);
        agent.on_reading(&reading_on(self.now, monotonic as u64));
        agent.step(self.now.wall);
    }

    fn run<T: Transport>(&mut self, agent: &mut Agent<T>, seconds: i64) {
        for _ in 0..seconds {
            self.tick(agent, 1_000, 1_000, 1_000);
        }
    }
}

const HOUR: i64 = 3_600_000;

#[test]
fn a_laptop_asleep_for_eight_hours_is_billed_only_the_minutes_it_ran() {
    let directory = tempfile::tempdir().unwrap();
    let mut agent = paused_agent(directory.path());
    let mut clocks = Clocks::starting_at(agent.status().window_start);
    clocks.run(&mut agent, 45);
    clocks.tick(&mut agent, 8 * HOUR + 1_000, 1_000, 8 * HOUR + 1_000);
    clocks.run(&mut agent, 44);
    agent.on_command(Command::SendNow);
    let records = waiting(&agent);
    assert_tiled(&records);
    assert_eq!(lived(&records), (90_000, 1_000.0 * 90_000.0), "90 s lived at 1,000 bytes in use");
    let asleep: i64 = records.iter().filter(|record| record.kind == RecordKind::Asleep).map(UsageRecord::window_millis).sum();
    assert_eq!(asleep, 8 * HOUR);
    assert!(records.iter().all(|record| record.samples as i64 <= record.window_millis() / 1_000 + 1));
}

#[test]
fn a_clock_stepped_forward_two_hours_bills_what_the_control_bills() {
    let directory = tempfile::tempdir().unwrap();
    let mut agent = paused_agent(directory.path());
    let mut clocks = Clocks::starting_at(agent.status().window_start);
    clocks.run(&mut agent, 25);
    clocks.tick(&mut agent, 2 * HOUR + 1_000, 1_000, 1_000);
    clocks.run(&mut agent, 34);
    agent.on_command(Command::SendNow);
    let records = waiting(&agent);
    assert_tiled(&records);
    assert_eq!(lived(&records).0, 60_000);
    let stepped: Vec<&UsageRecord> = records.iter().filter(|record| record.kind == RecordKind::ClockStep).collect();
    assert_eq!(stepped.iter().map(|record| record.window_millis()).sum::<i64>(), 2 * HOUR);
    assert_eq!(records.iter().map(|record| record.clock_steps).sum::<u32>(), 1, "the step is flagged on the window that saw it");
}

#[test]
fn a_clock_stepped_back_an_hour_never_overlaps_and_a_restart_continues_after_the_last_window() {
    let directory = tempfile::tempdir().unwrap();
    let mut agent = paused_agent(directory.path());
    let mut clocks = Clocks::starting_at(agent.status().window_start);
    clocks.run(&mut agent, 25);
    clocks.tick(&mut agent, 1_000 - HOUR, 1_000, 1_000);
    clocks.run(&mut agent, 34);
    agent.on_command(Command::SendNow);
    let records = waiting(&agent);
    assert_tiled(&records);
    assert_eq!(lived(&records).0, 60_000, "an hour back is not an hour lost");
    assert!(records.iter().all(|record| record.kind == RecordKind::Usage && record.end > record.start));
    let last_end = records.last().unwrap().end;
    drop(agent);

    // Restarted with the wall clock still an hour behind: the first window opens at the last end.
    let restarted = paused_agent(directory.path());
    assert!(restarted.status().window_start >= last_end, "{} before {last_end}", restarted.status().window_start);
}

#[test]
fn an_agent_stopped_for_ninety_seconds_bills_the_stall_marked_late_in_windows_no_longer_than_the_limit() {
    let directory = tempfile::tempdir().unwrap();
    let mut agent = paused_agent(directory.path());
    let mut clocks = Clocks::starting_at(agent.status().window_start);
    clocks.run(&mut agent, 5);
    clocks.tick(&mut agent, 90_000, 90_000, 90_000);
    clocks.run(&mut agent, 15);
    agent.on_command(Command::SendNow);
    let records = waiting(&agent);
    assert_tiled(&records);
    assert_eq!(lived(&records).0, 110_000, "the machine lived the stall");
    let written: u64 = records.iter().map(|record| record.disk_write_bytes).sum();
    assert_eq!(written, 110_000, "counts cut at window limits add up exactly");
    assert!(records.iter().all(|record| record.window_millis() <= 10_000 + placing::SPLIT_SLACK_MILLIS), "{records:?}");
    assert!(records.iter().all(|record| i64::from(record.samples) <= record.window_millis() / 1_000 + 1));
    assert_eq!(records.iter().map(|record| record.late_millis).sum::<u64>(), 89_000);
}
