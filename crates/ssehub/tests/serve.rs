//! `ssehub serve` end to end: the resume invariants (ARCHITECTURE.md), fan-out, slow
//! subscribers, heartbeats and shutdown, through real HTTP against the real binary. (Bad input,
//! the connection limit, `/healthz`, `/metrics` and CORS are tested in process:
//! `crates/ssehub-http/tests/routes.rs`.)

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::util::{TestHub, client, data, seq};

/// Invariant 1 (ARCHITECTURE.md): increasing ids, no duplicate, even with overlapping patterns and
/// concurrent publishers on several topics.
#[tokio::test]
async fn invariant_1_increasing_ids_without_duplicates() {
    let hub = TestHub::start(&[]).await;
    let mut sub = hub
        .subscribe("/subscribe?topic=inv1/**&topic=inv1/a&topic=inv1/*", None)
        .await;
    let mut publishers = Vec::new();
    for topic in ["inv1/a", "inv1/b", "inv1/c/d"] {
        let url = hub.url.clone();
        publishers.push(tokio::spawn(async move {
            for i in 0..50 {
                let r = client()
                    .post(format!("{url}/topics/{topic}"))
                    .body(format!("{topic}:{i}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }));
    }
    for p in publishers {
        p.await.unwrap();
    }
    let got = sub.take(150).await;
    let seqs: Vec<u64> = got.iter().map(|e| seq(&e.last_event_id)).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    for topic in ["inv1/a", "inv1/b", "inv1/c/d"] {
        let mine: Vec<&str> = data(&got)
            .into_iter()
            .filter(|d| d.starts_with(&format!("{topic}:")))
            .collect();
        let want: Vec<String> = (0..50).map(|i| format!("{topic}:{i}")).collect();
        assert_eq!(mine, want, "per-publisher order is kept");
    }
    sub.nothing_for(Duration::from_millis(200)).await;
}

/// Invariant 2 (ARCHITECTURE.md): resuming from X (header) delivers exactly what follows X, then
/// live, with no gap while publishes keep coming.
#[tokio::test]
async fn invariant_2_resume_then_live_without_gap() {
    let hub = TestHub::start(&[]).await;
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(hub.publish("inv2", &i.to_string()).await);
    }
    let url = hub.url.clone();
    let publisher = tokio::spawn(async move {
        for i in 40..140 {
            let r = client()
                .post(format!("{url}/topics/inv2"))
                .body(i.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    });
    let mut sub = hub.subscribe("/topics/inv2", Some(&ids[19])).await;
    let got = sub.take(120).await;
    publisher.await.unwrap();
    let want: Vec<String> = (20..140).map(|i| i.to_string()).collect();
    assert_eq!(data(&got), want);
    sub.nothing_for(Duration::from_millis(200)).await;
}

/// Invariant 3 (ARCHITECTURE.md): an unknown or expired id gets the `ssehub-gap` event before
/// anything else.
#[tokio::test]
async fn invariant_3_gap_event_first() {
    let hub = TestHub::start(&["--history-max-events", "5"]).await;
    let first = hub.publish("inv3", "0").await;
    for i in 1..10 {
        hub.publish("inv3", &i.to_string()).await;
    }
    // Retention runs in the background (every second): wait until it has trimmed.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut sub = hub
            .subscribe("/topics/inv3?lastEventId=earliest", None)
            .await;
        if sub.take(1).await[0].data == "5" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention trimmed the history in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (id, reason) in [(first.as_str(), "expired"), ("deadbeef-3", "unknown")] {
        let mut sub = hub.subscribe("/topics/inv3", Some(id)).await;
        let got = sub.take(6).await;
        assert_eq!(got[0].event_type, "ssehub-gap");
        let gap: serde_json::Value = serde_json::from_str(&got[0].data).unwrap();
        assert_eq!(gap["reason"], reason);
        assert_eq!(gap["requested"], id);
        assert_eq!(gap["oldest"].as_str(), Some(got[1].last_event_id.as_str()));
        assert_eq!(data(&got[1..]), ["5", "6", "7", "8", "9"]);
    }
    assert_eq!(hub.metric("ssehub_gap_events_total").await, 2.0);
}

/// Invariant 4 (ARCHITECTURE.md): a subscriber that stops reading does not delay the others, is
/// disconnected, and then resumes from its last id with nothing lost.
#[tokio::test]
async fn invariant_4_slow_subscriber_cut_off_then_resumes() {
    let hub = TestHub::start(&["--subscriber-buffer-bytes", "1048576"]).await;
    // A raw client that sends its request and then reads nothing.
    let addr = hub.url.strip_prefix("http://").unwrap().to_string();
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        slow,
        "GET /topics/inv4 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut fast = hub.subscribe("/topics/inv4", None).await;
    // Both streams are open (the slow one's request has been read and answered).
    hub.metric_reaches("ssehub_connections", 2.0).await;

    let payload = "x".repeat(16 * 1024);
    let total = 1200; // ~19 MiB: far more than loopback socket buffers and the queue hold
    let started = Instant::now();
    let url = hub.url.clone();
    let publisher = tokio::spawn(async move {
        let client = client();
        let mut batch = Vec::new();
        for i in 0..total {
            batch.push(serde_json::json!({"topic": "inv4", "data": format!("{i}:{payload}")}));
            if batch.len() == 20 {
                let r = client
                    .post(format!("{url}/publish"))
                    .json(&batch)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                batch.clear();
            }
        }
    });
    let got = fast.take(total).await;
    publisher.await.unwrap();
    let elapsed = started.elapsed();
    for (i, e) in got.iter().enumerate() {
        assert!(
            e.data.starts_with(&format!("{i}:")),
            "fast subscriber lost nothing"
        );
    }
    assert_eq!(
        hub.metric("ssehub_slow_consumer_disconnects_total").await,
        1.0
    );
    eprintln!("fast subscriber got {total} events in {elapsed:?} beside a stalled one");

    // The slow client now reads what reached it before the cut, then sees the end.
    let mut received = Vec::new();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    slow.read_to_end(&mut received).unwrap();
    // The chunked framing is harmless to an SSE parser (chunk sizes are unknown fields, and
    // each chunk holds whole events), so parse the raw body for the last complete event.
    let body = &received[received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
    let mut parser = ssehub_wire::Parser::new();
    parser.feed(body);
    let mut last_id = None;
    while let Some(frame) = parser.next() {
        if let Ok(ssehub_wire::Frame::Event(e)) = frame {
            last_id = Some(e.last_event_id);
        }
    }
    // It resumes from its last id (or from the start) and gets exactly the rest.
    let mut resumed = hub
        .subscribe(
            "/topics/inv4",
            Some(last_id.as_deref().unwrap_or("earliest")),
        )
        .await;
    let already = last_id.as_deref().map_or(0, |id| {
        usize::try_from(seq(id) - seq(&got[0].last_event_id) + 1).unwrap()
    });
    let rest = resumed.take(total - already).await;
    assert_eq!(
        rest.first().map(|e| e.last_event_id.clone()),
        got.get(already).map(|e| e.last_event_id.clone())
    );
    assert_eq!(
        rest.last().unwrap().last_event_id,
        got.last().unwrap().last_event_id
    );
}

/// Many topics and patterns: each subscriber gets exactly what matches it.
#[tokio::test]
async fn many_topics_and_patterns() {
    let hub = TestHub::start(&[]).await;
    let cases: [(&str, &[&str]); 5] = [
        ("/topics/m/1/log", &["m/1/log"]),
        ("/topics/m/*/log", &["m/1/log", "m/2/log"]),
        (
            "/topics/m/**",
            &["m/1/log", "m/2/log", "m/2/status", "m/3/x/y"],
        ),
        (
            "/subscribe?topic=m/2/status&topic=m/3/**",
            &["m/2/status", "m/3/x/y"],
        ),
        ("/topics/other", &[]),
    ];
    let mut subs = Vec::new();
    for (path, _) in &cases {
        subs.push(hub.subscribe(path, None).await);
    }
    for topic in ["m/1/log", "m/2/log", "m/2/status", "m/3/x/y", "m"] {
        hub.publish(topic, topic).await;
    }
    for ((path, want), sub) in cases.iter().zip(&mut subs) {
        let got = sub.take(want.len()).await;
        assert_eq!(data(&got), *want, "{path}");
        sub.nothing_for(Duration::from_millis(100)).await;
    }
}

/// One id resumes a multi-topic subscription.
#[tokio::test]
async fn multi_topic_resume_with_one_id() {
    let hub = TestHub::start(&[]).await;
    let mut sub = hub
        .subscribe("/subscribe?topic=mt/a&topic=mt/b", None)
        .await;
    hub.publish("mt/a", "a1").await;
    hub.publish("mt/b", "b1").await;
    let got = sub.take(2).await;
    drop(sub);
    hub.publish("mt/b", "b2").await;
    hub.publish("mt/c", "c1").await;
    hub.publish("mt/a", "a2").await;
    let mut sub = hub
        .subscribe(
            "/subscribe?topic=mt/a&topic=mt/b",
            Some(&got[1].last_event_id),
        )
        .await;
    assert_eq!(data(&sub.take(2).await), ["b2", "a2"]);
}

/// `lastEventId` / `lastEventID` parameters and `earliest`; the header wins over the parameter
/// (a browser reconnecting sends both: the header is newer).
#[tokio::test]
async fn resume_parameters() {
    let hub = TestHub::start(&[]).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(hub.publish("rp", &i.to_string()).await);
    }
    let mut sub = hub
        .subscribe(&format!("/topics/rp?lastEventId={}", ids[1]), None)
        .await;
    assert_eq!(data(&sub.take(2).await), ["2", "3"]);
    let mut sub = hub
        .subscribe(&format!("/topics/rp?lastEventID={}", ids[2]), None)
        .await;
    assert_eq!(data(&sub.take(1).await), ["3"]);
    let mut sub = hub.subscribe("/topics/rp?lastEventId=earliest", None).await;
    assert_eq!(data(&sub.take(4).await), ["0", "1", "2", "3"]);
    let mut sub = hub
        .subscribe(&format!("/topics/rp?lastEventId={}", ids[0]), Some(&ids[2]))
        .await;
    assert_eq!(data(&sub.take(1).await), ["3"]);
    sub.nothing_for(Duration::from_millis(100)).await;
}

/// Stream headers, the jittered `retry:` first, and heartbeats on idle streams.
#[tokio::test]
async fn stream_headers_retry_and_heartbeat() {
    let hub = TestHub::start(&[
        "--heartbeat-secs",
        "1",
        "--retry-ms",
        "1000",
        "--retry-jitter-ms",
        "500",
    ])
    .await;
    let mut sub = hub.subscribe("/topics/hb", None).await;
    assert_eq!(sub.headers["content-type"], "text/event-stream");
    assert_eq!(sub.headers["cache-control"], "no-cache");
    assert_eq!(sub.headers["x-accel-buffering"], "no");
    sub.nothing_for(Duration::from_millis(2500)).await;
    let retry = sub
        .parser
        .reconnection_time_ms()
        .expect("a retry frame came first");
    assert!((1000..=1500).contains(&retry), "{retry}");
    // Heartbeats arrived as raw bytes (no events): check via a raw read.
    let addr = hub.url.strip_prefix("http://").unwrap().to_string();
    let mut raw = std::net::TcpStream::connect(&addr).unwrap();
    write!(raw, "GET /topics/hb HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    raw.set_read_timeout(Some(Duration::from_millis(2500)))
        .unwrap();
    let mut buf = vec![0; 4096];
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !seen.contains("\n:\n") && Instant::now() < deadline {
        let n = raw.read(&mut buf).unwrap_or(0);
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(
        seen.contains("\n:\n"),
        "a keep-alive comment arrived: {seen:?}"
    );
}

/// SIGTERM with open streams: every stream ends (so clients reconnect) and the process
/// exits cleanly within the grace period — its log says so, whatever the machine's speed.
#[tokio::test]
async fn shutdown_with_open_streams_finishes_in_time() {
    let mut hub = TestHub::start_capturing(&["--shutdown-grace-secs", "30", "--log", "info"]).await;
    let mut subs = Vec::new();
    for _ in 0..20 {
        subs.push(hub.subscribe("/topics/sd", None).await);
    }
    hub.publish("sd", "before shutdown").await;
    let streams = async {
        for sub in &mut subs {
            let got = sub.until_end(Duration::from_secs(30)).await;
            assert_eq!(
                data(&got),
                ["before shutdown"],
                "queued events are flushed first"
            );
        }
    };
    let ((status, log), ()) = tokio::join!(hub.stop_capturing(), streams);
    assert!(status.success(), "{status}\n{log}");
    assert!(log.contains("shut down cleanly"), "{log}");
    assert!(!log.contains("grace period is over"), "{log}");
}

/// A stream whose client never reads cannot hold shutdown past the grace period: the hub
/// closes it at the deadline (its log says so) and exits.
#[tokio::test]
async fn shutdown_force_closes_at_the_deadline() {
    let mut hub = TestHub::start_capturing(&["--shutdown-grace-secs", "1"]).await;
    // An unfinished request: hyper waits for it, the deadline does not.
    let addr = hub.url.strip_prefix("http://").unwrap().to_string();
    let mut half = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        half,
        "POST /topics/x HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n"
    )
    .unwrap();
    // `100 Continue` comes once the handler waits for the body: the request is in flight
    // (a connection whose head was not read yet would simply close on shutdown).
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    half.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    while !String::from_utf8_lossy(&seen).contains("100 Continue") {
        let n = std::io::Read::read(&mut half, &mut buf).expect("100 Continue in time");
        assert!(
            n > 0,
            "the hub closed the connection: {:?}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    write!(half, "ab").unwrap();
    let (status, log) = hub.stop_capturing().await;
    assert!(status.success(), "{status}\n{log}");
    assert!(
        log.contains("the grace period is over; closing the remaining connections"),
        "{log}"
    );
}

#[test]
fn config_file_check_and_defaults() {
    let bin = env!("CARGO_BIN_EXE_ssehub");
    let out = std::process::Command::new(bin)
        .args(["serve", "--print-default-config"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let defaults = String::from_utf8(out.stdout).unwrap();
    assert!(defaults.contains("[limits]") && defaults.contains("heartbeat_secs = 15"));

    let dir = std::env::temp_dir().join(format!("ssehub-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "[sse]\nheartbeat_secs = 5\n[cors]\norigins = [\"https://a.example\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(bin)
        .args(["serve", "--check-config", "--config"])
        .arg(&good)
        .args(["--retry-ms", "777"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let effective = String::from_utf8(out.stdout).unwrap();
    assert!(effective.contains("heartbeat_secs = 5"), "file applied");
    assert!(effective.contains("retry_ms = 777"), "flag overrides file");

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[limits]\nmax_conections = 5\n").unwrap();
    let out = std::process::Command::new(bin)
        .args(["serve", "--check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_conections"));
    let out = std::process::Command::new(bin)
        .args(["serve", "--check-config"])
        .env("SSEHUB_MAX_CONNECTIONS", "0")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "environment variables are validated too"
    );
    std::fs::remove_dir_all(&dir).ok();
}
