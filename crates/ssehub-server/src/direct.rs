//! The first request of a connection, answered without hyper when it is a plain `GET`.
//!
//! hyper keeps an 8 KiB read buffer and an 8 KiB write buffer per connection for the whole
//! life of the connection, which is most of what an idle SSE stream would cost. Almost every
//! SSE connection carries exactly one request — a `GET` whose answer never ends — so the
//! first request of each connection is read here, with a buffer that is freed once the head
//! is parsed, and when it is a plain `GET` (no body, no upgrade, HTTP/1.x) the router is
//! called directly and its response written straight to the socket: each body chunk in one
//! vectored write, with nothing kept between chunks but the socket and the body.
//!
//! Anything else — another method, a body, `Expect`, an upgrade, HTTP/2's preface, a head
//! that does not parse, is larger than `max_head_bytes` or has more than `max_headers` fields
//! — goes to hyper with the bytes read so far, as if this module did not exist. hyper has the
//! same limits (see `Limits`), so it answers 431 to a head too large here, at once: the bytes
//! handed over are already over its limit. [`parse_head`] makes the decision; a differential
//! test holds it to hyper's verdict. After a response written here, a keep-alive connection also goes to
//! hyper, with whatever the client sent after the first request.
//!
//! Responses are framed like hyper frames them: `content-length` when the body's size is
//! known, else `transfer-encoding: chunked` (or, for HTTP/1.0, the end of the connection);
//! a `date` header; `connection: close` when the connection ends after the response. While
//! a body streams, the socket is watched for the client going away, which drops the body
//! (and with it the subscription), as hyper does. What the client sends meanwhile is kept for
//! hyper (a pipelined request), up to `max_head_bytes`; past that the connection will close
//! after the response, and further bytes are read and dropped, so a client that goes away is
//! still seen at once. A connection that sends no complete request head within
//! `header_read_timeout` of the accept is closed (the only timer, and only until the head is
//! in).

use axum::body::{Body, HttpBody as _};
use axum::http::{self, HeaderValue, Method, Request, Response, StatusCode, Version, header};
use bytes::{Bytes, BytesMut};
use futures_util::FutureExt as _;
use http_body_util::BodyExt as _;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::{Limits, Shared};

mod sink;

use sink::SocketSink;

/// At most this many reads of what the client sends (512 bytes each) per wake-up of a
/// streaming response.
const READS_PER_WAKE: u32 = 32;
/// Chunks up to this size (framing included) are sent from one stack buffer.
const SMALL_WRITE: usize = 2048;

/// What became of the first request.
pub(crate) enum First {
    /// Answered here; the connection stays open for hyper, which gets `rest` (what the
    /// client sent after the first request) first.
    KeepAlive { rest: Bytes, stream: TcpStream },
    /// Not for this module: hyper gets the connection, with what was read so far.
    /// `since` is when the connection was accepted: its head's time counts from there.
    Hyper {
        read: Bytes,
        since: Instant,
        stream: TcpStream,
    },
    /// The connection is over: answered and closed, closed by the client, failed, or the
    /// server is draining.
    Closed,
    /// The first request head did not arrive within `header_read_timeout`: closed.
    TimedOut,
}

/// Reads the first request; answers it when it is a plain `GET`.
pub(crate) async fn serve_first(
    mut stream: TcpStream,
    shared: &Shared,
    drain: &mut watch::Receiver<bool>,
) -> First {
    // Boxed: reading the head and calling the router take more room than streaming the
    // body, and only for a moment; the connection's own state stays as small as the latter.
    let answer = Box::pin(respond(&mut stream, shared, drain)).await;
    let (mut writer, mut keep_alive, mut rest) = match answer {
        Ok(answer) => answer,
        Err(Refused::Hyper { read, since }) => {
            return First::Hyper {
                read,
                since,
                stream,
            };
        }
        Err(Refused::Closed) => return First::Closed,
        Err(Refused::TimedOut) => return First::TimedOut,
    };
    // Shared with the fan-out while the body streams (the fast path, `sink.rs`).
    let stream = Arc::new(stream);
    writer.offer_sink(&stream);
    let max_rest = shared.limits.max_head_bytes;
    let result = writer
        .run(&stream, &mut keep_alive, &mut rest, max_rest)
        .await;
    // The writer closed its sink when it ended: this is the only handle left.
    let Ok(mut stream) = Arc::try_unwrap(stream) else {
        return First::Closed;
    };
    match result {
        Ok(()) if keep_alive && !*drain.borrow() => First::KeepAlive {
            rest: rest.freeze(),
            stream,
        },
        Ok(()) => {
            let _ = stream.shutdown().await;
            First::Closed
        }
        Err(_) => First::Closed,
    }
}

