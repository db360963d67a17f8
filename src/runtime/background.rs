//! Everything the desktop app runs behind its views, behind one handle: the supervisor (agent,
//! in-process worker, cost feed view), the cost reader and the statement reader. The views send
//! commands, a cost selection and statement requests, and take the events; they own no thread,
//! file or socket.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryIter};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::cost_reader::{self as costs, CostQuery};
use super::notices::{self, NoticeInput, NoticeSender};
use super::statement_reader::{self, StatementNews, StatementQuery, StatementRequest};
use super::supervisor::{self, Control, Event, Notifier, Waker};
use super::tray::{self, Tray};
use super::{AgentOverrides, ReadingSource, Settings};
use crate::transmit::agent::Command;

/// The tray icon's picture (the app's icon, at a size tray hosts scale down well).
const TRAY_ICON_PNG: &[u8] = include_bytes!("../../assets/usagebill.png");
/// How long shutting down waits for the statement reader to finish a read.
const STATEMENT_READER_WAIT: Duration = Duration::from_secs(2);

/// The app's background threads; dropping it stops them (the agent delivers what it can first).
pub struct Background {
    controls: Sender<Control>,
    events: Receiver<Event>,
    supervisor: Option<JoinHandle<()>>,
    readings_shown: Arc<AtomicBool>,
    cost_query: Arc<Mutex<CostQuery>>,
    cost_wake: Option<Sender<()>>,
    cost_thread: Option<JoinHandle<()>>,
    statement_query: Arc<Mutex<StatementQuery>>,
    statements_shown: Arc<AtomicBool>,
    statement_requests: Option<Sender<StatementRequest>>,
    statement_thread: Option<JoinHandle<()>>,
    notices: NoticeSender,
    tray: Tray,
    /// Ends by itself once every sender is gone; never waited for (a notification service that
    /// hangs must not hold up the window's closing).
    _notices_thread: JoinHandle<()>,
}

impl Background {
    /// Starts the agent and the readers for `settings`; `wake` is called when there is news.
    /// An error only when the system will not start a thread.
    pub fn start(settings: &Settings, overrides: AgentOverrides, source: ReadingSource, wake: Waker) -> std::io::Result<Background> {
        let (event_sender, events) = mpsc::channel();
        let readings_shown = Arc::new(AtomicBool::new(true));
        let (notices, notices_thread) =
            notices::spawn(settings.config.notifications.clone(), settings.budgets().clone(), settings.notification_bus().clone())?;
        let (tray, tray_inbox) = Tray::channel();
        let notifier = Notifier::new(event_sender, wake, Arc::clone(&readings_shown), notices.clone(), tray.clone());
        let tray_notifier = notifier.clone();
        let icon = eframe::icon_data::from_png_bytes(TRAY_ICON_PNG).ok().map(|icon| (icon.width, icon.height, icon.rgba));
        tray::spawn(
            tray_inbox,
            Box::new(move |event| {
                tray_notifier.send(Event::Tray(event));
            }),
            icon,
        )?;
        let (cost_wake, wake_receiver) = mpsc::channel();
        let (controls, control_receiver) = mpsc::channel();
        // The id the agent will use when it is given; else the agent's, once it started (`machine_started`).
        let machine_id = overrides.machine_id.clone().or_else(|| settings.config.agent.machine_id.clone());
        let supervisor =
            supervisor::spawn_supervisor(settings.clone(), overrides, source, control_receiver, notifier.clone(), cost_wake.clone())?;
        let cost_query = Arc::new(Mutex::new(CostQuery::for_settings(settings)));
        let cost_notifier = notifier.clone();
        let cost_thread = costs::spawn(Arc::clone(&cost_query), wake_receiver, move |snapshot| cost_notifier.send(Event::Costs(snapshot)))?;
        let statement_query = Arc::new(Mutex::new(StatementQuery { settings: settings.clone(), machine_id }));
        let statements_shown = Arc::new(AtomicBool::new(false));
        let (statement_requests, request_receiver) = mpsc::channel();
        let to_event = |news| match news {
            StatementNews::Read(snapshot) => Event::Statements(snapshot),
            StatementNews::File(file) => Event::StatementFile(file),
        };
        let statement_thread =
            statement_reader::spawn(Arc::clone(&statement_query), request_receiver, Arc::clone(&statements_shown), move |news| {
                notifier.send(to_event(news))
            })?;
        Ok(Background {
            controls,
            events,
            supervisor: Some(supervisor),
            readings_shown,
            cost_query,
            cost_wake: Some(cost_wake),
            cost_thread: Some(cost_thread),
            statement_query,
            statements_shown,
            statement_requests: Some(statement_requests),
            statement_thread: Some(statement_thread),
            notices,
            tray,
            _notices_thread: notices_thread,
        })
    }

