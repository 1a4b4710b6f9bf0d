//! Issue 10, the connection layer, against the real binary: slowloris sockets of every kind
//! (H2), one head limit for every request of a connection (L4), and a client that floods a
//! stream's connection and leaves (L5). Timeouts are set short through the config file; the
//! assertions are about outcomes (closed sockets, statuses, metrics), bounded only generously
//! in time.

use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::raw_http::RawConn;
use crate::util::TestHub;

/// Generous: the timeouts below are about a second.
const SOON: Duration = Duration::from_secs(25);

/// A hub whose `[limits]` are `limits` (TOML lines), plus `args`.
async fn hub_with(limits: &str, args: &[&str]) -> (TestHub, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ssehub.toml");
    std::fs::write(&path, format!("[limits]\n{limits}\n")).unwrap();
    let path = path.to_str().unwrap().to_string();
    let mut all = vec!["--store", "memory", "--config", path.as_str()];
    all.extend_from_slice(args);
    (TestHub::start(&all).await, dir)
}

async fn healthz(hub: &TestHub) -> u16 {
    let mut conn = RawConn::connect(&hub.url).await;
    conn.request("GET", "/healthz", "").await.status
}

async fn raw(hub: &TestHub) -> TcpStream {
    let addr = hub.url.strip_prefix("http://").unwrap();
    TcpStream::connect(addr).await.unwrap()
}