/// A first request [`respond`] did not answer.
enum Refused {
    /// Not for this module: hyper gets the connection, with what was read so far.
    Hyper { read: Bytes, since: Instant },
    /// The connection is over.
    Closed,
    /// No head within `header_read_timeout`.
    TimedOut,
}

/// Reads the first request head; when it is a plain `GET`, calls the router and returns the
/// response to send, whether the connection may stay open, and what followed the head.
async fn respond(
    stream: &mut TcpStream,
    shared: &Shared,
    drain: &mut watch::Receiver<bool>,
) -> Result<(ResponseWriter, bool, BytesMut), Refused> {
    let limits = &shared.limits;
    // Here, in the boxed future, not in the connection's: it is not needed once streaming.
    let since = Instant::now();
    let head = tokio::select! {
        head = tokio::time::timeout(limits.header_read_timeout, read_head(stream, limits)) => {
            match head {
                Ok(Ok(head)) => head,
                Ok(Err(_)) => return Err(Refused::Closed),
                Err(_) => {
                    // The shared metrics are one pointer away; only here are they needed.
                    return Err(Refused::TimedOut);
                }
            }
        }
        _ = drain.wait_for(|drain| *drain) => return Err(Refused::Closed),
    };
    let (request, rest, mut keep_alive) = match head {
        Head::Request {
            request,
            rest,
            keep_alive,
        } => (request, rest, keep_alive),
        Head::Other(read) => return Err(Refused::Hyper { read, since }),
        Head::TooLarge => {
            shared.metrics.record_head_too_large();
            let _ = stream.write_all(&too_large()).await;
            let _ = stream.shutdown().await;
            return Err(Refused::Closed);
        }
        Head::Closed => return Err(Refused::Closed),
    };
    let version = request.version();
    let response = match shared.app.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let writer = ResponseWriter::new(response, version, &mut keep_alive);
    Ok((writer, keep_alive, BytesMut::from(&rest[..])))
}

/// A parsed first request head.
#[expect(
    clippy::large_enum_variant,
    reason = "lives for a moment, in a boxed future; the request is what it is for"
)]
enum Head {
    /// A plain `GET`, for the router; `rest` is what followed its head.
    Request {
        request: Request<Body>,
        rest: Bytes,
        keep_alive: bool,
    },
    /// For hyper: everything read so far.
    Other(Bytes),
    /// Over `max_head_bytes` or `max_headers`: answered 431 here.
    TooLarge,
    /// The client closed the connection before sending a request.
    Closed,
}

/// Reads until a complete request head, a head that is not ours, or the end.
async fn read_head(stream: &mut TcpStream, limits: &Limits) -> std::io::Result<Head> {
    let mut buf = BytesMut::new();
    loop {
        buf.reserve(1024);
        if stream.read_buf(&mut buf).await? == 0 {
            // A partial head and then the end: nothing to answer.
            return Ok(Head::Closed);
        }
        match parse_head(&buf, limits) {
            HeadVerdict::Partial => {}
            HeadVerdict::Hyper => return Ok(Head::Other(buf.freeze())),
            HeadVerdict::TooLarge => return Ok(Head::TooLarge),
            HeadVerdict::Get {
                request,
                len,
                keep_alive,
            } => {
                // A copy (usually empty): a part of `buf` would keep all of it alive for as
                // long as the connection.
                let rest = Bytes::copy_from_slice(&buf[len..]);
                return Ok(Head::Request {
                    request,
                    rest,
                    keep_alive,
                });
            }
        }
    }
}

/// What the direct path makes of the bytes a connection sent first ([`parse_head`]).
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "a return value, consumed at once"
)]
pub enum HeadVerdict {
    /// Not a whole head yet, and still within `max_head_bytes`: read more.
    Partial,
    /// Not for the direct path: hyper gets the connection and what was read (and answers
    /// 400 to a head that does not parse).
    Hyper,
    /// Over `max_head_bytes` or `max_headers`: 431, and the connection closes. Answered here
    /// rather than by hyper, which waits for the end of a head before it counts its fields
    /// (a slowloris could hold it until the header timeout).
    TooLarge,
    /// A plain `GET`, answered directly.
    Get {
        /// The request, for the router.
        request: Request<Body>,
        /// The length of its head in `buf`; what follows is the next request's.
        len: usize,
        /// Whether the connection may stay open after the response.
        keep_alive: bool,
    },
}

