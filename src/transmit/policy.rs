//! The send policy: when the open window closes and whether closed windows may go to the broker.
//! One state machine for the desktop app and the headless agent, driven by explicit times so it is
//! tested without a clock, Kafka or a window.

use std::time::Duration;

use super::rule::ThresholdRule;
use crate::collect::Reading;
use crate::record::{Trigger, UnixMillis};

/// The person's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySettings {
    /// Auto-send: close and send the window every this long; `None` is off.
    pub interval: Option<Duration>,
    /// Longest window: reached (while paused or with auto-send off) the window closes into the outbox.
    pub max_window: Duration,
    /// Threshold rules.
    pub rules: Vec<ThresholdRule>,
    /// After a rule fires it stays quiet this long, so a flapping metric cannot flood.
    pub cooldown: Duration,
    /// Start paused.
    pub paused: bool,
}

#[derive(Debug, Clone)]
struct RuleState {
    rule: ThresholdRule,
    held_since: Option<UnixMillis>,
    quiet_until: UnixMillis,
    /// Fired since the condition last stopped holding: one episode, however many windows it closes.
    in_episode: bool,
}

/// The policy's state.
#[derive(Debug, Clone)]
pub struct SendPolicy {
    interval: Option<Duration>,
    max_window: Duration,
    cooldown: Duration,
    paused: bool,
    rules: Vec<RuleState>,
    /// Rules that began an episode since [`SendPolicy::take_episodes`] was last called.
    episodes: Vec<ThresholdRule>,
}

impl SendPolicy {
    /// A policy with `settings`.
    pub fn new(settings: PolicySettings) -> Self {
        let mut policy = SendPolicy {
            interval: settings.interval,
            max_window: settings.max_window,
            cooldown: settings.cooldown,
            paused: settings.paused,
            rules: Vec::new(),
            episodes: Vec::new(),
        };
        policy.set_rules(settings.rules);
        policy
    }

    /// Whether closed windows may go to the broker now.
    pub fn may_send(&self) -> bool {
        !self.paused
    }

    /// Paused: windows keep closing into the outbox; nothing is sent.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Pauses or resumes sending.
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// The longest window.
    pub fn max_window(&self) -> Duration {
        self.max_window
    }

    /// The auto-send interval.
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// Changes the auto-send interval (`None`: off); at least 1 s.
    pub fn set_interval(&mut self, interval: Option<Duration>) {
        self.interval = interval.map(|interval| interval.max(Duration::from_secs(1)));
    }

    /// The rules.
    pub fn rules(&self) -> Vec<ThresholdRule> {
        self.rules.iter().map(|state| state.rule).collect()
    }

    /// Replaces the rules; their hold clocks restart.
    pub fn set_rules(&mut self, rules: Vec<ThresholdRule>) {
        self.rules = rules
            .into_iter()
            .map(|rule| RuleState { rule, held_since: None, quiet_until: UnixMillis(i64::MIN), in_episode: false })
            .collect();
    }

    /// Feeds a reading to the rules; returns `Threshold` when one has held long enough.
    pub fn observe(&mut self, reading: &Reading) -> Option<Trigger> {
        let now = reading.at;
        let mut fired = false;
        for state in &mut self.rules {
            if !state.rule.holds_for(reading) {
                state.held_since = None;
                state.in_episode = false;
                continue;
            }
            // The reading covers the time since the previous one, so the condition began then.
            let began = now.plus_millis(-(reading.elapsed_millis as i64));
            let since = *state.held_since.get_or_insert(began);
            if now.millis_since(since) >= state.rule.hold.as_millis() as i64 && now >= state.quiet_until {
                fired = true;
                if !state.in_episode {
                    state.in_episode = true;
                    self.episodes.push(state.rule);
                }
                state.held_since = None;
                state.quiet_until = now.plus_millis(self.cooldown.as_millis() as i64);
            }
        }
        fired.then_some(Trigger::Threshold)
    }

    /// The rules that began an episode (fired after their condition had stopped holding, or for
    /// the first time) since the last call: what the person is told about once.
    pub fn take_episodes(&mut self) -> Vec<ThresholdRule> {
        std::mem::take(&mut self.episodes)
    }

