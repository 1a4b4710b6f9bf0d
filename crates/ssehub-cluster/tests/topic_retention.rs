//! Per-topic retention (`[[history.topics]]`) on the shared log: each rule's count, byte and
//! age bounds, an event on several topics, the per-topic floors behind `retained_from` and the
//! gap notice, and a node that learns of another node's sweep through its reads.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use ssehub_cluster::testing::RedisServer;
use ssehub_cluster::{ClusterOptions, ClusterRetention, ClusterTopicRule, RedisStore};
use ssehub_core::{Hub, HubConfig, NewEvent, Pattern, Resume, Selector, Store, Topic};

/// A node of cluster `name` with these per-topic rules (no bound on the whole log, no sweep
/// but the test's, no grace).
async fn open(redis: &RedisServer, name: &str, topics: Vec<ClusterTopicRule>) -> RedisStore {
    RedisStore::open(ClusterOptions {
        url: redis.url(),
        name: name.to_string(),
        retention: ClusterRetention {
            max_events: None,
            max_bytes: None,
            max_age: None,
            topics,
            topic_grace: Duration::ZERO,
            sweep_every: Duration::from_secs(3600),
        },
        min_replicas: 0,
        replica_timeout: Duration::from_secs(1),
    })
    .await
    .expect("open")
}

fn rule(pattern: &str) -> ClusterTopicRule {
    ClusterTopicRule {
        pattern: Pattern::new(pattern).unwrap(),
        max_events: None,
        max_bytes: None,
        max_age: None,
        compaction: None,
    }
}

fn event(topics: &[&str], data: &str) -> NewEvent {
    let mut event = NewEvent::new(Topic::new(topics[0]).unwrap(), data);
    event.topics = topics.iter().map(|t| Topic::new(t).unwrap()).collect();
    event
}

fn selector(patterns: &[&str]) -> Selector {
    Selector::new(patterns.iter().map(|p| Pattern::new(p).unwrap()).collect()).unwrap()
}

/// The sequence numbers retained for `patterns`, read page by page as a replay would (by
/// index or by scanning the log).
async fn retained(store: &RedisStore, patterns: &[&str]) -> Vec<u64> {
    let selector = Arc::new(selector(patterns));
    let (mut after, until) = (0, store.bounds().last);
    let mut seqs = Vec::new();
    while after < until {
        let page = store
            .read(after, until, selector.clone(), 10_000, usize::MAX)
            .await
            .expect("read");
        seqs.extend(page.events.iter().map(|e| e.seq()));
        after = page.scanned_to.max(seqs.last().copied().unwrap_or(0));
    }
    seqs
}

