//! The Mercure protocol (draft-dunglas-mercure-07, what deployed Mercure clients speak) at
//! `/.well-known/mercure`, on the same hub, history and tokens as ssehub's own routes.
//!
//! | route | what |
//! | --- | --- |
//! | `POST /.well-known/mercure` | publish a form (`topic`…, `data`, `private`, `type`, `retry`) → the id, as text |
//! | `GET /.well-known/mercure?topic=SELECTOR…` | subscribe (SSE); `Last-Event-ID` / `lastEventID` resume |
//! | `GET /.well-known/mercure/subscriptions[/{topic}[/{subscriber}]]` | active subscriptions (JSON-LD) |
//!
//! Every response of the hub carries the discovery link, `Link: </.well-known/mercure>;
//! rel="mercure"` ([`discovery_link`]).
//!
//! Where this hub differs from the reference one, within what the draft allows:
//! - an update without an `id` gets the hub's own (`<log>-<seq>`), not a UUID URN; a
//!   publisher's `id` is the event's id and the answer (and a resume point), but the hub
//!   refuses one it cannot keep unique or unambiguous: one already used by a retained event
//!   (409 `id_conflict`), and one that is empty, over `limits.max_id_bytes`, starts with
//!   `#`, holds CR, LF or NUL, is `earliest` or has a hub id's shape (400 `invalid_id`);
//! - a resume from an unknown or expired id gets, besides the `Last-Event-ID: earliest`
//!   response header, ssehub's in-band `ssehub-gap` notice, and event types starting with
//!   `ssehub-` are reserved;
//! - refusals use the draft's status codes (400, 401, 403, 413) with ssehub's JSON error body,
//!   where the Go hub answers 401 to everything forbidden.
//!
//! # Layout
//!
//! - `mercure.rs` — the routes, publishing and subscribing.
//! - `mercure/subscriptions.rs` — active subscriptions: the registry, the subscription events
//!   and the web API.

mod subscriptions;

pub use subscriptions::{MAX_OTHER_STREAMS, SubscriptionDirectory};

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ssehub_core::{NewEvent, Pattern, Selector, Topic, TopicError};

use crate::AppState;
use crate::auth::Role;
use crate::error::{ApiError, Reason};
use crate::query::Query;
use crate::subscribe::{OpenStream, last_event_id};

/// The hub's URL path, fixed by the protocol.
pub(crate) const HUB_PATH: &str = "/.well-known/mercure";
/// The most `topic`s of one update, and of one subscription (the reference hub's limits).
const MAX_TOPICS: usize = 1000;
/// The `Link` header that advertises the hub (discovery).
const LINK: &str = "</.well-known/mercure>; rel=\"mercure\"";

/// What the Mercure handlers share.
#[derive(Clone)]
struct Mercure {
    app: AppState,
    /// The active subscriptions; `None` when the feature is off.
    subscriptions: Option<Arc<subscriptions::ActiveSubscriptions>>,
}

/// The Mercure routes, with their own state, ready to merge into the main router.
pub(crate) fn router<S>(app: AppState) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let subscriptions = app.config.mercure_subscriptions.then(|| {
        let directory = app.subscription_directory.clone();
        Arc::new(subscriptions::ActiveSubscriptions::new(directory))
    });
    let state = Mercure { app, subscriptions };
    Router::new()
        .route(HUB_PATH, get(subscribe).post(publish))
        .route(
            "/.well-known/mercure/subscriptions",
            get(subscriptions::collection),
        )
        .route(
            "/.well-known/mercure/subscriptions/{topic}",
            get(subscriptions::of_topic),
        )
        .route(
            "/.well-known/mercure/subscriptions/{topic}/{subscriber}",
            get(subscriptions::one),
        )
        .with_state(state)
}

/// Adds the discovery link to a response (a layer over the whole router).
pub(crate) async fn discovery_link(mut response: Response) -> Response {
    response
        .headers_mut()
        .append(header::LINK, HeaderValue::from_static(LINK));
    response
}

/// `POST /.well-known/mercure`: one update, as `application/x-www-form-urlencoded`.
async fn publish(
    State(m): State<Mercure>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let app = &m.app;
    let mut body = Some(body);
    let result = async {
        let query = Query::parse_any(raw.as_deref());
        // Decided from the head alone: a refused publisher's body is never held.
        let grant = app.auth.check(Role::Publish, &headers, &query)?;
        let body = crate::publish::take(&mut body);
        let body = crate::publish::read_body(app, &headers, body, Reason::InvalidUtf8).await?;
        let event = update(&body, app.config.max_id_bytes)?;
        crate::publish::allowed(&grant, &event)?;
        let mut ids = crate::publish::publish(app, vec![event]).await?;
        Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            ids.remove(0),
        )
            .into_response())
    }
    .await;
    crate::publish::drain_unread(&headers, body).await;
    app.respond(result)
}

