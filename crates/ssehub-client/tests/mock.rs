//! A scriptable SSE server for the client tests, and the helpers every test module uses.
//!
//! The server is a tokio `TcpListener` on `127.0.0.1:0` that speaks raw HTTP/1.1: a test
//! writes the exact bytes of each response, so it can send anything a real server (or a broken
//! proxy) might — any status line, a missing or bogus `Content-Type`, a 301 without `Location`,
//! a body cut in the middle of an event or of a chunk, a close without the final blank line,
//! delays between writes.
//!
//! - One [`Script`] per incoming connection, in order. Connections past the end of the list
//!   get [`Script::fallback`]: the request is read and the connection held open, unanswered,
//!   so a client that should have stopped shows up as an extra connection in the log.
//! - Every response says `Connection: close` and the connection is closed after it, so one
//!   connection carries exactly one request (the client can never reuse a pooled connection
//!   and skip a script).
//! - Every connection is logged ([`Conn`]): when it was accepted, the request (method, path,
//!   headers with their raw bytes, body), when the script finished, and when the client closed
//!   its side (watched while the script sleeps or holds).
//! - Bounded in time: accepting, reading a request, writing and holding all have timeouts, and
//!   the server task (with every connection task) is aborted when the [`Mock`] is dropped at the
//!   end of the test.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ssehub_client::{Backoff, Builder, Error, Event, EventSource, MessageEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The longest any single wait in a test may take before the test fails. Generous on purpose:
/// it only bounds hangs, it never decides a pass.
pub(crate) const LIMIT: Duration = Duration::from_secs(10);

/// How long a test watches for something that must *not* happen (another connection, another
/// item).
pub(crate) const QUIET: Duration = Duration::from_millis(300);

/// One thing the server does on a connection, after reading the request.
#[derive(Debug, Clone)]
enum Step {
    /// Write these bytes (a whole response head, a body piece, a chunk, anything).
    Write(Vec<u8>),
    /// Wait, noticing if the client closes the connection meanwhile.
    Sleep(Duration),
    /// Keep the connection open until the client closes it (or [`LIMIT`] × 3).
    Hold,
}

/// What the server does on one connection.
#[derive(Debug, Clone)]
pub(crate) struct Script {
    read_request: bool,
    steps: Vec<Step>,
}

impl Script {
    /// Reads the request, then does nothing until steps are added (the connection is closed
    /// after the last step).
    pub(crate) fn new() -> Self {
        Script {
            read_request: true,
            steps: Vec::new(),
        }
    }

    /// Closes the connection as soon as it is accepted, without reading the request or
    /// answering: a server that is up but failing.
    pub(crate) fn slam() -> Self {
        Script {
            read_request: false,
            steps: Vec::new(),
        }
    }

    /// What connections beyond the scripted ones get: read the request, answer nothing, hold.
    pub(crate) fn fallback() -> Self {
        Script::new().hold()
    }

