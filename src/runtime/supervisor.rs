//! The desktop app's supervisor thread: it owns the agent (and, in Kafka mode, the cost feed view and
//! with `worker.embedded` an in-process billing worker), saves settings and restarts them. The views
//! only send [`Control`]s and read [`Event`]s, so opening SQLite files or reaching a broker never
//! stalls a frame.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::cost_reader::CostSnapshot;
use super::notices::{NoticeInput, NoticeSender};
use super::statement_files::StatementFile;
use super::statement_reader::StatementSnapshot;
use super::tray::{Tray, TrayEvent, TrayStatus};
use super::{AgentOverrides, Publishing, ReadingSource, RunningAgent, Settings, run_worker, start_agent};
use crate::billing::rate_card::RateCard;
use crate::errors;
use crate::transmit::agent::{Command, Input, Update};
use crate::worker::WorkerOptions;

/// What the UI asks of the supervisor.
#[derive(Debug)]
pub enum Control {
    /// Pass a command to the running agent.
    Command(Command),
    /// Save the settings to their config file, then restart the agent with them.
    Apply(Box<Settings>, AgentOverrides),
    /// Write (true) or remove (false) the start-at-login entry.
    StartAtLogin(bool),
    /// Stop everything (the window is closing).
    Shutdown,
}

/// A settings save that failed, with the config key at fault when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct SaveError {
    /// The key at fault (`kafka.brokers`, `worker.rate_card`…); `None` for a failure of the whole
    /// save (an unwritable file).
    pub key: Option<&'static str>,
    /// What is wrong.
    pub message: String,
}

/// News for the UI.
#[derive(Debug)]
pub enum Event {
    /// The agent is running for this machine.
    AgentStarted {
        /// The machine id in use.
        machine_id: String,
    },
    /// The agent could not start (a bad setting, an unwritable data dir).
    AgentFailed(String),
    /// The agent stopped (to restart with new settings); its statuses all came before this.
    AgentStopped,
    /// A reading or a status from the agent.
    Agent(Update),
    /// Fresh costs.
    Costs(CostSnapshot),
    /// This machine's statements, read again (or why they could not be).
    Statements(Box<StatementSnapshot>),
    /// A statement's file written (and opened), or why not.
    StatementFile(StatementFile),
    /// The outcome of [`Control::Apply`]: the config file written, or why not.
    Saved(Result<PathBuf, SaveError>),
    /// The in-process billing worker stopped with an error.
    BackgroundFailed(String),
    /// Whether the app starts at login (at start, and after each change), or why the change failed.
    StartAtLogin(Result<bool, String>),
    /// The tray icon came up (or could not), or was clicked.
    Tray(TrayEvent),
}

/// Wakes the views (for the app: asks egui for a repaint).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Sends events to the views and wakes them: only when there is news they would show.
#[derive(Clone)]
pub struct Notifier {
    events: Sender<Event>,
    wake: Waker,
    readings_shown: Arc<AtomicBool>,
    /// The desktop notifications thread, told each status and each reading of the costs.
    notices: NoticeSender,
    /// The tray icon, told the outbox and whether sending is paused.
    tray: Tray,
}

impl Notifier {
    /// A notifier into `events` that calls `wake` (readings wake only while `readings_shown`),
    /// tells `notices` what desktop notifications are made from and `tray` what its icon shows.
    pub fn new(events: Sender<Event>, wake: Waker, readings_shown: Arc<AtomicBool>, notices: NoticeSender, tray: Tray) -> Self {
        Notifier { events, wake, readings_shown, notices, tray }
    }

    /// Delivers `event`; false once the views are gone. While readings are shown, only a reading
    /// wakes the views: one arrives every second and its frame shows whatever else came meanwhile
    /// (a status, costs), so each second costs one frame, not two or three.
    pub fn send(&self, event: Event) -> bool {
        let reading = matches!(event, Event::Agent(Update::Reading(_)));
        // A statement event answers the person (a tab opened, a button clicked): it wakes at once.
        let asked = matches!(
            event,
            Event::Saved(_)
                | Event::AgentFailed(_)
                | Event::Statements(_)
                | Event::StatementFile(_)
                | Event::StartAtLogin(_)
                | Event::Tray(_)
        );
        let wake = reading == self.readings_shown.load(Ordering::Relaxed) || asked;
        match &event {
            Event::Agent(Update::Status(status)) => {
                self.tray.show(TrayStatus { outbox: status.outbox_depth, paused: status.paused });
                self.notices.send(NoticeInput::Status(Box::new(status.clone())));
            }
            Event::Costs(costs) => self.notices.send(NoticeInput::Costs(costs.clone())),
            _ => {}
        }
        let delivered = self.events.send(event).is_ok();
        if wake {
            (self.wake)();
        }
        delivered
    }
}

