//! HTTP/1.1 on the wire: the first `GET` of a connection is answered without hyper (to keep
//! idle streams small), everything after it by hyper. These tests check the seams: framing,
//! keep-alive and pipelining across the hand-over, HTTP/1.0, and a client that goes away.

use std::time::Duration;

use crate::raw_http::RawConn;
use crate::util::TestHub;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn one_connection_serves_a_get_then_a_publish_then_more() {
    let hub = TestHub::start(&["--store", "memory"]).await;
    let mut conn = RawConn::connect(&hub.url).await;
    let health = conn.request("GET", "/healthz", "").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body, r#"{"status":"ok"}"#);
    assert!(health.header("date").is_some(), "{health:?}");
    assert_eq!(health.header("connection"), None, "kept alive: {health:?}");
    let published = conn.request("POST", "/topics/conn/a", "x").await;
    assert_eq!(published.status, 200, "{published:?}");
    assert!(published.body.contains("\"id\""), "{published:?}");
    let again = conn.request("GET", "/healthz", "").await;
    assert_eq!(again.status, 200);
}

#[tokio::test]
async fn pipelined_requests_are_all_answered_in_order() {
    let hub = TestHub::start(&["--store", "memory"]).await;
    let mut conn = RawConn::connect(&hub.url).await;
    conn.send(
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n\
          GET /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n\
          POST /topics/conn/p HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\n\r\ny",
    )
    .await;
    assert_eq!(conn.response(WAIT).await.status, 200);
    assert_eq!(conn.response(WAIT).await.status, 404);
    assert_eq!(conn.response(WAIT).await.status, 200);
}

#[tokio::test]
async fn an_error_answer_is_framed_and_the_connection_stays_usable() {
    let hub = TestHub::start(&["--store", "memory"]).await;
    let mut conn = RawConn::connect(&hub.url).await;
    let refused = conn.request("GET", "/topics/a?bogus=1", "").await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert_eq!(
        refused.header("content-type"),
        Some("application/json"),
        "{refused:?}"
    );
    assert!(refused.body.contains("unknown_parameter"), "{refused:?}");
    assert_eq!(conn.request("GET", "/healthz", "").await.status, 200);
}

#[tokio::test]
async fn a_stream_is_chunked_and_carries_events() {
    let hub = TestHub::start(&["--store", "memory"]).await;
    let mut conn = RawConn::connect(&hub.url).await;
    let (status, headers) = conn
        .get_head("/topics/conn/s", "Accept: text/event-stream\r\n")
        .await;
    assert_eq!(status, 200);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("content-type"), Some("text/event-stream"));
    assert_eq!(header("transfer-encoding"), Some("chunked"));
    assert_eq!(header("cache-control"), Some("no-cache"));
    assert!(conn.read_until("retry:", WAIT).await);
    hub.publish("conn/s", "hello").await;
    assert!(
        conn.read_until("data: hello\n\n\r\n", WAIT).await,
        "{}",
        conn.received()
    );
    // Every chunk is `<hex size>\r\n<data>\r\n`.
    let received = conn.received();
    let mut rest = received.as_str();
    while !rest.is_empty() {
        let (size, after) = rest.split_once("\r\n").expect("a chunk-size line");
        let size = usize::from_str_radix(size, 16).expect("hex");
        assert!(size > 0, "no final chunk while streaming");
        assert_eq!(&after[size..size + 2], "\r\n", "{received:?}");
        rest = &after[size + 2..];
    }
}

#[tokio::test]
async fn http_1_0_streams_until_the_connection_closes() {
    let hub = TestHub::start(&["--store", "memory"]).await;
    let mut conn = RawConn::connect(&hub.url).await;
    conn.send(b"GET /topics/conn/old HTTP/1.0\r\n\r\n").await;
    let (status, headers) = conn.head(WAIT).await.expect("a head");
    assert_eq!(status, 200);
    assert!(
        !headers.iter().any(|(n, _)| n == "transfer-encoding"),
        "{headers:?}"
    );
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "connection" && v == "close"),
        "{headers:?}"
    );
    hub.publish("conn/old", "plain").await;
    assert!(conn.read_until("data: plain\n\n", WAIT).await);
    assert!(
        conn.received().starts_with("retry:"),
        "no chunk framing: {:?}",
        conn.received()
    );
}

#[tokio::test]
async fn a_client_that_goes_away_releases_its_stream() {
    let hub = TestHub::start(&["--store", "memory"]).await;
    let mut conn = RawConn::connect(&hub.url).await;
    conn.get_head("/topics/conn/gone", "").await;
    assert!(conn.read_until("retry:", WAIT).await);
    assert_eq!(hub.metric("ssehub_connections").await, 1.0);
    drop(conn);
    // The stream is dropped when its client goes away.
    hub.metric_reaches("ssehub_connections", 0.0).await;
}

#[tokio::test]
async fn connection_close_is_honoured() {
    let hub = TestHub::start(&["--store", "memory"]).await;
    let mut conn = RawConn::connect(&hub.url).await;
    conn.send(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await;
    let response = conn.response(WAIT).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("connection"), Some("close"));
    assert!(
        conn.closed_within(WAIT).await,
        "the hub closes the connection"
    );
}

#[tokio::test]
async fn streams_end_cleanly_on_shutdown() {
    let mut hub = TestHub::start(&["--store", "memory"]).await;
    let mut conn = RawConn::connect(&hub.url).await;
    conn.get_head("/topics/conn/bye", "").await;
    assert!(conn.read_until("retry:", WAIT).await);
    hub.terminate();
    assert!(conn.read_until("0\r\n\r\n", WAIT).await, "the final chunk");
    assert!(conn.closed_within(WAIT).await);
    assert!(hub.wait(WAIT).await.success());
}
