//! The tail: every node follows the shared log with a blocking `XREAD` from the last entry it
//! saw, and hands what it reads to its hub as the store's ordered feed
//! ([`Store::ordered_feed`](ssehub_core::Store::ordered_feed)), so that every node fans out
//! every event — its own too — in the one order of the log.
//!
//! The tail has a connection of its own (a blocking read would hold up the appends on a
//! shared one). When Redis is gone it retries every [`RETRY`], from the same entry: once Redis
//! is back it catches up in order, no event skipped, none twice. An entry missing from the
//! sequence (retention deleted it while this node was cut off) cannot be sent: the tail goes
//! on from the next, starting a new batch there, and the hub, seeing the skip, ends its live
//! streams so that their clients resume from history with the gap notice.
//!
//! With `min_replicas`, the tail reads the log only up to the replicated watermark, and
//! blocks on the `commits` stream instead of the log (`replicated.rs` says why).

use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::Value;
use redis::aio::MultiplexedConnection;
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
    let mut watermark = inner
        .upgrade()
        .is_some_and(|i| i.min_replicas > 0)
        .then(Watermark::default);
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
        let read = match watermark.as_mut() {
            None => read_log(&store, c, after).await,
            Some(watermark) => read_committed(&store, c, after, watermark).await,
        };
        let (batch, read_to) = match read {
            Ok(read) => read,
            Err(error) => {
                if conn.take().is_some() {
                    tracing::warn!(%error, after, "the tail lost Redis; retrying");
                }
                if let Some(watermark) = watermark.as_mut() {
                    // The primary may have changed: look at its commits afresh.
                    watermark.cursor = None;
                }
                drop(store);
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        after = after.max(read_to);
        let Some(last) = batch.last().map(|e| e.seq()) else {
            continue;
        };
        store.saw(None, last);
        drop(store);
        for run in contiguous_runs(batch) {
            if tx.send(run).await.is_err() {
                return;
            }
        }
    }
}

/// `batch` cut wherever a sequence number is missing, so that the hub sees every hole at the
/// start of a batch, where it looks for events the log lost before this node read them.
/// Retention of the whole log deletes from the front only, but per-topic rules delete from
/// anywhere (after a grace that a tail cut off from Redis for longer may miss).
fn contiguous_runs(batch: Vec<Arc<StoredEvent>>) -> Vec<Vec<Arc<StoredEvent>>> {
    let mut runs: Vec<Vec<Arc<StoredEvent>>> = Vec::new();
    for event in batch {
        match runs.last_mut() {
            Some(run) if run.last().is_some_and(|e| e.seq() + 1 == event.seq()) => {
                run.push(event);
            }
            _ => runs.push(vec![event]),
        }
    }
    runs
}

/// Reads the entries after `after` as they are appended (without `min_replicas`). Returns
/// them and how far the read went.
async fn read_log(
    store: &Inner,
    conn: &mut MultiplexedConnection,
    after: u64,
) -> Result<(Vec<Arc<StoredEvent>>, u64), StoreError> {
    let reply: Value = redis::cmd("XREAD")
        .arg("COUNT")
        .arg(BATCH)
        .arg("BLOCK")
        .arg(block_ms())
        .arg("STREAMS")
        .arg(store.keys.key("log"))
        .arg(format!("{after}-0"))
        .query_async(conn)
        .await
        .map_err(|e| io(&e))?;
    let batch = match only_stream(reply)? {
        Some(entries) => decode(store, entries)?,
        None => Vec::new(),
    };
    let to = batch.last().map_or(after, |e| e.seq());
    Ok((batch, to))
}

/// What the tail knows of the replicated watermark (`replicated.rs`).
#[derive(Debug, Default)]
struct Watermark {
    /// The highest `committed` seen.
    committed: u64,
    /// The id of the last `commits` entry read; `None` until read from this primary.
    cursor: Option<String>,
}

