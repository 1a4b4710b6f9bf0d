//! `ssehub serve --cluster`: several real nodes on one real `redis-server` (started by the
//! test on 127.0.0.1, stopped by its PID when dropped; the tests skip, saying so, only when
//! `redis-server` or `redis-sentinel` is not installed — `scripts/test` installs them).

use std::time::Duration;

use serde_json::{Value, json};
use ssehub_cluster::testing::{RedisServer, Sentinel};

use crate::jwt::{Key, PUBLISHER_SECRET, SUBSCRIBER_SECRET, mercure, sign};
use crate::util::{TestHub, client, data, seq};

/// `n` nodes of one cluster (named `name`) on `redis`, each on its own data dir.
pub(crate) async fn nodes(
    redis: &RedisServer,
    name: &str,
    n: usize,
    extra: &[&str],
) -> Vec<TestHub> {
    nodes_at(&redis.url(), name, n, extra).await
}

/// `n` nodes of one cluster (named `name`) at the cluster URL `url`.
async fn nodes_at(url: &str, name: &str, n: usize, extra: &[&str]) -> Vec<TestHub> {
    let mut args = vec!["--cluster", url, "--cluster-name", name];
    args.extend_from_slice(extra);
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(TestHub::start(&args).await);
    }
    nodes
}

/// A publish on any node reaches the subscribers of every node exactly once, in one order,
/// with the id its publisher was answered.
#[tokio::test]
async fn every_node_delivers_every_event_once_in_one_order() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let nodes = nodes(&redis, "order", 3, &[]).await;
    let mut subs = Vec::new();
    for node in &nodes {
        subs.push(node.subscribe("/subscribe?topic=o/*", None).await);
    }
    let mut answered = Vec::new();
    for i in 0..30 {
        let node = &nodes[i % 3];
        answered.push(node.publish(&format!("o/{}", i % 4), &i.to_string()).await);
    }
    let mut seen = Vec::new();
    for sub in &mut subs {
        let got = sub.take(30).await;
        let ids: Vec<String> = got.iter().map(|e| e.last_event_id.clone()).collect();
        seen.push(ids);
    }
    assert_eq!(
        seen[0], answered,
        "node A: every answered id, once, in order"
    );
    assert_eq!(seen[1], seen[0], "node B: the same order");
    assert_eq!(seen[2], seen[0], "node C: the same order");
    for sub in &mut subs {
        sub.nothing_for(Duration::from_millis(200)).await;
    }
}

/// A client resumes on node B with the `Last-Event-ID` node A gave it: single topic,
/// multi-topic and pattern subscriptions.
#[tokio::test]
async fn a_client_resumes_on_another_node() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let nodes = nodes(&redis, "resume", 2, &[]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(a.publish(&format!("r/{}", i % 3), &i.to_string()).await);
    }
    let mut subs = Vec::new();
    for (path, want) in [
        ("/topics/r/0", vec!["6", "9"]),
        ("/subscribe?topic=r/0&topic=r/1", vec!["6", "7", "9", "10"]),
        ("/subscribe?topic=r/*", vec!["6", "7", "8", "9", "10", "11"]),
    ] {
        let mut sub = b.subscribe(path, Some(&ids[5])).await;
        let got = sub.take(want.len()).await;
        assert_eq!(data(&got), want, "{path}");
        subs.push(sub);
    }
    // Then live, from either node.
    let id = a.publish("r/0", "live").await;
    for sub in &mut subs {
        let live = sub.take(1).await;
        assert_eq!(
            (live[0].data.as_str(), &live[0].last_event_id),
            ("live", &id)
        );
    }
    // An id the publisher was just answered on A, resumed on B at once: nothing twice.
    let id = a.publish("r/2", "just").await;
    let mut sub = b.subscribe("/topics/r/2", Some(&id)).await;
    let next = a.publish("r/2", "next").await;
    let got = sub.take(1).await;
    assert_eq!(
        (got[0].data.as_str(), &got[0].last_event_id),
        ("next", &next)
    );
    sub.nothing_for(Duration::from_millis(200)).await;
}