    /// The events that arrived since the last call.
    pub fn events(&self) -> TryIter<'_, Event> {
        self.events.try_iter()
    }

    /// Passes `command` to the running agent.
    pub fn command(&self, command: Command) {
        let _ = self.controls.send(Control::Command(command));
    }

    /// Saves `settings` and restarts with them; [`Event::Saved`] tells the outcome.
    pub fn apply(&self, settings: Settings, overrides: AgentOverrides) {
        let _ = self.controls.send(Control::Apply(Box::new(settings), overrides));
    }

    /// Writes or removes the start-at-login entry; [`Event::StartAtLogin`] tells the outcome.
    pub fn start_at_login(&self, enabled: bool) {
        let _ = self.controls.send(Control::StartAtLogin(enabled));
    }

    /// Reads costs and statements from where `settings` (just saved) keeps them.
    pub fn follow(&self, settings: &Settings) {
        *self.cost_query.lock().expect("the cost query lock") = CostQuery::for_settings(settings);
        self.wake_cost_reader();
        self.statement_query.lock().expect("the statement query lock").settings = settings.clone();
        self.notices.send(NoticeInput::Settings(settings.config.notifications.clone(), settings.budgets().clone()));
        self.statements(StatementRequest::Refresh);
    }

    /// Reads the statements of `machine_id` (the agent's, as it started).
    pub fn machine_started(&self, machine_id: &str) {
        let mut query = self.statement_query.lock().expect("the statement query lock");
        if query.machine_id.as_deref() != Some(machine_id) {
            query.machine_id = Some(machine_id.to_owned());
            drop(query);
            self.statements(StatementRequest::Refresh);
        }
    }

    /// Passes `request` to the statement reader; [`Event::Statements`] or [`Event::StatementFile`] answers.
    pub fn statements(&self, request: StatementRequest) {
        if let Some(requests) = &self.statement_requests {
            let _ = requests.send(request);
        }
    }

    /// Whether the Statements tab is on show: opening it reads them, and they are read again every
    /// half minute only while it stays open.
    pub fn show_statements(&self, shown: bool) {
        if !self.statements_shown.swap(shown, Ordering::Relaxed) && shown {
            self.statements(StatementRequest::Refresh);
        }
    }

    /// Whether readings should wake the views (only a view that draws them wants that).
    pub fn show_readings(&self, shown: bool) {
        self.readings_shown.store(shown, Ordering::Relaxed);
    }

    fn wake_cost_reader(&self) {
        if let Some(wake) = &self.cost_wake {
            let _ = wake.send(());
        }
    }

    /// Stops the agent (delivering for up to 5 s what it can) and the readers; waits for them.
    pub fn shut_down(&mut self) {
        self.stop_in_background().wait();
    }

    /// Asks every thread to stop and returns at once, with what to wait on: the window can close
    /// while the agent still delivers, and the process waits before it exits.
    pub fn stop_in_background(&mut self) -> Stopping {
        let _ = self.controls.send(Control::Shutdown);
        self.tray.stop();
        self.cost_wake = None;
        self.statement_requests = None;
        Stopping {
            supervisor: self.supervisor.take(),
            cost_thread: self.cost_thread.take(),
            statement_thread: self.statement_thread.take(),
        }
    }
}

/// Threads asked to stop, not yet stopped.
#[derive(Debug, Default)]
#[must_use = "the threads may still be writing: wait for them before the process exits"]
pub struct Stopping {
    supervisor: Option<JoinHandle<()>>,
    cost_thread: Option<JoinHandle<()>>,
    statement_thread: Option<JoinHandle<()>>,
}

impl Stopping {
    /// Waits for the agent (it closes its window into the outbox and delivers for up to 5 s) and
    /// the cost reader. A statement read from the ledger ends within moments; one waiting on
    /// unreachable brokers may take a minute, and is left to end on its own (it writes nothing a
    /// cut-short read would leave half done).
    pub fn wait(mut self) {
        if let Some(supervisor) = self.supervisor.take() {
            let _ = supervisor.join();
        }
        if let Some(reader) = self.cost_thread.take() {
            let _ = reader.join();
        }
        if let Some(reader) = self.statement_thread.take() {
            let deadline = Instant::now() + STATEMENT_READER_WAIT;
            while !reader.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.shut_down();
    }
}
