//! Events as the hub handles them: validated on the way in, encoded once on the way out.

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use ssehub_wire::{Event, FieldError};

use crate::id::{EventId, IdError, LogId};
use crate::key::{DELETE_EVENT, KeyError};
use crate::topic::Topic;

/// The longest `id:` line of a stored event: `id: `, the log (8 hex digits), `-`, the
/// sequence number (at most 20 digits) and LF.
pub const MAX_ID_LINE: usize = 4 + 8 + 1 + 20 + 1;

/// The end of the event type of every binary event on the wire: `thumb` becomes `thumb.b64`,
/// an untyped binary event `message.b64` (see [`NewEvent::binary`]).
///
/// A suffix on the type, not a field of the data, because the type is the one thing an
/// `EventSource` dispatches on: a page's `onmessage` (or a listener for `thumb`) written for
/// text never receives base64 it would take for text, and a page that wants the bytes listens
/// for `thumb.b64`. The publisher's own type stays readable in front of it. A text publish may
/// not use a type ending in it (400 `invalid_event`), so the marker cannot be forged.
pub const BINARY_SUFFIX: &str = ".b64";

/// An event a publisher asked to publish, already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The topics the event is published to (at least one).
    pub topics: Vec<Topic>,
    /// The SSE event type, if not `message`.
    pub event_type: Option<String>,
    /// The data, any UTF-8 text.
    pub data: String,
    /// Delivered only to subscribers authorized for one of its topics (Mercure's private
    /// updates).
    pub private: bool,
    /// A `retry:` (reconnection time, ms) sent with the event.
    pub retry_ms: Option<u64>,
    /// The publisher's own id for the event (checked by [`check_publisher_id`]): its `id:`
    /// line and the publish answer instead of the hub's `<log>-<seq>`, unique among retained
    /// events, and a resume point like a hub id (the store indexes it). `None`: the hub's id.
    ///
    /// [`check_publisher_id`]: crate::check_publisher_id
    pub id: Option<String>,
    /// The key this event is the newest value of, in each of its topics (checked by
    /// [`check_key`](crate::check_key)); snapshots send the newest event of every key. `None`:
    /// not part of any snapshot.
    pub key: Option<String>,
    /// A tombstone: the key is deleted, and leaves the snapshots ([`NewEvent::tombstone`]).
    pub delete: bool,
    /// The exact bytes of a binary event (`Content-Type: application/octet-stream`, a batch
    /// item's `data_base64`), kept raw by every store; `data` is then empty. Subscribers get
    /// them as standard base64 on one `data:` line, the type marked with [`BINARY_SUFFIX`].
    /// `None`: a text event.
    pub binary: Option<Bytes>,
}

impl NewEvent {
    /// An event of type `message` on one topic.
    pub fn new(topic: Topic, data: impl Into<String>) -> Self {
        NewEvent {
            topics: vec![topic],
            event_type: None,
            data: data.into(),
            private: false,
            retry_ms: None,
            id: None,
            key: None,
            delete: false,
            binary: None,
        }
    }

    /// A binary event of type `message` on one topic: `bytes` as they are, any bytes at all.
    pub fn binary(topic: Topic, bytes: impl Into<Bytes>) -> Self {
        NewEvent {
            binary: Some(bytes.into()),
            ..NewEvent::new(topic, "")
        }
    }

