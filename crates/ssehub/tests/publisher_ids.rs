//! Publisher ids through the real binary: an id a publisher gives (`?id=`, `"id"` in a
//! `/publish` batch, Mercure's `id`) is the event's SSE id and the answer, resumes like a hub
//! id on one topic and several, is refused when already taken (409) or malformed (400), leaves
//! with its event under retention, and survives a restart of the disk store.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{TestHub, client, data};

/// `POST /topics/{topic}?id=…` (and any other `query`): the status and the JSON answer.
async fn post_one(hub: &TestHub, topic: &str, query: &str, body: &str) -> (u16, Value) {
    let url = format!("{}/topics/{topic}?{query}", hub.url);
    answer(client().post(url).body(body.to_string())).await
}

/// `POST /publish` with `items`: the status and the JSON answer.
async fn post_batch(hub: &TestHub, items: Value) -> (u16, Value) {
    answer(client().post(format!("{}/publish", hub.url)).json(&items)).await
}

/// Sends `request`: the status and the JSON answer.
async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// `POST /.well-known/mercure` with `fields` (anonymous: the hub has no keys): the status and
/// the body.
async fn post_mercure(hub: &TestHub, fields: &[(&str, &str)]) -> (u16, String) {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        form.append_pair(k, v);
    }
    let response = client()
        .post(format!("{}/.well-known/mercure", hub.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.finish())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn ids(events: &[ssehub_wire::MessageEvent]) -> Vec<&str> {
    events.iter().map(|e| e.last_event_id.as_str()).collect()
}

/// Native routes: the publisher's id is the answer and the SSE id; a resume from it, on one
/// topic and on several (`/subscribe`, a pattern), gets exactly the events after it, whatever
/// kind of id those have, then live events; a resume from a hub id between them works too.
#[tokio::test]
async fn native_ids_resume_on_one_topic_and_several() {
    let hub = TestHub::start(&["--store", "memory"]).await;
    let first = hub.publish("p/a", "zero").await;
    let (status, one) = post_one(&hub, "p/a", "id=rev-1", "one").await;
    assert_eq!((status, one["id"].as_str()), (200, Some("rev-1")));
    let (status, batch) = post_batch(
        &hub,
        json!([
            {"topic": "p/b", "data": "two\nlines", "id": "urn:uuid:2"},
            {"topic": "p/a", "data": "three"},
            {"topic": "p/b", "data": "four", "id": "https://e.com/books/1#4"},
        ]),
    )
    .await;
    assert_eq!(status, 200, "{batch}");
    let answered: Vec<&str> = batch["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(answered[0], "urn:uuid:2");
    assert_eq!(answered[2], "https://e.com/books/1#4");
    let hub_id = answered[1].to_string();
    assert_ne!(hub_id, first);

    // One topic, from a publisher id.
    let mut a = hub.subscribe("/topics/p/a", Some("rev-1")).await;
    let got = a.take(1).await;
    assert_eq!(
        (data(&got), ids(&got)),
        (vec!["three"], vec![hub_id.as_str()])
    );
    // Several topics, from a publisher id, by header and by query parameter.
    let mut both = hub
        .subscribe("/subscribe?topic=p/a&topic=p/b", Some("rev-1"))
        .await;
    let by_query = format!("/subscribe?topic=p/*&lastEventId={}", "rev-1");
    let mut pattern = hub.subscribe(&by_query, None).await;
    for sub in [&mut both, &mut pattern] {
        let got = sub.take(3).await;
        assert_eq!(data(&got), ["two\nlines", "three", "four"]);
        assert_eq!(
            ids(&got),
            ["urn:uuid:2", &hub_id, "https://e.com/books/1#4"]
        );
    }
    // From a hub id between publisher ids, and from the last publisher id.
    let mut mixed = hub.subscribe("/subscribe?topic=p/*", Some(&hub_id)).await;
    assert_eq!(ids(&mixed.take(1).await), ["https://e.com/books/1#4"]);
    let mut last = hub
        .subscribe("/topics/p/b", Some("https://e.com/books/1#4"))
        .await;
    // Then live, each once.
    let (status, _) = post_one(&hub, "p/b", "id=rev-5", "five").await;
    assert_eq!(status, 200);
    for sub in [&mut both, &mut pattern, &mut mixed, &mut last] {
        let got = sub.take(1).await;
        assert_eq!((data(&got), ids(&got)), (vec!["five"], vec!["rev-5"]));
        sub.nothing_for(Duration::from_millis(100)).await;
    }
    a.nothing_for(Duration::from_millis(50)).await;
}

/// Mercure: the `id` field is the answer (text) and the SSE id; `lastEventID` with several
/// topics and selectors resumes after it, and the `Last-Event-ID` response header names it.
#[tokio::test]
async fn mercure_ids_resume_with_several_topics_and_selectors() {
    let hub = TestHub::start(&["--store", "memory"]).await;
    let publish = |topic: &'static str, data: &'static str, id: &'static str| {
        let hub = &hub;
        async move {
            let (status, body) =
                post_mercure(hub, &[("topic", topic), ("data", data), ("id", id)]).await;
            assert_eq!((status, body.as_str()), (200, id));
        }
    };
    publish("https://e.com/books/1", "a\nb", "urn:uuid:m1").await;
    publish("https://e.com/books/2", "c", "urn:uuid:m2").await;
    publish("https://e.com/authors/1", "d", "urn:uuid:m3").await;
    let (status, hub_id) =
        post_mercure(&hub, &[("topic", "https://e.com/books/3"), ("data", "e")]).await;
    assert_eq!(status, 200);
    let query = [
        ("topic", "https://e.com/books/{id}"),
        ("topic", "https://e.com/authors/1"),
        ("lastEventID", "urn:uuid:m1"),
    ];
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in query {
        form.append_pair(k, v);
    }
    let mut sse = hub
        .subscribe(&format!("/.well-known/mercure?{}", form.finish()), None)
        .await;
    assert_eq!(sse.headers["last-event-id"], "urn:uuid:m1");
    let got = sse.take(3).await;
    assert_eq!(data(&got), ["c", "d", "e"]);
    assert_eq!(ids(&got), ["urn:uuid:m2", "urn:uuid:m3", hub_id.as_str()]);
    // The header too (what a reconnecting EventSource sends), with multi-line data.
    let mut again = hub
        .subscribe(
            "/.well-known/mercure?topic=https%3A%2F%2Fe.com%2Fbooks%2F%7Bid%7D",
            Some("urn:uuid:m2"),
        )
        .await;
    assert_eq!(again.headers["last-event-id"], "urn:uuid:m2");
    assert_eq!(ids(&again.take(1).await), [hub_id.as_str()]);
    let mut from_first = hub
        .subscribe(
            "/.well-known/mercure?topic=https%3A%2F%2Fe.com%2Fbooks%2F1&lastEventID=earliest",
            None,
        )
        .await;
    let got = from_first.take(1).await;
    assert_eq!((data(&got), ids(&got)), (vec!["a\nb"], vec!["urn:uuid:m1"]));
}

/// An id already used by a retained event is 409 `id_conflict` on every route, a batch with
/// one taken or repeated id is refused whole, and of publishes racing with one new id exactly
/// one is stored.
#[tokio::test]
async fn a_taken_id_is_409_and_a_race_has_one_winner() {
    let hub = TestHub::start(&["--store", "memory"]).await;
    assert_eq!(post_one(&hub, "c/a", "id=taken", "1").await.0, 200);
    let (status, body) = post_one(&hub, "c/b", "id=taken", "2").await;
    assert_eq!((status, body["error"].as_str()), (409, Some("id_conflict")));
    let (status, _) = post_mercure(&hub, &[("topic", "c/a"), ("id", "taken")]).await;
    assert_eq!(status, 409);
    for items in [
        json!([{"topic": "c/a", "data": "x", "id": "fresh"}, {"topic": "c/a", "data": "y", "id": "taken"}]),
        json!([{"topic": "c/a", "data": "x", "id": "twice"}, {"topic": "c/b", "data": "y", "id": "twice"}]),
    ] {
        let (status, body) = post_batch(&hub, items).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (409, Some("id_conflict")),
            "{body}"
        );
    }
    // Nothing of the refused batches was stored: "fresh" is still free.
    assert_eq!(post_one(&hub, "c/a", "id=fresh", "3").await.0, 200);
    let mut all = hub.subscribe("/topics/c/a", Some("earliest")).await;
    assert_eq!(data(&all.take(2).await), ["1", "3"]);
    all.nothing_for(Duration::from_millis(100)).await;

    // A race: 16 publishes of one new id at once (group-committed together, most of them).
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let url = format!("{}/topics/c/race?id=racer", hub.url);
            tokio::spawn(async move {
                let response = client().post(url).body(i.to_string()).send().await.unwrap();
                response.status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses[0], 200);
    assert!(statuses[1..].iter().all(|&s| s == 409), "{statuses:?}");
    let mut race = hub.subscribe("/topics/c/race", Some("earliest")).await;
    assert_eq!(ids(&race.take(1).await), ["racer"]);
    race.nothing_for(Duration::from_millis(100)).await;
    let conflicts = hub
        .metric("ssehub_rejected_requests_total{reason=\"id_conflict\"}")
        .await;
    assert_eq!(conflicts, 2.0 + 2.0 + 15.0);
    assert_eq!(hub.metric("ssehub_publisher_id_events_total").await, 3.0);
}

/// Ids that are empty, start with `#`, hold CR, LF or NUL, are over `limits.max_id_bytes`, or
/// could be read as a hub id (its shape, `earliest`) are 400 `invalid_id`, on every route; the
/// limit is a config key.
#[tokio::test]
async fn malformed_ids_are_400() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ssehub.toml");
    std::fs::write(&config, "[limits]\nmax_id_bytes = 16\n").unwrap();
    let hub = TestHub::start(&["--store", "memory", "--config", config.to_str().unwrap()]).await;
    let bad = [
        "",
        "#fragment",
        "a\rb",
        "a\nb",
        "a\0b",
        "x234567890123456!",
        "earliest",
        "0badcafe-12",
    ];
    for id in bad {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("id", id)
            .finish();
        let (status, body) = post_one(&hub, "v/a", &query, "x").await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_id")),
            "{id:?}"
        );
        let (status, body) =
            post_batch(&hub, json!([{"topic": "v/a", "data": "x", "id": id}])).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_id")),
            "{id:?}"
        );
        let (status, body) = post_mercure(&hub, &[("topic", "v/a"), ("id", id)]).await;
        assert_eq!(status, 400, "{id:?}");
        assert!(body.contains("invalid_id"), "{body}");
    }
    // At the limit is fine; nothing refused was stored.
    assert_eq!(
        post_one(&hub, "v/a", "id=x234567890123456", "ok").await.0,
        200
    );
    let mut all = hub.subscribe("/topics/v/a", Some("earliest")).await;
    assert_eq!(ids(&all.take(1).await), ["x234567890123456"]);
    all.nothing_for(Duration::from_millis(100)).await;
    let refused = hub
        .metric("ssehub_rejected_requests_total{reason=\"invalid_id\"}")
        .await;
    assert_eq!(refused, 3.0 * bad.len() as f64);
}

