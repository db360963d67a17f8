//! The rate card: versioned prices, each version effective from a time, read from TOML.
//!
//! Prices are exact decimals written as strings (`"0.04"`): a TOML float would pass through binary
//! floating point on its way in, which is exactly what billing must never do. A version may carry
//! graduated tiers per component and per-machine overrides (a machine id or a glob); see
//! `docs/billing.md` for how tiers stay reproducible.

use std::collections::BTreeMap;
use std::path::Path;

use globset::{Glob, GlobMatcher};

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::record::UnixMillis;

/// How a version turns a record into money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PricingModel {
    /// Usage integrated over the window: the bill does not depend on how often a machine sends.
    TimeWeighted,
    /// The prototype's `cpu% × 0.05 + mem% × 0.01` per message. Frequency-dependent: a machine that
    /// sends twice as often pays twice as much. Kept only to reproduce old bills.
    PrototypePerMessage,
}

/// Unit prices. Volumes are in decimal gigabytes (10^9 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// Per core busy for an hour (a core at 100 % for one hour).
    #[serde(with = "rust_decimal::serde::str")]
    pub cpu_core_hour: Decimal,
    /// Per GB of memory in use for an hour.
    #[serde(with = "rust_decimal::serde::str")]
    pub memory_gb_hour: Decimal,
    /// Per GB received.
    #[serde(with = "rust_decimal::serde::str")]
    pub net_rx_gb: Decimal,
    /// Per GB sent.
    #[serde(with = "rust_decimal::serde::str")]
    pub net_tx_gb: Decimal,
    /// Per GB read from disk.
    #[serde(with = "rust_decimal::serde::str")]
    pub disk_read_gb: Decimal,
    /// Per GB written to disk.
    #[serde(with = "rust_decimal::serde::str")]
    pub disk_write_gb: Decimal,
}

/// The prototype's per-message prices.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrototypePrices {
    /// Per CPU percent per message (prototype: 0.05).
    #[serde(with = "rust_decimal::serde::str")]
    pub cpu_pct: Decimal,
    /// Per memory percent per message (prototype: 0.01).
    #[serde(with = "rust_decimal::serde::str")]
    pub mem_pct: Decimal,
}

/// A priced quantity of a record; the key names the unit price of each in the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    /// Core-hours busy (`cpu_core_hour`).
    Cpu,
    /// GB-hours of memory in use (`memory_gb_hour`).
    Memory,
    /// GB received (`net_rx_gb`).
    NetRx,
    /// GB sent (`net_tx_gb`).
    NetTx,
    /// GB read from disk (`disk_read_gb`).
    DiskRead,
    /// GB written to disk (`disk_write_gb`).
    DiskWrite,
}

impl Component {
    /// Every component, in line order.
    pub const ALL: [Component; 6] =
        [Component::Cpu, Component::Memory, Component::NetRx, Component::NetTx, Component::DiskRead, Component::DiskWrite];

    /// The card key of the component's unit price.
    pub fn price_key(self) -> &'static str {
        match self {
            Component::Cpu => "cpu_core_hour",
            Component::Memory => "memory_gb_hour",
            Component::NetRx => "net_rx_gb",
            Component::NetTx => "net_tx_gb",
            Component::DiskRead => "disk_read_gb",
            Component::DiskWrite => "disk_write_gb",
        }
    }

    fn from_price_key(key: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|component| component.price_key() == key)
    }
}

impl Prices {
    /// The unit price of `component`.
    pub fn of(&self, component: Component) -> Decimal {
        match component {
            Component::Cpu => self.cpu_core_hour,
            Component::Memory => self.memory_gb_hour,
            Component::NetRx => self.net_rx_gb,
            Component::NetTx => self.net_tx_gb,
            Component::DiskRead => self.disk_read_gb,
            Component::DiskWrite => self.disk_write_gb,
        }
    }

    fn set(&mut self, component: Component, price: Decimal) {
        let slot = match component {
            Component::Cpu => &mut self.cpu_core_hour,
            Component::Memory => &mut self.memory_gb_hour,
            Component::NetRx => &mut self.net_rx_gb,
            Component::NetTx => &mut self.net_tx_gb,
            Component::DiskRead => &mut self.disk_read_gb,
            Component::DiskWrite => &mut self.disk_write_gb,
        };
        *slot = price;
    }
}

