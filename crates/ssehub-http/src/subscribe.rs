//! `GET /topics/{topic}` and `GET /subscribe?topic=…`: the SSE streams.
//!
//! Each response starts with a `retry:` frame whose value has random jitter, so that after a
//! hub restart clients do not all come back in the same millisecond, then streams what the
//! core [`Subscription`] yields (gap notice, replay, live). Where to start is read from the
//! `Last-Event-ID` header first (what a browser sends when it reconnects, so it is the
//! newest), then the `lastEventId` / `lastEventID` parameter (what a page passes on its first
//! connection).
//!
//! With `snapshot=true`, a stream that does not resume from a known id (none given, or one
//! that expired or is unknown, after its gap notice) starts with the newest retained event of
//! every key of its topics, in id order, then goes live: [`Hub::subscribe_with_snapshot`].
//!
//! [`Hub::subscribe_with_snapshot`]: ssehub_core::Hub::subscribe_with_snapshot
//!
//! [`OpenStream`] builds every SSE response of the hub, ours and Mercure's (`mercure.rs`).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::Either;
use ssehub_core::{Pattern, Resume, Selector, SubscribeError, Subscription};

use crate::AppState;
use crate::auth::{Grant, Role};
use crate::error::{ApiError, Reason};
use crate::query::Query;

const RESUME_PARAMS: [&str; 2] = ["lastEventId", "lastEventID"];
/// The token parameter (EventSource cannot send an Authorization header).
const TOKEN_PARAM: &str = "authorization";
/// Start with the snapshot of the topics' keys.
const SNAPSHOT_PARAM: &str = "snapshot";

pub(crate) async fn topic(
    State(app): State<AppState>,
    Path(topic): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let known = [
        RESUME_PARAMS[0],
        RESUME_PARAMS[1],
        TOKEN_PARAM,
        SNAPSHOT_PARAM,
    ];
    let result = match Query::parse(raw.as_deref(), &known) {
        Ok(query) => stream(&app, &[topic.as_str()], &query, &headers).await,
        Err(e) => Err(e),
    };
    app.respond(result)
}

pub(crate) async fn many(
    State(app): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let known = [
        "topic",
        RESUME_PARAMS[0],
        RESUME_PARAMS[1],
        TOKEN_PARAM,
        SNAPSHOT_PARAM,
    ];
    let result = match Query::parse(raw.as_deref(), &known) {
        Ok(query) => {
            let topics: Vec<&str> = query.all("topic").collect();
            stream(&app, &topics, &query, &headers).await
        }
        Err(e) => Err(e),
    };
    app.respond(result)
}

async fn stream(
    app: &AppState,
    topics: &[&str],
    query: &Query,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let selector = selector(topics, app.config.max_topics_per_subscription)?;
    let mut grant = app.auth.check(Role::Subscribe, headers, query)?;
    let one_answer = crate::relay::holder_access(&selector, &mut grant);
    let resume = resolve(app, last_event_id(headers, query).as_deref()).await?;
    let snapshot = query
        .get(SNAPSHOT_PARAM)
        .is_some_and(|v| v != "false" && v != "0");
    let mut open = OpenStream::open(app, selector, &resume, &grant, snapshot)?;
    if one_answer {
        open = open.until_relay_end();
    }
    Ok(open.into_response(app, &grant, HeaderMap::new(), ()))
}

/// Where a stream starts, from a `Last-Event-ID`: a publisher's id is looked up in the store's
/// index ([`Hub::resolve`](ssehub_core::Hub::resolve)), so that it resumes as a hub id does.
/// Decided after the request's checks and before the subscription opens. An id no publisher
/// could have given (a hub id, or one over `limits.max_id_bytes`) is not looked up: a
/// client's header alone never makes the hub query its store with a large key.
///
/// # Errors
///
/// 503 when the store cannot be asked.
pub(crate) async fn resolve(
    app: &AppState,
    last_event_id: Option<&str>,
) -> Result<Resume, ApiError> {
    let resume = Resume::from_last_event_id(last_event_id);
    if let Resume::After(id) = &resume
        && ssehub_core::check_publisher_id(id, app.config.max_id_bytes).is_err()
    {
        return Ok(resume);
    }
    app.hub.resolve(resume).await.map_err(|error| {
        tracing::warn!(%error, "a publisher id could not be looked up");
        ApiError::new(
            Reason::StoreUnavailable,
            format!("the event store could not be read: {error}"),
        )
    })
}