/// Retention takes an event's id with it: a resume from it gets the gap notice (`unknown`),
/// then the retained history, and the id may be used again.
#[tokio::test]
async fn an_expired_id_gets_the_gap_notice_and_is_free_again() {
    let hub = TestHub::start(&["--store", "memory", "--history-max-events", "3"]).await;
    for i in 0..6 {
        let (status, _) = post_one(&hub, "e/a", &format!("id=k{i}"), &i.to_string()).await;
        assert_eq!(status, 200);
    }
    let mut sse = hub.subscribe("/topics/e/a", Some("k0")).await;
    let got = sse.take(4).await;
    assert_eq!(got[0].event_type, "ssehub-gap");
    let gap: Value = serde_json::from_str(&got[0].data).unwrap();
    assert_eq!(
        (gap["reason"].as_str(), gap["requested"].as_str()),
        (Some("unknown"), Some("k0"))
    );
    assert_eq!(ids(&got[1..]), ["k3", "k4", "k5"]);
    // Still retained: no notice.
    let mut kept = hub.subscribe("/topics/e/a", Some("k4")).await;
    assert_eq!(ids(&kept.take(1).await), ["k5"]);
    assert_eq!(post_one(&hub, "e/a", "id=k0", "again").await.0, 200);
    assert_eq!(post_one(&hub, "e/a", "id=k5", "taken").await.0, 409);
}

