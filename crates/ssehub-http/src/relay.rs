//! Relays: resumable POST streams in front of any SSE endpoint (an LLM's streamed answer).
//!
//! `ssehub serve --relay /ai=http://127.0.0.1:9000` forwards every request to `/ai/<path>` to
//! `http://127.0.0.1:9000/<path>` with its method, body and headers (minus hop-by-hop ones and
//! `Host`; the caller's `Authorization` goes along, so the upstream decides who may ask).
//!
//! - An answer that is not a 2xx `text/event-stream` passes through unchanged: status, headers
//!   minus hop-by-hop ones, body streamed.
//! - A 2xx `text/event-stream` answer gets a new topic `relay/<capability>`, named in the
//!   response header `SSEHub-Topic`. A task of its own (not the caller's connection) reads the
//!   upstream to its end, parses it with `ssehub-wire`, and publishes each event (its type and
//!   data; the upstream's ids are replaced by the hub's) to that topic; the caller gets them as
//!   a subscriber of the topic, with ids. The answer always ends with an `ssehub-end` event
//!   whose data is `{"reason": "done"}`, or another [`EndReason`] with a `message`.
//! - `GET /topics/relay/<capability>` with `Last-Event-ID` (or `?lastEventId=earliest`)
//!   resumes: the rest of the answer, exactly, while the upstream is still producing and after
//!   it has finished; it also ends after `ssehub-end`.
//!
//! # Why it is safe
//!
//! The capability is 128 bits from the thread-local CSPRNG (`rand::rng`, ChaCha12 seeded from
//! the OS): unguessable, so holding the topic name is the right to read the answer, like a
//! bearer token. Relay events are *private* events: the hub delivers them, live and in replay,
//! only to a subscriber whose access names the topic. The resume `GET` of the exact topic
//! gets that access ([`holder_access`]); a pattern (`relay/*`, `**`, a Mercure template)
//! never does, so pattern subscriptions never see relay answers, except for a subscriber
//! token whose `mercure.subscribe` selectors match `relay/…` (an admin token, which may read
//! every private event anyway). Nobody may publish to `relay/…` (`publish.rs`, `allowed`).
//! The resume `GET` needs the capability, plus whatever any subscribe needs (a token when
//! anonymous subscribing is off); it does not need the caller's original token, which may
//! have expired while the answer was streaming.
//!
//! # Limits (per relay, each in `[[relay]]`)
//!
//! `max_streams` relayed requests at once (503 `over_relay_limit`), `max_duration_secs` for
//! one answer (then `ssehub-end` `max_duration`), `connect_timeout_ms` and `idle_timeout_secs`
//! to the upstream (502/504 before the answer, `ssehub-end` `timeout` during it),
//! `max_answer_bytes` of one upstream answer (`ssehub-end` `too_large`), `max_request_bytes`
//! of a request body (413). Metrics: `ssehub_relay_streams{relay}` (in flight) and
//! `ssehub_relay_ended_total{relay,reason}`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt as _;
use serde::Serialize;
use ssehub_core::{NewEvent, Pattern, Resume, Selector, Topic};
use ssehub_wire::{Frame, Parser};

use crate::AppState;
use crate::auth::Grant;
use crate::error::{ApiError, Reason};
use crate::subscribe::OpenStream;

/// Every relay topic starts with this.
pub const TOPIC_PREFIX: &str = "relay/";
/// The response header that names a relayed answer's topic.
pub const TOPIC_HEADER: &str = "ssehub-topic";
/// The type of the last event of every relayed answer.
pub const END_EVENT: &str = "ssehub-end";

/// The paths a relay prefix may not take: the hub's own routes.
const RESERVED: [&str; 6] = [
    "/topics",
    "/subscribe",
    "/publish",
    "/healthz",
    "/metrics",
    "/.well-known",
];

