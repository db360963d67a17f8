//! The Send tab: Send now, Pause/Resume, the auto-send interval, threshold rules (validated as typed),
//! and what the agent reports: outbox depth, last delivery, the link. A short notice confirms a
//! delivered Send now, or says why it failed and that the records are kept.

use std::time::{Duration, Instant};

use eframe::egui;

use super::format;
use super::live::{Action, Live};
use crate::config::HumanDuration;
use crate::kafka::LinkState;
use crate::record::UnixMillis;
use crate::transmit::agent::{AgentStatus, Command};
use crate::transmit::rule::ThresholdRule;

/// How long a notice stays up.
const NOTICE_FOR: Duration = Duration::from_secs(6);

/// A short message about the last Send now.
#[derive(Debug, Clone)]
pub struct Notice {
    /// What to say.
    pub text: String,
    /// Whether it reports a failure.
    pub failed: bool,
    until: Instant,
}

/// The Send tab's own state: drafts of the interval and the rules, and the notice.
#[derive(Debug, Default)]
pub struct SendView {
    /// Filled from the agent's first status, then owned by the person.
    drafts_loaded: bool,
    auto_send: bool,
    interval_text: String,
    rule_drafts: Vec<String>,
    awaiting_send_now: bool,
    notice: Option<Notice>,
}

impl SendView {
    /// The notice on show, if it has not expired.
    pub fn notice(&self) -> Option<&Notice> {
        self.notice.as_ref().filter(|notice| Instant::now() < notice.until)
    }

    /// How long until the notice should disappear (the app asks for one repaint then).
    pub fn notice_remaining(&self) -> Option<Duration> {
        self.notice().map(|notice| notice.until.saturating_duration_since(Instant::now()) + Duration::from_millis(50))
    }

    /// Learns from a new agent status: loads the drafts once and turns a delivery or a failure after
    /// Send now into a notice.
    pub fn on_status(&mut self, previous: Option<&AgentStatus>, status: &AgentStatus) {
        if !self.drafts_loaded {
            self.drafts_loaded = true;
            self.auto_send = status.interval.is_some();
            self.interval_text = format::duration(status.interval.unwrap_or(Duration::from_secs(10)));
            self.rule_drafts = status.rules.iter().map(ToString::to_string).collect();
        }
        if !self.awaiting_send_now {
            return;
        }
        let delivered = status.last_delivery.filter(|delivery| previous.and_then(|before| before.last_delivery) != Some(*delivery));
        let new_problem = status.problem.as_ref().filter(|problem| previous.and_then(|before| before.problem.as_ref()) != Some(*problem));
        if let Some(delivery) = delivered {
            self.awaiting_send_now = false;
            let text = format!("Sent successfully: {} record(s) at {}", delivery.records, format::time_of_day(delivery.at));
            self.notice = Some(Notice { text, failed: false, until: Instant::now() + NOTICE_FOR });
        } else if let Some(problem) = new_problem {
            self.awaiting_send_now = false;
            let text = format!("Send failed — {}", problem.plain());
            self.notice = Some(Notice { text, failed: true, until: Instant::now() + NOTICE_FOR });
        }
    }

    /// Draws the tab; commands go to `actions`.
    pub fn show(&mut self, ui: &mut egui::Ui, live: &Live, actions: &mut Vec<Action>) {
        let Some(status) = &live.status else {
            let waiting = live
                .agent_error
                .as_deref()
                .map_or("Starting the agent…".to_owned(), |error| format!("The agent is not running: {error}"));
            ui.label(waiting);
            return;
        };
        ui.horizontal(|ui| {
            let big = |text: &str| egui::Button::new(egui::RichText::new(text).size(18.0)).min_size(egui::vec2(120.0, 34.0));
            if ui.add(big("Send now")).on_hover_text("Close the current window and send everything waiting").clicked() {
                self.awaiting_send_now = true;
                actions.push(Action::Agent(Command::SendNow));
            }
            let (label, command) = if status.paused { ("Resume", Command::Resume) } else { ("Pause", Command::Pause) };
            if ui.add(big(label)).clicked() {
                actions.push(Action::Agent(command));
            }
            ui.label(if status.paused { "Paused: closed windows wait in the outbox." } else { "Sending as windows close." });
        });
        if let Some(notice) = self.notice() {
            let color = if notice.failed { ui.visuals().error_fg_color } else { egui::Color32::from_rgb(60, 170, 90) };
            ui.colored_label(color, egui::RichText::new(&notice.text).strong());
        }
        ui.separator();
        self.interval_row(ui, status, actions);
        ui.separator();
        self.rules(ui, status, actions);
        ui.separator();
        egui::Grid::new("send-facts").num_columns(2).spacing([16.0, 6.0]).show(ui, |ui| {
            ui.label("Outbox:");
            ui.label(format!("{} record(s) waiting", status.outbox_depth));
            ui.end_row();
            ui.label("Last delivery:");
            ui.label(
                status
                    .last_delivery
                    .map_or("none yet".to_owned(), |delivery| format!("{}, {} record(s)", format::instant(delivery.at), delivery.records)),
            );
            ui.end_row();
            ui.label("Delivered since start:");
            ui.label(format!("{} record(s)", status.delivered_total));
            ui.end_row();
            ui.label("Link to the broker:");
            ui.label(link_words(status, UnixMillis::now()));
            ui.end_row();
            if let Some(problem) = &status.problem {
                ui.label("Problem:");
                ui.vertical(|ui| {
                    ui.colored_label(ui.visuals().warn_fg_color, problem.plain());
                    egui::CollapsingHeader::new("details").id_salt("send-problem").show(ui, |ui| ui.label(problem.details()));
                });
                ui.end_row();
            }
            ui.label("Open window:");
            ui.label(format!("since {}, will be seq {}", format::time_of_day(status.window_start), status.next_seq));
            ui.end_row();
        });
    }

