//! The Statements tab: this machine's account, the draft of its open period (what it comes to so
//! far and how long until it closes), and its final statements, newest first, each with Open PDF
//! and Export CSV. The statement reader thread reads them and writes the files; this view only
//! draws what it reported and queues the person's requests.

use eframe::egui;

use super::format;
use super::live::{Action, Live};
use super::table_cell::cell;
use crate::billing::statement::StatementRow;
use crate::record::UnixMillis;
use crate::runtime::statement_files::{FileKind, StatementFile, Written};
use crate::runtime::statement_reader::{StatementRequest, StatementSnapshot, StatementState};

/// The final statements' columns: header, width in points, and whether right-aligned (money is,
/// so amounts line up by their last digit).
const COLUMNS: [(&str, f32, bool); 4] =
    [("Number", 80.0, false), ("Period", 80.0, false), ("Issued", 190.0, false), ("Total", 130.0, true)];
const ROW_HEIGHT: f32 = 24.0;

/// What the last file request came to, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNotice {
    /// What to say.
    pub text: String,
    /// Whether it reports a failure.
    pub failed: bool,
}

/// The Statements tab's own state: the file request under way and what the last one came to.
#[derive(Debug, Default)]
pub struct StatementsView {
    pending: Option<(u64, FileKind)>,
    notice: Option<FileNotice>,
}

impl StatementsView {
    /// What the last Open PDF or Export CSV came to.
    pub fn notice(&self) -> Option<&FileNotice> {
        self.notice.as_ref()
    }

    /// Takes the statement reader's answer to Open PDF or Export CSV.
    pub fn on_file(&mut self, file: StatementFile) {
        if self.pending == Some((file.number, file.kind)) {
            self.pending = None;
        }
        let form = match file.kind {
            FileKind::Pdf => "PDF",
            FileKind::Csv => "CSV",
        };
        let number = file.number;
        let (text, failed) = match file.outcome {
            Ok((path, Written::Saved)) => (format!("Statement {number}'s {form} is saved at {}", path.display()), false),
            Ok((path, Written::Opened)) => (format!("Statement {number}'s {form} is open; the file is {}", path.display()), false),
            Ok((path, Written::NoOpener(opener))) => {
                (format!("Statement {number}'s {form} is saved at {}; this system has no {opener} to open it with", path.display()), false)
            }
            Ok((path, Written::NotOpened(why))) => (format!("Statement {number}'s {form} is saved at {}, but {why}", path.display()), true),
            Err(why) => (format!("Statement {number}'s {form} was not written: {why}"), true),
        };
        self.notice = Some(FileNotice { text, failed });
    }

    /// Draws the tab; file requests go to `actions`.
    pub fn show(&mut self, ui: &mut egui::Ui, live: &Live, actions: &mut Vec<Action>) {
        let snapshot = &live.statements;
        self.state_line(ui, snapshot);
        let Some(machine) = snapshot.machine_id.as_deref().or(live.machine_id.as_deref()) else {
            if snapshot.state == StatementState::Ready {
                ui.label("This machine's id is not known yet: its statements show once the agent has started.");
            }
            return;
        };
        if let Some(account) = &snapshot.account {
            ui.horizontal(|ui| {
                ui.label(egui::RichText::new(format!("Account: {}", account.name)).strong().size(18.0));
                ui.label(egui::RichText::new(format!("({})", account.id)).weak().size(18.0));
            });
            let read = snapshot.read_at.map(|at| format!(" Read at {}.", format::time_of_day(at))).unwrap_or_default();
            ui.label(format!("This machine, {machine}, bills to it.{read}"));
        }
        if snapshot.read_at.is_none() {
            return;
        }
        ui.add_space(8.0);
        self.open_period(ui, snapshot);
        ui.add_space(8.0);
        ui.separator();
        self.finals(ui, &snapshot.finals, actions);
        if let Some((number, kind)) = self.pending {
            let form = if kind == FileKind::Pdf { "PDF" } else { "CSV" };
            ui.label(format!("Writing statement {number}'s {form}…"));
        } else if let Some(notice) = &self.notice {
            let colour = if notice.failed { ui.visuals().error_fg_color } else { ui.visuals().text_color() };
            ui.colored_label(colour, &notice.text);
        }
    }

    fn state_line(&self, ui: &mut egui::Ui, snapshot: &StatementSnapshot) {
        let shown = snapshot.read_at.map(|at| format!("; showing the statements read at {}", format::time_of_day(at))).unwrap_or_default();
        match &snapshot.state {
            StatementState::Loading => drop(ui.label("Reading the statements…")),
            StatementState::Ready => {}
            StatementState::Offline(why) => {
                let text = format!("Offline: the Kafka brokers cannot be reached ({why}){shown}. Trying again every 30 s.");
                ui.colored_label(ui.visuals().warn_fg_color, text);
            }
            StatementState::Failed(why) => {
                drop(ui.colored_label(ui.visuals().error_fg_color, format!("Cannot read the statements: {why}{shown}")))
            }
        }
        if let Some(latest) = snapshot.skipped.last() {
            let text =
                format!("{} stored statement(s) failed their checks and are not shown; the latest: {latest}", snapshot.skipped.len());
            ui.colored_label(ui.visuals().warn_fg_color, text);
        }
    }