/// One step of a graduated price: once a machine has used `from` units of a component in the
/// calendar month (UTC), further units cost `price`. Below the first step the flat price applies.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Units used this month (core-hours, GB-hours or GB) from which `price` applies.
    #[serde(with = "rust_decimal::serde::str")]
    pub from: Decimal,
    /// Unit price from `from` on.
    #[serde(with = "rust_decimal::serde::str")]
    pub price: Decimal,
}

/// Graduated tiers per component, each list sorted by `from`.
pub type TierSchedules = BTreeMap<Component, Vec<Tier>>;

/// Prices that replace the version's for the machines a pattern matches.
#[derive(Debug, Clone)]
pub struct PriceOverride {
    /// A machine id or a glob (`gpu-*`).
    pub machines: String,
    matcher: GlobMatcher,
    /// Replacement flat prices; a named component drops the version's tiers for it.
    pub prices: BTreeMap<Component, Decimal>,
    /// Replacement tiers.
    pub tiers: TierSchedules,
}

impl PartialEq for PriceOverride {
    fn eq(&self, other: &Self) -> bool {
        self.machines == other.machines && self.prices == other.prices && self.tiers == other.tiers
    }
}

impl Eq for PriceOverride {}

impl PriceOverride {
    /// Whether the override applies to `machine_id`.
    pub fn matches(&self, machine_id: &str) -> bool {
        self.matcher.is_match(machine_id)
    }
}

/// One version of the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateVersion {
    /// Name every priced line carries, e.g. `2026-01`.
    pub version: String,
    /// Windows starting at or after this instant use this version (until the next version).
    pub effective_from: UnixMillis,
    /// ISO 4217 code, e.g. `USD`.
    pub currency: String,
    /// Digits after the decimal point of the currency's minor unit (2 for USD).
    pub minor_unit_digits: u32,
    /// How records are priced.
    pub model: PricingModel,
    /// Prices of the time-weighted model.
    pub prices: Prices,
    /// Prices of the prototype model.
    pub prototype: PrototypePrices,
    /// Graduated tiers of the time-weighted model, per component.
    pub tiers: TierSchedules,
    /// Per-machine replacements, first match wins.
    pub overrides: Vec<PriceOverride>,
}

impl RateVersion {
    /// The override that applies to `machine_id`, if any (the first in file order).
    pub fn override_for(&self, machine_id: &str) -> Option<&PriceOverride> {
        self.overrides.iter().find(|candidate| candidate.matches(machine_id))
    }

    /// The flat prices `machine_id` pays under this version (overrides applied).
    pub fn prices_for(&self, machine_id: &str) -> Prices {
        let mut prices = self.prices.clone();
        if let Some(found) = self.override_for(machine_id) {
            for (component, price) in &found.prices {
                prices.set(*component, *price);
            }
        }
        prices
    }

    /// The graduated tiers `machine_id` has for `component` (empty: the flat price throughout).
    pub fn tiers_for(&self, machine_id: &str, component: Component) -> &[Tier] {
        if let Some(found) = self.override_for(machine_id) {
            if let Some(tiers) = found.tiers.get(&component) {
                return tiers;
            }
            if found.prices.contains_key(&component) {
                return &[];
            }
        }
        self.tiers.get(&component).map_or(&[], Vec::as_slice)
    }

    /// Whether any machine can have a graduated price under this version.
    pub fn has_tiers(&self) -> bool {
        self.model == PricingModel::TimeWeighted
            && (!self.tiers.is_empty() || self.overrides.iter().any(|candidate| !candidate.tiers.is_empty()))
    }
}

/// All versions, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateCard {
    versions: Vec<RateVersion>,
}

