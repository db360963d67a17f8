//! What the Costs tab's table holds for a period, a filter and a sort: this machine's row apart (it
//! is pinned at the top), the other rows in order, the fleet's total, and what there is instead
//! when the period is empty. Rebuilt only when the snapshot or the choice changes, so a frame over
//! 10,000 machines draws the visible rows and nothing else.

use std::cmp::Ordering;
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::billing::period::month_of;
use crate::billing::summary::{CostSummary, SummaryRow};
use crate::record::UnixMillis;

/// A column of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    /// Machine id.
    Machine,
    /// Cost today.
    Today,
    /// Cost of the period.
    #[default]
    Period,
    /// Projected cost at the period's end.
    Projected,
    /// Last seen.
    LastSeen,
    /// Missing records.
    Gaps,
}

impl SortBy {
    /// Every column, in the order shown.
    pub const ALL: [SortBy; 6] = [SortBy::Machine, SortBy::Today, SortBy::Period, SortBy::Projected, SortBy::LastSeen, SortBy::Gaps];

    /// The column's header.
    pub fn header(self) -> &'static str {
        match self {
            SortBy::Machine => "Machine",
            SortBy::Today => "Today",
            SortBy::Period => "Period",
            SortBy::Projected => "Projected (estimate)",
            SortBy::LastSeen => "Last seen",
            SortBy::Gaps => "Gaps",
        }
    }

    fn compare(self, a: &SummaryRow, b: &SummaryRow) -> Ordering {
        match self {
            SortBy::Machine => a.machine_id.cmp(&b.machine_id),
            SortBy::Today => a.today.cmp(&b.today),
            SortBy::Period => a.period.cmp(&b.period),
            SortBy::Projected => a.projected.cmp(&b.projected),
            SortBy::LastSeen => a.last_seen.cmp(&b.last_seen),
            SortBy::Gaps => a.gaps.cmp(&b.gaps),
        }
    }
}

/// The fleet's sums over the rows of a period (all machines, whatever the filter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetTotal {
    /// Machines with usage in the period.
    pub machines: usize,
    /// Records billed in it.
    pub records: u64,
    /// Cost today.
    pub today: Decimal,
    /// Cost of the period.
    pub period: Decimal,
    /// Projected cost, and its band.
    pub projected: (Decimal, Decimal, Decimal),
    /// The currency (the first row's).
    pub currency: String,
}

/// What the table is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableChoice {
    /// The period's first instant; `None`: the current one.
    pub period: Option<UnixMillis>,
    /// Machines whose id holds this (any case).
    pub filter: String,
    /// The column sorted on.
    pub sort: SortBy,
    /// Highest first.
    pub descending: bool,
}

impl Default for TableChoice {
    fn default() -> Self {
        TableChoice { period: None, filter: String::new(), sort: SortBy::Period, descending: true }
    }
}

/// The table for one snapshot and one choice.
#[derive(Debug, Clone, Default)]
pub struct CostTable {
    /// This machine's row, when it has usage in the period and passes the filter.
    pub own: Option<SummaryRow>,
    /// The other rows, filtered and sorted.
    pub rows: Vec<SummaryRow>,
    /// Sums over every machine of the period.
    pub total: FleetTotal,
    /// Machines with usage in an earlier period only (said when the period is empty).
    pub earlier_machines: usize,
    /// Periods with usage, newest first (the current one always).
    pub periods: Vec<UnixMillis>,
}

impl CostTable {
    /// Builds the table of `summaries` for `choice` as of `now`; `own` is this machine's id.
    pub fn build(summaries: &Arc<Vec<CostSummary>>, choice: &TableChoice, own: Option<&str>, now: UnixMillis) -> CostTable {
        let current = month_of(now).0;
        let period = choice.period.unwrap_or(current);
        let mut periods: Vec<UnixMillis> = summaries.iter().flat_map(|summary| summary.periods.iter().map(|past| past.start)).collect();
        periods.push(current);
        periods.sort_unstable_by(|a, b| b.cmp(a));
        periods.dedup();
        let all: Vec<SummaryRow> = summaries.iter().filter_map(|summary| SummaryRow::of(summary, period, now)).collect();
        let total = total_of(&all);
        let earlier_machines = if all.is_empty() {
            summaries.iter().filter(|summary| summary.periods.iter().any(|past| past.start < period)).count()
        } else {
            0
        };
        let needle = choice.filter.trim().to_lowercase();
        let mut own_row = None;
        let mut rows = Vec::with_capacity(all.len());
        for row in all {
            if !needle.is_empty() && !row.machine_id.to_lowercase().contains(&needle) {
                continue;
            }
            if Some(row.machine_id.as_str()) == own {
                own_row = Some(row);
            } else {
                rows.push(row);
            }
        }
        rows.sort_by(|a, b| {
            let order = choice.sort.compare(a, b).then_with(|| a.machine_id.cmp(&b.machine_id));
            if choice.descending { order.reverse() } else { order }
        });
        CostTable { own: own_row, rows, total, earlier_machines, periods }
    }
}

fn total_of(rows: &[SummaryRow]) -> FleetTotal {
    let mut total = FleetTotal {
        machines: rows.len(),
        currency: rows.first().map(|row| row.currency.clone()).unwrap_or_default(),
        ..FleetTotal::default()
    };
    for row in rows {
        total.records += row.records;
        total.today += row.today;
        total.period += row.period;
        total.projected.0 += row.projected;
        total.projected.1 += row.projected_low;
        total.projected.2 += row.projected_high;
    }
    total
}
