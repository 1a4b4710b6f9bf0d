//! [`RedisStore`]: the [`Store`] of a cluster of hubs, one log in Redis shared by every node.
//!
//! Every step on the log is one Lua script (`scripts.rs`), so Redis alone orders the events
//! of every node and gives their sequence numbers; an append returns only once Redis has
//! answered the script, so a publisher's 200 means Redis has the event (as durably as its
//! `appendfsync` says: docs/cluster.md). `bounds` and `retained_from` are synchronous in the
//! `Store` trait, so the node keeps them in memory: `last` moves with its own appends and
//! with the tail (`tail.rs`), the floor with its sweeps and with every read, which returns
//! the floor as of the read — so a reader that finds the floor unmoved after a page knows
//! the page was complete (ARCHITECTURE.md, invariant 8), whichever node swept.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::aio::ConnectionManagerConfig;
use redis::{RedisResult, Script, Value};
use ssehub_core::{
    Bounds, BoxFuture, LiveRelay, LogId, NewEvent, OrderedFeed, PageBuilder, ReadPage, Selector,
    Store, StoreError, StoredEvent,
};

use crate::directory::NodeDirectory;
use crate::entry::{self, VALUES_PER_ENTRY};
use crate::node::Node;
use crate::primary::Link;
use crate::replicated;
use crate::scripts::{self, Keys};

/// How much history the cluster keeps; `None` for no bound. The oldest events go first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRetention {
    /// The most events.
    pub max_events: Option<u64>,
    /// The most bytes of events (their SSE encoding).
    pub max_bytes: Option<u64>,
    /// The oldest event, by Redis's clock at its append.
    pub max_age: Option<Duration>,
    /// How often this node sweeps (any node may: a sweep is one atomic script).
    pub sweep_every: Duration,
}

impl Default for ClusterRetention {
    fn default() -> Self {
        ClusterRetention {
            max_events: Some(1_000_000),
            max_bytes: Some(1 << 30),
            max_age: None,
            sweep_every: Duration::from_secs(1),
        }
    }
}

/// Where the cluster is and what it keeps.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// `redis://HOST:PORT[/DB]`, or `redis+sentinel://HOST:PORT[,HOST:PORT]/MASTER_NAME[/DB]`
    /// to find the primary through Redis Sentinel and follow its failovers (`primary.rs`).
    pub url: String,
    /// The cluster's name: nodes with the same URL and name share one history.
    pub name: String,
    /// Retention, the same on every node.
    pub retention: ClusterRetention,
    /// Replicas of the Redis primary that must have each batch (`WAIT`) before its publishers
    /// are answered; 0 for none. When fewer acknowledge within `replica_timeout`, the
    /// publishers get an error although the primary has the events (they may still be
    /// delivered, and a publisher that retries may publish twice).
    pub min_replicas: u32,
    /// How long an append waits for `min_replicas`.
    pub replica_timeout: Duration,
}

/// Why the store could not open.
#[derive(Debug)]
pub struct OpenError(String);

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OpenError {}

/// `url` without its password (`redis://user:secret@host` → `redis://user:***@host`), for
/// messages and logs.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}

/// Events a log read scans at most when no per-topic index serves the selector.
const SCAN_ENTRIES: usize = 512;

/// Entries one sweep call deletes at most before it lets other commands run.
const SWEEP_BUDGET: usize = 10_000;

/// The shared log of a cluster, in Redis. Cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("log", &self.inner.log)
            .finish()
    }
}

pub(crate) struct Inner {
    /// The primary, which may move (Sentinel).
    pub(crate) link: Link,
    pub(crate) keys: Keys,
    pub(crate) log: LogId,
    /// This node: its id, its writes besides the log, its records.
    pub(crate) node: Node,
    bounds: Mutex<Bounds>,
    retention: ClusterRetention,
    pub(crate) min_replicas: u32,
    pub(crate) replica_timeout: Duration,
    pub(crate) scripts: Scripts,
}

pub(crate) struct Scripts {
    append: Script,
    read_scan: Script,
    read_index: Script,
    sweep: Script,
    pub(crate) commit: Script,
    pub(crate) pending: Script,
}

/// Redis's error as the store's.
pub(crate) fn io(error: &redis::RedisError) -> StoreError {
    StoreError::Io(format!("redis: {error}"))
}

