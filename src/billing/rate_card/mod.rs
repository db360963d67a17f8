//! The rate card: versioned prices, each version effective from a time, read from TOML.
//!
//! Prices are exact decimals written as strings (`"0.04"`): a TOML float would pass through binary
//! floating point on its way in, which is exactly what billing must never do. A version may carry
//! graduated tiers per component and per-machine overrides (a machine id or a glob); see
//! `docs/billing.md` for how tiers stay reproducible.

mod file;

use std::collections::BTreeMap;

pub use self::file::BUILT_IN_CARD;

use globset::GlobMatcher;

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
    /// Per GB of memory held for an hour while the machine was asleep (an `asleep` record): flat,
    /// never tiered, and 0 unless the card names it (reserved memory some operators bill).
    #[serde(default, with = "rust_decimal::serde::str")]
    pub asleep_memory_gb_hour: Decimal,
}

/// The card key of the price of memory held while asleep. Not a [`Component`]: it prices no
/// quantity the tiers count (an asleep window uses nothing).
pub const ASLEEP_MEMORY_KEY: &str = "asleep_memory_gb_hour";

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
    /// Replacement price of memory held while asleep.
    pub asleep_memory_gb_hour: Option<Decimal>,
}

impl PartialEq for PriceOverride {
    fn eq(&self, other: &Self) -> bool {
        self.machines == other.machines
            && self.prices == other.prices
            && self.tiers == other.tiers
            && self.asleep_memory_gb_hour == other.asleep_memory_gb_hour
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
            if let Some(price) = found.asleep_memory_gb_hour {
                prices.asleep_memory_gb_hour = price;
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
    #[error("cannot read rate card {path}")]
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

impl RateCard {
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

    /// Whether any version has graduated tiers (without them, no cost needs a tier walk).
    pub fn has_tiers(&self) -> bool {
        self.versions.iter().any(RateVersion::has_tiers)
    }
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
mod tests;
