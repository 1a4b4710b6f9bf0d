//! Hostile clients against the costs the hub takes on for them (issue 10, rows H1, H3, H4 and
//! M1): each test attacks the real binary with default settings, in small numbers that still
//! show the problem, and asserts on outcomes — status codes, the hub's resident memory read
//! from `/proc/PID/status`, a publish that still succeeds, history that is still there —
//! never on timings.

use std::time::Duration;

use crate::util::{TestHub, client};

/// The hub's resident memory, in bytes (`VmRSS` of `/proc/PID/status`).
fn rss(hub: &TestHub) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", hub.pid())).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kib * 1024
}

/// Publishes `body` to `topic`; the status and the body of the answer.
async fn post(hub: &TestHub, topic: &str, body: String) -> (u16, String) {
    let response = client()
        .post(format!("{}/topics/{topic}", hub.url))
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// M1: a body of newlines within the body limit encodes to seven times its size. It is
/// refused with 413 (the limit applies to the encoded event), so a live subscriber is not cut
/// as a slow consumer; an event of the largest accepted size reaches it whole.
#[tokio::test]
async fn m1_a_body_of_newlines_is_refused_by_its_encoded_size() {
    let hub = TestHub::start(&[]).await;
    let mut live = hub.subscribe("/topics/costs/m1", None).await;
    let (status, body) = post(&hub, "costs/m1", "\n".repeat(1 << 20)).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("body_too_large"), "{body}");
    // The largest event that is accepted: its encoding fits the (default) subscriber buffer.
    let big = "x".repeat((1 << 20) - 64);
    let (status, body) = post(&hub, "costs/m1", big.clone()).await;
    assert_eq!(status, 200, "{body}");
    let events = live.take(1).await;
    assert_eq!(events[0].data.len(), big.len());
    hub.publish("costs/m1", "after").await;
    assert_eq!(live.take(1).await[0].data, "after");
    assert_eq!(
        hub.metric("ssehub_slow_consumer_disconnects_total").await,
        0.0
    );
    let rejected = hub
        .metric("ssehub_rejected_requests_total{reason=\"body_too_large\"}")
        .await;
    assert_eq!(rejected, 1.0);
}