/// The direct path's parser: decides what becomes of the first bytes of a connection. A
/// `GET` with no body, upgrade or expectation, in origin form, over HTTP/1.x, whose head is
/// within `limits` (`max_head_bytes`, `max_headers`) becomes a request for the router;
/// anything else goes to hyper. Public for the fuzz target and the differential test, which
/// holds every `Get` it returns to what hyper would have made of the same bytes.
pub fn parse_head(buf: &[u8], limits: &Limits) -> HeadVerdict {
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut head = httparse::Request::new(&mut headers);
    let len = match head.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= limits.max_head_bytes => len,
        Ok(httparse::Status::Partial) if buf.len() < limits.max_head_bytes => {
            return HeadVerdict::Partial;
        }
        Ok(_) | Err(httparse::Error::TooManyHeaders) => return HeadVerdict::TooLarge,
        Err(_) => return HeadVerdict::Hyper,
    };
    let (Some("GET"), Some(path), Some(minor)) = (head.method, head.path, head.version) else {
        return HeadVerdict::Hyper;
    };
    if !path.starts_with('/') {
        return HeadVerdict::Hyper;
    }
    let Ok(uri) = http::Uri::try_from(path) else {
        return HeadVerdict::Hyper;
    };
    let mut request = Request::new(Body::empty());
    *request.method_mut() = Method::GET;
    *request.uri_mut() = uri;
    *request.version_mut() = if minor == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let mut keep_alive = minor == 1;
    let map = request.headers_mut();
    for h in head.headers.iter() {
        let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return HeadVerdict::Hyper;
        };
        // One `content-length: 0` is no body; anything else (hyper merges repeated ones) is
        // hyper's to judge.
        if name == header::CONTENT_LENGTH && (h.value != b"0" || map.contains_key(&name))
            || name == header::TRANSFER_ENCODING
            || name == header::UPGRADE
            || name == header::EXPECT
        {
            return HeadVerdict::Hyper;
        }
        if name == header::CONNECTION && has_token(h.value, "close") {
            keep_alive = false;
        }
        map.append(name, value);
    }
    HeadVerdict::Get {
        request,
        len,
        keep_alive,
    }
}

/// Whether a comma-separated header value holds `token` (ASCII case-insensitive).
fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// How the body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body at all (204, 304).
    None,
    /// `content-length`.
    Length,
    /// `transfer-encoding: chunked`.
    Chunked,
    /// Until the connection closes (HTTP/1.0).
    Close,
}

/// Bytes on their way to the socket: a chunk-size line, data, and a line end.
#[derive(Debug)]
struct Pending {
    line: [u8; 20],
    line_len: u8,
    data: Bytes,
    crlf: bool,
    /// How much of the three is written already.
    written: usize,
}

impl Pending {
    /// `data` as is.
    fn raw(data: Bytes) -> Self {
        Pending {
            line: [0; 20],
            line_len: 0,
            data,
            crlf: false,
            written: 0,
        }
    }

    /// `data` framed as `framing` says.
    fn chunk(data: Bytes, framing: Framing) -> Self {
        let mut pending = Pending::raw(data);
        if framing == Framing::Chunked {
            pending.line_len = chunk_size_line(pending.data.len(), &mut pending.line) as u8;
            pending.crlf = true;
        }
        pending
    }

    fn parts(&self) -> [&[u8]; 3] {
        let crlf: &[u8] = if self.crlf { b"\r\n" } else { b"" };
        [&self.line[..usize::from(self.line_len)], &self.data, crlf]
    }

    fn is_done(&self) -> bool {
        self.written >= self.parts().iter().map(|p| p.len()).sum()
    }