    fn interval_row(&mut self, ui: &mut egui::Ui, status: &AgentStatus, actions: &mut Vec<Action>) {
        let parsed = parse_interval(&self.interval_text);
        ui.horizontal(|ui| {
            ui.checkbox(&mut self.auto_send, "Auto-send");
            let name = ui.label("Send interval");
            ui.add(egui::TextEdit::singleline(&mut self.interval_text).desired_width(70.0).hint_text("10s"))
                .labelled_by(name.id)
                .on_hover_text("e.g. 30s, 5m or 1h");
            let wanted = if self.auto_send { parsed.as_ref().ok().copied() } else { None };
            let valid = !self.auto_send || parsed.is_ok();
            if ui.add_enabled(valid && wanted != status.interval, egui::Button::new("Apply interval")).clicked() {
                actions.push(Action::Agent(Command::SetInterval(wanted)));
            }
            match (&parsed, self.auto_send) {
                (Err(error), true) => ui.colored_label(ui.visuals().error_fg_color, error),
                _ => {
                    ui.label(status.interval.map_or("Now: off".to_owned(), |interval| format!("Now: every {}", format::duration(interval))))
                }
            };
        });
    }

    fn rules(&mut self, ui: &mut egui::Ui, status: &AgentStatus, actions: &mut Vec<Action>) {
        ui.label(egui::RichText::new("Threshold rules").strong())
            .on_hover_text("METRIC > VALUE for DURATION, e.g. cpu_pct > 90 for 30s; a rule that holds closes and sends the window");
        let parsed: Vec<Result<ThresholdRule, String>> = self.rule_drafts.iter().map(|draft| parse_rule(draft)).collect();
        let mut remove = None;
        egui::Grid::new("rules").num_columns(4).spacing([8.0, 6.0]).show(ui, |ui| {
            for (index, (draft, rule)) in self.rule_drafts.iter_mut().zip(&parsed).enumerate() {
                let name = ui.label(format!("Rule {}", index + 1));
                ui.add(egui::TextEdit::singleline(draft).desired_width(280.0).hint_text("cpu_pct > 90 for 30s")).labelled_by(name.id);
                if ui.button(format!("Remove rule {}", index + 1)).clicked() {
                    remove = Some(index);
                }
                match rule {
                    Ok(_) => ui.label(egui::RichText::new("valid").weak()),
                    Err(error) => ui.colored_label(ui.visuals().error_fg_color, error),
                };
                ui.end_row();
            }
        });
        if let Some(index) = remove {
            self.rule_drafts.remove(index);
        }
        let valid: Option<Vec<ThresholdRule>> = parsed.iter().map(|rule| rule.as_ref().ok().copied()).collect();
        ui.horizontal(|ui| {
            if ui.button("Add rule").clicked() {
                self.rule_drafts.push(String::new());
            }
            let changed = valid.as_ref().is_some_and(|rules| *rules != status.rules) || remove.is_some();
            if ui.add_enabled(valid.is_some() && changed, egui::Button::new("Apply rules")).clicked()
                && let Some(rules) = valid
            {
                actions.push(Action::Agent(Command::SetRules(rules)));
            }
        });
        let in_force: Vec<String> = status.rules.iter().map(ToString::to_string).collect();
        ui.label(if in_force.is_empty() { "In force: no rules".to_owned() } else { format!("In force: {}", in_force.join("; ")) });
    }
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval: HumanDuration = text.parse().map_err(|error: crate::duration::DurationError| error.to_string())?;
    interval.at_least_one_second()
}

fn parse_rule(text: &str) -> Result<ThresholdRule, String> {
    if text.trim().is_empty() {
        Err("write a rule, e.g. cpu_pct > 90 for 30s, or remove it".to_owned())
    } else {
        ThresholdRule::parse(text)
    }
}

/// The link in plain words: since when it is down, when the next try is, and what waits.
fn link_words(status: &AgentStatus, now: UnixMillis) -> String {
    match (status.link, status.down_since) {
        (LinkState::Down, Some(since)) => {
            let next = match status.next_try {
                Some(at) if at > now => format!("next try in {} s", (at.millis_since(now) + 999) / 1000),
                _ => "trying now".to_owned(),
            };
            format!(
                "unreachable since {} ({}); {next}. {} record(s) wait in the outbox, kept on disk, and go as soon as it answers.",
                format::time_of_day(since),
                format::ago(since, now),
                status.outbox_depth
            )
        }
        (link, _) => link.label().to_owned(),
    }
}
