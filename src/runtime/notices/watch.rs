//! What is worth telling the person, decided from what the app already sees: the agent's status
//! and the costs. A state machine of its own, fed explicit times, so that "once per episode" is
//! tested without a clock, a bus or a window.

use std::collections::HashSet;

use rust_decimal::Decimal;

use crate::billing::budget::Budgets;
use crate::billing::money_text;
use crate::config::NotificationsConfig;
use crate::kafka::LinkState;
use crate::record::UnixMillis;
use crate::runtime::cost_reader::CostSnapshot;
use crate::transmit::agent::AgentStatus;

/// More budget crossings than this in one reading of the costs are told as one notice.
const BUDGET_NOTICES_AT_ONCE: usize = 3;

/// The kinds of notice, each turned on or off in the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeKind {
    /// A threshold rule held and sent a window.
    Threshold,
    /// A budget crossed, or forecast to be.
    Budget,
    /// The brokers unreachable with windows waiting.
    Outage,
    /// Delivery resumed after such an outage.
    Resumed,
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Its kind.
    pub kind: NoticeKind,
    /// The title.
    pub summary: String,
    /// What happened and what happens next.
    pub body: String,
}

/// Decides the notices.
#[derive(Debug)]
pub struct NoticeWatcher {
    config: NotificationsConfig,
    budgets: Budgets,
    /// The agent's episode count last seen (it restarts at zero with the agent).
    episodes_seen: Option<u64>,
    /// Since when the brokers have been unreachable.
    down_since: Option<UnixMillis>,
    /// The outage was told, with the records delivered by then.
    outage_told: Option<u64>,
    /// (machine, period start, whether already crossed) told.
    budgets_told: HashSet<(String, i64, bool)>,
}

impl NoticeWatcher {
    /// A watcher for `config` and `budgets`.
    pub fn new(config: NotificationsConfig, budgets: Budgets) -> NoticeWatcher {
        NoticeWatcher { config, budgets, episodes_seen: None, down_since: None, outage_told: None, budgets_told: HashSet::new() }
    }

    /// New settings; what was told stays told.
    pub fn reconfigure(&mut self, config: NotificationsConfig, budgets: Budgets) {
        self.config = config;
        self.budgets = budgets;
    }

    /// The settings in force.
    pub fn config(&self) -> &NotificationsConfig {
        &self.config
    }

    /// The notices a new agent status calls for.
    pub fn on_status(&mut self, status: &AgentStatus, now: UnixMillis) -> Vec<Notice> {
        let mut notices = Vec::new();
        let seen = self.episodes_seen.replace(status.threshold_episodes);
        if let (Some(seen), Some(rule)) = (seen, &status.last_threshold)
            && status.threshold_episodes > seen
        {
            let body = if status.paused {
                "The window was closed; sending is paused, so it waits in the outbox.".to_owned()
            } else {
                "The window was closed and sent. You are told again only after the condition stops holding.".to_owned()
            };
            notices.push(Notice { kind: NoticeKind::Threshold, summary: format!("Threshold rule held: {rule}"), body });
        }
        let down = status.link == LinkState::Down;
        if down {
            let since = *self.down_since.get_or_insert(now);
            let away = now.millis_since(since);
            if self.outage_told.is_none() && status.outbox_depth > 0 && away >= self.config.outage_after.0.as_millis() as i64 {
                self.outage_told = Some(status.delivered_total);
                notices.push(Notice {
                    kind: NoticeKind::Outage,
                    summary: "Can't reach the brokers".to_owned(),
                    body: format!(
                        "For {} now; {} window(s) wait in the outbox, kept on disk, and go as soon as the brokers answer.",
                        rough_duration(away),
                        status.outbox_depth
                    ),
                });
            }
        } else if status.link == LinkState::Up {
            if let Some(delivered_before) = self.outage_told
                && status.outbox_depth == 0
            {
                let away = self.down_since.map_or(0, |since| now.millis_since(since));
                notices.push(Notice {
                    kind: NoticeKind::Resumed,
                    summary: "Delivery resumed".to_owned(),
                    body: format!(
                        "The brokers answer again after about {}: {} record(s) delivered, none waiting.",
                        rough_duration(away),
                        status.delivered_total.saturating_sub(delivered_before)
                    ),
                });
                self.outage_told = None;
            }
            if self.outage_told.is_none() {
                self.down_since = None;
            }
        }
        notices
    }

