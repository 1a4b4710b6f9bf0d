//! The disk store's own behaviour, beyond the shared conformance suite.

use std::sync::Arc;

use ssehub_core::{NewEvent, Pattern, Selector, Store, Topic};
use ssehub_store::{DiskOptions, DiskStore, Retention, RetentionLimits, TopicRule};

fn selector(pattern: &str) -> Selector {
    Selector::new(vec![Pattern::new(pattern).unwrap()]).unwrap()
}

/// A wildcard pattern's retention floor comes from exactly the topics it matches, once a
/// per-topic rule has dropped events the log still holds (neighbours such as `a-b` and `ab`
/// must not count for `a/*`).
#[tokio::test]
async fn a_wildcard_floor_counts_exactly_the_matching_topics() {
    let dir = tempfile::tempdir().unwrap();
    let options = DiskOptions {
        retention: Retention {
            hub: RetentionLimits::default(),
            // Every topic keeps its newest event only.
            topics: vec![TopicRule {
                compaction: None,
                pattern: Pattern::new("**").unwrap(),
                limits: RetentionLimits {
                    max_events: Some(1),
                    ..RetentionLimits::default()
                },
            }],
            sweep_every: std::time::Duration::from_secs(3600),
        },
        ..DiskOptions::default()
    };
    let store = DiskStore::open(&dir.path().join("data"), options).unwrap();
    // seq 1: keep; 2, 3: a/1; 4, 5: a-b; 6, 7: ab; 8, 9: a/x/y.
    let mut events = vec![NewEvent::new(Topic::new("keep").unwrap(), "1")];
    for topic in ["a/1", "a-b", "ab", "a/x/y"] {
        for data in ["old", "new"] {
            events.push(NewEvent::new(Topic::new(topic).unwrap(), data));
        }
    }
    store.append(events).await.unwrap();
    // (The sweep may also have run in the background since the store opened.)
    store.sweep().unwrap();
    assert_eq!(store.len(), 5, "the older event of each pair is gone");
    let store: Arc<dyn Store> = Arc::new(store);
    assert_eq!(
        store.bounds().first,
        1,
        "`keep` holds the log's first event"
    );
    for (pattern, floor) in [
        ("a/*", 3),   // a/1 only
        ("a/**", 9),  // a/1 and a/x/y
        ("a/x/*", 9), // a/x/y
        ("ab", 7),    // exact
        ("*/1", 3),   // no literal prefix: every topic is tried
        ("b/*", 1),   // no topic: the log's floor
        ("a/1/*", 1), // a/1 itself is not under a/1/*
    ] {
        assert_eq!(store.retained_from(&selector(pattern)), floor, "{pattern}");
    }
}

/// `keep = "latest-per-key"`: the sweep deletes every event a newer one of its key replaced
/// in a compacted topic — without raising the topic's floor (a resume from before gets the
/// newer value, no gap) — keeps events without a key and other topics' events, and deletes a
/// tombstone once past its grace, raising the floor to it (a resume from before it would miss
/// the deletion: the gap notice). The snapshot is unchanged by compaction.
#[tokio::test]
async fn compaction_keeps_the_newest_event_of_each_key() {
    let dir = tempfile::tempdir().unwrap();
    let options = DiskOptions {
        retention: Retention {
            hub: RetentionLimits::default(),
            topics: vec![TopicRule {
                pattern: Pattern::new("cursors/**").unwrap(),
                limits: RetentionLimits::default(),
                compaction: Some(ssehub_store::Compaction {
                    tombstone_grace: std::time::Duration::from_millis(300),
                }),
            }],
            sweep_every: std::time::Duration::from_secs(3600),
        },
        ..DiskOptions::default()
    };
    let store = DiskStore::open(&dir.path().join("data"), options).unwrap();
    let keyed = |topic: &str, data: &str, key: &str| {
        NewEvent::new(Topic::new(topic).unwrap(), data)
            .with_key(key, 256)
            .unwrap()
    };
    let tombstone =
        |topic: &str, key: &str| NewEvent::tombstone(Topic::new(topic).unwrap(), key, 256).unwrap();
    store
        .append(vec![
            keyed("cursors/d", "a1", "a"), // 1: replaced by 4
            keyed("cursors/d", "b1", "b"), // 2: replaced by the tombstone 6
            NewEvent::new(Topic::new("cursors/d").unwrap(), "plain"), // 3: no key, kept
            keyed("cursors/d", "a2", "a"), // 4
            keyed("other", "o1", "a"),     // 5: not compacted
            tombstone("cursors/d", "b"),   // 6: kept for its grace
            keyed("other", "o2", "a"),     // 7
        ])
        .await
        .unwrap();
    store.sweep().unwrap();
    let disk = store.clone();
    let store: Arc<dyn Store> = Arc::new(store);
    let all = |store: Arc<dyn Store>| async move {
        let page = store
            .read(0, 100, Arc::new(selector("**")), 100, usize::MAX)
            .await
            .unwrap();
        page.events.iter().map(|e| e.seq()).collect::<Vec<_>>()
    };
    assert_eq!(all(store.clone()).await, [3, 4, 5, 6, 7]);
    let cursors = selector("cursors/d");
    assert_eq!(
        store.retained_from(&cursors),
        3,
        "the log's floor; replaced events do not raise the topic's"
    );
    let snapshot = store
        .snapshot(0, 100, Arc::new(cursors.clone()), 100, usize::MAX)
        .await
        .unwrap();
    assert_eq!(
        snapshot.events.iter().map(|e| e.seq()).collect::<Vec<_>>(),
        [4]
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    // The tombstone is past its grace: the next sweep takes it and raises the floor.
    assert_eq!(disk.sweep().unwrap(), 1);
    assert_eq!(all(store.clone()).await, [3, 4, 5, 7]);
    assert_eq!(store.retained_from(&cursors), 7);
    assert_eq!(store.retained_from(&selector("other")), 3);
}
