//! The on-disk record of one event: the value stored under its sequence number.
//!
//! ```text
//! record  = version:u8 (2, 3 or 4) time_ms:u64le flags:u8 [retry_ms:u64le] [id_len:u16le id]
//!           [key_len:u16le key] type_len:u16le type topic_count:u16le *(topic_len:u16le topic)
//!           data
//! flags   = bit 0: private; bit 1: retry_ms present; bit 2: a publisher id present (version 3);
//!           bit 3: binary data, bit 4: a key present, bit 5: a tombstone (version 4)
//! ```
//!
//! Version 3 is written only for an event with a publisher id (`NewEvent::id`); every other
//! event is still written as version 2, so that a store that never saw a publisher id stays
//! readable by the versions before them. Version 4 is written for a record with a flag newer
//! than version 3 (binary data, a key, a tombstone): a reader before it refuses the record as
//! of an unknown version instead of misreading it (raw bytes as text, a key as the event type).
//! The data of a binary event is its raw bytes (not its base64), and any bytes at all; of a
//! text event, UTF-8. Version 1 records (without `flags` and `retry_ms`)
//! are still read. Strings are UTF-8;
//! `type_len` 0 means the default type (`message`). `data` runs to the end
//! of the record. Topics are at most 1024 bytes and an event has few of them, so `u16`
//! lengths suffice. The SSE encoding is not stored: it is rebuilt from these fields (and the
//! log's id) when an event is read back, which keeps the format independent of the wire.

use ssehub_core::{NewEvent, Topic};

/// The record format version written by this code for an event without a publisher id.
const VERSION: u8 = 2;
/// The version written for an event with a publisher id.
const VERSION_3: u8 = 3;
/// The version written for an event with a flag newer than version 3 (binary data, a key).
const VERSION_4: u8 = 4;
/// The first version, without flags, still readable.
const VERSION_1: u8 = 1;
const PRIVATE: u8 = 1;
const HAS_RETRY: u8 = 2;
const HAS_ID: u8 = 4;
const BINARY: u8 = 8;
const HAS_KEY: u8 = 16;
const TOMBSTONE: u8 = 32;

/// A record that could not be decoded: the data dir is corrupt or was written by something
/// else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt event record at seq {seq}: {what}")]
pub struct CorruptRecord {
    /// The sequence number of the record.
    pub seq: u64,
    /// What is wrong.
    pub what: String,
}

/// Encodes `event`, published at `time_ms` (Unix milliseconds).
pub(crate) fn encode(event: &NewEvent, time_ms: u64) -> Vec<u8> {
    let event_type = event.event_type.as_deref().unwrap_or("");
    let mut out = Vec::with_capacity(16 + event.size() + 2 * event.topics.len());
    out.push(if event.binary.is_some() || event.key.is_some() {
        VERSION_4
    } else if event.id.is_some() {
        VERSION_3
    } else {
        VERSION
    });
    out.extend_from_slice(&time_ms.to_le_bytes());
    let flags = u8::from(event.private) * PRIVATE
        + u8::from(event.retry_ms.is_some()) * HAS_RETRY
        + u8::from(event.id.is_some()) * HAS_ID
        + u8::from(event.binary.is_some()) * BINARY
        + u8::from(event.key.is_some()) * HAS_KEY
        + u8::from(event.key.is_some() && event.delete) * TOMBSTONE;
    out.push(flags);
    if let Some(ms) = event.retry_ms {
        out.extend_from_slice(&ms.to_le_bytes());
    }
    if let Some(id) = &event.id {
        // Publisher ids are at most `limits.max_id_bytes`, which the config keeps far below
        // 64 KiB.
        push_str(&mut out, id);
    }
    if let Some(key) = &event.key {
        // Keys are at most `limits.max_key_bytes`, kept far below 64 KiB like ids.
        push_str(&mut out, key);
    }
    push_str(&mut out, event_type);
    out.extend_from_slice(&(event.topics.len() as u16).to_le_bytes());
    for topic in &event.topics {
        push_str(&mut out, topic.as_str());
    }
    match &event.binary {
        Some(bytes) => out.extend_from_slice(bytes),
        None => out.extend_from_slice(event.data.as_bytes()),
    }
    out
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    // Lengths fit: topics are at most 1024 bytes and event types are bounded by the body limit
    // far below 64 KiB in practice; a longer type is cut at a character boundary rather than
    // corrupting the record.
    let mut len = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(len) {
        len -= 1;
    }
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..len]);
}

/// Whether a record has a key, and whether it is a tombstone, without decoding the rest.
pub(crate) fn key_flags(record: &[u8]) -> (bool, bool) {
    match (record.first(), record.get(9)) {
        (Some(&VERSION_4), Some(&flags)) => (flags & HAS_KEY != 0, flags & TOMBSTONE != 0),
        _ => (false, false),
    }
}