    /// The notices new costs call for: each budgeted machine whose cost crossed its budget, or
    /// whose forecast will, once per machine, period and kind.
    pub fn on_costs(&mut self, costs: &CostSnapshot, now: UnixMillis) -> Vec<Notice> {
        if self.budgets.is_empty() {
            return Vec::new();
        }
        let mut notices = Vec::new();
        for summary in costs.summaries.iter() {
            let Some(budget) = self.budgets.for_machine(&summary.machine_id) else { continue };
            let Some((projected, day)) = summary.crossing(budget.amount, now) else { continue };
            let crossed = summary.period_at(now) > budget.amount;
            if !self.budgets_told.insert((summary.machine_id.clone(), summary.period_start.0, crossed)) {
                continue;
            }
            // Costs as the Costs tab reads them; the budget exactly as the person set it.
            let money = |amount: Decimal| money_text::money(amount, &summary.currency);
            let budget_text = format!("{} {}", budget.amount.normalize(), summary.currency);
            let (summary_line, body) = if crossed {
                (
                    format!("{} is over its budget", summary.machine_id),
                    format!(
                        "It has cost {} this period, past its budget of {budget_text}; expected by the period's end: {}.",
                        money(summary.period_at(now)),
                        money(projected)
                    ),
                )
            } else {
                (
                    format!("{} is forecast to cross its budget", summary.machine_id),
                    format!(
                        "Expected {} by the period's end against a budget of {budget_text}, crossing it on {}.",
                        money(projected),
                        day.to_string().get(..10).unwrap_or_default()
                    ),
                )
            };
            notices.push(Notice { kind: NoticeKind::Budget, summary: summary_line, body });
        }
        if notices.len() > BUDGET_NOTICES_AT_ONCE {
            let names: Vec<&str> = notices.iter().take(BUDGET_NOTICES_AT_ONCE).map(|notice| notice.summary.as_str()).collect();
            let body = format!("{}; and {} more. The Costs tab has each.", names.join("; "), notices.len() - BUDGET_NOTICES_AT_ONCE);
            return vec![Notice {
                kind: NoticeKind::Budget,
                summary: format!("{} machines at or over their budgets", notices.len()),
                body,
            }];
        }
        notices
    }
}

