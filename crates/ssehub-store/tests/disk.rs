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
