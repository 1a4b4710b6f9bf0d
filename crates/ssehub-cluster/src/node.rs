//! What a node writes to Redis besides the log: its live-only events (`PUBLISH` on the
//! cluster's live channel, `relay.rs`) and its records (`HSET`/`HDEL` on its own hash,
//! `directory.rs`), from one task, in the order they were handed over, on the store's
//! connection. One order matters: a record written before an event that announces it is in
//! Redis before the event is published, so a node that reads the records after it subscribed
//! to the channel misses neither (docs/cluster.md, "Mercure's active subscriptions").
//!
//! Nothing here waits on a request's path: the queue is bounded (by count and by bytes) and
//! what does not fit is dropped — a live-only event for good (counted in
//! [`RelayStats::dropped`]), a record change by marking the node's hash for a rewrite. The
//! records live in memory too (the mirror), and the heartbeat (every [`HEARTBEAT`]) keeps the
//! hash alive ([`RECORD_TTL`]: a node that dies takes its records with it within that time)
//! and rewrites it from the mirror whenever a write was lost or Redis forgot the hash
//! (restarted empty, failed over to a replica that lacked it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::Script;
use ssehub_core::RelayStats;
use tokio::sync::mpsc;

use crate::scripts;
use crate::store::Inner;

/// How often a node refreshes its records' time to live.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(5);

/// How long a node's records outlive its last heartbeat: three heartbeats, so that one slow
/// or lost one does not unlist a live node's streams.
pub(crate) const RECORD_TTL: Duration = Duration::from_secs(15);

/// The most writes waiting for Redis.
const MAX_QUEUED: usize = 4096;

/// The most bytes of writes waiting for Redis.
const MAX_QUEUED_BYTES: usize = 4 << 20;

/// The most writes sent in one pipeline.
const MAX_PIPELINE: usize = 256;

/// Fields per `HSET` when a node rewrites its hash.
const REWRITE_CHUNK: usize = 512;

/// One write of the node, in the order it was handed over.
#[derive(Debug)]
pub(crate) enum Write {
    /// A relay message carrying `events` live-only events.
    Publish { message: Vec<u8>, events: u64 },
    /// One of the node's records, set.
    Set { field: String, value: String },
    /// One of the node's records, removed.
    Remove { field: String },
}

impl Write {
    /// What it holds, for the queue's byte bound.
    fn bytes(&self) -> usize {
        match self {
            Write::Publish { message, .. } => message.len(),
            Write::Set { field, value } => field.len() + value.len(),
            Write::Remove { field } => field.len(),
        }
    }
}

/// A node of the cluster: its id, its queue of writes, its records.
pub(crate) struct Node {
    /// Random, 16 hex digits: names its hash and marks its relay messages, so that it
    /// drops its own.
    pub(crate) id: String,
    queue: mpsc::Sender<Write>,
    /// Bytes of the writes in the queue.
    queued_bytes: AtomicUsize,
    /// The node's records as they should be in Redis (the mirror).
    records: Mutex<HashMap<String, String>>,
    /// A record change did not reach Redis: the heartbeat rewrites the hash.
    rewrite: AtomicBool,
    pub(crate) relay_stats: Arc<RelayStats>,
}

