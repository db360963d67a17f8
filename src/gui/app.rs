//! The app: the state the views read, the background handles, the frame (tabs, status bar, the
//! current view) and the actions the views queue, applied after the frame.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eframe::egui;

use super::costs_view::CostsView;
use super::live::{Action, Live};
use super::send_view::SendView;
use super::settings_view::SettingsForm;
use super::statements_view::StatementsView;
use super::usage_view::UsageView;
use crate::runtime::background::{Background, Stopping};
use crate::runtime::supervisor::Event;
use crate::runtime::tray::{TrayAction, TrayEvent};
use crate::runtime::{AgentOverrides, ReadingSource, Settings};
use crate::transmit::agent::{AgentStatus, Command, Update};

/// How soon after news from the background the window repaints. Not zero: egui paints twice for a
/// zero-delay request (to let layouts settle), and under software GL each frame costs tens of
/// milliseconds of CPU. 50 ms gathers what arrives together (a reading, the status it changed, the
/// costs a delivery changed) into one frame; input still repaints at once.
const REPAINT_DELAY: Duration = Duration::from_millis(50);

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
    /// This machine's account's statements.
    Statements,
    /// The configuration.
    Settings,
}

impl Tab {
    const ALL: [Tab; 5] = [Tab::Usage, Tab::Send, Tab::Costs, Tab::Statements, Tab::Settings];

    fn label(self) -> &'static str {
        match self {
            Tab::Usage => "Usage",
            Tab::Send => "Send",
            Tab::Costs => "Costs",
            Tab::Statements => "Statements",
            Tab::Settings => "Settings",
        }
    }
}

/// The desktop app. Everything slow runs on background threads; a frame only reads channels.
pub struct UsageApp {
    settings: Settings,
    /// Settings sent to be saved, adopted once the save succeeds.
    pending_settings: Option<Settings>,
    background: Background,
    tab: Tab,
    live: Live,
    usage: UsageView,
    send: SendView,
    costs: CostsView,
    statements: StatementsView,
    settings_form: SettingsForm,
    /// Where the closing window leaves the threads still stopping (see [`UsageApp::close`]).
    stopping_slot: Option<Arc<Mutex<Option<Stopping>>>>,
    /// Whether the tray icon is up (or why not); `None` until its thread says.
    tray: Option<Result<(), String>>,
    /// Quit from the tray: the next close is not kept in the tray.
    quitting: bool,
    /// Window commands the background asked for (the tray's Open and Quit), sent in the next frame.
    viewport_commands: Vec<egui::ViewportCommand>,
}

impl UsageApp {
    /// Starts the agent, the cost reader and (when configured) the billing worker behind a new app
    /// that repaints `ctx` when they have news.
    /// An error only when the system will not start the background threads.
    pub fn new(settings: Settings, overrides: AgentOverrides, source: ReadingSource, ctx: egui::Context) -> std::io::Result<UsageApp> {
        let settings_form = SettingsForm::new(&settings, &overrides);
        let background = Background::start(&settings, overrides, source, Arc::new(move || ctx.request_repaint_after(REPAINT_DELAY)))?;
        Ok(UsageApp {
            settings,
            pending_settings: None,
            background,
            tab: Tab::default(),
            live: Live::default(),
            usage: UsageView::default(),
            send: SendView::default(),
            costs: CostsView::default(),
            statements: StatementsView::default(),
            settings_form,
            stopping_slot: None,
            tray: None,
            quitting: false,
            viewport_commands: Vec::new(),
        })
    }

