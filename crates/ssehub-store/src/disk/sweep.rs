//! The retention sweep: what [`retention`](super::retention) decides, applied to the file in
//! small transactions.

use std::collections::HashMap;
use std::sync::Arc;

use redb::{Durability, ReadableTable, WriteTransaction};
use ssehub_core::StoreError;

use super::retention::{Entry, Keyed, Victims, ruled_topics};
use super::state::TopicStats;
use super::{
    BY_TOPIC, Db, EVENTS, Inner, KEYED, KEYS, META, PUBLISHED, SWEEP_BATCH, TOPICS, now_ms,
    store_error, write_counters,
};

/// How many events of one compacted topic one sweep looks at, at most.
const COMPACT_SCAN: usize = 20_000;
use crate::record;

impl Inner {
    /// Deletes up to [`SWEEP_BATCH`] events that break a retention bound.
    pub(super) fn sweep_once(&self) -> Result<u64, StoreError> {
        if matches!(&*self.db(), Db::ReadOnly(_)) {
            return Ok(0);
        }
        let _writer = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let retention = &self.options.retention;
        if !retention.hub.is_bounded() && retention.topics.is_empty() {
            return Ok(0);
        }
        // First: it may reopen the file, which reloads the counters read next.
        let txn = self.begin_write()?;
        // Only the totals, and the topics under a rule, are copied. Appends wait for
        // `write_lock`, so nothing read here changes until this sweep is over.
        let (total_count, total_bytes, last, ruled) = {
            let s = self.lock_state();
            (s.count, s.bytes, s.last, ruled_topics(retention, &s.topics))
        };
        if !retention.hub.is_bounded() && ruled.is_empty() {
            txn.abort().map_err(store_error)?;
            return Ok(0);
        }
        let mut victims = Victims::new(SWEEP_BATCH, now_ms());
        {
            let events = txn.open_table(EVENTS).map_err(store_error)?;
            let by_topic = txn.open_table(BY_TOPIC).map_err(store_error)?;
            let keyed = txn.open_table(KEYED).map_err(store_error)?;
            // The whole log, oldest first.
            let log = events.iter().map_err(store_error)?.map(|entry| {
                let (seq, rec) = entry.map_err(store_error)?;
                Ok(Entry {
                    seq: seq.value(),
                    size: record::size(rec.value()),
                    time_ms: record::time_ms(rec.value()),
                })
            });
            victims.take_expired(&retention.hub, total_count, total_bytes, log)?;
            // Each topic under a rule, oldest first.
            for (topic, stats, rule) in &ruled {
                let entries = by_topic
                    .range((&**topic, 0)..=(&**topic, u64::MAX))
                    .map_err(store_error)?
                    .map(|entry| {
                        let (key, size) = entry.map_err(store_error)?;
                        let seq = key.value().1;
                        // The record is read only when an age bound needs its time.
                        let time_ms = match rule.limits.max_age {
                            Some(_) => events
                                .get(seq)
                                .map_err(store_error)?
                                .and_then(|r| record::time_ms(r.value())),
                            None => None,
                        };
                        Ok(Entry {
                            seq,
                            size: size.value(),
                            time_ms,
                        })
                    });
                victims.take_expired(&rule.limits, stats.count, stats.bytes, entries)?;
            }
            // Compacted topics: a bounded walk from where the last sweep stopped.
            let mut compacted_to = self.compacted_to.lock().unwrap_or_else(|e| e.into_inner());
            for (topic, _, rule) in &ruled {
                let Some(compaction) = &rule.compaction else {
                    continue;
                };
                if victims.is_full() {
                    break;
                }
                let from = compacted_to.get(topic).copied().unwrap_or(0);
                let events = by_topic
                    .range((&**topic, from + 1)..=(&**topic, u64::MAX))
                    .map_err(store_error)?
                    .take(COMPACT_SCAN)
                    .map(|entry| {
                        let seq = entry.map_err(store_error)?.0.value().1;
                        let rec = events.get(seq).map_err(store_error)?;
                        let rec = rec.as_ref().map(|r| r.value()).unwrap_or_default();
                        let (has_key, tombstone) = record::key_flags(rec);
                        let newest =
                            has_key && keyed.get((&**topic, seq)).map_err(store_error)?.is_some();
                        Ok(Keyed {
                            seq,
                            has_key,
                            newest,
                            tombstone,
                            time_ms: record::time_ms(rec),
                        })
                    });
                match victims.take_compacted(compaction, events)? {
                    Some(last) => compacted_to.insert(topic.clone(), last),
                    // Past the end: the next sweep starts over.
                    None => compacted_to.remove(topic),
                };
            }
        }
        let (victims, quiet) = victims.into_parts();
        if victims.is_empty() {
            txn.abort().map_err(store_error)?;
            return Ok(0);
        }
        self.delete(txn, &victims, &quiet, (total_count, total_bytes, last))?;
        self.dirty.store(true, std::sync::atomic::Ordering::Release);
        self.lock_tail()
            .retain(|e| victims.binary_search(&e.seq()).is_err());
        Ok(victims.len() as u64)
    }

