//! The Settings tab: brokers, topic, machine id, Kafka properties, rate card file and data dir, each
//! validated as typed with the error beside its field; saved to the TOML config and applied at once.
//!
//! Secret Kafka properties (`sasl.password`, `ssl.key.pem`, … see [`secret::is_secret_key`]) are
//! never put in the form in clear: the app may be on a shared screen, in a screenshot or a screen
//! recording, and egui hands every field's text to the accessibility tree, where other programs can
//! read it. Such a line shows [`secret::MASK`] instead of the value (a `${env:…}` / `${file:…}`
//! reference is shown, as it only says where the secret lives). A line left at the mask keeps the
//! saved value; typing over the mask sets a new one, shown as typed until the save, masked after.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use eframe::egui;

use super::live::Action;
use crate::config::{ConfigError, QuietHours, validate_broker, validate_topic};
use crate::kafka::secret;
use crate::record::validate_machine_id;
use crate::runtime::supervisor::SaveError;
use crate::runtime::{AgentOverrides, Settings};

/// Width of each text field, in points.
const FIELD_WIDTH: f32 = 380.0;

/// A field of the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SettingsField {
    /// Bootstrap brokers.
    Brokers,
    /// Usage topic.
    Topic,
    /// This machine's id.
    MachineId,
    /// Pass-through librdkafka properties.
    KafkaProperties,
    /// Rate card file.
    RateCard,
    /// Data dir.
    DataDir,
    /// Quiet hours for notifications.
    QuietHours,
}

impl SettingsField {
    /// The field that edits the config `key`, for the keys a save can refuse by name.
    fn of_key(key: &str) -> Option<SettingsField> {
        match key {
            "kafka.brokers" => Some(SettingsField::Brokers),
            "kafka.topic" => Some(SettingsField::Topic),
            "agent.machine_id" => Some(SettingsField::MachineId),
            "worker.rate_card" => Some(SettingsField::RateCard),
            "notifications.quiet_hours" => Some(SettingsField::QuietHours),
            _ => None,
        }
    }
}

/// The form's text, as typed.
#[derive(Default)]
pub struct SettingsForm {
    brokers: String,
    topic: String,
    machine_id: String,
    /// `KEY = VALUE` lines, secrets masked (see the module doc).
    properties: String,
    /// Keys whose saved value the form shows as [`secret::MASK`]; only the keys, never the values.
    masked: BTreeSet<String>,
    rate_card: String,
    data_dir: String,
    /// Which notifications are on: threshold, budget, outage.
    notify: [bool; 3],
    quiet_hours: String,
    close_to_tray: bool,
    /// Errors only the save could find (a rate card that does not parse), until the next edit.
    save_errors: HashMap<SettingsField, String>,
    outcome: Option<Result<String, String>>,
    saving: bool,
    start_at_login: StartAtLogin,
}

/// The start-at-login toggle: the entry's state as the supervisor last reported it.
#[derive(Debug, Default)]
struct StartAtLogin {
    /// Whether the entry is there; `None` until the supervisor said.
    enabled: Option<bool>,
    /// A change asked for and not yet answered.
    changing: bool,
    /// Why the last change (or the look at the entry) failed.
    error: Option<String>,
}

// By hand: the derived `Debug` would print `properties` as typed, new secrets included.
impl fmt::Debug for SettingsForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let properties = properties(&self.properties).map(|properties| format!("{:?}", secret::RedactedProperties(&properties)));
        f.debug_struct("SettingsForm")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("machine_id", &self.machine_id)
            .field("properties", &properties.unwrap_or_else(|_| "(not KEY = VALUE lines)".into()))
            .field("masked", &self.masked)
            .field("rate_card", &self.rate_card)
            .field("data_dir", &self.data_dir)
            .field("notify", &self.notify)
            .field("quiet_hours", &self.quiet_hours)
            .field("close_to_tray", &self.close_to_tray)
            .field("save_errors", &self.save_errors)
            .field("outcome", &self.outcome)
            .field("saving", &self.saving)
            .field("start_at_login", &self.start_at_login)
            .finish()
    }
}

impl SettingsForm {
    /// A form showing the settings in force.
    pub fn new(settings: &Settings, overrides: &AgentOverrides) -> Self {
        let config = &settings.config;
        let mut form = SettingsForm {
            brokers: config.kafka.brokers.join(", "),
            topic: config.kafka.topic.clone(),
            machine_id: overrides.machine_id.clone().or_else(|| config.agent.machine_id.clone()).unwrap_or_default(),
            rate_card: config.worker.rate_card.as_deref().map(|path| path.display().to_string()).unwrap_or_default(),
            data_dir: settings.data_dir.display().to_string(),
            notify: [config.notifications.threshold, config.notifications.budget, config.notifications.outage],
            quiet_hours: config.notifications.quiet_hours.map(|hours| hours.to_string()).unwrap_or_default(),
            close_to_tray: config.desktop.close_to_tray,
            ..SettingsForm::default()
        };
        form.show_properties(&config.kafka.properties);
        form
    }

