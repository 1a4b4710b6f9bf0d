//! ssehub-cluster's tests, each against a real `redis-server` the test starts.

mod conformance;
mod directory;
mod feed;
mod relay;
mod replicated;
mod retention;
mod topic_retention;

use std::sync::Arc;
use std::time::Duration;

use ssehub_cluster::{ClusterOptions, ClusterRetention, RedisStore};
use ssehub_core::{Hub, HubConfig};

/// A hub over the cluster `name` on the Redis at `url`, with default retention; with
/// `min_replicas` replicas to wait for (300 ms at most) when it is not 0.
async fn hub(url: &str, name: &str, min_replicas: u32) -> Hub {
    let store = RedisStore::open(ClusterOptions {
        url: url.to_string(),
        name: name.to_string(),
        retention: ClusterRetention::default(),
        min_replicas,
        replica_timeout: Duration::from_millis(if min_replicas > 0 { 300 } else { 1000 }),
    })
    .await
    .expect("open");
    Hub::new(Arc::new(store), HubConfig::default())
}