/// Waits until the metric `name` is at most `max`.
async fn metric_falls_to(hub: &TestHub, name: &str, max: f64) {
    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        let value = hub.metric(name).await;
        if value <= max {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} stays at {value}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// H2: a few hundred slowloris sockets of each kind — a head that never ends (65 header
/// lines, or a few), idle after one request, HTTP/2's preface then nothing, a body that
/// trickles — are all closed by the timers, `/healthz` answers all along, and the
/// open-connections gauge comes back down.
#[tokio::test]
async fn h2_slowloris_sockets_are_closed_and_healthz_answers() {
    let (hub, _dir) = hub_with(
        "header_read_timeout_ms = 1000\nidle_timeout_ms = 1500\nbody_read_timeout_ms = 1000",
        &[],
    )
    .await;
    const EACH: usize = 150;
    let many: String = (0..65).map(|i| format!("x-h{i}: v\r\n")).collect();
    let kinds: [&[u8]; 6] = [
        // 65 header lines, no blank line (answered 431 at once).
        format!("GET / HTTP/1.1\r\n{many}").leak().as_bytes(),
        // A few header lines, no blank line.
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n",
        // Nothing at all.
        b"",
        // One request, then idle.
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
        // HTTP/2's preface, then nothing.
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        // A body that never comes.
        b"POST /topics/t HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nab",
    ];
    let mut sockets = Vec::new();
    for kind in kinds {
        for _ in 0..EACH {
            let mut s = raw(&hub).await;
            s.write_all(kind).await.unwrap();
            sockets.push(s);
        }
    }
    assert_eq!(healthz(&hub).await, 200);
    // Every one of them is closed by the hub.
    for s in sockets {
        let mut conn = RawConn::from_stream(s);
        assert!(conn.closed_within(SOON).await, "{}", conn.received());
    }
    assert_eq!(healthz(&hub).await, 200);
    // The scrape's own connection is the one left.
    metric_falls_to(&hub, "ssehub_open_connections", 1.0).await;
    for kind in ["header", "idle", "body"] {
        let value = hub
            .metric(&format!(
                "ssehub_connection_timeouts_total{{kind=\"{kind}\"}}"
            ))
            .await;
        assert!(value >= EACH as f64, "{kind}: {value}");
    }
    let refused = hub
        .metric("ssehub_rejected_requests_total{reason=\"head_too_large\"}")
        .await;
    assert!(refused >= EACH as f64, "{refused}");
    // And the hub still publishes.
    hub.publish("t", "still here").await;
}

/// H2: open connections are capped at accept, so hostile sockets cannot take every
/// descriptor; once they time out, `/healthz` answers again.
#[tokio::test]
async fn h2_open_connections_are_capped() {
    let (hub, _dir) = hub_with(
        "max_open_connections = 100\nheader_read_timeout_ms = 2000",
        &[],
    )
    .await;
    let mut sockets = Vec::new();
    for _ in 0..300 {
        sockets.push(raw(&hub).await);
    }
    // 200 of them are closed at once; the rest time out.
    for s in sockets {
        let mut conn = RawConn::from_stream(s);
        assert!(conn.closed_within(SOON).await);
    }
    assert_eq!(healthz(&hub).await, 200);
    let refused = hub.metric("ssehub_refused_connections_total").await;
    assert!(refused >= 200.0, "{refused}");
}

/// L4: a 12 KiB head is accepted as the first request of a connection and as the second
/// alike; a 20 KiB one is refused with 431 both times.
#[tokio::test]
async fn l4_one_head_limit_for_every_request() {
    let (hub, _dir) = hub_with("", &[]).await;
    let head = |kib: usize| {
        format!(
            "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Pad: {}\r\n\r\n",
            "a".repeat(kib << 10)
        )
    };
    let mut conn = RawConn::connect(&hub.url).await;
    for _ in 0..2 {
        conn.send(head(12).as_bytes()).await;
        assert_eq!(conn.response(SOON).await.status, 200);
    }
    let mut first = RawConn::connect(&hub.url).await;
    first.send(head(20).as_bytes()).await;
    assert_eq!(first.response(SOON).await.status, 431);
    let mut second = RawConn::connect(&hub.url).await;
    second.send(head(0).as_bytes()).await;
    assert_eq!(second.response(SOON).await.status, 200);
    second.send(head(20).as_bytes()).await;
    assert!(second.closed_within(SOON).await);
    assert!(
        second.received().starts_with("HTTP/1.1 431"),
        "{}",
        second.received()
    );
}

/// L5: a subscriber that sends more than 16 KiB after its `GET` and then goes away is seen
/// at once, even with heartbeats off (nothing is ever written to its socket).
#[tokio::test]
async fn l5_a_flooding_subscriber_that_leaves_is_seen() {
    let (hub, _dir) = hub_with("", &["--heartbeat-secs", "0"]).await;
    let mut conn = RawConn::connect(&hub.url).await;
    let (status, _) = conn.get_head("/topics/l5", "").await;
    assert_eq!(status, 200);
    metric_falls_to(&hub, "ssehub_subscriptions", 1.0).await;
    assert_eq!(hub.metric("ssehub_subscriptions").await, 1.0);
    conn.send(&vec![b'x'; 64 << 10]).await;
    drop(conn);
    metric_falls_to(&hub, "ssehub_subscriptions", 0.0).await;
    metric_falls_to(&hub, "ssehub_connections", 0.0).await;
}

/// H2/M2: a publish body that does not arrive in time is one `request_timeout` refusal — not
/// also an `invalid_json` (`/topics`, `/publish`) or `invalid_utf8` (Mercure) one, which is
/// what the handlers used to make of the failed read, so that a slow-body attack showed up in
/// `/metrics` as clients sending broken JSON.
#[tokio::test]
async fn h2_a_slow_publish_body_is_counted_once_as_a_timeout() {
    let (hub, _dir) = hub_with("body_read_timeout_ms = 500", &[]).await;
    for path in ["/topics/t", "/publish", "/.well-known/mercure"] {
        let mut s = raw(&hub).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nab"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let mut conn = RawConn::from_stream(s);
        assert!(conn.closed_within(SOON).await, "{}", conn.received());
        let answer = conn.received();
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
    }
    for (reason, want) in [
        ("request_timeout", 3.0),
        ("invalid_json", 0.0),
        ("invalid_utf8", 0.0),
    ] {
        let name = format!("ssehub_rejected_requests_total{{reason=\"{reason}\"}}");
        assert_eq!(hub.metric(&name).await, want, "{reason}");
    }
    hub.publish("t", "still here").await;
}