/// The publish time of a record, without decoding the rest.
pub(crate) fn time_ms(record: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(record.get(1..9)?.try_into().ok()?))
}

/// Decodes a record.
///
/// # Errors
///
/// [`CorruptRecord`] when the bytes are not a valid record.
pub(crate) fn decode(seq: u64, record: &[u8]) -> Result<(NewEvent, u64), CorruptRecord> {
    let bad = |what: &str| CorruptRecord {
        seq,
        what: what.to_string(),
    };
    let mut cursor = Cursor { bytes: record };
    let version = cursor.take(1).ok_or_else(|| bad("empty"))?[0];
    if ![VERSION_1, VERSION, VERSION_3, VERSION_4].contains(&version) {
        return Err(bad("unknown record version"));
    }
    let time_ms = u64::from_le_bytes(
        cursor
            .take(8)
            .ok_or_else(|| bad("truncated time"))?
            .try_into()
            .expect("8 bytes"),
    );
    let flags = if version == VERSION_1 {
        0
    } else {
        cursor.take(1).ok_or_else(|| bad("truncated flags"))?[0]
    };
    let retry_ms = if flags & HAS_RETRY != 0 {
        let bytes = cursor.take(8).ok_or_else(|| bad("truncated retry"))?;
        Some(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    } else {
        None
    };
    let id = if flags & HAS_ID != 0 {
        let id = cursor.string().ok_or_else(|| bad("bad id"))?;
        Some(id.to_string())
    } else {
        None
    };
    let key = if flags & HAS_KEY != 0 {
        Some(cursor.string().ok_or_else(|| bad("bad key"))?.to_string())
    } else {
        None
    };
    let event_type = cursor.string().ok_or_else(|| bad("bad event type"))?;
    let count = cursor.u16().ok_or_else(|| bad("truncated topic count"))?;
    let mut topics = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let name = cursor.string().ok_or_else(|| bad("bad topic"))?;
        // Mercure topics are IRIs; both kinds are stored, so read back with the looser rule.
        topics.push(Topic::iri(name).map_err(|e| bad(&format!("invalid topic: {e}")))?);
    }
    if topics.is_empty() {
        return Err(bad("no topic"));
    }
    let (data, binary) = if flags & BINARY != 0 {
        ("", Some(cursor.bytes.to_vec().into()))
    } else {
        let text = std::str::from_utf8(cursor.bytes).map_err(|_| bad("data is not UTF-8"))?;
        (text, None)
    };
    let event = NewEvent {
        topics,
        event_type: (!event_type.is_empty()).then(|| event_type.to_string()),
        data: data.to_string(),
        private: flags & PRIVATE != 0,
        retry_ms,
        id,
        delete: key.is_some() && flags & TOMBSTONE != 0,
        key,
        binary,
    };
    Ok((event, time_ms))
}

/// The size retention counts for a record: the SSE encoding of its event, with the `id:` line
/// of a hub id at its longest (a publisher's id as it is) — what [`NewEvent::encoded_size`] gives for the event, read from the record
/// without decoding it. The record's own length when it does not parse.
pub(crate) fn size(record: &[u8]) -> u64 {
    encoded_size(record).unwrap_or(record.len()) as u64
}

fn encoded_size(record: &[u8]) -> Option<usize> {
    let mut cursor = Cursor { bytes: record };
    let version = cursor.take(1)?[0];
    cursor.take(8)?;
    let flags = if version == VERSION_1 {
        0
    } else {
        cursor.take(1)?[0]
    };
    let retry = if flags & HAS_RETRY != 0 {
        let ms = u64::from_le_bytes(cursor.take(8)?.try_into().ok()?);
        7 + ms.to_string().len() + 1
    } else {
        0
    };
    let id_line = if flags & HAS_ID != 0 {
        4 + cursor.string()?.len() + 1
    } else {
        ssehub_core::MAX_ID_LINE
    };
    if flags & HAS_KEY != 0 {
        cursor.string()?;
    }
    let binary = flags & BINARY != 0;
    let event_type = cursor.string()?;
    // A binary event's type goes out as `<type>.b64`, `message.b64` when untyped.
    let event_line = match (event_type.is_empty(), binary) {
        (true, false) => 0,
        (false, false) => 7 + event_type.len() + 1,
        (true, true) => 7 + "message".len() + ssehub_core::BINARY_SUFFIX.len() + 1,
        (false, true) => 7 + event_type.len() + ssehub_core::BINARY_SUFFIX.len() + 1,
    };
    for _ in 0..cursor.u16()? {
        cursor.string()?;
    }
    let data = if binary {
        ssehub_core::binary_data_line(cursor.bytes.len())
    } else {
        ssehub_wire::data_encoded_len(cursor.bytes)
    };
    Some(id_line + event_line + retry + data + 1)
}

struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    fn string(&mut self) -> Option<&'a str> {
        let len = usize::from(self.u16()?);
        std::str::from_utf8(self.take(len)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let event = NewEvent {
            topics: vec![
                Topic::new("a/b").unwrap(),
                Topic::iri("https://e.com/ü").unwrap(),
            ],
            event_type: Some("t".into()),
            data: "line\nline ✓".into(),
            private: true,
            retry_ms: Some(1500),
            id: None,
            key: None,
            delete: false,
            binary: None,
        };
        let bytes = encode(&event, 1234);
        assert_eq!(
            bytes[0], VERSION,
            "no publisher id: the version before them"
        );
        assert_eq!(time_ms(&bytes), Some(1234));
        assert_eq!(decode(7, &bytes).unwrap(), (event.clone(), 1234));
        let with_id = NewEvent {
            id: Some("urn:uuid:ü".into()),
            ..event
        };
        let bytes = encode(&with_id, 99);
        assert_eq!(bytes[0], VERSION_3);
        assert_eq!(decode(7, &bytes).unwrap(), (with_id.clone(), 99));
        let keyed = NewEvent {
            key: Some("cursor ü".into()),
            ..with_id.clone()
        };
        let bytes = encode(&keyed, 5);
        assert_eq!(bytes[0], VERSION_4);
        assert_eq!(decode(7, &bytes).unwrap(), (keyed.clone(), 5));
        assert_eq!(key_flags(&bytes), (true, false));
        let tombstone = NewEvent {
            delete: true,
            ..keyed
        };
        assert_eq!(decode(7, &encode(&tombstone, 5)).unwrap(), (tombstone, 5));
        // Binary data: its raw bytes, not UTF-8, kept exactly, under version 4.
        let binary = NewEvent {
            binary: Some(vec![0, b'\r', b'\n', 0xff, 0xfe].into()),
            data: String::new(),
            ..with_id
        };
        let bytes = encode(&binary, 5);
        assert_eq!(bytes[0], VERSION_4);
        assert!(bytes.ends_with(&[0, b'\r', b'\n', 0xff, 0xfe]));
        assert_eq!(decode(7, &bytes).unwrap(), (binary, 5));
    }

    /// Retention counts a record at its event's encoded size, as the memory store does.
    #[test]
    fn size_is_the_encoded_size() {
        let mut events = vec![
            NewEvent::new(Topic::new("a").unwrap(), "\n".repeat(500)),
            NewEvent::new(Topic::new("a").unwrap(), "")
                .with_type("t")
                .unwrap(),
        ];
        events[1].retry_ms = Some(12345);
        events.push(
            NewEvent::new(Topic::new("a").unwrap(), "x")
                .with_id("rev-1", 256)
                .unwrap(),
        );
        events.push(
            NewEvent::tombstone(Topic::new("a").unwrap(), "k", 256)
                .unwrap()
                .with_id("rev-2", 256)
                .unwrap(),
        );
        for len in [0, 1, 2, 3, 4, 1000] {
            events.push(NewEvent::binary(Topic::new("a").unwrap(), vec![b'\n'; len]));
        }
        events.push(
            NewEvent::binary(Topic::new("a").unwrap(), vec![0xff; 7])
                .with_type("thumb")
                .unwrap(),
        );
        for event in events {
            assert_eq!(size(&encode(&event, 1)), event.encoded_size() as u64);
        }
        assert_eq!(size(&[9, 9]), 2, "unparsable: its length");
    }

    #[test]
    fn version_1_records_are_still_read() {
        let mut v1 = vec![1u8];
        v1.extend_from_slice(&7u64.to_le_bytes());
        v1.extend_from_slice(&0u16.to_le_bytes());
        v1.extend_from_slice(&1u16.to_le_bytes());
        v1.extend_from_slice(&1u16.to_le_bytes());
        v1.push(b'a');
        v1.extend_from_slice(b"data");
        let (event, time) = decode(1, &v1).unwrap();
        assert_eq!(time, 7);
        assert_eq!(event, NewEvent::new(Topic::new("a").unwrap(), "data"));
    }

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        let good = encode(&NewEvent::new(Topic::new("a").unwrap(), "x"), 1);
        for cut in 0..good.len() - 1 {
            // Every truncation that removes part of the header fails cleanly.
            let _ = decode(1, &good[..cut]);
        }
        assert!(decode(1, &[2, 0, 0]).is_err());
        assert!(decode(1, &[]).is_err());
        let mut bad_utf8 = good.clone();
        bad_utf8.push(0xff);
        assert!(decode(1, &bad_utf8).is_err());
    }
}
