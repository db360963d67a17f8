//! Desktop notifications: a thread that watches the agent's status and the costs, decides what is
//! worth telling ([`watch`]) and shows it through the desktop's notification service
//! ([`desktop`]), within the settings' kinds, quiet hours and a rate limit. It owns the D-Bus
//! connection, so a service that is slow or missing never stalls a frame or the agent.

mod desktop;
mod watch;

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

pub use self::desktop::{DesktopNotices, Held, NotificationBus, local_minute_now};
pub use self::watch::{Notice, NoticeKind, NoticeWatcher};
use crate::billing::budget::Budgets;
use crate::config::NotificationsConfig;
use crate::record::UnixMillis;
use crate::runtime::cost_reader::CostSnapshot;
use crate::transmit::agent::AgentStatus;

/// Inputs queued for the notices thread at most; past it an input is dropped (the next status
/// carries everything the dropped one did).
const QUEUE: usize = 256;
/// How often an unchanged status is looked at again (an outage grows long without news).
const LOOK_AGAIN: Duration = Duration::from_secs(1);

/// What the notices thread is told.
#[derive(Debug)]
pub enum NoticeInput {
    /// The agent's latest status.
    Status(Box<AgentStatus>),
    /// The latest costs.
    Costs(CostSnapshot),
    /// New settings.
    Settings(NotificationsConfig, Budgets),
}

/// The sending end: never blocks, drops an input when the thread is behind.
#[derive(Debug, Clone)]
pub struct NoticeSender(SyncSender<NoticeInput>);

impl NoticeSender {
    /// Queues `input` for the thread.
    pub fn send(&self, input: NoticeInput) {
        if let Err(TrySendError::Full(_)) = self.0.try_send(input) {
            tracing::debug!("notices: the queue is full; an input was dropped");
        }
    }
}

/// Starts the notices thread; it ends when every sender is dropped.
pub fn spawn(config: NotificationsConfig, budgets: Budgets, bus: NotificationBus) -> std::io::Result<(NoticeSender, JoinHandle<()>)> {
    let (sender, inputs) = std::sync::mpsc::sync_channel(QUEUE);
    let handle = std::thread::Builder::new().name("app-notices".into()).spawn(move || run(&inputs, config, budgets, bus))?;
    Ok((NoticeSender(sender), handle))
}

fn run(inputs: &Receiver<NoticeInput>, config: NotificationsConfig, budgets: Budgets, bus: NotificationBus) {
    let mut watcher = NoticeWatcher::new(config, budgets);
    let mut desktop = DesktopNotices::new(bus);
    let mut last_status: Option<Box<AgentStatus>> = None;
    loop {
        let now = UnixMillis::now();
        let notices = match inputs.recv_timeout(LOOK_AGAIN) {
            Ok(NoticeInput::Status(status)) => {
                let notices = watcher.on_status(&status, now);
                last_status = Some(status);
                notices
            }
            Ok(NoticeInput::Costs(costs)) => watcher.on_costs(&costs, now),
            Ok(NoticeInput::Settings(config, budgets)) => {
                watcher.reconfigure(config, budgets);
                Vec::new()
            }
            Err(RecvTimeoutError::Timeout) => last_status.as_ref().map(|status| watcher.on_status(status, now)).unwrap_or_default(),
            Err(RecvTimeoutError::Disconnected) => return,
        };
        for notice in notices {
            let config = watcher.config();
            let enabled = match notice.kind {
                NoticeKind::Threshold => config.threshold,
                NoticeKind::Budget => config.budget,
                NoticeKind::Outage | NoticeKind::Resumed => config.outage,
            };
            match desktop.admit(&notice, enabled, config.quiet_hours, local_minute_now()) {
                Ok(()) => desktop.show(&notice),
                Err(Held::Off) => tracing::debug!("notice not shown (turned off): {}", notice.summary),
                Err(Held::Quiet(hours)) => tracing::info!("notice held in the quiet hours {hours}: {}: {}", notice.summary, notice.body),
                Err(Held::RateLimited) => tracing::info!("notice held by the rate limit: {}: {}", notice.summary, notice.body),
            }
        }
    }
}
