//! Keys and snapshots through the real binary (issue 15): a publish with `?key=` (or `"key"`
//! in a batch) is its key's newest value; `?snapshot=true` starts a stream with the newest
//! retained event of every key of its topics, in id order, then live — with nothing lost or
//! sent twice in between; a tombstone (`delete=true`) takes a key out of snapshots and reaches
//! live subscribers as `ssehub-delete`; a resume from a known id is untouched by `snapshot`,
//! an expired or unknown one gets its gap notice and then the snapshot; a bad key is 400
//! `invalid_key`; the disk store keeps keys across a restart.

use std::time::Duration;

use serde_json::{Value, json};
use ssehub_wire::MessageEvent;

use crate::util::{TestHub, client, data};

/// `POST /topics/{topic}?{query}`: the status and the JSON answer.
async fn post(hub: &TestHub, topic: &str, query: &str, body: &str) -> (u16, Value) {
    let url = format!("{}/topics/{topic}?{query}", hub.url);
    let response = client()
        .post(url)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// `POST /publish` with `items`: the status and the JSON answer.
async fn post_batch(hub: &TestHub, items: Value) -> (u16, Value) {
    let url = format!("{}/publish", hub.url);
    let response = client().post(url).json(&items).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A hub whose config file says `toml`.
async fn hub_with(toml: &str, args: &[&str]) -> (TestHub, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ssehub.toml");
    std::fs::write(&config, toml).unwrap();
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    (TestHub::start(&all).await, dir)
}

/// Publishes `body` under `key` on `topic`; its id.
async fn put(hub: &TestHub, topic: &str, key: &str, body: &str) -> String {
    let (status, answer) = post(hub, topic, &format!("key={key}"), body).await;
    assert_eq!(status, 200, "{answer}");
    answer["id"].as_str().unwrap().to_string()
}

fn types(events: &[MessageEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

/// The snapshot of one topic, of several (`/subscribe`, a pattern), then live: the newest
/// value of each key in id order, no event without a key, no deleted key; then every live
/// event once, a tombstone as `ssehub-delete` with the key as data. On both stores.
#[tokio::test]
async fn a_snapshot_is_the_newest_of_each_key_then_live() {
    for store in ["memory", "disk"] {
        let hub = TestHub::start(&["--store", store]).await;
        put(&hub, "cur/a", "alice", "a1").await;
        put(&hub, "cur/a", "bob", "b1").await;
        put(&hub, "cur/b", "alice", "other topic").await;
        hub.publish("cur/a", "no key").await;
        put(&hub, "cur/a", "alice", "a2").await;
        put(&hub, "cur/a", "carol", "c1").await;
        let (status, _) = post(&hub, "cur/a", "key=bob&delete=true", "").await;
        assert_eq!(status, 200);
        let (status, batch) = post_batch(
            &hub,
            json!([
                {"topic": "cur/a", "data": "d1", "key": "dave"},
                {"topic": "cur/a", "data": "", "key": "carol", "delete": true},
                {"topic": "cur/a", "data": "c2", "key": "carol"},
            ]),
        )
        .await;
        assert_eq!(status, 200, "{batch}");

        let mut one = hub.subscribe("/topics/cur/a?snapshot=true", None).await;
        assert_eq!(data(&one.take(3).await), ["a2", "d1", "c2"], "{store}");
        let mut many = hub
            .subscribe("/subscribe?topic=cur/*&snapshot=true", None)
            .await;
        assert_eq!(
            data(&many.take(4).await),
            ["other topic", "a2", "d1", "c2"],
            "{store}"
        );
        // Without snapshot: live only, as before.
        let mut plain = hub.subscribe("/topics/cur/a", None).await;
        put(&hub, "cur/a", "alice", "a3").await;
        let (status, _) = post(&hub, "cur/a", "key=dave&delete=1", "ignored").await;
        assert_eq!(status, 200);
        for sub in [&mut one, &mut many, &mut plain] {
            let got = sub.take(2).await;
            assert_eq!(data(&got), ["a3", "dave"], "{store}");
            assert_eq!(types(&got), ["message", "ssehub-delete"], "{store}");
            sub.nothing_for(Duration::from_millis(100)).await;
        }
        let mut late = hub.subscribe("/topics/cur/a?snapshot=true", None).await;
        assert_eq!(data(&late.take(2).await), ["c2", "a3"], "{store}");
        late.nothing_for(Duration::from_millis(100)).await;
        assert_eq!(hub.metric("ssehub_snapshots_total").await, 3.0, "{store}");
        assert_eq!(hub.metric("ssehub_snapshot_events_total").await, 9.0);
        assert_eq!(hub.metric("ssehub_keyed_events_total").await, 11.0);
    }
}

/// Publishing while snapshots are read: each subscriber gets every key's newest value exactly
/// once overall — from the snapshot or live, never both, never neither.
#[tokio::test]
async fn no_gap_and_no_duplicate_between_snapshot_and_live() {
    // Small replay pages: the snapshot takes several reads while events arrive.
    let (hub, _dir) = hub_with(
        "[limits]\nreplay_page_bytes = 4096\n",
        &["--store", "memory"],
    )
    .await;
    for i in 0..200 {
        put(&hub, "race", &format!("k{}", i % 50), &format!("{i}")).await;
    }
    let writer = {
        let url = hub.url.clone();
        tokio::spawn(async move {
            for i in 200..400 {
                let url = format!("{url}/topics/race?key=k{}", i % 50);
                let response = client()
                    .post(url)
                    .body(format!("{i}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
            }
        })
    };
    let mut subs = Vec::new();
    for _ in 0..8 {
        subs.push(hub.subscribe("/topics/race?snapshot=true", None).await);
    }
    writer.await.unwrap();
    for mut sub in subs {
        // The newest value of every key must arrive (values 350..400), once, after the
        // snapshot: read until the last one.
        let mut got: Vec<u64> = Vec::new();
        while !got.contains(&399) {
            got.extend(
                data(&sub.take(1).await)
                    .iter()
                    .map(|d| d.parse::<u64>().unwrap()),
            );
        }
        let mut seen = std::collections::HashSet::new();
        assert!(got.iter().all(|v| seen.insert(*v)), "a duplicate: {got:?}");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order: {got:?}");
        for v in 350..400 {
            assert!(got.contains(&v), "{v} missing from {got:?}");
        }
        sub.nothing_for(Duration::from_millis(50)).await;
    }
}

/// `snapshot=true` with a `Last-Event-ID` the hub knows: the usual resume (every event after
/// it, keyed or not). With an expired one, and with one of another log: the gap notice, then
/// the snapshot instead of the retained history.
#[tokio::test]
async fn resume_is_unchanged_and_a_lost_id_gets_the_gap_then_the_snapshot() {
    let hub = TestHub::start(&["--store", "memory", "--history-max-events", "4"]).await;
    let first = put(&hub, "r", "x", "x1").await;
    let second = put(&hub, "r", "y", "y1").await;
    hub.publish("r", "plain").await;
    let mut resumed = hub
        .subscribe("/topics/r?snapshot=true", Some(&second))
        .await;
    let got = resumed.take(1).await;
    assert_eq!(data(&got), ["plain"], "a resume, not a snapshot");
    put(&hub, "r", "x", "x2").await;
    put(&hub, "r", "z", "z1").await;
    put(&hub, "r", "w", "w1").await;
    // `first` and `second` are gone (4 events retained): expired.
    for (id, reason) in [(first.as_str(), "expired"), ("0badc0de-3", "unknown")] {
        let mut lost = hub.subscribe("/topics/r?snapshot=true", Some(id)).await;
        let got = lost.take(4).await;
        assert_eq!(types(&got)[0], "ssehub-gap", "{id}");
        let gap: Value = serde_json::from_str(&got[0].data).unwrap();
        assert_eq!(gap["reason"], reason);
        assert_eq!(
            data(&got[1..]),
            ["x2", "z1", "w1"],
            "the snapshot, not {got:?}"
        );
        lost.nothing_for(Duration::from_millis(100)).await;
        // Without snapshot: the gap, then the whole retained history.
        let mut history = hub.subscribe("/topics/r", Some(id)).await;
        let got = history.take(5).await;
        assert_eq!(data(&got[1..]), ["plain", "x2", "z1", "w1"]);
    }
    // `earliest` stays the whole history.
    let mut earliest = hub
        .subscribe("/topics/r?snapshot=true&lastEventId=earliest", None)
        .await;
    assert_eq!(data(&earliest.take(4).await), ["plain", "x2", "z1", "w1"]);
}

/// A key that is empty, holds CR, LF or NUL, or is over `limits.max_key_bytes`, and a delete
/// without a key: 400 `invalid_key` on both publish routes, counted; nothing stored.
#[tokio::test]
async fn bad_keys_are_400() {
    let (hub, _dir) = hub_with("[limits]\nmax_key_bytes = 8\n", &["--store", "memory"]).await;
    let long = "k".repeat(9);
    for query in [
        "key=",
        "key=a%0Db",
        "key=a%0Ab",
        "key=a%00b",
        &format!("key={long}"),
        "delete=true",
    ] {
        let (status, body) = post(&hub, "bad", query, "x").await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_key")),
            "{query}"
        );
    }
    let (status, body) = post_batch(
        &hub,
        json!([{"topic": "bad", "data": "x", "key": "ok"}, {"topic": "bad", "data": "x", "key": ""}]),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_key")));
    assert!(body["message"].as_str().unwrap().starts_with("event 1"));
    put(&hub, "bad", &"k".repeat(8), "fits").await;
    let rejected = hub
        .metric("ssehub_rejected_requests_total{reason=\"invalid_key\"}")
        .await;
    assert_eq!(rejected, 7.0);
    assert_eq!(hub.metric("ssehub_keyed_events_total").await, 1.0);
}

/// The disk store keeps the key index and tombstones across a restart.
#[tokio::test]
async fn keys_survive_a_restart() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let hub = TestHub::start_in(dir.clone(), "127.0.0.1:0", &["--store", "disk"]).await;
    put(&hub, "s", "a", "a1").await;
    put(&hub, "s", "b", "b1").await;
    put(&hub, "s", "a", "a2").await;
    assert_eq!(post(&hub, "s", "key=b&delete=true", "").await.0, 200);
    let mut hub = hub;
    hub.terminate();
    assert!(hub.wait(Duration::from_secs(10)).await.success());
    drop(hub);
    let hub = TestHub::start_in(dir, "127.0.0.1:0", &["--store", "disk"]).await;
    let mut sub = hub.subscribe("/topics/s?snapshot=true", None).await;
    assert_eq!(data(&sub.take(1).await), ["a2"]);
    sub.nothing_for(Duration::from_millis(100)).await;
}

/// `keep = "latest-per-key"` through the binary: the sweep compacts a keyed topic to the
/// newest event of each key (and keeps events without a key); a resume from the start of the
/// topic then gets those, with no gap notice; the snapshot is the same before and after; a
/// topic without the rule keeps everything.
#[tokio::test]
async fn compaction_keeps_the_newest_value_of_each_key() {
    let (hub, _dir) = hub_with(
        "[[history.topics]]\npattern = \"cursors/**\"\nkeep = \"latest-per-key\"\n",
        &["--store", "disk"],
    )
    .await;
    let first = hub.publish("before", "x").await;
    for i in 0..30 {
        put(&hub, "cursors/doc", &format!("k{}", i % 3), &format!("{i}")).await;
        put(&hub, "plain", &format!("k{}", i % 3), &format!("{i}")).await;
    }
    hub.publish("cursors/doc", "no key").await;
    // The sweep runs every second: wait (bounded) until the topic is compacted.
    let want = ["27", "28", "29", "no key"];
    let mut compacted = false;
    for _ in 0..100 {
        let mut sub = hub.subscribe("/topics/cursors/doc", Some(&first)).await;
        let got = sub.take(4).await;
        if data(&got) == want {
            assert_eq!(types(&got), ["message"; 4], "no gap notice");
            sub.nothing_for(Duration::from_millis(200)).await;
            compacted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(compacted, "the sweep compacted the topic");
    let mut snapshot = hub
        .subscribe("/topics/cursors/doc?snapshot=true", None)
        .await;
    assert_eq!(data(&snapshot.take(3).await), ["27", "28", "29"]);
    let mut plain = hub.subscribe("/topics/plain", Some(&first)).await;
    assert_eq!(plain.take(30).await.len(), 30, "no rule: every event kept");
}
