//! Event ids: what the hub writes after `id:` and reads back from `Last-Event-ID`.
//!
//! An id is `<log>-<seq>`: the log's random identity in 8 hex digits, then the event's position
//! in that log in decimal (`3f9a2c1b-42`). One sequence numbers every event of the hub, whatever
//! its topic, so a single id resumes a multi-topic subscription. The log identity makes an id
//! from another log (a wiped data dir, another hub, an in-memory hub that restarted) detectably
//! foreign instead of being misread as a position in this one. Clients treat ids as opaque.

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

/// Where a subscription starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// Live events only (no `Last-Event-ID`).
    Live,
    /// Every retained event, then live (`earliest`).
    Earliest,
    /// The events after this id, then live.
    After(String),
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
