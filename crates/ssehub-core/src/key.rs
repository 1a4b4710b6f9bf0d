//! Keys: what makes a topic a table of current values (issue 15).
//!
//! A publisher may give an event a key ([`NewEvent::with_key`]): the event is then the newest
//! value of that key in each of its topics, and replaces the key's earlier events there. Every
//! store keeps an index from each (topic, key) to the sequence number of its newest retained
//! event, updated in the same atomic step as the append and by retention
//! ([`Store::snapshot`]); a subscription with a snapshot ([`Hub::subscribe_with_snapshot`])
//! starts with those newest events, in id order, instead of the whole history.
//!
//! A tombstone ([`NewEvent::tombstone`]) deletes a key: it is the key's newest event like any
//! other (so an older value cannot come back into the snapshot), but the snapshot leaves the
//! key out. Subscribers that are live when it is published receive it as an event of type
//! [`DELETE_EVENT`] whose data is the key, so a page can drop the key from its own state.
//!
//! Keys are not on the wire: SSE has no field for them that browsers expose. An application
//! that needs the key of a value carries it in the data (the position of cursor `alice` says
//! `"alice"` in its JSON), which it usually does anyway.
//!
//! [`Store::snapshot`]: crate::Store::snapshot
//! [`Hub::subscribe_with_snapshot`]: crate::Hub::subscribe_with_snapshot

/// The event type of a tombstone, as subscribers receive it (its data is the key). The
/// `ssehub-` prefix is the hub's, so no publisher can send an event that looks like one.
pub const DELETE_EVENT: &str = "ssehub-delete";

/// The longest key accepted by default, in bytes (`limits.max_key_bytes`).
pub const DEFAULT_MAX_KEY_BYTES: usize = 256;

/// Why a publisher's key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// An empty key.
    #[error("the key must not be empty")]
    Empty,
    /// Over the length limit.
    #[error("the key is {len} bytes, more than the {max} allowed (limits.max_key_bytes)")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// It holds CR, LF or NUL: a tombstone carries its key as its data, and an index key with
    /// them would be unreadable in logs and tools.
    #[error("the key must not contain CR, LF or NUL")]
    Control,
}

/// Checks a publisher's key: not empty, at most `max_bytes` bytes, no CR, LF or NUL.
///
/// # Errors
///
/// The [`KeyError`] that says why not.
pub fn check_key(key: &str, max_bytes: usize) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > max_bytes {
        return Err(KeyError::TooLong {
            len: key.len(),
            max: max_bytes,
        });
    }
    if key.contains(['\r', '\n', '\0']) {
        return Err(KeyError::Control);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        assert_eq!(check_key("alice", 256), Ok(()));
        assert_eq!(check_key("", 256), Err(KeyError::Empty));
        assert_eq!(
            check_key("abc", 2),
            Err(KeyError::TooLong { len: 3, max: 2 })
        );
        for bad in ["a\rb", "a\nb", "a\0b"] {
            assert_eq!(check_key(bad, 256), Err(KeyError::Control));
        }
    }
}
