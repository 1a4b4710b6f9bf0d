//! `POST /topics/{topic}` and `POST /publish`: accepting events.
//!
//! Everything is checked before the hub sees it — body size, UTF-8, topic, event type, event
//! id, batch size, unknown fields — so a bad request is refused whole and nothing already
//! stored is touched. The answer comes once the store has the events (as durably as it
//! promises).
//!
//! A publisher may name an event itself (`?id=` on `POST /topics/{topic}`, `"id"` on an item
//! of a `POST /publish` batch, Mercure's `id` field): that id is the event's SSE id and the
//! answer's, and a subscriber resumes from it as from a hub id. An id already used by a
//! retained event gets 409 `id_conflict`, checked by the store in the append itself (two
//! publishes racing with one id: one stored, one refused); a batch is one request, refused
//! whole when one of its ids is taken or used twice in it.
//!
//! A publisher may give an event a key (`?key=`, `"key"`): the event is then its key's newest
//! value in its topics, which snapshots (`?snapshot=true` on the streams) start with. With
//! `delete=true` (`"delete": true`) it is the key's tombstone instead: type `ssehub-delete`,
//! the key as data (the body is dropped), and the key leaves the snapshots. A key that is
//! empty, over `limits.max_key_bytes` or holds CR, LF or NUL gets 400 `invalid_key`.
//!
//! A binary event (`Content-Type: application/octet-stream` on `POST /topics/{topic}`, or a
//! batch item's `"data_base64"`) keeps its bytes exactly, with no UTF-8 check; subscribers get
//! it as base64 with the event type marked ([`ssehub_core::BINARY_SUFFIX`], whose doc says
//! why). A text publish may not use a type ending in that suffix, so the mark is never forged.
//! Every limit counts the event as sent, base64 and all (see [`publish`]).
//!
//! Who may publish is decided from the request head alone — Host, Origin, proxies, the token —
//! before a single byte of the body is read ([`read_body`] comes after those checks): a
//! refused client cannot make the hub hold its body, and with `Expect: 100-continue` it is
//! not even asked to send it.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use ssehub_core::{BINARY_SUFFIX, NewEvent, PublishError, StoreError, Topic};

use crate::AppState;
use crate::auth::{Grant, Role};
use crate::error::{ApiError, BodyTimeout, Reason};
use crate::query::Query;

/// Event types the hub itself sends start with this; publishers may not use it.
pub(crate) const RESERVED_PREFIX: &str = "ssehub-";

#[derive(Serialize)]
struct Published {
    id: String,
}

#[derive(Serialize)]
struct PublishedBatch {
    ids: Vec<String>,
}

/// One element of a `POST /publish` batch.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchItem {
    topic: String,
    /// Text data; exactly one of it and `data_base64`.
    #[serde(default)]
    data: Option<String>,
    /// Binary data as standard base64 (the event is then binary).
    #[serde(default)]
    data_base64: Option<String>,
    #[serde(default)]
    event: Option<String>,
    /// Deliver only to subscribers whose token grants this topic.
    #[serde(default)]
    private: bool,
    /// The publisher's own id for the event.
    #[serde(default)]
    id: Option<String>,
    /// The key the event is the newest value of.
    #[serde(default)]
    key: Option<String>,
    /// The key's tombstone instead (`data` is dropped).
    #[serde(default)]
    delete: bool,
}

pub(crate) async fn one(
    State(app): State<AppState>,
    Path(topic): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut body = Some(body);
    let result = async {
        let query = Query::parse(
            raw.as_deref(),
            &["event", "private", "id", "key", "delete", "authorization"],
        )?;
        let grant = app.auth.check(Role::Publish, &headers, &query)?;
        // The topic is in the head too: a token that does not cover it is refused unread.
        allowed(&grant, &new_event(&topic, "", query.get("event"))?)?;
        let body = read_body(&app, &headers, take(&mut body), Reason::InvalidJson).await?;
        let event = if is_octet_stream(&headers) {
            let mut event = new_event(&topic, "", query.get("event"))?;
            event.binary = Some(body);
            event
        } else {
            let data = std::str::from_utf8(&body).map_err(|e| {
                ApiError::new(
                    Reason::InvalidUtf8,
                    format!(
                        "the body is not valid UTF-8 ({e}); send binary data with Content-Type: application/octet-stream"
                    ),
                )
            })?;
            new_event(&topic, data, query.get("event"))?
        };
        let event = with_id(event, query.get("id"), app.config.max_id_bytes)?;
        let delete = query
            .get("delete")
            .is_some_and(|v| v != "false" && v != "0");
        let mut event = with_key(event, query.get("key"), delete, app.config.max_key_bytes)?;
        event.private = query
            .get("private")
            .is_some_and(|v| v != "false" && v != "0");
        allowed(&grant, &event)?;
        let mut ids = publish(&app, vec![event]).await?;
        Ok(Json(Published { id: ids.remove(0) }).into_response())
    }
    .await;
    drain_unread(&headers, body).await;
    app.respond(result)
}

