//! Graduated tiers, priced over a machine's calendar month when a period is computed.
//!
//! A stored line always holds the flat price (the first tier, overrides applied), so it depends only
//! on its record and its card version and `report --verify` can recompute it. The tier adjustment of
//! a record depends on how much the machine used earlier in the month: that position is taken in
//! window-start order over the records present, never in arrival order, so the bill is a function of
//! the set of records (deduplicated by id) and comes out the same on any worker, in any feed view,
//! whatever order records arrived in. A late record that fills a gap moves the later records' position
//! and the month's adjustment is recomputed with it. See docs/billing.md.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;

use super::calendar::{day_of, month_of};
use crate::billing::ledger::{Ledger, LedgerError};
use crate::billing::price::Measure;
use crate::billing::rate_card::{Component, PricingModel, RateCard, Tier};
use crate::record::{TimeRange, UnixMillis, UsageRecord};

/// Digits after the point a machine's tier adjustment keeps when it is handed out. Quantities divide
/// by 3,600,000 ms and 100 %, so they repeat in decimal and a sum of them is rounded in its 28th
/// digit: the record-by-record path and the running sums of [`super::running_tiers`] split a month
/// into the same runs, but may add a run's records in a different order (start order, arrival
/// order). Rounded at the 12th digit, the two agree and no currency notices.
pub const ADJUSTMENT_DIGITS: u32 = 12;

/// How much of `component` a record used, in the card's unit (core-hours, GB-hours, GB). A window
/// the machine did not live used nothing: the memory an asleep window held is priced flat at
/// `asleep_memory_gb_hour` and never moves a machine up its memory tiers.
pub fn quantity(record: &UsageRecord, component: Component) -> Decimal {
    if !record.kind.is_lived() {
        return Decimal::ZERO;
    }
    // A reading too large to measure could not be priced either: the biller quarantined it.
    Measure::of(record, component).map_or(Decimal::ZERO, |measure| measure.quantity())
}

/// What `quantity` units starting at `used_before` units this month cost beyond the flat price.
/// Negative when the tiers are cheaper (the usual volume discount).
pub fn tier_adjustment(used_before: Decimal, quantity: Decimal, flat_price: Decimal, tiers: &[Tier]) -> Decimal {
    let used_after = used_before + quantity;
    let mut adjustment = Decimal::ZERO;
    for (index, tier) in tiers.iter().enumerate() {
        let tier_end = tiers.get(index + 1).map(|next| next.from);
        let low = used_before.max(tier.from);
        let high = tier_end.map_or(used_after, |end| used_after.min(end));
        if high > low {
            adjustment += (high - low) * (tier.price - flat_price);
        }
    }
    adjustment
}

/// A machine's tier adjustments (negative for a volume discount).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierAdjustment {
    /// Of the windows starting today (UTC), placed after the month's earlier usage.
    pub today: Decimal,
    /// Of the windows starting this period.
    pub period: Decimal,
}

impl TierAdjustment {
    /// What is handed out: rounded to [`ADJUSTMENT_DIGITS`], so both paths give the same amounts.
    pub(super) fn rounded(self) -> TierAdjustment {
        let round = |amount: Decimal| amount.round_dp(ADJUSTMENT_DIGITS).normalize();
        TierAdjustment { today: round(self.today), period: round(self.period) }
    }
}

/// Consecutive windows of one machine (in window-start order) that start on one UTC day and were
/// billed under one card version, with each component's quantity summed over them. Pricing a run's
/// sum from a position gives what pricing its windows one by one from there gives, since a
/// graduated price is additive over consecutive quantities; a single window is a run of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Run {
    /// Start (UTC midnight) of the day the windows start on.
    pub day: i64,
    /// The card version named by the windows' lines.
    pub version: String,
    /// Whether the run's adjustment counts; a run before the range only moves the month's position.
    pub counted: bool,
    /// Each component's quantity, summed over the windows.
    pub quantities: BTreeMap<Component, Decimal>,
}

