//! The Settings tab: errors beside their fields, saving to the config file, and secret Kafka
//! properties listed without their values.

use std::time::Duration;

use egui_kittest::kittest::{By, NodeT, Queryable};
use usagebill::config::Config;

use super::{AppHarness, STEADY, click, embedded_settings, manual_only, open_app, script, wait_for};

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
