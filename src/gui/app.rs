//! The app: the state the views read, the background handles, the frame (tabs, status bar, the
//! current view) and the actions the views queue, applied after the frame.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use eframe::egui;

use super::background::{self, Control, Event, Notifier};
use super::cost_reader::{self, CostQuery, CostRange, CostSnapshot};
use super::costs_view::CostsView;
use super::history::History;
use super::send_view::SendView;
use super::settings_view::SettingsForm;
use super::usage_view::UsageView;
use crate::runtime::{AgentOverrides, ReadingSource, Settings};
use crate::transmit::agent::{AgentStatus, Command, Update};

/// The tabs, in the order shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tab {
    /// Live charts.
    #[default]
    Usage,
    /// Send controls.
    Send,
    /// Per-machine costs.
    Costs,
    /// The configuration.
    Settings,
}

impl Tab {
    const ALL: [Tab; 4] = [Tab::Usage, Tab::Send, Tab::Costs, Tab::Settings];

    fn label(self) -> &'static str {
        match self {
            Tab::Usage => "Usage",
            Tab::Send => "Send",
            Tab::Costs => "Costs",
            Tab::Settings => "Settings",
        }
    }
}

/// What the background threads told the UI, as the views read it.
#[derive(Debug, Default)]
pub struct Live {
    /// This machine's id, once the agent started.
    pub machine_id: Option<String>,
    /// Why the agent is not running, if it is not.
    pub agent_error: Option<String>,
    /// Why the in-process billing worker or the cost feed view stopped, if one did.
    pub background_error: Option<String>,
    /// The agent's latest status.
    pub status: Option<AgentStatus>,
    /// The last hour of readings.
    pub history: History,
    /// The latest costs.
    pub costs: CostSnapshot,
}

/// Something a view asks for; applied after the frame.
#[derive(Debug)]
pub enum Action {
    /// A command for the agent.
    Agent(Command),
    /// Save these settings and restart with them.
    Apply(Box<Settings>),
    /// Show this machine's cost series.
    SelectMachine(Option<String>),
    /// Show the cost series over this span.
    CostRange(CostRange),
}

/// The desktop app. Everything slow runs on background threads; a frame only reads channels.
pub struct UsageApp {
    settings: Settings,
    /// Settings sent to be saved, adopted once the save succeeds.
    pending_settings: Option<Settings>,
    controls: Sender<Control>,
    events: Receiver<Event>,
    supervisor: Option<JoinHandle<()>>,
    /// Whether readings should wake the window (only the Usage tab draws them).
    charts_visible: Arc<AtomicBool>,
    cost_query: Arc<Mutex<CostQuery>>,
    cost_wake: Option<Sender<()>>,
    cost_thread: Option<JoinHandle<()>>,
    tab: Tab,
    live: Live,
    usage: UsageView,
    send: SendView,
    costs: CostsView,
    settings_form: SettingsForm,
}

impl UsageApp {
    /// Starts the agent, the cost reader and (when configured) the billing worker behind a new app
    /// that repaints `ctx` when they have news.
    pub fn new(settings: Settings, overrides: AgentOverrides, source: ReadingSource, ctx: egui::Context) -> UsageApp {
        let (event_sender, events) = mpsc::channel();
        let charts_visible = Arc::new(AtomicBool::new(true));
        let notifier = Notifier::new(event_sender, ctx, Arc::clone(&charts_visible));
        let (controls, control_receiver) = mpsc::channel();
        let settings_form = SettingsForm::new(&settings, &overrides);
        let supervisor = background::spawn_supervisor(settings.clone(), overrides, source, control_receiver, notifier.clone());
        let mut query = CostQuery::default();
        query.follow(&settings);
        let cost_query = Arc::new(Mutex::new(query));
        let (cost_wake, wake_receiver) = mpsc::channel();
        let cost_thread = cost_reader::spawn(Arc::clone(&cost_query), wake_receiver, notifier);
        UsageApp {
            settings,
            pending_settings: None,
            controls,
            events,
            supervisor: Some(supervisor),
            charts_visible,
            cost_query,
            cost_wake: Some(cost_wake),
            cost_thread: Some(cost_thread),
            tab: Tab::default(),
            live: Live::default(),
            usage: UsageView::default(),
            send: SendView::default(),
            costs: CostsView::default(),
            settings_form,
        }
    }

