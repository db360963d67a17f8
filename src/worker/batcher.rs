//! Collects the messages of one ledger transaction: a batch is ready when it holds `batch_size`
//! messages or its first message has waited `batch_linger`.

use std::time::{Duration, Instant};

use crate::billing::biller::RawMessage;

/// The messages received and not yet billed.
#[derive(Debug)]
pub(super) struct Batcher {
    size: usize,
    linger: Duration,
    messages: Vec<RawMessage>,
    /// When the first message of the batch arrived.
    opened: Instant,
}

impl Batcher {
    /// An empty batch of at most `size` messages, ready after `linger`.
    pub fn new(size: usize, linger: Duration) -> Batcher {
        Batcher { size, linger, messages: Vec::with_capacity(size), opened: Instant::now() }
    }

    /// Adds a message; the first of a batch starts its linger.
    pub fn push(&mut self, message: RawMessage) {
        if self.messages.is_empty() {
            self.opened = Instant::now();
        }
        self.messages.push(message);
    }

    /// Whether the batch should be written now (when it is not empty).
    pub fn ready(&self) -> bool {
        self.messages.len() >= self.size || self.opened.elapsed() >= self.linger
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Takes the batch's messages, leaving it empty.
    pub fn take(&mut self) -> Vec<RawMessage> {
        std::mem::replace(&mut self.messages, Vec::with_capacity(self.size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(offset: i64) -> RawMessage {
        RawMessage { topic: "usage".into(), partition: 0, offset, payload: None }
    }

    #[test]
    fn a_batch_is_ready_when_full() {
        let mut batcher = Batcher::new(2, Duration::from_secs(3600));
        batcher.push(message(0));
        assert!(!batcher.ready());
        batcher.push(message(1));
        assert!(batcher.ready());
        assert_eq!(batcher.take().iter().map(|message| message.offset).collect::<Vec<_>>(), [0, 1]);
        assert!(batcher.is_empty());
    }

    #[test]
    fn a_batch_is_ready_once_its_first_message_lingered() {
        let mut batcher = Batcher::new(100, Duration::from_millis(30));
        std::thread::sleep(Duration::from_millis(40));
        batcher.push(message(0));
        assert!(!batcher.ready(), "the linger counts from the first message, not from the last batch");
        std::thread::sleep(Duration::from_millis(40));
        batcher.push(message(1));
        assert!(batcher.ready());
        assert_eq!(batcher.len(), 2);
    }
}
