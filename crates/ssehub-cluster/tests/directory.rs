//! Each node's records in Redis (`NodeDirectory`): written without waiting, read by the other
//! nodes (never by their own node), filtered and bounded on the way, and written again by
//! the heartbeat when Redis forgot them.

use std::time::Duration;

use ssehub_cluster::testing::RedisServer;
use ssehub_cluster::{ClusterOptions, ClusterRetention, NodeDirectory, RedisStore};

async fn directory(url: &str) -> NodeDirectory {
    RedisStore::open(ClusterOptions {
        url: url.to_string(),
        name: "directory".to_string(),
        retention: ClusterRetention::default(),
        min_replicas: 0,
        replica_timeout: Duration::from_secs(1),
    })
    .await
    .expect("open")
    .directory()
}

/// Every record of the nodes other than `reader`'s, sorted.
async fn others(reader: &NodeDirectory) -> Vec<(String, String)> {
    let mut all = reader.others(&|_| true, 100).await.expect("Redis answers");
    all.sort();
    all
}

/// Waits (10 s at most) until `reader` reads `want` of the other nodes.
async fn until_others(reader: &NodeDirectory, want: &[(&str, &str)]) {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for _ in 0..200 {
        if others(reader).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the other nodes' records are {:?}, not {want:?}",
        others(reader).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_reads_the_others_records() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (directory(&redis.url()).await, directory(&redis.url()).await);
    assert_ne!(a.node_id(), b.node_id());
    a.set("s1", "one".to_string());
    a.set("s2", "two".to_string());
    b.set("s3", "three".to_string());
    until_others(&b, &[("s1", "one"), ("s2", "two")]).await;
    until_others(&a, &[("s3", "three")]).await;

    assert_eq!(b.other("s2").await.unwrap().as_deref(), Some("two"));
    assert_eq!(b.other("s3").await.unwrap(), None, "not its own");
    let kept = b.others(&|v| v == "two", 100).await.unwrap();
    assert_eq!(kept, [("s2".to_string(), "two".to_string())]);
    assert_eq!(
        b.others(&|_| true, 1).await.unwrap().len(),
        1,
        "at most max"
    );
    assert!(b.others(&|_| true, 0).await.unwrap().is_empty());

    a.remove("s1");
    until_others(&b, &[("s2", "two")]).await;

    // Redis forgets A's records (restarted empty, say): A's heartbeat writes them again.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("ssehub:{{directory}}:subs:{}", a.node_id());
    let deleted: u64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert!(others(&b).await.is_empty());
    for _ in 0..150 {
        if others(&b).await.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    until_others(&b, &[("s2", "two")]).await;
}
