//! The tail cache: the most recent events, encoded, so that a subscriber that keeps up is
//! served from memory.

use std::collections::VecDeque;
use std::sync::Arc;

use ssehub_core::StoredEvent;

/// The most recent events, encoded, in memory; bounded by count and by encoded bytes (what
/// it holds: a text of newlines is seven times larger encoded than raw).
#[derive(Default)]
pub(super) struct Tail {
    pub(super) events: VecDeque<Arc<StoredEvent>>,
    /// The sum of the events' encoded sizes.
    pub(super) bytes: usize,
}

impl Tail {
    pub(super) fn push(&mut self, event: Arc<StoredEvent>, max_events: usize, max_bytes: usize) {
        self.bytes += event.encoded.len();
        self.events.push_back(event);
        while self.events.len() > max_events || self.bytes > max_bytes {
            match self.events.pop_front() {
                Some(old) => self.bytes -= old.encoded.len(),
                None => break,
            }
        }
    }

    pub(super) fn clear(&mut self) {
        self.events.clear();
        self.bytes = 0;
    }

    pub(super) fn retain(&mut self, keep: impl Fn(&StoredEvent) -> bool) {
        self.events.retain(|e| keep(e));
        self.bytes = self.events.iter().map(|e| e.encoded.len()).sum();
    }
}

#[cfg(test)]
mod tests {
    use ssehub_core::{LogId, NewEvent, Topic};

    use super::*;

    /// The tail cache is bounded by the encoded size of its events: a few events of newlines
    /// (seven times larger encoded than raw) cannot make it hold more than its byte bound.
    #[test]
    fn the_tail_cache_counts_encoded_bytes() {
        let mut tail = Tail::default();
        let event = |seq| {
            StoredEvent::new(
                LogId(1),
                seq,
                NewEvent::new(Topic::new("t").unwrap(), "\n".repeat(1000)),
            )
        };
        // Ids of two digits each, so every event has the same size.
        let one = event(11).encoded.len();
        assert!(one > 7000);
        for seq in 11..=20 {
            tail.push(event(seq), 100, 3 * one);
        }
        assert_eq!(tail.events.len(), 3);
        assert_eq!(tail.bytes, 3 * one);
        assert_eq!(tail.events.front().map(|e| e.seq()), Some(18));
        tail.retain(|e| e.seq() != 19);
        assert_eq!(tail.bytes, 2 * one);
    }
}
