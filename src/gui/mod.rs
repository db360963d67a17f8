//! The desktop app (views only; the agent, the billing and the cost reading run on their own threads).
//!
//! [`UsageApp`] holds the state; one file per tab draws it ([`usage_view`], [`send_view`],
//! [`costs_view`], [`statements_view`], [`settings_view`]) and `status_bar` sums it up. The threads
//! behind them, which own every file and socket, are `runtime::background`'s; the views talk to them
//! over channels.

mod app;
pub mod costs_table;
pub mod costs_view;
pub mod forecast_chart;
pub mod format;
pub mod history;
mod live;
pub mod send_view;
pub mod settings_view;
pub mod statements_view;
mod status_bar;
mod table_cell;
pub mod usage_view;

use std::sync::{Arc, Mutex};

use eframe::egui;

pub use self::app::{Tab, UsageApp};
pub use self::live::{Action, Live};
use crate::runtime::{AgentOverrides, ReadingSource, Settings};

/// The window and desktop icon (256×256 PNG), compiled in so the binary needs no asset files.
pub const ICON_PNG: &[u8] = include_bytes!("../../assets/usagebill.png");

/// Opens the window and runs until it is closed.
pub fn run(settings: Settings, overrides: AgentOverrides) -> anyhow::Result<()> {
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("usagebill")
        .with_app_id("usagebill")
        .with_inner_size([1100.0, 720.0])
        .with_min_inner_size([720.0, 480.0]);
    match eframe::icon_data::from_png_bytes(ICON_PNG) {
        Ok(icon) => viewport = viewport.with_icon(icon),
        Err(error) => tracing::warn!("the built-in icon does not decode: {error}"),
    }
    let options = eframe::NativeOptions { viewport, ..Default::default() };
    // Closing the window only asks the agent to stop; it closes its last window and delivers for a
    // few seconds after the window is gone, and the process waits for that here.
    let stopping = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&stopping);
    let outcome = eframe::run_native(
        "usagebill",
        options,
        Box::new(move |creation| {
            let mut app = UsageApp::new(settings, overrides, ReadingSource::Machine, creation.egui_ctx.clone())?;
            app.leave_stopping_in(slot);
            Ok(Box::new(app))
        }),
    );
    let left = stopping.lock().expect("the stopping slot").take();
    if let Some(left) = left {
        left.wait();
    }
    outcome.map_err(|error| anyhow::anyhow!("opening the window: {error}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_built_in_icon_decodes_as_a_square() {
        let icon = eframe::icon_data::from_png_bytes(super::ICON_PNG).expect("a PNG");
        assert_eq!((icon.width, icon.height), (256, 256));
    }
}
