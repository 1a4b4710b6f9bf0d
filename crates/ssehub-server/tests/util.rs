//! A server on 127.0.0.1:0 with a test router, and raw-socket helpers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, Uri, Version, header};
use axum::routing::{get, post};
use ssehub_http::ConnMetrics;
use ssehub_server::Limits;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A request as the router saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) version: Version,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
}

/// A running server; stopped when dropped.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) metrics: ConnMetrics,
    /// Requests to every path but `/ok`, `/stream` and `/echo`, in order.
    pub(crate) seen: Arc<Mutex<Vec<Seen>>>,
    /// Open `/stream` responses.
    pub(crate) streams: Arc<AtomicUsize>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Lives as long as the response body of `/stream`: counts open streams.
struct StreamGuard(Arc<AtomicUsize>);

impl StreamGuard {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        StreamGuard(count.clone())
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn router(seen: Arc<Mutex<Vec<Seen>>>, streams: Arc<AtomicUsize>) -> Router {
    let record = move |request: Request<Body>| {
        let seen = seen.clone();
        async move {
            let headers = request
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
                .collect();
            seen.lock().unwrap().push(Seen {
                method: request.method().clone(),
                uri: request.uri().clone(),
                version: request.version(),
                headers,
            });
            "recorded"
        }
    };
    Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/stream",
            get(move || {
                let guard = StreamGuard::new(&streams);
                async move {
                    let body = futures_util::stream::unfold(guard, |guard| async move {
                        std::future::pending::<()>().await;
                        Some((Ok::<Bytes, Infallible>(Bytes::new()), guard))
                    });
                    (
                        [(header::CONTENT_TYPE, "text/event-stream")],
                        Body::from_stream(body),
                    )
                }
            }),
        )
        .route("/echo", post(|body: Bytes| async move { body }))
        .fallback(record)
}

impl Server {
    pub(crate) async fn start(limits: Limits) -> Server {
        let tcp = ssehub_server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let metrics = ConnMetrics::default();
        let listener = ssehub_server::Listener::new(tcp, metrics.clone());
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let streams = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = router(seen.clone(), streams.clone());
        tokio::spawn(ssehub_server::serve(listener, app, limits, async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            metrics,
            seen,
            streams,
            _stop: stop,
        }
    }

    pub(crate) async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }

    /// Open `/stream` responses.
    pub(crate) fn open_streams(&self) -> usize {
        self.streams.load(Ordering::SeqCst)
    }
}

/// Short timeouts, so that tests are quick.
pub(crate) fn quick() -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(600),
        body_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    }
}

/// A generous bound for anything that should happen "soon" on a loaded machine.
pub(crate) const SOON: Duration = Duration::from_secs(20);

/// Reads until the server closes the connection (or `within` passes: then `None`); returns
/// everything read.
pub(crate) async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&out).into_owned())
}

/// Reads for `period`; `false` if the server closed the connection meanwhile.
pub(crate) async fn stays_open(stream: &mut TcpStream, period: Duration) -> bool {
    read_to_close(stream, period).await.is_none()
}

/// Reads one whole response with `content-length` framing; returns its head and body.
pub(crate) async fn read_response(stream: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = tokio::time::timeout(SOON, stream.read(&mut chunk))
                    .await
                    .expect("the body in time")
                    .unwrap();
                assert!(n > 0, "closed in a body: {head}");
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).into_owned();
            buf.drain(..end + 4 + length);
            return (head, body);
        }
        let n = tokio::time::timeout(SOON, stream.read(&mut chunk))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The status code of a response head.
pub(crate) fn status(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Writes `bytes`, ignoring a reset (the server may close first).
pub(crate) async fn send(stream: &mut TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes).await;
}

/// Waits until `check` holds, up to [`SOON`].
pub(crate) async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + SOON;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A header map as seen by the router, for comparisons.
pub(crate) fn pairs(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
        .collect()
}