fn invalid_event(message: impl Into<String>) -> ApiError {
    ApiError::new(Reason::InvalidEvent, message)
}

/// Reads and validates the form of an update. Unknown fields are ignored; of a repeated
/// field other than `topic`, the first counts.
fn update(body: &[u8], max_id_bytes: usize) -> Result<NewEvent, ApiError> {
    if std::str::from_utf8(body).is_err() {
        return Err(ApiError::new(
            Reason::InvalidUtf8,
            "the body is not valid UTF-8; send application/x-www-form-urlencoded",
        ));
    }
    let mut topics = Vec::new();
    let (mut data, mut id, mut event_type, mut retry) = (None, None, None, None);
    let mut private = false;
    for (name, value) in form_urlencoded::parse(body) {
        match &*name {
            "topic" => topics.push(value),
            "data" => {
                data.get_or_insert(value);
            }
            "private" => private = true,
            "id" => {
                id.get_or_insert(value);
            }
            "type" => {
                event_type.get_or_insert(value);
            }
            "retry" => {
                retry.get_or_insert(value);
            }
            _ => {}
        }
    }
    if topics.is_empty() {
        return Err(ApiError::new(
            Reason::InvalidTopic,
            "Missing \"topic\" parameter (send the update as application/x-www-form-urlencoded)",
        ));
    }
    if topics.len() > MAX_TOPICS {
        return Err(ApiError::new(
            Reason::TooManyTopics,
            format!("at most {MAX_TOPICS} \"topic\" fields per update"),
        ));
    }
    let topics = topics
        .iter()
        .map(|t| {
            Topic::iri(t)
                .map_err(|e| ApiError::new(Reason::InvalidTopic, format!("topic {t:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(t) = topics.iter().find(|t| t.as_str().contains(HUB_PATH)) {
        return Err(ApiError::new(
            Reason::Forbidden,
            format!("topic {t:?}: topics under {HUB_PATH} are reserved for the hub's own updates"),
        ));
    }
    let event = NewEvent::new(topics[0].clone(), data.unwrap_or_default());
    let mut event = crate::publish::with_id(event, id.as_deref(), max_id_bytes)?;
    event.topics = topics;
    event.private = private;
    if let Some(t) = event_type {
        if t.contains('\0') {
            return Err(invalid_event("the type must not contain NUL"));
        }
        if t.starts_with(crate::publish::RESERVED_PREFIX) {
            return Err(invalid_event(format!(
                "types starting with {:?} are reserved for the hub",
                crate::publish::RESERVED_PREFIX
            )));
        }
        crate::publish::check_text_type(&t).map_err(|e| invalid_event(e.message))?;
        event = event
            .with_type(t)
            .map_err(|e| invalid_event(e.to_string()))?;
    }
    if let Some(retry) = retry.filter(|r| !r.is_empty()) {
        let ms = retry
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| retry.parse::<u64>().ok())
            .flatten()
            .ok_or_else(|| invalid_event("retry must be a number of milliseconds (digits only)"))?;
        event.retry_ms = Some(ms);
    }
    Ok(event)
}

/// `GET /.well-known/mercure?topic=…`: the SSE stream.
async fn subscribe(
    State(m): State<Mercure>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let result = open(&m, raw.as_deref(), &headers).await;
    m.app.respond(result)
}

async fn open(m: &Mercure, raw: Option<&str>, headers: &HeaderMap) -> Result<Response, ApiError> {
    let app = &m.app;
    let query = Query::parse_any(raw);
    let selectors: Vec<&str> = query.all("topic").collect();
    if selectors.is_empty() {
        return Err(ApiError::new(
            Reason::InvalidTopic,
            "Missing \"topic\" parameter: /.well-known/mercure?topic=SELECTOR",
        ));
    }
    let max = MAX_TOPICS.min(app.config.max_topics_per_subscription);
    if selectors.len() > max {
        return Err(ApiError::new(
            Reason::TooManyTopics,
            format!("at most {max} \"topic\" parameters per subscription"),
        ));
    }
    // Each template compiled once for the whole hub, within the limits on one template and
    // the hub's budget for all of them.
    let templates = app.hub.templates();
    let patterns = selectors
        .iter()
        .map(|s| {
            Pattern::mercure_in(s, templates).map_err(|e| {
                let reason = match &e {
                    TopicError::Template(t) if t.is_over_budget() => Reason::OverSelectorBudget,
                    TopicError::Template(_) => Reason::SelectorTooComplex,
                    _ => Reason::InvalidTopic,
                };
                ApiError::new(reason, format!("topic {s:?}: {e}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let selector =
        Selector::new(patterns).map_err(|e| ApiError::new(Reason::InvalidTopic, e.to_string()))?;
    let subscriber = subscriptions::new_subscriber_id();
    if m.subscriptions.is_some() {
        subscriptions::check_selectors(&selector, &subscriber)?;
    }
    let grant = app.auth.check(Role::Subscribe, headers, &query)?;
    let requested = last_event_id(headers, &query).filter(|id| !id.is_empty());
    let resume = crate::subscribe::resolve(app, requested.as_deref()).await?;
    let stream = OpenStream::open(app, selector.clone(), &resume, &grant, false)?;

    let mut extra = HeaderMap::new();
    if requested.is_some() {
        // The id of the event before the first one sent: the requested one when it is known
        // and retained, else `earliest` (asked for, unknown, or expired).
        let preceding = match resume.requested() {
            Some(id) if stream.subscription().gap().is_none() => id,
            _ => "earliest",
        };
        extra.insert(
            "last-event-id",
            HeaderValue::from_str(preceding).unwrap_or(HeaderValue::from_static("earliest")),
        );
    }
    if query.get("authorization").is_some() && !headers.contains_key(header::AUTHORIZATION) {
        // A token in the URL: keep the response out of shared caches (draft-07 §Authorization).
        extra.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        );
    }
    // Subscription updates are private: without subscriber keys no one could receive them.
    let announce_to = app.auth.subscriber.is_some().then_some(&app.hub);
    let registration = m.subscriptions.as_ref().map(|registry| {
        registry.register(announce_to, subscriber, &selector, grant.payload.clone())
    });
    Ok(stream.into_response(app, &grant, extra, registration))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> Result<NewEvent, ApiError> {
        update(body.as_bytes(), ssehub_core::DEFAULT_MAX_ID_BYTES)
    }

    #[test]
    fn updates() {
        let e = form("topic=https%3A%2F%2Fe.com%2Fa&topic=b&data=x%0Ay&private=&type=t&retry=15&id=mine&other=1")
            .unwrap();
        let topics: Vec<&str> = e.topics.iter().map(Topic::as_str).collect();
        assert_eq!(topics, ["https://e.com/a", "b"]);
        assert_eq!(e.data, "x\ny");
        assert!(e.private);
        assert_eq!(e.event_type.as_deref(), Some("t"));
        assert_eq!(e.retry_ms, Some(15));
        assert_eq!(e.id.as_deref(), Some("mine"));
        let e = form("topic=a").unwrap();
        assert!(!e.private && e.data.is_empty() && e.retry_ms.is_none());
    }

    #[test]
    fn refusals() {
        let reason = |body: &str| form(body).unwrap_err().reason;
        assert_eq!(reason("data=x"), Reason::InvalidTopic);
        assert_eq!(reason("topic="), Reason::InvalidTopic);
        assert_eq!(reason("topic=a%0Ab"), Reason::InvalidTopic);
        assert_eq!(reason("topic=a&retry=1s"), Reason::InvalidEvent);
        assert_eq!(reason("topic=a&retry=-1"), Reason::InvalidEvent);
        assert_eq!(
            reason("topic=a&retry=99999999999999999999999"),
            Reason::InvalidEvent
        );
        assert_eq!(reason("topic=a&type=x%0Dy"), Reason::InvalidEvent);
        assert_eq!(reason("topic=a&type=ssehub-gap"), Reason::InvalidEvent);
        for id in [
            "x%0Ay",
            "x%0Dy",
            "x%00",
            "",
            "%23frag",
            "earliest",
            "0000000a-1",
        ] {
            assert_eq!(
                reason(&format!("topic=a&id={id}")),
                Reason::InvalidId,
                "{id}"
            );
        }
        let long = "x".repeat(ssehub_core::DEFAULT_MAX_ID_BYTES + 1);
        assert_eq!(reason(&format!("topic=a&id={long}")), Reason::InvalidId);
        assert_eq!(
            reason("topic=a&topic=%2F.well-known%2Fmercure%2Fsubscriptions%2Fx%2Fy"),
            Reason::Forbidden
        );
        let many = "topic=a&".repeat(MAX_TOPICS + 1);
        assert_eq!(reason(&many), Reason::TooManyTopics);
    }
}
