//! Reading the summaries: every partition of the summary topic from its start (the topic is
//! compacted, so that is about one message per machine), and the last message of each partition of
//! the live topic (the whole fleet's live figures, see [`super::live`]); then whatever arrives. A
//! desktop holds the result in memory and writes nothing to disk; `report --from-summary` reads
//! until caught up and prints it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::book::{SummaryBook, SummaryOffer};
use crate::billing::rate_card::RateCard;
use crate::feed::FeedError;
use crate::kafka::{ClientRole, KafkaConfig, KafkaSetupError, client_config};

/// Keeps what librdkafka's statistics say the brokers sent, when they are on.
#[derive(Default)]
struct WireCounter {
    received: AtomicI64,
}

impl ClientContext for WireCounter {
    fn stats(&self, statistics: Statistics) {
        self.received.store(statistics.rx_bytes, Ordering::SeqCst);
    }
}

impl ConsumerContext for WireCounter {}

/// A reader of the summary topic.
pub struct SummaryFeed {
    consumer: BaseConsumer<WireCounter>,
    topic: String,
    live_topic: String,
    /// The high watermark of each partition (by topic: whether live) when the reader started;
    /// caught up once past them all.
    start_ends: HashMap<(bool, i32), i64>,
    next_offsets: HashMap<(bool, i32), i64>,
    caught_up: bool,
    /// When the live topic was last looked for, while it is not assigned (`None` once it is).
    live_looked_for: Option<Instant>,
    /// Bytes of keys and payloads read so far (what the broker sent, before compression).
    bytes_read: u64,
    /// Messages read so far.
    messages_read: u64,
}

fn partitions_of(consumer: &BaseConsumer<WireCounter>, topic: &str) -> Result<Vec<i32>, FeedError> {
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    Ok(metadata.topics().iter().flat_map(|found| found.partitions()).map(|partition| partition.id()).collect())
}

/// Adds each partition of the live topic to `assignment` at its last message (one key per
/// partition, written by a producer that is not transactional: the last offset is the shard's
/// newest); returns each partition's end then (none if the topic does not exist).
fn add_live_partitions(
    consumer: &BaseConsumer<WireCounter>,
    live_topic: &str,
    assignment: &mut TopicPartitionList,
) -> Result<Vec<(i32, i64)>, FeedError> {
    let mut ends = Vec::new();
    for partition in partitions_of(consumer, live_topic)? {
        let (low, high) = consumer.fetch_watermarks(live_topic, partition, Duration::from_secs(10))?;
        assignment.add_partition_offset(live_topic, partition, Offset::Offset((high - 1).max(low)))?;
        ends.push((partition, if high > low { high } else { 0 }));
    }
    Ok(ends)
}

impl SummaryFeed {
    /// Assigns every partition of the summary topic from its start. The topic is not created here:
    /// until a worker creates it there is nothing to show, which [`SummaryFeed::open`] reports as
    /// an error the caller may retry.
    pub fn open(kafka: &KafkaConfig) -> Result<SummaryFeed, FeedError> {
        SummaryFeed::open_counting(kafka, false)
    }

    /// [`SummaryFeed::open`], with librdkafka's statistics on every 100 ms when `count_wire` is
    /// set, for [`SummaryFeed::wire_bytes`] (the bench's measure of what a desktop reads).
    pub fn open_counting(kafka: &KafkaConfig, count_wire: bool) -> Result<SummaryFeed, FeedError> {
        let topic = kafka.summary_topic();
        let mut config = client_config(kafka, ClientRole::Consumer)?;
        // A group id is required by librdkafka's consumer, but it is never joined or committed to.
        config.set("group.id", format!("usagebill-view-{}", std::process::id())).set("enable.auto.commit", "false");
        if count_wire {
            config.set("statistics.interval.ms", "100");
        }
        let consumer: BaseConsumer<WireCounter> = config
            .create_with_context(WireCounter::default())
            .map_err(|source| KafkaSetupError::kafka("creating the summary consumer", source))?;
        let partitions = partitions_of(&consumer, &topic)?;
        if partitions.is_empty() {
            return Err(FeedError::NoSummaryTopic(topic));
        }
        let mut assignment = TopicPartitionList::new();
        let mut start_ends = HashMap::new();
        for partition in &partitions {
            assignment.add_partition_offset(&topic, *partition, Offset::Beginning)?;
            let (_, high) = consumer.fetch_watermarks(&topic, *partition, Duration::from_secs(10))?;
            start_ends.insert((false, *partition), high);
        }
        // Workers of before the live topic publish none, and a worker creates it just after the
        // summary topic: without it the summaries alone are read, and `poll` looks for it again.
        let live_topic = kafka.live_topic();
        let live_ends = add_live_partitions(&consumer, &live_topic, &mut assignment).unwrap_or_default();
        let live_looked_for = live_ends.is_empty().then(Instant::now);
        start_ends.extend(live_ends.into_iter().filter(|(_, end)| *end > 0).map(|(partition, end)| ((true, partition), end)));
        consumer.assign(&assignment)?;
        let mut feed = SummaryFeed {
            consumer,
            topic,
            live_topic,
            start_ends,
            next_offsets: HashMap::new(),
            caught_up: false,
            live_looked_for,
            bytes_read: 0,
            messages_read: 0,
        };
        feed.check_caught_up();
        Ok(feed)
    }