/// One relay: a path prefix of the hub forwarded to an upstream, and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// The hub's path prefix (`/ai`).
    pub prefix: String,
    /// The upstream's base URL (`http://127.0.0.1:9000`); only `http`.
    pub upstream: String,
    /// The most relayed requests in flight at once (answers still being read included).
    pub max_streams: usize,
    /// The longest one answer may stream.
    pub max_duration: Duration,
    /// The longest a connection to the upstream may take.
    pub connect_timeout: Duration,
    /// The longest the upstream may stay silent: before its answer's head, and between two
    /// chunks of its body.
    pub idle_timeout: Duration,
    /// The most bytes of one upstream answer's body.
    pub max_answer_bytes: u64,
    /// The largest request body forwarded.
    pub max_request_bytes: usize,
}

impl RelayConfig {
    /// A relay of `prefix` to `upstream` with the default limits.
    pub fn new(prefix: impl Into<String>, upstream: impl Into<String>) -> Self {
        RelayConfig {
            prefix: prefix.into(),
            upstream: upstream.into(),
            max_streams: 1000,
            max_duration: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            max_answer_bytes: 16 << 20,
            max_request_bytes: 1 << 20,
        }
    }

    /// Checks the prefix and the upstream URL.
    ///
    /// # Errors
    ///
    /// A message naming what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let p = &self.prefix;
        let fine = p.len() > 1
            && p.starts_with('/')
            && !p.ends_with('/')
            && !p.contains("//")
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
        if !fine {
            return Err(format!(
                "relay prefix {p:?} must be a path like /ai: a leading /, no trailing /, letters, digits and -._~"
            ));
        }
        if RESERVED
            .iter()
            .any(|r| p == r || p.starts_with(&format!("{r}/")))
        {
            return Err(format!(
                "relay prefix {p:?} is one of the hub's routes ({})",
                RESERVED.join(", ")
            ));
        }
        let url = reqwest::Url::parse(&self.upstream)
            .map_err(|e| format!("relay upstream {:?}: {e}", self.upstream))?;
        if url.scheme() != "http" || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "relay upstream {:?} must be an http:// URL without query or fragment",
                self.upstream
            ));
        }
        if self.max_streams == 0 || self.max_answer_bytes == 0 || self.max_request_bytes == 0 {
            return Err(format!(
                "relay {p}: max_streams, max_answer_bytes and max_request_bytes must be at least 1"
            ));
        }
        Ok(())
    }
}

/// Why an answer ended: the `reason` of its `ssehub-end` event and the label of
/// `ssehub_relay_ended_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The upstream ended its answer.
    Done,
    /// The upstream's connection failed mid-answer, or it sent what the hub refuses.
    UpstreamError,
    /// The upstream was silent for `idle_timeout`.
    Timeout,
    /// The answer streamed for `max_duration`.
    MaxDuration,
    /// The answer grew past `max_answer_bytes`, or one event past `limits.max_body_bytes`.
    TooLarge,
}

impl EndReason {
    /// Every reason, for pre-registering metric labels.
    pub const ALL: [EndReason; 5] = [
        EndReason::Done,
        EndReason::UpstreamError,
        EndReason::Timeout,
        EndReason::MaxDuration,
        EndReason::TooLarge,
    ];

    /// The label and JSON reason.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Done => "done",
            EndReason::UpstreamError => "upstream_error",
            EndReason::Timeout => "timeout",
            EndReason::MaxDuration => "max_duration",
            EndReason::TooLarge => "too_large",
        }
    }
}

#[derive(Serialize)]
struct EndData<'a> {
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

/// A hub's relays, found by path prefix ([`intercept`]). Cheap to clone.
#[derive(Clone)]
pub(crate) struct Relays {
    app: AppState,
    list: Arc<[Arc<Relay>]>,
}

