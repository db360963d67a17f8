//! A cell of the views' tables: a fixed size with its text left- or right-aligned in it (amounts
//! right, so that their places line up), taking the whole width however short the text, so that
//! the columns line up row under row.

use eframe::egui;

/// Draws `text` in a cell of `size`; the label's response, for a hover text.
pub fn cell(ui: &mut egui::Ui, size: egui::Vec2, right: bool, text: impl Into<egui::WidgetText>) -> egui::Response {
    let layout = if right { egui::Layout::right_to_left(egui::Align::Center) } else { egui::Layout::left_to_right(egui::Align::Center) };
    ui.allocate_ui_with_layout(size, layout, |ui| {
        ui.set_min_size(size);
        ui.label(text)
    })
    .inner
}