    /// Puts `saved` in the properties field, each secret as [`secret::MASK`].
    fn show_properties(&mut self, saved: &BTreeMap<String, String>) {
        self.properties.clear();
        self.masked.clear();
        for (key, value) in saved {
            let shown = secret::redacted(key, value);
            if shown == secret::MASK {
                self.masked.insert(key.clone());
            }
            self.properties.push_str(&format!("{key} = {shown}\n"));
        }
    }

    /// What is wrong with the properties as typed: a line that is not `KEY = VALUE`, or the mask
    /// under a key that had no secret saved (moved to another line's key, say), so no value to keep.
    fn properties_error(&self) -> Option<String> {
        let typed = match properties(&self.properties) {
            Ok(typed) => typed,
            Err(error) => return Some(error),
        };
        let (key, _) = typed.iter().find(|(key, value)| *value == secret::MASK && !self.masked.contains(*key))?;
        Some(format!("{key}: type its value ({} stands for the saved secret of a key)", secret::MASK))
    }

    /// The properties as typed, each line left at the mask given back its value from `saved`.
    fn properties_to_save(&self, saved: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut typed = properties(&self.properties).unwrap_or_default();
        for (key, value) in &mut typed {
            if value == secret::MASK
                && self.masked.contains(key)
                && let Some(old) = saved.get(key)
            {
                value.clone_from(old);
            }
        }
        typed
    }

    /// Every field's error as typed.
    pub fn errors(&self) -> HashMap<SettingsField, String> {
        let mut errors = self.save_errors.clone();
        let mut note = |field, error: Option<String>| {
            if let Some(error) = error {
                errors.insert(field, error);
            }
        };
        note(
            SettingsField::Brokers,
            brokers(&self.brokers).find_map(|broker| validate_broker(broker).err().map(|expected| format!("{broker:?} is not {expected}"))),
        );
        note(SettingsField::Topic, validate_topic(self.topic.trim()).err().map(str::to_owned));
        let machine_id = self.machine_id.trim();
        note(
            SettingsField::MachineId,
            (!machine_id.is_empty()).then(|| validate_machine_id(machine_id).err()).flatten().map(str::to_owned),
        );
        note(SettingsField::KafkaProperties, self.properties_error());
        note(SettingsField::DataDir, self.data_dir.trim().is_empty().then(|| "a directory is needed".to_owned()));
        let quiet = self.quiet_hours.trim();
        note(SettingsField::QuietHours, (!quiet.is_empty()).then(|| QuietHours::parse(quiet).err()).flatten());
        errors
    }

    /// The save of `settings` went through; a secret typed in clear is masked again.
    pub fn saved(&mut self, path: &Path, settings: &Settings) {
        self.show_properties(&settings.config.kafka.properties);
        self.saving = false;
        self.outcome = Some(Ok(format!("Saved to {} and applied.", path.display())));
    }

    /// The save failed; the error goes beside its field when it has one.
    pub fn failed(&mut self, error: SaveError) {
        self.saving = false;
        match error.key.and_then(SettingsField::of_key) {
            Some(field) => drop(self.save_errors.insert(field, error.message)),
            None => self.outcome = Some(Err(error.message)),
        }
    }

    /// The supervisor's word on the start-at-login entry: there or not, or why a change failed.
    pub fn on_start_at_login(&mut self, outcome: Result<bool, String>) {
        self.start_at_login.changing = false;
        match outcome {
            Ok(enabled) => {
                self.start_at_login.enabled = Some(enabled);
                self.start_at_login.error = None;
            }
            Err(error) => self.start_at_login.error = Some(error),
        }
    }

    /// Whether the app starts at login, as last reported; `None` until then.
    pub fn start_at_login(&self) -> Option<bool> {
        self.start_at_login.enabled
    }

