//! ssehub's store for a cluster of hubs: many `ssehub serve --cluster redis://…` nodes share
//! one history and one global order, kept by Redis.
//!
//! [`RedisStore`] implements `ssehub-core`'s [`Store`](ssehub_core::Store) on one Redis
//! stream per cluster, written only by Lua scripts, so that Redis itself gives every event its
//! sequence number (no consensus or replication of ours), and offers the store's ordered feed:
//! each node tails the stream and fans out every event, its own included, in the log's order.
//! A node that loses Redis refuses publishes (the store fails, the HTTP layer answers 503
//! `store_unavailable`), keeps its open streams, and its tail catches up in order once Redis
//! is back. Besides the log, the store relays live-only events between the nodes (Redis
//! pub/sub, best effort) and keeps each node's records ([`NodeDirectory`]), for Mercure's
//! active subscriptions across nodes. docs/cluster.md says how to run it and what is durable.
//!
//! # Layout
//!
//! - `scripts.rs` — the keys of a cluster in Redis and the Lua scripts (open, append, read
//!   by log or by per-topic index, retention sweeps of the log and per topic).
//! - `entry.rs` — one event as a stream entry, both ways.
//! - `floors.rs` — the per-topic retention floors a node knows, for `retained_from`.
//! - `primary.rs` — where the Redis primary is (a `redis://` URL, or Redis Sentinel for
//!   `redis+sentinel://`) and the store's connection to it, which follows a failover.
//! - `store.rs` — [`RedisStore`]: open, append, read, sweep, the bounds the node keeps.
//! - `replicated.rs` — `min_replicas`: the replicated watermark, so that nodes deliver only
//!   events that replicas have.
//! - `tail.rs` — the blocking `XREAD` that is the ordered feed.
//! - `node.rs` — this node's other writes (relayed live-only events, its records), in one
//!   order from one bounded queue, and its heartbeat.
//! - `relay.rs` — the store's live relay: Redis pub/sub between the nodes, its messages.
//! - `directory.rs` — [`NodeDirectory`]: each node's records in Redis (the Mercure
//!   subscriptions API of every node), gone within 15 s of a node's death.
//! - `testing.rs` — `testing::RedisServer`, a throwaway `redis-server` (feature `testing`).

mod directory;
mod entry;
mod floors;
mod node;
mod primary;
mod relay;
mod replicated;
mod scripts;
mod store;
mod tail;
#[cfg(feature = "testing")]
pub mod testing;

pub use directory::NodeDirectory;
pub use store::{
    ClusterOptions, ClusterRetention, ClusterTopicRule, OpenError, RedisStore, redacted,
};
