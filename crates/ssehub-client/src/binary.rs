//! Binary events: how an ssehub hub sends bytes that are not text, and their bytes back.
//!
//! The hub sends a binary event's data as standard (padded) base64 on one `data:` line, and
//! marks it by its event type, which ends in [`BINARY_SUFFIX`] (`thumb.b64`; `message.b64` for
//! an untyped one). Only the hub gives such a type (it refuses it on a text publish), so
//! [`binary_data`] can trust the mark instead of guessing from the data.

use base64::Engine as _;
use ssehub_wire::MessageEvent;

/// The end of the event type of a binary event (the hub's `ssehub_core::BINARY_SUFFIX`).
pub const BINARY_SUFFIX: &str = ".b64";

/// The bytes of a binary event, decoded: `None` for a text event (its type does not end in
/// [`BINARY_SUFFIX`]), an error when the data is not the base64 the hub sends.
///
/// # Examples
///
/// ```
/// use ssehub_client::{MessageEvent, binary_data};
///
/// let event = MessageEvent {
///     event_type: "thumb.b64".into(),
///     data: "AP8K".into(),
///     last_event_id: "1".into(),
/// };
/// assert_eq!(binary_data(&event).unwrap().unwrap(), [0, 0xff, b'\n']);
/// ```
pub fn binary_data(event: &MessageEvent) -> Option<Result<Vec<u8>, base64::DecodeError>> {
    event
        .event_type
        .ends_with(BINARY_SUFFIX)
        .then(|| base64::engine::general_purpose::STANDARD.decode(&event.data))
}

/// The publisher's own type of a binary event (`thumb` for `thumb.b64`, `message` for
/// `message.b64`); a text event's type as it is.
pub fn base_type(event_type: &str) -> &str {
    event_type.strip_suffix(BINARY_SUFFIX).unwrap_or(event_type)
}

/// Standard base64 of `bytes`, as the hub sends them and a batch's `data_base64` takes them.
pub(crate) fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, data: &str) -> MessageEvent {
        MessageEvent {
            event_type: event_type.into(),
            data: data.into(),
            last_event_id: String::new(),
        }
    }

    #[test]
    fn only_marked_events_are_binary() {
        assert!(binary_data(&event("message", "AAAA")).is_none());
        assert!(binary_data(&event("b64", "AAAA")).is_none());
        assert_eq!(
            binary_data(&event("message.b64", "")).unwrap().unwrap(),
            b""
        );
        assert!(
            binary_data(&event("x.b64", "not base64!"))
                .unwrap()
                .is_err()
        );
        let bytes: Vec<u8> = (0..=255).collect();
        let round = binary_data(&event("x.b64", &encode(&bytes))).unwrap();
        assert_eq!(round.unwrap(), bytes);
        assert_eq!(
            (base_type("thumb.b64"), base_type("thumb")),
            ("thumb", "thumb")
        );
    }
}