    /// Draws the tab.
    pub fn show(&mut self, ui: &mut egui::Ui, settings: &Settings, actions: &mut Vec<Action>) {
        let errors = self.errors();
        let mut edited = false;
        egui::Grid::new("settings").num_columns(3).spacing([12.0, 10.0]).show(ui, |ui| {
            let rows: [(SettingsField, &str, &mut String, &str, bool); 6] = [
                (SettingsField::Brokers, "Brokers", &mut self.brokers, "host:port, comma-separated; empty: embedded mode", false),
                (SettingsField::Topic, "Topic", &mut self.topic, "where usage records go", false),
                (SettingsField::MachineId, "Machine id", &mut self.machine_id, "empty: automatic (kept in the data dir)", false),
                (SettingsField::KafkaProperties, "Kafka properties", &mut self.properties, "one KEY = VALUE per line (SASL, TLS…)", true),
                (SettingsField::RateCard, "Rate card file", &mut self.rate_card, "empty: the built-in card", false),
                (SettingsField::DataDir, "Data dir", &mut self.data_dir, "outbox, ledger and machine id", false),
            ];
            for (field, label, text, hint, multiline) in rows {
                let name = ui.label(label);
                let editor = if multiline { egui::TextEdit::multiline(text).desired_rows(3) } else { egui::TextEdit::singleline(text) };
                // A grid cell is only as wide as last frame's column, so the width is a minimum, not a wish.
                edited |= ui.add(editor.min_size(egui::vec2(FIELD_WIDTH, 0.0))).labelled_by(name.id).changed();
                match errors.get(&field) {
                    Some(error) => ui.colored_label(ui.visuals().error_fg_color, error),
                    None => ui.label(egui::RichText::new(hint).weak()),
                };
                ui.end_row();
            }
        });
        edited |= self.show_notifications(ui, &errors);
        if edited {
            self.save_errors.clear();
            self.outcome = None;
        }
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            let ready = errors.is_empty() && !self.saving;
            if ui.add_enabled(ready, egui::Button::new("Save and apply")).clicked() {
                self.saving = true;
                self.outcome = None;
                match self.build(settings) {
                    Ok(next) => actions.push(Action::Apply(Box::new(next))),
                    Err(error) => self.failed(SaveError { key: error.key(), message: crate::errors::chain(&error) }),
                }
            }
            if self.saving {
                ui.spinner();
            }
            match &self.outcome {
                Some(Ok(message)) => drop(ui.label(message)),
                Some(Err(message)) => drop(ui.colored_label(ui.visuals().error_fg_color, message)),
                None => drop(ui.label(egui::RichText::new(format!("Config file: {}", settings.config_path.display())).weak())),
            }
        });
        ui.add_space(12.0);
        self.show_start_at_login(ui, settings, actions);
    }

    /// Which notifications are shown, and the quiet hours; saved with the rest of the form.
    fn show_notifications(&mut self, ui: &mut egui::Ui, errors: &HashMap<SettingsField, String>) -> bool {
        let mut edited = false;
        ui.add_space(8.0);
        ui.label(egui::RichText::new("Notifications").strong());
        ui.horizontal_wrapped(|ui| {
            let kinds = ["a threshold rule sent", "a budget crossed or forecast to", "brokers unreachable, and back"];
            for (on, label) in self.notify.iter_mut().zip(kinds) {
                edited |= ui.checkbox(on, label).changed();
            }
        });
        ui.horizontal(|ui| {
            let name = ui.label("Quiet hours");
            let editor = egui::TextEdit::singleline(&mut self.quiet_hours).hint_text("22:00-07:00").desired_width(120.0);
            edited |= ui.add(editor).labelled_by(name.id).changed();
            match errors.get(&SettingsField::QuietHours) {
                Some(error) => drop(ui.colored_label(ui.visuals().error_fg_color, error)),
                None => drop(ui.label(egui::RichText::new("local time; empty: none (the desktop's do-not-disturb applies too)").weak())),
            }
        });
        edited |=
            ui.checkbox(&mut self.close_to_tray, "Closing the window keeps usagebill running in the tray (where there is one)").changed();
        edited
    }

    /// The start-at-login toggle, applied at once (it is not part of the config file: the entry
    /// itself is the setting, so removing it by hand turns it off here too).
    fn show_start_at_login(&mut self, ui: &mut egui::Ui, settings: &Settings, actions: &mut Vec<Action>) {
        let state = &mut self.start_at_login;
        ui.horizontal(|ui| {
            let mut enabled = state.enabled.unwrap_or(false);
            let known = state.enabled.is_some() && !state.changing;
            if ui.add_enabled(known, egui::Checkbox::new(&mut enabled, "Start at login")).changed() {
                state.changing = true;
                actions.push(Action::StartAtLogin(enabled));
            }
            if state.changing {
                ui.spinner();
            }
            match (&state.error, settings.autostart()) {
                (Some(error), _) => drop(ui.colored_label(ui.visuals().error_fg_color, error)),
                (None, Some(autostart)) => drop(ui.label(egui::RichText::new(format!("entry: {}", autostart.entry.display())).weak())),
                (None, None) => {}
            }
        });
    }

    /// The settings the form describes, checked as a whole (only call when
    /// [`SettingsForm::errors`] is empty, so the fields it edits are already known good).
    fn build(&self, settings: &Settings) -> Result<Settings, ConfigError> {
        let mut config = settings.config.clone();
        config.kafka.brokers = brokers(&self.brokers).map(str::to_owned).collect();
        config.kafka.topic = self.topic.trim().to_owned();
        let machine_id = self.machine_id.trim();
        config.agent.machine_id = (!machine_id.is_empty()).then(|| machine_id.to_owned());
        config.kafka.properties = self.properties_to_save(&settings.config.kafka.properties);
        let rate_card = self.rate_card.trim();
        config.worker.rate_card = (!rate_card.is_empty()).then(|| PathBuf::from(rate_card));
        [config.notifications.threshold, config.notifications.budget, config.notifications.outage] = self.notify;
        let quiet = self.quiet_hours.trim();
        config.notifications.quiet_hours = if quiet.is_empty() { None } else { QuietHours::parse(quiet).ok() };
        config.desktop.close_to_tray = self.close_to_tray;
        let mut data_dir = settings.data_dir.clone();
        let edited_dir = PathBuf::from(self.data_dir.trim());
        // A data dir given by flag or env stays out of the file unless the person changed it here.
        if edited_dir != settings.data_dir {
            config.data_dir = Some(edited_dir.clone());
            data_dir = edited_dir;
        }
        settings.with_config(config, data_dir)
    }
}

