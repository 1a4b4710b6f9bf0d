//! [`NodeDirectory`]: records that each node of a cluster keeps in Redis about itself, and
//! that any node reads — for the Mercure subscriptions API, one record per active stream.
//!
//! A node's records are a hash of its own, `ssehub:{NAME}:subs:<node>` (field: a key, such as
//! a subscriber id; value: opaque text), written in order by the node's writer (`node.rs`)
//! and kept alive by its heartbeat: when a node dies its hash expires within
//! [`RECORD_TTL`](crate::node::RECORD_TTL) (15 s), and its records with it. The ids of the
//! nodes with records are in a set, `ssehub:{NAME}:nodes`, so that reading every node's
//! records never scans the keyspace.
//!
//! Writing never waits (the writer's queue is bounded; a lost change has the node rewrite its
//! whole hash at its next heartbeat); reading does, and fails when Redis does.

use std::collections::HashSet;
use std::sync::Arc;

use redis::RedisResult;
use ssehub_core::StoreError;

use crate::store::{Inner, io};

/// Fields `HSCAN` is asked for at once.
const SCAN_COUNT: usize = 256;

/// The records of the nodes of a cluster. Cheap to clone.
#[derive(Clone)]
pub struct NodeDirectory {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for NodeDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeDirectory")
            .field("node", &self.inner.node.id)
            .finish()
    }
}

impl NodeDirectory {
    /// This node's id in the cluster.
    pub fn node_id(&self) -> &str {
        &self.inner.node.id
    }

    /// Sets this node's record `key` to `value`. Never waits: Redis has it once the node's
    /// writer has sent it, after everything handed to the writer before (records and relayed
    /// live-only events alike).
    pub fn set(&self, key: &str, value: String) {
        self.inner.node.set(key, value);
    }

    /// Removes this node's record `key`, the same way.
    pub fn remove(&self, key: &str) {
        self.inner.node.remove(key);
    }

    /// The records of the other nodes for which `keep` (given the value) is true, at most
    /// `max` of them, as `(key, value)`, in no particular order. Read a page of one node's
    /// hash at a time, so that what is not kept is never held all at once.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn others(
        &self,
        keep: &(dyn Fn(&str) -> bool + Send + Sync),
        max: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let read = self.read_others(keep, max).await;
        self.answer(read).await
    }

    /// The record `key` of another node, if one has it.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn other(&self, key: &str) -> Result<Option<String>, StoreError> {
        let read = async {
            let mut conn = self.inner.link.conn();
            for node in self.other_nodes().await? {
                let value: Option<String> = redis::cmd("HGET")
                    .arg(self.inner.keys.node_records(&node))
                    .arg(key)
                    .query_async(&mut conn)
                    .await?;
                if value.is_some() {
                    return Ok(value);
                }
            }
            Ok(None)
        };
        let read = read.await;
        self.answer(read).await
    }

    async fn read_others(
        &self,
        keep: &(dyn Fn(&str) -> bool + Send + Sync),
        max: usize,
    ) -> RedisResult<Vec<(String, String)>> {
        let mut conn = self.inner.link.conn();
        let mut kept = Vec::new();
        if max == 0 {
            return Ok(kept);
        }
        for node in self.other_nodes().await? {
            let hash = self.inner.keys.node_records(&node);
            // HSCAN may return a field twice (while Redis rehashes).
            let mut seen = HashSet::new();
            let mut cursor = 0u64;
            loop {
                let (next, page): (u64, Vec<(String, String)>) = redis::cmd("HSCAN")
                    .arg(&hash)
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query_async(&mut conn)
                    .await?;
                for (key, value) in page {
                    if keep(&value) && seen.insert(key.clone()) {
                        kept.push((key, value));
                        if kept.len() == max {
                            return Ok(kept);
                        }
                    }
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(kept)
    }

    /// The ids of the other nodes that have records.
    async fn other_nodes(&self) -> RedisResult<Vec<String>> {
        let nodes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.inner.keys.key("nodes"))
            .query_async(&mut self.inner.link.conn())
            .await?;
        Ok(nodes
            .into_iter()
            .filter(|n| *n != self.inner.node.id)
            .collect())
    }

    async fn answer<T>(&self, read: RedisResult<T>) -> Result<T, StoreError> {
        match read {
            Ok(value) => Ok(value),
            Err(error) => {
                self.inner.link.failed().await;
                Err(io(&error))
            }
        }
    }
}
