//! The outgoing event: what a server sends, validated when it is built.
//!
//! Field values come from untrusted publishers. A CR or LF inside `id` or `event` would end the
//! line early and let the publisher inject fields of its own choosing (`id`, `retry`, even a
//! whole second event), so the constructors refuse them with a typed [`FieldError`] instead of
//! panicking (axum's `Event::id` panics, which is fine for trusted code and wrong for a hub).
//! `data` needs no such check: any line break in it becomes a new `data:` line when encoded.

use std::time::Duration;

/// One event as a server sends it.
///
/// Build it with [`Event::new`] and the fallible `with_*` methods, then turn it into bytes once
/// with [`Event::encode`](crate::Event::encode).
///
/// # Examples
///
/// ```
/// use ssehub_wire::Event;
///
/// let event = Event::new("hello\nworld").with_id("42")?.with_event("greeting")?;
/// assert_eq!(
///     &event.encode()[..],
///     b"id: 42\nevent: greeting\ndata: hello\ndata: world\n\n"
/// );
/// # Ok::<(), ssehub_wire::FieldError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    pub(crate) id: Option<String>,
    pub(crate) event: Option<String>,
    pub(crate) data: String,
    pub(crate) retry_ms: Option<u64>,
    pub(crate) comment: Option<String>,
}

/// The field whose value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The `id` field.
    Id,
    /// The `event` field (the event type).
    Event,
    /// A comment line.
    Comment,
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Field::Id => "id",
            Field::Event => "event",
            Field::Comment => "comment",
        })
    }
}

/// A field value that cannot be written to an event stream without changing its meaning.
///
/// Always the caller's (publisher's) fault, never retryable with the same value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// The value holds a CR or LF, which would end the line and inject fields.
    #[error("the {0} field must not contain a line break (CR or LF)")]
    LineBreak(Field),
    /// The `id` holds U+0000, which makes every receiver ignore the whole field.
    #[error("the id field must not contain a NUL character")]
    Nul,
}

impl Event {
    /// An event carrying `data`, which may be any text, including the empty string (which still
    /// dispatches: it is sent as one empty `data:` line).
    pub fn new(data: impl Into<String>) -> Self {
        Event {
            data: data.into(),
            ..Event::default()
        }
    }

    /// Sets the `id`, which receivers remember and send back as `Last-Event-ID` on reconnect.
    ///
    /// An empty id is allowed: it resets the receiver's last event id.
    ///
    /// # Errors
    ///
    /// [`FieldError::LineBreak`] if the id contains CR or LF, [`FieldError::Nul`] if it contains
    /// U+0000 (receivers ignore such an id, so sending it would silently lose the position).
    pub fn with_id(mut self, id: impl Into<String>) -> Result<Self, FieldError> {
        let id = id.into();
        check_line(&id, Field::Id)?;
        if id.contains('\0') {
            return Err(FieldError::Nul);
        }
        self.id = Some(id);
        Ok(self)
    }

    /// Sets the event type (`event:`); receivers dispatch the event under that name. An empty
    /// type means `message`.
    ///
    /// # Errors
    ///
    /// [`FieldError::LineBreak`] if the type contains CR or LF.
    pub fn with_event(mut self, event: impl Into<String>) -> Result<Self, FieldError> {
        let event = event.into();
        check_line(&event, Field::Event)?;
        self.event = Some(event);
        Ok(self)
    }

    /// Sets the receiver's reconnection time. Sub-millisecond parts are dropped.
    pub fn with_retry(mut self, retry: Duration) -> Self {
        self.retry_ms = Some(u64::try_from(retry.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Adds a comment line, which receivers ignore (useful for debugging and proxies).
    ///
    /// # Errors
    ///
    /// [`FieldError::LineBreak`] if the comment contains CR or LF.
    pub fn with_comment(mut self, comment: impl Into<String>) -> Result<Self, FieldError> {
        let comment = comment.into();
        check_line(&comment, Field::Comment)?;
        self.comment = Some(comment);
        Ok(self)
    }

    /// The event's id, if it has one.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The event's type, if it was set.
    pub fn event(&self) -> Option<&str> {
        self.event.as_deref()
    }

    /// The event's data.
    pub fn data(&self) -> &str {
        &self.data
    }

    /// The reconnection time in milliseconds, if it was set.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// The comment, if it was set.
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }
}

/// Checks that `value` fits on one line of the stream.
///
/// # Errors
///
/// [`FieldError::LineBreak`] naming `field` when `value` holds CR or LF.
pub fn check_line(value: &str, field: Field) -> Result<(), FieldError> {
    if memchr::memchr2(b'\r', b'\n', value.as_bytes()).is_some() {
        Err(FieldError::LineBreak(field))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_injection_in_id_and_event() {
        for bad in ["a\nb", "a\rb", "\r\n", "x\n"] {
            assert_eq!(
                Event::new("").with_id(bad).unwrap_err(),
                FieldError::LineBreak(Field::Id)
            );
            assert_eq!(
                Event::new("").with_event(bad).unwrap_err(),
                FieldError::LineBreak(Field::Event)
            );
            assert_eq!(
                Event::new("").with_comment(bad).unwrap_err(),
                FieldError::LineBreak(Field::Comment)
            );
        }
        assert_eq!(Event::new("").with_id("a\0").unwrap_err(), FieldError::Nul);
        // NUL is harmless in an event type: the standard keeps it.
        assert!(Event::new("").with_event("a\0").is_ok());
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(
            FieldError::LineBreak(Field::Event).to_string(),
            "the event field must not contain a line break (CR or LF)"
        );
    }

    #[test]
    fn retry_is_whole_milliseconds() {
        let e = Event::new("x").with_retry(Duration::from_micros(2500));
        assert_eq!(e.retry_ms(), Some(2));
    }
}