impl Relays {
    /// The relays of `state`'s config; `None` when it has none.
    ///
    /// # Errors
    ///
    /// A bad prefix or upstream, two relays whose prefixes overlap, or an HTTP client that
    /// cannot be built.
    pub(crate) fn new(state: &AppState) -> Result<Option<Relays>, String> {
        let mut list: Vec<Arc<Relay>> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for config in &state.config.relays {
            config.validate()?;
            let overlaps = seen
                .iter()
                .any(|other| under(&config.prefix, other) || under(other, &config.prefix));
            if overlaps {
                return Err(format!(
                    "relay prefix {:?} overlaps another relay's",
                    config.prefix
                ));
            }
            seen.insert(&config.prefix);
            state
                .metrics
                .relay_register(&config.prefix, &EndReason::ALL.map(EndReason::as_str));
            let client = reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(config.connect_timeout)
                .read_timeout(config.idle_timeout)
                .build()
                .map_err(|e| {
                    format!("relay {}: cannot build the HTTP client: {e}", config.prefix)
                })?;
            list.push(Arc::new(Relay {
                config: config.clone(),
                client,
                in_flight: Arc::new(AtomicU64::new(0)),
            }));
        }
        Ok((!list.is_empty()).then(|| Relays {
            app: state.clone(),
            list: list.into(),
        }))
    }
}

/// Whether `path` is `prefix` or under it.
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Middleware in front of the routes: a request under a relay's prefix goes to that relay,
/// any other to the routes. Relays are not routes of the router, so no prefix can ever
/// conflict with a route (which axum would only find at start, by panicking); the prefixes of
/// the hub's own routes are refused ([`RelayConfig::validate`]).
pub(crate) async fn intercept(
    State(relays): State<Relays>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let Some(relay) = relays.list.iter().find(|r| under(path, &r.config.prefix)) else {
        return next.run(request).await;
    };
    let result = relay.relay(&relays.app, request).await;
    relays.app.respond(result)
}

/// One configured relay.
struct Relay {
    config: RelayConfig,
    client: reqwest::Client,
    in_flight: Arc<AtomicU64>,
}

impl Relay {
    async fn relay(&self, app: &AppState, request: Request) -> Result<Response, ApiError> {
        let guard = InFlight::acquire(self, app)?;
        let started = tokio::time::Instant::now();
        let (parts, body) = request.into_parts();
        let body = crate::publish::read_body_max(
            &parts.headers,
            body,
            self.config.max_request_bytes,
            Reason::BodyUnreadable,
        )
        .await?;
        let url = self.upstream_url(&parts.uri)?;
        let send = self
            .client
            .request(parts.method, url)
            .headers(forward_headers(&parts.headers))
            .body(body)
            .send();
        let response = match tokio::time::timeout(self.config.idle_timeout, send).await {
            Ok(Ok(response)) => response,
            Err(_) => return Err(gateway_timeout()),
            // Refused, or not connected within `connect_timeout`: unreachable.
            Ok(Err(e)) if e.is_timeout() && !e.is_connect() => return Err(gateway_timeout()),
            Ok(Err(e)) => {
                tracing::debug!(relay = %self.config.prefix, error = %e, "the upstream is unreachable");
                return Err(ApiError::new(
                    Reason::BadGateway,
                    "the relay's upstream could not be reached",
                ));
            }
        };
        if is_event_stream(&response) {
            self.stream(app, response, guard, started)
        } else {
            Ok(self.pass_through(response, guard))
        }
    }

    /// The upstream URL for a request to `uri`: the upstream, then the path after the prefix,
    /// then the query.
    fn upstream_url(&self, uri: &axum::http::Uri) -> Result<reqwest::Url, ApiError> {
        let rest = uri
            .path()
            .strip_prefix(self.config.prefix.as_str())
            .unwrap_or("");
        let mut url = format!("{}{rest}", self.config.upstream.trim_end_matches('/'));
        if let Some(query) = uri.query() {
            url.push('?');
            url.push_str(query);
        }
        reqwest::Url::parse(&url).map_err(|_| {
            ApiError::new(
                Reason::NotFound,
                "this path cannot be forwarded to the relay's upstream",
            )
        })
    }