/// Reads the entries after `after` up to the replicated watermark, blocking on the
/// `commits` stream until it passes `after` (with `min_replicas`). Returns them and how far
/// the read went: up to the watermark when retention deleted every entry before it.
async fn read_committed(
    store: &Inner,
    conn: &mut MultiplexedConnection,
    after: u64,
    watermark: &mut Watermark,
) -> Result<(Vec<Arc<StoredEvent>>, u64), StoreError> {
    let commits = store.keys.key("commits");
    let committed_key = store.keys.key("committed");
    if watermark.cursor.is_none() {
        let (latest, committed): (Value, Option<u64>) = redis::pipe()
            .cmd("XREVRANGE")
            .arg(&commits)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .cmd("GET")
            .arg(&committed_key)
            .query_async(conn)
            .await
            .map_err(|e| io(&e))?;
        let latest = entries(latest)?;
        watermark.cursor = Some(match latest.last() {
            Some(entry) => entry_id(entry)?,
            None => "0-0".to_string(),
        });
        watermark.committed = watermark.committed.max(committed.unwrap_or(0));
    }
    if watermark.committed <= after {
        let cursor = watermark
            .cursor
            .clone()
            .unwrap_or_else(|| "0-0".to_string());
        let reply: Value = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(block_ms())
            .arg("STREAMS")
            .arg(&commits)
            .arg(cursor)
            .query_async(conn)
            .await
            .map_err(|e| io(&e))?;
        match only_stream(reply)? {
            Some(raised) => {
                for entry in &raised {
                    let (id, fields) = split_entry(entry)?;
                    if let [_, seq] = fields {
                        watermark.committed = watermark.committed.max(entry::number(seq)?);
                    }
                    watermark.cursor = Some(id);
                }
            }
            None => {
                // Nothing in BLOCK: look at the watermark itself too, in case a rise's entry
                // did not survive a failover (the watermark never falls, the stream may).
                let committed: Option<u64> = redis::cmd("GET")
                    .arg(&committed_key)
                    .query_async(conn)
                    .await
                    .map_err(|e| io(&e))?;
                watermark.committed = watermark.committed.max(committed.unwrap_or(0));
            }
        }
        if watermark.committed <= after {
            return Ok((Vec::new(), after));
        }
    }
    let reply: Value = redis::cmd("XRANGE")
        .arg(store.keys.key("log"))
        .arg(format!("{}-0", after + 1))
        .arg(format!("{}-0", watermark.committed))
        .arg("COUNT")
        .arg(BATCH)
        .query_async(conn)
        .await
        .map_err(|e| io(&e))?;
    let batch = decode(store, entries(reply)?)?;
    let to = if batch.len() == BATCH {
        batch.last().map_or(after, |e| e.seq())
    } else {
        watermark.committed
    };
    Ok((batch, to))
}

fn block_ms() -> u64 {
    u64::try_from(BLOCK.as_millis()).unwrap_or(1000)
}

/// The entries of the one stream of an `XREAD` reply: `None` when none came in time (nil),
/// else the entries of `[[key, [entry, …]]]`.
fn only_stream(reply: Value) -> Result<Option<Vec<Value>>, StoreError> {
    let streams = match reply {
        Value::Nil => return Ok(None),
        Value::Array(streams) => streams,
        other => return Err(entry::bad(&format!("an XREAD reply: {other:?}"))),
    };
    let Some(Value::Array(parts)) = streams.into_iter().next() else {
        return Err(entry::bad("an XREAD stream"));
    };
    let Some(entries) = parts.into_iter().nth(1) else {
        return Err(entry::bad("an XREAD stream's entries"));
    };
    self::entries(entries).map(Some)
}

/// The entries of an `XRANGE`-shaped reply: `[[id, [field, value, …]], …]`.
fn entries(reply: Value) -> Result<Vec<Value>, StoreError> {
    match reply {
        Value::Array(entries) => Ok(entries),
        Value::Nil => Ok(Vec::new()),
        other => Err(entry::bad(&format!("a list of stream entries: {other:?}"))),
    }
}

/// An entry's id and its fields and values.
fn split_entry(entry: &Value) -> Result<(String, &[Value]), StoreError> {
    let Value::Array(pair) = entry else {
        return Err(entry::bad("a stream entry"));
    };
    let [id, Value::Array(fields)] = &pair[..] else {
        return Err(entry::bad("a stream entry's fields"));
    };
    Ok((entry::text(id)?.to_string(), fields))
}

fn entry_id(entry: &Value) -> Result<String, StoreError> {
    split_entry(entry).map(|(id, _)| id)
}

/// The events of log entries.
fn decode(store: &Inner, entries: Vec<Value>) -> Result<Vec<Arc<StoredEvent>>, StoreError> {
    let mut events = Vec::with_capacity(entries.len());
    for e in entries {
        let Value::Array(mut pair) = e else {
            return Err(entry::bad("a log entry"));
        };
        let Some(Value::Array(fields)) = pair.pop() else {
            return Err(entry::bad("a log entry's fields"));
        };
        let mut values = pair;
        values.extend(fields.into_iter().skip(1).step_by(2));
        // An entry written before publisher ids has no `i`, `b`, `k`, `x`; one before binary
        // events and keys no `b`, `k`, `x`.
        if ![VALUES_PER_ENTRY, VALUES_PER_ENTRY - 3, VALUES_PER_ENTRY - 4].contains(&values.len()) {
            return Err(entry::bad("an entry with other fields"));
        }
        events.push(entry::decode(store.log, &values)?);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use ssehub_core::{LogId, NewEvent, Topic};

    use super::*;

    #[test]
    fn a_batch_is_cut_at_each_hole() {
        let batch = [3, 4, 6, 7, 9]
            .into_iter()
            .map(|seq| StoredEvent::new(LogId(1), seq, NewEvent::new(Topic::new("t").unwrap(), "")))
            .collect();
        let runs: Vec<Vec<u64>> = contiguous_runs(batch)
            .iter()
            .map(|run| run.iter().map(|e| e.seq()).collect())
            .collect();
        assert_eq!(runs, [vec![3, 4], vec![6, 7], vec![9]]);
    }
}
