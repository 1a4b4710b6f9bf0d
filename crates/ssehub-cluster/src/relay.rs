//! The relay of live-only events between the nodes ([`Store::live_relay`]): Mercure's
//! subscription updates, which are never stored, published on the cluster's pub/sub channel
//! `ssehub:{NAME}:live` and received by every node subscribed to it.
//!
//! Best effort, as Redis pub/sub is: a message published while a node is not subscribed
//! (Redis unreachable, the connection being made again, a failover) never reaches it, and a
//! node gets each message it does receive once. Each message starts with its node's id, so
//! that a node drops its own (it has fanned them out already). Bounded: a message is at most
//! [`MAX_MESSAGE_BYTES`] (a batch is split over several; an event larger than that alone is
//! dropped), the way out is the node's bounded queue (`node.rs`), the way in a bounded channel
//! to the hub; whatever does not fit is dropped and counted ([`RelayStats::dropped`]).
//!
//! The subscription has a connection of its own (a subscribed connection takes no other
//! command), made to the primary as Sentinel names it, and made again when it is lost, when a
//! ping goes unanswered, or when Sentinel names another primary.
//!
//! [`Store::live_relay`]: ssehub_core::Store::live_relay

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt as _;
use redis::aio::{PubSubSink, PubSubStream};
use ssehub_core::{LiveOutbox, LiveRelay, NewEvent, Topic};
use tokio::sync::mpsc;

use crate::node::Write;
use crate::store::Inner;

/// The most bytes of one relay message.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 << 10;

/// The first byte of a message: the version of this encoding.
const VERSION: u8 = 1;

/// Bytes of a node id in a message.
const NODE_ID_BYTES: usize = 16;

/// Batches from other nodes waiting for the hub.
const INBOX: usize = 256;

/// How often the subscription checks that Redis answers and is still the primary.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// How long connecting, subscribing or a ping may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// How long the subscription waits before trying Redis again.
const RETRY: Duration = Duration::from_millis(200);

/// Starts relaying: the hub's outbox, and the subscription that fills its inbox.
pub(crate) fn start(inner: &Arc<Inner>) -> LiveRelay {
    let (tx, inbox) = mpsc::channel(INBOX);
    tokio::spawn(listen(Arc::downgrade(inner), tx));
    LiveRelay {
        outbox: Arc::new(Outbox {
            inner: Arc::downgrade(inner),
        }),
        inbox,
        stats: inner.node.relay_stats.clone(),
    }
}

/// Hands the hub's live-only events to the node's writer, as messages.
struct Outbox {
    inner: Weak<Inner>,
}

impl LiveOutbox for Outbox {
    fn send(&self, events: &[NewEvent]) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let node = &inner.node;
        let (messages, mut dropped) = encode(&node.id, events);
        for (message, n) in messages {
            if !node.enqueue(Write::Publish { message, events: n }) {
                dropped += n;
            }
        }
        if dropped > 0 {
            node.relay_stats
                .dropped
                .fetch_add(dropped, Ordering::Relaxed);
            tracing::debug!(
                dropped,
                "live-only events not relayed (too large, or the queue is full)"
            );
        }
    }
}

/// The messages carrying `events` from node `node`, in order, each with how many events it
/// carries, and how many events were too large for any message.
pub(crate) fn encode(node: &str, events: &[NewEvent]) -> (Vec<(Vec<u8>, u64)>, u64) {
    let header = |out: &mut Vec<u8>| {
        out.push(VERSION);
        out.extend_from_slice(node.as_bytes());
    };
    let (mut messages, mut dropped) = (Vec::new(), 0);
    let (mut message, mut count) = (Vec::new(), 0);
    header(&mut message);
    for event in events {
        let one = encode_event(event);
        if 1 + NODE_ID_BYTES + one.len() > MAX_MESSAGE_BYTES {
            dropped += 1;
            continue;
        }
        if message.len() + one.len() > MAX_MESSAGE_BYTES {
            messages.push((std::mem::take(&mut message), count));
            header(&mut message);
            count = 0;
        }
        message.extend_from_slice(&one);
        count += 1;
    }
    if count > 0 {
        messages.push((message, count));
    }
    (messages, dropped)
}

