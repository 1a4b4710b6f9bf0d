//! One event as a Redis stream entry: the script arguments an append sends, and the
//! [`StoredEvent`] made back from what a read or the tail returns.
//!
//! The fields are those of `scripts.rs` (`t`, `y`, `d`, `p`, `r`, `z`, `ts`, `i`, `b`, `k`,
//! `x`), always in that order, so that a reply is a flat list of values with no field names to
//! look up. An entry written before publisher ids has none of `i`, `b`, `k`, `x`; one written
//! before binary events and keys no `b`, `k`, `x` (the read scripts answer them empty; the tail
//! sees the entry short). `b` is `1` for a binary event, whose `d` is then its raw bytes (Redis
//! strings hold any bytes); `k` is the key (empty for none), `x` `1` for a tombstone.

use std::sync::Arc;

use redis::Value;
use ssehub_core::{LogId, NewEvent, StoreError, StoredEvent, Topic};

/// Values per entry in a read's reply: the entry id and its eleven fields.
pub(crate) const VALUES_PER_ENTRY: usize = 12;

/// The ten script arguments of one event (`APPEND`): topics, type, data (a binary event's raw
/// bytes), private, retry, encoded size, publisher id (empty for none), binary (`1`, else
/// empty), key (empty for none), `1` for a tombstone.
pub(crate) fn append_args(event: &NewEvent, encoded_len: usize) -> [Vec<u8>; 10] {
    let topics: Vec<&str> = event.topics.iter().map(Topic::as_str).collect();
    [
        topics.join("\n").into_bytes(),
        event.event_type.clone().unwrap_or_default().into_bytes(),
        match &event.binary {
            Some(bytes) => bytes.to_vec(),
            None => event.data.clone().into_bytes(),
        },
        if event.private { "1" } else { "0" }.into(),
        event
            .retry_ms
            .map(|ms| ms.to_string())
            .unwrap_or_default()
            .into_bytes(),
        encoded_len.to_string().into_bytes(),
        event.id.clone().unwrap_or_default().into_bytes(),
        if event.binary.is_some() { "1" } else { "" }.into(),
        event.key.clone().unwrap_or_default().into_bytes(),
        if event.delete { "1" } else { "" }.into(),
    ]
}

/// A reply value as text.
pub(crate) fn text(value: &Value) -> Result<&str, StoreError> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8")),
        Value::SimpleString(s) => Ok(s),
        other => Err(bad(&format!("expected a string, got {other:?}"))),
    }
}

/// A reply value as a number (an integer, or its decimal text).
pub(crate) fn number(value: &Value) -> Result<u64, StoreError> {
    match value {
        Value::Int(n) => u64::try_from(*n).map_err(|_| bad("a negative number")),
        other => text(other)?.parse().map_err(|_| bad("not a number")),
    }
}

/// The sequence number of an entry id `<seq>-0`.
pub(crate) fn seq_of(id: &str) -> Result<u64, StoreError> {
    id.strip_suffix("-0")
        .and_then(|seq| seq.parse().ok())
        .ok_or_else(|| bad(&format!("an entry id not of ssehub: {id}")))
}

/// The event of one entry: `values` are its id and then its field values, in order.
pub(crate) fn decode(log: LogId, values: &[Value]) -> Result<Arc<StoredEvent>, StoreError> {
    let [id, topics, event_type, data, private, retry, rest @ ..] = values else {
        return Err(bad("a short entry"));
    };
    // `z`, `ts`, then `i` (missing from an entry written before publisher ids), `b`, `k` and
    // `x` (missing from one written before binary events and keys).
    let field = |i: usize| rest.get(i).map_or(Ok(""), text);
    let publisher_id = field(2)?;
    let binary = field(3)? == "1";
    let key = field(4)?;
    let (data, bytes) = if binary {
        let Value::BulkString(bytes) = data else {
            return Err(bad("binary data that is not a bulk string"));
        };
        (String::new(), Some(bytes.clone().into()))
    } else {
        (text(data)?.to_string(), None)
    };
    let topics = text(topics)?
        .split('\n')
        .map(|name| Topic::iri(name).map_err(|e| bad(&format!("invalid topic: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let event_type = text(event_type)?;
    let retry = text(retry)?;
    let event = NewEvent {
        topics,
        event_type: (!event_type.is_empty()).then(|| event_type.to_string()),
        data,
        private: text(private)? == "1",
        retry_ms: if retry.is_empty() {
            None
        } else {
            Some(retry.parse().map_err(|_| bad("retry is not a number"))?)
        },
        id: (!publisher_id.is_empty()).then(|| publisher_id.to_string()),
        key: (!key.is_empty()).then(|| key.to_string()),
        delete: !key.is_empty() && field(5)? == "1",
        binary: bytes,
    };
    Ok(StoredEvent::new(log, seq_of(text(id)?)?, event))
}

/// A reply that is not what our scripts write: another program's keys, or a bug.
pub(crate) fn bad(what: &str) -> StoreError {
    StoreError::Io(format!("unexpected data in Redis: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_round_trips_through_its_fields() {
        let mut event = NewEvent::new(Topic::new("a/b").unwrap(), "x\ny")
            .with_type("t")
            .unwrap();
        event.topics.push(Topic::iri("https://e.com/ü").unwrap());
        event.private = true;
        event.retry_ms = Some(1500);
        event.id = Some("urn:uuid:1".into());
        event.key = Some("k ü".into());
        event.delete = true;
        let args = append_args(&event, 0);
        let mut values = vec![Value::BulkString(b"42-0".to_vec())];
        values.extend(args.iter().map(|a| Value::BulkString(a.clone())));
        // `ts` goes between the size and the publisher id.
        values.insert(7, Value::BulkString(b"0".to_vec()));
        let stored = decode(LogId(7), &values).unwrap();
        assert_eq!(stored.event, event);
        assert_eq!(stored.seq(), 42);
        assert_eq!(values.len(), VALUES_PER_ENTRY);
        let plain = NewEvent::new(Topic::new("a").unwrap(), "");
        let args = append_args(&plain, 0);
        let mut values = vec![Value::BulkString(b"1-0".to_vec())];
        values.extend(args.iter().map(|a| Value::BulkString(a.clone())));
        assert_eq!(decode(LogId(7), &values).unwrap().event, plain);
        // A binary event: its raw bytes, not UTF-8, in `d`, marked by `b`.
        let binary = NewEvent::binary(Topic::new("a").unwrap(), vec![0, 0xff, b'\n']);
        let args = append_args(&binary, 0);
        assert_eq!(args[2], [0, 0xff, b'\n']);
        let mut values = vec![Value::BulkString(b"2-0".to_vec())];
        values.extend(args.iter().map(|a| Value::BulkString(a.clone())));
        values.insert(7, Value::BulkString(b"0".to_vec()));
        assert_eq!(decode(LogId(7), &values).unwrap().event, binary);
    }

    #[test]
    fn foreign_entry_ids_are_refused() {
        for id in ["1", "1-1", "x-0", "-0"] {
            assert!(seq_of(id).is_err(), "{id}");
        }
    }
}