/// Expired and unknown ids (of another log, or of this one but past its end) get the
/// `ssehub-gap` event on any node, as on one.
#[tokio::test]
async fn expired_and_unknown_ids_get_the_gap_notice() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let nodes = nodes(&redis, "gap", 2, &["--history-max-events", "5"]).await;
    let first = nodes[0].publish("g", "0").await;
    for i in 1..12 {
        nodes[i % 2].publish("g", &i.to_string()).await;
    }
    // Retention runs on every node about once a second.
    let floor = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let mut sub = nodes[1]
                .subscribe("/topics/g?lastEventId=earliest", None)
                .await;
            let got = sub.take(1).await;
            if got[0].data == "7" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(floor.is_ok(), "retention keeps the newest five");
    // An id of this log that no node has given (forged, far ahead of the log).
    let forged = format!("{}-1000000", first.split_once('-').unwrap().0);
    for (id, reason) in [
        (first.as_str(), "expired"),
        ("0badc0de-3", "unknown"),
        (forged.as_str(), "unknown"),
    ] {
        let mut sub = nodes[1].subscribe("/topics/g", Some(id)).await;
        let got = sub.take(6).await;
        assert_eq!(got[0].event_type, "ssehub-gap", "{id}");
        assert!(got[0].data.contains(reason), "{}", got[0].data);
        assert_eq!(data(&got[1..]), ["7", "8", "9", "10", "11"], "{id}");
    }
    assert_eq!(seq(&first), 1);
}

/// A node that loses Redis refuses publishes with 503 `store_unavailable` and keeps its open
/// streams; once Redis is back, every node catches up in order, nothing skipped or twice.
#[tokio::test]
async fn a_node_without_redis_refuses_publishes_keeps_its_streams_and_catches_up() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let nodes = nodes(&redis, "lost", 2, &[]).await;
    let (node, other) = (&nodes[0], &nodes[1]);
    let mut subs = [
        node.subscribe("/topics/l", None).await,
        other.subscribe("/topics/l", None).await,
    ];
    let before = node.publish("l", "before").await;
    for sub in &mut subs {
        assert_eq!(data(&sub.take(1).await), ["before"]);
    }
    redis.kill();
    let response = client()
        .post(format!("{}/topics/l", node.url))
        .body("refused")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "store_unavailable", "{body}");
    for sub in &mut subs {
        sub.nothing_for(Duration::from_millis(300)).await;
        assert!(!sub.ended, "the open stream stays open");
    }

    redis.start_again();
    let mut after = Vec::new();
    for i in 0..5 {
        let published = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let response = client()
                    .post(format!("{}/topics/l", node.url))
                    .body(format!("after {i}"))
                    .send()
                    .await
                    .unwrap();
                if response.status() == 200 {
                    let body: serde_json::Value = response.json().await.unwrap();
                    return body["id"].as_str().unwrap().to_string();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        after.push(published.expect("publishes succeed once Redis is back"));
    }
    assert_eq!(
        seq(&after[0]),
        seq(&before) + 1,
        "the log goes on where it was"
    );
    for sub in &mut subs {
        let got = sub.take(5).await;
        let ids: Vec<&str> = got.iter().map(|e| e.last_event_id.as_str()).collect();
        assert_eq!(ids, after, "in order, none skipped, none twice");
        sub.nothing_for(Duration::from_millis(200)).await;
    }
}

/// With `cluster.min_replicas = 1`, a publish is answered 200 once a Redis replica has it
/// (`WAIT`), and 503 `store_unavailable` when none acknowledges in time.
#[tokio::test]
async fn min_replicas_needs_a_replica_to_acknowledge() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut replica = RedisServer::start_replica_of(&redis);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ssehub.toml");
    std::fs::write(
        &file,
        "[cluster]\nmin_replicas = 1\nreplica_timeout_ms = 300\n",
    )
    .unwrap();
    let nodes = nodes(&redis, "replicas", 1, &["--config", file.to_str().unwrap()]).await;
    let post = |data: &'static str| {
        client()
            .post(format!("{}/topics/w", nodes[0].url))
            .body(data)
            .send()
    };
    // The replica's first sync may take a moment.
    let synced = tokio::time::timeout(Duration::from_secs(20), async {
        while post("synced?").await.unwrap().status() != 200 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        synced.is_ok(),
        "a publish is acknowledged once the replica has it"
    );
    replica.kill();
    let response = post("alone").await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "store_unavailable", "{body}");
}