    /// Reads what arrives within `wait` into `book`; returns how many machines it moved.
    pub fn poll(&mut self, book: &mut SummaryBook, card: Option<&RateCard>, wait: Duration) -> Result<usize, FeedError> {
        let deadline = Instant::now() + wait;
        let mut taken = 0;
        let mut timeout = wait;
        while let Some(message) = self.consumer.poll(timeout) {
            let message = message?;
            let live = message.topic() == self.live_topic;
            let next = self.next_offsets.entry((live, message.partition())).or_insert(0);
            *next = (*next).max(message.offset() + 1);
            self.bytes_read += (message.key_len() + message.payload_len()) as u64;
            self.messages_read += 1;
            // No payload is a tombstone (a machine an operator removed): nothing to show for it.
            match message.payload() {
                Some(payload) if live => taken += book.offer_live(payload),
                Some(payload) if book.offer(payload, card) == SummaryOffer::Taken => taken += 1,
                _ => {}
            }
            timeout = Duration::ZERO;
            if Instant::now() >= deadline {
                break;
            }
        }
        self.check_caught_up();
        self.look_for_live_topic()?;
        Ok(taken)
    }

    /// Assigns the live topic once it exists, if it did not when the reader opened (looked for
    /// every 5 s; what it held before counts for nothing in `caught_up`).
    fn look_for_live_topic(&mut self) -> Result<(), FeedError> {
        if self.live_looked_for.is_none_or(|at| at.elapsed() < Duration::from_secs(5)) {
            return Ok(());
        }
        let mut assignment = TopicPartitionList::new();
        if add_live_partitions(&self.consumer, &self.live_topic, &mut assignment)?.is_empty() {
            self.live_looked_for = Some(Instant::now());
            return Ok(());
        }
        self.consumer.incremental_assign(&assignment)?;
        self.live_looked_for = None;
        tracing::debug!("the live topic {} appeared; reading it", self.live_topic);
        Ok(())
    }

    fn check_caught_up(&mut self) {
        if !self.caught_up {
            self.caught_up = self.start_ends.iter().all(|(at, end)| self.next_offsets.get(at).copied().unwrap_or(0) >= *end);
        }
    }

    /// Whether everything the topic held at the start has been read.
    pub fn caught_up(&self) -> bool {
        self.caught_up
    }

    /// Bytes of keys and payloads read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Bytes the brokers sent so far, compressed and with the protocol's framing, as of the last
    /// statistics (every 100 ms; `None` unless opened with [`SummaryFeed::open_counting`]).
    pub fn wire_bytes(&self) -> Option<u64> {
        let received = self.consumer.context().received.load(Ordering::SeqCst);
        (received > 0).then_some(received as u64)
    }

    /// Messages read so far.
    pub fn messages_read(&self) -> u64 {
        self.messages_read
    }

    /// The topic read.
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

/// Reads the summary topic until caught up (what `report --from-summary` shows).
pub fn read_until_caught_up(kafka: &KafkaConfig, card: Option<&RateCard>) -> Result<SummaryBook, FeedError> {
    let mut feed = SummaryFeed::open(kafka)?;
    let mut book = SummaryBook::new();
    while !feed.caught_up() {
        feed.poll(&mut book, card, Duration::from_millis(100))?;
    }
    Ok(book)
}