/// `40 s`, `12 min`, `3 h`.
fn rough_duration(millis: i64) -> String {
    let seconds = (millis / 1000).max(0);
    match seconds {
        0..=59 => format!("{seconds} s"),
        60..=7199 => format!("{} min", seconds / 60),
        _ => format!("{} h", seconds / 3600),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::config::HumanDuration;
    use crate::transmit::rule::ThresholdRule;

    fn status(link: LinkState, depth: u64, delivered: u64, episodes: u64) -> AgentStatus {
        AgentStatus {
            machine_id: "desk-1".into(),
            link,
            paused: false,
            interval: Some(Duration::from_secs(10)),
            rules: Vec::new(),
            outbox_depth: depth,
            last_delivery: None,
            delivered_total: delivered,
            delivered_today: delivered,
            window_start: UnixMillis(0),
            next_seq: 1,
            problem: None,
            merged_windows: 0,
            threshold_episodes: episodes,
            last_threshold: (episodes > 0).then(|| ThresholdRule::parse("cpu_pct > 90 for 30s").unwrap()),
            down_since: None,
            next_try: None,
        }
    }

    fn watcher() -> NoticeWatcher {
        let config = NotificationsConfig { outage_after: HumanDuration::from_secs(60), ..NotificationsConfig::default() };
        let budgets = Budgets::parse([(&"desk-*".to_owned(), &"0.01".to_owned())]).unwrap();
        NoticeWatcher::new(config, budgets)
    }

    #[test]
    fn a_threshold_episode_is_told_once() {
        let mut watcher = watcher();
        assert!(watcher.on_status(&status(LinkState::Up, 0, 0, 0), UnixMillis(0)).is_empty());
        let told = watcher.on_status(&status(LinkState::Up, 0, 1, 1), UnixMillis(1_000));
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].summary, "Threshold rule held: cpu_pct > 90 for 30s");
        assert!(watcher.on_status(&status(LinkState::Up, 0, 2, 1), UnixMillis(2_000)).is_empty(), "same episode");
        assert!(watcher.on_status(&status(LinkState::Up, 0, 0, 0), UnixMillis(3_000)).is_empty(), "a restarted agent");
        assert_eq!(watcher.on_status(&status(LinkState::Up, 0, 1, 1), UnixMillis(4_000)).len(), 1);
    }

    #[test]
    fn an_outage_is_told_after_its_time_with_windows_waiting_and_its_end_with_the_count() {
        let mut watcher = watcher();
        assert!(watcher.on_status(&status(LinkState::Down, 0, 5, 0), UnixMillis(0)).is_empty());
        assert!(watcher.on_status(&status(LinkState::Down, 0, 5, 0), UnixMillis(90_000)).is_empty(), "nothing waits");
        let told = watcher.on_status(&status(LinkState::Down, 3, 5, 0), UnixMillis(100_000));
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].kind, NoticeKind::Outage);
        assert!(told[0].body.contains("For 1 min now; 3 window(s) wait"), "{}", told[0].body);
        assert!(watcher.on_status(&status(LinkState::Down, 9, 5, 0), UnixMillis(200_000)).is_empty(), "once per outage");
        assert!(watcher.on_status(&status(LinkState::Up, 4, 10, 0), UnixMillis(210_000)).is_empty(), "not all delivered yet");
        let resumed = watcher.on_status(&status(LinkState::Up, 0, 14, 0), UnixMillis(220_000));
        assert_eq!(resumed.len(), 1);
        assert!(resumed[0].body.contains("about 3 min: 9 record(s) delivered"), "{}", resumed[0].body);
        assert!(watcher.on_status(&status(LinkState::Up, 0, 14, 0), UnixMillis(230_000)).is_empty());
    }

    #[test]
    fn a_budget_is_told_once_per_machine_period_and_kind_and_many_at_once_as_one() {
        use crate::billing::cost_engine::{CostSummary, Outlook, SUMMARY_SCHEMA, Series};
        let now = UnixMillis::parse_rfc3339("2026-12-04T12:00:00Z").unwrap();
        let start = UnixMillis::parse_rfc3339("2026-12-01T00:00:00Z").unwrap();
        let summary = |machine: &str, period: &str| CostSummary {
            schema: SUMMARY_SCHEMA.into(),
            machine_id: machine.into(),
            revision: 1,
            computed_at: now,
            currency: "USD".into(),
            card_version: "v1".into(),
            day_start: now.utc_day_start(),
            period_start: start,
            today: period.parse().unwrap(),
            period: period.parse().unwrap(),
            period_records: 1,
            gaps: 0,
            asleep_ms: 0,
            late_ms: 0,
            clock_steps: 0,
            last_seen: now,
            burn_per_hour: Decimal::ZERO,
            forecast: Outlook::NotEnoughHistory { hours: 1 },
            hourly: Series { from: now, costs: Vec::new() },
            daily: Series { from: start, costs: Vec::new() },
            periods: Vec::new(),
        };
        let costs = |summaries: Vec<CostSummary>| CostSnapshot { summaries: Arc::new(summaries), ..CostSnapshot::default() };
        let mut watcher = watcher();
        let told = watcher.on_costs(&costs(vec![summary("desk-1", "0.5"), summary("rack-1", "9")]), now);
        assert_eq!(told.len(), 1, "rack-1 has no budget: {told:?}");
        assert_eq!(told[0].summary, "desk-1 is over its budget");
        assert!(told[0].body.contains("past its budget of 0.01 USD"), "{}", told[0].body);
        assert!(watcher.on_costs(&costs(vec![summary("desk-1", "0.6")]), now).is_empty());
        let many: Vec<CostSummary> = (2..=7).map(|n| summary(&format!("desk-{n}"), "1")).collect();
        let told = watcher.on_costs(&costs(many), now);
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].summary, "6 machines at or over their budgets");
    }
}