impl Run {
    /// A run of no windows yet.
    pub fn new(day: i64, version: &str, counted: bool) -> Run {
        Run { day, version: version.to_owned(), counted, quantities: BTreeMap::new() }
    }

    /// Adds `record`'s quantities.
    pub fn add(&mut self, record: &UsageRecord) {
        for component in Component::ALL {
            *self.quantities.entry(component).or_default() += quantity(record, component);
        }
    }
}

/// THE tier walk: prices a machine's runs, in window-start order, each placed after the month's
/// usage before it (runs of a later month, a clock ahead, start that month from zero). The part of
/// runs on or after the day starting at `today` is also summed apart. Nothing is rounded here. `None`
/// when no run was billed under a version with tiers.
pub(super) fn walk<'a>(machine: &str, runs: impl IntoIterator<Item = &'a Run>, card: &RateCard, today: i64) -> Option<TierAdjustment> {
    let mut any_tiers = false;
    let mut adjustment = TierAdjustment::default();
    let mut month = None;
    let mut used: BTreeMap<Component, Decimal> = BTreeMap::new();
    for run in runs {
        let run_month = month_of(UnixMillis(run.day)).0;
        if month != Some(run_month) {
            month = Some(run_month);
            used.clear();
        }
        let version = card.version_named(&run.version).filter(|version| version.model == PricingModel::TimeWeighted);
        any_tiers |= version.is_some_and(|version| version.has_tiers());
        for component in Component::ALL {
            let amount = run.quantities.get(&component).copied().unwrap_or_default();
            let before = used.entry(component).or_default();
            if let Some(version) = version.filter(|_| run.counted) {
                let tiers = version.tiers_for(machine, component);
                if !tiers.is_empty() {
                    let part = tier_adjustment(*before, amount, version.prices_for(machine).of(component), tiers);
                    adjustment.period += part;
                    if run.day >= today {
                        adjustment.today += part;
                    }
                }
            }
            *before += amount;
        }
    }
    any_tiers.then_some(adjustment)
}

/// Per-machine tier adjustments of the windows starting in `range` (machines without tiers are absent).
pub fn adjustments(ledger: &Ledger, card: &RateCard, range: TimeRange) -> Result<BTreeMap<String, Decimal>, LedgerError> {
    adjustments_of(ledger, card, range, &|_| true)
}

/// [`adjustments`] over only the records `keep` accepts (a statement re-derived from the records
/// it named, whatever arrived since).
pub fn adjustments_of(
    ledger: &Ledger,
    card: &RateCard,
    range: TimeRange,
    keep: &dyn Fn(&UsageRecord) -> bool,
) -> Result<BTreeMap<String, Decimal>, LedgerError> {
    let mut result = BTreeMap::new();
    for (machine, runs) in runs_of(ledger, card, range, keep)? {
        if let Some(adjustment) = walk(&machine, &runs, card, i64::MAX) {
            result.insert(machine, adjustment.rounded().period);
        }
    }
    Ok(result)
}

/// [`adjustments`], each with the part of the windows starting on or after `today` (a UTC midnight;
/// `i64::MAX` for none).
pub(super) fn adjustments_with_today(
    ledger: &Ledger,
    card: &RateCard,
    range: TimeRange,
    today: i64,
) -> Result<BTreeMap<String, TierAdjustment>, LedgerError> {
    let mut result = BTreeMap::new();
    for (machine, runs) in record_runs(ledger, card, range)? {
        if let Some(adjustment) = walk(&machine, &runs, card, today) {
            result.insert(machine, adjustment.rounded());
        }
    }
    Ok(result)
}

/// Each machine's runs, in window-start order (then seq), of the records read for `range`: from the
/// start of the month of `range.from`, since earlier usage that month sets the position.
pub(super) fn record_runs(ledger: &Ledger, card: &RateCard, range: TimeRange) -> Result<BTreeMap<String, Vec<Run>>, LedgerError> {
    runs_of(ledger, card, range, &|_| true)
}