/// Appends one event per entry of `topics`, in order; returns their sequence numbers.
async fn append(store: &RedisStore, topics: &[&[&str]]) -> Vec<u64> {
    let events = topics.iter().map(|t| event(t, "x")).collect();
    let stored = store.append(events).await.expect("append");
    stored.iter().map(|e| e.seq()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topics_max_events_keeps_its_newest_and_spares_other_topics() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let store = open(
        &redis,
        "count",
        vec![ClusterTopicRule {
            max_events: Some(2),
            ..rule("a/*")
        }],
    )
    .await;
    // 1 a/1, 2 b, 3 a/1, 4 b, … 10 b; a/2 gets one event.
    let mut topics: Vec<&[&str]> = Vec::new();
    for i in 0..10 {
        topics.push(if i % 2 == 0 { &["a/1"] } else { &["b"] });
    }
    topics.push(&["a/2"]);
    append(&store, &topics).await;
    store.sweep().await.expect("sweep");
    assert_eq!(retained(&store, &["a/1"]).await, [7, 9], "a/1's newest two");
    assert_eq!(retained(&store, &["a/2"]).await, [11]);
    assert_eq!(retained(&store, &["b"]).await, [2, 4, 6, 8, 10], "no rule");
    assert_eq!(
        retained(&store, &["**"]).await,
        [2, 4, 6, 7, 8, 9, 10, 11],
        "the log"
    );
    assert_eq!(store.retained_from(&selector(&["a/1"])), 6);
    assert_eq!(store.retained_from(&selector(&["b"])), 1);
    assert_eq!(store.retained_from(&selector(&["a/2", "b"])), 1);
    assert_eq!(store.bounds().first, 1, "the log's floor stays");
    // A second sweep finds nothing more to delete.
    store.sweep().await.expect("sweep");
    assert_eq!(retained(&store, &["a/1"]).await, [7, 9]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topics_max_bytes_keeps_the_newest_that_fit() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let size = event(&["k"], &"x".repeat(100)).encoded_size() as u64;
    let store = open(
        &redis,
        "bytes",
        vec![ClusterTopicRule {
            max_bytes: Some(3 * size + size / 2),
            ..rule("k")
        }],
    )
    .await;
    let events = (0..8)
        .map(|i| event(&[if i < 6 { "k" } else { "other" }], &"x".repeat(100)))
        .collect();
    store.append(events).await.expect("append");
    store.sweep().await.expect("sweep");
    assert_eq!(
        retained(&store, &["k"]).await,
        [4, 5, 6],
        "the newest three fit"
    );
    assert_eq!(retained(&store, &["other"]).await, [7, 8]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topics_max_age_deletes_what_is_older_by_redis_time() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let store = open(
        &redis,
        "age",
        vec![ClusterTopicRule {
            max_age: Some(Duration::from_millis(300)),
            ..rule("old/*")
        }],
    )
    .await;
    append(&store, &[&["old/1"], &["young"], &["old/1"]]).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    append(&store, &[&["old/1"]]).await;
    store.sweep().await.expect("sweep");
    assert_eq!(retained(&store, &["old/1"]).await, [4]);
    assert_eq!(retained(&store, &["young"]).await, [2], "no rule: any age");
    // Once the last is old too, the topic is empty; its floor stays.
    tokio::time::sleep(Duration::from_millis(600)).await;
    store.sweep().await.expect("sweep");
    assert_eq!(retained(&store, &["old/1"]).await, [0u64; 0]);
    assert_eq!(store.retained_from(&selector(&["old/1"])), 5);
}

/// An event on two topics goes when one topic's rule deletes it: from the other topic's
/// replay too, whose floor rises (as the disk store's `dropped_upto`), and a resume from
/// below that floor gets the gap notice; a topic the event was not on is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_deleted_by_one_topics_rule_leaves_every_topic_it_is_on() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let store = open(
        &redis,
        "shared",
        vec![ClusterTopicRule {
            max_events: Some(1),
            ..rule("tight")
        }],
    )
    .await;
    // 1 wide, 2 tight+wide, 3 other, 4 tight, 5 wide.
    append(
        &store,
        &[
            &["wide"],
            &["tight", "wide"],
            &["other"],
            &["tight"],
            &["wide"],
        ],
    )
    .await;
    store.sweep().await.expect("sweep");
    assert_eq!(retained(&store, &["tight"]).await, [4]);
    assert_eq!(
        retained(&store, &["wide"]).await,
        [1, 5],
        "2 is gone from wide too"
    );
    assert_eq!(store.retained_from(&selector(&["wide"])), 3);
    assert_eq!(store.retained_from(&selector(&["other"])), 1);

    let hub = Hub::new(Arc::new(store.clone()), HubConfig::default());
    let log = store.log_id();
    let after_first = Resume::After(format!("{log}-1"));
    let mut wide = hub.subscribe(selector(&["wide"]), &after_first).unwrap();
    let text = next_text(&mut wide).await;
    assert!(
        text.starts_with("event: ssehub-gap\n") && text.contains("\"reason\":\"expired\""),
        "a resume below wide's floor gets the gap notice first: {text}"
    );
    let mut other = hub.subscribe(selector(&["other"]), &after_first).unwrap();
    let text = next_text(&mut other).await;
    assert!(
        text.starts_with(&format!("id: {log}-3\n")),
        "other is resumed as it was: {text}"
    );
}

/// A pattern's `retained_from` is the highest floor of the topics it matches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patterns_floor_is_the_highest_of_its_topics() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let store = open(
        &redis,
        "pattern",
        vec![ClusterTopicRule {
            max_events: Some(1),
            ..rule("p/*")
        }],
    )
    .await;
    // p/1: 1, 2, 5; p/2: 3, 4; q: 6.
    append(
        &store,
        &[&["p/1"], &["p/1"], &["p/2"], &["p/2"], &["p/1"], &["q"]],
    )
    .await;
    store.sweep().await.expect("sweep");
    assert_eq!(store.retained_from(&selector(&["p/1"])), 3);
    assert_eq!(store.retained_from(&selector(&["p/2"])), 4);
    assert_eq!(store.retained_from(&selector(&["p/*"])), 4);
    assert_eq!(store.retained_from(&selector(&["q"])), 1);
    assert_eq!(store.retained_from(&selector(&["q", "p/2"])), 4);
    assert_eq!(retained(&store, &["p/*"]).await, [4, 5]);
}

