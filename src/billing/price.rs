//! Pricing one record with one rate-card version, in exact decimal arithmetic.
//!
//! Products are formed first and divided once, so the only rounding is rust_decimal's 28
//! significant digits on that division; the same record and version always give the same line.
//!
//! Only a `usage` window is priced by its usage. A window the machine did not live costs nothing,
//! whatever the model: a `clock_step` window is no time at all, and an `asleep` one is charged only
//! the memory it held at the card's `asleep_memory_gb_hour` (0 unless the card names it).

use std::str::FromStr;

use rust_decimal::Decimal;

use super::rate_card::{Component, PricingModel, RateVersion};
use crate::record::{RecordKind, UsageRecord};

const MILLIS_PER_HOUR: i64 = 3_600_000;
const BYTES_PER_GB: i64 = 1_000_000_000;

/// How much of one component a record used, kept as an exact product and the divisors that turn
/// it into the card's unit (core-hours, GB-hours, GB). Pricing multiplies by the unit price before
/// dividing, so a line is rounded once; the tiers take the quantity itself. This is the one place
/// the units are defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measure {
    amount: Decimal,
    divisors: &'static [i64],
}

impl Measure {
    /// `component`'s usage in `record` (its raw reading, whatever the record's kind); `None` when
    /// the product overflows exact arithmetic.
    pub fn of(record: &UsageRecord, component: Component) -> Option<Measure> {
        const CORE_HOURS: &[i64] = &[100 * MILLIS_PER_HOUR];
        const GB_HOURS: &[i64] = &[BYTES_PER_GB, MILLIS_PER_HOUR];
        const GB: &[i64] = &[BYTES_PER_GB];
        let millis = Decimal::from(record.window_millis());
        let (amount, divisors) = match component {
            Component::Cpu => (product(&[exact(record.cpu_pct), Decimal::from(record.cpu_cores), millis])?, CORE_HOURS),
            Component::Memory => (product(&[Decimal::from(record.mem_used_bytes), millis])?, GB_HOURS),
            Component::NetRx => (Decimal::from(record.net_rx_bytes), GB),
            Component::NetTx => (Decimal::from(record.net_tx_bytes), GB),
            Component::DiskRead => (Decimal::from(record.disk_read_bytes), GB),
            Component::DiskWrite => (Decimal::from(record.disk_write_bytes), GB),
        };
        Some(Measure { amount, divisors })
    }

    /// The quantity in the card's unit.
    pub fn quantity(&self) -> Decimal {
        self.divided(self.amount).unwrap_or_default()
    }

    /// The quantity at `unit_price`, multiplied before it is divided; `None` on overflow.
    pub fn priced_at(&self, unit_price: Decimal) -> Option<Decimal> {
        self.divided(self.amount.checked_mul(unit_price)?)
    }

    fn divided(&self, numerator: Decimal) -> Option<Decimal> {
        self.divisors.iter().try_fold(numerator, |value, divisor| value.checked_div(Decimal::from(*divisor)))
    }
}

/// The price of one record, per component, exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLine {
    /// Rate-card version used.
    pub card_version: String,
    /// Currency of every amount.
    pub currency: String,
    /// CPU core-hours (or the prototype's CPU term).
    pub cpu: Decimal,
    /// Memory GB-hours (or the prototype's memory term).
    pub memory: Decimal,
    /// Network received.
    pub net_rx: Decimal,
    /// Network sent.
    pub net_tx: Decimal,
    /// Disk read.
    pub disk_read: Decimal,
    /// Disk written.
    pub disk_write: Decimal,
    /// Sum of the components.
    pub total: Decimal,
}

impl PricedLine {
    /// The amounts in column order: cpu, memory, net_rx, net_tx, disk_read, disk_write, total.
    pub fn amounts(&self) -> [Decimal; 7] {
        [self.cpu, self.memory, self.net_rx, self.net_tx, self.disk_read, self.disk_write, self.total]
    }
}

/// A record whose amounts overflow exact arithmetic (a broken meter: 28 digits hold any real bill).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot price record {record_id}: {component} overflows exact decimal arithmetic")]
pub struct PriceError {
    /// The record.
    pub record_id: String,
    /// The component that overflowed.
    pub component: &'static str,
}