    /// Whether the window open since `window_start`, covered to `now` by readings that come every
    /// `reading_millis`, is due to close, and why. Windows close at a reading, so the auto-send
    /// interval closes at the reading nearest it (a window of 4.99 s does not wait a whole second
    /// for the 5 s mark); the longest window is a limit and closes at the first reading past it.
    pub fn due(&self, window_start: UnixMillis, now: UnixMillis, reading_millis: i64) -> Option<Trigger> {
        let open_for = now.millis_since(window_start);
        let nearest = open_for + reading_millis.max(0) / 2;
        let interval_due = self.interval.is_some_and(|interval| nearest >= interval.as_millis() as i64);
        let max_due = open_for >= self.max_window.as_millis() as i64;
        (interval_due || max_due).then_some(Trigger::Interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PolicySettings {
        PolicySettings {
            interval: Some(Duration::from_secs(10)),
            max_window: Duration::from_secs(60),
            rules: vec![ThresholdRule::parse("cpu_pct > 90 for 3s").unwrap()],
            cooldown: Duration::from_secs(20),
            paused: false,
        }
    }

    fn reading(at_secs: i64, cpu_pct: f64) -> Reading {
        Reading::steady_for_tests(UnixMillis(at_secs * 1000), cpu_pct)
    }

    #[test]
    fn the_interval_closes_windows() {
        let policy = SendPolicy::new(settings());
        assert_eq!(policy.due(UnixMillis(0), UnixMillis(9_999), 0), None);
        assert_eq!(policy.due(UnixMillis(0), UnixMillis(10_000), 0), Some(Trigger::Interval));
        // Readings a second apart: 9.6 s is nearer the 10 s mark than the reading after it.
        assert_eq!(policy.due(UnixMillis(0), UnixMillis(9_400), 1_000), None);
        assert_eq!(policy.due(UnixMillis(0), UnixMillis(9_600), 1_000), Some(Trigger::Interval));
    }

    #[test]
    fn without_an_interval_the_max_window_still_closes() {
        let mut policy = SendPolicy::new(settings());
        policy.set_interval(None);
        assert_eq!(policy.due(UnixMillis(0), UnixMillis(59_999), 1_000), None, "the longest window is a limit, not a mark");
        assert_eq!(policy.due(UnixMillis(0), UnixMillis(60_000), 1_000), Some(Trigger::Interval));
    }

    #[test]
    fn pausing_stops_sending_not_closing() {
        let mut policy = SendPolicy::new(settings());
        policy.set_paused(true);
        assert!(!policy.may_send());
        assert_eq!(policy.due(UnixMillis(0), UnixMillis(60_000), 0), Some(Trigger::Interval));
        policy.set_paused(false);
        assert!(policy.may_send());
    }

    #[test]
    fn a_rule_fires_after_holding_then_cools_down() {
        let mut policy = SendPolicy::new(settings());
        assert_eq!(policy.observe(&reading(1, 95.0)), None);
        assert_eq!(policy.observe(&reading(2, 95.0)), None);
        assert_eq!(policy.observe(&reading(3, 95.0)), Some(Trigger::Threshold), "held from 0 s to 3 s");
        for second in 4..23 {
            assert_eq!(policy.observe(&reading(second, 95.0)), None, "cooling down at {second} s");
        }
        assert_eq!(policy.observe(&reading(23, 95.0)), Some(Trigger::Threshold));
    }

    #[test]
    fn a_dip_restarts_the_hold() {
        let mut policy = SendPolicy::new(settings());
        policy.observe(&reading(1, 95.0));
        policy.observe(&reading(2, 95.0));
        assert_eq!(policy.observe(&reading(3, 50.0)), None);
        assert_eq!(policy.observe(&reading(4, 95.0)), None);
        assert_eq!(policy.observe(&reading(5, 95.0)), None);
        assert_eq!(policy.observe(&reading(6, 95.0)), Some(Trigger::Threshold));
    }

    #[test]
    fn a_rule_held_through_many_firings_is_one_episode_until_it_stops_holding() {
        let mut policy = SendPolicy::new(settings());
        for second in 1..=3 {
            policy.observe(&reading(second, 95.0));
        }
        assert_eq!(policy.take_episodes().len(), 1, "the first firing begins an episode");
        for second in 4..=23 {
            policy.observe(&reading(second, 95.0));
        }
        assert!(policy.take_episodes().is_empty(), "firing again while it still holds is the same episode");
        policy.observe(&reading(24, 50.0));
        for second in 44..=47 {
            policy.observe(&reading(second, 95.0));
        }
        assert_eq!(policy.take_episodes().len(), 1, "after a dip it is a new episode");
    }
}