    /// A non-SSE answer, as the upstream gave it (the in-flight guard lives with the body).
    fn pass_through(&self, upstream: reqwest::Response, guard: InFlight) -> Response {
        let status = upstream.status();
        let headers = without_hop_by_hop(upstream.headers());
        let max = self.config.max_answer_bytes;
        let mut read = 0u64;
        let body = upstream.bytes_stream().map(move |chunk| {
            let _ = &guard;
            let chunk = chunk.map_err(std::io::Error::other)?;
            read += chunk.len() as u64;
            if read > max {
                // Ends the body with an error: the caller sees a cut, not a short answer.
                return Err(std::io::Error::other(
                    "the relayed answer is over max_answer_bytes",
                ));
            }
            Ok(chunk)
        });
        let mut response = Response::new(Body::from_stream(body));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }

    /// An SSE answer: a new relay topic, a task that stores the upstream's events in it, and
    /// the caller as its first subscriber.
    fn stream(
        &self,
        app: &AppState,
        upstream: reqwest::Response,
        guard: InFlight,
        started: tokio::time::Instant,
    ) -> Result<Response, ApiError> {
        let capability = format!("{:032x}", rand::random::<u128>());
        let name = format!("{TOPIC_PREFIX}{capability}");
        let internal = |e: &dyn std::fmt::Display| {
            ApiError::new(Reason::InvalidTopic, format!("relay topic: {e}"))
        };
        let topic = Topic::new(&name).map_err(|e| internal(&e))?;
        let pattern = Pattern::new(&name).map_err(|e| internal(&e))?;
        let access = Selector::new(vec![pattern.clone()]).map_err(|e| internal(&e))?;
        let selector = Selector::new(vec![pattern]).map_err(|e| internal(&e))?;
        let grant = Grant {
            subscribe: Some(access),
            ..Grant::default()
        };
        // Registered before the first event is published: the caller misses nothing.
        let open = OpenStream::open(app, selector, &Resume::Live, &grant, false)?.until_relay_end();
        let pump = Pump {
            app: app.clone(),
            topic,
            relay: self.config.prefix.clone(),
            deadline: started + self.config.max_duration,
            idle: self.config.idle_timeout,
            max_bytes: self.config.max_answer_bytes,
        };
        tokio::spawn(pump.run(upstream, guard));
        let mut extra = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&name) {
            extra.insert(HeaderName::from_static(TOPIC_HEADER), value);
        }
        Ok(open.into_response(app, &grant, extra, ()))
    }
}

fn gateway_timeout() -> ApiError {
    ApiError::new(
        Reason::GatewayTimeout,
        "the relay's upstream did not answer in time",
    )
}

/// Why an answer ended, with a message when not `done`.
type Ended = (EndReason, Option<String>);

/// Reads one upstream answer to its end, whether or not its caller is still there.
struct Pump {
    app: AppState,
    topic: Topic,
    relay: String,
    deadline: tokio::time::Instant,
    idle: Duration,
    max_bytes: u64,
}

impl Pump {
    async fn run(self, upstream: reqwest::Response, guard: InFlight) {
        let (reason, message) = match self.read(upstream).await {
            Ok(never) => match never {},
            Err(end) => end,
        };
        let data = serde_json::to_string(&EndData {
            reason: reason.as_str(),
            message: message.as_deref(),
        })
        .unwrap_or_else(|_| String::from("{}"));
        let end = NewEvent::new(self.topic.clone(), data).with_type(END_EVENT);
        if let Ok(mut end) = end {
            end.private = true;
            if let Err(e) = crate::publish::publish(&self.app, vec![end]).await {
                tracing::warn!(relay = %self.relay, error = %e.message, "the end of a relayed answer could not be stored");
            }
        }
        self.app.metrics.relay_ended(&self.relay, reason.as_str());
        drop(guard);
    }