    /// The event type subscribers see: the publisher's, and for a binary event that type (or
    /// `message`) with [`BINARY_SUFFIX`]. `None`: `message`.
    pub fn wire_type(&self) -> Option<std::borrow::Cow<'_, str>> {
        match (&self.event_type, &self.binary) {
            (Some(t), None) => Some(t.as_str().into()),
            (None, None) => None,
            (t, Some(_)) => {
                Some(format!("{}{BINARY_SUFFIX}", t.as_deref().unwrap_or("message")).into())
            }
        }
    }

    /// The SSE event of this event, without its id: type, retry and data (a binary event's
    /// bytes as base64). One place for what subscribers see, stored or live-only.
    pub fn wire(&self) -> Event {
        let mut wire = match &self.binary {
            Some(bytes) => Event::new(base64::engine::general_purpose::STANDARD.encode(bytes)),
            None => Event::new(self.data.as_str()),
        };
        if let Some(t) = self.wire_type() {
            wire = wire
                .with_event(t)
                .expect("validated in NewEvent::with_type; the suffix adds no line break");
        }
        // A per-event reconnection time (Mercure's `retry` field) goes out with the event,
        // live and on replay.
        if let Some(ms) = self.retry_ms {
            wire = wire.with_retry(std::time::Duration::from_millis(ms));
        }
        wire
    }

    /// Sets the event's key, once checked by [`check_key`](crate::check_key) with the hub's
    /// limit.
    ///
    /// # Errors
    ///
    /// The [`KeyError`] of [`check_key`](crate::check_key).
    pub fn with_key(mut self, key: impl Into<String>, max_bytes: usize) -> Result<Self, KeyError> {
        let key = key.into();
        crate::key::check_key(&key, max_bytes)?;
        self.key = Some(key);
        Ok(self)
    }

    /// The tombstone of `key` (checked like [`with_key`](NewEvent::with_key)) on `topic`:
    /// subscribers receive an event of type [`DELETE_EVENT`] whose data is the key, and
    /// snapshots leave the key out from then on.
    ///
    /// # Errors
    ///
    /// The [`KeyError`] of [`check_key`](crate::check_key).
    pub fn tombstone(
        topic: Topic,
        key: impl Into<String>,
        max_bytes: usize,
    ) -> Result<Self, KeyError> {
        Ok(NewEvent::new(topic, "")
            .with_key(key, max_bytes)?
            .deleting())
    }

    /// Makes this keyed event the tombstone of its key: type [`DELETE_EVENT`], the key as its
    /// data (what it had is dropped), snapshots leave the key out. Its topics, id and privacy
    /// stay. An event without a key is returned as it is.
    pub fn deleting(mut self) -> Self {
        if let Some(key) = &self.key {
            self.data = key.clone();
            self.binary = None;
            self.event_type = Some(DELETE_EVENT.to_string());
            self.delete = true;
        }
        self
    }

    /// Sets the publisher's id, once checked by [`check_publisher_id`] with the hub's limit.
    ///
    /// # Errors
    ///
    /// The [`IdError`] of [`check_publisher_id`].
    ///
    /// [`check_publisher_id`]: crate::check_publisher_id
    pub fn with_id(mut self, id: impl Into<String>, max_bytes: usize) -> Result<Self, IdError> {
        let id = id.into();
        crate::id::check_publisher_id(&id, max_bytes)?;
        self.id = Some(id);
        Ok(self)
    }

    /// Sets the event type. An empty type means `message` and is stored as none.
    ///
    /// # Errors
    ///
    /// [`FieldError::LineBreak`] if the type holds CR or LF (it would inject SSE fields).
    pub fn with_type(mut self, event_type: impl Into<String>) -> Result<Self, FieldError> {
        let event_type = event_type.into();
        ssehub_wire::check_line(&event_type, ssehub_wire::Field::Event)?;
        self.event_type = (!event_type.is_empty()).then_some(event_type);
        Ok(self)
    }

    /// The most bytes this event takes once stored and encoded for the wire: what every
    /// subscriber's buffer, the replay pages and the in-memory caches hold for it. Exact but
    /// for the `id:` line of a hub id, which is counted at its longest ([`MAX_ID_LINE`]), since
    /// the id is given only when the event is stored (a publisher's id is counted as it is). Limits on events apply to this, not to the size of
    /// the data: each line break of the data costs a `data: ` prefix, so a body of newlines
    /// encodes to seven times its size.
    pub fn encoded_size(&self) -> usize {
        self.id.as_ref().map_or(MAX_ID_LINE, |id| 4 + id.len() + 1)
            + self.wire_type().map_or(0, |t| 7 + t.len() + 1)
            + self.retry_ms.map_or(0, |ms| 7 + ms.to_string().len() + 1)
            + match &self.binary {
                Some(bytes) => binary_data_line(bytes.len()),
                None => ssehub_wire::data_encoded_len(self.data.as_bytes()),
            }
            + 1
    }

    /// The bytes of the fields of this event (data, type, topics, id, key), as a record stores
    /// them.
    pub fn size(&self) -> usize {
        self.data.len()
            + self.binary.as_ref().map_or(0, Bytes::len)
            + self.id.as_ref().map_or(0, String::len)
            + self.key.as_ref().map_or(0, String::len)
            + self.event_type.as_ref().map_or(0, String::len)
            + self.topics.iter().map(|t| t.as_str().len()).sum::<usize>()
    }
}

/// The length of the `data:` line of a binary event of `len` bytes: `data: `, the standard
/// (padded) base64 — 4 characters for every 3 bytes or part of 3 — and LF. What the limits
/// count for its data, so a binary body can be at most about 3/4 of `limits.max_body_bytes`.
pub fn binary_data_line(len: usize) -> usize {
    6 + len.div_ceil(3) * 4 + 1
}