/// Node B sweeps while node A replays: A's next read returns the floors B raised, so A's
/// `retained_from` moves before A could take its page for complete, and a replay on A that
/// started below them gets the gap notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_learns_another_nodes_sweep_from_its_reads() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let rules = || {
        vec![ClusterTopicRule {
            max_events: Some(2),
            ..rule("r/*")
        }]
    };
    let a = open(&redis, "race", rules()).await;
    let b = open(&redis, "race", rules()).await;
    // r/1: 1..=6; r/2: 7.
    let mut topics: Vec<&[&str]> = vec![&["r/1"]; 6];
    topics.push(&["r/2"]);
    append(&a, &topics).await;
    // A page of A's, read before B sweeps: everything is there, the floor unmoved.
    let one = Arc::new(selector(&["r/1"]));
    let page = a
        .read(0, 3, one.clone(), 10, usize::MAX)
        .await
        .expect("read");
    assert_eq!(page.events.len(), 3);
    assert_eq!(a.retained_from(&one), 1);

    b.sweep().await.expect("B sweeps");
    assert_eq!(b.retained_from(&one), 5, "B knows what it deleted");
    assert_eq!(a.retained_from(&one), 1, "A has not read since");
    // A's next page (after 3): Redis has deleted 4, and says so with the page.
    let page = a
        .read(3, 7, one.clone(), 10, usize::MAX)
        .await
        .expect("read");
    let seqs: Vec<u64> = page.events.iter().map(|e| e.seq()).collect();
    assert_eq!(seqs, [5, 6]);
    assert_eq!(a.retained_from(&one), 5, "the floor of the read");
    // By pattern (a scan of the log) too, on a node that never read r/1.
    let c = open(&redis, "race", rules()).await;
    let any = Arc::new(selector(&["r/*"]));
    assert_eq!(c.retained_from(&any), 1);
    c.read(3, 7, any.clone(), 10, usize::MAX)
        .await
        .expect("read");
    assert_eq!(c.retained_from(&any), 5);

    // A replay on a node that knows nothing of B's sweep: the gap notice, then what is left.
    let d = open(&redis, "race", rules()).await;
    let log = d.log_id();
    let hub = Hub::new(Arc::new(d), HubConfig::default());
    let mut sub = hub
        .subscribe(selector(&["r/1"]), &Resume::After(format!("{log}-1")))
        .unwrap();
    let mut text = String::new();
    while !text.contains(&format!("id: {log}-6\n")) || !text.contains("ssehub-gap") {
        text.push_str(&next_text(&mut sub).await);
    }
    assert!(text.contains("\"reason\":\"expired\""), "{text}");
    for gone in 2..=4 {
        assert!(!text.contains(&format!("id: {log}-{gone}\n")), "{text}");
    }
}

/// A rule leaves what is younger than the grace, so that every node's tail reads an event
/// before a rule deletes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_leaves_events_younger_than_the_grace() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut options = ClusterOptions {
        url: redis.url(),
        name: "grace".to_string(),
        retention: ClusterRetention {
            topics: vec![ClusterTopicRule {
                max_events: Some(1),
                ..rule("g")
            }],
            topic_grace: Duration::from_secs(60),
            sweep_every: Duration::from_secs(3600),
            ..ClusterRetention::default()
        },
        min_replicas: 0,
        replica_timeout: Duration::from_secs(1),
    };
    let store = RedisStore::open(options.clone()).await.expect("open");
    append(&store, &[&["g"], &["g"], &["g"]]).await;
    store.sweep().await.expect("sweep");
    assert_eq!(
        retained(&store, &["g"]).await,
        [1, 2, 3],
        "all younger than the grace"
    );
    options.retention.topic_grace = Duration::ZERO;
    let store = RedisStore::open(options).await.expect("open");
    store.sweep().await.expect("sweep");
    assert_eq!(retained(&store, &["g"]).await, [3]);
}