/// A rate card that cannot be used; names the file, the version and the field.
#[derive(Debug, thiserror::Error)]
pub enum RateCardError {
    /// The file cannot be read.
    #[error("cannot read rate card {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML does not match the schema.
    #[error("rate card {origin}: {message}")]
    Parse {
        /// The file or `built-in`.
        origin: String,
        /// What is wrong, with the key.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CardFile {
    #[serde(rename = "version")]
    versions: Vec<VersionFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionFile {
    name: String,
    effective_from: String,
    currency: String,
    #[serde(default = "two")]
    minor_unit_digits: u32,
    #[serde(default = "time_weighted")]
    model: PricingModel,
    #[serde(flatten)]
    prices: Prices,
    #[serde(default = "prototype_defaults")]
    prototype: PrototypePrices,
    #[serde(default)]
    tiers: BTreeMap<String, Vec<Tier>>,
    #[serde(default, rename = "override")]
    overrides: Vec<OverrideFile>,
}

// No `deny_unknown_fields`: serde does not support it with `flatten`; every key the map catches is
// checked against the component names instead.
#[derive(Deserialize)]
struct OverrideFile {
    machines: String,
    #[serde(default)]
    tiers: BTreeMap<String, Vec<Tier>>,
    #[serde(flatten)]
    prices: BTreeMap<String, String>,
}

fn two() -> u32 {
    2
}

fn time_weighted() -> PricingModel {
    PricingModel::TimeWeighted
}

fn prototype_defaults() -> PrototypePrices {
    PrototypePrices { cpu_pct: Decimal::new(5, 2), mem_pct: Decimal::new(1, 2) }
}

/// The card used when none is configured.
pub const BUILT_IN_CARD: &str = include_str!("../../assets/rate-card.toml");

impl RateCard {
    /// The built-in card (`assets/rate-card.toml`).
    pub fn built_in() -> RateCard {
        RateCard::parse(BUILT_IN_CARD, "built-in").expect("the built-in rate card is valid")
    }

    /// Reads a card file, or the built-in card when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<RateCard, RateCardError> {
        let Some(path) = path else { return Ok(RateCard::built_in()) };
        let text = std::fs::read_to_string(path).map_err(|source| RateCardError::Read { path: path.display().to_string(), source })?;
        RateCard::parse(&text, &path.display().to_string())
    }

    /// Parses card TOML; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<RateCard, RateCardError> {
        let fail = |message: String| RateCardError::Parse { origin: origin.to_owned(), message };
        let file: CardFile = toml::from_str(text).map_err(|error| fail(error.to_string()))?;
        if file.versions.is_empty() {
            return Err(fail("needs at least one [[version]]".into()));
        }
        let mut versions = Vec::with_capacity(file.versions.len());
        for raw in file.versions {
            let effective_from = UnixMillis::parse_rfc3339(&raw.effective_from).ok_or_else(|| {
                fail(format!("version {:?}: `effective_from` = {:?} is not an RFC 3339 time", raw.name, raw.effective_from))
            })?;
            if raw.currency.len() != 3 || !raw.currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(fail(format!("version {:?}: `currency` = {:?} is not a 3-letter ISO 4217 code", raw.name, raw.currency)));
            }
            if raw.minor_unit_digits > 6 {
                return Err(fail(format!("version {:?}: `minor_unit_digits` = {} must be 0 to 6", raw.name, raw.minor_unit_digits)));
            }
            let prices = &raw.prices;
            let named = [
                ("cpu_core_hour", prices.cpu_core_hour),
                ("memory_gb_hour", prices.memory_gb_hour),
                ("net_rx_gb", prices.net_rx_gb),
                ("net_tx_gb", prices.net_tx_gb),
                ("disk_read_gb", prices.disk_read_gb),
                ("disk_write_gb", prices.disk_write_gb),
                ("prototype.cpu_pct", raw.prototype.cpu_pct),
                ("prototype.mem_pct", raw.prototype.mem_pct),
            ];
            if let Some((key, price)) = named.iter().find(|(_, price)| price.is_sign_negative()) {
                return Err(fail(format!("version {:?}: `{key}` = \"{price}\" must not be negative", raw.name)));
            }
            let tiers = tier_schedules(&raw.tiers, &format!("version {:?}: tiers", raw.name)).map_err(fail)?;
            let overrides =
                raw.overrides.iter().map(|found| price_override(found, &raw.name)).collect::<Result<Vec<_>, String>>().map_err(fail)?;
            versions.push(RateVersion {
                version: raw.name,
                effective_from,
                currency: raw.currency,
                minor_unit_digits: raw.minor_unit_digits,
                model: raw.model,
                prices: raw.prices,
                prototype: raw.prototype,
                tiers,
                overrides,
            });
        }
        versions.sort_by_key(|version| version.effective_from);
        for pair in versions.windows(2) {
            if pair[0].version == pair[1].version || pair[0].effective_from == pair[1].effective_from {
                return Err(fail(format!("versions {:?} and {:?} share a name or an effective_from", pair[0].version, pair[1].version)));
            }
        }
        Ok(RateCard { versions })
    }

    /// The version in force at `instant`: the latest one effective at or before it (else the oldest).
    pub fn version_at(&self, instant: UnixMillis) -> &RateVersion {
        let after = self.versions.partition_point(|version| version.effective_from <= instant);
        &self.versions[after.saturating_sub(1)]
    }

    /// The version named `name`.
    pub fn version_named(&self, name: &str) -> Option<&RateVersion> {
        self.versions.iter().find(|version| version.version == name)
    }

    /// All versions, oldest first.
    pub fn versions(&self) -> &[RateVersion] {
        &self.versions
    }
}