    /// Writes as much as the socket takes, in one system call, waiting for the socket to be
    /// writable.
    fn poll_write(
        &mut self,
        stream: &TcpStream,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            ready!(stream.poll_write_ready(cx))?;
            match self.try_write(stream) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
        }
    }

    /// Writes as much as the socket takes, in one non-blocking system call (none when tokio
    /// already knows the socket is not writable): `WouldBlock` when it takes nothing.
    fn try_write(&mut self, stream: &TcpStream) -> std::io::Result<()> {
        let [line, data, crlf] = self.parts();
        let len = line.len() + data.len() + crlf.len();
        let written = if self.written == 0 && len <= SMALL_WRITE {
            // A typical event: framed into one contiguous buffer on the stack and sent with
            // `send`, which costs the kernel less than `writev` of three pieces (no iovec
            // import, no file-position lock). The copy is of a few hundred bytes at most.
            let mut buf = [0u8; SMALL_WRITE];
            buf[..line.len()].copy_from_slice(line);
            buf[line.len()..line.len() + data.len()].copy_from_slice(data);
            buf[line.len() + data.len()..len].copy_from_slice(crlf);
            stream.try_io(tokio::io::Interest::WRITABLE, || {
                rustix::net::send(stream, &buf[..len], rustix::net::SendFlags::NOSIGNAL)
                    .map_err(std::io::Error::from)
            })?
        } else {
            let mut skip = self.written;
            let mut slices = [IoSlice::new(&[]); 3];
            let mut count = 0;
            for part in self.parts() {
                if skip >= part.len() {
                    skip -= part.len();
                    continue;
                }
                slices[count] = IoSlice::new(&part[skip..]);
                skip = 0;
                count += 1;
            }
            stream.try_write_vectored(&slices[..count])?
        };
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        self.written += written;
        Ok(())
    }
}

/// A response on its way out: the head (with the first bytes of the body when they were
/// ready at once), then the body's chunks as they come. Hand-written rather than an `async`
/// block so that a streaming connection holds only this: the body, at most one chunk being
/// written, and a few flags.
struct ResponseWriter {
    body: Body,
    framing: Framing,
    pending: Option<Pending>,
    ended: bool,
    /// The client sent more than a request head meanwhile: its bytes are dropped.
    discarding: bool,
    /// An SSE stream's handle for the fast path, until [`ResponseWriter::offer_sink`].
    direct: Option<ssehub_http::DirectHandle>,
    /// The socket as the fan-out writes to it while this sleeps (`sink.rs`).
    sink: Option<Arc<SocketSink>>,
}

impl Drop for ResponseWriter {
    fn drop(&mut self) {
        if let Some(sink) = &self.sink {
            sink.close();
        }
    }
}

