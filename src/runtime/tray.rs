//! The tray icon: a StatusNotifierItem published with ksni (D-Bus only, no GTK; left clicks
//! arrive), with Send now, Pause or Resume, Open and Quit, and the outbox count in its tooltip.
//! Its menu sends [`TrayAction`]s to the app's views; a thread of its own keeps the tooltip and the
//! menu current from the agent's status, so a slow tray host never holds up anything else.
//!
//! Without a StatusNotifierWatcher on the session bus (no tray host) it does not start, and closing
//! the window quits the app as it always did.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use ksni::blocking::TrayMethods;

/// What a click in the tray asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayAction {
    /// Close the window and send everything waiting.
    SendNow,
    /// Hold records in the outbox.
    Pause,
    /// Send what is held, and go on.
    Resume,
    /// Show the window.
    Open,
    /// Stop the agent and quit.
    Quit,
}

/// What the tray tells the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrayEvent {
    /// The icon is up, or why there is none (no tray host).
    Ready(Result<(), String>),
    /// A click.
    Action(TrayAction),
}

/// What the tray shows of the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrayStatus {
    /// Records waiting in the outbox.
    pub outbox: u64,
    /// Sending held.
    pub paused: bool,
}

/// Told to the tray's thread.
#[derive(Debug)]
enum TrayMessage {
    Status(TrayStatus),
    Stop,
}

/// Where the tray's thread reads what it is told.
#[derive(Debug)]
pub struct TrayInbox(Receiver<TrayMessage>);

/// What tells the tray: never blocks (a status is dropped when the thread is behind; the next
/// carries the same).
#[derive(Debug, Clone)]
pub struct Tray(SyncSender<TrayMessage>);

/// What the tray does with its events: the app's notifier, in the app.
pub type TrayListener = Box<dyn Fn(TrayEvent) + Send + Sync>;

impl Tray {
    /// A tray's sender and the inbox its thread reads.
    pub fn channel() -> (Tray, TrayInbox) {
        let (sender, inbox) = std::sync::mpsc::sync_channel(16);
        (Tray(sender), TrayInbox(inbox))
    }

    /// Shows `status` in the tooltip and the menu.
    pub fn show(&self, status: TrayStatus) {
        if let Err(TrySendError::Full(_)) = self.0.try_send(TrayMessage::Status(status)) {
            tracing::debug!("tray: a status was dropped");
        }
    }

    /// Removes the icon and ends the thread.
    pub fn stop(&self) {
        let _ = self.0.try_send(TrayMessage::Stop);
    }
}

/// Starts the tray's thread: it publishes the icon (telling `listener` whether it could) and then
/// follows `inbox`. `icon` is the window icon as RGBA rows.
pub fn spawn(inbox: TrayInbox, listener: TrayListener, icon: Option<(u32, u32, Vec<u8>)>) -> std::io::Result<()> {
    std::thread::Builder::new().name("app-tray".into()).spawn(move || {
        let icon = icon.map(|(width, height, rgba)| vec![argb_icon(width, height, &rgba)]).unwrap_or_default();
        let listener = std::sync::Arc::new(listener);
        let tray = UsageTray { listener: std::sync::Arc::clone(&listener), status: TrayStatus::default(), icon };
        match tray.spawn() {
            Ok(handle) => {
                listener(TrayEvent::Ready(Ok(())));
                follow(&handle, &inbox.0);
            }
            Err(error) => listener(TrayEvent::Ready(Err(format!("no tray icon: {error}")))),
        }
    })?;
    Ok(())
}

fn follow(handle: &ksni::blocking::Handle<UsageTray>, inbox: &Receiver<TrayMessage>) {
    while let Ok(TrayMessage::Status(status)) = inbox.recv() {
        handle.update(|tray| tray.status = status);
    }
    handle.shutdown().wait();
}

struct UsageTray {
    listener: std::sync::Arc<TrayListener>,
    status: TrayStatus,
    icon: Vec<ksni::Icon>,
}

impl UsageTray {
    fn ask(&self, action: TrayAction) {
        tracing::info!("tray: {action:?} chosen");
        (self.listener)(TrayEvent::Action(action));
    }
}

impl ksni::Tray for UsageTray {
    fn id(&self) -> String {
        "usagebill".into()
    }

    fn title(&self) -> String {
        "usagebill".into()
    }

    fn icon_name(&self) -> String {
        "usagebill".into()
    }

    fn icon_pixmap(&self) -> Vec<ksni::Icon> {
        self.icon.clone()
    }

    fn tool_tip(&self) -> ksni::ToolTip {
        let paused = if self.status.paused { "; sending paused" } else { "" };
        ksni::ToolTip {
            title: "usagebill".into(),
            description: format!("{} record(s) waiting in the outbox{paused}", self.status.outbox),
            ..Default::default()
        }
    }

    fn activate(&mut self, _x: i32, _y: i32) {
        self.ask(TrayAction::Open);
    }

    fn menu(&self) -> Vec<ksni::MenuItem<Self>> {
        use ksni::menu::{MenuItem, StandardItem};
        let item = |label: &str, action: TrayAction| -> MenuItem<Self> {
            StandardItem { label: label.into(), activate: Box::new(move |tray: &mut Self| tray.ask(action)), ..Default::default() }.into()
        };
        let hold = if self.status.paused { item("Resume", TrayAction::Resume) } else { item("Pause", TrayAction::Pause) };
        vec![
            item("Send now", TrayAction::SendNow),
            hold,
            MenuItem::Separator,
            item("Open", TrayAction::Open),
            item("Quit", TrayAction::Quit),
        ]
    }

    fn watcher_offline(&self, reason: ksni::OfflineReason) -> bool {
        tracing::info!("the tray host went away ({reason:?}); the icon comes back with it");
        true
    }
}

/// RGBA rows as the ARGB32, network byte order, that StatusNotifierItem pixmaps are.
fn argb_icon(width: u32, height: u32, rgba: &[u8]) -> ksni::Icon {
    let data = rgba.chunks_exact(4).flat_map(|pixel| [pixel[3], pixel[0], pixel[1], pixel[2]]).collect();
    ksni::Icon { width: width as i32, height: height as i32, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_turn_from_rgba_to_argb() {
        let icon = argb_icon(2, 1, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!((icon.width, icon.height, icon.data), (2, 1, vec![4, 1, 2, 3, 8, 5, 6, 7]));
    }
}