    /// A response head: the status line, these headers, `Connection: close`, the blank line.
    pub(crate) fn head(self, status: u16, headers: &[(&str, &str)]) -> Self {
        let mut head = format!("HTTP/1.1 {status} Scripted\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("Connection: close\r\n\r\n");
        self.write(head)
    }

    /// A `200` head with `Content-Type: text/event-stream` (the body is close-delimited).
    pub(crate) fn sse_head(self) -> Self {
        self.head(200, &[("Content-Type", "text/event-stream")])
    }

    /// A `200` head with `Transfer-Encoding: chunked`; write the body with [`Script::chunk`].
    pub(crate) fn chunked_sse_head(self) -> Self {
        self.head(
            200,
            &[
                ("Content-Type", "text/event-stream"),
                ("Transfer-Encoding", "chunked"),
            ],
        )
    }

    /// A complete event-stream response with this body, then a clean close.
    pub(crate) fn sse(body: impl AsRef<[u8]>) -> Self {
        Script::new().sse_head().write(body)
    }

    /// An event-stream head and this body, then the connection stays open.
    pub(crate) fn sse_hold(body: impl AsRef<[u8]>) -> Self {
        Script::sse(body).hold()
    }

    /// Raw bytes.
    pub(crate) fn write(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.steps.push(Step::Write(bytes.as_ref().to_vec()));
        self
    }

    /// One chunk of a chunked body (`size CRLF data CRLF`).
    pub(crate) fn chunk(self, data: impl AsRef<[u8]>) -> Self {
        let data = data.as_ref();
        let mut bytes = format!("{:x}\r\n", data.len()).into_bytes();
        bytes.extend_from_slice(data);
        bytes.extend_from_slice(b"\r\n");
        self.write(bytes)
    }

    /// A pause.
    pub(crate) fn sleep(mut self, ms: u64) -> Self {
        self.steps.push(Step::Sleep(Duration::from_millis(ms)));
        self
    }

    /// Keeps the connection open until the client closes it.
    pub(crate) fn hold(mut self) -> Self {
        self.steps.push(Step::Hold);
        self
    }
}

/// A request as the server read it.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    /// Names lowercased, values as the raw bytes on the wire, in order.
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    /// Every value of header `name`.
    pub(crate) fn all(&self, name: &str) -> Vec<&[u8]> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    /// The only value of header `name` (panics when it is missing or repeated).
    pub(crate) fn one(&self, name: &str) -> &[u8] {
        match self.all(name).as_slice() {
            [one] => one,
            other => panic!("expected one {name} header, got {other:?} in {self:?}"),
        }
    }

    /// The only value of header `name` as text.
    pub(crate) fn text(&self, name: &str) -> &str {
        std::str::from_utf8(self.one(name)).expect("header is not UTF-8")
    }

    /// Whether header `name` is absent.
    pub(crate) fn lacks(&self, name: &str) -> bool {
        self.all(name).is_empty()
    }
}

/// The log of one connection.
#[derive(Debug, Clone)]
pub(crate) struct Conn {
    pub(crate) accepted: Instant,
    pub(crate) request: Option<Request>,
    /// When the script ran to its end and the server closed the connection.
    pub(crate) finished: Option<Instant>,
    /// When the server noticed the client had closed the connection.
    pub(crate) peer_closed: Option<Instant>,
}

type Log = Arc<Mutex<Vec<Conn>>>;

