//! Each limit of [`Limits`], attacked: the socket is closed or the status is the one
//! expected, and the metric counts it. Timeouts are short (hundreds of ms); assertions bound
//! the time taken only generously.

use std::time::Duration;

use ssehub_http::ConnTimeout;
use ssehub_server::Limits;

use crate::util::{
    SOON, Server, eventually, quick, read_response, read_to_close, send, status, stays_open,
};

fn head_of(bytes: usize) -> String {
    let pad = bytes.saturating_sub(40);
    format!(
        "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(pad)
    )
}

/// L4: one head limit whichever path reads the head (first request: the direct path;
/// second: hyper).
#[tokio::test]
async fn head_limit_is_the_same_on_first_and_second_request() {
    let server = Server::start(Limits::default()).await;
    // 12 KiB: under the 16 KiB limit, accepted both times.
    let mut s = server.connect().await;
    let head = head_of(12 << 10);
    send(&mut s, head.as_bytes()).await;
    assert_eq!(status(&read_response(&mut s).await.0), 200);
    send(&mut s, head.as_bytes()).await;
    assert_eq!(status(&read_response(&mut s).await.0), 200);

    // 20 KiB: over it, 431 both as a first request and as a second one.
    let big = head_of(20 << 10);
    let mut s = server.connect().await;
    send(&mut s, big.as_bytes()).await;
    let answer = read_to_close(&mut s, SOON).await.expect("closed after 431");
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let mut s = server.connect().await;
    send(&mut s, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert_eq!(status(&read_response(&mut s).await.0), 200);
    send(&mut s, big.as_bytes()).await;
    let answer = read_to_close(&mut s, SOON).await.expect("closed after 431");
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_eq!(server.metrics.head_too_large(), 2);
}

/// H2: 65 header lines and never the blank line: 431 at once as a first request; as a later
/// one (hyper counts fields only once the head is whole), closed at the header timeout.
#[tokio::test]
async fn too_many_headers_are_refused() {
    let server = Server::start(Limits {
        idle_timeout: Duration::from_secs(3600),
        ..quick()
    })
    .await;
    let lines: String = (0..65).map(|i| format!("x-h{i}: v\r\n")).collect();
    let head = format!("GET / HTTP/1.1\r\n{lines}");
    let mut s = server.connect().await;
    send(&mut s, head.as_bytes()).await;
    let answer = read_to_close(&mut s, SOON).await.expect("closed");
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(answer.contains(r#""error":"head_too_large""#), "{answer}");
    assert_eq!(server.metrics.timeouts(ConnTimeout::Header), 0);

    let mut s = server.connect().await;
    send(&mut s, b"GET / HTTP/1.1\r\n\r\n").await;
    assert_eq!(status(&read_response(&mut s).await.0), 200);
    send(&mut s, head.as_bytes()).await;
    assert!(read_to_close(&mut s, SOON).await.is_some());
    // With the blank line, hyper answers 431 too.
    let mut s = server.connect().await;
    send(&mut s, b"GET / HTTP/1.1\r\n\r\n").await;
    assert_eq!(status(&read_response(&mut s).await.0), 200);
    send(&mut s, format!("{head}\r\n").as_bytes()).await;
    let answer = read_to_close(&mut s, SOON).await.expect("closed");
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // 64 are fine, on both paths.
    let lines: String = (0..63).map(|i| format!("x-h{i}: v\r\n")).collect();
    let ok = format!("GET / HTTP/1.1\r\n{lines}\r\n");
    let mut s = server.connect().await;
    send(&mut s, ok.as_bytes()).await;
    assert_eq!(status(&read_response(&mut s).await.0), 200);
    send(&mut s, ok.as_bytes()).await;
    assert_eq!(status(&read_response(&mut s).await.0), 200);
}

/// H2: a head that never ends is closed after the header timeout, on the direct path and on
/// hyper's (a second request), even though the idle timeout is far longer.
#[tokio::test]
async fn slow_heads_are_closed() {
    let server = Server::start(Limits {
        idle_timeout: Duration::from_secs(3600),
        ..quick()
    })
    .await;
    let mut first = server.connect().await;
    send(&mut first, b"GET / HTTP/1.1\r\nHost: h\r\n").await;
    let mut second = server.connect().await;
    send(&mut second, b"GET / HTTP/1.1\r\n\r\n").await;
    assert_eq!(status(&read_response(&mut second).await.0), 200);
    send(&mut second, b"GET / HTTP/1.1\r\nHost: h\r\n").await;
    // A connection that never sends a byte counts from the accept.
    let mut silent = server.connect().await;
    for s in [&mut first, &mut second, &mut silent] {
        assert_eq!(read_to_close(s, SOON).await.as_deref(), Some(""));
    }
    assert_eq!(server.metrics.timeouts(ConnTimeout::Header), 3);
    eventually("every connection closed", || server.metrics.open() == 0).await;
}

/// H2: a keep-alive connection with nothing in flight closes after the idle timeout.
#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let server = Server::start(Limits {
        header_read_timeout: Duration::from_secs(3600),
        ..quick()
    })
    .await;
    let mut s = server.connect().await;
    send(&mut s, b"GET / HTTP/1.1\r\n\r\n").await;
    assert_eq!(status(&read_response(&mut s).await.0), 200);
    // Still served while under the idle timeout.
    send(&mut s, b"GET / HTTP/1.1\r\n\r\n").await;
    assert_eq!(status(&read_response(&mut s).await.0), 200);
    assert_eq!(read_to_close(&mut s, SOON).await.as_deref(), Some(""));
    assert_eq!(server.metrics.timeouts(ConnTimeout::Idle), 1);
}

