//! A machine's time health, shown next to its gaps wherever they are shown (`report`, the API's
//! `/machines`, the cost summary and the Costs tab): how long it was asleep, how much of its usage
//! was observed late (the agent stalled), and how many wall-clock steps its agent saw. None of them
//! is an error; each says why a bill looks the way it does (a quiet night, a paused VM, a clock
//! fixed by NTP). See docs/billing.md.

use serde::Serialize;

use super::ledger::rollup::Aggregate;

/// The three figures of one machine over some windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TimeHealth {
    /// Sum of the lengths of its `asleep` windows, in milliseconds.
    pub asleep_ms: u64,
    /// Sum of its windows' `late_millis`: usage covered by readings that came late.
    pub late_ms: u64,
    /// Sum of its windows' `clock_steps` (a forward step also counts on the window that saw it).
    pub clock_steps: u64,
}

impl TimeHealth {
    /// The figures of `aggregate`'s windows.
    pub fn of(aggregate: &Aggregate) -> TimeHealth {
        TimeHealth {
            asleep_ms: aggregate.asleep_millis.max(0) as u64,
            late_ms: aggregate.late_millis.max(0) as u64,
            clock_steps: aggregate.clock_steps,
        }
    }

    /// Whether there is nothing to say.
    pub fn is_clear(&self) -> bool {
        *self == TimeHealth::default()
    }

    /// The short form a table cell holds: `asleep 8h 0m, late 1m 30s, 2 steps`, naming only the
    /// figures that are not zero; empty when all are.
    pub fn short(&self) -> String {
        let mut parts = Vec::new();
        if self.asleep_ms > 0 {
            parts.push(format!("asleep {}", span(self.asleep_ms)));
        }
        if self.late_ms > 0 {
            parts.push(format!("late {}", span(self.late_ms)));
        }
        match self.clock_steps {
            0 => {}
            1 => parts.push("1 step".to_owned()),
            steps => parts.push(format!("{steps} steps")),
        }
        parts.join(", ")
    }
}

/// A length of time for people, in its two largest units: `2d 3h`, `8h 0m`, `1m 30s`, `45s`,
/// `450ms`, `0s`. Rounded down, so a total never reads longer than it was.
pub fn span(millis: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1_000, "s")];
    if millis == 0 {
        return "0s".to_owned();
    }
    if millis < 1_000 {
        return format!("{millis}ms");
    }
    for (index, (size, unit)) in UNITS.iter().enumerate() {
        if millis >= *size {
            let whole = millis / size;
            return match UNITS.get(index + 1) {
                Some((next_size, next_unit)) => format!("{whole}{unit} {}{next_unit}", millis % size / next_size),
                None => format!("{whole}{unit}"),
            };
        }
    }
    unreachable!("a span of at least a second has a unit")
}

#[cfg(test)]
mod tests;
