//! Desktop notifications on a real, private D-Bus session: a bus daemon of the test's own, dunst as
//! the notification service (on an Xvfb display of its own), and dbus-monitor recording every
//! `Notify` call the app makes.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use usagebill::config::{HumanDuration, QuietHours};
use usagebill::runtime::Settings;
use usagebill::runtime::notices::{NotificationBus, local_minute_now};

use super::{AppHarness, STEADY, app, embedded_settings, kafka_settings, manual_only, open_app, script};
use crate::util::{Broker, free_port};

/// A private desktop session: X server, bus, notification service and a monitor of the bus.
pub(super) struct DesktopSession {
    children: Vec<Child>,
    pub(super) address: String,
    pub(super) display: String,
    monitor_log: PathBuf,
    _dir: tempfile::TempDir,
}

fn spawn(program: &str, args: &[&str], envs: &[(&str, &str)], stdout: Stdio) -> Child {
    Command::new(program).args(args).envs(envs.iter().copied()).stdout(stdout).stderr(Stdio::null()).spawn().unwrap_or_else(|error| {
        panic!("cannot start {program} ({error}): apt-get install xvfb dbus-daemon dbus-bin dunst (./scripts/test.sh does)")
    })
}

impl DesktopSession {
    pub(super) fn start() -> DesktopSession {
        let dir = tempfile::tempdir().unwrap();
        // Xvfb picks a display number no one holds and prints it.
        let mut xvfb = spawn("Xvfb", &["-displayfd", "1", "-screen", "0", "800x600x24", "-nolisten", "tcp"], &[], Stdio::piped());
        let mut number = String::new();
        BufReader::new(xvfb.stdout.take().unwrap()).read_line(&mut number).unwrap();
        let display = format!(":{}", number.trim());
        assert!(display.len() > 1, "Xvfb printed no display number");
        let mut bus = spawn("dbus-daemon", &["--session", "--nofork", "--print-address=1"], &[], Stdio::piped());
        let mut address = String::new();
        BufReader::new(bus.stdout.take().unwrap()).read_line(&mut address).unwrap();
        let address = address.trim().to_owned();
        assert!(address.starts_with("unix:"), "dbus-daemon printed {address:?}");
        let monitor_log = dir.path().join("monitor.log");
        let log = std::fs::File::create(&monitor_log).unwrap();
        let rule = "type='method_call',interface='org.freedesktop.Notifications',member='Notify'";
        let monitor = spawn("dbus-monitor", &["--address", &address, rule], &[], Stdio::from(log));
        let mut children = vec![xvfb, bus, monitor];
        // dunst needs the X server up; it is retried until it holds the service's name.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut dunst: Option<Child> = None;
        while !name_has_owner(&address) {
            assert!(Instant::now() < deadline, "dunst never took org.freedesktop.Notifications on {address}");
            if dunst.as_mut().is_none_or(|child| child.try_wait().ok().flatten().is_some()) {
                dunst = Some(spawn("dunst", &[], &[("DISPLAY", &display), ("DBUS_SESSION_BUS_ADDRESS", &address)], Stdio::null()));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        children.extend(dunst);
        DesktopSession { children, address, display, monitor_log, _dir: dir }
    }

    pub(super) fn bus(&self) -> NotificationBus {
        NotificationBus::Address(self.address.clone())
    }

    /// `(summary, body)` of every `Notify` call seen so far.
    fn notified(&self) -> Vec<(String, String)> {
        let log = std::fs::read_to_string(&self.monitor_log).unwrap_or_default();
        log.split("member=Notify")
            .skip(1)
            .filter_map(|call| {
                // app_name, app_icon, summary, body: the call's first four strings.
                let strings: Vec<String> = call
                    .lines()
                    .filter_map(|line| line.trim().strip_prefix("string \"").and_then(|rest| rest.strip_suffix('"')).map(str::to_owned))
                    .take(4)
                    .collect();
                (strings.len() == 4 && strings[0] == "usagebill").then(|| (strings[2].clone(), strings[3].clone()))
            })
            .collect()
    }

    /// Steps the app until a `Notify` call whose summary starts with `summary` has been seen.
    fn wait_for(&self, harness: &mut AppHarness, summary: &str, within: Duration) -> (String, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(found) = self.notified().into_iter().find(|(seen, _)| seen.starts_with(summary)) {
                return found;
            }
            assert!(Instant::now() < deadline, "no notification {summary:?} within {within:?}; seen: {:?}", self.notified());
            harness.step();
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn name_has_owner(address: &str) -> bool {
    let output = Command::new("dbus-send")
        .args([&format!("--bus={address}"), "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus"])
        .args(["org.freedesktop.DBus.NameHasOwner", "string:org.freedesktop.Notifications"])
        .output();
    output.is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains("boolean true"))
}

impl Drop for DesktopSession {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Embedded settings for `machine` with a rule a steady 40 % CPU holds and a budget its first
/// record crosses, notifying on `session`'s bus, quiet in `quiet`.
fn rule_and_budget(data: &std::path::Path, machine: &str, session: &DesktopSession, quiet: Option<QuietHours>) -> Settings {
    let mut config = embedded_settings(data, machine).config;
    config.agent.rules = vec!["cpu_pct > 30 for 1s".into()];
    config.billing.budgets.insert("desk-*".into(), "0.000001".into());
    config.notifications.quiet_hours = quiet;
    Settings::new(config, data.join("config.toml"), data.to_owned()).unwrap().with_notification_bus(session.bus())
}

#[test]
fn a_threshold_rule_and_a_budget_crossing_are_each_notified_once() {
    let session = DesktopSession::start();
    let data = tempfile::tempdir().unwrap();
    let settings = rule_and_budget(data.path(), "desk-1", &session, None);
    let mut harness = open_app(settings, manual_only(), script(data.path(), &[STEADY]));
    let (_, body) = session.wait_for(&mut harness, "Threshold rule held: cpu_pct > 30 for 1s", Duration::from_secs(30));
    assert!(body.contains("sent"), "{body}");
    let (_, body) = session.wait_for(&mut harness, "desk-1 is over its budget", Duration::from_secs(30));
    assert!(body.contains("past its budget of 0.000001 USD"), "{body}");
    // The rule keeps holding (a steady 40 %) and fires again after its cooldown: still one notice.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        harness.step();
        std::thread::sleep(Duration::from_millis(100));
    }
    let notified = session.notified();
    assert_eq!(notified.iter().filter(|(summary, _)| summary.starts_with("Threshold rule held")).count(), 1, "{notified:?}");
    assert_eq!(notified.iter().filter(|(summary, _)| summary.contains("budget")).count(), 1, "{notified:?}");
}

#[test]
fn an_outage_with_windows_waiting_and_its_recovery_are_notified() {
    let session = DesktopSession::start();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    // Nothing listens on the port yet: the brokers are unreachable from the start.
    let placeholder = Broker::external(format!("127.0.0.1:{port}"));
    let mut settings = kafka_settings(data.path(), &placeholder, "desk-out");
    settings.config.notifications.outage_after = HumanDuration::from_secs(2);
    settings.config.kafka.message_timeout = HumanDuration::from_secs(3);
    let settings = settings.with_config(settings.config.clone(), data.path().to_owned()).unwrap().with_notification_bus(session.bus());
    let overrides = usagebill::runtime::AgentOverrides { interval: Some(Some(Duration::from_secs(1))), ..manual_only() };
    let mut harness = open_app(settings, overrides, script(data.path(), &[STEADY]));
    let (_, body) = session.wait_for(&mut harness, "Can't reach the brokers", Duration::from_secs(60));
    assert!(body.contains("window(s) wait in the outbox"), "{body}");
    let _broker = Broker::start_on_port(port);
    let (_, body) = session.wait_for(&mut harness, "Delivery resumed", Duration::from_secs(120));
    assert!(body.contains("record(s) delivered, none waiting"), "{body}");
    // The Send tab sees the same delivery the notice counted.
    super::wait_for(&mut harness, "the delivery in the app", Duration::from_secs(10), |app| {
        app.live().status.as_ref().is_some_and(|status| status.delivered_total > 0 && status.outbox_depth == 0)
    });
}

#[test]
fn nothing_is_notified_inside_the_quiet_hours() {
    let session = DesktopSession::start();
    let data = tempfile::tempdir().unwrap();
    // An hour either side of now, in this machine's local time.
    let minute = local_minute_now();
    let at = |minute: u16| format!("{:02}:{:02}", minute / 60, minute % 60);
    let quiet = format!("{}-{}", at((minute + 1380) % 1440), at((minute + 60) % 1440));
    let settings = rule_and_budget(data.path(), "desk-quiet", &session, Some(QuietHours::parse(&quiet).unwrap()));
    let mut harness = open_app(settings, manual_only(), script(data.path(), &[STEADY]));
    // Both events happen (the rule fires, the budget is crossed) and stay unannounced.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let app = app(&harness);
        let fired = app.live().status.as_ref().is_some_and(|status| status.threshold_episodes >= 1);
        let crossed = app.live().costs.summaries.iter().any(|summary| summary.machine_id == "desk-quiet");
        if fired && crossed {
            break;
        }
        assert!(Instant::now() < deadline, "the rule did not fire or nothing was billed within 30 s");
        harness.step();
        std::thread::sleep(Duration::from_millis(100));
    }
    for _ in 0..30 {
        harness.step();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(session.notified(), Vec::<(String, String)>::new(), "quiet hours {quiet}");
}