/// Starts the supervisor thread with the first settings.
pub fn spawn_supervisor(
    settings: Settings,
    overrides: AgentOverrides,
    source: ReadingSource,
    controls: Receiver<Control>,
    notifier: Notifier,
    billed: Sender<()>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("app-supervisor".into()).spawn(move || {
        let mut current = Running::start(&settings, &overrides, &source, &notifier, &billed);
        let autostart = settings.autostart().cloned();
        let no_home = || "there is no home folder (neither XDG_CONFIG_HOME nor HOME is set) to put the entry in".to_owned();
        notifier.send(Event::StartAtLogin(autostart.as_ref().map(|entry| entry.enabled()).ok_or_else(no_home)));
        while let Ok(control) = controls.recv() {
            match control {
                Control::Command(command) => current.command(command),
                Control::Apply(settings, overrides) => {
                    if let Err(error) = save(&settings) {
                        notifier.send(Event::Saved(Err(error)));
                        continue;
                    }
                    current.stop();
                    current = Running::start(&settings, &overrides, &source, &notifier, &billed);
                    notifier.send(Event::Saved(Ok(settings.config_path.clone())));
                }
                Control::StartAtLogin(enabled) => {
                    let outcome = autostart.as_ref().ok_or_else(no_home).and_then(|entry| entry.set(enabled).map(|()| entry.enabled()));
                    notifier.send(Event::StartAtLogin(outcome));
                }
                Control::Shutdown => break,
            }
        }
        current.stop();
    })
}

/// Checks what only the disk can tell (the rate card parses), then writes the config file.
fn save(settings: &Settings) -> Result<(), SaveError> {
    if let Some(card) = &settings.config.worker.rate_card {
        RateCard::load(Some(card)).map_err(|error| SaveError { key: Some("worker.rate_card"), message: errors::chain(&error) })?;
    }
    settings.config.save(&settings.config_path).map_err(|error| SaveError { key: None, message: errors::chain(&error) })
}

/// The agent and the optional in-process worker of one set of settings.
struct Running {
    agent: Option<RunningAgent>,
    /// Stop flags and threads of the in-process worker.
    helpers: Vec<(Arc<AtomicBool>, JoinHandle<()>)>,
    notifier: Notifier,
}

impl Running {
    /// Starts the agent and its helpers; in embedded mode each delivery (a record billed into the
    /// local ledger) is told on `billed`, so the cost reader reads then instead of polling.
    fn start(settings: &Settings, overrides: &AgentOverrides, source: &ReadingSource, notifier: &Notifier, billed: &Sender<()>) -> Running {
        let forward = notifier.clone();
        let billed = settings.embedded().then(|| Mutex::new(billed.clone()));
        let delivered = AtomicU64::new(0);
        let updates = move |update: Update| {
            if let (Update::Status(status), Some(billed)) = (&update, &billed)
                && delivered.swap(status.delivered_total, Ordering::Relaxed) < status.delivered_total
            {
                let _ = billed.lock().expect("the billed sender").send(());
            }
            forward.send(Event::Agent(update));
        };
        let agent = match start_agent(settings, overrides, source.clone(), Box::new(updates)) {
            Ok(agent) => {
                notifier.send(Event::AgentStarted { machine_id: agent.machine_id.clone() });
                Some(agent)
            }
            Err(error) => {
                notifier.send(Event::AgentFailed(format!("{error:#}")));
                None
            }
        };
        let mut helpers = Vec::new();
        if !settings.embedded() && settings.config.worker.embedded {
            match spawn_worker(settings, notifier.clone()) {
                Ok(helper) => helpers.push(helper),
                Err(error) => drop(notifier.send(Event::BackgroundFailed(format!("cannot start the billing worker's thread: {error}")))),
            }
        }
        Running { agent, helpers, notifier: notifier.clone() }
    }

    fn command(&self, command: Command) {
        if let Some(agent) = &self.agent {
            let _ = agent.inputs.send(Input::Command(command));
        }
    }

    /// Stops the agent (it closes its window and delivers for a few seconds) and the worker.
    fn stop(&mut self) {
        for (stop, _) in &self.helpers {
            stop.store(true, Ordering::SeqCst);
        }
        for (_, handle) in self.helpers.drain(..) {
            let _ = handle.join();
        }
        if let Some(agent) = self.agent.take() {
            let _ = agent.inputs.send(Input::Command(Command::Stop));
            let _ = agent.handle.join();
            self.notifier.send(Event::AgentStopped);
        }
    }
}

/// The billing worker inside the app (`worker.embedded = true` with brokers): bills the topic into the local ledger.
fn spawn_worker(settings: &Settings, notifier: Notifier) -> std::io::Result<(Arc<AtomicBool>, JoinHandle<()>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let settings = settings.clone();
    let handle = std::thread::Builder::new().name("app-worker".into()).spawn(move || {
        let run = || -> anyhow::Result<()> {
            let card = RateCard::load(settings.config.worker.rate_card.as_deref())?;
            let options = WorkerOptions {
                batch_size: settings.config.worker.batch_size.max(1),
                batch_linger: Duration::from_millis(10),
                exit_when_idle: None,
                metrics: None,
            };
            // As `usagebill worker` bills: with the cost feed, the configured budgets, and a
            // place in the election of the summary publisher.
            run_worker(&settings, card, &options, Publishing::FeedAndSummaries, &flag)
        };
        if let Err(error) = run() {
            notifier.send(Event::BackgroundFailed(format!("billing worker: {error:#}")));
        }
    })?;
    Ok((stop, handle))
}
