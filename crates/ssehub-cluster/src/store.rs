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
//!
//! Per-topic rules (`[[history.topics]]`) work the same way with a floor per topic
//! (`floors.rs`): a node's sweep walks the topics under a rule a part at a time and learns
//! the floors it raised, and every read returns, with its events, the floors of the topics
//! it read (or, for patterns, every floor at or above its start), so `retained_from` rises
//! before a reader could miss a deletion by another node. docs/cluster.md says why that
//! holds at subscribe time too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::aio::ConnectionManagerConfig;
use redis::{RedisResult, Script, Value};
use ssehub_core::{
    Bounds, BoxFuture, LiveRelay, LogId, NewEvent, OrderedFeed, PageBuilder, Pattern, ReadPage,
    Selector, Store, StoreError, StoredEvent, Topic,
};

use crate::directory::NodeDirectory;
use crate::entry::{self, VALUES_PER_ENTRY};
use crate::floors::TopicFloors;
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
    /// Bounds per topic (`[[history.topics]]`): the first rule whose pattern matches a topic
    /// applies to it, and an event on several topics is deleted when any of its topics' rules
    /// deletes it, as on one node. Give every node the same rules: the node that appends an
    /// event records which rule applies to each of its topics (by pattern), and every node's
    /// sweep applies the bounds it has for that pattern.
    pub topics: Vec<ClusterTopicRule>,
    /// Per-topic rules leave the events younger than this (by Redis's clock), so that every
    /// node's tail has read an event before a rule deletes it: a node that finds a hole in
    /// the log ends its live streams (their clients resume with the gap notice). A topic may
    /// hold this much more than its rule's bounds.
    pub topic_grace: Duration,
    /// How often this node sweeps (any node may: a sweep is one atomic script).
    pub sweep_every: Duration,
}

impl Default for ClusterRetention {
    fn default() -> Self {
        ClusterRetention {
            max_events: Some(1_000_000),
            max_bytes: Some(1 << 30),
            max_age: None,
            topics: Vec::new(),
            topic_grace: Duration::from_secs(2),
            sweep_every: Duration::from_secs(1),
        }
    }
}

/// The bounds of each topic matching a pattern; `None` for no bound. A topic's oldest events
/// go first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTopicRule {
    /// The topics it applies to (when it is the first rule that matches).
    pub pattern: Pattern,
    /// The most events per topic.
    pub max_events: Option<u64>,
    /// The most bytes of events (their SSE encoding) per topic.
    pub max_bytes: Option<u64>,
    /// The oldest event per topic, by Redis's clock at its append.
    pub max_age: Option<Duration>,
    /// `keep = "latest-per-key"`: log compaction, with this grace for tombstones. A keyed
    /// event that a newer one of its key replaced in the topic is deleted (without raising the
    /// topic's floor: a resume brings the newer value), a tombstone once older than the grace
    /// (raising it). `None`: every event, under the bounds.
    pub compaction: Option<Duration>,
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

/// Topics one per-topic sweep call looks at (about: `HSCAN`'s `COUNT`).
const TOPICS_PER_CALL: usize = 500;

/// Events one per-topic sweep call deletes at most (each costs a few commands per topic).
const TOPIC_SWEEP_BUDGET: usize = 2_000;

