//! The in-memory store: history in a ring, bounded by event count and bytes.
//!
//! Nothing survives a restart, and a restarted hub gets a new [`LogId`], so ids from before the
//! restart are recognised as unknown (never misread as positions in the new log:
//! ARCHITECTURE.md, invariant 6).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use crate::event::{NewEvent, StoredEvent};
use crate::id::LogId;
use crate::store::{Bounds, BoxFuture, PageBuilder, ReadPage, Store, StoreError};
use crate::topic::{Selector, Topic};

/// How much history to keep. The oldest events go first when either bound is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The most events kept.
    pub max_events: usize,
    /// The most bytes of events kept, counted as their SSE encoding (what memory holds for
    /// them, and what a replay sends), not their raw data.
    pub max_bytes: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_events: 100_000,
            max_bytes: 64 << 20,
        }
    }
}

/// How many events one read looks at before returning, so a sparse topic's replay never holds
/// the lock for long.
const SCAN_LIMIT: usize = 4096;

/// History in memory, bounded by a [`Retention`]; nothing survives a restart.
#[derive(Debug)]
pub struct MemoryStore {
    log: LogId,
    retention: Retention,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    events: VecDeque<Arc<StoredEvent>>,
    bytes: usize,
    last: u64,
    /// Publisher id → sequence number, for the retained events that have one.
    ids: HashMap<String, u64>,
    /// (topic, key) → the sequence number of the key's newest retained event in that topic.
    keys: HashMap<(Topic, String), u64>,
    /// The events that are the newest of their key in at least one topic, with those topics:
    /// what snapshots read, in sequence order.
    latest: BTreeMap<u64, (Arc<StoredEvent>, Vec<Topic>)>,
    /// The keys of `latest` per topic, so that the snapshot of a few exact topics reads only
    /// theirs, however many other keys the hub holds.
    latest_by_topic: HashMap<Topic, BTreeSet<u64>>,
}

impl Inner {
    /// The first publisher id of `events` that a retained event or an earlier event of
    /// `events` already has.
    fn conflict(&self, events: &[NewEvent]) -> Option<String> {
        let mut batch = HashSet::new();
        events
            .iter()
            .filter_map(|e| e.id.as_deref())
            .find(|id| self.ids.contains_key(*id) || !batch.insert(*id))
            .map(str::to_string)
    }

    /// Makes `event` the newest of its key in each of its topics, taking those topics from the
    /// key's earlier events.
    fn index_key(&mut self, event: &Arc<StoredEvent>) {
        let Some(key) = &event.event.key else { return };
        let mut topics = event.event.topics.clone();
        topics.sort();
        topics.dedup();
        for topic in &topics {
            let entry = (topic.clone(), key.clone());
            let by_topic = self.latest_by_topic.entry(topic.clone()).or_default();
            by_topic.insert(event.seq());
            if let Some(old) = self.keys.insert(entry, event.seq()) {
                by_topic.remove(&old);
                if let Some((_, held)) = self.latest.get_mut(&old) {
                    held.retain(|t| t != topic);
                    if held.is_empty() {
                        self.latest.remove(&old);
                    }
                }
            }
        }
        self.latest.insert(event.seq(), (event.clone(), topics));
    }

    /// Retention deleted `event`: the keys it was the newest of have no value any more.
    fn unindex_key(&mut self, event: &StoredEvent) {
        let Some((_, topics)) = self.latest.remove(&event.seq()) else {
            return;
        };
        let Some(key) = &event.event.key else { return };
        for topic in topics {
            if let Some(seqs) = self.latest_by_topic.get_mut(&topic) {
                seqs.remove(&event.seq());
                if seqs.is_empty() {
                    self.latest_by_topic.remove(&topic);
                }
            }
            self.keys.remove(&(topic, key.clone()));
        }
    }
}