impl Node {
    /// A node with a fresh id, and the receiving end of its queue for [`start`].
    pub(crate) fn new() -> (Node, mpsc::Receiver<Write>) {
        let (queue, rx) = mpsc::channel(MAX_QUEUED);
        let node = Node {
            id: format!("{:016x}", rand::random::<u64>()),
            queue,
            queued_bytes: AtomicUsize::new(0),
            records: Mutex::new(HashMap::new()),
            rewrite: AtomicBool::new(false),
            relay_stats: Arc::new(RelayStats::default()),
        };
        (node, rx)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `write` unless the queue is full (by count or bytes); never waits.
    pub(crate) fn enqueue(&self, write: Write) -> bool {
        let bytes = write.bytes();
        let before = self.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        if before + bytes > MAX_QUEUED_BYTES || self.queue.try_send(write).is_err() {
            self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Sets one of the node's records: in the mirror at once, in Redis in queue order.
    pub(crate) fn set(&self, field: &str, value: String) {
        self.lock().insert(field.to_string(), value.clone());
        let write = Write::Set {
            field: field.to_string(),
            value,
        };
        if !self.enqueue(write) {
            self.rewrite.store(true, Ordering::Relaxed);
        }
    }

    /// Removes one of the node's records, the same way.
    pub(crate) fn remove(&self, field: &str) {
        self.lock().remove(field);
        let write = Write::Remove {
            field: field.to_string(),
        };
        if !self.enqueue(write) {
            self.rewrite.store(true, Ordering::Relaxed);
        }
    }
}

/// Starts the node's writer: the queue's writes in order, and the heartbeat. It ends when the
/// store is dropped.
pub(crate) fn start(inner: &Arc<Inner>, queue: mpsc::Receiver<Write>) {
    tokio::spawn(run(Arc::downgrade(inner), queue));
}

async fn run(inner: Weak<Inner>, mut queue: mpsc::Receiver<Write>) {
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let heartbeat = Script::new(scripts::HEARTBEAT);
    loop {
        tokio::select! {
            first = queue.recv() => {
                let Some(first) = first else { return };
                let mut batch = vec![first];
                while batch.len() < MAX_PIPELINE {
                    match queue.try_recv() {
                        Ok(write) => batch.push(write),
                        Err(_) => break,
                    }
                }
                let Some(inner) = inner.upgrade() else { return };
                write(&inner, batch).await;
            }
            _ = beat.tick() => {
                let Some(inner) = inner.upgrade() else { return };
                beat_once(&inner, &heartbeat).await;
            }
        }
    }
}

/// Sends `batch` in one pipeline, in order.
async fn write(inner: &Inner, batch: Vec<Write>) {
    let node = &inner.node;
    let bytes: usize = batch.iter().map(Write::bytes).sum();
    node.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
    let (channel, hash) = (inner.keys.key("live"), inner.keys.node_records(&node.id));
    let mut pipe = redis::pipe();
    let (mut events, mut records) = (0, false);
    for write in &batch {
        match write {
            Write::Publish { message, events: n } => {
                pipe.cmd("PUBLISH").arg(&channel).arg(message).ignore();
                events += n;
            }
            Write::Set { field, value } => {
                pipe.cmd("HSET").arg(&hash).arg(field).arg(value).ignore();
                records = true;
            }
            Write::Remove { field } => {
                pipe.cmd("HDEL").arg(&hash).arg(field).ignore();
                records = true;
            }
        }
    }
    if records {
        // A node's first record makes its hash: it expires unless the heartbeat keeps it,
        // and it is listed among the nodes'.
        pipe.cmd("PEXPIRE").arg(&hash).arg(ttl_ms()).ignore();
        pipe.cmd("SADD")
            .arg(inner.keys.key("nodes"))
            .arg(&node.id)
            .ignore();
    }
    match pipe.query_async::<()>(&mut inner.link.conn()).await {
        Ok(()) => count(&node.relay_stats.sent, events),
        Err(error) => {
            count(&node.relay_stats.dropped, events);
            if records {
                node.rewrite.store(true, Ordering::Relaxed);
            }
            tracing::debug!(%error, events, "Redis refused the node's writes; live events dropped");
            inner.link.failed().await;
        }
    }
}

/// One heartbeat: rewrites the node's hash if a change was lost, else keeps it alive (and
/// rewrites it if Redis no longer has it).
async fn beat_once(inner: &Inner, heartbeat: &Script) {
    let node = &inner.node;
    let result = if node.rewrite.swap(false, Ordering::Relaxed) {
        rewrite(inner).await
    } else {
        let alive: redis::RedisResult<u64> = heartbeat
            .key(inner.keys.key("nodes"))
            .key(inner.keys.node_records(&node.id))
            .arg(&node.id)
            .arg(inner.keys.node_records(""))
            .arg(ttl_ms())
            .invoke_async(&mut inner.link.conn())
            .await;
        match alive {
            Ok(0) if !node.lock().is_empty() => rewrite(inner).await,
            Ok(_) => Ok(()),
            Err(error) => Err(error),
        }
    };
    if let Err(error) = result {
        // Redis may come back without the hash: write it whole next time.
        node.rewrite.store(true, Ordering::Relaxed);
        tracing::debug!(%error, "the node's heartbeat failed; next time");
        inner.link.failed().await;
    }
}

/// Replaces the node's hash in Redis with the mirror, in one transaction.
async fn rewrite(inner: &Inner) -> redis::RedisResult<()> {
    let node = &inner.node;
    let records: Vec<(String, String)> = node
        .lock()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let hash = inner.keys.node_records(&node.id);
    let mut pipe = redis::pipe();
    pipe.atomic().cmd("DEL").arg(&hash).ignore();
    for chunk in records.chunks(REWRITE_CHUNK) {
        pipe.cmd("HSET").arg(&hash);
        for (field, value) in chunk {
            pipe.arg(field).arg(value);
        }
        pipe.ignore();
    }
    pipe.cmd("PEXPIRE").arg(&hash).arg(ttl_ms()).ignore();
    pipe.cmd("SADD")
        .arg(inner.keys.key("nodes"))
        .arg(&node.id)
        .ignore();
    pipe.query_async::<()>(&mut inner.link.conn()).await?;
    tracing::debug!(
        records = records.len(),
        "rewrote the node's records in Redis"
    );
    Ok(())
}

fn ttl_ms() -> u64 {
    u64::try_from(RECORD_TTL.as_millis()).unwrap_or(u64::MAX)
}

fn count(counter: &AtomicU64, n: u64) {
    if n > 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