/// Where a stream starts: the `Last-Event-ID` header (what a browser sends when it
/// reconnects, so the newest), else the `lastEventId` / `lastEventID` parameter.
pub(crate) fn last_event_id(headers: &HeaderMap, query: &Query) -> Option<String> {
    match headers.get("last-event-id") {
        Some(value) => Some(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        None => RESUME_PARAMS
            .iter()
            .find_map(|p| query.get(p))
            .map(str::to_string),
    }
}

/// A hub subscription counted against the connection limit, not yet turned into a response.
/// Shared by every SSE endpoint (ours and Mercure's), which may look at the subscription
/// (its gap notice) before answering.
pub(crate) struct OpenStream {
    subscription: Subscription,
    guard: ConnectionGuard,
    /// A relayed answer's stream ends after its `ssehub-end` event (`relay.rs`), so that
    /// clients stop there instead of reconnecting.
    until_relay_end: bool,
}

impl OpenStream {
    /// Subscribes to `selector` from `resume`, with the private access `grant` gives; with
    /// `snapshot`, a start that is not a resume reads the snapshot of the keys first.
    ///
    /// # Errors
    ///
    /// 503 when the hub holds as many streams as allowed, or is shutting down.
    pub(crate) fn open(
        app: &AppState,
        selector: Selector,
        resume: &Resume,
        grant: &Grant,
        snapshot: bool,
    ) -> Result<Self, ApiError> {
        let guard = ConnectionGuard::acquire(&app.metrics.connections, app.config.max_connections)
            .ok_or_else(|| {
                ApiError::new(
                    Reason::OverConnectionLimit,
                    "the hub holds as many streams as it is allowed to; retry later",
                )
            })?;
        let subscription = app
            .hub
            .subscribe_with_snapshot(selector, resume, grant.subscribe.clone(), snapshot)
            .map_err(|e| match e {
                SubscribeError::ShuttingDown => ApiError::new(
                    Reason::ShuttingDown,
                    "the hub is shutting down; retry later",
                ),
            })?;
        Ok(OpenStream {
            subscription,
            guard,
            until_relay_end: false,
        })
    }

    /// The same stream, ending after a relayed answer's `ssehub-end` event.
    pub(crate) fn until_relay_end(mut self) -> Self {
        self.until_relay_end = true;
        self
    }

    /// The subscription, before anything was sent.
    pub(crate) fn subscription(&self) -> &Subscription {
        &self.subscription
    }

    /// The SSE response: a `retry:` frame with jitter, then the subscription, until the client
    /// goes away or `grant`'s token expires. `extra` headers are added to ours (and replace
    /// them when they have the same name); `hold` lives as long as the stream (an RAII guard).
    pub(crate) fn into_response(
        self,
        app: &AppState,
        grant: &Grant,
        extra: HeaderMap,
        hold: impl Send + Sync + 'static,
    ) -> Response {
        let OpenStream {
            subscription,
            guard,
            until_relay_end,
        } = self;
        // For a connection layer that writes the body itself: the fan-out's fast path.
        let direct = subscription.direct_handle();
        let retry =
            ssehub_wire::retry_frame(app.config.retry_ms + jitter(app.config.retry_jitter_ms));
        // A subscription ends when its token expires (the client reconnects with a fresh one).
        // Without an expiry there is no timer at all: one per connection would cost memory and
        // a poll per chunk for nothing.
        let expired = match grant.time_left() {
            Some(left) => Either::Left(tokio::time::sleep(
                left.min(Duration::from_secs(100 * 365 * 86_400)),
            )),
            None => Either::Right(std::future::pending::<()>()),
        };
        let chunks = futures_util::stream::once(async move { retry })
            .chain(subscription)
            .take_until(expired);
        // A relayed answer's stream ends right after the chunk that holds its end (`scan`
        // would wait for one more chunk first: up to a heartbeat interval). Other streams are
        // left as they are.
        let chunks = if until_relay_end {
            Either::Left(futures_util::stream::unfold(
                (Box::pin(chunks), false),
                |(mut chunks, ended)| async move {
                    if ended {
                        return None;
                    }
                    let chunk: Bytes = chunks.next().await?;
                    let ended = crate::relay::holds_end(&chunk);
                    Some((chunk, (chunks, ended)))
                },
            ))
        } else {
            Either::Right(chunks)
        };
        let body = chunks.map(move |chunk: Bytes| {
            // The guards live as long as the body: dropped when the client goes away.
            let _ = (&guard, &hold);
            Ok::<_, Infallible>(chunk)
        });
        let mut response = sse_response(Body::from_stream(body));
        // A relayed answer's end is found in the body's chunks (above), so its events must
        // all go through the body: no fast path for it.
        if let Some(direct) = direct.filter(|_| !until_relay_end) {
            response.extensions_mut().insert(direct);
        }
        let h = response.headers_mut();
        for (name, value) in extra {
            if let Some(name) = name {
                h.insert(name, value);
            }
        }
        response
    }
}

/// A `200` response streaming `body` with the headers of every SSE stream of the hub: the
/// type, no caching, and no buffering by a proxy (nginx reads `X-Accel-Buffering`).
pub(crate) fn sse_response(body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Validates the requested topics and patterns into one selector.
fn selector(topics: &[&str], max: usize) -> Result<Selector, ApiError> {
    if topics.is_empty() {
        return Err(ApiError::new(
            Reason::InvalidTopic,
            "give at least one topic: /subscribe?topic=NAME",
        ));
    }
    if topics.len() > max {
        return Err(ApiError::new(
            Reason::TooManyTopics,
            format!("at most {max} topics per subscription"),
        ));
    }
    let patterns = topics
        .iter()
        .map(|t| {
            Pattern::new(t)
                .map_err(|e| ApiError::new(Reason::InvalidTopic, format!("topic {t:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Selector::new(patterns).map_err(|e| ApiError::new(Reason::InvalidTopic, e.to_string()))
}

fn jitter(max_ms: u64) -> u64 {
    if max_ms == 0 {
        0
    } else {
        rand::random_range(0..=max_ms)
    }
}

/// One open stream, counted against the limit for as long as it lives.
struct ConnectionGuard(Arc<AtomicU64>);

impl ConnectionGuard {
    fn acquire(count: &Arc<AtomicU64>, max: usize) -> Option<Self> {
        let max = max as u64;
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| ConnectionGuard(count.clone()))
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
