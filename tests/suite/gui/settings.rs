//! The Settings tab: errors beside their fields, saving to the config file, and secret Kafka
//! properties listed without their values.

use std::time::Duration;

use egui_kittest::kittest::{By, NodeT, Queryable};
use usagebill::config::Config;
use usagebill::runtime::autostart::Autostart;

use super::{AppHarness, STEADY, app, click, embedded_settings, manual_only, open_app, script, wait_for};

#[test]
fn settings_show_errors_beside_their_fields_and_save_to_the_config_file() {
    let data = tempfile::tempdir().unwrap();
    let settings = embedded_settings(data.path(), "desk-1");
    let config_path = settings.config_path.clone();
    let mut harness = open_app(settings, manual_only(), script(data.path(), &[STEADY]));
    click(&mut harness, "Settings");
    harness.get_by_label("Brokers").set_text_value_accesskit("not a broker");
    harness.run_ok();
    let field = harness.get_by_label("Brokers").rect();
    let error = harness.get_by_label("\"not a broker\" is not host:port, e.g. localhost:9092").rect();
    assert!(error.min.x >= field.max.x && (field.min.y..=field.max.y).contains(&error.center().y), "beside: {field:?} {error:?}");
    assert!(harness.get_by_label("Save and apply").accesskit_node().is_disabled(), "nothing invalid is saved");
    harness.get_by_label("Brokers").set_text_value_accesskit("");
    harness.get_by_label("Topic").set_text_value_accesskit("usage-from-the-ui");
    harness.run_ok();
    assert!(!harness.get_by_label("Save and apply").accesskit_node().is_disabled());
    click(&mut harness, "Save and apply");
    wait_for(&mut harness, "the save", Duration::from_secs(15), |app| app.settings().config.kafka.topic == "usage-from-the-ui");
    let saved = Config::load(&config_path).unwrap();
    assert_eq!((saved.kafka.topic.as_str(), saved.agent.machine_id.as_deref()), ("usage-from-the-ui", Some("desk-1")));
    harness.get_by_label_contains("Saved to");
}

#[test]
fn settings_list_a_secret_property_but_never_show_its_value() {
    const SECRET: &str = "hunter2-secret";
    let data = tempfile::tempdir().unwrap();
    let mut settings = embedded_settings(data.path(), "desk-1");
    let properties = [("sasl.password", SECRET), ("sasl.username", "usagebill"), ("ssl.key.password", "${env:KEY_PASSWORD}")];
    settings.config.kafka.properties = properties.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
    let config_path = settings.config_path.clone();
    let mut harness = open_app(settings, manual_only(), script(data.path(), &[STEADY]));
    click(&mut harness, "Settings");
    let nowhere = |harness: &AppHarness| {
        // Every node of the accessibility tree: labels, values (a text field's text) and descriptions.
        let shows = |text: Option<String>| text.is_some_and(|text| text.contains(SECRET));
        let found: Vec<String> = harness
            .query_all(By::new().predicate(|node| shows(node.label()) || shows(node.value()) || shows(node.description())))
            .map(|node| format!("{node:?}"))
            .collect();
        assert!(found.is_empty(), "the secret is on screen: {found:?}");
        assert_eq!(harness.query_all_by_label_contains(SECRET).count(), 0);
    };
    nowhere(&harness);
    let listed = harness.get_by_label("Kafka properties").accesskit_node().value().unwrap_or_default();
    assert!(listed.contains("sasl.password") && listed.contains("sasl.username = usagebill"), "{listed}");
    assert!(listed.contains("ssl.key.password = ${env:KEY_PASSWORD}"), "a reference is not a secret, so it is shown: {listed}");
    // Saving with the mask untouched keeps the secret; the form still does not show it.
    harness.get_by_label("Topic").set_text_value_accesskit("usage-with-secrets");
    harness.run_ok();
    click(&mut harness, "Save and apply");
    wait_for(&mut harness, "the save", Duration::from_secs(15), |app| app.settings().config.kafka.topic == "usage-with-secrets");
    let saved = Config::load(&config_path).unwrap();
    assert_eq!(saved.kafka.properties.get("sasl.password").map(String::as_str), Some(SECRET));
    nowhere(&harness);
}