pub(crate) async fn batch(
    State(app): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut body = Some(body);
    let result = async {
        let query = Query::parse(raw.as_deref(), &["authorization"])?;
        let grant = app.auth.check(Role::Publish, &headers, &query)?;
        let body = read_body(&app, &headers, take(&mut body), Reason::InvalidJson).await?;
        let items: Vec<BatchItem> = serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                Reason::InvalidJson,
                format!(
                    "expected a JSON array of {{\"topic\", \"data\" or \"data_base64\", \"event\"?, \"private\"?, \"id\"?, \"key\"?, \"delete\"?}}: {e}"
                ),
            )
        })?;
        if items.len() > app.config.max_batch_events {
            return Err(ApiError::new(
                Reason::TooManyEvents,
                format!("at most {} events per batch", app.config.max_batch_events),
            ));
        }
        let events = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item_event(item)
                    .and_then(|event| with_id(event, item.id.as_deref(), app.config.max_id_bytes))
                    .and_then(|event| {
                        let max = app.config.max_key_bytes;
                        with_key(event, item.key.as_deref(), item.delete, max)
                    })
                    .and_then(|mut event| {
                        event.private = item.private;
                        allowed(&grant, &event)?;
                        Ok(event)
                    })
                    .map_err(|mut e| {
                        e.message = format!("event {i}: {}", e.message);
                        e
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Refused here rather than by the store, to name the item.
        let mut seen = std::collections::HashSet::new();
        if let Some((i, id)) = events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((i, e.id.as_deref()?)))
            .find(|(_, id)| !seen.insert(*id))
        {
            return Err(ApiError::new(
                Reason::IdConflict,
                format!("event {i}: the id {id:?} is used twice in this batch"),
            ));
        }
        let ids = publish(&app, events).await?;
        Ok(Json(PublishedBatch { ids }).into_response())
    }
    .await;
    drain_unread(&headers, body).await;
    app.respond(result)
}

/// Refuses an event whose topics the token does not all allow.
pub(crate) fn allowed(grant: &Grant, event: &NewEvent) -> Result<(), ApiError> {
    // Only the relay writes its answers (`relay.rs`): a forged event in one would be read as
    // the upstream's.
    if event
        .topics
        .iter()
        .any(|t| t.as_str().starts_with(crate::relay::TOPIC_PREFIX))
    {
        return Err(ApiError::new(
            Reason::Forbidden,
            "relay/… topics are written only by the hub's relays",
        ));
    }
    if grant.may_publish(&event.topics) {
        Ok(())
    } else {
        Err(ApiError::new(
            Reason::Forbidden,
            "the token's mercure.publish selectors do not cover every topic of this event",
        ))
    }
}

/// Gives `event` the publisher's `id`, if any, once checked against the hub's limit
/// (`limits.max_id_bytes`): 400 `invalid_id`. The message quotes at most the id's first 64
/// characters, so that a refused megabyte is not sent back.
pub(crate) fn with_id(
    event: NewEvent,
    id: Option<&str>,
    max_id_bytes: usize,
) -> Result<NewEvent, ApiError> {
    match id {
        None => Ok(event),
        Some(id) => event.with_id(id, max_id_bytes).map_err(|e| {
            let shown: String = id.chars().take(64).collect();
            ApiError::new(Reason::InvalidId, format!("id {shown:?}: {e}"))
        }),
    }
}

/// Gives `event` the publisher's `key`, if any, once checked against `limits.max_key_bytes`
/// (400 `invalid_key`, quoting at most 64 characters of it); with `delete`, makes it the key's
/// tombstone (400 `invalid_key` without a key).
pub(crate) fn with_key(
    event: NewEvent,
    key: Option<&str>,
    delete: bool,
    max_key_bytes: usize,
) -> Result<NewEvent, ApiError> {
    let Some(key) = key else {
        if delete {
            return Err(ApiError::new(
                Reason::InvalidKey,
                "a delete names the key it deletes (?key= or \"key\")",
            ));
        }
        return Ok(event);
    };
    let event = event.with_key(key, max_key_bytes).map_err(|e| {
        let shown: String = key.chars().take(64).collect();
        ApiError::new(Reason::InvalidKey, format!("key {shown:?}: {e}"))
    })?;
    Ok(if delete { event.deleting() } else { event })
}