/// One event: its topics (LF-separated), type and data, each as a 4-byte length and its
/// bytes; a flag byte (1: private, 2: a retry follows); the retry, 8 bytes.
fn encode_event(event: &NewEvent) -> Vec<u8> {
    let topics: Vec<&str> = event.topics.iter().map(Topic::as_str).collect();
    let topics = topics.join("\n");
    let event_type = event.event_type.as_deref().unwrap_or("");
    let mut out = Vec::with_capacity(13 + topics.len() + event_type.len() + event.data.len());
    for field in [topics.as_str(), event_type, event.data.as_str()] {
        // A field longer than 4 GiB cannot be in a message of 64 KiB: its length saturates
        // and the caller drops the event for its size.
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    let flags = u8::from(event.private) | if event.retry_ms.is_some() { 2 } else { 0 };
    out.push(flags);
    if let Some(ms) = event.retry_ms {
        out.extend_from_slice(&ms.to_be_bytes());
    }
    out
}

/// The node id and the events of a message. Every field is validated as on publish (topics,
/// the type's line breaks), so a message that is not one of ours cannot inject SSE fields.
pub(crate) fn decode(message: &[u8]) -> Result<(&str, Vec<NewEvent>), String> {
    let mut rest = match message.split_first() {
        Some((&VERSION, rest)) => rest,
        _ => return Err("not a relay message of this version".to_string()),
    };
    let node = take(&mut rest, NODE_ID_BYTES)?;
    let node = std::str::from_utf8(node).map_err(|_| "a node id that is not text")?;
    let mut events = Vec::new();
    while !rest.is_empty() {
        let topics = text(&mut rest)?;
        let event_type = text(&mut rest)?;
        let data = text(&mut rest)?;
        let flags = take(&mut rest, 1)?[0];
        let topics = topics
            .split('\n')
            .map(|t| Topic::iri(t).map_err(|e| format!("a topic: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(first) = topics.first().cloned() else {
            return Err("an event without topics".to_string());
        };
        let mut event = NewEvent::new(first, data)
            .with_type(event_type)
            .map_err(|e| format!("an event type: {e}"))?;
        event.topics = topics;
        event.private = flags & 1 != 0;
        if flags & 2 != 0 {
            let retry: [u8; 8] = take(&mut rest, 8)?
                .try_into()
                .map_err(|_| "a short retry")?;
            event.retry_ms = Some(u64::from_be_bytes(retry));
        }
        events.push(event);
    }
    Ok((node, events))
}

/// The next `n` bytes of `rest`.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if rest.len() < n {
        return Err("a short message".to_string());
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

/// A length-prefixed UTF-8 field.
fn text<'a>(rest: &mut &'a [u8]) -> Result<&'a str, String> {
    let len: [u8; 4] = take(rest, 4)?.try_into().map_err(|_| "a short length")?;
    let len = usize::try_from(u32::from_be_bytes(len)).map_err(|_| "a field too long")?;
    std::str::from_utf8(take(rest, len)?).map_err(|_| "a field that is not UTF-8".to_string())
}

/// Why one subscription ended.
enum Ended {
    /// The store or the hub is gone: stop relaying.
    Stopped,
    /// Redis is lost, or the primary moved: subscribe again.
    Lost,
}

/// Subscribes, delivers, and subscribes again when the subscription is lost, until the store
/// or the hub is gone.
async fn listen(inner: Weak<Inner>, tx: mpsc::Sender<Vec<NewEvent>>) {
    loop {
        let Some(store) = inner.upgrade() else {
            return;
        };
        if tx.is_closed() {
            return;
        }
        let subscribed = subscribe(&store).await;
        let (id, stats) = (store.node.id.clone(), store.node.relay_stats.clone());
        drop(store);
        match subscribed {
            Ok((primary, sink, stream)) => {
                tracing::debug!("the live relay is subscribed");
                let here = Here {
                    id: &id,
                    stats: &stats,
                    tx: &tx,
                };
                if let Ended::Stopped = follow(&inner, &primary, sink, stream, &here).await {
                    return;
                }
                tracing::warn!("the live relay lost Redis; subscribing again");
            }
            Err(error) => tracing::debug!(%error, "the live relay cannot reach Redis; retrying"),
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// The primary's URL, and a subscription to the cluster's live channel there.
async fn subscribe(store: &Inner) -> Result<(String, PubSubSink, PubSubStream), String> {
    let primary = store.link.primary().await.map_err(|e| e.to_string())?;
    let client = redis::Client::open(primary.as_str()).map_err(|e| e.to_string())?;
    let mut pubsub = tokio::time::timeout(TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| "connecting timed out".to_string())?
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(TIMEOUT, pubsub.subscribe(store.keys.key("live")))
        .await
        .map_err(|_| "subscribing timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let (sink, stream) = pubsub.split();
    Ok((primary, sink, stream))
}

/// What a subscription delivers to.
struct Here<'a> {
    /// This node's id: its own messages are dropped.
    id: &'a str,
    stats: &'a ssehub_core::RelayStats,
    tx: &'a mpsc::Sender<Vec<NewEvent>>,
}

/// Delivers the messages of one subscription until it ends.
async fn follow(
    inner: &Weak<Inner>,
    primary: &str,
    mut sink: PubSubSink,
    mut stream: PubSubStream,
    here: &Here<'_>,
) -> Ended {
    let mut check = tokio::time::interval(CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    check.tick().await;
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else { return Ended::Lost };
                if !deliver(message.get_payload_bytes(), here) {
                    return Ended::Stopped;
                }
            }
            _ = check.tick() => {
                // A silent loss of the network ends no stream: ask.
                let answered = tokio::time::timeout(TIMEOUT, sink.ping::<redis::Value>()).await;
                if !matches!(answered, Ok(Ok(_))) {
                    return Ended::Lost;
                }
                let Some(store) = inner.upgrade() else { return Ended::Stopped };
                if store.link.primary().await.is_ok_and(|now| now != primary) {
                    return Ended::Lost;
                }
            }
            () = here.tx.closed() => return Ended::Stopped,
        }
    }
}

/// Hands one message of another node to the hub; drops this node's own. False once the hub
/// is gone.
fn deliver(message: &[u8], here: &Here<'_>) -> bool {
    let count = |counter: &AtomicU64, n: usize| {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    };
    if message.get(1..=NODE_ID_BYTES) == Some(here.id.as_bytes()) {
        return true;
    }
    let events = match decode(message) {
        Ok((_, events)) => events,
        Err(error) => {
            count(&here.stats.dropped, 1);
            tracing::debug!(%error, "dropped a message on the live channel that is not ours");
            return true;
        }
    };
    let n = events.len();
    match here.tx.try_send(events) {
        Ok(()) => count(&here.stats.received, n),
        Err(mpsc::error::TrySendError::Full(_)) => count(&here.stats.dropped, n),
        Err(mpsc::error::TrySendError::Closed(_)) => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "0123456789abcdef";

    #[test]
    fn events_round_trip_through_messages() {
        let mut full = NewEvent::new(Topic::iri("/a/b").unwrap(), "x\ny")
            .with_type("t")
            .unwrap();
        full.topics.push(Topic::iri("https://e.com/ü").unwrap());
        full.private = true;
        full.retry_ms = Some(1500);
        let plain = NewEvent::new(Topic::new("a").unwrap(), "");
        let events = vec![full, plain];
        let (messages, dropped) = encode(NODE, &events);
        assert_eq!((messages.len(), messages[0].1, dropped), (1, 2, 0));
        let (node, decoded) = decode(&messages[0].0).unwrap();
        assert_eq!((node, decoded), (NODE, events));
    }

    #[test]
    fn batches_are_split_and_oversize_events_dropped() {
        let event = |n: usize| NewEvent::new(Topic::new("a").unwrap(), "x".repeat(n));
        let half = MAX_MESSAGE_BYTES / 2;
        let events = [event(half), event(MAX_MESSAGE_BYTES), event(half), event(1)];
        let (messages, dropped) = encode(NODE, &events);
        assert_eq!(dropped, 1, "the one larger than a message");
        let counts: Vec<u64> = messages.iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, [1, 2]);
        assert!(messages.iter().all(|(m, _)| m.len() <= MAX_MESSAGE_BYTES));
        let data: Vec<usize> = messages
            .iter()
            .flat_map(|(m, _)| decode(m).unwrap().1)
            .map(|e| e.data.len())
            .collect();
        assert_eq!(data, [half, half, 1], "in order");
        assert!(encode(NODE, &[]).0.is_empty());
    }

    #[test]
    fn foreign_messages_are_refused() {
        let (messages, _) = encode(NODE, &[NewEvent::new(Topic::new("a").unwrap(), "d")]);
        let good = &messages[0].0;
        assert!(decode(b"").is_err());
        assert!(decode(b"hello").is_err());
        assert!(decode(&good[..good.len() - 1]).is_err(), "truncated");
        // A type with a line break would inject SSE fields.
        let mut injected = good[..=NODE_ID_BYTES].to_vec();
        for field in ["a", "t\ndata: x", "d"] {
            injected.extend_from_slice(&(field.len() as u32).to_be_bytes());
            injected.extend_from_slice(field.as_bytes());
        }
        injected.push(0);
        assert!(decode(&injected).is_err());
    }
}