/// The disk store keeps the index across a restart: the id still resumes, and is still taken.
#[tokio::test]
async fn ids_survive_a_restart_of_the_disk_store() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let hub = TestHub::start_in(dir.clone(), "127.0.0.1:0", &[]).await;
    assert_eq!(post_one(&hub, "d/a", "id=durable-1", "one").await.0, 200);
    let two = hub.publish("d/a", "two").await;
    hub.terminate();
    let mut hub = hub;
    hub.wait(Duration::from_secs(30)).await;
    let hub = TestHub::start_in(dir, "127.0.0.1:0", &[]).await;
    let mut sse = hub.subscribe("/topics/d/a", Some("durable-1")).await;
    assert_eq!(ids(&sse.take(1).await), [two.as_str()]);
    assert_eq!(post_one(&hub, "d/a", "id=durable-1", "again").await.0, 409);
    let mut all = hub.subscribe("/topics/d/a", Some("earliest")).await;
    assert_eq!(ids(&all.take(2).await), ["durable-1", two.as_str()]);
}

/// Two nodes of a cluster: an id published on A resumes on B (one topic and several), the
/// same id is refused on B (the Redis append script checks it), and of two publishes of one
/// new id racing on both nodes one is stored.
#[tokio::test]
async fn a_cluster_shares_the_index() {
    let Some(redis) = ssehub_cluster::testing::RedisServer::start() else {
        return;
    };
    let nodes = crate::cluster::nodes(&redis, "pubids", 2, &[]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    assert_eq!(post_one(a, "k/a", "id=from-a", "one").await.0, 200);
    let two = b.publish("k/b", "two").await;
    let (status, _) = post_one(a, "k/a", "id=after", "three").await;
    assert_eq!(status, 200);
    let mut one = b.subscribe("/topics/k/a", Some("from-a")).await;
    assert_eq!(ids(&one.take(1).await), ["after"]);
    let mut both = b.subscribe("/subscribe?topic=k/*", Some("from-a")).await;
    assert_eq!(ids(&both.take(2).await), [two.as_str(), "after"]);
    let (status, body) = post_one(b, "k/b", "id=from-a", "again").await;
    assert_eq!((status, body["error"].as_str()), (409, Some("id_conflict")));

    let race = |node: &TestHub| {
        let url = format!("{}/topics/k/race?id=racer", node.url);
        tokio::spawn(async move { client().post(url).body("x").send().await.unwrap().status() })
    };
    let (x, y) = (race(a), race(b));
    let mut statuses = [x.await.unwrap().as_u16(), y.await.unwrap().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409]);
    let mut racers = a.subscribe("/topics/k/race", Some("earliest")).await;
    assert_eq!(ids(&racers.take(1).await), ["racer"]);
    racers.nothing_for(Duration::from_millis(100)).await;
}
