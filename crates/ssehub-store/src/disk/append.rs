//! Appending: one redb write transaction per batch from the hub's commit task (group
//! commit), and the periodic fsync under [`FsyncPolicy::Interval`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use redb::{Durability, ReadableTable};
use ssehub_core::{NewEvent, StoreError, StoredEvent};

use super::state::TopicStats;
use super::{
    BY_TOPIC, EVENTS, Inner, KEYED, KEYS, META, PUBLISHED, TOPICS, now_ms, store_error,
    write_counters,
};
use crate::options::FsyncPolicy;
use crate::record;

impl Inner {
    pub(super) fn append_blocking(
        &self,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Arc<StoredEvent>>, StoreError> {
        let _writer = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let now = now_ms();
        // First: it may reopen the file, which reloads the counters read next.
        let mut txn = self.begin_write()?;
        let (mut seq, mut count, mut bytes) = {
            let s = self.lock_state();
            (s.last, s.count, s.bytes)
        };
        let mut touched: HashMap<Arc<str>, TopicStats> = HashMap::new();
        let fsync_now = self.options.fsync == FsyncPolicy::Always;
        let durability = if fsync_now {
            Durability::Immediate
        } else {
            Durability::None
        };
        txn.set_durability(durability)
            .map_err(|e| StoreError::Io(e.to_string()))?;
        let first_seq = seq + 1;
        // Publisher ids first, in this transaction: the batch is refused whole, before
        // anything is written, when one is taken (the `Store` contract). A batch without one
        // leaves the table alone.
        if events.iter().any(|e| e.id.is_some()) {
            let mut published = txn.open_table(PUBLISHED).map_err(store_error)?;
            let mut batch = HashSet::new();
            for id in events.iter().filter_map(|e| e.id.as_deref()) {
                if !batch.insert(id) || published.get(id).map_err(store_error)?.is_some() {
                    let id = id.to_string();
                    drop(published);
                    txn.abort().map_err(store_error)?;
                    return Err(StoreError::IdConflict(id));
                }
            }
            for (event, seq) in events.iter().zip(first_seq..) {
                if let Some(id) = &event.id {
                    published.insert(id.as_str(), seq).map_err(store_error)?;
                }
            }
        }
        // Keys, in the same transaction: each keyed event becomes its key's newest in each of
        // its topics. A batch without keys leaves the tables alone.
        if events.iter().any(|e| e.key.is_some()) {
            let mut keys = txn.open_table(KEYS).map_err(store_error)?;
            let mut keyed = txn.open_table(KEYED).map_err(store_error)?;
            for (event, seq) in events.iter().zip(first_seq..) {
                let Some(key) = event.key.as_deref() else {
                    continue;
                };
                for topic in &event.topics {
                    let topic = topic.as_str();
                    let old = keys.insert((topic, key), seq).map_err(store_error)?;
                    if let Some(old) = old.map(|o| o.value())
                        && old != seq
                    {
                        keyed.remove((topic, old)).map_err(store_error)?;
                    }
                    keyed.insert((topic, seq), key).map_err(store_error)?;
                }
            }
        }
        {
            let mut table = txn.open_table(EVENTS).map_err(store_error)?;
            let mut by_topic = txn.open_table(BY_TOPIC).map_err(store_error)?;
            let mut topics = txn.open_table(TOPICS).map_err(store_error)?;
            let mut meta = txn.open_table(META).map_err(store_error)?;
            let state = self.lock_state();
            for event in &events {
                seq += 1;
                let rec = record::encode(event, now);
                let size = record::size(&rec);
                table.insert(seq, rec.as_slice()).map_err(store_error)?;
                for topic in &event.topics {
                    by_topic
                        .insert((topic.as_str(), seq), size)
                        .map_err(store_error)?;
                    let stats = touched.entry(Arc::from(topic.as_str())).or_insert_with(|| {
                        state
                            .topics
                            .get(topic.as_str())
                            .copied()
                            .unwrap_or_default()
                    });
                    stats.count += 1;
                    stats.bytes += size;
                }
                count += 1;
                bytes += size;
            }
            drop(state);
            write_counters(&mut topics, &mut meta, &touched, count, bytes)?;
            meta.insert("last_seq", &seq.to_le_bytes()[..])
                .map_err(store_error)?;
        }
        txn.commit().map_err(store_error)?;
        if !fsync_now {
            self.dirty.store(true, std::sync::atomic::Ordering::Release);
        }
        {
            let mut state = self.lock_state();
            if state.count == 0 {
                state.first = first_seq;
            }
            state.last = seq;
            state.count = count;
            state.bytes = bytes;
            state.topics.extend(touched);
        }
        let stored: Vec<Arc<StoredEvent>> = events
            .into_iter()
            .zip(first_seq..)
            .map(|(event, seq)| StoredEvent::new(self.log(), seq, event))
            .collect();
        let mut tail = self.lock_tail();
        for event in &stored {
            tail.push(
                event.clone(),
                self.options.tail_cache_events,
                self.options.tail_cache_bytes,
            );
        }
        Ok(stored)
    }

    /// Makes appends under [`FsyncPolicy::Interval`] durable.
    pub(super) fn flush(&self) {
        if !self.dirty.swap(false, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        let _writer = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let result = self
            .begin_write()
            .and_then(|txn| txn.commit().map_err(store_error));
        if let Err(error) = result {
            self.dirty.store(true, std::sync::atomic::Ordering::Release);
            tracing::warn!(%error, "periodic fsync failed");
        }
    }
}
