//! A machine's recent hourly costs in the compact form the forecast reads: one `f32` per hour for
//! the last five weeks (about 3.4 KB a machine), beside the exact buckets the bill is made of.

use super::KEPT_HOURS;

/// Hourly flat costs of one machine, by hour of window start; hours with nothing billed cost 0.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HourlyCosts {
    /// Hour index (hours since the epoch) of `costs[0]`.
    first: i64,
    costs: Vec<f32>,
    /// Hour index of the machine's first window: before it nothing is known.
    since: i64,
}

/// A read-only look at hourly costs up to an hour, the way a forecast made then would see them.
#[derive(Debug, Clone, Copy)]
pub struct HourView<'a> {
    first: i64,
    costs: &'a [f32],
    since: i64,
    /// The forecast's hour: hours from it on are not known yet.
    until: i64,
}

impl HourlyCosts {
    /// No hours yet; the machine's first window started in hour index `since`.
    pub fn new(since: i64) -> HourlyCosts {
        HourlyCosts { first: since, costs: Vec::new(), since }
    }

    /// Adds `cost` to hour index `hour` (an hour older than the kept span is dropped).
    pub fn add(&mut self, hour: i64, cost: f32) {
        if hour < self.since {
            // A window older than the first one seen (a late record): the machine is older.
            self.since = hour;
        }
        if self.costs.is_empty() {
            self.first = hour;
        }
        if hour < self.first {
            let missing = (self.first - hour) as usize;
            if missing + self.costs.len() > KEPT_HOURS {
                return;
            }
            self.costs.splice(0..0, std::iter::repeat_n(0.0, missing));
            self.first = hour;
        }
        let index = (hour - self.first) as usize;
        if index >= self.costs.len() {
            self.costs.resize(index + 1, 0.0);
        }
        self.costs[index] += cost;
        if self.costs.len() > KEPT_HOURS {
            let drop = self.costs.len() - KEPT_HOURS;
            self.costs.drain(..drop);
            self.first += drop as i64;
        }
    }

    /// The costs as a forecast made in hour index `until` sees them.
    pub fn view(&self, until: i64) -> HourView<'_> {
        HourView { first: self.first, costs: &self.costs, since: self.since, until }
    }
}

impl<'a> HourView<'a> {
    /// A view of `costs` (hour index `first` onwards) from a machine first seen in hour `since`,
    /// as a forecast in hour `until` sees it.
    pub fn new(first: i64, costs: &'a [f32], since: i64, until: i64) -> HourView<'a> {
        HourView { first, costs, since, until }
    }

    /// The forecast's hour.
    pub fn until(&self) -> i64 {
        self.until
    }

    /// Whole hours known: from the machine's first hour to the forecast's.
    pub fn history_hours(&self) -> i64 {
        (self.until - self.since).max(0)
    }

    /// Whether hour `hour` is known: the machine existed, the forecast's hour had not come, and
    /// the hour is still kept.
    pub fn knows(&self, hour: i64) -> bool {
        hour >= self.since && hour < self.until && hour >= self.first.min(self.until)
    }

    /// The earliest hour known.
    pub fn earliest(&self) -> i64 {
        self.since.max(self.until - KEPT_HOURS as i64).max(self.first.min(self.until))
    }

    /// The cost in `hour` (0 when nothing was billed; ask [`HourView::knows`] first).
    pub fn cost(&self, hour: i64) -> f64 {
        if hour >= self.until {
            return 0.0;
        }
        usize::try_from(hour - self.first).ok().and_then(|index| self.costs.get(index)).map_or(0.0, |cost| f64::from(*cost))
    }

    /// The sum over `[from, to)`.
    pub fn sum(&self, from: i64, to: i64) -> f64 {
        (from..to).map(|hour| self.cost(hour)).sum()
    }
}

/// The hour index of `millis`.
pub fn hour_of_millis(millis: i64) -> i64 {
    millis.div_euclid(crate::billing::cost_engine::calendar::HOUR_MILLIS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_add_up_and_the_oldest_fall_off() {
        let mut costs = HourlyCosts::new(100);
        costs.add(100, 1.0);
        costs.add(103, 2.0);
        costs.add(103, 0.5);
        let view = costs.view(104);
        assert_eq!((view.cost(100), view.cost(101), view.cost(103)), (1.0, 0.0, 2.5));
        assert_eq!((view.history_hours(), view.sum(100, 104)), (4, 3.5));
        assert!(!view.knows(99) && view.knows(101) && !view.knows(104));
        costs.add(100 + KEPT_HOURS as i64 + 10, 4.0);
        let view = costs.view(101 + KEPT_HOURS as i64 + 10);
        assert_eq!(view.cost(100), 0.0, "dropped");
        assert_eq!(view.earliest(), 111);
        assert_eq!(view.history_hours(), KEPT_HOURS as i64 + 11, "the machine is as old as its first hour");
    }

    #[test]
    fn a_late_hour_before_the_first_moves_the_start_back() {
        let mut costs = HourlyCosts::new(50);
        costs.add(50, 1.0);
        costs.add(48, 2.0);
        let view = costs.view(51);
        assert_eq!((view.cost(48), view.cost(49), view.cost(50), view.history_hours()), (2.0, 0.0, 1.0, 3));
    }
}