impl MemoryStore {
    /// An empty store with a fresh log identity.
    pub fn new(retention: Retention) -> Self {
        MemoryStore {
            log: LogId::random(),
            retention,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the ring half-updated in a way that
        // breaks ordering, so keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemoryStore {
    fn log_id(&self) -> LogId {
        self.log
    }

    fn bounds(&self) -> Bounds {
        let inner = self.lock();
        Bounds {
            first: inner.events.front().map_or(inner.last + 1, |e| e.seq()),
            last: inner.last,
        }
    }

    fn append(
        &self,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'_, Result<Vec<Arc<StoredEvent>>, StoreError>> {
        let mut inner = self.lock();
        // Checked under the same lock as the append: all or nothing (the store's contract).
        if let Some(id) = inner.conflict(&events) {
            return Box::pin(std::future::ready(Err(StoreError::IdConflict(id))));
        }
        let stored: Vec<_> = events
            .into_iter()
            .map(|event| {
                inner.last += 1;
                StoredEvent::new(self.log, inner.last, event)
            })
            .collect();
        for event in &stored {
            inner.bytes += event.encoded.len();
            inner.events.push_back(event.clone());
            if let Some(id) = &event.event.id {
                inner.ids.insert(id.clone(), event.seq());
            }
            inner.index_key(event);
        }
        while inner.events.len() > self.retention.max_events
            || (inner.bytes > self.retention.max_bytes && !inner.events.is_empty())
        {
            if let Some(old) = inner.events.pop_front() {
                inner.bytes -= old.encoded.len();
                if let Some(id) = &old.event.id {
                    inner.ids.remove(id);
                }
                inner.unindex_key(&old);
            }
        }
        Box::pin(std::future::ready(Ok(stored)))
    }

    fn find_id(&self, id: &str) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        let seq = self.lock().ids.get(id).copied();
        Box::pin(std::future::ready(Ok(seq)))
    }

    fn read(
        &self,
        after: u64,
        until: u64,
        selector: Arc<Selector>,
        limit: usize,
        max_bytes: usize,
    ) -> BoxFuture<'_, Result<ReadPage, StoreError>> {
        let inner = self.lock();
        let first = inner.events.front().map_or(inner.last + 1, |e| e.seq());
        let start = after.saturating_add(1).max(first);
        let mut page = PageBuilder::new(until.min(inner.last).max(after), limit, max_bytes);
        let skip = usize::try_from(start - first).unwrap_or(usize::MAX);
        for (scanned, event) in inner.events.iter().skip(skip).enumerate() {
            if event.seq() > until {
                break;
            }
            if page.is_full() || scanned == SCAN_LIMIT {
                page.stop_before(event.seq());
                break;
            }
            if selector.matches_any(&event.event.topics) && !page.push(event.clone()) {
                break;
            }
        }
        Box::pin(std::future::ready(Ok(page.finish())))
    }

    fn snapshot(
        &self,
        after: u64,
        until: u64,
        selector: Arc<Selector>,
        limit: usize,
        max_bytes: usize,
    ) -> BoxFuture<'_, Result<ReadPage, StoreError>> {
        let inner = self.lock();
        let until = until.min(inner.last).max(after);
        let exact: Option<Vec<Topic>> = selector.patterns().iter().map(|p| p.as_topic()).collect();
        if let Some(topics) = exact {
            // Only these topics' keys: one more than a page from each, merged; when some topic
            // was cut, the page ends at the last number kept.
            let mut seqs: Vec<u64> = topics
                .iter()
                .filter_map(|t| inner.latest_by_topic.get(t))
                .flat_map(|seqs| seqs.range(after.saturating_add(1)..=until).take(limit + 1))
                .copied()
                .collect();
            seqs.sort_unstable();
            seqs.dedup();
            let end = if seqs.len() > limit {
                seqs.truncate(limit);
                seqs.last().copied().unwrap_or(until)
            } else {
                until
            };
            let mut page = PageBuilder::new(end, limit, max_bytes);
            for seq in seqs {
                if let Some((event, _)) = inner.latest.get(&seq)
                    && !event.event.delete
                    && !page.push(event.clone())
                {
                    break;
                }
            }
            return Box::pin(std::future::ready(Ok(page.finish())));
        }
        let mut page = PageBuilder::new(until, limit, max_bytes);
        let range = inner.latest.range(after.saturating_add(1)..=until);
        for (scanned, (seq, (event, topics))) in range.enumerate() {
            if page.is_full() || scanned == SCAN_LIMIT {
                page.stop_before(*seq);
                break;
            }
            if !event.event.delete && selector.matches_any(topics) && !page.push(event.clone()) {
                break;
            }
        }
        Box::pin(std::future::ready(Ok(page.finish())))
    }
}