    fn open_period(&self, ui: &mut egui::Ui, snapshot: &StatementSnapshot) {
        let Some(open) = &snapshot.open else { return };
        let now = UnixMillis::now();
        ui.label(egui::RichText::new("Open period").strong().size(16.0));
        // The previous period's draft, while in its grace and not closed yet, comes first.
        for draft in &snapshot.drafts {
            let money = format::money(draft.total, &draft.currency);
            ui.horizontal(|ui| {
                ui.label(egui::RichText::new(format!("{} (draft)", draft.period)).size(16.0));
                ui.label(egui::RichText::new(format!("{money} so far")).strong().size(16.0));
                ui.label(egui::RichText::new(format!("closes {} ({})", format::instant(draft.at), days_left(draft.at, now))).size(16.0));
            });
        }
        if !snapshot.drafts.iter().any(|draft| draft.period == open.period.to_string()) {
            ui.label(format!(
                "Nothing billed to this account in {} yet. The period closes {} ({}).",
                open.period,
                format::instant(open.closes_at),
                days_left(open.closes_at, now)
            ));
        }
    }

    fn finals(&mut self, ui: &mut egui::Ui, finals: &[StatementRow], actions: &mut Vec<Action>) {
        ui.label(egui::RichText::new("Final statements").strong().size(16.0));
        if finals.is_empty() {
            ui.label("None yet: a period's statement is issued, numbered, when the period closes (its end plus the grace period).");
            return;
        }
        ui.horizontal(|ui| {
            for (header, width, right) in COLUMNS {
                cell(ui, egui::vec2(width, ROW_HEIGHT), right, egui::RichText::new(header).strong());
            }
        });
        let height = (ui.available_height() - 3.0 * ROW_HEIGHT).max(ROW_HEIGHT * 3.0);
        egui::ScrollArea::vertical().max_height(height).auto_shrink([false, true]).show_rows(
            ui,
            ROW_HEIGHT,
            finals.len(),
            |ui, visible| {
                for row in &finals[visible] {
                    self.final_row(ui, row, actions);
                }
            },
        );
    }

    fn final_row(&mut self, ui: &mut egui::Ui, row: &StatementRow, actions: &mut Vec<Action>) {
        let Some(number) = row.number else { return };
        ui.horizontal(|ui| {
            let cells = [format!("No. {number}"), row.period.clone(), format::instant(row.at), format::money(row.total, &row.currency)];
            for ((_, width, right), text) in COLUMNS.into_iter().zip(cells) {
                cell(ui, egui::vec2(width, ROW_HEIGHT), right, text);
            }
            ui.add_space(16.0);
            let busy = self.pending.is_some();
            for (label, kind) in [("Open PDF", FileKind::Pdf), ("Export CSV", FileKind::Csv)] {
                // One request at a time: the reader writes them in turn, and the notice speaks of one.
                if ui.add_enabled(!busy, egui::Button::new(label)).clicked() {
                    self.pending = Some((number, kind));
                    self.notice = None;
                    let request =
                        if kind == FileKind::Pdf { StatementRequest::OpenPdf(number) } else { StatementRequest::ExportCsv(number) };
                    actions.push(Action::Statements(request));
                }
            }
        });
    }
}

/// `29 days left`, `1 day left`, `5 h left`, `less than an hour left`, `closing now`.
pub fn days_left(closes_at: UnixMillis, now: UnixMillis) -> String {
    const HOUR: i64 = 3_600_000;
    let remaining = closes_at.0 - now.0;
    match remaining {
        ..=0 => "closing now".to_owned(),
        _ if remaining >= 2 * 24 * HOUR => format!("{} days left", remaining / (24 * HOUR)),
        _ if remaining >= 24 * HOUR => "1 day left".to_owned(),
        _ if remaining >= HOUR => format!("{} h left", remaining / HOUR),
        _ => "less than an hour left".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::days_left;
    use crate::record::UnixMillis;

    #[test]
    fn the_time_left_reads_in_whole_days_then_hours() {
        let now = UnixMillis(1_000_000_000_000);
        let later = |hours: i64| now.plus_millis(hours * 3_600_000);
        assert_eq!(days_left(later(29 * 24 + 5), now), "29 days left");
        assert_eq!(days_left(later(30), now), "1 day left");
        assert_eq!(days_left(later(5), now), "5 h left");
        assert_eq!(days_left(now.plus_millis(60_000), now), "less than an hour left");
        assert_eq!(days_left(now, now), "closing now");
    }
}
