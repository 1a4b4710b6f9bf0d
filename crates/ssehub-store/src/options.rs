//! What a [`DiskStore`](crate::DiskStore) promises: durability and retention.

use std::time::Duration;

use ssehub_core::Pattern;

/// When an append is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Every append (one group-committed batch) is fsync'd before it is acknowledged. An
    /// acknowledged event survives `kill -9` and power loss. Costs one fsync per batch;
    /// concurrent publishers share it.
    Always,
    /// Appends are acknowledged once committed in memory (redb's `Durability::None`), and
    /// fsync'd at most this long later. Faster, but a crash of the process or of the machine
    /// loses what was acknowledged since the last fsync. Those ids are never given again: the
    /// next open after an unclean stop takes a new log id (see [`DiskStore`](crate::DiskStore)),
    /// so clients holding an older id get a gap notice.
    Interval(Duration),
}

/// Bounds on part of the history. `None` is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionLimits {
    /// The most events kept.
    pub max_events: Option<u64>,
    /// The most bytes of events kept, counted at their SSE encoding (a text of newlines is
    /// seven times larger encoded than raw).
    pub max_bytes: Option<u64>,
    /// The oldest event kept.
    pub max_age: Option<Duration>,
}

impl RetentionLimits {
    /// Whether any bound is set.
    pub fn is_bounded(&self) -> bool {
        self.max_events.is_some() || self.max_bytes.is_some() || self.max_age.is_some()
    }

    /// Whether `count` events of `bytes` bytes, the oldest `age` old, break a bound.
    pub(crate) fn exceeded(&self, count: u64, bytes: u64, age: Option<Duration>) -> bool {
        self.max_events.is_some_and(|m| count > m)
            || self.max_bytes.is_some_and(|m| bytes > m)
            || matches!((self.max_age, age), (Some(m), Some(a)) if a > m)
    }
}

/// Retention for the hub and for topics matching a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRule {
    /// The topics this rule applies to.
    pub pattern: Pattern,
    /// Their bounds, per topic.
    pub limits: RetentionLimits,
    /// `keep = "latest-per-key"`: only the newest event of each key is kept (and events
    /// without a key, under `limits`); see [`Compaction`]. `None`: every event, under `limits`.
    pub compaction: Option<Compaction>,
}

/// Log compaction of a topic (`keep = "latest-per-key"`): the sweep deletes every keyed event
/// that a newer event of its key has replaced in that topic, and each tombstone once it is
/// older than `tombstone_grace`. Replaced events go without a gap notice: a subscriber that
/// resumes from before them gets the newer value of the same key instead, which is the state
/// they led to. A tombstone going does raise the topic's floor (a subscriber resuming from
/// before it would miss a deletion: it gets the gap notice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compaction {
    /// How long a tombstone is kept, so that subscribers that were away learn of the deletion
    /// when they resume.
    pub tombstone_grace: Duration,
}

/// How history is trimmed. Enforced by a background sweep in small transactions, so a
/// publish waits at most for one small deletion batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Bounds on the whole log.
    pub hub: RetentionLimits,
    /// Bounds per topic; the first matching rule applies. An event on several topics is
    /// removed when any of its topics' rules removes it.
    pub topics: Vec<TopicRule>,
    /// How often the sweep runs.
    pub sweep_every: Duration,
}

impl Default for Retention {
    /// One million events or 1 GiB, whichever comes first; no age bound; no topic rule.
    fn default() -> Self {
        Retention {
            hub: RetentionLimits {
                max_events: Some(1_000_000),
                max_bytes: Some(1 << 30),
                max_age: None,
            },
            topics: Vec::new(),
            sweep_every: Duration::from_secs(1),
        }
    }
}

/// Everything a [`DiskStore`](crate::DiskStore) is opened with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskOptions {
    /// Durability of appends.
    pub fsync: FsyncPolicy,
    /// What history is kept.
    pub retention: Retention,
    /// The most recent events kept in memory, encoded, to serve resumes without reading the
    /// disk (most resumes are reconnects a few seconds behind).
    pub tail_cache_events: usize,
    /// The most bytes of events in that cache, counted as their SSE encoding (what it holds),
    /// so a few large events cannot make it hold gigabytes.
    pub tail_cache_bytes: usize,
    /// Save redb's allocator state with every commit (redb's "quick repair"), so that the
    /// first start after a crash does not walk the whole file to rebuild it. Costs a second
    /// fsync per commit; see docs/storage.md for the figures both ways.
    pub quick_repair: bool,
}

impl Default for DiskOptions {
    fn default() -> Self {
        DiskOptions {
            fsync: FsyncPolicy::Always,
            retention: Retention::default(),
            tail_cache_events: 10_000,
            tail_cache_bytes: 64 << 20,
            quick_repair: true,
        }
    }
}