/// Per-topic sweep calls a node makes per tick at most: with many ruled topics the walk over
/// them takes several ticks (and is shared by every node), so that no node holds Redis for
/// long each second.
const TOPIC_CALLS_PER_TICK: usize = 10;

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
    /// The per-topic floors this node knows. A leaf lock, like `bounds`, never held with it.
    floors: Mutex<TopicFloors>,
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
    topic_sweep: Script,
    find_id: Script,
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
            floors: Mutex::new(TopicFloors::default()),
            retention: options.retention,
            min_replicas: options.min_replicas,
            replica_timeout: options.replica_timeout,
            scripts: Scripts {
                append: Script::new(scripts::APPEND),
                read_scan: Script::new(scripts::READ_SCAN),
                read_index: Script::new(scripts::READ_INDEX),
                sweep: Script::new(scripts::SWEEP),
                topic_sweep: Script::new(scripts::TOPIC_SWEEP),
                find_id: Script::new(scripts::FIND_ID),
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
        self.inner.sweep(usize::MAX).await
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

    fn lock_floors(&self) -> std::sync::MutexGuard<'_, TopicFloors> {
        self.floors.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes what Redis said of the log: the floor and last never move down.
    pub(crate) fn saw(&self, first: Option<u64>, last: u64) {
        let mut bounds = self.lock();
        bounds.last = bounds.last.max(last);
        if let Some(first) = first {
            bounds.first = bounds.first.max(first);
        }
    }

    /// Notes per-topic floors Redis returned: `values` are pairs of topic and floor.
    fn saw_floors(&self, values: &[Value]) -> Result<(), StoreError> {
        if values.is_empty() {
            return Ok(());
        }
        let mut raised = Vec::with_capacity(values.len() / 2);
        for pair in values.chunks_exact(2) {
            let topic = Topic::iri(entry::text(&pair[0])?)
                .map_err(|e| entry::bad(&format!("invalid topic: {e}")))?;
            raised.push((topic, entry::number(&pair[1])?));
        }
        let mut floors = self.lock_floors();
        for (topic, seq) in raised {
            floors.raise(topic, seq);
        }
        Ok(())
    }

    /// The rule that applies to `topic`: the first whose pattern matches.
    fn rule_for(&self, topic: &Topic) -> Option<&ClusterTopicRule> {
        self.retention
            .topics
            .iter()
            .find(|rule| rule.pattern.matches(topic))
    }

    /// Runs retention: the whole log's bounds until they hold, then the per-topic rules, at
    /// most `topic_calls` calls (a call looks at [`TOPICS_PER_CALL`] topics).
    async fn sweep(&self, topic_calls: usize) -> Result<(), StoreError> {
        self.sweep_log().await?;
        if !self.retention.topics.is_empty() {
            self.sweep_topics(topic_calls).await?;
        }
        let first = self.lock().first;
        self.lock_floors().forget_below(first);
        Ok(())
    }

    async fn sweep_log(&self) -> Result<(), StoreError> {
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
                .key(self.keys.key("tbytes"))
                .key(self.keys.key("floors"))
                .key(self.keys.key("pubids"))
                .key(self.keys.key("keys"))
                .key(self.keys.key("ktopics"))
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

    /// Applies the per-topic rules until a walk over every ruled topic that started at the
    /// beginning is over, or `calls` calls were made. The walk's cursor is in Redis, shared by
    /// every node: each call goes on where the last one, of any node, stopped.
    async fn sweep_topics(&self, calls: usize) -> Result<(), StoreError> {
        let limit = |v: Option<u64>| v.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX));
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let mut invocation = self.scripts.topic_sweep.key(self.keys.key("log"));
        invocation
            .key(self.keys.key("bytes"))
            .key(self.keys.key("ruled"))
            .key(self.keys.key("tbytes"))
            .key(self.keys.key("floors"))
            .key(self.keys.key("rcursor"))
            .key(self.keys.key("committed"))
            .key(self.keys.key("pubids"))
            .key(self.keys.key("keys"))
            .key(self.keys.key("ktopics"))
            .key(self.keys.key("kcursor"))
            .arg(self.keys.topic_prefix())
            .arg(TOPICS_PER_CALL)
            .arg(TOPIC_SWEEP_BUDGET)
            .arg(millis(self.retention.topic_grace))
            .arg(u8::from(self.min_replicas > 0))
            .arg(self.retention.topics.len());
        for rule in &self.retention.topics {
            invocation
                .arg(rule.pattern.as_str())
                .arg(limit(rule.max_events))
                .arg(limit(rule.max_bytes))
                .arg(rule.max_age.map_or(-1, millis))
                .arg(rule.compaction.map_or(-1, millis));
        }
        let mut from_start = false;
        for _ in 0..calls {
            let swept = invocation.invoke_async(&mut self.link.conn()).await;
            let reply: Vec<Value> = self.answer(swept).await?;
            let [started, next, exhausted, raised @ ..] = &reply[..] else {
                return Err(entry::bad("a short per-topic sweep reply"));
            };
            self.saw_floors(raised)?;
            from_start |= entry::text(started)? == "0";
            if from_start && entry::text(next)? == "0" && entry::number(exhausted)? == 0 {
                return Ok(());
            }
        }
        Ok(())
    }

    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Arc<StoredEvent>>, StoreError> {
        let mut invocation = self.scripts.append.key(self.keys.key("seq"));
        invocation
            .key(self.keys.key("log"))
            .key(self.keys.key("bytes"))
            .key(self.keys.key("logid"))
            .key(self.keys.key("ruled"))
            .key(self.keys.key("tbytes"))
            .key(self.keys.key("pubids"))
            .key(self.keys.key("keys"))
            .key(self.keys.key("ktopics"))
            .arg(self.keys.topic_prefix())
            .arg(self.log.to_string())
            .arg(events.len());
        // Each topic under a rule: its rule's pattern and the bytes this batch adds to it.
        let mut ruled: HashMap<&str, (&str, usize)> = HashMap::new();
        for event in &events {
            // The exact encoded size once the id is known is not yet; the bound is close
            // enough for byte retention (it over-counts the id line by a few bytes).
            let size = event.encoded_size();
            invocation.arg(&entry::append_args(event, size)[..]);
            for (i, topic) in event.topics.iter().enumerate() {
                if event.topics[..i].contains(topic) {
                    continue;
                }
                if let Some(rule) = self.rule_for(topic) {
                    ruled
                        .entry(topic.as_str())
                        .or_insert((rule.pattern.as_str(), 0))
                        .1 += size;
                }
            }
        }
        invocation.arg(ruled.len());
        for (topic, (pattern, bytes)) in &ruled {
            invocation.arg(*topic).arg(*pattern).arg(*bytes);
        }
        let mut conn = self.link.conn();
        let first: i64 = self
            .answer(invocation.invoke_async(&mut conn).await)
            .await?;
        // `-k`: the publisher id of the `k`-th event is taken; nothing was appended.
        let first = u64::try_from(first).map_err(|_| {
            let taken = usize::try_from(first.unsigned_abs() - 1)
                .ok()
                .and_then(|k| events.get(k))
                .and_then(|e| e.id.clone());
            taken.map_or_else(|| entry::bad("an append's reply"), StoreError::IdConflict)
        })?;
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

    async fn find_id(&self, id: &str) -> Result<Option<u64>, StoreError> {
        let found = self
            .scripts
            .find_id
            .key(self.keys.key("pubids"))
            .key(self.keys.key("log"))
            .arg(id)
            .invoke_async(&mut self.link.conn())
            .await;
        self.answer(found).await
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
                invocation
                    .key(self.keys.key("first"))
                    .key(self.keys.key("floors"));
                for topic in &topics {
                    invocation.key(format!("{}{}", self.keys.topic_prefix(), topic.as_str()));
                }
                invocation.arg(after).arg(until).arg(limit.max(1));
                for topic in &topics {
                    invocation.arg(topic.as_str());
                }
                invocation.invoke_async(&mut conn).await
            }
            None => {
                self.scripts
                    .read_scan
                    .key(self.keys.key("log"))
                    .key(self.keys.key("first"))
                    .key(self.keys.key("floors"))
                    .arg(after)
                    .arg(until)
                    .arg(SCAN_ENTRIES)
                    .invoke_async(&mut conn)
                    .await
            }
        };
        let reply = self.answer(reply).await?;
        let [floor, scanned_to, floors, rest @ ..] = &reply[..] else {
            return Err(entry::bad("a short read reply"));
        };
        let (floors, entries) = usize::try_from(entry::number(floors)?)
            .ok()
            .and_then(|n| n.checked_mul(2))
            .filter(|n| *n <= rest.len())
            .map(|n| rest.split_at(n))
            .ok_or_else(|| entry::bad("a read reply's floors"))?;
        // Noted before the reader asks `retained_from` (invariant 8).
        self.saw(Some(entry::number(floor)?), 0);
        self.saw_floors(floors)?;
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

    /// A page of the snapshot of `selector` (`Store::snapshot`): `READ_INDEX` over the
    /// `keys:<topic>` sets of the matching topics — the selector's own, or those of `ktopics`
    /// it matches — in groups of [`SNAPSHOT_TOPICS_PER_CALL`], merged; tombstones left out.
    async fn snapshot(
        &self,
        after: u64,
        until: u64,
        selector: &Selector,
        limit: usize,
        max_bytes: usize,
    ) -> Result<ReadPage, StoreError> {
        let limit = limit.max(1);
        let mut conn = self.link.conn();
        let exact: Option<Vec<String>> = selector
            .patterns()
            .iter()
            .map(|p| p.as_topic().map(|t| t.as_str().to_string()))
            .collect();
        let topics = match exact {
            Some(topics) => topics,
            None => {
                let all: RedisResult<Vec<String>> = redis::cmd("SMEMBERS")
                    .arg(self.keys.key("ktopics"))
                    .query_async(&mut conn)
                    .await;
                self.answer(all)
                    .await?
                    .into_iter()
                    .filter(|t| Topic::iri(t).is_ok_and(|t| selector.matches_any(&[t])))
                    .collect()
            }
        };
        let mut events: Vec<Arc<StoredEvent>> = Vec::new();
        let mut scanned_to = until;
        for group in topics.chunks(SNAPSHOT_TOPICS_PER_CALL) {
            let mut invocation = self.scripts.read_index.key(self.keys.key("log"));
            invocation
                .key(self.keys.key("first"))
                .key(self.keys.key("floors"));
            for topic in group {
                invocation.key(format!("{}:{topic}", self.keys.key("keys")));
            }
            invocation.arg(after).arg(until).arg(limit);
            for topic in group {
                invocation.arg(topic.as_str());
            }
            let reply: RedisResult<Vec<Value>> = invocation.invoke_async(&mut conn).await;
            let reply = self.answer(reply).await?;
            let [_, group_scanned, floors, rest @ ..] = &reply[..] else {
                return Err(entry::bad("a short snapshot reply"));
            };
            let skip = usize::try_from(entry::number(floors)?)
                .ok()
                .and_then(|n| n.checked_mul(2))
                .filter(|n| *n <= rest.len())
                .ok_or_else(|| entry::bad("a snapshot reply's floors"))?;
            // Each group is complete up to its own `scanned_to`; the page to the lowest.
            scanned_to = scanned_to.min(entry::number(group_scanned)?);
            for values in rest[skip..].chunks(VALUES_PER_ENTRY) {
                events.push(entry::decode(self.log, values)?);
            }
        }
        events.sort_by_key(|e| e.seq());
        events.dedup_by_key(|e| e.seq());
        let scanned_to = scanned_to.min(until).max(after);
        let mut page = PageBuilder::new(scanned_to, limit, max_bytes);
        for event in events {
            if event.seq() > scanned_to {
                break;
            }
            if page.is_full() {
                page.stop_before(event.seq());
                break;
            }
            if !event.event.delete && !page.push(event) {
                break;
            }
        }
        Ok(page.finish())
    }
}