/// The running server; dropping it stops it.
pub(crate) struct Mock {
    addr: SocketAddr,
    log: Log,
    task: JoinHandle<()>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Mock {
    /// Starts a server that answers the n-th connection with `scripts[n]`.
    pub(crate) async fn start(scripts: Vec<Script>) -> Mock {
        Mock::start_with(|_| scripts).await
    }

    /// Starts a server whose scripts need its own URL (`http://127.0.0.1:PORT`), for absolute
    /// `Location`s.
    pub(crate) async fn start_with(scripts: impl FnOnce(&str) -> Vec<Script>) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let scripts = scripts(&format!("http://{addr}"));
        let log = Log::default();
        let task = tokio::spawn(accept_loop(listener, scripts, log.clone()));
        Mock { addr, log, task }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The connections so far.
    pub(crate) fn conns(&self) -> Vec<Conn> {
        self.log.lock().unwrap().clone()
    }

    /// How many connections were accepted so far.
    pub(crate) fn connections(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// Waits until `n` connections were accepted.
    pub(crate) async fn wait_connections(&self, n: usize) -> Vec<Conn> {
        self.wait(&format!("{n} connections"), |log| log.len() >= n)
            .await
    }

    /// Waits until the request of connection `i` (0-based) has been read, and returns it.
    pub(crate) async fn request(&self, i: usize) -> Request {
        let log = self
            .wait(&format!("request {i}"), |log| {
                log.get(i).is_some_and(|c| c.request.is_some())
            })
            .await;
        log[i].request.clone().unwrap()
    }

    /// Waits until the client has closed connection `i`.
    pub(crate) async fn wait_peer_closed(&self, i: usize) -> Instant {
        let log = self
            .wait(&format!("the client to close connection {i}"), |log| {
                log.get(i).is_some_and(|c| c.peer_closed.is_some())
            })
            .await;
        log[i].peer_closed.unwrap()
    }

    /// Waits until the server has finished the script of connection `i`.
    pub(crate) async fn wait_finished(&self, i: usize) -> Instant {
        let log = self
            .wait(&format!("the script of connection {i} to finish"), |log| {
                log.get(i).is_some_and(|c| c.finished.is_some())
            })
            .await;
        log[i].finished.unwrap()
    }

    /// Watches for [`QUIET`] and asserts that the number of connections is exactly `n`
    /// throughout.
    pub(crate) async fn assert_connections_stay(&self, n: usize) {
        assert_eq!(self.connections(), n, "connections before waiting");
        tokio::time::sleep(QUIET).await;
        assert_eq!(
            self.connections(),
            n,
            "the client connected again: {:#?}",
            self.conns()
        );
    }

    async fn wait(&self, what: &str, done: impl Fn(&[Conn]) -> bool) -> Vec<Conn> {
        let deadline = Instant::now() + LIMIT;
        loop {
            {
                let log = self.log.lock().unwrap();
                if done(&log) {
                    return log.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {:#?}",
                self.conns()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn accept_loop(listener: TcpListener, scripts: Vec<Script>, log: Log) {
    let mut scripts = scripts.into_iter();
    let mut tasks = JoinSet::new();
    // Each accept is bounded; a test never lasts this long, and the task is aborted with the
    // Mock anyway.
    while let Ok(Ok((stream, _))) = tokio::time::timeout(LIMIT * 6, listener.accept()).await {
        let index = {
            let mut log = log.lock().unwrap();
            log.push(Conn {
                accepted: Instant::now(),
                request: None,
                finished: None,
                peer_closed: None,
            });
            log.len() - 1
        };
        let script = scripts.next().unwrap_or_else(Script::fallback);
        tasks.spawn(serve(stream, script, log.clone(), index));
        while tasks.try_join_next().is_some() {}
    }
}

async fn serve(mut stream: TcpStream, script: Script, log: Log, index: usize) {
    let _ = stream.set_nodelay(true);
    let mark = |f: fn(&mut Conn)| f(&mut log.lock().unwrap()[index]);
    if !script.read_request {
        mark(|c| c.finished = Some(Instant::now()));
        return; // drops the stream: closed without a word
    }
    let request = match tokio::time::timeout(LIMIT, read_request(&mut stream)).await {
        Ok(Some(request)) => request,
        _ => {
            mark(|c| c.peer_closed = Some(Instant::now()));
            return;
        }
    };
    log.lock().unwrap()[index].request = Some(request);
    for step in script.steps {
        let closed = match step {
            Step::Write(bytes) => !matches!(
                tokio::time::timeout(LIMIT, stream.write_all(&bytes)).await,
                Ok(Ok(()))
            ),
            Step::Sleep(time) => watch_peer(&mut stream, time).await,
            Step::Hold => watch_peer(&mut stream, LIMIT * 3).await,
        };
        if closed {
            mark(|c| c.peer_closed = Some(Instant::now()));
            return;
        }
    }
    // Marked before the close, so the client cannot see the end of the body earlier.
    mark(|c| c.finished = Some(Instant::now()));
    let _ = tokio::time::timeout(LIMIT, stream.shutdown()).await;
}

/// Waits for `time`, reading and discarding whatever the client sends; `true` when the client
/// closed the connection meanwhile.
async fn watch_peer(stream: &mut TcpStream, time: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + time;
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Reads one request: head up to the blank line, then a `Content-Length` body (the client
/// never sends chunked request bodies).
async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut piece = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        assert!(buf.len() < 1 << 20, "request head too large");
        let n = stream.read(&mut piece).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&piece[..n]);
    };
    // Kept as bytes: the tests check non-ASCII header values byte for byte.
    let head = &buf[..head_end];
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let first = String::from_utf8_lossy(lines.next()?).into_owned();
    let mut first = first.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let mut headers = Vec::new();
    for line in lines {
        let colon = line.iter().position(|&b| b == b':')?;
        let name = String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
        headers.push((name, line[colon + 1..].trim_ascii().to_vec()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| {
            std::str::from_utf8(v).unwrap().trim().parse().unwrap()
        });
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut piece).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&piece[..n]);
    }
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

// ---------------------------------------------------------------------------------------------
// Client-side helpers.

/// A builder for `path` on `mock` with short waits: 20 ms reconnection time, backoff from
/// 20 ms capped at 100 ms.
pub(crate) fn fast(mock: &Mock, path: &str) -> Builder {
    EventSource::builder(mock.url(path))
        .reconnection_time(Duration::from_millis(20))
        .backoff(Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(100),
        })
}

/// The next item; fails the test when the stream ends or nothing comes within [`LIMIT`].
pub(crate) async fn next(es: &mut EventSource) -> Result<Event, Error> {
    match tokio::time::timeout(LIMIT, es.next()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("the stream ended"),
        Err(_) => panic!("no item within {LIMIT:?}"),
    }
}

/// The next item, which must be `Open`; returns its URL.
pub(crate) async fn expect_open(es: &mut EventSource) -> String {
    match next(es).await {
        Ok(Event::Open { url }) => url,
        other => panic!("expected Open, got {other:?}"),
    }
}

/// The next item, which must be a message.
pub(crate) async fn expect_message(es: &mut EventSource) -> MessageEvent {
    match next(es).await {
        Ok(Event::Message(m)) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// The next item, which must be a message with this data and last event id (type `message`).
pub(crate) async fn expect_data(es: &mut EventSource, data: &str, id: &str) {
    let m = expect_message(es).await;
    assert_eq!(
        (
            m.event_type.as_str(),
            m.data.as_str(),
            m.last_event_id.as_str()
        ),
        ("message", data, id),
        "unexpected message"
    );
}

/// The next item, which must be an error.
pub(crate) async fn expect_error(es: &mut EventSource) -> Error {
    match next(es).await {
        Err(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The next item, which must be a non-fatal error: the client is reconnecting.
pub(crate) async fn expect_reconnecting(es: &mut EventSource) -> Error {
    let e = expect_error(es).await;
    assert!(!e.is_fatal(), "expected a non-fatal error, got {e:?}");
    e
}

/// The next item, which must be a fatal error, followed by the end of the stream.
pub(crate) async fn expect_failed(es: &mut EventSource) -> Error {
    let e = expect_error(es).await;
    assert!(e.is_fatal(), "expected a fatal error, got {e:?}");
    expect_end(es).await;
    e
}

/// The stream must end (`None`) within [`LIMIT`].
pub(crate) async fn expect_end(es: &mut EventSource) {
    match tokio::time::timeout(LIMIT, es.next()).await {
        Ok(None) => {}
        Ok(Some(item)) => panic!("expected the end of the stream, got {item:?}"),
        Err(_) => panic!("the stream did not end within {LIMIT:?}"),
    }
}

/// Nothing at all may arrive for [`QUIET`].
pub(crate) async fn expect_silence(es: &mut EventSource) {
    if let Ok(item) = tokio::time::timeout(QUIET, es.next()).await {
        panic!("expected silence, got {item:?}");
    }
}

/// `Open`, then a message with this data and last event id.
pub(crate) async fn expect_open_data(es: &mut EventSource, data: &str, id: &str) {
    expect_open(es).await;
    expect_data(es, data, id).await;
}

/// A reconnect: a non-fatal error, then `Open` again; returns the error.
pub(crate) async fn expect_reopen(es: &mut EventSource) -> Error {
    let e = expect_reconnecting(es).await;
    expect_open(es).await;
    e
}

/// A reconnect ([`expect_reopen`]), then a message with this data and last event id.
pub(crate) async fn expect_reopen_data(es: &mut EventSource, data: &str, id: &str) {
    expect_reopen(es).await;
    expect_data(es, data, id).await;
}

/// One connection running `script` at `/`: `Open`, one message with `data` (no id), then
/// nothing more.
pub(crate) async fn expect_only_message(script: Script, data: &str) {
    let mock = Mock::start(vec![script]).await;
    let mut es = fast(&mock, "/").build();
    expect_open_data(&mut es, data, "").await;
    expect_silence(&mut es).await;
}
