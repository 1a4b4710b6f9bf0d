//! Event ids: what the hub writes after `id:` and reads back from `Last-Event-ID`.
//!
//! An id is `<log>-<seq>`: the log's random identity in 8 hex digits, then the event's position
//! in that log in decimal (`3f9a2c1b-42`). One sequence numbers every event of the hub, whatever
//! its topic, so a single id resumes a multi-topic subscription. The log identity makes an id
//! from another log (a wiped data dir, another hub, an in-memory hub that restarted) detectably
//! foreign instead of being misread as a position in this one. Clients treat ids as opaque.
//!
//! A publisher may give an event an id of its own instead (Mercure's `id` field, the native
//! routes' `?id=`): a [publisher id](check_publisher_id). It is what the event's `id:` line
//! carries, and the store keeps an index from it to the event's sequence number, so a resume
//! from it is a resume from that position. No text names two events: a publisher id may not
//! have the shape of a hub id (nor be `earliest`), so a `Last-Event-ID` is read as a hub id
//! when it has that shape and looked up in the publisher index otherwise; and the index holds
//! one event per publisher id among the retained events (a second publish of it is refused).

use std::fmt;

/// The identity of one event log, chosen at random when the log is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogId(pub u32);

impl LogId {
    /// A fresh random identity.
    pub fn random() -> Self {
        LogId(rand::random())
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// An event's position: its log and its sequence number (1 for the first event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventId {
    /// The log the event belongs to.
    pub log: LogId,
    /// The event's sequence number in that log.
    pub seq: u64,
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.log, self.seq)
    }
}

impl EventId {
    /// Parses `<8 hex digits>-<decimal>`; anything else is `None` (an unknown id).
    pub fn parse(text: &str) -> Option<Self> {
        let (log, seq) = text.split_once('-')?;
        if log.len() != 8 || !log.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(EventId {
            log: LogId(u32::from_str_radix(log, 16).ok()?),
            seq: seq.parse().ok()?,
        })
    }
}

/// The default longest publisher id, in bytes (`limits.max_id_bytes`): the index holds each
/// retained event's id, and every subscriber's copy of the event carries it.
pub const DEFAULT_MAX_ID_BYTES: usize = 256;

/// Why a publisher's id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// An empty id (an empty `id:` line resets a client's last event id).
    #[error("the id must not be empty")]
    Empty,
    /// Over the length limit.
    #[error("the id is {len} bytes, more than the {max} allowed (limits.max_id_bytes)")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// It starts with `#` (Mercure reserves those for the hub).
    #[error("ids starting with '#' are reserved for the hub")]
    Fragment,
    /// It holds CR, LF or NUL, which would end the `id:` line or be dropped by clients.
    #[error("the id must not contain CR, LF or NUL")]
    Control,
    /// It has the shape of a hub id (`<8 hex digits>-<decimal>`) or is `earliest`: a
    /// `Last-Event-ID` of it would name two events.
    #[error("ids of the form <8 hex digits>-<number>, and \"earliest\", are the hub's own")]
    Reserved,
}

/// Checks a publisher's id: not empty, at most `max_bytes`, not starting with `#`, no CR, LF
/// or NUL, and neither a hub id's shape nor `earliest` (see the module doc: so that no
/// `Last-Event-ID` can name two events).
///
/// # Errors
///
/// The [`IdError`] of the first rule broken.
pub fn check_publisher_id(id: &str, max_bytes: usize) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > max_bytes {
        return Err(IdError::TooLong {
            len: id.len(),
            max: max_bytes,
        });
    }
    if id.starts_with('#') {
        return Err(IdError::Fragment);
    }
    if id.contains(['\r', '\n', '\0']) {
        return Err(IdError::Control);
    }
    if id == "earliest" || EventId::parse(id).is_some() {
        return Err(IdError::Reserved);
    }
    Ok(())
}

/// Where a subscription starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// Live events only (no `Last-Event-ID`).
    Live,
    /// Every retained event, then live (`earliest`).
    Earliest,
    /// The events after this id, then live.
    After(String),
    /// The events after the event whose publisher id is `id`, at sequence number `seq` of
    /// the store's log (what [`Hub::resolve`](crate::Hub::resolve) makes of an
    /// [`After`](Resume::After) that names a publisher id), then live.
    Published {
        /// The id as the client sent it.
        id: String,
        /// The event's sequence number.
        seq: u64,
    },
}

impl Resume {
    /// Reads a `Last-Event-ID` value or `lastEventId` parameter: `earliest`, an id, or nothing.
    pub fn from_last_event_id(value: Option<&str>) -> Self {
        match value {
            None | Some("") => Resume::Live,
            Some("earliest") => Resume::Earliest,
            Some(id) => Resume::After(id.to_string()),
        }
    }

    /// The id the client asked to resume after, as it sent it.
    pub fn requested(&self) -> Option<&str> {
        match self {
            Resume::After(id) | Resume::Published { id, .. } => Some(id),
            Resume::Live | Resume::Earliest => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let id = EventId {
            log: LogId(0x3f9a2c1b),
            seq: 42,
        };
        assert_eq!(id.to_string(), "3f9a2c1b-42");
        assert_eq!(EventId::parse("3f9a2c1b-42"), Some(id));
        assert_eq!(EventId::parse("0000000a-0").unwrap().log, LogId(10));
    }

    #[test]
    fn foreign_ids_do_not_parse() {
        for bad in [
            "",
            "42",
            "3f9a2c1b",
            "3f9a2c1b-",
            "3f9a2c1-42",
            "3f9a2c1bb-42",
            "zzzzzzzz-1",
            "3f9a2c1b-+1",
            "3f9a2c1b--1",
            "3f9a2c1b-1-2",
            "3f9a2c1b-99999999999999999999999",
        ] {
            assert_eq!(EventId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn publisher_ids() {
        for good in ["a", "urn:uuid:1", "https://e.com/a#b", "3f9a2c1b-x", "é"] {
            assert_eq!(check_publisher_id(good, 256), Ok(()), "{good}");
        }
        assert_eq!(check_publisher_id("", 256), Err(IdError::Empty));
        assert_eq!(check_publisher_id("#1", 256), Err(IdError::Fragment));
        for bad in ["a\rb", "a\nb", "a\0"] {
            assert_eq!(
                check_publisher_id(bad, 256),
                Err(IdError::Control),
                "{bad:?}"
            );
        }
        for bad in ["earliest", "3f9a2c1b-42", "00000000-0"] {
            assert_eq!(
                check_publisher_id(bad, 256),
                Err(IdError::Reserved),
                "{bad}"
            );
        }
        assert_eq!(
            check_publisher_id(&"x".repeat(257), 256),
            Err(IdError::TooLong { len: 257, max: 256 })
        );
        assert_eq!(check_publisher_id(&"x".repeat(256), 256), Ok(()));
    }

    #[test]
    fn resume_forms() {
        assert_eq!(Resume::from_last_event_id(None), Resume::Live);
        assert_eq!(Resume::from_last_event_id(Some("")), Resume::Live);
        assert_eq!(
            Resume::from_last_event_id(Some("earliest")),
            Resume::Earliest
        );
        assert_eq!(
            Resume::from_last_event_id(Some("x")),
            Resume::After("x".into())
        );
    }
}
