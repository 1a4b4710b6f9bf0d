//! A raw HTTP/1.1 client on one TCP connection: exactly the bytes sent, exactly the bytes
//! received, and the connection under the test's control (kept alive, pipelined, closed).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One connection to a hub.
pub(crate) struct RawConn {
    stream: TcpStream,
    /// Received and not consumed yet.
    buf: Vec<u8>,
}

/// A complete response.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    /// Names in lower case, in order.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl RawResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl RawConn {
    /// Connects to `url` (`http://127.0.0.1:PORT`).
    pub(crate) async fn connect(url: &str) -> RawConn {
        let addr = url.strip_prefix("http://").expect("an http:// URL");
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
            .await
            .expect("connects in time")
            .expect("connects");
        RawConn {
            stream,
            buf: Vec::new(),
        }
    }

    /// A connection opened by the test itself.
    pub(crate) fn from_stream(stream: TcpStream) -> RawConn {
        RawConn {
            stream,
            buf: Vec::new(),
        }
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .await
            .expect("the request is sent");
    }

    /// Sends one request with a body (or none) and reads its response (at most 10 s).
    pub(crate) async fn request(&mut self, method: &str, path: &str, body: &str) -> RawResponse {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.send(request.as_bytes()).await;
        self.response(Duration::from_secs(10)).await
    }

    /// Sends a `GET` and reads its response head (not the body).
    pub(crate) async fn get_head(
        &mut self,
        path: &str,
        extra: &str,
    ) -> (u16, Vec<(String, String)>) {
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n");
        self.send(request.as_bytes()).await;
        self.head(Duration::from_secs(10))
            .await
            .expect("a response head in time")
    }

    /// Reads bytes until `pred` holds on what is buffered; false at the end of the stream or
    /// after `limit`.
    async fn fill_until(&mut self, limit: Duration, pred: impl Fn(&[u8]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while !pred(&self.buf) {
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return false,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
        true
    }

    /// Reads one response head; `None` if none arrives within `limit`.
    pub(crate) async fn head(&mut self, limit: Duration) -> Option<(u16, Vec<(String, String)>)> {
        let found = self
            .fill_until(limit, |b| b.windows(4).any(|w| w == b"\r\n\r\n"))
            .await;
        if !found {
            return None;
        }
        let end = self.buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(self.buf[..end].to_vec()).expect("a UTF-8 head");
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line:?}");
        let status = status_line[9..12].parse().unwrap();
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(':').expect("name: value");
                (name.trim().to_ascii_lowercase(), value.trim().to_string())
            })
            .collect();
        Some((status, headers))
    }

    /// Reads one complete response with a `content-length` body.
    pub(crate) async fn response(&mut self, limit: Duration) -> RawResponse {
        let (status, headers) = self.head(limit).await.expect("a response head in time");
        let response = RawResponse {
            status,
            headers,
            body: String::new(),
        };
        assert_eq!(
            response.header("transfer-encoding"),
            None,
            "expected a content-length body: {response:?}"
        );
        let len: usize = response
            .header("content-length")
            .expect("content-length")
            .parse()
            .unwrap();
        assert!(
            self.fill_until(limit, |b| b.len() >= len).await,
            "the body arrives"
        );
        let body = String::from_utf8(self.buf.drain(..len).collect()).unwrap();
        RawResponse { body, ..response }
    }

    /// Reads until the received bytes (after the head) contain `needle`; false after `limit`
    /// or at the end of the stream.
    pub(crate) async fn read_until(&mut self, needle: &str, limit: Duration) -> bool {
        let needle = needle.as_bytes();
        self.fill_until(limit, |b| b.windows(needle.len()).any(|w| w == needle))
            .await
    }

    /// Everything received and not consumed, as text.
    pub(crate) fn received(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }

    /// True when the server closes the connection within `limit` (whatever it sends first).
    pub(crate) async fn closed_within(&mut self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => return false,
            }
        }
    }
}