/// H2: HTTP/2's preface, then nothing: closed.
#[tokio::test]
async fn h2_preface_then_silence_is_closed() {
    let server = Server::start(quick()).await;
    let mut s = server.connect().await;
    send(&mut s, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    // The server's SETTINGS may come first; then the close.
    assert!(read_to_close(&mut s, SOON).await.is_some());
    assert_eq!(server.metrics.timeouts(ConnTimeout::Header), 1);
}

/// H2: a request body that trickles gets 408 and the connection closes.
#[tokio::test]
async fn slow_bodies_get_408() {
    let server = Server::start(Limits {
        idle_timeout: Duration::from_secs(3600),
        header_read_timeout: Duration::from_secs(3600),
        ..quick()
    })
    .await;
    let mut s = server.connect().await;
    send(
        &mut s,
        b"POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nab",
    )
    .await;
    let answer = read_to_close(&mut s, SOON).await.expect("closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""error":"request_timeout""#), "{answer}");
    assert_eq!(server.metrics.timeouts(ConnTimeout::Body), 1);
    // A whole body in time is served.
    let mut s = server.connect().await;
    send(
        &mut s,
        b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nab",
    )
    .await;
    let (head, body) = read_response(&mut s).await;
    assert_eq!((status(&head), body.as_str()), (200, "ab"));
}

/// H2: open connections are capped at accept; one over the cap is closed at once, and a
/// place frees up when a connection ends.
#[tokio::test]
async fn open_connections_are_capped_at_accept() {
    let server = Server::start(Limits {
        max_open_connections: 3,
        header_read_timeout: Duration::from_secs(3600),
        ..Limits::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(server.connect().await);
    }
    eventually("three open", || server.metrics.open() == 3).await;
    let mut over = server.connect().await;
    assert_eq!(read_to_close(&mut over, SOON).await.as_deref(), Some(""));
    assert_eq!(server.metrics.refused(), 1);
    drop(held.pop());
    eventually("a place is free", || server.metrics.open() == 2).await;
    let mut s = server.connect().await;
    send(&mut s, b"GET / HTTP/1.1\r\n\r\n").await;
    assert_eq!(status(&read_response(&mut s).await.0), 200);
}

/// Streams are requests in flight: no timer closes them, on either path.
#[tokio::test]
async fn streams_are_never_idle() {
    let server = Server::start(quick()).await;
    let mut direct = server.connect().await;
    send(&mut direct, b"GET /stream HTTP/1.1\r\n\r\n").await;
    let mut via_hyper = server.connect().await;
    send(&mut via_hyper, b"GET / HTTP/1.1\r\n\r\n").await;
    assert_eq!(status(&read_response(&mut via_hyper).await.0), 200);
    send(&mut via_hyper, b"GET /stream HTTP/1.1\r\n\r\n").await;
    eventually("two streams", || server.open_streams() == 2).await;
    let quiet = Duration::from_secs(2);
    assert!(stays_open(&mut direct, quiet).await);
    assert!(stays_open(&mut via_hyper, quiet).await);
    assert_eq!(server.open_streams(), 2);
}

/// L5: a client that sends more than a head's worth after its stream's request and then goes
/// away is seen at once (the stream is dropped), with nothing ever written to it.
#[tokio::test]
async fn a_client_that_floods_then_leaves_is_seen() {
    let server = Server::start(Limits::default()).await;
    let mut s = server.connect().await;
    send(&mut s, b"GET /stream HTTP/1.1\r\n\r\n").await;
    eventually("the stream is open", || server.open_streams() == 1).await;
    send(&mut s, &vec![b'x'; 64 << 10]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(s);
    eventually("the stream is dropped", || server.open_streams() == 0).await;
    eventually("the connection is closed", || server.metrics.open() == 0).await;
}