/// An event with its place in the log, and its SSE encoding (made once, shared by every
/// subscriber and every replay).
#[derive(Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its id.
    pub id: EventId,
    /// The event itself.
    pub event: NewEvent,
    /// `id:`, `event:`, `retry:` and `data:` lines, ready to write to any subscriber.
    pub encoded: Bytes,
}

impl StoredEvent {
    /// Gives `event` its position `seq` in log `log` and encodes it, with the publisher's id
    /// on its `id:` line when it has one, else the hub's.
    pub fn new(log: LogId, seq: u64, event: NewEvent) -> Arc<Self> {
        let id = EventId { log, seq };
        // Every value was validated when it entered the hub (a publisher's id by
        // `check_publisher_id`, which is stricter than the wire's rule); these cannot fail.
        let line = event.id.clone().unwrap_or_else(|| id.to_string());
        let wire = event
            .wire()
            .with_id(line)
            .expect("an event id has no line break or NUL");
        Arc::new(StoredEvent {
            id,
            encoded: wire.encode(),
            event,
        })
    }

    /// The sequence number.
    pub fn seq(&self) -> u64 {
        self.id.seq
    }

    /// The id subscribers see on its `id:` line: the publisher's, else the hub's.
    pub fn sse_id(&self) -> String {
        self.event.id.clone().unwrap_or_else(|| self.id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size checked before an event is accepted bounds its stored encoding.
    #[test]
    fn encoded_size_bounds_the_encoding() {
        let topic = Topic::new("a").unwrap();
        let mut events = vec![
            NewEvent::new(topic.clone(), ""),
            NewEvent::new(topic.clone(), "\n".repeat(1000)),
            NewEvent::new(topic.clone(), "x\r\ny")
                .with_type("t")
                .unwrap(),
        ];
        events[0].retry_ms = Some(u64::MAX);
        events.push(
            NewEvent::new(topic.clone(), "x")
                .with_id("urn:uuid:a".repeat(20), 256)
                .unwrap(),
        );
        // Binary events: base64 (every remainder of 3), typed or not, counted with the mark.
        for len in 0..=4 {
            events.push(NewEvent::binary(topic.clone(), vec![b'\n'; len]));
        }
        events.push(
            NewEvent::binary(topic.clone(), vec![0xff; 1000])
                .with_type("thumb")
                .unwrap(),
        );
        for event in events {
            let size = event.encoded_size();
            let stored = StoredEvent::new(LogId(u32::MAX), u64::MAX, event.clone());
            assert_eq!(size, stored.encoded.len(), "{event:?}");
            let small = StoredEvent::new(LogId(1), 1, event);
            assert!(small.encoded.len() <= size);
        }
        let newlines = NewEvent::new(topic, "\n".repeat(1000));
        assert!(newlines.encoded_size() > 7 * 1000);
    }

    /// A binary event goes out as base64 on one line, its type marked, whatever its bytes.
    #[test]
    fn a_binary_event_is_base64_with_a_marked_type() {
        let topic = Topic::new("a").unwrap();
        let bytes = NewEvent::binary(topic.clone(), vec![0, b'\r', b'\n', 0xff]);
        let stored = StoredEvent::new(LogId(1), 2, bytes);
        assert_eq!(
            &stored.encoded[..],
            b"id: 00000001-2\nevent: message.b64\ndata: AA0K/w==\n\n"
        );
        let typed = NewEvent::binary(topic, b"hi".to_vec())
            .with_type("thumb")
            .unwrap();
        assert_eq!(typed.wire_type().as_deref(), Some("thumb.b64"));
        assert_eq!(typed.wire().data(), "aGk=");
    }

    /// A publisher's id is the event's `id:` line (and its SSE id); the position stays.
    #[test]
    fn a_publisher_id_is_the_id_line() {
        let topic = Topic::new("a").unwrap();
        let event = NewEvent::new(topic.clone(), "x")
            .with_id("rev-7", 256)
            .unwrap();
        let stored = StoredEvent::new(LogId(1), 9, event);
        assert_eq!(&stored.encoded[..], b"id: rev-7\ndata: x\n\n");
        assert_eq!((stored.sse_id().as_str(), stored.seq()), ("rev-7", 9));
        let plain = StoredEvent::new(LogId(1), 9, NewEvent::new(topic, "x"));
        assert_eq!(plain.sse_id(), "00000001-9");
        assert!(
            NewEvent::new(Topic::new("a").unwrap(), "")
                .with_id("#x", 256)
                .is_err()
        );
    }
}