/// Prices `record` with `version`.
pub fn price(record: &UsageRecord, version: &RateVersion) -> Result<PricedLine, PriceError> {
    let overflow = |component: Component| PriceError { record_id: record.id(), component: component.price_key() };
    let at = |component: Component, unit_price: Decimal| {
        Measure::of(record, component).and_then(|measure| measure.priced_at(unit_price)).ok_or_else(|| overflow(component))
    };
    let zero = Decimal::ZERO;
    let (cpu, memory, net_rx, net_tx, disk_read, disk_write) = match (record.kind, version.model) {
        // Not lived: the model's terms do not apply (the prototype's would charge a sleep per message).
        (RecordKind::ClockStep, _) => (zero, zero, zero, zero, zero, zero),
        (RecordKind::Asleep, _) => {
            (zero, at(Component::Memory, version.prices_for(&record.machine_id).asleep_memory_gb_hour)?, zero, zero, zero, zero)
        }
        (RecordKind::Usage, PricingModel::TimeWeighted) => {
            // Graduated tiers are not applied here: a line holds the flat price, and tiers are priced
            // over a machine's month by the cost engine (see `cost_engine::tiers` and docs/billing.md).
            let prices = version.prices_for(&record.machine_id);
            (
                at(Component::Cpu, prices.cpu_core_hour)?,
                at(Component::Memory, prices.memory_gb_hour)?,
                at(Component::NetRx, prices.net_rx_gb)?,
                at(Component::NetTx, prices.net_tx_gb)?,
                at(Component::DiskRead, prices.disk_read_gb)?,
                at(Component::DiskWrite, prices.disk_write_gb)?,
            )
        }
        (RecordKind::Usage, PricingModel::PrototypePerMessage) => {
            let cpu = exact(record.cpu_pct) * version.prototype.cpu_pct;
            let mem_pct = (Decimal::from(record.mem_used_bytes) * Decimal::ONE_HUNDRED)
                .checked_div(Decimal::from(record.mem_total_bytes))
                .ok_or_else(|| overflow(Component::Memory))?;
            (cpu, mem_pct * version.prototype.mem_pct, zero, zero, zero, zero)
        }
    };
    let total = [cpu, memory, net_rx, net_tx, disk_read, disk_write]
        .into_iter()
        .try_fold(Decimal::ZERO, |sum, part| sum.checked_add(part))
        .ok_or(PriceError { record_id: record.id(), component: "total" })?;
    Ok(PricedLine {
        card_version: version.version.clone(),
        currency: version.currency.clone(),
        cpu: cpu.normalize(),
        memory: memory.normalize(),
        net_rx: net_rx.normalize(),
        net_tx: net_tx.normalize(),
        disk_read: disk_read.normalize(),
        disk_write: disk_write.normalize(),
        total: total.normalize(),
    })
}

/// The decimal a float prints as: `37.125` is priced as 37.125, not as its binary neighbour.
pub fn exact(value: f64) -> Decimal {
    Decimal::from_str(&value.to_string()).unwrap_or_else(|_| Decimal::from_f64_retain(value).unwrap_or_default())
}

fn product(factors: &[Decimal]) -> Option<Decimal> {
    factors.iter().try_fold(Decimal::ONE, |acc, factor| acc.checked_mul(*factor))
}