/// How many topics one snapshot call reads at most (Lua's `unpack` has a bound, and one call
/// should not hold Redis for long).
const SNAPSHOT_TOPICS_PER_CALL: usize = 256;

/// Sweeps every `sweep_every` while the store is open; with `min_replicas`, also confirms the
/// events whose own `WAIT` failed, once replicas have them (`replicated.rs`).
async fn sweep_loop(inner: Weak<Inner>) {
    let Some(every) = inner.upgrade().map(|i| i.retention.sweep_every) else {
        return;
    };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is at once: the first sweep is one period after opening, so that a
    // store opened with a long period (a test's) sweeps only when told to.
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if let Err(error) = inner.sweep(TOPIC_CALLS_PER_TICK).await {
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

    fn retained_from(&self, selector: &Selector) -> u64 {
        // Two leaf locks, one after the other: each value only rises, and each is at least
        // what the last read returned, which is all a reader's check needs.
        let first = self.inner.lock().first;
        self.inner.lock_floors().retained_from(first, selector)
    }

    fn append(
        &self,
        events: Vec<NewEvent>,
    ) -> BoxFuture<'_, Result<Vec<Arc<StoredEvent>>, StoreError>> {
        Box::pin(self.inner.append(events))
    }

    fn find_id(&self, id: &str) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        let id = id.to_string();
        Box::pin(async move { self.inner.find_id(&id).await })
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

    fn snapshot(
        &self,
        after: u64,
        until: u64,
        selector: Arc<Selector>,
        limit: usize,
        max_bytes: usize,
    ) -> BoxFuture<'_, Result<ReadPage, StoreError>> {
        Box::pin(async move {
            self.inner
                .snapshot(after, until, &selector, limit, max_bytes)
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