    /// Deletes `victims` (sorted) and updates the counters, given the totals and last
    /// sequence number before. Those of `quiet` (sorted; replaced by a newer event of their
    /// key, under compaction) leave their topics' `dropped_upto` as it is. The new counters are announced before the commit (see
    /// [`State::announce`](super::state::State::announce)) and restored if it fails.
    fn delete(
        &self,
        mut txn: WriteTransaction,
        victims: &[u64],
        quiet: &[u64],
        (mut count, mut bytes, last): (u64, u64, u64),
    ) -> Result<(), StoreError> {
        txn.set_durability(Durability::None)
            .map_err(|e| StoreError::Io(e.to_string()))?;
        let mut touched: HashMap<Arc<str>, TopicStats> = HashMap::new();
        let first;
        {
            let mut events = txn.open_table(EVENTS).map_err(store_error)?;
            let mut by_topic = txn.open_table(BY_TOPIC).map_err(store_error)?;
            let mut topics = txn.open_table(TOPICS).map_err(store_error)?;
            let mut meta = txn.open_table(META).map_err(store_error)?;
            let mut published = txn.open_table(PUBLISHED).map_err(store_error)?;
            let mut keys = txn.open_table(KEYS).map_err(store_error)?;
            let mut keyed = txn.open_table(KEYED).map_err(store_error)?;
            for &seq in victims {
                let Some(rec) = events.remove(seq).map_err(store_error)? else {
                    continue;
                };
                let rec = rec.value().to_vec();
                let size = record::size(&rec);
                let (event, _) =
                    record::decode(seq, &rec).map_err(|e| StoreError::Io(e.to_string()))?;
                // The deleted event's id leaves the index with it (unknown, and free again).
                if let Some(id) = &event.id
                    && published
                        .get(id.as_str())
                        .map_err(store_error)?
                        .map(|s| s.value())
                        == Some(seq)
                {
                    published.remove(id.as_str()).map_err(store_error)?;
                }
                for topic in &event.topics {
                    by_topic
                        .remove((topic.as_str(), seq))
                        .map_err(store_error)?;
                    // A key whose newest event goes has no value any more (older ones went
                    // first, or are going).
                    if keyed
                        .remove((topic.as_str(), seq))
                        .map_err(store_error)?
                        .is_some()
                        && let Some(key) = &event.key
                    {
                        keys.remove((topic.as_str(), key.as_str()))
                            .map_err(store_error)?;
                    }
                    let key: Arc<str> = Arc::from(topic.as_str());
                    let stats = touched.entry(key.clone()).or_insert_with(|| {
                        self.lock_state()
                            .topics
                            .get(&key)
                            .copied()
                            .unwrap_or_default()
                    });
                    stats.count = stats.count.saturating_sub(1);
                    stats.bytes = stats.bytes.saturating_sub(size);
                    if quiet.binary_search(&seq).is_err() {
                        stats.dropped_upto = stats.dropped_upto.max(seq);
                    }
                }
                count -= 1;
                bytes = bytes.saturating_sub(size);
            }
            write_counters(&mut topics, &mut meta, &touched, count, bytes)?;
            first = match events.first().map_err(store_error)? {
                Some((seq, _)) => seq.value(),
                None => last + 1,
            };
        }
        // Announced before the commit: appends cannot run meanwhile (write_lock), so the new
        // state is the whole truth once committed.
        let previous = self.lock_state().announce(first, count, bytes, touched);
        if let Err(error) = commit(txn) {
            self.lock_state().restore(previous);
            return Err(error);
        }
        Ok(())
    }
}