fn runs_of(
    ledger: &Ledger,
    card: &RateCard,
    range: TimeRange,
    keep: &dyn Fn(&UsageRecord) -> bool,
) -> Result<BTreeMap<String, Vec<Run>>, LedgerError> {
    let mut result = BTreeMap::new();
    if !card.has_tiers() {
        return Ok(result);
    }
    let read_from = range.from.map_or(i64::MIN, |from| month_of(from).0.0);
    let read_to = range.to.map_or(i64::MAX, |to| to.0);
    let mut by_machine: HashMap<String, Vec<(UsageRecord, String)>> = HashMap::new();
    let mut after = 0;
    loop {
        let chunk = ledger.lines_after(after, 10_000)?;
        let Some(last) = chunk.last() else { break };
        after = last.row_id;
        for stored in chunk {
            if (read_from..read_to).contains(&stored.record.start.0) && keep(&stored.record) {
                by_machine.entry(stored.record.machine_id.clone()).or_default().push((stored.record, stored.line.card_version));
            }
        }
    }
    for (machine, mut records) in by_machine {
        records.sort_by_key(|(record, _)| (record.start, record.seq));
        let mut runs: Vec<Run> = Vec::new();
        for (record, version) in &records {
            let day = day_of(record.start).0;
            let counted = range.from.is_none_or(|from| record.start >= from);
            match runs.last_mut() {
                Some(run) if run.day == day && run.version == *version && run.counted == counted => run.add(record),
                _ => {
                    let mut run = Run::new(day, version, counted);
                    run.add(record);
                    runs.push(run);
                }
            }
        }
        result.insert(machine, runs);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::billing::biller::{Biller, RawMessage};
    use crate::billing::rate_card::cpu_tiered_version;
    use crate::record::UnixMillis;

    fn decimal(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn a_quantity_crossing_a_tier_is_split_at_the_boundary() {
        let tiers = [Tier { from: decimal("100"), price: decimal("0.03") }, Tier { from: decimal("150"), price: decimal("0.01") }];
        // 90 → 160: 10 at the flat 0.04, 50 at 0.03, 10 at 0.01.
        let adjustment = tier_adjustment(decimal("90"), decimal("70"), decimal("0.04"), &tiers);
        assert_eq!(adjustment, decimal("-0.8"), "50 × -0.01 + 10 × -0.03");
        assert_eq!(tier_adjustment(decimal("0"), decimal("99"), decimal("0.04"), &tiers), Decimal::ZERO);
    }

    fn hour(seq: u64) -> UsageRecord {
        // One machine, 8 cores at 100 %: 8 core-hours per hourly record.
        UsageRecord { cpu_pct: 100.0, ..UsageRecord::steady("m", seq, UnixMillis(1_767_225_600_000), 3_600_000) }
    }

    #[test]
    fn the_month_is_priced_the_same_whatever_order_records_arrive_in() {
        let card = RateCard::parse(&cpu_tiered_version("t1", "2026-01-01T00:00:00Z", "100", "0.02"), "test").unwrap();
        let mut totals = Vec::new();
        for order in [(1..=20).collect::<Vec<u64>>(), (1..=20).rev().collect()] {
            let directory = tempfile::tempdir().unwrap();
            let mut biller = Biller::new(Ledger::open(&directory.path().join("ledger.db")).unwrap(), card.clone());
            for (offset, seq) in order.iter().enumerate() {
                let message = RawMessage { topic: "u".into(), partition: 0, offset: offset as i64, payload: Some(hour(*seq).to_json()) };
                biller.bill(&[message]).unwrap();
            }
            let adjustments = adjustments(biller.ledger(), &card, TimeRange::default()).unwrap();
            totals.push(adjustments["m"]);
        }
        // 160 core-hours: the 60 above 100 cost 0.02 less each.
        assert_eq!(totals, vec![decimal("-1.2"), decimal("-1.2")]);
    }
}
