//! The per-topic floors a node knows: for each topic that per-topic retention deleted an
//! event of, the highest sequence number deleted (`floors` in Redis, `scripts.rs`), so that
//! [`Store::retained_from`](ssehub_core::Store::retained_from), which is synchronous, can
//! answer from memory.
//!
//! The copy may lag Redis (another node swept since), never lead it: floors only rise, and
//! every value here was read from Redis. That is enough for the replay's check
//! (ARCHITECTURE.md, invariant 8): each read returns, with its events, the floors that could
//! make it incomplete, and they are noted here before the reader asks `retained_from`.

use std::collections::HashMap;

use ssehub_core::{Selector, Topic};

/// Topic → the highest sequence number retention deleted from it.
#[derive(Debug, Default)]
pub(crate) struct TopicFloors {
    by_topic: HashMap<Topic, u64>,
    /// The highest of them: while it is below the log's floor, no topic's floor matters.
    highest: u64,
}

impl TopicFloors {
    /// Notes that retention deleted `topic`'s events up to `seq` (floors never move down).
    pub(crate) fn raise(&mut self, topic: Topic, seq: u64) {
        let floor = self.by_topic.entry(topic).or_default();
        *floor = (*floor).max(seq);
        self.highest = self.highest.max(seq);
    }

    /// The lowest sequence number from which history matching `selector` is complete, given
    /// `first`, the oldest sequence number the log retains. A pattern is matched against
    /// every topic with a floor (as the disk store does): the cost of a subscribe and of a
    /// replay page, in topics per-topic retention trimmed.
    pub(crate) fn retained_from(&self, first: u64, selector: &Selector) -> u64 {
        if self.highest < first {
            return first;
        }
        let mut from = first;
        for pattern in selector.patterns() {
            match pattern.as_topic() {
                Some(topic) => {
                    if let Some(floor) = self.by_topic.get(&topic) {
                        from = from.max(floor + 1);
                    }
                }
                None => {
                    for (topic, floor) in &self.by_topic {
                        if floor + 1 > from && pattern.matches(topic) {
                            from = floor + 1;
                        }
                    }
                }
            }
        }
        from
    }

    /// Forgets the floors the log's floor `first` has passed (they no longer tell anything),
    /// so that the copy holds only the topics trimmed within the retained history.
    pub(crate) fn forget_below(&mut self, first: u64) {
        if self.highest < first {
            self.by_topic.clear();
        } else {
            self.by_topic.retain(|_, floor| *floor + 1 > first);
        }
    }
}

#[cfg(test)]
mod tests {
    use ssehub_core::Pattern;

    use super::*;

    fn selector(patterns: &[&str]) -> Selector {
        Selector::new(patterns.iter().map(|p| Pattern::new(p).unwrap()).collect()).unwrap()
    }

    fn topic(name: &str) -> Topic {
        Topic::new(name).unwrap()
    }

    #[test]
    fn a_selector_is_complete_above_its_topics_floors() {
        let mut floors = TopicFloors::default();
        assert_eq!(floors.retained_from(3, &selector(&["a"])), 3);
        floors.raise(topic("a/1"), 10);
        floors.raise(topic("a/1"), 7);
        floors.raise(topic("b"), 20);
        assert_eq!(floors.retained_from(3, &selector(&["a/1"])), 11);
        assert_eq!(floors.retained_from(3, &selector(&["a/2"])), 3);
        assert_eq!(floors.retained_from(3, &selector(&["a/*"])), 11);
        assert_eq!(floors.retained_from(3, &selector(&["a/*", "b"])), 21);
        assert_eq!(floors.retained_from(30, &selector(&["b"])), 30);
    }

    #[test]
    fn floors_the_log_passed_are_forgotten() {
        let mut floors = TopicFloors::default();
        floors.raise(topic("a"), 10);
        floors.raise(topic("b"), 20);
        floors.forget_below(11);
        assert_eq!(floors.by_topic.len(), 1);
        assert_eq!(floors.retained_from(11, &selector(&["**"])), 21);
        floors.forget_below(21);
        assert!(floors.by_topic.is_empty());
    }
}
