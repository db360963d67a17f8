use std::time::Duration;

use super::*;
use crate::billing::biller::Biller;
use crate::billing::ledger::Ledger;
use crate::billing::rate_card::RateCard;
use crate::billing::report::{TimeRange, machine_totals};
use crate::runtime::EmbeddedTransport;
use crate::transmit::policy::PolicySettings;

fn reading(at: UnixMillis) -> Reading {
    Reading {
        at,
        cpu_pct: 20.0,
        mem_used_bytes: 1_000,
        mem_total_bytes: 4_000,
        disk_read_bytes: 0,
        disk_write_bytes: 1_000,
        net_rx_bytes: 0,
        net_tx_bytes: 0,
        elapsed_millis: 1_000,
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
        agent.on_reading(&reading(now), now);
        agent.step(now);
    }
    let held = agent.status().clone();
    assert!(held.merged_windows > 0, "the bound was hit");
    assert!(held.outbox_depth < 40, "windows were merged: {} left", held.outbox_depth);
    assert_eq!(held.delivered_total, 0, "paused: nothing sent");

    let end = began.plus_millis(40_000);
    agent.on_command(Command::Resume, end);
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
    agent.step(began.plus_millis(11_000));
    assert_eq!(agent.status().outbox_depth, 1, "the max window closed the first window");
    agent.on_command(Command::SendNow, began.plus_millis(12_000));
    agent.step(began.plus_millis(12_000));
    assert_eq!((agent.status().outbox_depth, agent.status().delivered_total), (0, 2));
    agent.step(began.plus_millis(20_000));
    assert_eq!(agent.status().outbox_depth, 1, "still paused after send-now");
    assert_eq!(agent.status().delivered_total, 2);
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
    agent.step(began.plus_millis(6_000));
    agent.on_command(Command::SendNow, began.plus_millis(7_000));
    agent.step(began.plus_millis(7_000));
    let status = agent.status().clone();
    assert_eq!(status.delivered_total, 0, "a window whose offer was not recorded was not sent");
    assert!(
        matches!(&status.problem, Some(Problem::Outbox(error)) if error.contains("refused by the test")),
        "the agent says why: {:?}",
        status.problem
    );

    other.execute_batch("DROP TRIGGER refuse;").unwrap();
    agent.on_command(Command::SendNow, began.plus_millis(9_000));
    agent.step(began.plus_millis(9_000));
    // The two kept windows and the one send-now closed at 9 s.
    assert_eq!((agent.status().delivered_total, agent.status().outbox_depth), (3, 0), "sent once the outbox takes the count");
    assert_eq!(agent.status().problem, None, "the problem is over");
}
