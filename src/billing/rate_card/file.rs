//! Reading a card: its TOML form, and every check that turns it into [`RateCard`] versions, with
//! errors that name the version, the key and the value.

use std::collections::BTreeMap;
use std::path::Path;

use globset::Glob;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::*;
use crate::record::UnixMillis;

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
pub const BUILT_IN_CARD: &str = include_str!("../../../assets/rate-card.toml");

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
                (ASLEEP_MEMORY_KEY, prices.asleep_memory_gb_hour),
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
}

fn component_named(key: &str, context: &str) -> Result<Component, String> {
    if key == ASLEEP_MEMORY_KEY {
        return Err(format!("{context}: `{key}` is a flat price (an asleep window uses nothing the tiers count)"));
    }
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
    let mut asleep_memory_gb_hour = None;
    for (key, text) in &raw.prices {
        if key == ASLEEP_MEMORY_KEY {
            asleep_memory_gb_hour = Some(decimal_price(text, key, &context)?);
        } else {
            prices.insert(component_named(key, &context)?, decimal_price(text, key, &context)?);
        }
    }
    let tiers = tier_schedules(&raw.tiers, &format!("{context}: tiers"))?;
    Ok(PriceOverride { machines: raw.machines.clone(), matcher, prices, tiers, asleep_memory_gb_hour })
}
