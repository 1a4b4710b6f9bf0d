//! Relays (`--relay`, `[[relay]]`): resumable POST streams through the real binary, in front of
//! a real upstream, [`Upstream`], a small HTTP server started by each test that streams tokens
//! slowly (and misbehaves on request).

use std::time::Duration;

use ssehub_wire::MessageEvent;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::util::{Sse, TestHub, client, data};

/// Every wait in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(20);

/// An upstream on 127.0.0.1:0; each connection is one request, answered by its path:
///
/// - `/tokens?n=N&ms=D`: N events (`event: token`, data `t0`…), D ms apart, then the end.
/// - `/cut`: two events in a chunked body, then the connection drops mid-body.
/// - `/stall`: one event, then silence (until the test ends).
/// - `/nohead`: never answers.
/// - `/forever`: an event every 100 ms, up to 10 minutes.
/// - `/big`: 100 events of 1000 bytes of data.
/// - `/echo`: a non-SSE answer (201, `x-upstream: yes`) whose JSON body tells the request
///   it got: method, path and query, body, and its headers.
struct Upstream {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((socket, _)) = listener.accept().await {
                conns.spawn(serve(socket));
            }
        });
        Upstream { url, task }
    }
}

/// Reads one request: its head lines and its body (by `Content-Length`).
async fn read_request(socket: &mut TcpStream) -> Option<(Vec<String>, Vec<u8>)> {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let lines: Vec<String> = head.split("\r\n").map(str::to_string).collect();
    let length: usize = lines
        .iter()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((lines, body))
}

const SSE_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";

