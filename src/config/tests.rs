use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/usagebill.toml"))
}

#[test]
fn an_empty_file_is_the_default() {
    assert_eq!(parse("").unwrap(), Config::default());
}

#[test]
fn the_example_config_parses() {
    let text = include_str!("../../config.example.toml");
    parse(text).unwrap();
}

#[test]
fn bad_values_name_the_file_key_and_value() {
    let cases = [
        ("[agent]\nsample_interval = \"50ms\"", "agent.sample_interval", "50ms"),
        ("[agent]\nsend_interval = \"500ms\"", "agent.send_interval", "500ms"),
        ("[agent]\nmachine_id = \"a b\"", "agent.machine_id", "a b"),
        ("[kafka]\nbrokers = [\"localhost\"]", "kafka.brokers", "localhost"),
        ("[kafka]\ntopic = \"bad topic\"", "kafka.topic", "bad topic"),
        ("[kafka]\npartitions = 0", "kafka.partitions", "0"),
        ("[worker]\nbatch_size = 0", "worker.batch_size", "0"),
    ];
    for (text, key, value) in cases {
        let error = parse(text).unwrap_err().to_string();
        assert!(error.contains("/etc/usagebill.toml"), "{error}");
        assert!(error.contains(key), "{error} should name {key}");
        assert!(error.contains(value), "{error} should show {value}");
    }
}

#[test]
fn bad_durations_and_unknown_keys_are_rejected_by_name() {
    let error = parse("[agent]\nmax_window = \"forever\"").unwrap_err().to_string();
    assert!(error.contains("forever") && error.contains("max_window"), "{error}");
    let error = parse("[kafka]\nbroker = [\"a:1\"]").unwrap_err().to_string();
    assert!(error.contains("did you mean `brokers`?"), "{error}");
}

#[test]
fn saves_and_loads_the_same_config() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("nested/config.toml");
    let mut config = Config::default();
    config.kafka.brokers = vec!["localhost:9092".into()];
    config.kafka.properties.insert("security.protocol".into(), "SASL_SSL".into());
    config.agent.rules = vec!["cpu_pct > 90 for 30s".into()];
    config.save(&path).unwrap();
    assert_eq!(Config::load(&path).unwrap(), config);
}

#[test]
fn brokers_need_a_host_and_a_port() {
    assert!(validate_broker("kafka-1.internal:9092").is_ok());
    assert!(validate_broker("[::1]:9092").is_ok());
    for bad in ["localhost", ":9092", "host:0", "host:99999", "a b:1"] {
        assert!(validate_broker(bad).is_err(), "{bad}");
    }
}

#[test]
fn secrets_stay_out_of_debug_and_parse_errors() {
    let config = parse("[kafka.properties]\n\"sasl.password\" = \"hunter2-secret\"\n\"sasl.username\" = \"usagebill\"\n").unwrap();
    assert_eq!(config.kafka.properties["sasl.password"], "hunter2-secret", "the secret itself is kept as written");
    let shown = format!("{config:?} {:#?}", config.kafka);
    assert!(!shown.contains("hunter2") && shown.contains("sasl.password") && shown.contains("usagebill"), "{shown}");
    for text in [
        "[kafka.properties]\n\"sasl.password\" = hunter2-secret\n",
        "[kafka.properties]\n\"ssl.key.password\" = 20242025\n",
        "[kafka]\nproperties = { \"sasl.username\" = \"me\" }\n\"sasl.password\" = 'hunter2-secret'\nbogus = 1\n",
    ] {
        let error = parse(text).unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("20242025"), "{shown}");
    }
}