    /// Stores every event of the answer; why it ended, with a message when not `done`.
    async fn read(&self, upstream: reqwest::Response) -> Result<std::convert::Infallible, Ended> {
        let mut parser = Parser::new();
        let mut body = upstream.bytes_stream();
        let mut read = 0u64;
        loop {
            let next = tokio::time::timeout_at(
                self.deadline,
                tokio::time::timeout(self.idle, body.next()),
            );
            let chunk = match next.await {
                Err(_) => {
                    return Err((
                        EndReason::MaxDuration,
                        Some("the answer streamed for the relay's max_duration_secs".into()),
                    ));
                }
                Ok(Err(_)) => return Err((EndReason::Timeout, Some(silent(self.idle)))),
                Ok(Ok(None)) => return Err((EndReason::Done, None)),
                Ok(Ok(Some(Err(e)))) if e.is_timeout() => {
                    return Err((EndReason::Timeout, Some(silent(self.idle))));
                }
                Ok(Ok(Some(Err(_)))) => {
                    return Err((
                        EndReason::UpstreamError,
                        Some("the upstream's connection failed mid-answer".into()),
                    ));
                }
                Ok(Ok(Some(Ok(chunk)))) => chunk,
            };
            read += chunk.len() as u64;
            if read > self.max_bytes {
                return Err((
                    EndReason::TooLarge,
                    Some(format!(
                        "the answer is larger than the relay's max_answer_bytes ({})",
                        self.max_bytes
                    )),
                ));
            }
            // Stored in batches within the body limit, which `publish` applies to a batch's
            // encoded total too; what came before a refused event is kept.
            let max = self.app.config.max_body_bytes;
            let (mut batch, mut batch_bytes) = (Vec::new(), 0);
            let mut ended = None;
            for frame in parser.feed_iter(&chunk) {
                match self.event(frame) {
                    Ok(Some(event)) => {
                        let size = event.encoded_size();
                        if !batch.is_empty() && batch_bytes + size > max {
                            self.store(std::mem::take(&mut batch)).await?;
                            batch_bytes = 0;
                        }
                        batch.push(event);
                        batch_bytes += size;
                    }
                    Ok(None) => {}
                    Err(end) => {
                        ended = Some(end);
                        break;
                    }
                }
            }
            self.store(batch).await?;
            if let Some(end) = ended {
                return Err(end);
            }
        }
    }

    /// Publishes `events` to the answer's topic.
    async fn store(&self, events: Vec<NewEvent>) -> Result<(), Ended> {
        if events.is_empty() {
            return Ok(());
        }
        crate::publish::publish(&self.app, events)
            .await
            .map(drop)
            .map_err(|e| {
                let reason = if e.reason == Reason::BodyTooLarge {
                    EndReason::TooLarge
                } else {
                    EndReason::UpstreamError
                };
                (reason, Some(e.message))
            })
    }

    /// The event to store for one parsed frame.
    fn event(
        &self,
        frame: Result<Frame, ssehub_wire::ParseError>,
    ) -> Result<Option<NewEvent>, Ended> {
        let event = match frame {
            Ok(Frame::Event(event)) => event,
            Ok(Frame::Comment(_)) => return Ok(None),
            Err(e) => return Err((EndReason::TooLarge, Some(e.to_string()))),
        };
        if event
            .event_type
            .starts_with(crate::publish::RESERVED_PREFIX)
        {
            return Err((
                EndReason::UpstreamError,
                Some(format!(
                    "the upstream sent an event of the reserved type {:?}",
                    event.event_type
                )),
            ));
        }
        let mut new = NewEvent::new(self.topic.clone(), event.data);
        if event.event_type != "message" {
            new = new
                .with_type(event.event_type)
                .map_err(|e| (EndReason::UpstreamError, Some(e.to_string())))?;
        }
        new.private = true;
        Ok(Some(new))
    }
}

fn silent(idle: Duration) -> String {
    format!(
        "the upstream sent nothing for {} s (the relay's idle_timeout_secs)",
        idle.as_secs()
    )
}

/// One relayed request in flight, counted against its relay's `max_streams` and in
/// `ssehub_relay_streams` for as long as it lives: until the upstream's answer is read to its
/// end.
struct InFlight {
    count: Arc<AtomicU64>,
    gauge: prometheus_client::metrics::gauge::Gauge,
}