/// M1 through `/publish`: a JSON body under the body limit whose events are each under it
/// too, but whose `"\n"` escapes (2 bytes each) encode to 7 bytes of SSE: 450 events of 1,100
/// newlines are a 1 MB body and 3.5 MB of SSE, fanned out to a live subscriber all at once.
/// The whole request is refused with 413 (the limit applies to what it encodes to in all), so
/// the subscriber, which reads, is not cut as a slow consumer; and nothing is stored.
#[tokio::test]
async fn m1_a_batch_of_newline_events_is_refused_by_its_encoded_size() {
    let hub = TestHub::start(&[]).await;
    let mut live = hub.subscribe("/topics/costs/m1b", None).await;
    let events: Vec<serde_json::Value> = (0..450)
        .map(|_| serde_json::json!({"topic": "costs/m1b", "data": "\n".repeat(1100)}))
        .collect();
    let body = serde_json::to_string(&events).unwrap();
    assert!(body.len() < 1 << 20, "the body itself is within the limit");
    let response = client()
        .post(format!("{}/publish", hub.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let start = &text[..text.len().min(200)];
    assert_eq!(status, 413, "{start}");
    assert!(text.contains("body_too_large"), "{start}");
    hub.publish("costs/m1b", "after").await;
    let got = live.take(1).await;
    assert_eq!(
        got[0].data, "after",
        "nothing of the refused batch was sent"
    );
    assert_eq!(
        hub.metric("ssehub_slow_consumer_disconnects_total").await,
        0.0
    );
    assert_eq!(hub.metric("ssehub_events_published_total").await, 1.0);
}

/// H4: sockets that ask for all history (`Last-Event-ID: earliest`) and never read. A replay
/// page is read only when the connection has written the previous one, and holds at most
/// `limits.replay_page_bytes` (256 KiB) of events, so ten such sockets over 24 MB of history
/// cost the hub a few MB, not a page of 256 large events each; the history and publishing
/// are untouched.
#[tokio::test]
async fn h4_stalled_replays_hold_a_bounded_page_each() {
    let hub = TestHub::start(&[]).await;
    let chunk = "y".repeat(120_000);
    for batch in 0..25 {
        let events: Vec<serde_json::Value> = (0..8)
            .map(|i| serde_json::json!({"topic": "costs/h4", "data": format!("{batch}-{i} {chunk}")}))
            .collect();
        let response = client()
            .post(format!("{}/publish", hub.url))
            .json(&events)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let before = rss(&hub);
    let addr = hub.url.strip_prefix("http://").unwrap().to_string();
    let mut stalled = Vec::new();
    for _ in 0..10 {
        let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let request =
            "GET /topics/costs/h4 HTTP/1.1\r\nHost: localhost\r\nLast-Event-ID: earliest\r\n\r\n";
        tokio::io::AsyncWriteExt::write_all(&mut socket, request.as_bytes())
            .await
            .unwrap();
        stalled.push(socket);
    }
    // Every socket has had its replay start (a page each, at least).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while hub.metric("ssehub_replayed_events_total").await < 10.0 {
        assert!(tokio::time::Instant::now() < deadline, "the replays start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let growth = rss(&hub).saturating_sub(before);
    assert!(
        growth < 40 << 20,
        "ten stalled replays grew the hub by {} MB",
        growth >> 20
    );
    // The hub still publishes, and history is all there for a reader.
    let id = hub.publish("costs/h4", "after").await;
    let mut reader = hub.subscribe("/topics/costs/h4", Some("earliest")).await;
    let events = reader.take(201).await;
    assert_eq!(events[0].data.split(' ').next(), Some("0-0"));
    assert_eq!(events[200].last_event_id, id);
    drop(stalled);
}

const PUBLISHER_KEY: &str = "hostile-costs-publisher-key-0123456789abcdef";
const SUBSCRIBER_KEY: &str = "hostile-costs-subscriber-key-0123456789abcdef";
/// Every Mercure subscription event (draft-07's selector).
const SUBSCRIPTIONS: &str = "/.well-known/mercure/subscriptions{/topic}{/subscriber}";

/// An HS256 token with Mercure claims.
fn token(key: &str, mercure: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({ "mercure": mercure }),
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

/// `GET /.well-known/mercure?topic=…` (several `topic`s), with an optional token and
/// `Last-Event-ID`.
async fn mercure_get(
    hub: &TestHub,
    selectors: &[String],
    bearer: Option<&str>,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for s in selectors {
        query.append_pair("topic", s);
    }
    let mut request = client().get(format!(
        "{}/.well-known/mercure?{}",
        hub.url,
        query.finish()
    ));
    if let Some(t) = bearer {
        request = request.bearer_auth(t);
    }
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    request.send().await.unwrap()
}

/// H3: with subscriber keys set, anonymous clients connect and disconnect Mercure streams of
/// 32 selectors in a loop. The subscription events are delivered live (a watcher gets every
/// one) but never stored: the store holds the one real event it held before, and a replay
/// from the start finds nothing else.
#[tokio::test]
async fn h3_connect_cycles_store_no_subscription_events() {
    let hub = TestHub::start(&[
        "--publisher-key",
        PUBLISHER_KEY,
        "--subscriber-key",
        SUBSCRIBER_KEY,
    ])
    .await;
    let publish = client()
        .post(format!("{}/.well-known/mercure", hub.url))
        .bearer_auth(token(PUBLISHER_KEY, serde_json::json!({"publish": ["*"]})))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("topic=real%2Fhistory&data=kept")
        .send()
        .await
        .unwrap();
    assert_eq!(publish.status(), 200);
    let watcher_token = token(
        SUBSCRIBER_KEY,
        serde_json::json!({"subscribe": [SUBSCRIPTIONS]}),
    );
    let response = mercure_get(
        &hub,
        &[SUBSCRIPTIONS.to_string()],
        Some(&watcher_token),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    let mut watcher = crate::util::Sse::new(response);
    assert_eq!(
        watcher.take(1).await.len(),
        1,
        "the watcher's own announcement"
    );

    const CYCLES: usize = 40;
    let selectors: Vec<String> = (0..32)
        .map(|i| format!("https://example.com/h3/{i}"))
        .collect();
    let mut announced = 0;
    for _ in 0..CYCLES {
        let stream = mercure_get(&hub, &selectors, None, None).await;
        assert_eq!(stream.status(), 200);
        drop(stream);
        // Read as they come, so the watcher keeps up.
        announced += watcher.take(32).await.len();
    }
    while announced < CYCLES * 64 {
        announced += watcher.take(1).await.len();
    }
    assert_eq!(announced, CYCLES * 64, "every start and end, live");
    assert_eq!(hub.metric("ssehub_events_published_total").await, 1.0);
    assert!(hub.metric("ssehub_live_only_events_total").await >= (CYCLES * 64) as f64);

    // History holds the real event and nothing else.
    let everything = token(SUBSCRIBER_KEY, serde_json::json!({"subscribe": ["*"]}));
    let replay = mercure_get(
        &hub,
        &["*".to_string()],
        Some(&everything),
        Some("earliest"),
    )
    .await;
    assert_eq!(replay.status(), 200);
    let mut replay = crate::util::Sse::new(replay);
    let first = replay.take(1).await;
    assert_eq!(first[0].data, "kept");
    let rest = replay.take(1).await;
    assert!(
        rest[0].last_event_id == first[0].last_event_id,
        "only the replayer's own announcement follows (no id): {rest:?}"
    );
    replay.nothing_for(Duration::from_millis(300)).await;
}

/// H1: Mercure streams whose selectors are huge URI templates. One over the limits on a
/// template (here 560 expressions) is refused with 400; the largest allowed ones are compiled
/// once per distinct text, shared by every stream that uses them, cost the hub little
/// memory, do not stop publishing, and are freed when the streams leave.
#[tokio::test]
async fn h1_huge_uri_templates_are_refused_shared_and_freed() {
    let hub = TestHub::start(&[]).await;
    // As many as fit in a request head (each `{a}` is 7 bytes percent-encoded).
    let huge: Vec<String> = (0..2)
        .map(|i| format!("{i}{}", "{a}".repeat(560)))
        .collect();
    let refused = mercure_get(&hub, &huge, None, None).await;
    assert_eq!(refused.status(), 400);
    let body = refused.text().await.unwrap();
    assert!(body.contains("selector_too_complex"), "{body}");

    let before = rss(&hub);
    // The largest templates allowed (16 variables of reserved characters each: the costliest
    // to match), nine per stream: the same nine for twenty streams, then nine new ones for
    // each of twenty more.
    let largest = |tag: String| -> Vec<String> {
        (0..9)
            .map(|i| format!("https://e.com/{tag}/{i}/{}", "{+a}".repeat(16)))
            .collect()
    };
    let shared = largest("shared".to_string());
    let mut streams = Vec::new();
    for _ in 0..20 {
        let stream = mercure_get(&hub, &shared, None, None).await;
        assert_eq!(stream.status(), 200);
        streams.push(stream);
    }
    assert_eq!(
        hub.metric("ssehub_uri_templates").await,
        9.0,
        "compiled once each"
    );
    for n in 0..20 {
        let stream = mercure_get(&hub, &largest(format!("own{n}")), None, None).await;
        assert_eq!(stream.status(), 200);
        streams.push(stream);
    }
    assert_eq!(hub.metric("ssehub_uri_templates").await, 189.0);
    let growth = rss(&hub).saturating_sub(before);
    assert!(growth < 40 << 20, "the templates cost {} MB", growth >> 20);

    // Publishing goes on, matched against all of them.
    let mut reader = hub
        .subscribe(
            "/.well-known/mercure?topic=https%3A%2F%2Fe.com%2Fshared%2F1%2F%7B%2Ba%7D",
            None,
        )
        .await;
    let response = client()
        .post(format!("{}/.well-known/mercure", hub.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("topic=https%3A%2F%2Fe.com%2Fshared%2F1%2Fx%2Fy&data=through")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(reader.take(1).await[0].data, "through");
    drop(reader);

    // They leave: every template is freed.
    drop(streams);
    hub.metric_reaches("ssehub_uri_templates", 0.0).await;
    assert_eq!(hub.metric("ssehub_uri_template_bytes").await, 0.0);
}

/// H1, the hub's budget: past `limits.template_budget_bytes` of compiled templates, a
/// stream with a new template is refused with 503 (with `Retry-After`), while streams with
/// templates already compiled still open; room comes back when streams leave.
#[tokio::test]
async fn h1_the_template_budget_refuses_new_templates_with_503() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ssehub.toml");
    std::fs::write(&config, "[limits]\ntemplate_budget_bytes = 200000\n").unwrap();
    let hub = TestHub::start(&["--config", config.to_str().unwrap()]).await;
    let template = |n: usize| vec![format!("https://e.com/{n}/{}", "{+a}".repeat(16))];
    let mut streams = Vec::new();
    let mut refused = None;
    for n in 0..100 {
        let stream = mercure_get(&hub, &template(n), None, None).await;
        if stream.status() == 503 {
            refused = Some(stream);
            break;
        }
        assert_eq!(stream.status(), 200);
        streams.push(stream);
    }
    let refused = refused.expect("the budget runs out");
    assert!(refused.headers().contains_key("retry-after"));
    let body = refused.text().await.unwrap();
    assert!(body.contains("over_selector_budget"), "{body}");
    let held = streams.len();
    assert!((2..20).contains(&held), "{held} templates in 200 kB");
    assert!(hub.metric("ssehub_uri_template_bytes").await <= 200_000.0);
    // A template already compiled costs nothing more.
    let again = mercure_get(&hub, &template(0), None, None).await;
    assert_eq!(again.status(), 200);
    let rejected = hub
        .metric("ssehub_rejected_requests_total{reason=\"over_selector_budget\"}")
        .await;
    assert_eq!(rejected, 1.0);
    streams.truncate(held - 1);
    hub.metric_reaches("ssehub_uri_templates", (held - 1) as f64)
        .await;
    let room = mercure_get(&hub, &template(1000), None, None).await;
    assert_eq!(room.status(), 200);
}
