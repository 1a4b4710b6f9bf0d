//! Reading a page of events: from the tail cache when it covers the request, else from a
//! redb snapshot (by topic through `by_topic`, or a bounded scan of the whole log).

use ssehub_core::{PageBuilder, ReadPage, Selector, StoreError, StoredEvent};

use super::{BY_TOPIC, EVENTS, Inner, PUBLISHED, SCAN_LIMIT, store_error};
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
        let mut page = PageBuilder::new(until, limit, max_bytes);
        if let Some(topics) = exact.filter(|t| t.len() <= 8) {
            // Per-topic index: only this subscription's events are touched.
            let by_topic = txn.open_table(BY_TOPIC).map_err(store_error)?;
            let mut seqs = Vec::new();
            for topic in &topics {
                for entry in by_topic
                    .range((topic.as_str(), after + 1)..=(topic.as_str(), until))
                    .map_err(store_error)?
                    // One more than a page: if the merge has more than `limit`, some topic was
                    // cut, and the page ends at its last kept event.
                    .take(limit + 1)
                {
                    seqs.push(entry.map_err(store_error)?.0.value().1);
                }
            }
            seqs.sort_unstable();
            seqs.dedup();
            if seqs.len() > limit {
                seqs.truncate(limit);
                page = PageBuilder::new(*seqs.last().expect("limit > 0"), limit, max_bytes);
            }
            for seq in seqs {
                if let Some(rec) = events.get(seq).map_err(store_error)?
                    && !page.push(decode(seq, rec.value())?)
                {
                    break;
                }
            }
            return Ok(page.finish());
        }
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
