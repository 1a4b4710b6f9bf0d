//! One event goes from a POST to an open SSE subscription.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

async fn read_until(stream: &mut TcpStream, buf: &mut Vec<u8>, needle: &str) -> String {
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(buf).contains(needle) {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before {needle:?}: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(buf).into_owned()
}

#[tokio::test]
async fn one_event_goes_through() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(naive_axum_sse::serve(listener));

    timeout(Duration::from_secs(10), async {
        let mut sub = TcpStream::connect(addr).await.unwrap();
        sub.write_all(b"GET /topics/a/b HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
            .await
            .unwrap();
        let mut sub_buf = Vec::new();
        let head = read_until(&mut sub, &mut sub_buf, "\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("text/event-stream"), "{head}");

        let mut publ = TcpStream::connect(addr).await.unwrap();
        publ.write_all(
            b"POST /topics/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        )
        .await
        .unwrap();
        let mut answer = String::new();
        publ.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("{\"id\":\"1\"}"), "{answer}");

        let stream = read_until(&mut sub, &mut sub_buf, "data: hello\n").await;
        assert!(stream.contains("id: 1\n"), "{stream}");
    })
    .await
    .expect("timed out");
}