impl RedisStore {
    /// Connects to Redis and opens the cluster's log: its log id is created (SET NX) by the
    /// first node ever to open it and read by every other, so all give the same ids. Starts
    /// this node's retention sweep, and its writer (`node.rs`) with a fresh node id.
    ///
    /// # Errors
    ///
    /// When Redis cannot be reached or holds something else under the cluster's keys.
    pub async fn open(options: ClusterOptions) -> Result<RedisStore, OpenError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            OpenError(format!("{what} ({}): {e}", redacted(&options.url)))
        };
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_max_delay(Duration::from_secs(1));
        let link = Link::open(&options.url, config)
            .await
            .map_err(|e| fail("cannot connect to Redis", &e))?;
        let mut conn = link.conn();
        let keys = Keys::new(&options.name);
        let (log, last, first, committed): (String, u64, u64, u64) = Script::new(scripts::OPEN)
            .key(keys.key("logid"))
            .key(keys.key("seq"))
            .key(keys.key("first"))
            .key(keys.key("committed"))
            .arg(LogId::random().to_string())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| fail("cannot open the cluster's log", &e))?;
        // With `min_replicas`, this node knows of (and delivers) replicated events only.
        let last = if options.min_replicas > 0 {
            committed.min(last)
        } else {
            last
        };
        let log = u32::from_str_radix(&log, 16)
            .ok()
            .filter(|_| log.len() == 8)
            .map(LogId)
            .ok_or_else(|| fail("the cluster's log id is not one of ssehub", &log))?;
        let (node, writes) = Node::new();
        let inner = Arc::new(Inner {
            link,
            keys,
            log,
            node,
            bounds: Mutex::new(Bounds { first, last }),
            retention: options.retention,
            min_replicas: options.min_replicas,
            replica_timeout: options.replica_timeout,
            scripts: Scripts {
                append: Script::new(scripts::APPEND),
                read_scan: Script::new(scripts::READ_SCAN),
                read_index: Script::new(scripts::READ_INDEX),
                sweep: Script::new(scripts::SWEEP),
                commit: Script::new(scripts::COMMIT),
                pending: Script::new(scripts::PENDING),
            },
        });
        tokio::spawn(sweep_loop(Arc::downgrade(&inner)));
        crate::node::start(&inner, writes);
        Ok(RedisStore { inner })
    }

    /// The records this node keeps in Redis about itself and reads of the others (the Mercure
    /// subscriptions of every node): see [`NodeDirectory`]. Its writes go out in one order
    /// with the live-only events this store relays.
    pub fn directory(&self) -> NodeDirectory {
        NodeDirectory {
            inner: self.inner.clone(),
        }
    }

    /// Runs retention now, until it is up to date.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn sweep(&self) -> Result<(), StoreError> {
        self.inner.sweep().await
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Bounds> {
        self.bounds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Redis's answer, or the store's error — after asking where the primary is, which may
    /// have moved (Sentinel).
    pub(crate) async fn answer<T>(&self, reply: RedisResult<T>) -> Result<T, StoreError> {
        match reply {
            Ok(value) => Ok(value),
            Err(error) => {
                self.link.failed().await;
                Err(io(&error))
            }
        }
    }

    /// Notes what Redis said of the log: the floor and last never move down.
    pub(crate) fn saw(&self, first: Option<u64>, last: u64) {
        let mut bounds = self.lock();
        bounds.last = bounds.last.max(last);
        if let Some(first) = first {
            bounds.first = bounds.first.max(first);
        }
    }

    async fn sweep(&self) -> Result<(), StoreError> {
        let limit = |v: Option<u64>| v.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX));
        let age = self
            .retention
            .max_age
            .map(|a| u64::try_from(a.as_millis()).unwrap_or(u64::MAX));
        loop {
            let swept = self
                .scripts
                .sweep
                .key(self.keys.key("seq"))
                .key(self.keys.key("log"))
                .key(self.keys.key("first"))
                .key(self.keys.key("bytes"))
                .arg(self.keys.topic_prefix())
                .arg(limit(self.retention.max_events))
                .arg(limit(self.retention.max_bytes))
                .arg(limit(age))
                .arg(SWEEP_BUDGET)
                .invoke_async(&mut self.link.conn())
                .await;
            let (first, last, more): (u64, u64, u64) = self.answer(swept).await?;
            // With `min_replicas`, `last` may not be replicated yet: the node learns of it
            // from the tail once it is.
            self.saw(Some(first), if self.min_replicas > 0 { 0 } else { last });
            if more == 0 {
                return Ok(());
            }
        }
    }

    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Arc<StoredEvent>>, StoreError> {
        let mut invocation = self.scripts.append.key(self.keys.key("seq"));
        invocation
            .key(self.keys.key("log"))
            .key(self.keys.key("bytes"))
            .key(self.keys.key("logid"))
            .arg(self.keys.topic_prefix())
            .arg(self.log.to_string())
            .arg(events.len());
        for event in &events {
            // The exact encoded size once the id is known is not yet; the bound is close
            // enough for byte retention (it over-counts the id line by a few bytes).
            invocation.arg(&entry::append_args(event, event.encoded_size())[..]);
        }
        let mut conn = self.link.conn();
        let first: u64 = self
            .answer(invocation.invoke_async(&mut conn).await)
            .await?;
        let last = first + events.len() as u64 - 1;
        if self.min_replicas > 0 {
            replicated::wait_and_commit(self, &mut conn, last).await?;
        }
        let stored: Vec<_> = events
            .into_iter()
            .zip(first..)
            .map(|(event, seq)| StoredEvent::new(self.log, seq, event))
            .collect();
        self.saw(None, last);
        Ok(stored)
    }

    async fn read(
        &self,
        after: u64,
        until: u64,
        selector: &Selector,
        limit: usize,
        max_bytes: usize,
    ) -> Result<ReadPage, StoreError> {
        let topics: Option<Vec<_>> = selector.patterns().iter().map(|p| p.as_topic()).collect();
        let mut conn = self.link.conn();
        let reply: RedisResult<Vec<Value>> = match topics {
            // Exact topics only: their index, not the log.
            Some(topics) => {
                let mut invocation = self.scripts.read_index.key(self.keys.key("log"));
                invocation.key(self.keys.key("first"));
                for topic in &topics {
                    invocation.key(format!("{}{}", self.keys.topic_prefix(), topic.as_str()));
                }
                invocation
                    .arg(after)
                    .arg(until)
                    .arg(limit.max(1))
                    .invoke_async(&mut conn)
                    .await
            }
            None => {
                self.scripts
                    .read_scan
                    .key(self.keys.key("log"))
                    .key(self.keys.key("first"))
                    .arg(after)
                    .arg(until)
                    .arg(SCAN_ENTRIES)
                    .invoke_async(&mut conn)
                    .await
            }
        };
        let reply = self.answer(reply).await?;
        let [floor, scanned_to, entries @ ..] = &reply[..] else {
            return Err(entry::bad("a short read reply"));
        };
        self.saw(Some(entry::number(floor)?), 0);
        let scanned_to = entry::number(scanned_to)?.min(until).max(after);
        let mut page = PageBuilder::new(scanned_to, limit, max_bytes);
        for values in entries.chunks(VALUES_PER_ENTRY) {
            let event = entry::decode(self.log, values)?;
            if event.seq() > until {
                break;
            }
            if page.is_full() {
                page.stop_before(event.seq());
                break;
            }
            if selector.matches_any(&event.event.topics) && !page.push(event) {
                break;
            }
        }
        Ok(page.finish())
    }
}