    /// Draws one frame into `ui` (the whole window).
    pub fn show(&mut self, ui: &mut egui::Ui) {
        self.drain_events();
        let mut actions = Vec::new();
        egui::Panel::top("tabs").show(ui, |ui| {
            ui.horizontal(|ui| {
                for tab in Tab::ALL {
                    if ui.selectable_label(self.tab == tab, egui::RichText::new(tab.label()).size(16.0)).clicked() {
                        self.tab = tab;
                    }
                }
            });
        });
        egui::Panel::bottom("status").show(ui, |ui| super::status_bar::show(ui, &self.settings, &self.live));
        egui::CentralPanel::default().show(ui, |ui| match self.tab {
            Tab::Usage => self.usage.show(ui, &self.live),
            Tab::Send => self.send.show(ui, &self.live, &mut actions),
            Tab::Costs => self.costs.show(ui, &self.live, &mut actions),
            Tab::Settings => self.settings_form.show(ui, &self.settings, &mut actions),
        });
        for action in actions {
            self.apply(action);
        }
        self.charts_visible.store(self.tab == Tab::Usage, Ordering::Relaxed);
        if let Some(remaining) = self.send.notice_remaining() {
            ui.ctx().request_repaint_after(remaining);
        }
    }

    /// The tab on show.
    pub fn tab(&self) -> Tab {
        self.tab
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// What the background threads reported.
    pub fn live(&self) -> &Live {
        &self.live
    }

    /// The usage charts as last drawn.
    pub fn usage_view(&self) -> &UsageView {
        &self.usage
    }

    /// The send controls and their notice.
    pub fn send_view(&self) -> &SendView {
        &self.send
    }

    /// The costs table and chart as last drawn.
    pub fn costs_view(&self) -> &CostsView {
        &self.costs
    }

    fn drain_events(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            match event {
                // The new agent's first status may arrive before this event: it is kept. The old
                // agent's statuses were cleared by `AgentStopped`, which they all preceded.
                Event::AgentStarted { machine_id } => {
                    self.live.machine_id = Some(machine_id);
                    self.live.agent_error = None;
                }
                Event::AgentStopped => self.live.status = None,
                Event::AgentFailed(error) => self.live.agent_error = Some(error),
                Event::Agent(Update::Reading(reading)) => self.live.history.push(reading),
                Event::Agent(Update::Status(status)) => self.on_status(status),
                Event::Costs(snapshot) => self.live.costs = snapshot,
                Event::BackgroundFailed(error) => self.live.background_error = Some(error),
                Event::Saved(Ok(path)) => {
                    if let Some(settings) = self.pending_settings.take() {
                        self.cost_query.lock().expect("the cost query lock").follow(&settings);
                        self.wake_cost_reader();
                        self.settings = settings;
                    }
                    self.settings_form.saved(&path, &self.settings);
                }
                Event::Saved(Err(error)) => {
                    self.pending_settings = None;
                    self.settings_form.failed(error);
                }
            }
        }
    }

    fn on_status(&mut self, status: AgentStatus) {
        self.send.on_status(self.live.status.as_ref(), &status);
        self.live.status = Some(status);
    }

    fn apply(&mut self, action: Action) {
        match action {
            Action::Agent(command) => {
                let _ = self.controls.send(Control::Command(command));
            }
            Action::Apply(settings) => {
                let overrides = self.overrides_to_keep();
                self.pending_settings = Some((*settings).clone());
                let _ = self.controls.send(Control::Apply(settings, overrides));
            }
            Action::SelectMachine(machine) => {
                self.cost_query.lock().expect("the cost query lock").machine = machine;
                self.wake_cost_reader();
            }
            Action::CostRange(range) => {
                self.cost_query.lock().expect("the cost query lock").range = range;
                self.wake_cost_reader();
            }
        }
    }

    /// What the person set on the Send tab survives a restart with new settings.
    fn overrides_to_keep(&self) -> AgentOverrides {
        let mut overrides = AgentOverrides::default();
        if let Some(status) = &self.live.status {
            overrides.interval = Some(status.interval);
            overrides.rules = status.rules.clone();
            overrides.paused = status.paused;
        }
        overrides
    }

    fn wake_cost_reader(&self) {
        if let Some(wake) = &self.cost_wake {
            let _ = wake.send(());
        }
    }

    /// Stops the agent (delivering for up to 5 s what it can) and the readers; waits for them.
    pub fn shut_down(&mut self) {
        let _ = self.controls.send(Control::Shutdown);
        if let Some(supervisor) = self.supervisor.take() {
            let _ = supervisor.join();
        }
        self.cost_wake = None;
        if let Some(reader) = self.cost_thread.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for UsageApp {
    fn drop(&mut self) {
        self.shut_down();
    }
}

impl eframe::App for UsageApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.shut_down();
    }
}