async fn serve(mut socket: TcpStream) {
    let Some((lines, body)) = read_request(&mut socket).await else {
        return;
    };
    let mut words = lines[0].split(' ');
    let method = words.next().unwrap_or("").to_string();
    let target = words.next().unwrap_or("").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let param = |name: &str| -> u64 {
        form_pairs(query)
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    };
    match path {
        "/tokens" => {
            let _ = socket.write_all(SSE_HEAD).await;
            for i in 0..param("n") {
                let event = format!("id: upstream-{i}\nevent: token\ndata: t{i}\n\n");
                if socket.write_all(event.as_bytes()).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(param("ms"))).await;
            }
        }
        "/cut" => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
            let _ = socket.write_all(head.as_bytes()).await;
            for i in 0..2 {
                let event = format!("data: t{i}\n\n");
                let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                let _ = socket.write_all(chunk.as_bytes()).await;
            }
            // Half a chunk, then the connection drops.
            let _ = socket.write_all(b"40\r\ndata: t2").await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        "/stall" => {
            let _ = socket.write_all(SSE_HEAD).await;
            let _ = socket.write_all(b"data: t0\n\n").await;
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
        "/nohead" => tokio::time::sleep(Duration::from_secs(600)).await,
        "/forever" => {
            let _ = socket.write_all(SSE_HEAD).await;
            for i in 0..6000 {
                if socket
                    .write_all(format!("data: t{i}\n\n").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        "/big" => {
            let _ = socket.write_all(SSE_HEAD).await;
            let data = "x".repeat(1000);
            for _ in 0..100 {
                if socket
                    .write_all(format!("data: {data}\n\n").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        _ => {
            let headers: Vec<(String, String)> = lines[1..]
                .iter()
                .filter_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
                })
                .collect();
            let json = serde_json::json!({
                "method": method,
                "target": target,
                "body": String::from_utf8_lossy(&body),
                "headers": headers,
            })
            .to_string();
            let answer = format!(
                "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nx-upstream: yes\r\nConnection: close, x-hop\r\nx-hop: 1\r\n\r\n{json}",
                json.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    }
    let _ = socket.shutdown().await;
}

fn form_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter_map(|p| {
        let (k, v) = p.split_once('=')?;
        Some((k.to_string(), v.to_string()))
    })
}

/// POSTs `body` to the hub at `path`; the answer's stream and its `SSEHub-Topic`.
async fn post(hub: &TestHub, path: &str, body: &str) -> (Sse, String) {
    let response = client()
        .post(format!("{}{path}", hub.url))
        .header("authorization", "Bearer caller-token")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let topic = response.headers()["ssehub-topic"]
        .to_str()
        .unwrap()
        .to_string();
    (Sse::new(response), topic)
}

/// A listener whose accept queue is full (backlog 1, never accepting, filled by the returned
/// connections): the kernel drops further SYNs, so a new connection hangs in connect.
async fn full_listener() -> (tokio::net::TcpListener, Vec<TcpStream>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    // The queue holds backlog + 1 connections; each connect past it would hang, so each is
    // bounded.
    for _ in 0..3 {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await
        {
            queued.push(stream);
        }
    }
    (listener, queued)
}

/// POSTs `body` to the hub at `path` and checks the refusal's status and JSON reason.
async fn refused(hub: &TestHub, path: &str, body: &str, status: u16, reason: &str) {
    let response = client()
        .post(format!("{}{path}", hub.url))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), status, "{path}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], reason, "{path}");
}

/// The `ssehub-end` event's JSON data.
fn end_of(events: &[MessageEvent]) -> serde_json::Value {
    let last = events.last().expect("the answer has events");
    assert_eq!(last.event_type, "ssehub-end", "{events:?}");
    serde_json::from_str(&last.data).unwrap()
}

fn tokens(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("t{i}")).collect()
}

fn ended_metric(reason: &str) -> String {
    format!("ssehub_relay_ended_total{{relay=\"/ai\",reason=\"{reason}\"}}")
}

async fn relay_hub(upstream: &Upstream, extra: &[&str]) -> TestHub {
    let relay = format!("/ai={}", upstream.url);
    let mut args = vec!["--store", "memory", "--relay", relay.as_str()];
    args.extend_from_slice(extra);
    TestHub::start(&args).await
}

/// A hub whose config file has the relay `/ai` to `upstream`, with `settings` after it (more
/// of its keys, then other tables).
async fn hub_with_config(upstream: &Upstream, settings: &str, args: &[&str]) -> TestHub {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hub.toml");
    let relay = format!(
        "[[relay]]\nprefix = \"/ai\"\nupstream = \"{}\"\n{settings}",
        upstream.url
    );
    std::fs::write(&config, relay).unwrap();
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    // The hub has read the file once it listens.
    TestHub::start(&all).await
}

#[tokio::test]
async fn a_caller_cut_mid_answer_resumes_and_gets_every_token_once_in_order() {
    let upstream = Upstream::start().await;
    let hub = relay_hub(&upstream, &[]).await;
    let (mut sse, topic) = post(&hub, "/ai/tokens?n=30&ms=30", "prompt").await;
    assert!(topic.starts_with("relay/"), "{topic}");
    // 128 random bits, in hex.
    assert_eq!(topic.len(), "relay/".len() + 32, "{topic}");
    let first = sse.take(5).await;
    // The connection is cut mid-answer (the upstream is still producing).
    drop(sse);
    let last_id = first.last().unwrap().last_event_id.clone();
    let mut resumed = hub
        .subscribe(&format!("/topics/{topic}"), Some(&last_id))
        .await;
    let rest = tokio::time::timeout(LIMIT, resumed.until_end(LIMIT))
        .await
        .expect("the resumed stream ends after ssehub-end");
    assert_eq!(end_of(&rest), serde_json::json!({"reason": "done"}));
    let mut all: Vec<MessageEvent> = first;
    all.extend(rest[..rest.len() - 1].iter().cloned());
    assert_eq!(data(&all), tokens(30), "every token once, in order");
    assert!(all.iter().all(|e| e.event_type == "token"));
    // Hub ids, increasing; the upstream's own ids are not kept.
    let seqs: Vec<u64> = all
        .iter()
        .map(|e| crate::util::seq(&e.last_event_id))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(hub.metric(&ended_metric("done")).await, 1.0);
}

#[tokio::test]
async fn a_caller_that_never_comes_back_still_leaves_the_whole_answer_stored() {
    let upstream = Upstream::start().await;
    let hub = relay_hub(&upstream, &[]).await;
    let (sse, topic) = post(&hub, "/ai/tokens?n=10&ms=20", "prompt").await;
    drop(sse); // gone before the first token
    hub.metric_reaches(&ended_metric("done"), 1.0).await;
    hub.metric_reaches("ssehub_relay_streams{relay=\"/ai\"}", 0.0)
        .await;
    let mut later = hub
        .subscribe(&format!("/topics/{topic}?lastEventId=earliest"), None)
        .await;
    let events = later.until_end(LIMIT).await;
    assert_eq!(end_of(&events), serde_json::json!({"reason": "done"}));
    assert_eq!(data(&events[..events.len() - 1]), tokens(10));
}

#[tokio::test]
async fn upstream_failures_and_every_limit_end_or_refuse_with_their_reason() {
    let upstream = Upstream::start().await;
    let (full, _queued) = full_listener().await;
    let settings = format!(
        "idle_timeout_secs = 1\nmax_duration_secs = 4\nmax_answer_bytes = 20000\nmax_streams = 2\n\
         max_request_bytes = 1000\n[[relay]]\nprefix = \"/down\"\nupstream = \"http://127.0.0.1:1\"\n\
         [[relay]]\nprefix = \"/full\"\nupstream = \"http://{}\"\nconnect_timeout_ms = 300\n",
        full.local_addr().unwrap()
    );
    let hub = hub_with_config(&upstream, &settings, &["--store", "memory"]).await;
    let end = |path: &'static str| {
        let hub = &hub;
        async move {
            let (mut sse, _) = post(hub, path, "").await;
            let events = sse.until_end(LIMIT).await;
            (end_of(&events), events.len() - 1)
        }
    };

    let (cut, n) = end("/ai/cut").await;
    assert_eq!(cut["reason"], "upstream_error", "{cut}");
    assert_eq!(n, 2, "the events before the cut are kept");
    let (stall, _) = end("/ai/stall").await;
    assert_eq!(stall["reason"], "timeout", "{stall}");
    assert!(stall["message"].as_str().unwrap().contains("idle_timeout"));
    let (big, _) = end("/ai/big").await;
    assert_eq!(big["reason"], "too_large", "{big}");

    // max_streams: two answers in flight, a third is refused.
    let (mut one, _) = post(&hub, "/ai/forever", "").await;
    let (mut two, _) = post(&hub, "/ai/forever", "").await;
    one.take(1).await;
    two.take(1).await;
    refused(&hub, "/ai/forever", "", 503, "over_relay_limit").await;
    // max_duration ends both.
    for sse in [&mut one, &mut two] {
        let events = sse.until_end(LIMIT).await;
        assert_eq!(end_of(&events)["reason"], "max_duration");
    }

    // A body over max_request_bytes is refused before anything goes upstream.
    let large = "x".repeat(2000);
    refused(&hub, "/ai/echo", &large, 413, "body_too_large").await;
    // An upstream that never answers: 504; one that refuses connections, or does not take
    // them within connect_timeout_ms: 502.
    refused(&hub, "/ai/nohead", "", 504, "gateway_timeout").await;
    refused(&hub, "/down/x", "", 502, "bad_gateway").await;
    refused(&hub, "/full/x", "", 502, "bad_gateway").await;

    for (reason, want) in [
        ("upstream_error", 1.0),
        ("timeout", 1.0),
        ("too_large", 1.0),
        ("max_duration", 2.0),
    ] {
        assert_eq!(hub.metric(&ended_metric(reason)).await, want, "{reason}");
    }
    for (reason, want) in [
        ("over_relay_limit", 1.0),
        ("body_too_large", 1.0),
        ("gateway_timeout", 1.0),
        ("bad_gateway", 2.0),
    ] {
        let name = format!("ssehub_rejected_requests_total{{reason=\"{reason}\"}}");
        assert_eq!(hub.metric(&name).await, want, "{reason}");
    }
}

#[tokio::test]
async fn a_non_sse_answer_passes_through_and_the_request_is_forwarded_without_hop_by_hop_headers() {
    let upstream = Upstream::start().await;
    let hub = relay_hub(&upstream, &[]).await;
    let response = client()
        .put(format!("{}/ai/echo/x?q=1", hub.url))
        .header("authorization", "Bearer caller-token")
        .header("connection", "keep-alive, x-private")
        .header("x-private", "hop")
        .header("proxy-authorization", "Basic secret")
        .header("x-app", "kept")
        .body("the body")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-upstream"], "yes");
    assert!(response.headers().get("x-hop").is_none());
    assert!(response.headers().get("ssehub-topic").is_none());
    let seen: serde_json::Value = response.json().await.unwrap();
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["target"], "/echo/x?q=1");
    assert_eq!(seen["body"], "the body");
    let header = |name: &str| {
        seen["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == name)
            .map(|h| h[1].as_str().unwrap().to_string())
    };
    assert_eq!(
        header("authorization").as_deref(),
        Some("Bearer caller-token")
    );
    assert_eq!(header("x-app").as_deref(), Some("kept"));
    assert_eq!(header("x-private"), None);
    assert_eq!(header("proxy-authorization"), None);
    let host = upstream.url.strip_prefix("http://").unwrap();
    assert_eq!(
        header("host").as_deref(),
        Some(host),
        "Host is the upstream's"
    );
}

#[tokio::test]
async fn pattern_subscriptions_never_see_relay_answers_and_nobody_may_publish_to_them() {
    let upstream = Upstream::start().await;
    let hub = relay_hub(&upstream, &[]).await;
    let patterns = [
        "/subscribe?topic=relay/*&topic=marker",
        "/topics/**",
        "/.well-known/mercure?topic=*",
        "/.well-known/mercure?topic=relay/{id}&topic=marker",
    ];
    let mut live = Vec::new();
    for path in patterns {
        live.push(hub.subscribe(path, None).await);
    }
    let (mut sse, topic) = post(&hub, "/ai/tokens?n=3&ms=0", "").await;
    assert_eq!(sse.until_end(LIMIT).await.len(), 4);
    hub.publish("marker", "after").await;
    for (path, sse) in patterns.iter().zip(&mut live) {
        let first = sse.take(1).await;
        assert_eq!(first[0].data, "after", "{path} saw a relay answer");
    }
    // Nor in replay.
    let mut replay = hub
        .subscribe(
            "/subscribe?topic=relay/*&topic=marker&lastEventId=earliest",
            None,
        )
        .await;
    assert_eq!(replay.take(1).await[0].data, "after");

    // Publishing into a relay topic, by any endpoint, is refused.
    let http = client();
    let one = http
        .post(format!("{}/topics/{topic}", hub.url))
        .body("forged")
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 403);
    let batch = http
        .post(format!("{}/publish", hub.url))
        .json(&serde_json::json!([{"topic": topic, "data": "forged"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(batch.status(), 403);
    let mercure = http
        .post(format!("{}/.well-known/mercure", hub.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("topic={topic}&data=forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(mercure.status(), 403);
    // The answer is as it was.
    let mut check = hub
        .subscribe(&format!("/topics/{topic}?lastEventId=earliest"), None)
        .await;
    let events = check.until_end(LIMIT).await;
    assert_eq!(data(&events[..3]), tokens(3));
}

#[tokio::test]
async fn a_relay_topic_expires_after_keep_secs_with_the_disk_store() {
    let upstream = Upstream::start().await;
    let hub = hub_with_config(&upstream, "max_duration_secs = 1\nkeep_secs = 3\n", &[]).await;
    let (mut sse, topic) = post(&hub, "/ai/tokens?n=3&ms=0", "").await;
    assert_eq!(sse.until_end(LIMIT).await.len(), 4);
    hub.publish("marker", "m").await;
    // Kept right after the end...
    let path = format!("/subscribe?topic={topic}&topic=marker&lastEventId=earliest");
    let first = hub.subscribe(&path, None).await.take(1).await;
    assert_eq!(first[0].data, "t0");
    // ...and gone once max_duration_secs + keep_secs have passed (the sweep runs every
    // second).
    let expired = tokio::time::timeout(LIMIT, async {
        loop {
            let first = hub.subscribe(&path, None).await.take(1).await;
            if first[0].data == "m" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(expired.is_ok(), "the relay topic expires");
}

#[tokio::test]
async fn sub_post_prints_a_relayed_answer_and_stops_at_its_end() {
    let upstream = Upstream::start().await;
    let hub = relay_hub(&upstream, &[]).await;
    let url = format!("{}/ai/tokens?n=5&ms=10", hub.url);
    let output = tokio::time::timeout(
        LIMIT,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_ssehub"))
            .args(["sub", "--post", "prompt", &url])
            .env_remove("SSEHUB_URL")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("sub --post ends at ssehub-end")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let want: Vec<String> = tokens(5).iter().map(|t| format!("[token] {t}")).collect();
    assert_eq!(stdout.lines().collect::<Vec<_>>(), want);
}

#[tokio::test]
async fn events_that_arrive_together_are_stored_in_batches_within_the_body_limit() {
    let upstream = Upstream::start().await;
    // 100 events of 1000 bytes, written at once: chunks of many events, each chunk over the
    // body limit (which a publish batch's encoded total must stay within).
    let hub = relay_hub(&upstream, &["--max-body-bytes", "4096"]).await;
    let (mut sse, _) = post(&hub, "/ai/big", "").await;
    let events = sse.until_end(LIMIT).await;
    assert_eq!(end_of(&events), serde_json::json!({"reason": "done"}));
    assert_eq!(events.len(), 101);
}

#[tokio::test]
async fn with_keys_the_resume_needs_the_capability_and_any_subscriber_token() {
    use crate::jwt::{Key, SUBSCRIBER_SECRET, mercure, sign};
    let upstream = Upstream::start().await;
    let hub = hub_with_config(
        &upstream,
        &format!("[auth]\nsubscriber_key = \"{SUBSCRIBER_SECRET}\"\nanonymous_subscribe = false\n"),
        &["--store", "memory"],
    )
    .await;
    // The relayed POST itself is the upstream's to authorize: the hub passes it on.
    let (mut sse, topic) = post(&hub, "/ai/tokens?n=3&ms=0", "").await;
    assert_eq!(sse.until_end(LIMIT).await.len(), 4);
    let url = format!("{}/topics/{topic}?lastEventId=earliest", hub.url);
    // Anonymous subscribing is off: the capability alone is not enough here.
    let anonymous = client().get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    // A valid subscriber token with no right to relay topics, plus the capability: the answer
    // (not the caller's original token: the hub cannot check the upstream's).
    let token = sign(
        &Key::hs(SUBSCRIBER_SECRET),
        None,
        mercure(&[], &["chat/*"], None),
    );
    let response = client().get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let events = Sse::new(response).until_end(LIMIT).await;
    assert_eq!(data(&events[..3]), tokens(3));
    assert_eq!(end_of(&events)["reason"], "done");
}
