//! The idle-writable fast path (ARCHITECTURE.md, steps 9–11): the fan-out writes an event
//! straight to an idle subscriber's socket. A subscriber that reads slowly through a small
//! receive buffer, beside one that keeps up, while events come one at a time (most written
//! by the fan-out, the rest queued while a connection is busy), must still get a well-formed
//! chunked stream with every event once, in order. (On by `--direct-writes`; off by
//! default.) Partial and refused direct writes, which the kernel's send buffer makes rare
//! here, are driven by the hub model check (`ssehub_core::testing`) and `live_queue.rs`.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::util::{TestHub, client, seq};

/// Events of mixed sizes: most a few hundred bytes (sent from the stack buffer), some larger
/// than the direct path's small-write buffer (vectored writes), none large enough to pass
/// the subscriber's queue bound while the reader lags.
fn payload(i: usize) -> String {
    let size = if i.is_multiple_of(7) {
        6000
    } else {
        100 + (i * 37) % 600
    };
    format!("{i}:{}", "x".repeat(size))
}

/// Decodes a chunked body, checking its framing: every chunk's size line, its data and its
/// line end exactly where they must be. Returns the data, and whether the final chunk came.
fn dechunk(mut body: &[u8]) -> (Vec<u8>, bool) {
    let mut data = Vec::new();
    loop {
        let Some(end) = body.windows(2).position(|w| w == b"\r\n") else {
            return (data, false);
        };
        let size = std::str::from_utf8(&body[..end]).expect("a size line is ASCII");
        let size = usize::from_str_radix(size, 16)
            .unwrap_or_else(|_| panic!("a chunk size line, not {size:?}"));
        if size == 0 {
            return (data, true);
        }
        let chunk = &body[end + 2..];
        if chunk.len() < size + 2 {
            return (data, false);
        }
        assert_eq!(&chunk[size..size + 2], b"\r\n", "a chunk ends with CRLF");
        data.extend_from_slice(&chunk[..size]);
        body = &chunk[size + 2..];
    }
}

#[tokio::test]
async fn slow_reader_with_a_small_receive_buffer_gets_every_event_in_order() {
    let hub = TestHub::start(&["--store", "memory", "--direct-writes"]).await;
    let addr: std::net::SocketAddr = hub.url.strip_prefix("http://").unwrap().parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = socket.connect(addr).await.unwrap();
    slow.write_all(b"GET /topics/fast HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    // A subscriber that keeps up, beside it.
    let mut quick = hub.subscribe("/topics/fast", None).await;
    hub.metric_reaches("ssehub_connections", 2.0).await;

    let total = 200;
    let url = hub.url.clone();
    let publisher = tokio::spawn(async move {
        let client = client();
        for i in 0..total {
            // One at a time, with pauses: both subscribers are often idle.
            let r = client
                .post(format!("{url}/topics/fast"))
                .body(payload(i))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            if i.is_multiple_of(10) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });

    // Reads 2 KiB at a time with pauses, until every event is in.
    let mut received = Vec::new();
    let last = format!("data: {}:", total - 1);
    let mut buf = [0u8; 2048];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), slow.read(&mut buf))
            .await
            .expect("the stream goes on")
            .unwrap();
        assert!(n > 0, "the hub does not end the stream");
        received.extend_from_slice(&buf[..n]);
        if received.windows(last.len()).any(|w| w == last.as_bytes())
            && received.ends_with(b"\n\n\r\n")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    publisher.await.unwrap();
    let got = quick.take(total).await;

    let head_end = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&received[..head_end]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let (body, ended) = dechunk(&received[head_end..]);
    assert!(!ended, "the stream is still open");
    let mut parser = ssehub_wire::Parser::new();
    parser.feed(&body);
    let mut events = Vec::new();
    while let Some(frame) = parser.next() {
        if let Ok(ssehub_wire::Frame::Event(e)) = frame {
            events.push(e);
        }
    }
    assert_eq!(events.len(), total, "every event once");
    for (i, (slow, quick)) in events.iter().zip(&got).enumerate() {
        assert_eq!(slow.data, payload(i), "the slow reader's event {i}");
        assert_eq!(quick.data, payload(i), "the quick reader's event {i}");
        assert_eq!(slow.last_event_id, quick.last_event_id);
    }
    assert!(
        events
            .windows(2)
            .all(|w| seq(&w[0].last_event_id) < seq(&w[1].last_event_id)),
        "ids increase"
    );
    assert!(
        hub.metric("ssehub_direct_writes_total").await > 0.0,
        "the fan-out wrote some events straight to a socket"
    );
    assert_eq!(
        hub.metric("ssehub_slow_consumer_disconnects_total").await,
        0.0
    );
}

/// `[sse] direct_writes = false` (the default): every event goes through the queue.
#[tokio::test]
async fn direct_writes_off_sends_everything_through_the_queue() {
    let hub = TestHub::start(&["--store", "memory"]).await;
    let mut sub = hub.subscribe("/topics/off", None).await;
    hub.metric_reaches("ssehub_connections", 1.0).await;
    for i in 0..5 {
        hub.publish("off", &i.to_string()).await;
    }
    let got = sub.take(5).await;
    assert_eq!(crate::util::data(&got), ["0", "1", "2", "3", "4"]);
    assert_eq!(hub.metric("ssehub_direct_writes_total").await, 0.0);
    assert_eq!(hub.metric("ssehub_events_delivered_total").await, 5.0);
}