/// Publishes `data` to `topic` on `node`: its id when answered 200, `None` when 503.
async fn try_publish(node: &TestHub, topic: &str, data: &str) -> Option<String> {
    let response = client()
        .post(format!("{}/topics/{topic}", node.url))
        .body(data.to_string())
        .send()
        .await
        .expect("the node answers");
    if response.status() != 200 {
        assert_eq!(response.status(), 503, "a publish is answered 200 or 503");
        return None;
    }
    let body: serde_json::Value = response.json().await.unwrap();
    Some(body["id"].as_str().unwrap().to_string())
}

/// `redis+sentinel://`: a primary, two replicas and a Sentinel; two nodes publish without a
/// pause, with `cluster.min_replicas = 1`; the primary is killed (SIGKILL) mid-stream. The
/// Sentinel promotes a replica, both nodes follow it, and every acknowledged event (answered
/// 200; the 503s of the failover are not) is in the history after the failover and reached
/// every subscriber exactly once, in order.
#[tokio::test]
async fn nodes_follow_a_sentinel_failover_and_keep_every_acknowledged_event() {
    let Some(mut primary) = RedisServer::start() else {
        return;
    };
    // Two replicas: after the failover the new primary still has one for `min_replicas`.
    let _replicas = [
        RedisServer::start_replica_of(&primary),
        RedisServer::start_replica_of(&primary),
    ];
    let Some(sentinel) = Sentinel::start(&primary) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ssehub.toml");
    std::fs::write(
        &file,
        "[cluster]\nmin_replicas = 1\nreplica_timeout_ms = 500\n",
    )
    .unwrap();
    let extra = ["--config", file.to_str().unwrap()];
    let nodes = nodes_at(&sentinel.url(), "failover", 2, &extra).await;
    let mut subs = [
        nodes[0].subscribe("/topics/f", None).await,
        nodes[1].subscribe("/topics/f", None).await,
    ];
    // (data, id) of every acknowledged publish, in the order of the answers.
    let mut acked: Vec<(String, String)> = Vec::new();
    let (mut published, mut refused) = (0usize, 0usize);
    let mut i = 0;
    let outcome = tokio::time::timeout(Duration::from_secs(40), async {
        let mut killed_at = None;
        // Bounded: a refused publish waits 10 ms, the failover takes a few seconds.
        while i < 3000 {
            published += 1;
            match try_publish(&nodes[i % 2], "f", &i.to_string()).await {
                Some(id) => acked.push((i.to_string(), id)),
                None => {
                    refused += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            i += 1;
            // Before: 20 acknowledged (the replicas' first sync may take a moment).
            if killed_at.is_none() && acked.len() == 20 {
                primary.kill();
                killed_at = Some(acked.len());
            }
            // After: 20 more, through the promoted replica.
            if killed_at.is_some_and(|at| acked.len() >= at + 20) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        outcome,
        Ok(true),
        "publishes are acknowledged again after the failover ({} acknowledged, {refused} refused of {published})",
        acked.len()
    );

    let ids = |events: &[ssehub_wire::MessageEvent]| -> Vec<(String, String)> {
        events
            .iter()
            .map(|e| (e.data.clone(), e.last_event_id.clone()))
            .collect()
    };
    let last = acked.last().unwrap().1.clone();
    // The history after the failover, from any node, and what every subscriber got live.
    let mut history = nodes[1]
        .subscribe("/topics/f?lastEventId=earliest", None)
        .await;
    let mut streams: Vec<&mut crate::util::Sse> = subs.iter_mut().collect();
    streams.push(&mut history);
    for (n, stream) in streams.into_iter().enumerate() {
        let mut got = Vec::new();
        while !got.iter().any(|(_, id)| *id == last) {
            assert!(
                got.len() <= published,
                "stream {n}: no more than was published"
            );
            got.extend(ids(&stream.take(1).await));
        }
        // Refused publishes may be there too (the primary had them): only the acknowledged
        // ones are counted, each once, in the order of their answers.
        let seqs: Vec<u64> = got.iter().map(|(_, id)| seq(id)).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "stream {n}: in order, none twice: {seqs:?}"
        );
        let kept: Vec<_> = got.iter().filter(|e| acked.contains(e)).cloned().collect();
        let lost = acked.len() - kept.len();
        eprintln!(
            "failover, stream {n}: published {published}, acknowledged {}, refused {refused}, \
             received {} (acknowledged {}), lost {lost}, duplicates 0",
            acked.len(),
            got.len(),
            kept.len()
        );
        assert_eq!(
            kept, acked,
            "stream {n}: every acknowledged event, once, in order; received {got:?}"
        );
    }
}

/// `[[history.topics]]` with a cluster: a topic's rule holds on every node, whichever node
/// published and whichever swept; other topics keep everything, and a resume from below the
/// topic's floor gets the gap notice on either node.
#[tokio::test]
async fn a_per_topic_rule_holds_on_every_node() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ssehub.toml");
    std::fs::write(
        &file,
        "[[history.topics]]\npattern = \"capped/*\"\nmax_events = 3\n",
    )
    .unwrap();
    let nodes = nodes(
        &redis,
        "per-topic",
        2,
        &["--config", file.to_str().unwrap()],
    )
    .await;
    let mut first = None;
    for i in 0..10 {
        let id = nodes[i % 2].publish("capped/1", &i.to_string()).await;
        first.get_or_insert(id);
        if i % 5 == 0 {
            nodes[(i + 1) % 2].publish("free", &i.to_string()).await;
        }
    }
    // Each node sweeps about once a second, leaving what is younger than a grace (2 s).
    let swept = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let mut oldest = Vec::new();
            for node in &nodes {
                let mut sub = node
                    .subscribe("/topics/capped/1?lastEventId=earliest", None)
                    .await;
                let got = sub.take(3).await;
                oldest.push(data(&got).join(","));
            }
            if oldest.iter().all(|got| got == "7,8,9") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(
        swept.is_ok(),
        "both nodes replay capped/1's newest three only"
    );
    let first = first.unwrap();
    for node in &nodes {
        let mut sub = node.subscribe("/topics/capped/1", Some(&first)).await;
        let got = sub.take(4).await;
        assert_eq!(got[0].event_type, "ssehub-gap");
        assert!(got[0].data.contains("expired"), "{}", got[0].data);
        assert_eq!(data(&got[1..]), ["7", "8", "9"]);
        let mut free = node.subscribe("/topics/free", Some(&first)).await;
        assert_eq!(data(&free.take(2).await), ["0", "5"], "no rule: all kept");
    }
}

/// The topic template that matches every subscription update.
const UPDATES: &str = "/.well-known/mercure/subscriptions/{topic}/{subscriber}";
/// What a token needs to list the subscriptions and receive their updates.
const SUBSCRIPTIONS: &str = "/.well-known/mercure/subscriptions{/topic}{/subscriber}";

/// RFC 6570 simple-expansion encoding, as the hub writes subscription topics.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A Mercure stream on `node` for `topic`, with `token` if given.
async fn mercure_stream(node: &TestHub, topic: &str, token: Option<&str>) -> crate::util::Sse {
    let topic: String = form_urlencoded::byte_serialize(topic.as_bytes()).collect();
    let mut request = client().get(format!("{}/.well-known/mercure?topic={topic}", node.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    crate::util::Sse::new(response)
}

/// The next subscription update of `topic` on `watcher` (others skipped), within `wait`.
async fn update_of(watcher: &mut crate::util::Sse, topic: &str, wait: Duration) -> Option<Value> {
    tokio::time::timeout(wait, async {
        loop {
            for event in watcher.take(1).await {
                let update: Value = serde_json::from_str(&event.data).unwrap();
                if update["topic"] == topic {
                    return update;
                }
            }
        }
    })
    .await
    .ok()
}

/// `(subscriber, topic)` of every subscription `node` lists.
async fn listed(node: &TestHub, token: &str) -> Vec<(String, String)> {
    let response = client()
        .get(format!("{}/.well-known/mercure/subscriptions", node.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let all: Value = response.json().await.unwrap();
    all["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let field = |name: &str| s[name].as_str().unwrap().to_string();
            (field("subscriber"), field("topic"))
        })
        .collect()
}

/// Mercure's active subscriptions across nodes: a watcher on node A gets the `active: true`
/// and `active: false` updates of a stream opened and closed on node B, and A's
/// subscriptions API lists B's stream while it is open — and, once B is killed (SIGKILL),
/// stops listing it within the records' time to live (15 s).
#[tokio::test]
async fn mercure_subscriptions_are_seen_from_every_node() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let keys = [
        "--publisher-key",
        PUBLISHER_SECRET,
        "--subscriber-key",
        SUBSCRIBER_SECRET,
    ];
    let mut nodes = nodes(&redis, "mercure", 2, &keys).await;
    let key = Key::hs(SUBSCRIBER_SECRET);
    let admin = sign(&key, None, mercure(&[], &[SUBSCRIPTIONS], None));
    let mut watcher = mercure_stream(&nodes[0], UPDATES, Some(&admin)).await;

    // Until B's updates reach A (its relay subscribes a moment after it starts).
    let mut relayed = false;
    for _ in 0..50 {
        let _probe = mercure_stream(&nodes[1], "probe", None).await;
        if update_of(&mut watcher, "probe", Duration::from_millis(200))
            .await
            .is_some()
        {
            relayed = true;
            break;
        }
    }
    assert!(relayed, "node B's subscription updates reach node A");

    let book = "https://example.com/books/1";
    let reader = sign(
        &key,
        None,
        json!({"mercure": {"subscribe": [book], "payload": {"user": "b"}}}),
    );
    let on_b = mercure_stream(&nodes[1], book, Some(&reader)).await;
    let wait = Duration::from_secs(10);
    let started = update_of(&mut watcher, book, wait)
        .await
        .expect("active: true");
    assert_eq!(started["active"], true);
    assert_eq!(started["payload"], json!({"user": "b"}));
    let id = started["subscriber"].as_str().unwrap().to_string();
    // B entered its stream in Redis before it published the update: A lists it already.
    assert!(
        listed(&nodes[0], &admin)
            .await
            .contains(&(id.clone(), book.to_string())),
        "node A lists node B's stream"
    );
    let one = client()
        .get(format!(
            "{}/.well-known/mercure/subscriptions/{}/{}",
            nodes[0].url,
            encode(book),
            encode(&id)
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let one: Value = one.json().await.unwrap();
    assert_eq!(one["payload"], json!({"user": "b"}));

    drop(on_b);
    let ended = update_of(&mut watcher, book, wait)
        .await
        .expect("active: false");
    assert_eq!(
        (&ended["subscriber"], &ended["active"]),
        (&json!(id), &json!(false))
    );
    assert!(
        !listed(&nodes[0], &admin)
            .await
            .iter()
            .any(|(s, _)| *s == id),
        "node B removed its stream before it published the update"
    );

    // B dies with a stream open: A stops listing it once B's records expire.
    let _open = mercure_stream(&nodes[1], book, Some(&reader)).await;
    let started = update_of(&mut watcher, book, wait)
        .await
        .expect("active: true");
    let id = started["subscriber"].as_str().unwrap().to_string();
    assert!(
        listed(&nodes[0], &admin)
            .await
            .iter()
            .any(|(s, _)| *s == id)
    );
    nodes[1].kill().await;
    let killed = std::time::Instant::now();
    let gone = tokio::time::timeout(Duration::from_secs(25), async {
        while listed(&nodes[0], &admin)
            .await
            .iter()
            .any(|(s, _)| *s == id)
        {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    assert!(
        gone.is_ok(),
        "node A stops listing the killed node's stream"
    );
    eprintln!(
        "the killed node's stream was unlisted after {:?}",
        killed.elapsed()
    );
}

/// Keys across nodes: values published on either node make one snapshot on any node, a
/// tombstone from one node takes its key out of every node's snapshots and reaches the other
/// node's live subscribers as `ssehub-delete`.
#[tokio::test]
async fn keys_and_snapshots_are_shared_by_the_nodes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let nodes = nodes(&redis, "keys", 2, &[]).await;
    let put = |node: usize, key: &str, data: &str| {
        let url = format!("{}/topics/cur?key={key}", nodes[node].url);
        let data = data.to_string();
        async move {
            let response = client().post(url).body(data).send().await.unwrap();
            assert_eq!(response.status(), 200);
        }
    };
    put(0, "a", "a1").await;
    put(1, "b", "b1").await;
    put(1, "a", "a2").await;
    put(0, "c", "c1").await;
    let mut live = nodes[1].subscribe("/topics/cur?snapshot=true", None).await;
    assert_eq!(data(&live.take(3).await), ["b1", "a2", "c1"]);
    let response = client()
        .post(format!("{}/topics/cur?key=b&delete=true", nodes[0].url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let got = live.take(1).await;
    assert_eq!(
        (got[0].event_type.as_str(), got[0].data.as_str()),
        ("ssehub-delete", "b")
    );
    for node in &nodes {
        let mut late = node.subscribe("/topics/cur?snapshot=true", None).await;
        assert_eq!(data(&late.take(2).await), ["a2", "c1"]);
        late.nothing_for(Duration::from_millis(100)).await;
    }
}