/// Many ruled topics: the sweep walks them a part per call, and covers them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_walks_every_ruled_topic() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let store = open(
        &redis,
        "many",
        vec![ClusterTopicRule {
            max_events: Some(1),
            ..rule("m/*")
        }],
    )
    .await;
    let names: Vec<String> = (0..1200).map(|i| format!("m/{i}")).collect();
    for _ in 0..2 {
        let events = names.iter().map(|n| event(&[n], "x")).collect();
        store.append(events).await.expect("append");
    }
    store.sweep().await.expect("sweep");
    assert_eq!(
        retained(&store, &["**"]).await,
        (1201..=2400).collect::<Vec<u64>>(),
        "each topic's newest"
    );
    assert_eq!(store.retained_from(&selector(&["m/7"])), 9);
}

/// The next chunk of `sub`, as text.
async fn next_text(sub: &mut ssehub_core::Subscription) -> String {
    let chunk = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("a chunk in time")
        .expect("the stream goes on");
    String::from_utf8(chunk.to_vec()).unwrap()
}

/// An event a per-topic rule deletes takes its publisher id out of the index (`TOPIC_SWEEP`):
/// the id is unknown, and free again; the ids of the events kept, and of other topics, stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_rule_takes_publisher_ids_with_its_events() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let store = open(
        &redis,
        "pubids",
        vec![ClusterTopicRule {
            max_events: Some(1),
            ..rule("a/*")
        }],
    )
    .await;
    let with_id = |topic: &str, id: &str| event(&[topic], "x").with_id(id, 256).unwrap();
    store
        .append(vec![
            with_id("a/1", "old"),
            with_id("b", "other"),
            with_id("a/1", "new"),
        ])
        .await
        .expect("append");
    store.sweep().await.expect("sweep");
    assert_eq!(retained(&store, &["a/1"]).await, [3]);
    assert_eq!(store.find_id("old").await.expect("find"), None, "deleted");
    assert_eq!(store.find_id("other").await.expect("find"), Some(2));
    assert_eq!(store.find_id("new").await.expect("find"), Some(3));
    let again = store
        .append(vec![with_id("b", "old")])
        .await
        .expect("free again");
    assert_eq!(
        store.find_id("old").await.expect("find"),
        Some(again[0].seq())
    );
    assert!(
        store.append(vec![with_id("b", "new")]).await.is_err(),
        "still taken"
    );
}

/// `keep = "latest-per-key"` on the shared log: the per-topic sweep deletes each keyed event a
/// newer one of its key replaced (without raising the topic's floor), keeps events without a
/// key and other topics' events, and deletes a tombstone once past its grace, raising the
/// floor to it; the snapshot is the same before and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_the_newest_event_of_each_key() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let store = open(
        &redis,
        "compact",
        vec![ClusterTopicRule {
            compaction: Some(Duration::from_millis(300)),
            ..rule("cursors/**")
        }],
    )
    .await;
    let keyed =
        |topic: &str, data: &str, key: &str| event(&[topic], data).with_key(key, 256).unwrap();
    store
        .append(vec![
            keyed("cursors/d", "a1", "a"),          // 1: replaced by 4
            keyed("cursors/d", "b1", "b"),          // 2: replaced by the tombstone 6
            event(&["cursors/d"], "plain"),         // 3: no key, kept
            keyed("cursors/d", "a2", "a"),          // 4
            keyed("other", "o1", "a"),              // 5: no rule
            keyed("cursors/d", "", "b").deleting(), // 6: kept for its grace
            keyed("other", "o2", "a"),              // 7
        ])
        .await
        .expect("append");
    store.sweep().await.expect("sweep");
    assert_eq!(retained(&store, &["**"]).await, [3, 4, 5, 6, 7]);
    let cursors = selector(&["cursors/d"]);
    assert_eq!(
        store.retained_from(&cursors),
        1,
        "replaced events raise no floor"
    );
    let snapshot = store
        .snapshot(0, 7, Arc::new(cursors.clone()), 100, usize::MAX)
        .await
        .expect("snapshot");
    let seqs: Vec<u64> = snapshot.events.iter().map(|e| e.seq()).collect();
    assert_eq!(seqs, [4]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    store.sweep().await.expect("sweep");
    assert_eq!(retained(&store, &["**"]).await, [3, 4, 5, 7]);
    assert_eq!(
        store.retained_from(&cursors),
        7,
        "an expired tombstone raises the floor"
    );
    assert_eq!(store.retained_from(&selector(&["other"])), 1);
}
