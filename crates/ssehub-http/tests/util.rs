//! The router in process: [`TestApp`] builds `ssehub_http::router` over a [`MemoryStore`] and
//! sends each request with `tower::ServiceExt::oneshot` — no socket, no process. SSE bodies
//! are read frame by frame with `http-body-util` and parsed with `ssehub-wire`.
//!
//! The API follows the process tests' `TestHub` and reqwest (`app.post(path).bearer_auth(t)
//! .body(b).send()`), so a case reads the same at either layer.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use ssehub_core::{Hub, HubConfig, MemoryStore, Retention};
use ssehub_http::{AppState, AuthConfig, HttpConfig, router};
use ssehub_wire::{Frame, MessageEvent, Parser};
use tower::ServiceExt;

/// The `Host` every request carries unless it sets one: what a client of a hub listening on
/// 127.0.0.1:8080 sends (the `Origin` checks compare against it).
pub(crate) const HOST: &str = "127.0.0.1:8080";

/// A hub and its router, in this process.
pub(crate) struct TestApp {
    router: Router,
}

impl TestApp {
    /// A development hub: default settings, anonymous publishing and subscribing.
    pub(crate) fn new() -> TestApp {
        TestApp::with_config(HttpConfig::default())
    }

    /// A development hub (anonymous publishing and subscribing) with `config`.
    pub(crate) fn with_config(config: HttpConfig) -> TestApp {
        TestApp::with(config, AuthConfig::default())
    }

    /// A hub with `config` and `auth`, over a default in-memory history.
    pub(crate) fn with(config: HttpConfig, auth: AuthConfig) -> TestApp {
        TestApp::with_retention(config, auth, Retention::default())
    }

    /// A hub with `config` and `auth` whose history keeps at most `retention`.
    pub(crate) fn with_retention(
        config: HttpConfig,
        auth: AuthConfig,
        retention: Retention,
    ) -> TestApp {
        let hub = Hub::new(Arc::new(MemoryStore::new(retention)), HubConfig::default());
        TestApp::with_state(AppState::new(hub, config).with_auth(auth))
    }

    /// A hub with the router of `state`.
    pub(crate) fn with_state(state: AppState) -> TestApp {
        let router = router(state).expect("valid CORS origins");
        TestApp { router }
    }

    /// A request to `path` (with its query), sent by [`Req::send`].
    pub(crate) fn request(&self, method: Method, path: &str) -> Req {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static(HOST));
        Req {
            router: self.router.clone(),
            method,
            path: path.to_string(),
            headers,
            body: Vec::new(),
        }
    }

    /// `GET path`.
    pub(crate) fn get(&self, path: &str) -> Req {
        self.request(Method::GET, path)
    }

    /// `POST path`.
    pub(crate) fn post(&self, path: &str) -> Req {
        self.request(Method::POST, path)
    }

    /// Publishes one event anonymously; returns its id.
    pub(crate) async fn publish(&self, topic: &str, data: &str) -> String {
        let response = self
            .post(&format!("/topics/{topic}"))
            .body(data)
            .send()
            .await;
        assert_eq!(response.status(), 200, "publish to {topic}");
        response.json().await["id"].as_str().unwrap().to_string()
    }

    /// The value of one line of `GET /metrics`, e.g. `ssehub_connections`.
    pub(crate) async fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics").send().await.text().await;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
            .parse()
            .unwrap()
    }

    /// Waits until metric `name` is `want` (fails after 10 s): the condition a test needs,
    /// instead of a sleep.
    pub(crate) async fn metric_reaches(&self, name: &str, want: f64) {
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while self.metric(name).await != want {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "{name} is not {want} after 10 s");
    }

    /// Opens an SSE stream at `path`, with `Last-Event-ID` if given; panics unless it is 200.
    pub(crate) async fn subscribe(&self, path: &str, last_event_id: Option<&str>) -> Sse {
        let mut request = self.get(path);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await;
        assert_eq!(response.status(), 200, "{path}");
        response.sse()
    }
}