fn brokers(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|broker| !broker.is_empty())
}

fn properties(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut properties = BTreeMap::new();
    for (number, line) in text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
        let (key, value) = line.split_once('=').ok_or_else(|| format!("line {}: write KEY = VALUE", number + 1))?;
        if key.trim().is_empty() {
            return Err(format!("line {}: the key is empty", number + 1));
        }
        properties.insert(key.trim().to_owned(), value.trim().to_owned());
    }
    Ok(properties)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn settings_with(properties: &[(&str, &str)]) -> Settings {
        let mut config = Config::default();
        config.kafka.properties = properties.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
        Settings::new(config, PathBuf::from("/nonexistent/config.toml"), PathBuf::from("/nonexistent")).unwrap()
    }

    const SAVED: [(&str, &str); 3] =
        [("sasl.password", "hunter2-secret"), ("sasl.username", "usagebill"), ("ssl.key.password", "${env:KEY_PASSWORD}")];

    #[test]
    fn secrets_are_masked_and_references_and_plain_values_shown() {
        let form = SettingsForm::new(&settings_with(&SAVED), &AgentOverrides::default());
        assert!(!form.properties.contains("hunter2"), "{}", form.properties);
        assert!(form.properties.contains(&format!("sasl.password = {}", secret::MASK)), "{}", form.properties);
        assert!(form.properties.contains("sasl.username = usagebill") && form.properties.contains("${env:KEY_PASSWORD}"));
        assert!(!format!("{form:?}").contains("hunter2"));
        assert!(form.errors().is_empty(), "{:?}", form.errors());
    }

    #[test]
    fn an_untouched_mask_keeps_the_saved_secret_and_a_typed_one_replaces_it() {
        let settings = settings_with(&SAVED);
        let mut form = SettingsForm::new(&settings, &AgentOverrides::default());
        form.properties.push_str("client.id = desk\n");
        let next = form.build(&settings).unwrap();
        assert_eq!(next.config.kafka.properties.get("sasl.password").map(String::as_str), Some("hunter2-secret"));
        assert_eq!(next.config.kafka.properties.get("client.id").map(String::as_str), Some("desk"));
        assert_eq!(next.config.kafka.properties.get("ssl.key.password").map(String::as_str), Some("${env:KEY_PASSWORD}"));

        form.properties = form.properties.replace(&format!("sasl.password = {}", secret::MASK), "sasl.password = correct-horse");
        assert!(!format!("{form:?}").contains("correct-horse"), "typed secrets stay out of Debug too");
        let next = form.build(&settings).unwrap();
        assert_eq!(next.config.kafka.properties.get("sasl.password").map(String::as_str), Some("correct-horse"));
        form.saved(Path::new("/nonexistent/config.toml"), &next);
        assert!(!form.properties.contains("correct-horse"), "masked again once saved: {}", form.properties);
    }

    #[test]
    fn a_mask_under_a_key_with_no_saved_secret_is_an_error() {
        let settings = settings_with(&SAVED);
        let mut form = SettingsForm::new(&settings, &AgentOverrides::default());
        form.properties.push_str(&format!("sasl.oauthbearer.client.secret = {}\n", secret::MASK));
        let error = form.errors().remove(&SettingsField::KafkaProperties).expect("an error beside the properties");
        assert!(error.contains("sasl.oauthbearer.client.secret"), "{error}");
    }
}