#[cfg(test)]
thread_local! {
    /// Set by a test: the next sweep commit on this thread fails (a real commit failure, a
    /// full disk say, cannot be produced on demand).
    static FAIL_NEXT_COMMIT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Commits a sweep's deletion.
fn commit(txn: WriteTransaction) -> Result<(), StoreError> {
    #[cfg(test)]
    if FAIL_NEXT_COMMIT.with(|fail| fail.replace(false)) {
        txn.abort().map_err(store_error)?;
        return Err(StoreError::Io("injected commit failure".into()));
    }
    txn.commit().map_err(store_error)
}

#[cfg(test)]
mod tests {
    use ssehub_core::{NewEvent, Selector, Store as _, Topic};

    use super::*;
    use crate::{DiskOptions, DiskStore, Retention, RetentionLimits};

    /// A store keeping 2 events hub-wide, with `n` events on topics `a` and `b` in turn.
    fn store_of(dir: &std::path::Path, n: u64) -> DiskStore {
        let options = DiskOptions {
            retention: Retention {
                hub: RetentionLimits {
                    max_events: Some(2),
                    ..RetentionLimits::default()
                },
                ..Retention::default()
            },
            ..DiskOptions::default()
        };
        let store = DiskStore::open(dir, options).unwrap();
        let events = (0..n)
            .map(|i| {
                let topic = if i % 2 == 0 { "a" } else { "b" };
                NewEvent::new(Topic::new(topic).unwrap(), i.to_string())
            })
            .collect();
        store.inner.append_blocking(events).unwrap();
        store
    }

    /// The sweep announces the new floor before its commit; when the commit fails, the file
    /// still holds everything, and so must the counters: the floor, the totals and every
    /// topic's stats come back as they were, and the next sweep deletes the same events.
    #[test]
    fn a_failed_commit_restores_the_announced_floor() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_of(dir.path(), 5);
        let before = store.inner.lock_state().clone();
        let selector = Selector::new(vec![ssehub_core::Pattern::new("a").unwrap()]).unwrap();
        assert_eq!(store.retained_from(&selector), 1);

        FAIL_NEXT_COMMIT.with(|fail| fail.set(true));
        let error = store.sweep().unwrap_err();
        assert!(error.to_string().contains("injected"), "{error}");
        assert_eq!(*store.inner.lock_state(), before);
        assert_eq!((store.bounds().first, store.len()), (1, 5));
        assert_eq!(store.retained_from(&selector), 1);

        assert_eq!(store.sweep().unwrap(), 3);
        let after = store.inner.lock_state().clone();
        assert_eq!((after.first, after.count), (4, 2));
        assert_eq!(after.max_dropped, 3);
        assert_eq!(after.topics[&Arc::from("a")].dropped_upto, 3);
        assert_eq!(store.retained_from(&selector), 4);
        // The file agrees: reopened, it holds the same counters.
        assert!(store.close(std::time::Duration::from_secs(5)));
        let reopened = DiskStore::open(dir.path(), DiskOptions::default()).unwrap();
        assert_eq!(*reopened.inner.lock_state(), after);
    }
}
