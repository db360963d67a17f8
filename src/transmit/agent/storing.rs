//! Storing closed windows: into the outbox, or held in memory while the outbox cannot be written
//! (a full disk), the oldest merged (never across kinds) when either grows past its bound.

use std::collections::VecDeque;

use super::super::transport::Transport;
use super::{Agent, MAX_HELD_IN_MEMORY, Problem};
use crate::record::UsageRecord;

impl<T: Transport> Agent<T> {
    /// Moves closed windows from memory into the outbox; on a full disk they wait in memory.
    pub(super) fn store_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let records: Vec<UsageRecord> = self.held.iter().cloned().collect();
        match self.outbox.append(&records) {
            Ok(()) => {
                self.held.clear();
                self.clear_problem(|problem| matches!(problem, Problem::OutboxWrite { .. }));
                self.enforce_bound();
            }
            Err(error) => {
                let held = self.held.len();
                self.report(Problem::OutboxWrite { error: crate::errors::chain(&error), disk_full: error.is_disk_full(), held });
                while self.held.len() > MAX_HELD_IN_MEMORY {
                    merge_front(&mut self.held);
                }
                if let Some(front) = self.held.front() {
                    self.next_seq = front.seq + self.held.len() as u64;
                }
            }
        }
    }

    fn enforce_bound(&mut self) {
        if self.outbox.waiting_bytes() <= self.settings.outbox_max_bytes {
            return;
        }
        let depth = self.outbox.depth() as usize;
        match self.outbox.merge_oldest((depth / 4).max(1)) {
            Ok(merged) if merged > 0 => {
                self.next_seq = self.outbox.next_seq().unwrap_or(self.next_seq);
                self.status.merged_windows += merged as u64;
                tracing::warn!(
                    "outbox over its {}-byte bound: merged {merged} pair(s) of the oldest waiting windows (no usage dropped)",
                    self.settings.outbox_max_bytes
                );
            }
            Ok(_) => {}
            Err(error) => tracing::error!("merging outbox windows: {}", crate::errors::chain(&error)),
        }
    }
}

/// Merges the oldest two adjacent records of one kind held in memory into one (used only when the
/// disk is full); an asleep span never merges into usage.
fn merge_front(held: &mut VecDeque<UsageRecord>) {
    let Some(first_seq) = held.front().map(|record| record.seq) else { return };
    let Some(index) = (1..held.len()).find(|&index| held[index - 1].kind == held[index].kind) else { return };
    let merged = crate::transmit::outbox::merge_pair(&held[index - 1], &held[index]);
    held[index - 1] = merged;
    held.remove(index);
    // Renumber so the held seqs stay without holes.
    for (offset, record) in held.iter_mut().enumerate() {
        record.seq = first_seq + offset as u64;
    }
}