impl ResponseWriter {
    /// Frames `response` for a request of `version`; clears `keep_alive` when the
    /// connection must end after it.
    fn new(response: Response<Body>, version: Version, keep_alive: &mut bool) -> Self {
        let (mut parts, mut body) = response.into_parts();
        let direct = parts.extensions.remove::<ssehub_http::DirectHandle>();
        let status = parts.status;
        let length = body.size_hint().exact();
        let framing = if status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || status.is_informational()
        {
            Framing::None
        } else if length.is_some() {
            Framing::Length
        } else if version == Version::HTTP_11 {
            Framing::Chunked
        } else {
            Framing::Close
        };
        if framing == Framing::Close {
            *keep_alive = false;
        }

        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(b"HTTP/1.1 ");
        head.extend_from_slice(status.as_str().as_bytes());
        head.push(b' ');
        head.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
        head.extend_from_slice(b"\r\n");
        for (name, value) in &parts.headers {
            if name == header::CONTENT_LENGTH
                || name == header::TRANSFER_ENCODING
                || name == header::CONNECTION
            {
                continue;
            }
            push_header(&mut head, name.as_str(), value.as_bytes());
        }
        if !parts.headers.contains_key(header::DATE) {
            let date = httpdate::fmt_http_date(std::time::SystemTime::now());
            push_header(&mut head, "date", date.as_bytes());
        }
        match framing {
            Framing::Length => {
                let n = length.unwrap_or(0).to_string();
                push_header(&mut head, "content-length", n.as_bytes());
            }
            Framing::Chunked => push_header(&mut head, "transfer-encoding", b"chunked"),
            Framing::None | Framing::Close => {}
        }
        if !*keep_alive {
            push_header(&mut head, "connection", b"close");
        }
        head.extend_from_slice(b"\r\n");

        // The head goes out with whatever the body has ready at once (an SSE stream's
        // `retry:`, a whole small body).
        let mut ended = framing == Framing::None;
        if !ended {
            match body.frame().now_or_never() {
                None => {}
                Some(None) => ended = true,
                Some(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        let chunk = Pending::chunk(data, framing);
                        for part in chunk.parts() {
                            head.extend_from_slice(part);
                        }
                    }
                }
                Some(Some(Err(error))) => {
                    // Answer what was framed so far, then end the connection.
                    tracing::debug!(%error, "response body failed");
                    *keep_alive = false;
                    ended = true;
                }
            }
        }
        if ended && framing == Framing::Chunked {
            head.extend_from_slice(b"0\r\n\r\n");
        }
        ResponseWriter {
            body,
            framing,
            pending: Some(Pending::raw(Bytes::from(head))),
            ended,
            discarding: false,
            direct,
            sink: None,
        }
    }

    /// Lets the fan-out write to `stream` while this waits for the body (the idle-writable
    /// fast path), when the body is an SSE stream that offers it and is framed the way a
    /// [`SocketSink`] frames (chunked, or until the connection closes).
    fn offer_sink(&mut self, stream: &Arc<TcpStream>) {
        let Some(direct) = self.direct.take() else {
            return;
        };
        if self.ended || !matches!(self.framing, Framing::Chunked | Framing::Close) {
            return;
        }
        let sink = Arc::new(SocketSink::new(stream.clone(), self.framing));
        direct.install(sink.clone());
        self.sink = Some(sink);
    }

    /// Writes everything; clears `keep_alive` when the connection must end. What the client
    /// sends meanwhile goes to `rest`.
    ///
    /// Past `max_rest` bytes, what the client sends is read and dropped (and the connection
    /// closes after the response): reading never stops, so a client that goes away is seen at
    /// once even on a stream that writes nothing.
    async fn run(
        mut self,
        stream: &TcpStream,
        keep_alive: &mut bool,
        rest: &mut BytesMut,
        max_rest: usize,
    ) -> std::io::Result<()> {
        std::future::poll_fn(|cx| self.poll(stream, cx, keep_alive, rest, max_rest)).await
    }

    fn poll(
        &mut self,
        stream: &TcpStream,
        cx: &mut Context<'_>,
        keep_alive: &mut bool,
        rest: &mut BytesMut,
        max_rest: usize,
    ) -> Poll<std::io::Result<()>> {
        // The client: gone, or sending something (a pipelined request)? Looked at once per
        // wake-up, not once per chunk: the readiness waker is registered either way, so a
        // client that goes away mid-stream wakes this task.
        let mut budget = READS_PER_WAKE;
        while stream.poll_read_ready(cx)?.is_ready() {
            if budget == 0 {
                // A client that sends without pause gets no more than its share of this
                // thread: the rest is read on the next turn.
                cx.waker().wake_by_ref();
                break;
            }
            budget -= 1;
            if !read_aside(stream, rest) {
                // Gone: drop the body (and its subscription).
                *keep_alive = false;
                return Poll::Ready(Ok(()));
            }
            if rest.len() > max_rest || self.discarding {
                // More than a request head: no request of ours. Keep reading (to see the
                // client go), keep nothing, close after the response.
                self.discarding = true;
                *keep_alive = false;
                rest.clear();
            }
        }
        loop {
            if let Some(sink) = &self.sink {
                // What the fan-out could not finish goes out before anything of ours: it is
                // older than any chunk the body hands over from now on.
                ready!(sink.poll_flush(stream, cx))?;
            }
            if let Some(pending) = &mut self.pending {
                ready!(pending.poll_write(stream, cx))?;
                if pending.is_done() {
                    self.pending = None;
                }
                continue;
            }
            if self.ended {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                None => {
                    self.ended = true;
                    if self.framing == Framing::Chunked {
                        self.pending = Some(Pending::raw(Bytes::from_static(b"0\r\n\r\n")));
                    }
                }
                Some(Ok(frame)) => {
                    // Trailers are not sent; an empty chunk would end a chunked body.
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        self.pending = Some(Pending::chunk(data, self.framing));
                    }
                }
                Some(Err(error)) => {
                    // Nothing can tell the client in band: end the connection without the
                    // final chunk, so that it sees an incomplete response.
                    tracing::debug!(%error, "response body failed");
                    *keep_alive = false;
                    return Poll::Ready(Err(std::io::Error::other(error)));
                }
            }
        }
    }
}

