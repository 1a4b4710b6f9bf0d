//! Who listens to what: the index fan-out uses to find an event's subscribers.
//!
//! Exact topics are a hash lookup. Wildcard patterns are kept once per distinct pattern,
//! grouped by their literal prefix (the segments before the first wildcard: `users/alice` for
//! `users/alice/*`): a topic `a/b/c` can only match patterns whose prefix is `a`, `a/b` or
//! `a/b/c`, so an event looks up one group per segment of its topics instead of trying every
//! pattern of the hub — the cost of an event does not grow with the number of subscribers'
//! patterns. Only patterns without such a prefix (`*/log` and Mercure's `*`) are tried one by
//! one. A topic or pattern with no subscriber left is removed, so an idle topic costs nothing
//! (no entry, no task).
//!
//! Mercure's URI templates are kept apart, once per distinct template: each must be tried
//! against each event, which is the one cost here that grows with what clients send. They are
//! matched outside the registry lock ([`TemplateSnapshot`]): the caller takes a snapshot of
//! the templates under the lock (a shared `Arc`, rebuilt only after the set changed), matches
//! the events against it without the lock, then, under the lock again, delivers to the
//! subscribers of the templates that matched — looked up by text, so a subscriber that came or
//! left in between is served as if the whole fan-out had been under the lock. Templates added
//! in between (newer than the snapshot) are matched under the lock; there are few.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::event::{NewEvent, StoredEvent};
use crate::live_queue::{LiveQueue, Pushed};
use crate::topic::{Pattern, Selector, Topic};

type Subs = HashMap<u64, Arc<LiveQueue>>;

/// Wildcard patterns (by their text) and their subscribers.
type Patterns = HashMap<Arc<str>, (Pattern, Subs)>;

/// One URI template and its subscribers.
#[derive(Debug)]
struct TemplateEntry {
    pattern: Pattern,
    subs: Subs,
    /// The registry's template generation when it was added.
    added: u64,
}

/// The URI templates of the registry at one moment, to match events against without the
/// registry lock.
#[derive(Debug, Default)]
pub(crate) struct TemplateSnapshot {
    /// The template generation it was taken at.
    generation: u64,
    patterns: Vec<Pattern>,
}

