//! The live costs on their topic (`{summary topic}.live`): each machine belongs to one of its
//! partitions (a hash of its id), and each partition holds one key, the shard, whose every message
//! carries the live costs of all the shard's machines. A reader that starts takes only each
//! partition's last message: the whole fleet's live figures, however fast the fleet is billed
//! (the summary topic's uncompacted tail grows with the billing rate; this does not). The leader
//! sends a shard at most once a second, when one of its machines changed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::billing::cost_engine::LiveCost;
use crate::record::UnixMillis;

/// The `schema` of every live message.
pub const LIVE_SCHEMA: &str = "usagebill.cost-live.v1";
/// Partitions (shards) of a new live topic: at about 200 bytes a machine and Kafka's 1 MB message
/// limit, room for about 80,000 machines.
pub const LIVE_PARTITIONS: i32 = 16;
/// A shard is sent at most this often.
pub const LIVE_EVERY: Duration = Duration::from_secs(1);

/// One message of the live topic: every machine of one shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveShard {
    /// Always [`LIVE_SCHEMA`].
    pub schema: String,
    /// The shard (its partition).
    pub shard: i32,
    /// When the leader sent it.
    pub sent_at: UnixMillis,
    /// The shard's machines.
    pub machines: Vec<LiveCost>,
}

impl LiveShard {
    /// The JSON form.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a live shard serialises")
    }

    /// Parses and checks a shard: the schema, and each machine's figures.
    pub fn parse(bytes: &[u8]) -> Result<LiveShard, String> {
        let shard: LiveShard = serde_json::from_slice(bytes).map_err(|error| format!("not a live-cost shard: {error}"))?;
        if shard.schema != LIVE_SCHEMA {
            return Err(format!("not a live-cost shard: schema {:?}, expected {LIVE_SCHEMA:?}", shard.schema));
        }
        for live in &shard.machines {
            live.check().map_err(|reason| format!("live-cost shard {}: {reason}", shard.shard))?;
        }
        Ok(shard)
    }

    /// The key its messages carry.
    pub fn key(shard: i32) -> String {
        format!("shard-{shard}")
    }
}

/// The shard of `machine` among `shards`: FNV-1a of its id, so every leader agrees.
pub fn shard_of(machine: &str, shards: i32) -> i32 {
    let hash = machine.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
    (hash % shards.max(1) as u64) as i32
}

/// The leader's live costs by shard: what it last computed of each machine, which shards changed,
/// and when each was last sent.
#[derive(Debug)]
pub struct LiveShards {
    shards: Vec<BTreeMap<String, LiveCost>>,
    changed: BTreeSet<i32>,
    sent_at: Vec<Option<Instant>>,
}

impl LiveShards {
    /// No machines yet, in `count` shards.
    pub fn new(count: i32) -> LiveShards {
        let count = count.max(1) as usize;
        LiveShards { shards: vec![BTreeMap::new(); count], changed: BTreeSet::new(), sent_at: vec![None; count] }
    }

    /// Takes in newly computed live costs.
    pub fn update(&mut self, costs: Vec<LiveCost>) {
        let count = self.shards.len() as i32;
        for live in costs {
            let shard = shard_of(&live.machine_id, count);
            self.changed.insert(shard);
            self.shards[shard as usize].insert(live.machine_id.clone(), live);
        }
    }

    /// Marks a shard to send again (its delivery failed).
    pub fn resend(&mut self, shard: i32) {
        if (0..self.shards.len() as i32).contains(&shard) {
            self.changed.insert(shard);
        }
    }

    /// The changed shards not sent within [`LIVE_EVERY`], as messages; they count as sent.
    pub fn due(&mut self, now: UnixMillis) -> Vec<LiveShard> {
        let sent = Instant::now();
        let due: Vec<i32> = self
            .changed
            .iter()
            .copied()
            .filter(|shard| self.sent_at[*shard as usize].is_none_or(|at| sent.duration_since(at) >= LIVE_EVERY))
            .collect();
        let mut messages = Vec::with_capacity(due.len());
        for shard in due {
            self.changed.remove(&shard);
            self.sent_at[shard as usize] = Some(sent);
            let machines = self.shards[shard as usize].values().cloned().collect();
            messages.push(LiveShard { schema: LIVE_SCHEMA.to_owned(), shard, sent_at: now, machines });
        }
        messages
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn live(machine: &str, revision: u64, period: &str) -> LiveCost {
        LiveCost {
            machine_id: machine.into(),
            revision,
            computed_at: UnixMillis(1_000 + revision as i64),
            day_start: UnixMillis(0),
            period_start: UnixMillis(0),
            today: period.parse().unwrap(),
            period: period.parse().unwrap(),
            period_records: revision,
            gaps: 0,
            asleep_ms: 0,
            late_ms: 0,
            clock_steps: 0,
            last_seen: UnixMillis(revision as i64),
        }
    }

    #[test]
    fn a_shard_carries_all_its_machines_and_goes_at_most_once_a_second() {
        let mut shards = LiveShards::new(4);
        let machines: Vec<String> = (0..40).map(|index| format!("m-{index}")).collect();
        shards.update(machines.iter().map(|machine| live(machine, 1, "0.5")).collect());
        let first = shards.due(UnixMillis(5));
        let sent: usize = first.iter().map(|shard| shard.machines.len()).sum();
        assert_eq!(sent, 40, "every machine, each in one shard");
        assert!(first.iter().all(|shard| shard.machines.iter().all(|live| shard_of(&live.machine_id, 4) == shard.shard)));
        shards.update(vec![live("m-3", 2, "0.75")]);
        assert!(shards.due(UnixMillis(6)).is_empty(), "sent less than a second ago");
        std::thread::sleep(LIVE_EVERY);
        let again = shards.due(UnixMillis(7));
        assert_eq!(again.len(), 1, "only the changed shard");
        assert_eq!(again[0].machines.len(), first.iter().find(|shard| shard.shard == again[0].shard).unwrap().machines.len());
        let m3 = again[0].machines.iter().find(|live| live.machine_id == "m-3").unwrap();
        assert_eq!(m3.period, Decimal::new(75, 2));
    }

    #[test]
    fn a_bad_shard_is_refused_with_the_reason() {
        let mut negative = LiveShard { schema: LIVE_SCHEMA.into(), shard: 2, sent_at: UnixMillis(1), machines: vec![live("m", 1, "1")] };
        assert_eq!(LiveShard::parse(&negative.encode()).unwrap(), negative);
        negative.machines[0].period = Decimal::new(-1, 0);
        assert!(LiveShard::parse(&negative.encode()).unwrap_err().contains("m: a negative amount"));
        let wrong = LiveShard { schema: "usagebill.cost-live.v0".into(), ..negative };
        assert!(LiveShard::parse(&wrong.encode()).unwrap_err().contains("usagebill.cost-live.v0"));
        assert!(LiveShard::parse(b"{").unwrap_err().starts_with("not a live-cost shard"));
    }
}
