//! Retention by bytes and by age (the conformance suite covers the count), on the log and on
//! the per-topic index alike.

use std::sync::Arc;
use std::time::Duration;

use ssehub_cluster::testing::RedisServer;
use ssehub_cluster::{ClusterOptions, ClusterRetention, RedisStore};
use ssehub_core::{NewEvent, Pattern, Selector, Store, Topic};

async fn open(redis: &RedisServer, name: &str, retention: ClusterRetention) -> RedisStore {
    RedisStore::open(ClusterOptions {
        url: redis.url(),
        name: name.to_string(),
        retention,
        min_replicas: 0,
        replica_timeout: Duration::from_secs(1),
    })
    .await
    .expect("open")
}

fn events(n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|i| NewEvent::new(Topic::new("k").unwrap(), format!("{i:0>100}")))
        .collect()
}

/// Everything retained for topic `k`, through the per-topic index.
async fn retained(store: &RedisStore) -> Vec<u64> {
    let selector = Arc::new(Selector::new(vec![Pattern::new("k").unwrap()]).unwrap());
    let page = store
        .read(0, store.bounds().last, selector, 1000, usize::MAX)
        .await
        .expect("read");
    page.events.iter().map(|e| e.seq()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_bytes_keeps_the_newest_that_fit() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let size = events(1)[0].encoded_size() as u64;
    let retention = ClusterRetention {
        max_events: None,
        max_bytes: Some(3 * size + size / 2),
        max_age: None,
        sweep_every: Duration::from_secs(3600),
        ..ClusterRetention::default()
    };
    let store = open(&redis, "bytes", retention).await;
    store.append(events(10)).await.expect("append");
    store.sweep().await.expect("sweep");
    assert_eq!(store.bounds().first, 8, "the newest three fit");
    assert_eq!(retained(&store).await, [8, 9, 10]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_age_deletes_what_is_older() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let retention = ClusterRetention {
        max_events: None,
        max_bytes: None,
        max_age: Some(Duration::from_millis(300)),
        sweep_every: Duration::from_secs(3600),
        ..ClusterRetention::default()
    };
    let store = open(&redis, "age", retention).await;
    store.append(events(4)).await.expect("append");
    tokio::time::sleep(Duration::from_millis(600)).await;
    store.append(events(2)).await.expect("append");
    store.sweep().await.expect("sweep");
    assert_eq!(store.bounds().first, 5, "the old four are gone");
    assert_eq!(retained(&store).await, [5, 6]);
}
