//! Reading a page of events: from the tail cache when it covers the request, else from a
//! redb snapshot (by topic through `by_topic`, or a bounded scan of the whole log); and pages
//! of a snapshot of keys, through `keyed`.

use redb::ReadableTable;
use ssehub_core::{PageBuilder, ReadPage, Selector, StoreError, StoredEvent, Topic};

use super::{BY_TOPIC, EVENTS, Inner, KEYED, PUBLISHED, SCAN_LIMIT, store_error};
use crate::record;

impl Inner {
    /// The sequence number of the retained event with publisher id `id`.
    pub(super) fn find_id_blocking(&self, id: &str) -> Result<Option<u64>, StoreError> {
        let db = self.db();
        let txn = db.begin_read().map_err(store_error)?;
        let published = match txn.open_table(PUBLISHED) {
            Ok(table) => table,
            // A store no publisher id was ever written to.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(store_error(e)),
        };
        Ok(published.get(id).map_err(store_error)?.map(|s| s.value()))
    }

    pub(super) fn read_blocking(
        &self,
        after: u64,
        until: u64,
        selector: &Selector,
        limit: usize,
        max_bytes: usize,
    ) -> Result<ReadPage, StoreError> {
        if let Some(page) = self.read_tail(after, until, selector, limit, max_bytes) {
            return Ok(page);
        }
        let db = self.db();
        let txn = db.begin_read().map_err(store_error)?;
        let events = txn.open_table(EVENTS).map_err(store_error)?;
        let decode = |seq: u64, rec: &[u8]| {
            record::decode(seq, rec)
                .map(|(event, _)| StoredEvent::new(self.log(), seq, event))
                .map_err(|e| StoreError::Io(e.to_string()))
        };
        let exact: Option<Vec<_>> = selector.patterns().iter().map(|p| p.as_topic()).collect();
        if let Some(topics) = exact.filter(|t| t.len() <= 8) {
            let topics: Vec<&str> = topics.iter().map(Topic::as_str).collect();
            // Per-topic index: only this subscription's events are touched.
            let by_topic = txn.open_table(BY_TOPIC).map_err(store_error)?;
            let (seqs, end) = merge_topics(&by_topic, &topics, after, until, limit)?;
            let mut page = PageBuilder::new(end, limit, max_bytes);
            for seq in seqs {
                if let Some(rec) = events.get(seq).map_err(store_error)?
                    && !page.push(decode(seq, rec.value())?)
                {
                    break;
                }
            }
            return Ok(page.finish());
        }
        let mut page = PageBuilder::new(until, limit, max_bytes);
        for (scanned, entry) in events
            .range(after + 1..=until)
            .map_err(store_error)?
            .enumerate()
        {
            let (seq, rec) = entry.map_err(store_error)?;
            let seq = seq.value();
            if page.is_full() || scanned == SCAN_LIMIT {
                page.stop_before(seq);
                break;
            }
            let event = decode(seq, rec.value())?;
            if selector.matches_any(&event.event.topics) && !page.push(event) {
                break;
            }
        }
        Ok(page.finish())
    }

    /// A page of the snapshot of `selector` (see `Store::snapshot`): the events `keyed` holds
    /// for the matching topics — the selector's own when it names topics, else every known
    /// topic it matches — merged in sequence order, tombstones left out.
    pub(super) fn snapshot_blocking(
        &self,
        after: u64,
        until: u64,
        selector: &Selector,
        limit: usize,
        max_bytes: usize,
    ) -> Result<ReadPage, StoreError> {
        let exact: Option<Vec<String>> = selector
            .patterns()
            .iter()
            .map(|p| p.as_topic().map(|t| t.as_str().to_string()))
            .collect();
        let topics = exact.unwrap_or_else(|| {
            let state = self.lock_state();
            state
                .topics
                .iter()
                .filter(|(name, stats)| {
                    stats.count > 0 && Topic::iri(name).is_ok_and(|t| selector.matches_any(&[t]))
                })
                .map(|(name, _)| name.to_string())
                .collect()
        });
        let db = self.db();
        let txn = db.begin_read().map_err(store_error)?;
        let keyed = match txn.open_table(KEYED) {
            Ok(table) => table,
            // A store no key was ever written to: an empty snapshot.
            Err(redb::TableError::TableDoesNotExist(_)) => {
                return Ok(PageBuilder::new(until, limit, max_bytes).finish());
            }
            Err(e) => return Err(store_error(e)),
        };
        let events = txn.open_table(EVENTS).map_err(store_error)?;
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        let (seqs, end) = merge_topics(&keyed, &topics, after, until, limit)?;
        let mut page = PageBuilder::new(end, limit, max_bytes);
        for seq in seqs {
            let Some(rec) = events.get(seq).map_err(store_error)? else {
                continue;
            };
            let (event, _) =
                record::decode(seq, rec.value()).map_err(|e| StoreError::Io(e.to_string()))?;
            if !event.delete && !page.push(StoredEvent::new(self.log(), seq, event)) {
                break;
            }
        }
        Ok(page.finish())
    }

    /// Serves a read from the in-memory tail when it covers `after + 1`.
    pub(super) fn read_tail(
        &self,
        after: u64,
        until: u64,
        selector: &Selector,
        limit: usize,
        max_bytes: usize,
    ) -> Option<ReadPage> {
        let tail = self.lock_tail();
        let tail = &tail.events;
        let front = tail.front()?.seq();
        let first = self.lock_state().first;
        // The tail covers the request if it starts at or before the first wanted event (or at
        // the log's first retained event, when older ones were deleted).
        if front > after + 1 && front > first {
            return None;
        }
        let mut page = PageBuilder::new(until, limit, max_bytes);
        let start = tail.partition_point(|e| e.seq() <= after);
        for event in tail.iter().skip(start) {
            if event.seq() > until {
                break;
            }
            if page.is_full() {
                page.stop_before(event.seq());
                break;
            }
            if selector.matches_any(&event.event.topics) && !page.push(event.clone()) {
                break;
            }
        }
        Some(page.finish())
    }
}

/// Merges the per-topic index `table` (keyed by (topic, seq): `by_topic` or `keyed`) over
/// `topics` into one page's worth of sequence numbers in `(after, until]`: the first `limit`
/// of the merge, without duplicates, and how far the page may say it scanned — `until`, or its
/// last number when some topic was cut.
fn merge_topics<V: redb::Value + 'static>(
    table: &impl ReadableTable<(&'static str, u64), V>,
    topics: &[&str],
    after: u64,
    until: u64,
    limit: usize,
) -> Result<(Vec<u64>, u64), StoreError> {
    let mut seqs = Vec::new();
    if after < until {
        for topic in topics {
            // One more than a page from each topic: if the merge has more than `limit`, some
            // topic was cut, and the page ends at its last kept event.
            for entry in table
                .range((*topic, after + 1)..=(*topic, until))
                .map_err(store_error)?
                .take(limit + 1)
            {
                seqs.push(entry.map_err(store_error)?.0.value().1);
            }
        }
    }
    seqs.sort_unstable();
    seqs.dedup();
    if seqs.len() > limit {
        seqs.truncate(limit);
        let end = *seqs.last().expect("limit > 0");
        return Ok((seqs, end));
    }
    Ok((seqs, until))
}
