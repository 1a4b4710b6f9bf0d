//! [`Limits`]: what one client may make the connection layer hold, and for how long. One set,
//! applied alike by the direct path (a connection's first plain `GET`) and by hyper (every
//! other request), so a request gets the same verdict whichever path reads it.

use std::time::Duration;

/// hyper's smallest read buffer (it refuses less).
const HYPER_MIN_BUF: usize = 8192;

/// HTTP/2 flow-control window of each stream, for what clients send (request bodies): 64 KiB,
/// the protocol's default. A publish body larger than this arrives in several round trips; it
/// bounds what one stream can make the hub buffer before the handler reads it.
pub(crate) const H2_STREAM_WINDOW: u32 = 64 << 10;
/// HTTP/2 flow-control window of a whole connection, for what clients send: 1 MiB, so a few
/// request bodies can arrive at once without one stream starving the others.
pub(crate) const H2_CONNECTION_WINDOW: u32 = 1 << 20;
/// What hyper buffers of one HTTP/2 response stream beyond the client's window: 64 KiB
/// (hyper's default is 400 KiB). An SSE stream whose client stops reading (its window
/// exhausted) stops being polled once this is full, so its events wait in its subscriber
/// queue, where the slow-consumer cut (`subscriber_buffer_bytes`) applies to that stream
/// alone; the connection's other streams keep flowing.
pub(crate) const H2_SEND_BUFFER: usize = 64 << 10;

/// The connection layer's limits. Every one has a default fit for a hub on the open internet;
/// the binary maps them from the `[limits]` section of its config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The largest request head (request line, headers and the blank line), in bytes. Larger
    /// heads get 431 and the connection closes. At least 8 KiB, hyper's smallest buffer.
    pub max_head_bytes: usize,
    /// The most header fields in one request head (431 above).
    pub max_headers: usize,
    /// How long a client may take to send a whole request head, from its first byte (for a
    /// new connection, from the accept). HTTP/2's preface counts as a head. Closes slowloris
    /// connections that trickle a head and never finish it.
    pub header_read_timeout: Duration,
    /// How long a connection may stay open with no request in flight and nothing sent
    /// (between keep-alive requests, or an HTTP/2 connection with no open stream). Streaming
    /// responses are requests in flight: an open SSE stream is never idle, and costs no timer.
    pub idle_timeout: Duration,
    /// How long a client may take to send a whole request body, from the moment its head is
    /// in: past it, the request gets 408 and the connection closes.
    pub body_read_timeout: Duration,
    /// The most TCP connections open at once, of any kind; a connection accepted over it is
    /// closed at once. [`serve`](crate::serve) lowers it to stay under the process's
    /// open-file limit, so that descriptors stay free for the store and for `/healthz` once
    /// the hostile connections time out.
    pub max_open_connections: usize,
    /// The most HTTP/2 streams open at once on one connection (announced in the connection's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`; a stream over it is refused with `REFUSED_STREAM`).
    /// Each SSE stream is one, so this bounds what one connection holds as `limits.
    /// max_open_connections` bounds the connections.
    pub max_concurrent_streams: u32,
    /// How long a TLS client may take to finish its handshake, from the accept: past it the
    /// connection closes (a client that opens TLS connections and never finishes them).
    pub tls_handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 16 << 10,
            max_headers: 64,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
            max_open_connections: 20_000,
            max_concurrent_streams: 100,
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// hyper's read buffer limit, which is its head limit too: `max_head_bytes`, and never
    /// under hyper's minimum (which [`validate`](Limits::validate) enforces).
    pub(crate) fn hyper_buf_size(&self) -> usize {
        self.max_head_bytes.max(HYPER_MIN_BUF)
    }

    /// Checks values that parse but make no sense; the message names the field.
    ///
    /// # Errors
    ///
    /// A zero where at least one is needed.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            (
                self.max_head_bytes < HYPER_MIN_BUF,
                "max_head_bytes must be at least 8192",
            ),
            (self.max_headers == 0, "max_headers must be at least 1"),
            (
                self.header_read_timeout.is_zero(),
                "header_read_timeout_ms must be at least 1",
            ),
            (
                self.idle_timeout.is_zero(),
                "idle_timeout_ms must be at least 1",
            ),
            (
                self.body_read_timeout.is_zero(),
                "body_read_timeout_ms must be at least 1",
            ),
            (
                self.max_open_connections == 0,
                "max_open_connections must be at least 1",
            ),
            (
                self.max_concurrent_streams == 0,
                "max_concurrent_streams must be at least 1",
            ),
            (
                self.tls_handshake_timeout.is_zero(),
                "tls_handshake_timeout_ms must be at least 1",
            ),
        ];
        match checks.iter().find(|(bad, _)| *bad) {
            Some((_, message)) => Err(format!("limits.{message}")),
            None => Ok(()),
        }
    }
}
