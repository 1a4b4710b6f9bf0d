//! Who listens to what: the index fan-out uses to find an event's subscribers.
//!
//! Exact topics are a hash lookup. Wildcard patterns are kept once per distinct pattern,
//! grouped by their literal prefix (the segments before the first wildcard: `users/alice` for
//! `users/alice/*`): a topic `a/b/c` can only match patterns whose prefix is `a`, `a/b` or
//! `a/b/c`, so an event looks up one group per segment of its topics instead of trying every
//! pattern of the hub — the cost of an event does not grow with the number of subscribers'
//! patterns. Only patterns without such a prefix (`*/log`, Mercure's URI templates and `*`)
//! are tried one by one. A topic or pattern with no subscriber left is removed, so an idle
//! topic costs nothing (no entry, no task).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::event::{NewEvent, StoredEvent};
use crate::subscriber::{Pushed, SubQueue};
use crate::topic::{Pattern, Selector, Topic};

type Subs = HashMap<u64, Arc<SubQueue>>;

/// Wildcard patterns (by their text) and their subscribers.
type Patterns = HashMap<Arc<str>, (Pattern, Subs)>;

/// The subscription index, plus the fan-out position. Guarded by the hub's registry lock.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    exact: HashMap<Topic, Subs>,
    /// Wildcard patterns with a literal prefix, by that prefix.
    prefixed: HashMap<Arc<str>, Patterns>,
    /// Wildcard patterns without one: tried against every event.
    unprefixed: Patterns,
    /// How many wildcard patterns there are, in both.
    pattern_count: usize,
    all: Subs,
    /// The last sequence number fanned out. A subscriber registered now gets every later
    /// event live, and must replay up to this one from history.
    pub(crate) last_seq: u64,
}

/// What one fan-out did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FanOut {
    pub(crate) deliveries: u64,
    pub(crate) bytes: u64,
    pub(crate) overflows: u64,
}

impl FanOut {
    fn count(&mut self, pushed: Pushed, encoded: &Bytes) {
        match pushed {
            Pushed::Queued => {
                self.deliveries += 1;
                self.bytes += encoded.len() as u64;
            }
            Pushed::Overflowed => self.overflows += 1,
            Pushed::Skipped => {}
        }
    }
}

impl Registry {
    /// An empty index whose fan-out position is `last_seq` (the store's last event).
    pub(crate) fn new(last_seq: u64) -> Self {
        Registry {
            last_seq,
            ..Registry::default()
        }
    }

    pub(crate) fn insert(&mut self, selector: &Selector, sub: &Arc<SubQueue>) {
        for pattern in selector.patterns() {
            let subs = match pattern.as_topic() {
                Some(topic) => self.exact.entry(topic).or_default(),
                None => {
                    let group = match pattern.literal_prefix() {
                        Some(prefix) => self.prefixed.entry(prefix.into()).or_default(),
                        None => &mut self.unprefixed,
                    };
                    let text: Arc<str> = pattern.as_str().into();
                    let entry = group.entry(text).or_insert_with(|| {
                        self.pattern_count += 1;
                        (pattern.clone(), Subs::new())
                    });
                    &mut entry.1
                }
            };
            subs.insert(sub.id, sub.clone());
        }
        self.all.insert(sub.id, sub.clone());
    }

    pub(crate) fn remove(&mut self, selector: &Selector, id: u64) {
        for pattern in selector.patterns() {
            match pattern.as_topic() {
                Some(topic) => {
                    if let Some(subs) = self.exact.get_mut(&topic) {
                        subs.remove(&id);
                        if subs.is_empty() {
                            self.exact.remove(&topic);
                        }
                    }
                }
                None => {
                    let prefix = pattern.literal_prefix();
                    let group = match prefix {
                        Some(prefix) => self.prefixed.get_mut(prefix),
                        None => Some(&mut self.unprefixed),
                    };
                    let Some(group) = group else { continue };
                    if let Some((_, subs)) = group.get_mut(pattern.as_str()) {
                        subs.remove(&id);
                        if subs.is_empty() {
                            group.remove(pattern.as_str());
                            self.pattern_count -= 1;
                        }
                    }
                    if let Some(prefix) = prefix
                        && group.is_empty()
                    {
                        self.prefixed.remove(prefix);
                    }
                }
            }
        }
        self.all.remove(&id);
    }

    /// Queues `event` for every matching subscriber, in the caller's (sequence) order.
    pub(crate) fn fan_out(&mut self, event: &StoredEvent) -> FanOut {
        let mut stats = FanOut::default();
        let push = |sub: &Arc<SubQueue>| {
            let pushed = if sub.may_see(&event.event) {
                sub.push(event.seq(), &event.encoded)
            } else {
                Pushed::Skipped
            };
            stats.count(pushed, &event.encoded);
        };
        self.for_each_match(&event.event.topics, push);
        self.last_seq = event.seq();
        stats
    }

    /// Queues `encoded` (an event with no id, never stored) for every live subscriber that
    /// matches `event`, once each.
    pub(crate) fn broadcast(&self, event: &NewEvent, encoded: &Bytes) -> FanOut {
        let mut matched: HashMap<u64, Arc<SubQueue>> = HashMap::new();
        self.for_each_match(&event.topics, |sub| {
            matched.entry(sub.id).or_insert_with(|| sub.clone());
        });
        let mut stats = FanOut::default();
        for sub in matched.values() {
            if sub.may_see(event) {
                stats.count(sub.push_unsequenced(encoded), encoded);
            }
        }
        stats
    }