/// Whether a request's body is binary data: `Content-Type: application/octet-stream` (its
/// essence, in any case, with or without parameters). Any other type, or none, is text.
fn is_octet_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/octet-stream")
        })
}

/// Validates a batch item: its `data` or its `data_base64` (decoded), not both.
fn item_event(item: &BatchItem) -> Result<NewEvent, ApiError> {
    match (&item.data, &item.data_base64) {
        (Some(data), None) => new_event(&item.topic, data, item.event.as_deref()),
        (None, Some(encoded)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| {
                    ApiError::new(
                        Reason::InvalidBase64,
                        format!("data_base64 is not standard base64 (RFC 4648, padded): {e}"),
                    )
                })?;
            let mut event = new_event(&item.topic, "", item.event.as_deref())?;
            event.binary = Some(bytes.into());
            Ok(event)
        }
        _ => Err(ApiError::new(
            Reason::InvalidJson,
            "give exactly one of \"data\" (text) and \"data_base64\" (binary)",
        )),
    }
}

/// Refuses a publisher's event type that ends in [`BINARY_SUFFIX`]: only the hub marks an
/// event binary, so that a subscriber may trust the mark (for a binary event too, since its
/// type gets the suffix added).
pub(crate) fn check_text_type(event: &str) -> Result<(), ApiError> {
    if event.ends_with(BINARY_SUFFIX) {
        return Err(ApiError::new(
            Reason::InvalidEvent,
            format!(
                "event types ending in {BINARY_SUFFIX:?} mark binary events and are given by the hub; publish binary data with Content-Type: application/octet-stream or data_base64"
            ),
        ));
    }
    Ok(())
}

/// Validates one event.
fn new_event(topic: &str, data: &str, event: Option<&str>) -> Result<NewEvent, ApiError> {
    let topic = Topic::new(topic)
        .map_err(|e| ApiError::new(Reason::InvalidTopic, format!("topic {topic:?}: {e}")))?;
    let mut new = NewEvent::new(topic, data);
    if let Some(event) = event {
        if event.starts_with(RESERVED_PREFIX) {
            return Err(ApiError::new(
                Reason::InvalidEvent,
                format!("event types starting with {RESERVED_PREFIX:?} are reserved for the hub"),
            ));
        }
        check_text_type(event)?;
        new = new
            .with_type(event)
            .map_err(|e| ApiError::new(Reason::InvalidEvent, e.to_string()))?;
    }
    Ok(new)
}

/// Hands `events` to the hub; their SSE ids once stored (a publisher's own, else the hub's).
///
/// The body limit applies to what is stored and sent, too: an event whose SSE encoding is
/// larger than `max_body_bytes` is refused with 413, whatever its body's size. Each line
/// break of the data costs a `data: ` prefix, so without this check a 1 MiB body of newlines
/// would become a 7 MiB event, larger than any subscriber's buffer (which the config keeps at
/// least as large as the body limit, so one event of the largest size never overflows it).
/// The same holds for a batch as a whole: fan-out queues all its events to a subscriber at
/// once, and a JSON body's `"\n"` escapes (2 bytes) encode to 7, so a batch under the body
/// limit could still overflow every matching subscriber's buffer. Its encoded total must be
/// within `max_body_bytes` too. A binary event counts as sent, in base64 (4 characters for
/// every 3 bytes): a body of raw bytes can be at most about 3/4 of `max_body_bytes`.
pub(crate) async fn publish(
    app: &AppState,
    events: Vec<NewEvent>,
) -> Result<Vec<String>, ApiError> {
    let max = app.config.max_body_bytes;
    if let Some((i, size)) = events
        .iter()
        .map(NewEvent::encoded_size)
        .enumerate()
        .find(|&(_, size)| size > max)
    {
        return Err(ApiError::new(
            Reason::BodyTooLarge,
            format!(
                "event {i} encodes to {size} bytes of SSE (each line of data gets a \"data: \" prefix, binary data is sent as base64), more than limits.max_body_bytes ({max})"
            ),
        ));
    }
    let total: usize = events.iter().map(NewEvent::encoded_size).sum();
    if total > max {
        return Err(ApiError::new(
            Reason::BodyTooLarge,
            format!(
                "the {} events encode to {total} bytes of SSE in all (each line of data gets a \"data: \" prefix), more than limits.max_body_bytes ({max})",
                events.len()
            ),
        ));
    }
    let mine: Vec<Option<String>> = events.iter().map(|e| e.id.clone()).collect();
    let ids = app.hub.publish(events).await.map_err(|e| match e {
        PublishError::Store(StoreError::IdConflict(id)) => ApiError::new(
            Reason::IdConflict,
            format!(
                "the id {id:?} is already the id of a retained event; give each event its own id"
            ),
        ),
        PublishError::Store(error) => {
            tracing::warn!(%error, "a publish failed in the store");
            ApiError::new(
                Reason::StoreUnavailable,
                format!("the event could not be stored: {error}"),
            )
        }
        PublishError::ShuttingDown => ApiError::new(
            Reason::ShuttingDown,
            "the hub is shutting down; retry later",
        ),
    })?;
    Ok(ids
        .iter()
        .zip(mine)
        .map(|(hub, mine)| mine.unwrap_or_else(|| hub.to_string()))
        .collect())
}