/// The answer to a head over the limits: 431, with the JSON error body every refusal has.
fn too_large() -> Vec<u8> {
    let body = serde_json::json!({
        "error": ssehub_http::Reason::HeadTooLarge.as_str(),
        "message": "the request head is too large or has too many fields",
    })
    .to_string();
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    format!(
        "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n\
         content-length: {}\r\ndate: {date}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn push_header(head: &mut Vec<u8>, name: &str, value: &[u8]) {
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// The chunk-size line of a chunk of `len` bytes, in `out`; returns its length.
fn chunk_size_line(len: usize, out: &mut [u8; 20]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1) as usize;
    for (i, slot) in out[..digits].iter_mut().enumerate() {
        *slot = HEX[(len >> (4 * (digits - 1 - i))) & 0xf];
    }
    out[digits] = b'\r';
    out[digits + 1] = b'\n';
    digits + 2
}

/// Reads what the client sent while its response streams into `rest`; false when the client
/// closed the connection (or it failed).
fn read_aside(stream: &TcpStream, rest: &mut BytesMut) -> bool {
    let mut buf = [0u8; 512];
    match stream.try_read(&mut buf) {
        Ok(0) => false,
        Ok(n) => {
            rest.extend_from_slice(&buf[..n]);
            true
        }
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_lines_are_lowercase_hex() {
        let mut out = [0u8; 20];
        for (len, want) in [
            (0usize, "0\r\n"),
            (1, "1\r\n"),
            (15, "f\r\n"),
            (16, "10\r\n"),
            (4096, "1000\r\n"),
            (0xabcdef, "abcdef\r\n"),
        ] {
            let n = chunk_size_line(len, &mut out);
            assert_eq!(std::str::from_utf8(&out[..n]).unwrap(), want, "{len}");
        }
    }

    fn parse(raw: &[u8]) -> HeadVerdict {
        parse_head(raw, &Limits::default())
    }

    fn get(raw: &str) -> Option<(Request<Body>, usize, bool)> {
        match parse(raw.as_bytes()) {
            HeadVerdict::Get {
                request,
                len,
                keep_alive,
            } => Some((request, len, keep_alive)),
            _ => None,
        }
    }

    #[test]
    fn plain_gets_are_taken() {
        let raw = "GET /topics/a?lastEventId=x HTTP/1.1\r\nHost: h\r\nAccept: text/event-stream\r\n\r\nGET /next";
        let (request, len, keep_alive) = get(raw).unwrap();
        assert_eq!(request.uri(), "/topics/a?lastEventId=x");
        assert_eq!(request.headers()["accept"], "text/event-stream");
        assert_eq!(&raw[len..], "GET /next");
        assert!(keep_alive);
        let (_, _, keep_alive) = get("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").unwrap();
        assert!(!keep_alive);
        let (request, _, keep_alive) = get("GET / HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(request.version(), Version::HTTP_10);
        assert!(!keep_alive);
        assert!(get("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").is_some());
    }

    #[test]
    fn heads_over_the_limits_are_too_large() {
        let limits = Limits::default();
        let big = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(limits.max_head_bytes)
        );
        assert!(matches!(parse(big.as_bytes()), HeadVerdict::TooLarge));
        // Incomplete and already at the limit.
        assert!(matches!(
            parse(&big.as_bytes()[..limits.max_head_bytes]),
            HeadVerdict::TooLarge
        ));
        let many: String = (0..=limits.max_headers)
            .map(|i| format!("h{i}: v\r\n"))
            .collect();
        let head = format!("GET / HTTP/1.1\r\n{many}");
        assert!(matches!(parse(head.as_bytes()), HeadVerdict::TooLarge));
        let fits: String = (1..limits.max_headers)
            .map(|i| format!("h{i}: v\r\n"))
            .collect();
        assert!(get(&format!("GET / HTTP/1.1\r\n{fits}\r\n")).is_some());
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        for raw in [
            "POST /topics/a HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
            "HEAD / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            "GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET http://h/ HTTP/1.1\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        ] {
            assert!(
                matches!(parse(raw.as_bytes()), HeadVerdict::Hyper),
                "{raw:?}"
            );
        }
        assert!(matches!(
            parse(b"GET /topics/a HTTP/1.1\r\nHost: h\r\n"),
            HeadVerdict::Partial
        ));
    }
}
