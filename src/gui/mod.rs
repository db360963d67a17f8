//! The desktop app (views only; the agent and billing run on their own threads).

use crate::app::{AgentOverrides, Settings};

/// Opens the window and runs until it is closed.
pub fn run(settings: Settings, overrides: AgentOverrides) -> anyhow::Result<()> {
    let _ = (settings, overrides);
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default().with_title("usagebill").with_inner_size([960.0, 640.0]),
        ..Default::default()
    };
    eframe::run_native("usagebill", options, Box::new(|_| Ok(Box::new(Placeholder))))
        .map_err(|error| anyhow::anyhow!("opening the window: {error}"))
}

struct Placeholder;

impl eframe::App for Placeholder {
    fn ui(&mut self, ui: &mut eframe::egui::Ui, _frame: &mut eframe::Frame) {
        eframe::egui::CentralPanel::default().show(ui, |ui| {
            ui.heading("usagebill");
        });
    }
}