    /// Calls `f` for each subscriber whose selector matches one of `topics` (a subscriber
    /// matching through several patterns is called once per pattern).
    fn for_each_match(&self, topics: &[Topic], mut push: impl FnMut(&Arc<SubQueue>)) {
        for topic in topics {
            if let Some(subs) = self.exact.get(topic) {
                subs.values().for_each(&mut push);
            }
        }
        let mut try_group = |group: &Patterns| {
            for (pattern, subs) in group.values() {
                if topics.iter().any(|t| pattern.matches(t)) {
                    subs.values().for_each(&mut push);
                }
            }
        };
        if !self.prefixed.is_empty() {
            // The groups whose prefix is a prefix of one of the event's topics (each group
            // once, even when several topics share the prefix).
            let mut groups: Vec<&Patterns> = Vec::new();
            for topic in topics {
                let text = topic.as_str();
                let ends = text.match_indices('/').map(|(i, _)| i);
                for end in ends.chain([text.len()]) {
                    if let Some(group) = self.prefixed.get(&text[..end]) {
                        groups.push(group);
                    }
                }
            }
            if topics.len() > 1 {
                groups.sort_by_key(|g| std::ptr::from_ref(*g) as usize);
                groups.dedup_by(|a, b| std::ptr::eq(*a, *b));
            }
            groups.into_iter().for_each(&mut try_group);
        }
        try_group(&self.unprefixed);
    }

    /// Queues a heartbeat for every idle subscriber.
    pub(crate) fn heartbeat(&self, frame: &Bytes) {
        for sub in self.all.values() {
            sub.push(0, frame);
        }
    }

    pub(crate) fn subscribers(&self) -> impl Iterator<Item = &Arc<SubQueue>> {
        self.all.values()
    }

    /// How many distinct topics and patterns have subscribers.
    pub(crate) fn topic_count(&self) -> usize {
        self.exact.len() + self.pattern_count
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::event::NewEvent;
    use crate::id::LogId;

    fn selector(patterns: &[&str]) -> Selector {
        Selector::new(patterns.iter().map(|p| Pattern::new(p).unwrap()).collect()).unwrap()
    }

    /// Whether the subscriber got something, emptying its queue.
    fn got(sub: &SubQueue) -> bool {
        matches!(
            sub.poll_take(&mut Context::from_waker(Waker::noop())),
            Poll::Ready(Some(_))
        )
    }

    /// Fan-out through the prefix groups reaches exactly the subscribers whose selector
    /// matches, once each, as trying every pattern would.
    #[test]
    fn fan_out_reaches_exactly_the_matching_subscribers() {
        let selectors = [
            &["a/*"][..],
            &["a/b/*"],
            &["a/**"],
            &["*/b"],
            &["*/*/c"],
            &["a/b/c/**"],
            &["a/*/c"],
            &["a/b"],
            &["x/*", "a/b/*"],
            &["a/b/*", "a/*/c", "a/**"],
            &["b/**", "a/b/c"],
        ];
        let mut registry = Registry::new(0);
        let subs: Vec<(Selector, Arc<SubQueue>)> = selectors
            .iter()
            .zip(1..)
            .map(|(patterns, id)| {
                let sel = selector(patterns);
                let sub = Arc::new(SubQueue::new(id, 1 << 20, 0));
                registry.insert(&sel, &sub);
                (sel, sub)
            })
            .collect();
        // 9 distinct wildcard patterns (shared ones counted once) and 2 exact topics.
        assert_eq!(registry.topic_count(), 11);
        let events: [&[&str]; 8] = [
            &["a/b"],
            &["a/b/c"],
            &["a/b/c/d"],
            &["x/b"],
            &["a"],
            &["b/x/c"],
            &["a/b/c", "a/b/d"],
            &["x/y", "b/z", "a/q/c"],
        ];
        for (seq, topics) in (1..).zip(events) {
            let topics: Vec<Topic> = topics.iter().map(|t| Topic::new(t).unwrap()).collect();
            let mut event = NewEvent::new(topics[0].clone(), "x");
            event.topics = topics.clone();
            let stored = crate::event::StoredEvent::new(LogId(1), seq, event);
            let expected: Vec<bool> = subs
                .iter()
                .map(|(sel, _)| sel.matches_any(&topics))
                .collect();
            let fan = registry.fan_out(&stored);
            let received: Vec<bool> = subs.iter().map(|(_, sub)| got(sub)).collect();
            assert_eq!(received, expected, "event to {topics:?}");
            let count = expected.iter().filter(|&&m| m).count() as u64;
            assert_eq!(fan.deliveries, count, "event to {topics:?}");
        }
        for (sel, sub) in &subs {
            registry.remove(sel, sub.id);
        }
        assert_eq!(registry.topic_count(), 0);
        assert!(registry.prefixed.is_empty() && registry.unprefixed.is_empty());
        assert!(registry.exact.is_empty() && registry.all.is_empty());
    }
}
