//! Active subscriptions (draft-07 §Active Subscriptions): who is subscribed to what through
//! the Mercure endpoint, as private updates and as a web API.
//!
//! Every Mercure stream gets a subscriber id (`urn:uuid:…`, random) and is entered in the
//! hub's [`ActiveSubscriptions`] for as long as it lives (a [`Registration`] guard held by the
//! response body). Not to be confused with the core's fan-out index (`Registry`).
//! For each selector of the stream the hub sends a private update on
//! `/.well-known/mercure/subscriptions/{topic}/{subscriber}` (both percent-encoded, as RFC 6570
//! simple expansion does) when the stream opens (`"active": true`) and when it ends
//! (`"active": false`); the second always after the first. A hub without subscriber keys
//! sends none: they are private, so no one could receive them.
//!
//! These updates are delivered live only ([`Hub::publish_live`]): never stored, no id, no
//! replay. Anyone may open and close streams at will, so stored updates would let every
//! anonymous connect write to the durable history, without bound, and evict real events
//! (issue 10, H3); live, each costs a moment of fan-out and nothing after.
//!
//! Consistency of the API with the events: a stream is entered in the registry before its
//! `true` update is sent and removed before its `false` one, both under the hub's fan-out
//! lock. So a client that first subscribes to the subscription updates, then lists the
//! subscriptions, misses no change: one made after the listing reaches its stream, and one
//! made before its stream opened is in the listing (one made in between is seen twice, and
//! the `active` field says which state is current). The collection's `lastEventID` is the
//! hub's last stored event, as the draft requires; subscription updates are not among the
//! events it resumes.
//!
//! # In a cluster
//!
//! With a [`SubscriptionDirectory`] (the binary gives one over Redis), the hubs share their
//! streams: each hub also enters its streams in the directory, and a listing gives this hub's
//! streams (from memory, oldest first) and then the other hubs' (from the directory, at most
//! [`MAX_OTHER_STREAMS`], in no particular order); the updates reach the other hubs' clients
//! through the store's relay of live-only events ([`Hub::publish_live`]). What holds across
//! hubs:
//!
//! - The same rule, as long as the updates arrive: the directory is told of a stream before
//!   its `true` update is published (and of its end before its `false` one), and it promises
//!   ([`SubscriptionDirectory::enter`]) that the other hubs can read the change before they
//!   receive the update. So a listing that misses another hub's stream was read before that
//!   stream's `true` update went out, which then reaches the client's stream (open before the
//!   listing was asked for).
//! - The updates are best effort between hubs: one published while a hub is cut off from the
//!   others (Redis unreachable, a failover) never reaches that hub's clients; a client that
//!   lists again after reconnecting sees the current state.
//! - A hub that dies sends no `false` updates, and its streams stay listed until its records
//!   expire (15 s over Redis: docs/cluster.md).
//! - A listing fails (503 `store_unavailable`) when the directory cannot be read, rather than
//!   leave out the other hubs' streams.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ssehub_core::{BoxFuture, EventId, Hub, MAX_IRI_BYTES, NewEvent, Selector, StoreError, Topic};

use super::{HUB_PATH, Mercure};
use crate::auth::Role;
use crate::error::{ApiError, Reason};
use crate::query::Query;

/// The JSON-LD context of every document.
const CONTEXT: &str = "https://mercure.rocks/";

/// The most streams of other hubs one listing reads (a cluster): their records come from the
/// shared directory page by page, and past this many the rest are left out, so that a
/// listing holds a bounded part of a cluster's streams, however many there are.
pub const MAX_OTHER_STREAMS: usize = 10_000;

