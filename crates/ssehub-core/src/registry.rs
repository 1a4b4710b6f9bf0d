//! Who listens to what: the index fan-out uses to find an event's subscribers.
//!
//! Exact topics are a hash lookup; wildcard patterns are kept once per distinct pattern and
//! checked against each event's topics. A topic or pattern with no subscriber left is removed,
//! so an idle topic costs nothing (no entry, no task).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::event::StoredEvent;
use crate::subscriber::{Pushed, SubQueue};
use crate::topic::{Pattern, Selector, Topic};

type Subs = HashMap<u64, Arc<SubQueue>>;

/// The subscription index, plus the fan-out position. Guarded by the hub's registry lock.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    exact: HashMap<Topic, Subs>,
    patterns: HashMap<Arc<str>, (Pattern, Subs)>,
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
                    let text: Arc<str> = pattern.as_str().into();
                    &mut self
                        .patterns
                        .entry(text)
                        .or_insert_with(|| (pattern.clone(), Subs::new()))
                        .1
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
                    if let Some((_, subs)) = self.patterns.get_mut(pattern.as_str()) {
                        subs.remove(&id);
                        if subs.is_empty() {
                            self.patterns.remove(pattern.as_str());
                        }
                    }
                }
            }
        }
        self.all.remove(&id);
    }

    /// Queues `event` for every matching subscriber, in the caller's (sequence) order.
    pub(crate) fn fan_out(&mut self, event: &StoredEvent) -> FanOut {
        let mut stats = FanOut::default();
        let mut push = |sub: &Arc<SubQueue>| match if sub.may_see(&event.event) {
            sub.push(event.seq(), &event.encoded)
        } else {
            Pushed::Skipped
        } {
            Pushed::Queued => {
                stats.deliveries += 1;
                stats.bytes += event.encoded.len() as u64;
            }
            Pushed::Overflowed => stats.overflows += 1,
            Pushed::Skipped => {}
        };
        for topic in &event.event.topics {
            if let Some(subs) = self.exact.get(topic) {
                subs.values().for_each(&mut push);
            }
        }
        for (pattern, subs) in self.patterns.values() {
            if event.event.topics.iter().any(|t| pattern.matches(t)) {
                subs.values().for_each(&mut push);
            }
        }
        self.last_seq = event.seq();
        stats
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
        self.exact.len() + self.patterns.len()
    }
}