#[test]
fn start_at_login_writes_a_valid_autostart_entry_and_removes_it() {
    let data = tempfile::tempdir().unwrap();
    let config_home = tempfile::tempdir().unwrap();
    // A folder name with a space, so the entry's Exec must quote the program.
    let program = config_home.path().join("my apps").join("usagebill");
    std::fs::create_dir_all(program.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_usagebill"), &program).unwrap();
    let entry = config_home.path().join("autostart/usagebill.desktop");
    let settings = embedded_settings(data.path(), "desk-1").with_autostart(Autostart { entry: entry.clone(), program: program.clone() });
    let mut harness = open_app(settings, manual_only(), script(data.path(), &[STEADY]));
    click(&mut harness, "Settings");
    wait_for(&mut harness, "the entry's state", Duration::from_secs(10), |app| app.settings_form().start_at_login() == Some(false));
    click(&mut harness, "Start at login");
    wait_for(&mut harness, "the entry written", Duration::from_secs(10), |app| app.settings_form().start_at_login() == Some(true));
    let validate = std::process::Command::new("desktop-file-validate").arg(&entry).output();
    let validate = validate.unwrap_or_else(|error| {
        panic!("cannot run desktop-file-validate ({error}): apt-get install desktop-file-utils (./scripts/test.sh does)")
    });
    let said = format!("{}{}", String::from_utf8_lossy(&validate.stdout), String::from_utf8_lossy(&validate.stderr));
    assert!(validate.status.success() && !said.contains("error"), "the entry does not validate: {said}");
    let text = std::fs::read_to_string(&entry).unwrap();
    let exec = format!("Exec=\"{}\"", program.display());
    assert!(text.lines().any(|line| line == exec), "{exec} in:\n{text}");
    click(&mut harness, "Start at login");
    wait_for(&mut harness, "the entry removed", Duration::from_secs(10), |app| app.settings_form().start_at_login() == Some(false));
    assert!(!entry.exists());
}

#[test]
fn an_autostart_folder_that_cannot_be_written_is_named_in_settings() {
    let data = tempfile::tempdir().unwrap();
    let config_home = tempfile::tempdir().unwrap();
    // A file where the autostart folder should be.
    std::fs::write(config_home.path().join("autostart"), "").unwrap();
    let entry = config_home.path().join("autostart/usagebill.desktop");
    let autostart = Autostart { entry: entry.clone(), program: env!("CARGO_BIN_EXE_usagebill").into() };
    let mut harness =
        open_app(embedded_settings(data.path(), "desk-1").with_autostart(autostart), manual_only(), script(data.path(), &[STEADY]));
    click(&mut harness, "Settings");
    wait_for(&mut harness, "the entry's state", Duration::from_secs(10), |app| app.settings_form().start_at_login() == Some(false));
    click(&mut harness, "Start at login");
    let message = format!("cannot create the folder of {}", entry.display());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while harness.query_by_label_contains(&message).is_none() {
        assert!(std::time::Instant::now() < deadline, "Settings never said {message:?}");
        harness.step();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(app(&harness).settings_form().start_at_login(), Some(false), "still off");
}

#[test]
fn notification_choices_and_quiet_hours_are_checked_and_saved() {
    let data = tempfile::tempdir().unwrap();
    let settings = embedded_settings(data.path(), "desk-1");
    let config_path = settings.config_path.clone();
    let mut harness = open_app(settings, manual_only(), script(data.path(), &[STEADY]));
    click(&mut harness, "Settings");
    harness.get_by_label("Quiet hours").set_text_value_accesskit("22-07");
    harness.run_ok();
    harness.get_by_label_contains("\"22-07\" is not a span of local time like \"22:00-07:00\"");
    assert!(harness.get_by_label("Save and apply").accesskit_node().is_disabled(), "nothing invalid is saved");
    harness.get_by_label("Quiet hours").set_text_value_accesskit("22:30-06:45");
    click(&mut harness, "a budget crossed or forecast to");
    click(&mut harness, "Closing the window keeps usagebill running in the tray (where there is one)");
    click(&mut harness, "Save and apply");
    wait_for(&mut harness, "the save", Duration::from_secs(15), |app| app.settings().config.notifications.quiet_hours.is_some());
    let saved = Config::load(&config_path).unwrap().notifications;
    assert_eq!(saved.quiet_hours.map(|hours| hours.to_string()).as_deref(), Some("22:30-06:45"));
    assert!(saved.threshold && !saved.budget && saved.outage, "{saved:?}");
    assert!(!Config::load(&config_path).unwrap().desktop.close_to_tray, "closing quits from now on");
}
