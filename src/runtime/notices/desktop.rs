//! Showing a notice: the `Notify` call of the desktop's notification service
//! (`org.freedesktop.Notifications` on the session bus), made with zbus, already in the build
//! through the accessibility layer. notify-rust would make the same call, but only ever on the
//! session bus of the process's environment; this takes the bus address as a setting, so each test
//! has a private bus of its own. Without a notification service a notice goes to the log instead.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::watch::{Notice, NoticeKind};
use crate::config::QuietHours;

const SERVICE: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";
/// At most one notice of a kind this often.
const PER_KIND_EVERY: Duration = Duration::from_secs(60);
/// At most this many notices in [`BURST_SPAN`], whatever their kinds.
const BURST: usize = 5;
const BURST_SPAN: Duration = Duration::from_secs(600);

/// Which bus the notification service is on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NotificationBus {
    /// The session bus of the environment (`DBUS_SESSION_BUS_ADDRESS`).
    #[default]
    Session,
    /// A bus at this address (a test's private bus).
    Address(String),
}

/// Why a notice was not shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// Its kind is turned off.
    Off,
    /// Inside the quiet hours.
    Quiet(QuietHours),
    /// One of its kind was shown within the minute, or too many lately.
    RateLimited,
}

/// Shows notices, within the rate limit and outside the quiet hours.
pub struct DesktopNotices {
    bus: NotificationBus,
    connection: Option<zbus::blocking::Connection>,
    /// The service was missing at the last try: notices go to the log until a call works.
    missing: bool,
    last_of_kind: HashMap<NoticeKind, Instant>,
    recent: Vec<Instant>,
}

impl DesktopNotices {
    /// Notices for the service on `bus`; nothing connects until the first notice.
    pub fn new(bus: NotificationBus) -> DesktopNotices {
        DesktopNotices { bus, connection: None, missing: false, last_of_kind: HashMap::new(), recent: Vec::new() }
    }

    /// Whether `notice` may be shown now, and if so counts it against the rate limit.
    pub fn admit(&mut self, notice: &Notice, enabled: bool, quiet: Option<QuietHours>, local_minute: u16) -> Result<(), Held> {
        if !enabled {
            return Err(Held::Off);
        }
        if let Some(quiet) = quiet.filter(|quiet| quiet.contains(local_minute)) {
            return Err(Held::Quiet(quiet));
        }
        let now = Instant::now();
        self.recent.retain(|at| now.duration_since(*at) < BURST_SPAN);
        let kind_recent = self.last_of_kind.get(&notice.kind).is_some_and(|at| now.duration_since(*at) < PER_KIND_EVERY);
        if kind_recent || self.recent.len() >= BURST {
            return Err(Held::RateLimited);
        }
        self.last_of_kind.insert(notice.kind, now);
        self.recent.push(now);
        Ok(())
    }

    /// Shows `notice`; without a service (or when the call fails) logs it, saying why once.
    pub fn show(&mut self, notice: &Notice) {
        match self.call(notice) {
            Ok(()) => {
                if self.missing {
                    tracing::info!("the desktop's notification service answers again");
                }
                self.missing = false;
            }
            Err(error) => {
                // A fresh connection next time, in case this one is what failed.
                self.connection = None;
                if !self.missing {
                    tracing::warn!("no desktop notification service ({error}); notices go to this log until there is one");
                }
                self.missing = true;
                tracing::info!("notice: {}: {}", notice.summary, notice.body);
            }
        }
    }

    fn call(&mut self, notice: &Notice) -> zbus::Result<()> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => self.connection.insert(match &self.bus {
                NotificationBus::Session => zbus::blocking::Connection::session()?,
                NotificationBus::Address(address) => zbus::blocking::connection::Builder::address(address.as_str())?.build()?,
            }),
        };
        let hints: HashMap<&str, zbus::zvariant::Value<'_>> = HashMap::from([("urgency", zbus::zvariant::Value::U8(1))]);
        let actions: Vec<&str> = Vec::new();
        // Notify(app_name, replaces_id, app_icon, summary, body, actions, hints, expire_timeout):
        // -1 lets the service choose how long it stays.
        let arguments = ("usagebill", 0u32, "usagebill", notice.summary.as_str(), notice.body.as_str(), actions, hints, -1i32);
        connection.call_method(Some(SERVICE), PATH, Some(SERVICE), "Notify", &arguments)?;
        Ok(())
    }
}

/// Minutes after local midnight now, from the C library's idea of the local time zone.
pub fn local_minute_now() -> u16 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_secs()) as libc::time_t;
    // SAFETY: `localtime_r` writes only into the `tm` it is given and reads `now`; both live here.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let converted = unsafe { libc::localtime_r(&now, &mut tm) };
    if converted.is_null() {
        return ((now / 60) % 1440) as u16;
    }
    (tm.tm_hour * 60 + tm.tm_min) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(kind: NoticeKind) -> Notice {
        Notice { kind, summary: "s".into(), body: "b".into() }
    }

    #[test]
    fn notices_are_held_when_off_quiet_or_too_many() {
        let mut notices = DesktopNotices::new(NotificationBus::Address("unix:path=/nonexistent".into()));
        assert_eq!(notices.admit(&notice(NoticeKind::Budget), false, None, 600), Err(Held::Off));
        let night = QuietHours::parse("22:00-07:00").unwrap();
        assert_eq!(notices.admit(&notice(NoticeKind::Budget), true, Some(night), 23 * 60), Err(Held::Quiet(night)));
        assert_eq!(notices.admit(&notice(NoticeKind::Budget), true, Some(night), 12 * 60), Ok(()));
        assert_eq!(notices.admit(&notice(NoticeKind::Budget), true, None, 600), Err(Held::RateLimited), "one a minute per kind");
        for kind in [NoticeKind::Threshold, NoticeKind::Outage, NoticeKind::Resumed] {
            assert_eq!(notices.admit(&notice(kind), true, None, 600), Ok(()));
        }
        notices.last_of_kind.clear();
        assert_eq!(notices.admit(&notice(NoticeKind::Budget), true, None, 600), Ok(()), "the fifth in ten minutes");
        notices.last_of_kind.clear();
        assert_eq!(notices.admit(&notice(NoticeKind::Budget), true, None, 600), Err(Held::RateLimited), "the sixth is one too many");
    }

    #[test]
    fn without_a_service_a_notice_is_logged_and_nothing_stalls() {
        let mut notices = DesktopNotices::new(NotificationBus::Address("unix:path=/nonexistent/bus".into()));
        let began = Instant::now();
        notices.show(&notice(NoticeKind::Outage));
        assert!(notices.missing && notices.connection.is_none());
        assert!(began.elapsed() < Duration::from_secs(5));
        assert!(local_minute_now() < 1440);
    }
}
