//! What the Costs tab's table holds for a period, a filter and a sort: this machine's row apart (it
//! is pinned at the top), the other rows in order, the fleet's total, and what there is instead
//! when the period is empty. Rebuilt only when the snapshot or the choice changes, so a frame over
//! 10,000 machines draws the visible rows and nothing else.

use std::cmp::Ordering;
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::billing::cost_engine::calendar::month_of;
use crate::billing::cost_engine::{CostSummary, Forecast, Outlook};
use crate::feed::summary::SummaryRow;
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
    /// Time asleep, then observed late, then clock steps.
    Time,
}

impl SortBy {
    /// Every column, in the order shown.
    pub const ALL: [SortBy; 7] =
        [SortBy::Machine, SortBy::Today, SortBy::Period, SortBy::Projected, SortBy::LastSeen, SortBy::Gaps, SortBy::Time];

    /// The column's header.
    pub fn header(self) -> &'static str {
        match self {
            SortBy::Machine => "Machine",
            SortBy::Today => "Today",
            SortBy::Period => "Period",
            SortBy::Projected => "Projected (estimate)",
            SortBy::LastSeen => "Last seen",
            SortBy::Gaps => "Gaps",
            SortBy::Time => "Asleep, late, steps",
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
            SortBy::Time => {
                let key = |row: &SummaryRow| (row.time.asleep_ms, row.time.late_ms, row.time.clock_steps);
                key(a).cmp(&key(b))
            }
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
    /// The fleet's forecast (the machines' forecasts added; the current period only).
    pub forecast: Option<Forecast>,
    /// Machines of the period with no forecast (too little history).
    pub without_forecast: usize,
    /// The currency (the first row's).
    pub currency: String,
    /// Machines billed in another currency, left out of the sums (amounts of two currencies do
    /// not add up).
    pub other_currency: usize,
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
        // A summary computed in an earlier period (its machine idle since) holds that period as its own.
        let mut periods: Vec<UnixMillis> =
            summaries.iter().flat_map(|summary| summary.periods.iter().map(|past| past.start).chain([summary.period_start])).collect();
        periods.push(current);
        periods.sort_unstable_by(|a, b| b.cmp(a));
        periods.dedup();
        let all: Vec<SummaryRow> = summaries.iter().filter_map(|summary| SummaryRow::of(summary, period, now)).collect();
        let mut total = total_of(&all);
        if period == current {
            let outlooks: Vec<Outlook> =
                summaries.iter().filter(|summary| summary.currency == total.currency).map(|summary| summary.outlook_at(now)).collect();
            total.forecast = Outlook::total(&outlooks);
        }
        // A machine billed before `period`: in a closed period, or in its summary's own period when
        // it has been idle since.
        let billed_before = |summary: &&CostSummary| {
            summary.periods.iter().any(|past| past.start < period) || summary.period_start < period && summary.period_records > 0
        };
        let earlier_machines = if all.is_empty() { summaries.iter().filter(billed_before).count() } else { 0 };
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
    let mut total =
        FleetTotal { machines: 0, currency: rows.first().map(|row| row.currency.clone()).unwrap_or_default(), ..FleetTotal::default() };
    for row in rows {
        if row.currency != total.currency {
            total.other_currency += 1;
            continue;
        }
        total.machines += 1;
        total.records += row.records;
        total.today += row.today;
        total.period += row.period;
        total.without_forecast += usize::from(row.projected.is_none());
    }
    total
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::billing::cost_engine::{PeriodTotal, SUMMARY_SCHEMA, Series};

    /// 2026-12-15T12:00:00Z.
    const NOW: UnixMillis = UnixMillis(1_797_336_000_000);

    fn summary(machine: &str, this_period: Option<i64>, last_period: Option<i64>) -> CostSummary {
        let (period_start, _) = month_of(NOW);
        let last_start = month_of(period_start.plus_millis(-1)).0;
        // A summary computed in an earlier period carries that period as its own.
        let computed_in = if this_period.is_some() { period_start } else { last_start };
        let cents = |amount: i64| Decimal::new(amount, 2);
        CostSummary {
            schema: SUMMARY_SCHEMA.into(),
            machine_id: machine.into(),
            revision: 10,
            computed_at: NOW,
            currency: "USD".into(),
            card_version: "v1".into(),
            day_start: NOW.utc_day_start(),
            period_start: computed_in,
            today: this_period.map_or(Decimal::ZERO, cents),
            period: this_period.or(last_period).map_or(Decimal::ZERO, cents),
            period_records: 10,
            gaps: 0,
            asleep_ms: 0,
            late_ms: 0,
            clock_steps: 0,
            last_seen: NOW,
            burn_per_hour: Decimal::ZERO,
            forecast: Outlook::Unknown,
            hourly: Series { from: NOW, costs: Vec::new() },
            daily: Series { from: period_start, costs: Vec::new() },
            periods: match (this_period, last_period) {
                (Some(_), Some(last)) => vec![PeriodTotal { start: last_start, cost: cents(last), records: 5 }],
                _ => Vec::new(),
            },
        }
    }

    #[test]
    fn this_machine_is_apart_the_rest_sorted_and_the_total_counts_every_machine() {
        let summaries = Arc::new(vec![summary("a", Some(300), None), summary("b", Some(100), None), summary("own", Some(200), None)]);
        let table = CostTable::build(&summaries, &TableChoice::default(), Some("own"), NOW);
        assert_eq!(table.own.as_ref().unwrap().machine_id, "own");
        let order: Vec<&str> = table.rows.iter().map(|row| row.machine_id.as_str()).collect();
        assert_eq!(order, ["a", "b"], "highest period first");
        assert_eq!((table.total.machines, table.total.period), (3, Decimal::new(600, 2)));
        let filtered = CostTable::build(&summaries, &TableChoice { filter: "B".into(), ..TableChoice::default() }, Some("own"), NOW);
        assert_eq!(filtered.rows.len(), 1);
        assert!(filtered.own.is_none(), "the filter applies to this machine too");
        assert_eq!(filtered.total.machines, 3, "the total is the fleet's, whatever the filter");
    }

    #[test]
    fn an_empty_period_says_how_many_machines_billed_earlier() {
        let summaries = Arc::new(vec![summary("a", None, Some(500)), summary("b", None, Some(250))]);
        // Both machines were last billed last period: their summaries hold it as their own period.
        let table = CostTable::build(&summaries, &TableChoice::default(), None, NOW);
        assert_eq!((table.total.machines, table.earlier_machines), (0, 2));
        let last_start = month_of(month_of(NOW).0.plus_millis(-1)).0;
        assert_eq!(table.periods, [month_of(NOW).0, last_start], "the current period, and the one they were billed in");
        let last = CostTable::build(&summaries, &TableChoice { period: Some(last_start), ..TableChoice::default() }, None, NOW);
        assert_eq!((last.total.machines, last.total.period), (2, Decimal::new(750, 2)));
        // One machine billed this period too: last period holds its closed total and the other's.
        let mixed = Arc::new(vec![summary("a", Some(100), Some(500)), summary("b", None, Some(250))]);
        let last = CostTable::build(&mixed, &TableChoice { period: Some(last_start), ..TableChoice::default() }, None, NOW);
        assert_eq!((last.total.machines, last.total.period), (2, Decimal::new(750, 2)));
        let now = CostTable::build(&mixed, &TableChoice::default(), None, NOW);
        assert_eq!((now.total.machines, now.earlier_machines), (1, 0));
        let none_now = Arc::new(vec![summary("a", Some(0), Some(500))]);
        let mut empty = none_now.as_ref().clone();
        empty[0].period_records = 0;
        let table = CostTable::build(&Arc::new(empty), &TableChoice::default(), None, NOW);
        assert_eq!((table.total.machines, table.earlier_machines), (0, 1));
    }

    #[test]
    fn rows_carry_the_time_health_and_sort_on_it() {
        let slept = CostSummary { asleep_ms: 8 * 3_600_000, late_ms: 90_000, clock_steps: 2, ..summary("laptop", Some(100), None) };
        let stalled = CostSummary { late_ms: 5_000, ..summary("vm", Some(300), None) };
        let summaries = Arc::new(vec![summary("server", Some(200), None), slept, stalled]);
        let choice = TableChoice { sort: SortBy::Time, ..TableChoice::default() };
        let table = CostTable::build(&summaries, &choice, None, NOW);
        let order: Vec<&str> = table.rows.iter().map(|row| row.machine_id.as_str()).collect();
        assert_eq!(order, ["laptop", "vm", "server"], "most asleep first, then most late");
        assert_eq!(table.rows[0].time.short(), "asleep 8h 0m, late 1m 30s, 2 steps");
        assert!(table.rows[2].time.is_clear());
    }
}