impl TemplateSnapshot {
    /// The indexes of the templates that match one of `topics`.
    pub(crate) fn matching(&self, topics: &[Topic]) -> Vec<u32> {
        (0u32..)
            .zip(&self.patterns)
            .filter(|(_, p)| topics.iter().any(|t| p.matches(t)))
            .map(|(i, _)| i)
            .collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

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
    /// Mercure URI templates, by their text.
    templates: HashMap<Arc<str>, TemplateEntry>,
    /// Bumped each time a template is added.
    template_generation: u64,
    /// The current snapshot of `templates`; `None` after a change, until asked for.
    snapshot: Option<Arc<TemplateSnapshot>>,
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
    /// Of `deliveries`, those written straight to the socket (`direct.rs`).
    pub(crate) direct: u64,
}

impl std::ops::AddAssign for FanOut {
    fn add_assign(&mut self, other: FanOut) {
        self.deliveries += other.deliveries;
        self.bytes += other.bytes;
        self.overflows += other.overflows;
        self.direct += other.direct;
    }
}

impl FanOut {
    fn count(&mut self, pushed: Pushed, encoded: &Bytes) {
        match pushed {
            Pushed::Queued => {
                self.deliveries += 1;
                self.bytes += encoded.len() as u64;
            }
            Pushed::Sent => {
                self.deliveries += 1;
                self.bytes += encoded.len() as u64;
                self.direct += 1;
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

    pub(crate) fn insert(&mut self, selector: &Selector, sub: &Arc<LiveQueue>) {
        for pattern in selector.patterns() {
            if pattern.is_template() {
                let text: Arc<str> = pattern.as_str().into();
                let entry = self.templates.entry(text).or_insert_with(|| {
                    self.template_generation += 1;
                    self.snapshot = None;
                    TemplateEntry {
                        pattern: pattern.clone(),
                        subs: Subs::new(),
                        added: self.template_generation,
                    }
                });
                entry.subs.insert(sub.id, sub.clone());
                continue;
            }
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
            if pattern.is_template() {
                if let Some(entry) = self.templates.get_mut(pattern.as_str()) {
                    entry.subs.remove(&id);
                    if entry.subs.is_empty() {
                        // The snapshot must not keep the compiled template alive.
                        self.templates.remove(pattern.as_str());
                        self.snapshot = None;
                    }
                }
                continue;
            }
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

    /// The templates now, to match events against outside the lock.
    pub(crate) fn template_snapshot(&mut self) -> Arc<TemplateSnapshot> {
        let generation = self.template_generation;
        let templates = &self.templates;
        self.snapshot
            .get_or_insert_with(|| {
                Arc::new(TemplateSnapshot {
                    generation,
                    patterns: templates.values().map(|e| e.pattern.clone()).collect(),
                })
            })
            .clone()
    }

    /// Calls `push` for the subscribers of the templates that match `topics`: those of
    /// `snapshot` listed in `matched` (found by matching outside the lock), and those added
    /// since the snapshot (matched now).
    fn for_each_template_match(
        &self,
        topics: &[Topic],
        snapshot: &TemplateSnapshot,
        matched: &[u32],
        mut push: impl FnMut(&Arc<LiveQueue>),
    ) {
        for &i in matched {
            let Some(pattern) = snapshot.patterns.get(i as usize) else {
                continue;
            };
            // Gone since the snapshot: no subscriber left to serve.
            if let Some(entry) = self.templates.get(pattern.as_str()) {
                entry.subs.values().for_each(&mut push);
            }
        }
        if self.template_generation != snapshot.generation {
            for entry in self.templates.values() {
                if entry.added > snapshot.generation
                    && topics.iter().any(|t| entry.pattern.matches(t))
                {
                    entry.subs.values().for_each(&mut push);
                }
            }
        }
    }

    /// Queues `event` for every matching subscriber, in the caller's (sequence) order.
    /// `matched` lists the templates of `snapshot` that match it.
    pub(crate) fn fan_out(
        &mut self,
        event: &StoredEvent,
        snapshot: &TemplateSnapshot,
        matched: &[u32],
    ) -> FanOut {
        let mut stats = FanOut::default();
        let push = |sub: &Arc<LiveQueue>| {
            let pushed = if sub.may_see(&event.event) {
                sub.push(event.seq(), &event.encoded)
            } else {
                Pushed::Skipped
            };
            stats.count(pushed, &event.encoded);
        };
        let mut push = push;
        self.for_each_match(&event.event.topics, &mut push);
        self.for_each_template_match(&event.event.topics, snapshot, matched, &mut push);
        self.last_seq = event.seq();
        stats
    }

    /// Queues `encoded` (an event with no id, never stored) for every live subscriber that
    /// matches `event`, once each.
    pub(crate) fn broadcast(
        &self,
        event: &NewEvent,
        encoded: &Bytes,
        snapshot: &TemplateSnapshot,
        templates: &[u32],
    ) -> FanOut {
        let mut matched: HashMap<u64, Arc<LiveQueue>> = HashMap::new();
        let mut add = |sub: &Arc<LiveQueue>| {
            matched.entry(sub.id).or_insert_with(|| sub.clone());
        };
        self.for_each_match(&event.topics, &mut add);
        self.for_each_template_match(&event.topics, snapshot, templates, &mut add);
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
    fn for_each_match(&self, topics: &[Topic], mut push: impl FnMut(&Arc<LiveQueue>)) {
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

    pub(crate) fn subscribers(&self) -> impl Iterator<Item = &Arc<LiveQueue>> {
        self.all.values()
    }

    /// How many distinct topics and patterns have subscribers.
    pub(crate) fn topic_count(&self) -> usize {
        self.exact.len() + self.pattern_count + self.templates.len()
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
    fn got(sub: &LiveQueue) -> bool {
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
        let subs: Vec<(Selector, Arc<LiveQueue>)> = selectors
            .iter()
            .zip(1..)
            .map(|(patterns, id)| {
                let sel = selector(patterns);
                let sub = Arc::new(LiveQueue::new(id, 1 << 20, 0));
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
            let snapshot = registry.template_snapshot();
            let matched = snapshot.matching(&topics);
            let fan = registry.fan_out(&stored, &snapshot, &matched);
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

    fn mercure(selectors: &[&str], templates: &crate::Templates) -> Selector {
        Selector::new(
            selectors
                .iter()
                .map(|p| Pattern::mercure_in(p, templates).unwrap())
                .collect(),
        )
        .unwrap()
    }

    /// Templates are matched against a snapshot taken before the lock; subscribers that come
    /// or go between the snapshot and the delivery are served as if it had all been under the
    /// lock: a new template is matched then, a template that lost its subscribers is skipped,
    /// a new subscriber of a known template is reached, once.
    #[test]
    fn templates_matched_outside_the_lock_miss_no_one() {
        let templates = crate::Templates::default();
        let mut registry = Registry::new(0);
        let book = mercure(&["https://e.com/books/{id}"], &templates);
        let early = Arc::new(LiveQueue::new(1, 1 << 20, 0));
        registry.insert(&book, &early);
        let leaving_sel = mercure(&["https://e.com/{kind}/1"], &templates);
        let leaving = Arc::new(LiveQueue::new(2, 1 << 20, 0));
        registry.insert(&leaving_sel, &leaving);
        assert_eq!(templates.count(), 2);

        let snapshot = registry.template_snapshot();
        let topics = vec![Topic::iri("https://e.com/books/1").unwrap()];
        let matched = snapshot.matching(&topics);
        assert_eq!(matched.len(), 2);

        // Between the snapshot and the delivery: one joins a known template, one comes with a
        // new template (twice the same match: once), one leaves.
        let joining = Arc::new(LiveQueue::new(3, 1 << 20, 0));
        registry.insert(&book, &joining);
        let new_sel = mercure(
            &["https://e.com/books/{x}", "https://e.com/{+all}"],
            &templates,
        );
        let newcomer = Arc::new(LiveQueue::new(4, 1 << 20, 0));
        registry.insert(&new_sel, &newcomer);
        registry.remove(&leaving_sel, leaving.id);

        let mut event = NewEvent::new(topics[0].clone(), "x");
        event.topics = topics;
        let stored = crate::event::StoredEvent::new(LogId(1), 1, event);
        let fan = registry.fan_out(&stored, &snapshot, &matched);
        assert_eq!(fan.deliveries, 3, "early, joining and newcomer, once each");
        assert!(got(&early) && got(&joining) && got(&newcomer));
        assert!(!got(&leaving));
        assert!(!got(&newcomer), "once");

        // The last subscriber of a template leaving frees it (once the snapshot is gone too).
        drop(snapshot);
        registry.remove(&book, early.id);
        registry.remove(&book, joining.id);
        registry.remove(&new_sel, newcomer.id);
        drop((book, new_sel, leaving_sel));
        assert_eq!(registry.topic_count(), 0);
        assert_eq!((templates.count(), templates.bytes()), (0, 0));
    }
}