/// Where the hubs of a cluster keep their active Mercure streams, so that each lists them
/// all: this hub enters and removes its own, and reads the others'. The binary gives one over
/// Redis (`ssehub-cluster`'s `NodeDirectory`); a hub alone has none, and lists its own only.
/// Records are opaque to it: this module writes and reads them (`Record`, JSON).
pub trait SubscriptionDirectory: Send + Sync + std::fmt::Debug + 'static {
    /// This hub's stream `subscriber` is open, described by `record`. Never waits. The record
    /// must reach the other hubs before any live-only event this hub publishes after this
    /// call (its `active: true` update), so that a client that subscribed to the updates and
    /// then lists misses no stream (see the module doc).
    fn enter(&self, subscriber: &str, record: String);

    /// This hub's stream `subscriber` ended, the same way (before its `active: false`).
    fn leave(&self, subscriber: &str);

    /// The other hubs' records for which `keep` is true, at most `max`, as
    /// `(subscriber, record)`.
    fn others<'a>(
        &'a self,
        keep: &'a (dyn Fn(&str) -> bool + Send + Sync),
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>, StoreError>>;

    /// Another hub's record of `subscriber`, if one has it.
    fn other<'a>(
        &'a self,
        subscriber: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>>;
}

/// A stream as the directory keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    selectors: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload: Option<Value>,
}

impl Record {
    /// A record of the directory, if it is one of this module's (and of `topic`, if given).
    fn parse(text: &str, topic: Option<&str>) -> Option<Record> {
        let record: Record = serde_json::from_str(text).ok()?;
        topic
            .is_none_or(|t| record.selectors.iter().any(|s| s == t))
            .then_some(record)
    }
}

/// The active Mercure subscriptions of this hub, and with a directory, of the others.
#[derive(Debug)]
pub(super) struct ActiveSubscriptions {
    inner: Mutex<Inner>,
    /// The cluster's directory; `None` for a hub alone.
    directory: Option<Arc<dyn SubscriptionDirectory>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Orders the listing (oldest stream first).
    next: u64,
    streams: HashMap<String, Stream>,
}

/// One Mercure stream: its selectors and its token's payload.
#[derive(Debug)]
struct Stream {
    order: u64,
    selectors: Vec<String>,
    payload: Option<Value>,
}

