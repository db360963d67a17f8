//! The rate card: versioned prices, each version effective from a time, read from TOML.
//!
//! Prices are exact decimals written as strings (`"0.04"`): a TOML float would pass through binary
//! floating point on its way in, which is exactly what billing must never do.

use std::path::Path;

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
            versions.push(RateVersion {
                version: raw.name,
                effective_from,
                currency: raw.currency,
                minor_unit_digits: raw.minor_unit_digits,
                model: raw.model,
                prices: raw.prices,
                prototype: raw.prototype,
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

    #[test]
    fn the_built_in_card_parses() {
        assert!(!RateCard::built_in().versions().is_empty());
    }
}