/// A request being built.
pub(crate) struct Req {
    router: Router,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Req {
    /// Adds a header (a second one of the same name is appended).
    pub(crate) fn header(mut self, name: &str, value: impl AsRef<str>) -> Req {
        self.headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value.as_ref()).unwrap(),
        );
        self
    }

    /// `Authorization: Bearer <token>`.
    pub(crate) fn bearer_auth(self, token: &str) -> Req {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// The body.
    pub(crate) fn body(mut self, body: impl Into<Vec<u8>>) -> Req {
        self.body = body.into();
        self
    }

    /// `value` as a JSON body.
    pub(crate) fn json(self, value: &serde_json::Value) -> Req {
        self.header("content-type", "application/json")
            .body(value.to_string())
    }

    /// Sends it through the router.
    pub(crate) async fn send(self) -> Res {
        let mut request = Request::builder()
            .method(self.method)
            .uri(&self.path)
            .body(Body::from(self.body))
            .unwrap();
        *request.headers_mut() = self.headers;
        let response = self.router.oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        Res {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }
}

/// A response, its body unread.
pub(crate) struct Res {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
}

impl Res {
    /// The status.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The whole body as text.
    pub(crate) async fn text(self) -> String {
        let bytes = self.body.collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// The whole body as JSON.
    pub(crate) async fn json(self) -> serde_json::Value {
        let text = self.text().await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// The body as an SSE stream.
    pub(crate) fn sse(self) -> Sse {
        Sse {
            headers: self.headers,
            body: self.body,
            parser: Parser::new(),
            ended: false,
        }
    }
}

/// An open SSE stream, parsed with our own parser.
pub(crate) struct Sse {
    /// The response headers.
    pub(crate) headers: HeaderMap,
    body: Body,
    /// The parser, with what it has read (the `retry:` value, the last id).
    pub(crate) parser: Parser,
    /// The body has ended.
    pub(crate) ended: bool,
}

impl Sse {
    /// The next `n` events (fails after 10 s without one).
    pub(crate) async fn take(&mut self, n: usize) -> Vec<MessageEvent> {
        let mut out = Vec::new();
        while out.len() < n {
            assert!(
                self.read_into(&mut out, Duration::from_secs(10)).await,
                "bytes arrive within 10 s"
            );
            assert!(
                !self.ended || out.len() >= n,
                "stream ended after {} events",
                out.len()
            );
        }
        out
    }

    /// Reads until the stream ends (fails after `limit` without a frame).
    pub(crate) async fn until_end(&mut self, limit: Duration) -> Vec<MessageEvent> {
        let mut out = Vec::new();
        while !self.ended {
            assert!(
                self.read_into(&mut out, limit).await,
                "bytes arrive within {limit:?}"
            );
        }
        out
    }

    /// Asserts that no event arrives for `quiet`.
    pub(crate) async fn nothing_for(&mut self, quiet: Duration) {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + quiet;
        while !self.ended {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || !self.read_into(&mut out, left).await {
                break;
            }
        }
        assert!(out.is_empty(), "unexpected events {out:?}");
    }

    /// Reads one frame of the body; false when none arrived within `limit`.
    async fn read_into(&mut self, out: &mut Vec<MessageEvent>, limit: Duration) -> bool {
        let Ok(frame) = tokio::time::timeout(limit, self.body.frame()).await else {
            return false;
        };
        match frame {
            Some(Ok(frame)) => {
                if let Ok(bytes) = frame.into_data() {
                    self.parser.feed(&bytes);
                    while let Some(frame) = self.parser.next() {
                        if let Frame::Event(e) = frame.unwrap() {
                            out.push(e);
                        }
                    }
                }
            }
            Some(Err(_)) | None => {
                self.parser.end_body();
                self.ended = true;
            }
        }
        true
    }
}

/// The data of `events`.
pub(crate) fn data(events: &[MessageEvent]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}

/// The sequence number in an ssehub id (`<log>-<seq>`).
pub(crate) fn seq(id: &str) -> u64 {
    id.rsplit_once('-').unwrap().1.parse().unwrap()
}