/// Sweeps every `sweep_every` while the store is open; with `min_replicas`, also confirms the
/// events whose own `WAIT` failed, once replicas have them (`replicated.rs`).
async fn sweep_loop(inner: Weak<Inner>) {
    let Some(every) = inner.upgrade().map(|i| i.retention.sweep_every) else {
        return;
    };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if let Err(error) = inner.sweep().await {
            tracing::debug!(%error, "the retention sweep failed; next time");
        }
        if inner.min_replicas > 0
            && let Err(error) = replicated::confirm_pending(&inner).await
        {
            tracing::debug!(%error, "confirming unreplicated events failed; next time");
        }
    }
}

impl Store for RedisStore {
    fn log_id(&self) -> LogId {
        self.inner.log
    }

    fn bounds(&self) -> Bounds {
        *self.inner.lock()
    }

    fn append(
        &self,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'_, Result<Vec<Arc<StoredEvent>>, StoreError>> {
        Box::pin(self.inner.append(events))
    }

    fn read(
        &self,
        after: u64,
        until: u64,
        selector: Arc<Selector>,
        limit: usize,
        max_bytes: usize,
    ) -> BoxFuture<'_, Result<ReadPage, StoreError>> {
        Box::pin(async move {
            self.inner
                .read(after, until, &selector, limit, max_bytes)
                .await
        })
    }

    fn ordered_feed(&self, after: u64) -> Option<OrderedFeed> {
        Some(crate::tail::start(&self.inner, after))
    }

    fn live_relay(&self) -> Option<LiveRelay> {
        Some(crate::relay::start(&self.inner))
    }

    fn last_given(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let last = redis::cmd("GET")
                .arg(self.inner.keys.key("seq"))
                .query_async::<Option<u64>>(&mut self.inner.link.conn())
                .await;
            Ok(self.inner.answer(last).await?.unwrap_or(0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redacted("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(redacted("redis://:s3cret@h:1"), "redis://:***@h:1");
        assert_eq!(redacted("redis://u:s3cret@h:1/2"), "redis://u:***@h:1/2");
    }
}
