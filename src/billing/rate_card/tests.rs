use super::*;

const TWO_VERSIONS: &str = r#"
    [[version]]
    name = "v1"
    effective_from = "2026-01-01T00:00:00Z"
    currency = "USD"
    cpu_core_hour = "0.04"
    memory_gb_hour = "0.005"
    net_rx_gb = "0"
    net_tx_gb = "0.09"
    disk_read_gb = "0.01"
    disk_write_gb = "0.01"

    [[version]]
    name = "v2"
    effective_from = "2026-06-01T00:00:00Z"
    currency = "USD"
    cpu_core_hour = "0.05"
    memory_gb_hour = "0.005"
    net_rx_gb = "0"
    net_tx_gb = "0.09"
    disk_read_gb = "0.01"
    disk_write_gb = "0.01"
"#;

#[test]
fn picks_the_version_in_force() {
    let card = RateCard::parse(TWO_VERSIONS, "test").unwrap();
    let may = UnixMillis::parse_rfc3339("2026-05-31T23:59:59.999Z").unwrap();
    let june = UnixMillis::parse_rfc3339("2026-06-01T00:00:00Z").unwrap();
    assert_eq!(card.version_at(may).version, "v1");
    assert_eq!(card.version_at(june).version, "v2");
    assert_eq!(card.version_at(UnixMillis(0)).version, "v1", "before the first version, the first applies");
    assert_eq!(card.version_named("v2").unwrap().prices.cpu_core_hour, Decimal::new(5, 2));
}

#[test]
fn float_prices_are_refused() {
    let text = TWO_VERSIONS.replace("cpu_core_hour = \"0.04\"", "cpu_core_hour = 0.04");
    let error = RateCard::parse(&text, "card.toml").unwrap_err().to_string();
    assert!(error.contains("card.toml"), "{error}");
}

#[test]
fn negative_prices_and_bad_currencies_name_the_key() {
    let negative = TWO_VERSIONS.replace("\"0.09\"", "\"-0.09\"");
    let error = RateCard::parse(&negative, "card.toml").unwrap_err().to_string();
    assert!(error.contains("net_tx_gb") && error.contains("-0.09"), "{error}");
    let currency = TWO_VERSIONS.replacen("\"USD\"", "\"dollars\"", 1);
    let error = RateCard::parse(&currency, "card.toml").unwrap_err().to_string();
    assert!(error.contains("currency") && error.contains("dollars"), "{error}");
}

const WITH_TIERS_AND_OVERRIDES: &str = r#"
    tiers.cpu_core_hour = [{ from = "100", price = "0.03" }, { from = "1000", price = "0.02" }]

    [[version.override]]
    machines = "gpu-*"
    cpu_core_hour = "0.20"

    [[version.override]]
    machines = "build-01"
    tiers.net_tx_gb = [{ from = "10", price = "0" }]
"#;

fn tiered_card() -> RateCard {
    let first_version_end = TWO_VERSIONS.find("[[version]]\n    name = \"v2\"").unwrap();
    let text = format!("{}{}", &TWO_VERSIONS[..first_version_end], WITH_TIERS_AND_OVERRIDES);
    RateCard::parse(&text, "tiers.toml").unwrap()
}

#[test]
fn overrides_replace_prices_and_tiers_for_matching_machines() {
    let card = tiered_card();
    let version = &card.versions()[0];
    assert_eq!(version.prices_for("gpu-7").cpu_core_hour, Decimal::new(20, 2));
    assert_eq!(version.prices_for("cpu-7").cpu_core_hour, Decimal::new(4, 2));
    assert!(version.tiers_for("gpu-7", Component::Cpu).is_empty(), "an overridden price drops the version's tiers");
    assert_eq!(version.tiers_for("cpu-7", Component::Cpu).len(), 2);
    assert_eq!(version.tiers_for("build-01", Component::NetTx)[0].from, Decimal::from(10));
    assert_eq!(version.tiers_for("build-01", Component::Cpu).len(), 2, "tiers it does not name stay the version's");
    assert!(version.has_tiers());
}

#[test]
fn bad_tiers_and_overrides_name_the_key_and_value() {
    let cases = [
        (WITH_TIERS_AND_OVERRIDES.replace("\"1000\"", "\"50\""), "from", "50"),
        (WITH_TIERS_AND_OVERRIDES.replace("tiers.cpu_core_hour", "tiers.gpu_hour"), "gpu_hour", "not a priced component"),
        (WITH_TIERS_AND_OVERRIDES.replace("\"0.20\"", "\"-1\""), "cpu_core_hour", "-1"),
        (WITH_TIERS_AND_OVERRIDES.replace("\"gpu-*\"", "\"gpu-[\""), "machines", "gpu-["),
    ];
    let first_version_end = TWO_VERSIONS.find("[[version]]\n    name = \"v2\"").unwrap();
    for (tail, key, value) in cases {
        let text = format!("{}{}", &TWO_VERSIONS[..first_version_end], tail);
        let error = RateCard::parse(&text, "tiers.toml").unwrap_err().to_string();
        assert!(error.contains(key) && error.contains(value), "{error} should name {key} and {value}");
    }
}

#[test]
fn the_built_in_card_parses() {
    assert!(!RateCard::built_in().versions().is_empty());
}

#[test]
fn memory_held_asleep_is_free_unless_named_and_never_tiered() {
    let card = RateCard::parse(TWO_VERSIONS, "test").unwrap();
    assert_eq!(card.versions()[0].prices.asleep_memory_gb_hour, Decimal::ZERO, "0 when the card does not name it");
    let first_version_end = TWO_VERSIONS.find("[[version]]\n    name = \"v2\"").unwrap();
    let named = format!(
        "{}    asleep_memory_gb_hour = \"0.002\"\n\n    [[version.override]]\n    machines = \"gpu-*\"\n    asleep_memory_gb_hour = \"0.004\"\n",
        &TWO_VERSIONS[..first_version_end]
    );
    let version = RateCard::parse(&named, "test").unwrap().versions()[0].clone();
    assert_eq!(version.prices_for("cpu-1").asleep_memory_gb_hour, Decimal::new(2, 3));
    assert_eq!(version.prices_for("gpu-1").asleep_memory_gb_hour, Decimal::new(4, 3), "an override may name it");
    assert_eq!(version.prices_for("gpu-1").memory_gb_hour, Decimal::new(5, 3), "and leaves the other prices be");
    let tiered = named.replace("asleep_memory_gb_hour = \"0.002\"", "tiers.asleep_memory_gb_hour = [{ from = \"1\", price = \"0\" }]");
    let error = RateCard::parse(&tiered, "card.toml").unwrap_err().to_string();
    assert!(error.contains("asleep_memory_gb_hour") && error.contains("flat price"), "{error}");
    let negative = named.replace("\"0.002\"", "\"-0.002\"");
    let error = RateCard::parse(&negative, "card.toml").unwrap_err().to_string();
    assert!(error.contains("asleep_memory_gb_hour") && error.contains("-0.002"), "{error}");
}
