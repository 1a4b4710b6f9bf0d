//! The tail: every node follows the shared log with a blocking `XREAD` from the last entry it
//! saw, and hands what it reads to its hub as the store's ordered feed
//! ([`Store::ordered_feed`](ssehub_core::Store::ordered_feed)), so that every node fans out
//! every event — its own too — in the one order of the log.
//!
//! The tail has a connection of its own (a blocking read would hold up the appends on a
//! shared one). When Redis is gone it retries every [`RETRY`], from the same entry: once Redis
//! is back it catches up in order, no event skipped, none twice. An entry missing from the
//! sequence (retention deleted it while this node was cut off) cannot be sent: the tail goes
//! on from the next, and the hub, seeing the skip, ends its live streams so that their
//! clients resume from history with the gap notice.

use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::Value;
use ssehub_core::{OrderedFeed, StoreError, StoredEvent};
use tokio::sync::mpsc;

use crate::entry::{self, VALUES_PER_ENTRY};
use crate::store::{Inner, io};

/// How long one `XREAD` blocks waiting for new entries.
const BLOCK: Duration = Duration::from_secs(1);

/// The most entries one `XREAD` returns (one batch of the feed).
const BATCH: usize = 1024;

/// How long the tail waits before trying Redis again.
const RETRY: Duration = Duration::from_millis(200);

/// Starts the tail after sequence number `after`. It ends when the feed's receiver is dropped
/// or the store is.
pub(crate) fn start(inner: &Arc<Inner>, after: u64) -> OrderedFeed {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(run(Arc::downgrade(inner), after, tx));
    rx
}

async fn run(inner: Weak<Inner>, mut after: u64, tx: mpsc::Sender<Vec<Arc<StoredEvent>>>) {
    let mut conn = None;
    loop {
        let Some(store) = inner.upgrade() else {
            return;
        };
        if tx.is_closed() {
            return;
        }
        if conn.is_none() {
            // A reply may take the whole BLOCK; past it and a margin, Redis is gone.
            let config = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(2)))
                .set_response_timeout(Some(BLOCK + Duration::from_secs(2)));
            let connected = match store.link.client().await {
                Ok(client) => {
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await
                }
                Err(error) => Err(error),
            };
            match connected {
                Ok(c) => conn = Some(c),
                Err(error) => {
                    tracing::debug!(%error, "the tail cannot reach Redis; retrying");
                    drop(store);
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let mut xread = redis::cmd("XREAD");
        xread
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(u64::try_from(BLOCK.as_millis()).unwrap_or(1000))
            .arg("STREAMS")
            .arg(store.keys.key("log"))
            .arg(format!("{after}-0"));
        let read = xread.query_async::<Value>(c);
        let batch = match read
            .await
            .map_err(|e| io(&e))
            .and_then(|v| decode(&store, v))
        {
            Ok(batch) => batch,
            Err(error) => {
                if conn.take().is_some() {
                    tracing::warn!(%error, after, "the tail lost Redis; retrying");
                }
                drop(store);
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let Some(last) = batch.last().map(|e| e.seq()) else {
            continue;
        };
        store.saw(None, last);
        after = last;
        drop(store);
        if tx.send(batch).await.is_err() {
            return;
        }
    }
}

/// The events of an `XREAD` reply: nil when none came in time, else
/// `[[key, [[id, [field, value, …]], …]]]`.
fn decode(store: &Inner, reply: Value) -> Result<Vec<Arc<StoredEvent>>, StoreError> {
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams,
        other => return Err(entry::bad(&format!("an XREAD reply: {other:?}"))),
    };
    let mut events = Vec::new();
    for stream in streams {
        let Value::Array(parts) = stream else {
            return Err(entry::bad("an XREAD stream"));
        };
        let Some(Value::Array(entries)) = parts.into_iter().nth(1) else {
            return Err(entry::bad("an XREAD stream's entries"));
        };
        for e in entries {
            let Value::Array(mut pair) = e else {
                return Err(entry::bad("an XREAD entry"));
            };
            let Some(Value::Array(fields)) = pair.pop() else {
                return Err(entry::bad("an XREAD entry's fields"));
            };
            let mut values = pair;
            values.extend(fields.into_iter().skip(1).step_by(2));
            if values.len() != VALUES_PER_ENTRY {
                return Err(entry::bad("an entry with other fields"));
            }
            events.push(entry::decode(store.log, &values)?);
        }
    }
    Ok(events)
}
