//! The status bar: the mode (embedded or Kafka), the broker's state, the records sent today, and the
//! latest problem, in words.

use eframe::egui;

use super::live::Live;
use crate::runtime::Settings;

/// Draws the bar.
pub fn show(ui: &mut egui::Ui, settings: &Settings, live: &Live) {
    ui.horizontal(|ui| {
        let mode = if settings.embedded() {
            "Mode: embedded (billing on this machine)".to_owned()
        } else {
            format!("Mode: Kafka ({})", settings.config.kafka.brokers.join(", "))
        };
        ui.label(mode);
        ui.separator();
        let broker = match (&live.status, &live.agent_error) {
            (_, Some(_)) => "Broker: agent not running".to_owned(),
            (Some(status), None) => format!("Broker: {}", status.link.label()),
            (None, None) => "Broker: starting".to_owned(),
        };
        ui.label(broker);
        ui.separator();
        let sent_today = live.status.as_ref().map_or(0, |status| status.delivered_today);
        ui.label(format!("Sent today: {sent_today} record(s)"));
        if let Some(machine) = &live.machine_id {
            ui.separator();
            ui.label(format!("Machine: {machine}"));
        }
        // Plain words on the bar, the library's words on hover.
        let problem = live
            .agent_error
            .as_deref()
            .map(|error| ("The agent is not running; fix the setting it names and save.".to_owned(), error.to_owned()))
            .or_else(|| live.background_error.clone().map(|error| ("The billing in this app stopped.".to_owned(), error)))
            .or_else(|| live.status.as_ref().and_then(|status| status.problem.as_ref().map(|p| (p.plain(), p.details().to_owned()))));
        if let Some((plain, details)) = problem {
            ui.separator();
            ui.colored_label(ui.visuals().error_fg_color, plain).on_hover_text(details);
        }
    });
}
