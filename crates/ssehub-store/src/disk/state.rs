//! The counters a [`DiskStore`](super::DiskStore) keeps in memory, mirrored in the `meta`
//! and `topics` tables, and how a retention sweep announces them before its commit and takes
//! them back when the commit fails.

use std::collections::HashMap;
use std::sync::Arc;

/// One topic's bookkeeping (the `topics` table).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct TopicStats {
    pub(super) count: u64,
    pub(super) bytes: u64,
    /// The newest event retention removed from the topic (0: none).
    pub(super) dropped_upto: u64,
}

impl TopicStats {
    pub(super) fn to_bytes(self) -> [u8; 24] {
        let mut out = [0; 24];
        out[..8].copy_from_slice(&self.count.to_le_bytes());
        out[8..16].copy_from_slice(&self.bytes.to_le_bytes());
        out[16..].copy_from_slice(&self.dropped_upto.to_le_bytes());
        out
    }

    pub(super) fn from_bytes(b: &[u8]) -> Option<Self> {
        let u = |r: std::ops::Range<usize>| Some(u64::from_le_bytes(b.get(r)?.try_into().ok()?));
        Some(TopicStats {
            count: u(0..8)?,
            bytes: u(8..16)?,
            dropped_upto: u(16..24)?,
        })
    }
}

/// The counters kept in memory, mirrored in `meta` and `topics`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct State {
    pub(super) first: u64,
    pub(super) last: u64,
    pub(super) count: u64,
    pub(super) bytes: u64,
    pub(super) topics: HashMap<Arc<str>, TopicStats>,
    /// The highest `dropped_upto` of any topic. Below `first` (always so with hub-wide
    /// retention only, which deletes a prefix of the log) no topic can raise a pattern's
    /// floor, and `retained_from` skips looking through them.
    pub(super) max_dropped: u64,
}

/// What [`State::announce`] replaced, for [`State::restore`].
#[derive(Debug)]
pub(super) struct Announced {
    first: u64,
    count: u64,
    bytes: u64,
    max_dropped: u64,
    /// Each topic touched, with its stats before (`None`: it had none).
    topics: Vec<(Arc<str>, Option<TopicStats>)>,
}

impl State {
    /// Sets what a retention sweep leaves once it commits — the new floor `first`, the totals,
    /// the stats of the `touched` topics — and returns what it replaced. The sweep announces
    /// before it commits, so that a reader that still sees the old floor after its read knows
    /// the read was complete (the subscription's replay relies on this to report a gap when
    /// retention overtakes it).
    pub(super) fn announce(
        &mut self,
        first: u64,
        count: u64,
        bytes: u64,
        touched: HashMap<Arc<str>, TopicStats>,
    ) -> Announced {
        let previous = Announced {
            first: self.first,
            count: self.count,
            bytes: self.bytes,
            max_dropped: self.max_dropped,
            topics: touched
                .keys()
                .map(|topic| (topic.clone(), self.topics.get(topic).copied()))
                .collect(),
        };
        self.max_dropped = touched
            .values()
            .map(|s| s.dropped_upto)
            .fold(self.max_dropped, u64::max);
        (self.first, self.count, self.bytes) = (first, count, bytes);
        self.topics.extend(touched);
        previous
    }

    /// Puts back what [`State::announce`] replaced: the sweep's commit failed, and the file
    /// still holds every event it meant to delete.
    pub(super) fn restore(&mut self, previous: Announced) {
        (self.first, self.count, self.bytes, self.max_dropped) = (
            previous.first,
            previous.count,
            previous.bytes,
            previous.max_dropped,
        );
        for (topic, stats) in previous.topics {
            match stats {
                Some(stats) => self.topics.insert(topic, stats),
                None => self.topics.remove(&topic),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(count: u64, bytes: u64, dropped_upto: u64) -> TopicStats {
        TopicStats {
            count,
            bytes,
            dropped_upto,
        }
    }

    #[test]
    fn topic_stats_round_trip_their_bytes() {
        let s = stats(3, 400, 17);
        assert_eq!(TopicStats::from_bytes(&s.to_bytes()), Some(s));
        assert_eq!(TopicStats::from_bytes(&[0; 23]), None);
    }

    #[test]
    fn announce_sets_the_new_floor_and_restore_takes_it_back() {
        let before = State {
            first: 1,
            last: 10,
            count: 10,
            bytes: 1000,
            topics: HashMap::from([
                (Arc::from("a"), stats(6, 600, 0)),
                (Arc::from("b"), stats(4, 400, 0)),
            ]),
            max_dropped: 0,
        };
        let mut state = before.clone();
        // The sweep deletes 1..=3: two of topic a, one of topic b; and `c`, a topic the
        // state did not know (an entry recovered from the file), is touched too.
        let touched = HashMap::from([
            (Arc::from("a"), stats(4, 400, 3)),
            (Arc::from("b"), stats(3, 300, 2)),
            (Arc::from("c"), stats(0, 0, 1)),
        ]);
        let previous = state.announce(4, 7, 700, touched);
        assert_eq!((state.first, state.count, state.bytes), (4, 7, 700));
        assert_eq!(state.max_dropped, 3);
        assert_eq!(state.topics[&Arc::from("a")], stats(4, 400, 3));
        assert_eq!(state.topics.len(), 3);
        state.restore(previous);
        assert_eq!(state, before);
    }
}