/// The most of an unread body that a refusal reads (and drops) before it is answered.
const DRAIN_MAX_BYTES: u64 = 64 << 10;

/// The body out of its slot, for [`read_body`]; the slot is left empty, so that
/// [`drain_unread`] knows it was read.
pub(crate) fn take(slot: &mut Option<Body>) -> Body {
    slot.take().unwrap_or_default()
}

/// A request refused from its head leaves its body unread, and the connection closes after
/// the answer: a client still sending the body then gets a broken pipe or a reset instead of
/// the answer (a small form POST with a wrong token would see "connection reset", not 401).
/// So a small body (a `Content-Length` of at most 64 KiB) is read and dropped first — nothing
/// is held, and the connection layer's `limits.body_read_timeout_ms` bounds the time. A larger
/// or unannounced body, or one whose client waits for `100 Continue`, is not read: the refusal
/// goes out at once (see the module doc).
pub(crate) async fn drain_unread(headers: &HeaderMap, body: Option<Body>) {
    let Some(body) = body else { return };
    if headers.contains_key(header::EXPECT)
        || content_length(headers).is_none_or(|n| n == 0 || n > DRAIN_MAX_BYTES)
    {
        return;
    }
    let mut stream = body.into_data_stream();
    let mut read = 0;
    while let Some(Ok(chunk)) = stream.next().await {
        read += chunk.len() as u64;
        if read > DRAIN_MAX_BYTES {
            break;
        }
    }
}

/// The `Content-Length` of a request, when it has a valid one.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Reads a request body of at most `limits.max_body_bytes`. Called only once the request
/// head has been accepted (see the module doc). A `Content-Length` over the limit is refused
/// without reading anything; a body that grows past it is refused as soon as it does, without
/// holding more. A body that cannot be read (the client went away mid-way) is refused with
/// `broken`.
pub(crate) async fn read_body(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
    broken: Reason,
) -> Result<Bytes, ApiError> {
    read_body_max(headers, body, app.config.max_body_bytes, broken).await
}

/// [`read_body`] with a limit of `max` bytes (a relay's `max_request_bytes`).
pub(crate) async fn read_body_max(
    headers: &HeaderMap,
    body: Body,
    max: usize,
    broken: Reason,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            Reason::BodyTooLarge,
            format!("the body is larger than the {max} bytes the hub accepts here"),
        )
    };
    if content_length(headers).is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut first: Option<Bytes> = None;
    let mut collected: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            // Not the client's content: the connection layer answers 408 and counts it.
            let reason = if BodyTimeout::caused(&e) {
                Reason::RequestTimeout
            } else {
                broken
            };
            ApiError::new(reason, format!("the body could not be read: {e}"))
        })?;
        let so_far = first.as_ref().map_or(collected.len(), Bytes::len);
        if so_far + chunk.len() > max {
            return Err(too_large());
        }
        // Most bodies arrive in one chunk: keep it as it is, without a copy.
        match &first {
            None if collected.is_empty() => first = Some(chunk),
            _ => {
                if let Some(held) = first.take() {
                    collected.extend_from_slice(&held);
                }
                collected.extend_from_slice(&chunk);
            }
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(collected)))
}