fn component_named(key: &str, context: &str) -> Result<Component, String> {
    Component::from_price_key(key).ok_or_else(|| {
        let known: Vec<_> = Component::ALL.iter().map(|component| component.price_key()).collect();
        format!("{context}: `{key}` is not a priced component (one of {})", known.join(", "))
    })
}

fn decimal_price(text: &str, key: &str, context: &str) -> Result<Decimal, String> {
    let price: Decimal = text.parse().map_err(|_| format!("{context}: `{key}` = {text:?} is not a decimal number"))?;
    if price.is_sign_negative() {
        return Err(format!("{context}: `{key}` = \"{price}\" must not be negative"));
    }
    Ok(price)
}

/// Checks tiers: known components, non-negative prices, `from` above zero and strictly rising.
fn tier_schedules(raw: &BTreeMap<String, Vec<Tier>>, context: &str) -> Result<TierSchedules, String> {
    let mut schedules = TierSchedules::new();
    for (key, tiers) in raw {
        let component = component_named(key, context)?;
        let mut previous = Decimal::ZERO;
        for tier in tiers {
            if tier.from <= previous {
                return Err(format!("{context}.{key}: `from` = \"{}\" must be above 0 and above the previous tier's", tier.from));
            }
            if tier.price.is_sign_negative() {
                return Err(format!("{context}.{key}: `price` = \"{}\" must not be negative", tier.price));
            }
            previous = tier.from;
        }
        schedules.insert(component, tiers.clone());
    }
    Ok(schedules)
}

fn price_override(raw: &OverrideFile, version: &str) -> Result<PriceOverride, String> {
    let context = format!("version {version:?}: override {:?}", raw.machines);
    let matcher = Glob::new(&raw.machines)
        .map_err(|error| format!("{context}: `machines` = {:?} is not a machine id or glob: {error}", raw.machines))?
        .compile_matcher();
    let mut prices = BTreeMap::new();
    for (key, text) in &raw.prices {
        prices.insert(component_named(key, &context)?, decimal_price(text, key, &context)?);
    }
    let tiers = tier_schedules(&raw.tiers, &format!("{context}: tiers"))?;
    Ok(PriceOverride { machines: raw.machines.clone(), matcher, prices, tiers })
}

/// A card version in TOML for tests: 0.04 per core-hour (every other component free) and a single
/// CPU tier, `tier_price` from `tier_from` core-hours; concatenate several for a multi-version card.
#[cfg(test)]
pub(crate) fn cpu_tiered_version(name: &str, effective_from: &str, tier_from: &str, tier_price: &str) -> String {
    format!(
        "[[version]]\nname = \"{name}\"\neffective_from = \"{effective_from}\"\ncurrency = \"USD\"\n\
         cpu_core_hour = \"0.04\"\nmemory_gb_hour = \"0\"\nnet_rx_gb = \"0\"\nnet_tx_gb = \"0\"\n\
         disk_read_gb = \"0\"\ndisk_write_gb = \"0\"\n\
         tiers.cpu_core_hour = [{{ from = \"{tier_from}\", price = \"{tier_price}\" }}]\n"
    )
}

#[cfg(test)]
mod tests {
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
        let first_version_end = TWO_VERSIONS.find("[[version]]\n        name = \"v2\"").unwrap();
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
        let first_version_end = TWO_VERSIONS.find("[[version]]\n        name = \"v2\"").unwrap();
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
}