impl InFlight {
    fn acquire(relay: &Relay, app: &AppState) -> Result<Self, ApiError> {
        let max = relay.config.max_streams as u64;
        relay
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| {
                ApiError::new(
                    Reason::OverRelayLimit,
                    format!(
                        "the relay {} has max_streams ({max}) answers in flight; retry later",
                        relay.config.prefix
                    ),
                )
            })?;
        let gauge = app.metrics.relay_streams(&relay.config.prefix);
        gauge.inc();
        Ok(InFlight {
            count: relay.in_flight.clone(),
            gauge,
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
        self.gauge.dec();
    }
}

/// Whether the upstream answered with a stream of events (a 2xx `text/event-stream`).
fn is_event_stream(response: &reqwest::Response) -> bool {
    response.status().is_success()
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
            })
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), never forwarded.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// `headers` without hop-by-hop fields, nor those the `Connection` header names.
fn without_hop_by_hop(headers: &HeaderMap) -> HeaderMap {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            !HOP_BY_HOP.contains(&name) && !named.iter().any(|n| n == name)
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// The request headers the upstream gets: the caller's, minus hop-by-hop ones, `Host` (the
/// client sets the upstream's), `Content-Length` (the client sets it for the body it sends)
/// and `Accept-Encoding` (the hub must read an event stream as text).
fn forward_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = without_hop_by_hop(headers);
    out.remove(header::HOST);
    out.remove(header::CONTENT_LENGTH);
    out.remove(header::ACCEPT_ENCODING);
    out
}

/// For a subscription to `selector`: adds every exact relay topic it names to `grant`'s
/// private access (holding the name is the right to read it: see the module doc), and says
/// whether the stream is one relay answer, to end after its `ssehub-end`.
pub(crate) fn holder_access(selector: &Selector, grant: &mut Grant) -> bool {
    let held: Vec<Pattern> = selector
        .patterns()
        .iter()
        .filter(|p| p.as_str().starts_with(TOPIC_PREFIX) && p.as_topic().is_some())
        .cloned()
        .collect();
    if held.is_empty() {
        return false;
    }
    let one_answer = held.len() == selector.patterns().len() && held.len() == 1;
    let mut access: Vec<Pattern> = grant
        .subscribe
        .as_ref()
        .map(|s| s.patterns().to_vec())
        .unwrap_or_default();
    access.extend(held);
    if let Ok(access) = Selector::new(access) {
        grant.subscribe = Some(access);
    }
    one_answer
}

/// Whether a chunk of a relay topic's stream holds its `ssehub-end` event. Every line of an
/// encoded event starts with its field name (data lines with `data: `), so the line
/// `event: ssehub-end` is only ever the end event's own.
pub(crate) fn holds_end(chunk: &Bytes) -> bool {
    const LINE: &[u8] = b"event: ssehub-end\n";
    chunk.starts_with(LINE)
        || chunk
            .windows(LINE.len() + 1)
            .any(|w| w[0] == b'\n' && &w[1..] == LINE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let ok = |p: &str| RelayConfig::new(p, "http://127.0.0.1:9000").validate();
        assert!(ok("/ai").is_ok());
        assert!(ok("/v1/chat").is_ok());
        for bad in [
            "/",
            "ai",
            "/ai/",
            "/a//b",
            "/topics",
            "/topics/x",
            "/.well-known",
            "/a{b}",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
        let up = |u: &str| RelayConfig::new("/ai", u).validate();
        assert!(up("http://127.0.0.1:9000/v1").is_ok());
        assert!(up("ftp://x").is_err());
        assert!(up("http://x/?q=1").is_err());
    }

    #[test]
    fn end_marker() {
        assert!(holds_end(&Bytes::from_static(
            b"id: 1-2\nevent: ssehub-end\ndata: {}\n\n"
        )));
        assert!(holds_end(&Bytes::from_static(
            b"event: ssehub-end\ndata: {}\n\n"
        )));
        assert!(!holds_end(&Bytes::from_static(
            b"id: 1-2\ndata: event: ssehub-end\n\n"
        )));
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::HOST, HeaderValue::from_static("hub"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        let out = forward_headers(&h);
        assert_eq!(out.len(), 1);
        assert_eq!(out[header::AUTHORIZATION], "Bearer t");
    }
}