    /// Draws one frame into `ui` (the whole window).
    pub fn show(&mut self, ui: &mut egui::Ui) {
        self.drain_events();
        self.follow_the_window(ui.ctx());
        let mut actions = Vec::new();
        // The panels leave their background to the frame's clear colour (see `clear_color`): a
        // software renderer then clears the window with a memset instead of shading every pixel
        // of a full-window rectangle each frame.
        let unfilled = |frame: egui::Frame| frame.fill(egui::Color32::TRANSPARENT);
        egui::Panel::top("tabs").frame(unfilled(egui::Frame::side_top_panel(ui.style()))).show(ui, |ui| {
            ui.horizontal(|ui| {
                for tab in Tab::ALL {
                    if ui.selectable_label(self.tab == tab, egui::RichText::new(tab.label()).size(16.0)).clicked() {
                        self.tab = tab;
                    }
                }
            });
        });
        egui::Panel::bottom("status")
            .frame(unfilled(egui::Frame::side_top_panel(ui.style())))
            .show(ui, |ui| super::status_bar::show(ui, &self.settings, &self.live));
        egui::CentralPanel::default().frame(unfilled(egui::Frame::central_panel(ui.style()))).show(ui, |ui| match self.tab {
            Tab::Usage => self.usage.show(ui, &self.live),
            Tab::Send => self.send.show(ui, &self.live, &mut actions),
            Tab::Costs => self.costs.show(ui, &self.live),
            Tab::Statements => self.statements.show(ui, &self.live, &mut actions),
            Tab::Settings => self.settings_form.show(ui, &self.settings, &mut actions),
        });
        for action in actions {
            self.apply(action);
        }
        self.background.show_readings(self.tab == Tab::Usage);
        self.background.show_statements(self.tab == Tab::Statements);
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

    /// The Settings tab's form.
    pub fn settings_form(&self) -> &SettingsForm {
        &self.settings_form
    }

    /// The Statements tab and what its last file request came to.
    pub fn statements_view(&self) -> &StatementsView {
        &self.statements
    }

    fn drain_events(&mut self) {
        let events: Vec<Event> = self.background.events().collect();
        for event in events {
            match event {
                // The new agent's first status may arrive before this event: it is kept. The old
                // agent's statuses were cleared by `AgentStopped`, which they all preceded.
                Event::AgentStarted { machine_id } => {
                    self.background.machine_started(&machine_id);
                    self.live.machine_id = Some(machine_id);
                    self.live.agent_error = None;
                }
                Event::AgentStopped => self.live.status = None,
                Event::AgentFailed(error) => self.live.agent_error = Some(error),
                Event::Agent(Update::Reading(reading)) => self.live.history.push(reading),
                Event::Agent(Update::Status(status)) => self.on_status(status),
                Event::Costs(snapshot) => self.live.costs = snapshot,
                Event::Statements(snapshot) => self.live.statements = *snapshot,
                Event::StatementFile(file) => self.statements.on_file(file),
                Event::BackgroundFailed(error) => self.live.background_error = Some(error),
                Event::StartAtLogin(outcome) => self.settings_form.on_start_at_login(outcome),
                Event::Tray(TrayEvent::Ready(outcome)) => {
                    if let Err(why) = &outcome {
                        tracing::info!("{why}; closing the window quits");
                    }
                    self.tray = Some(outcome);
                }
                Event::Tray(TrayEvent::Action(action)) => self.on_tray(action),
                Event::Saved(Ok(path)) => {
                    if let Some(settings) = self.pending_settings.take() {
                        self.background.follow(&settings);
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

    fn on_tray(&mut self, action: TrayAction) {
        tracing::debug!("tray: {action:?} applied");
        match action {
            TrayAction::SendNow => self.background.command(Command::SendNow),
            TrayAction::Pause => self.background.command(Command::Pause),
            TrayAction::Resume => self.background.command(Command::Resume),
            TrayAction::Open => {
                self.viewport_commands.extend([egui::ViewportCommand::Minimized(false), egui::ViewportCommand::Focus]);
            }
            TrayAction::Quit => {
                self.quitting = true;
                self.viewport_commands.push(egui::ViewportCommand::Close);
            }
        }
    }

    /// Whether closing the window keeps the app running in the tray: a tray icon is up and the
    /// settings say so, and Quit was not chosen.
    pub fn keeps_running_in_tray(&self) -> bool {
        matches!(self.tray, Some(Ok(()))) && self.settings.config.desktop.close_to_tray && !self.quitting
    }

    /// Whether the tray icon is up, or why not; `None` until its thread says.
    pub fn tray(&self) -> Option<&Result<(), String>> {
        self.tray.as_ref()
    }

    /// Keeps a closed window in the tray (minimised: eframe cannot show a hidden window again),
    /// and sends the window commands the tray asked for.
    fn follow_the_window(&mut self, ctx: &egui::Context) {
        for command in self.viewport_commands.drain(..) {
            ctx.send_viewport_cmd(command);
        }
        if ctx.input(|input| input.viewport().close_requested()) && self.keeps_running_in_tray() {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            ctx.send_viewport_cmd(egui::ViewportCommand::Minimized(true));
        }
    }

    fn on_status(&mut self, status: AgentStatus) {
        self.send.on_status(self.live.status.as_ref(), &status);
        self.live.status = Some(status);
    }

    fn apply(&mut self, action: Action) {
        match action {
            Action::Agent(command) => self.background.command(command),
            Action::Statements(request) => self.background.statements(request),
            Action::StartAtLogin(enabled) => self.background.start_at_login(enabled),
            Action::Apply(settings) => {
                let overrides = self.overrides_to_keep();
                self.pending_settings = Some((*settings).clone());
                self.background.apply(*settings, overrides);
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

    /// Stops the agent (delivering for up to 5 s what it can) and the readers; waits for them.
    pub fn shut_down(&mut self) {
        self.background.shut_down();
    }

    /// Asks the background threads to stop and returns at once: the window closes while the agent
    /// delivers; [`gui::run`](super::run) waits on what this returns before the process exits.
    pub fn close(&mut self) -> Stopping {
        self.background.stop_in_background()
    }

    /// Where [`UsageApp::close`] leaves the threads still stopping when eframe closes the window.
    pub fn leave_stopping_in(&mut self, slot: Arc<Mutex<Option<Stopping>>>) {
        self.stopping_slot = Some(slot);
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

    /// The panels' own colour, opaque: the panels draw no background of their own.
    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        visuals.panel_fill.to_normalized_gamma_f32()
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        let stopping = self.close();
        match &self.stopping_slot {
            Some(slot) => *slot.lock().expect("the stopping slot") = Some(stopping),
            None => stopping.wait(),
        }
    }
}