/// Rounds an exact amount to the currency's minor unit, half away from zero (done once, for display).
pub fn round_for_display(amount: Decimal, minor_unit_digits: u32) -> Decimal {
    amount.round_dp_with_strategy(minor_unit_digits, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::rate_card::RateCard;
    use crate::record::UnixMillis;

    fn steady(window_millis: i64, seq: u64) -> UsageRecord {
        UsageRecord::steady("m", seq, UnixMillis(1_767_225_600_000), window_millis)
    }

    #[test]
    fn an_hour_at_half_of_eight_cores_is_four_core_hours() {
        let card = RateCard::built_in();
        let record = steady(3_600_000, 1);
        let line = price(&record, card.version_at(record.start)).unwrap();
        assert_eq!(line.cpu, Decimal::from_str("0.16").unwrap());
        assert_eq!(line.net_tx, Decimal::from_str("0.324").unwrap(), "3.6 GB at 0.09");
        assert_eq!(line.disk_read, Decimal::from_str("0.036").unwrap());
        assert_eq!(line.memory, Decimal::from_str("0.02147483648").unwrap(), "4 GiB = 4.294967296 GB for an hour at 0.005");
        assert_eq!(line.card_version, "2026-01");
    }

    #[test]
    fn the_bill_does_not_depend_on_how_often_a_machine_sends() {
        let card = RateCard::built_in();
        let version = card.version_at(UnixMillis(1_767_225_600_000));
        let bill = |window_millis: i64| -> Decimal {
            (1..=3_600_000 / window_millis).map(|seq| price(&steady(window_millis, seq as u64), version).unwrap().total).sum()
        };
        let hourly = bill(3_600_000);
        for window_millis in [1_000, 5_000, 60_000] {
            let difference = (bill(window_millis) - hourly).abs();
            assert!(difference < Decimal::new(1, 20), "window {window_millis} ms differs by {difference}");
        }
    }

    #[test]
    fn the_prototype_model_grows_with_message_count() {
        let mut card = RateCard::built_in().versions()[0].clone();
        card.model = PricingModel::PrototypePerMessage;
        let line = price(&steady(1_000, 1), &card).unwrap();
        assert_eq!(line.total, Decimal::from_str("2.75").unwrap(), "50 × 0.05 + 25 × 0.01");
    }

    /// An hour asleep holding 4 GiB (4.294967296 GB), or an hour of a clock step, as an agent writes them.
    fn unlived_hour(kind: RecordKind) -> UsageRecord {
        steady(3_600_000, 1).unlived(kind)
    }

    fn card_with_asleep_memory_at(price: &str) -> RateCard {
        let text = crate::billing::rate_card::BUILT_IN_CARD
            .replace("disk_write_gb = \"0.01\"", &format!("disk_write_gb = \"0.01\"\nasleep_memory_gb_hour = \"{price}\""));
        RateCard::parse(&text, "test").unwrap()
    }

    #[test]
    fn an_hour_asleep_costs_nothing_under_the_built_in_card() {
        let card = RateCard::built_in();
        let asleep = unlived_hour(RecordKind::Asleep);
        assert_eq!(asleep.mem_used_bytes, 4 << 30, "the memory held when it fell asleep is kept");
        let line = price(&asleep, card.version_at(asleep.start)).unwrap();
        assert_eq!(line.amounts(), [Decimal::ZERO; 7]);
        assert_eq!(line.card_version, "2026-01");
    }

    #[test]
    fn memory_held_asleep_is_charged_flat_at_the_asleep_price() {
        let card = card_with_asleep_memory_at("0.001");
        let asleep = unlived_hour(RecordKind::Asleep);
        let line = price(&asleep, card.version_at(asleep.start)).unwrap();
        let expected = Decimal::from_str("0.004294967296").unwrap();
        assert_eq!(line.memory, expected, "4.294967296 GB for an hour at 0.001, not at memory_gb_hour's 0.005");
        assert_eq!(line.total, expected);
        assert_eq!([line.cpu, line.net_rx, line.net_tx, line.disk_read, line.disk_write], [Decimal::ZERO; 5]);
        // A usage window under the same card is priced as before.
        let used = steady(3_600_000, 2);
        assert_eq!(price(&used, card.version_at(used.start)).unwrap(), price(&used, RateCard::built_in().version_at(used.start)).unwrap());
    }

    #[test]
    fn a_clock_step_costs_nothing_whatever_the_card_or_model() {
        let mut version = card_with_asleep_memory_at("0.001").versions()[0].clone();
        let stepped = UsageRecord { mem_used_bytes: 1 << 30, ..unlived_hour(RecordKind::ClockStep) };
        assert_eq!(price(&stepped, &version).unwrap().amounts(), [Decimal::ZERO; 7]);
        version.model = PricingModel::PrototypePerMessage;
        assert_eq!(price(&stepped, &version).unwrap().amounts(), [Decimal::ZERO; 7]);
        let asleep = price(&unlived_hour(RecordKind::Asleep), &version).unwrap();
        assert_eq!(asleep.total, Decimal::from_str("0.004294967296").unwrap(), "no per-message charge for a sleep");
    }

    #[test]
    fn rounding_happens_only_for_display() {
        assert_eq!(round_for_display(Decimal::from_str("1.005").unwrap(), 2), Decimal::from_str("1.01").unwrap());
        assert_eq!(exact(37.125), Decimal::from_str("37.125").unwrap());
    }
}