impl ActiveSubscriptions {
    /// No streams yet; entered in `directory` too, if given.
    pub(super) fn new(directory: Option<Arc<dyn SubscriptionDirectory>>) -> Self {
        ActiveSubscriptions {
            inner: Mutex::default(),
            directory,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Enters a stream and publishes its `active: true` updates through `hub` (if given); the
    /// stream stays listed until the returned guard is dropped, which publishes its
    /// `active: false` updates.
    pub(super) fn register(
        self: &Arc<Self>,
        hub: Option<&Hub>,
        subscriber: String,
        selector: &Selector,
        payload: Option<Value>,
    ) -> Registration {
        let selectors: Vec<String> = selector
            .patterns()
            .iter()
            .map(|p| p.as_str().to_string())
            .collect();
        {
            let mut inner = self.lock();
            inner.next += 1;
            let order = inner.next;
            inner.streams.insert(
                subscriber.clone(),
                Stream {
                    order,
                    selectors: selectors.clone(),
                    payload: payload.clone(),
                },
            );
        }
        if let Some(directory) = &self.directory {
            let record = Record {
                selectors: selectors.clone(),
                payload: payload.clone(),
            };
            let record = serde_json::to_string(&record).expect("a record serialises");
            directory.enter(&subscriber, record);
        }
        if let Some(hub) = hub {
            hub.publish_live(&updates(&subscriber, &selectors, payload.as_ref(), true));
        }
        Registration {
            registry: self.clone(),
            hub: hub.cloned(),
            subscriber,
            selectors,
            payload,
        }
    }

    /// `(subscriber, selector, payload)` of every subscription, oldest stream first, those of
    /// `topic` only if given.
    fn list(&self, topic: Option<&str>) -> Vec<(String, String, Option<Value>)> {
        let inner = self.lock();
        let mut streams: Vec<(&String, &Stream)> = inner.streams.iter().collect();
        streams.sort_by_key(|(_, s)| s.order);
        streams
            .into_iter()
            .flat_map(|(subscriber, stream)| {
                stream
                    .selectors
                    .iter()
                    .filter(|s| topic.is_none_or(|t| t == s.as_str()))
                    .map(|s| (subscriber.clone(), s.clone(), stream.payload.clone()))
            })
            .collect()
    }

    /// The payload of one subscription, if it exists (`Some(None)`: no payload).
    fn get(&self, topic: &str, subscriber: &str) -> Option<Option<Value>> {
        let inner = self.lock();
        let stream = inner.streams.get(subscriber)?;
        stream
            .selectors
            .iter()
            .any(|s| s == topic)
            .then(|| stream.payload.clone())
    }

    /// As [`list`](Self::list), the other hubs' subscriptions (none without a directory), of
    /// at most [`MAX_OTHER_STREAMS`] streams, in no particular order.
    async fn list_others(
        &self,
        topic: Option<&str>,
    ) -> Result<Vec<(String, String, Option<Value>)>, ApiError> {
        let Some(directory) = &self.directory else {
            return Ok(Vec::new());
        };
        let keep = |text: &str| Record::parse(text, topic).is_some();
        let records = directory
            .others(&keep, MAX_OTHER_STREAMS)
            .await
            .map_err(unavailable)?;
        if records.len() == MAX_OTHER_STREAMS {
            tracing::debug!(
                max = MAX_OTHER_STREAMS,
                "a listing of subscriptions left out other hubs' streams past its bound"
            );
        }
        Ok(records
            .into_iter()
            .filter_map(|(subscriber, text)| Some((subscriber, Record::parse(&text, topic)?)))
            .flat_map(|(subscriber, record)| {
                let payload = record.payload;
                record
                    .selectors
                    .into_iter()
                    .filter(|s| topic.is_none_or(|t| t == s.as_str()))
                    .map(move |s| (subscriber.clone(), s, payload.clone()))
            })
            .collect())
    }

    /// As [`get`](Self::get), on this hub, then on the others.
    async fn find(&self, topic: &str, subscriber: &str) -> Result<Option<Option<Value>>, ApiError> {
        if let Some(payload) = self.get(topic, subscriber) {
            return Ok(Some(payload));
        }
        let Some(directory) = &self.directory else {
            return Ok(None);
        };
        let text = directory.other(subscriber).await.map_err(unavailable)?;
        Ok(text
            .and_then(|text| Record::parse(&text, Some(topic)))
            .map(|record| record.payload))
    }
}

/// The directory failed: the listing would be incomplete, so there is none.
fn unavailable(error: StoreError) -> ApiError {
    tracing::warn!(%error, "cannot read the other hubs' subscriptions");
    ApiError::new(
        Reason::StoreUnavailable,
        format!("the other hubs' subscriptions cannot be read: {error}"),
    )
}

/// Keeps a stream listed; when dropped (the stream ended), unlists it and publishes its
/// `active: false` updates.
pub(super) struct Registration {
    registry: Arc<ActiveSubscriptions>,
    /// Where the updates go; `None`: none are published.
    hub: Option<Hub>,
    subscriber: String,
    selectors: Vec<String>,
    payload: Option<Value>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().streams.remove(&self.subscriber);
        if let Some(directory) = &self.registry.directory {
            directory.leave(&self.subscriber);
        }
        if let Some(hub) = self.hub.take() {
            let events = updates(
                &self.subscriber,
                &self.selectors,
                self.payload.as_ref(),
                false,
            );
            hub.publish_live(&events);
        }
    }
}

/// A new subscriber id: `urn:uuid:` and a random (version 4) UUID.
pub(super) fn new_subscriber_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Percent-encodes `value` as RFC 6570 simple expansion does: everything but unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`), byte by byte of its UTF-8.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The collection URL of one selector's subscriptions.
fn topic_url(selector: &str) -> String {
    format!("{HUB_PATH}/subscriptions/{}", encode(selector))
}

/// The topic (and JSON-LD id) of one subscription.
fn subscription_url(selector: &str, subscriber: &str) -> String {
    format!("{}/{}", topic_url(selector), encode(subscriber))
}

/// Refuses selectors whose subscription topic would be longer than a topic may be.
pub(super) fn check_selectors(selector: &Selector, subscriber: &str) -> Result<(), ApiError> {
    match selector
        .patterns()
        .iter()
        .find(|p| subscription_url(p.as_str(), subscriber).len() > MAX_IRI_BYTES)
    {
        Some(p) => Err(ApiError::new(
            Reason::InvalidTopic,
            format!(
                "topic {:?} is too long to name in a subscription event ({MAX_IRI_BYTES} bytes once percent-encoded)",
                p.as_str()
            ),
        )),
        None => Ok(()),
    }
}

/// One subscription, as an update, an API answer or an element of a collection.
#[derive(Serialize)]
struct Document<'a> {
    #[serde(rename = "@context", skip_serializing_if = "Option::is_none")]
    context: Option<&'static str>,
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    topic: &'a str,
    subscriber: &'a str,
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a Value>,
    #[serde(rename = "lastEventID", skip_serializing_if = "Option::is_none")]
    last_event_id: Option<&'a str>,
}

impl<'a> Document<'a> {
    fn new(topic: &'a str, subscriber: &'a str, active: bool, payload: Option<&'a Value>) -> Self {
        Document {
            context: Some(CONTEXT),
            id: subscription_url(topic, subscriber),
            kind: "Subscription",
            topic,
            subscriber,
            active,
            payload,
            last_event_id: None,
        }
    }
}

/// A collection of subscriptions.
#[derive(Serialize)]
struct Collection<'a> {
    #[serde(rename = "@context")]
    context: &'static str,
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "lastEventID")]
    last_event_id: &'a str,
    subscriptions: Vec<Document<'a>>,
}

/// The private updates announcing that `subscriber`'s subscriptions started or ended.
fn updates(
    subscriber: &str,
    selectors: &[String],
    payload: Option<&Value>,
    active: bool,
) -> Vec<NewEvent> {
    selectors
        .iter()
        .filter_map(|selector| {
            let doc = Document::new(selector, subscriber, active, payload);
            // Checked at subscribe time (`check_selectors`), so this always succeeds.
            let topic = Topic::iri(&doc.id).ok()?;
            let data = serde_json::to_string(&doc).expect("a subscription document serialises");
            let mut event = NewEvent::new(topic, data);
            event.private = true;
            Some(event)
        })
        .collect()
}

/// `GET /.well-known/mercure/subscriptions`
pub(super) async fn collection(
    State(m): State<Mercure>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let result = list(&m, None, raw.as_deref(), &headers).await;
    m.app.respond(result)
}

/// `GET /.well-known/mercure/subscriptions/{topic}`
pub(super) async fn of_topic(
    State(m): State<Mercure>,
    Path(topic): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let result = list(&m, Some(&topic), raw.as_deref(), &headers).await;
    m.app.respond(result)
}

/// `GET /.well-known/mercure/subscriptions/{topic}/{subscriber}`
pub(super) async fn one(
    State(m): State<Mercure>,
    Path((topic, subscriber)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let registry = enabled(&m)?;
        let url = subscription_url(&topic, &subscriber);
        authorize(&m, &url, raw.as_deref(), &headers)?;
        let last = last_event_id(&m);
        let payload = registry.find(&topic, &subscriber).await?.ok_or_else(|| {
            ApiError::new(
                Reason::NotFound,
                "no such active subscription (it may have ended)",
            )
        })?;
        let mut doc = Document::new(&topic, &subscriber, true, payload.as_ref());
        doc.last_event_id = Some(&last);
        Ok(json_ld(&doc))
    }
    .await;
    m.app.respond(result)
}

async fn list(
    m: &Mercure,
    topic: Option<&str>,
    raw: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let registry = enabled(m)?;
    let url = topic.map_or_else(|| format!("{HUB_PATH}/subscriptions"), topic_url);
    authorize(m, &url, raw, headers)?;
    // Before the registry is read: see the module documentation.
    let last = last_event_id(m);
    // This hub's first, oldest first; then the other hubs' (a cluster).
    let mut entries = registry.list(topic);
    entries.extend(registry.list_others(topic).await?);
    let mut subscriptions: Vec<Document<'_>> = entries
        .iter()
        .map(|(subscriber, selector, payload)| {
            Document::new(selector, subscriber, true, payload.as_ref())
        })
        .collect();
    for doc in &mut subscriptions {
        // The collection defines it.
        doc.context = None;
    }
    Ok(json_ld(&Collection {
        context: CONTEXT,
        id: url,
        kind: "Subscriptions",
        last_event_id: &last,
        subscriptions,
    }))
}

fn enabled(m: &Mercure) -> Result<&Arc<ActiveSubscriptions>, ApiError> {
    m.subscriptions.as_ref().ok_or_else(|| {
        ApiError::new(
            Reason::NotFound,
            "active subscriptions are turned off on this hub ([mercure] subscriptions = false)",
        )
    })
}

/// The id of the last event of the hub, or `earliest` before the first one.
fn last_event_id(m: &Mercure) -> String {
    let store = m.app.hub.store();
    match store.bounds().last {
        0 => "earliest".to_string(),
        seq => EventId {
            log: store.log_id(),
            seq,
        }
        .to_string(),
    }
}

/// The request needs a subscriber token whose `mercure.subscribe` selectors match `url`, the
/// requested URL (in the percent-encoding of subscription topics, so that the selectors
/// written for the subscription events work here too).
fn authorize(
    m: &Mercure,
    url: &str,
    raw: Option<&str>,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let query = Query::parse_any(raw);
    let grant = m.app.auth.check(Role::Subscribe, headers, &query)?;
    let allowed = grant.subscribe.as_ref().is_some_and(|rights| {
        Topic::iri(url).is_ok_and(|url| rights.matches_any(std::slice::from_ref(&url)))
    });
    if allowed {
        return Ok(());
    }
    let auth = &m.app.auth;
    let presented = headers.contains_key(header::AUTHORIZATION)
        || query.get("authorization").is_some()
        || headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .any(|pair| {
                pair.trim()
                    .split_once('=')
                    .is_some_and(|(n, _)| n == auth.cookie_name)
            });
    if auth.subscriber.is_none() || !presented {
        Err(ApiError::new(
            Reason::Unauthorized,
            "the subscriptions API needs a subscriber token whose mercure.subscribe selectors match the requested URL",
        ))
    } else {
        Err(ApiError::new(
            Reason::Forbidden,
            format!("the token's mercure.subscribe selectors do not match {url}"),
        ))
    }
}

fn json_ld(document: &impl Serialize) -> Response {
    let body = serde_json::to_string(document).expect("the documents serialise");
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/ld+json"),
            ),
            // Volatile: a cached copy must be checked again before use.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-cache"),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_percent_encoded_like_rfc6570() {
        assert_eq!(
            subscription_url(
                "https://example.com/{selector}",
                "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6"
            ),
            "/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2F%7Bselector%7D/urn%3Auuid%3Abb3de268-05b0-4c65-b44e-8f9acefc29d6"
        );
        assert_eq!(encode("é ~"), "%C3%A9%20~");
    }

    #[test]
    fn subscriber_ids_are_v4_uuids() {
        let id = new_subscriber_id();
        let uuid = id.strip_prefix("urn:uuid:").unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        assert!("89ab".contains(&uuid[19..20]));
        assert_ne!(id, new_subscriber_id());
    }

    #[test]
    fn documents_have_the_draft_shape() {
        let payload = serde_json::json!({"user": 1});
        let doc = Document::new("a/{b}", "urn:uuid:x", true, Some(&payload));
        let value: Value = serde_json::to_value(&doc).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "@context": "https://mercure.rocks/",
                "id": "/.well-known/mercure/subscriptions/a%2F%7Bb%7D/urn%3Auuid%3Ax",
                "type": "Subscription",
                "topic": "a/{b}",
                "subscriber": "urn:uuid:x",
                "active": true,
                "payload": {"user": 1},
            })
        );
        let events = updates("urn:uuid:x", &["a".into(), "b".into()], None, false);
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| e.private));
        assert!(!events[0].data.contains("payload"));
    }
}
