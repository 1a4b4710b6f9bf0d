//! The incremental, byte-level event-stream parser (WHATWG HTML §9.2.6, exactly).
//!
//! # Model
//!
//! The caller owns the I/O: it [`feed`](Parser::feed)s whatever bytes arrived, pulls
//! [`Frame`]s with [`next`](Parser::next) until it returns `None` ("need more bytes" is the
//! normal outcome, as in mini-redis's `Frame::check`), and calls
//! [`end_body`](Parser::end_body) when a response body ends. One `Parser` lives as long as an
//! `EventSource` does: the last event id and the reconnection time persist across bodies,
//! everything else (BOM, partial line, pending event) is per body.
//!
//! # Why byte-level
//!
//! Lines are split on raw bytes and each value is decoded with `String::from_utf8_lossy` only
//! when it is used. CR and LF can never occur inside a multi-byte UTF-8 sequence, so this is
//! exactly the standard's "decode the whole stream, then split lines", without decoding (or
//! allocating for) the lines nobody reads, and with no way for a chunk boundary inside a
//! character to matter. See `../shared/spec/sse-spec.md` §1.2 for the rules and the crates that
//! get them wrong.
//!
//! # Chunk boundaries
//!
//! - The BOM (EF BB BF) is stripped once per body, and the parser waits for up to three bytes to
//!   decide, so a BOM split across chunks is still stripped.
//! - A CR ends its line at once (events are never held back waiting for the next chunk); the
//!   parser only remembers to swallow an LF that starts the next chunk, since it is the second
//!   half of a CRLF.
//! - A partial line is scanned once: bytes fed later are searched from where the last search
//!   stopped, so a 5 MiB line fed one byte at a time costs linear time, not quadratic.
//!
//! # Limits
//!
//! The standard has none; a parser facing the network needs them. [`Limits`] caps the length
//! of one line and the size of one event's data. Over a cap, [`next`](Parser::next) returns a
//! typed [`ParseError`] once and the parser recovers by itself: the offending event is dropped
//! (its id still counts, so a resuming client moves past it) and parsing goes on with the next
//! one. Comments and unknown fields over the line cap are skipped silently without being
//! buffered, since nobody would read them.

use std::borrow::Cow;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Caps that keep a hostile or broken stream from growing memory without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest line (field name, colon and value, without its line end) kept in memory.
    pub max_line_bytes: usize,
    /// The largest data buffer of one event (all its `data:` lines joined).
    pub max_data_bytes: usize,
}

impl Limits {
    /// No caps at all: for trusted input only.
    pub const UNBOUNDED: Limits = Limits {
        max_line_bytes: usize::MAX,
        max_data_bytes: usize::MAX,
    };
}

impl Default for Limits {
    /// 16 MiB for a line and for an event's data: far above what real streams send (a 5 MiB
    /// payload in base64 fits), far below what would hurt a server.
    fn default() -> Self {
        Limits {
            max_line_bytes: 16 << 20,
            max_data_bytes: 16 << 20,
        }
    }
}

/// A stream that broke one of the [`Limits`]. The parser has already recovered: keep calling
/// [`Parser::next`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A `data`, `event` or `id` line was longer than the limit; its event was dropped.
    #[error("an event-stream line exceeds the limit of {limit} bytes; the event was dropped")]
    LineTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// An event's data grew past the limit; the event was dropped.
    #[error("an event's data exceeds the limit of {limit} bytes; the event was dropped")]
    DataTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

/// A dispatched event, as an `EventSource` delivers it (a `MessageEvent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEvent {
    /// The event type: the last `event:` value of the block, or `message` when it was empty.
    pub event_type: String,
    /// The data: the block's `data:` values joined with LF.
    pub data: String,
    /// The last event id string at dispatch time (it persists until a new `id:` changes it).
    pub last_event_id: String,
}

/// What the parser produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// An event was dispatched.
    Event(MessageEvent),
    /// A comment line, without its colon (a leading space is kept). Only produced when comments
    /// were asked for with [`Parser::with_comments`].
    Comment(String),
}

/// An incremental event-stream parser: feed bytes, pull frames, end each body (the crate docs
/// say how chunk boundaries, limits and the BOM are handled).
///
/// # Examples
///
/// ```
/// use ssehub_wire::{Frame, Parser};
///
/// let mut parser = Parser::new();
/// parser.feed(b"id: 1\ndata: hel");
/// assert!(parser.next().is_none()); // need more bytes
/// parser.feed(b"lo\n\n");
/// let Some(Ok(Frame::Event(event))) = parser.next() else { panic!() };
/// assert_eq!((event.data.as_str(), event.last_event_id.as_str()), ("hello", "1"));
/// ```
#[derive(Debug, Clone)]
pub struct Parser {
    input: Input,
    state: State,
}

/// The bytes not yet turned into lines.
#[derive(Debug, Clone, Default)]
struct Input {
    buf: Vec<u8>,
    /// Start of the first byte not yet consumed.
    pos: usize,
    /// `buf[pos..scanned]` is known to hold no CR or LF.
    scanned: usize,
    /// The body's first bytes have been checked for a BOM.
    bom_checked: bool,
    /// The last line ended with CR: an LF right after it is the rest of a CRLF.
    skip_lf: bool,
    /// The current line is over the limit and being skipped up to its end.
    skipping_line: bool,
}

/// The standard's buffers, plus what persists across bodies.
#[derive(Debug, Clone, Default)]
struct State {
    data: Vec<u8>,
    event_type: Vec<u8>,
    id_buffer: String,
    last_event_id: String,
    retry_ms: Option<u64>,
    /// The pending event broke a limit: drop its data and do not dispatch it.
    event_dropped: bool,
    comments: bool,
    limits: Limits,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new()
    }
}

impl Parser {
    /// A parser with the default [`Limits`] that does not surface comments.
    pub fn new() -> Self {
        Parser::with_limits(Limits::default())
    }

    /// A parser with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        Parser {
            input: Input::default(),
            state: State {
                limits,
                ..State::default()
            },
        }
    }

    /// Makes [`next`](Parser::next) also return comment lines as [`Frame::Comment`].
    pub fn with_comments(mut self, comments: bool) -> Self {
        self.state.comments = comments;
        self
    }

    /// Sets the last event id string, as when an `EventSource` reconnects with a
    /// `Last-Event-ID` it already holds: events without an `id:` field report it.
    pub fn set_last_event_id(&mut self, id: impl Into<String>) {
        self.state.last_event_id = id.into();
        self.state.id_buffer.clone_from(&self.state.last_event_id);
    }

    /// The last event id string: what a reconnect must send as `Last-Event-ID` (nothing when
    /// empty). It changes only when an event block ends, never from an incomplete block.
    pub fn last_event_id(&self) -> &str {
        &self.state.last_event_id
    }

    /// The reconnection time in milliseconds set by the last valid `retry` field, if any.
    pub fn reconnection_time_ms(&self) -> Option<u64> {
        self.state.retry_ms
    }

    /// Appends bytes received from the stream. Call [`next`](Parser::next) until it returns
    /// `None` before the next `feed`, or the buffered bytes accumulate.
    pub fn feed(&mut self, chunk: &[u8]) {
        let input = &mut self.input;
        if input.pos == input.buf.len() {
            input.buf.clear();
        } else if input.pos > 0 {
            input.buf.drain(..input.pos);
        }
        input.scanned -= input.pos.min(input.scanned);
        input.pos = 0;
        if input.skipping_line {
            // The line being skipped is not kept, so neither are its new bytes: only look for
            // its end.
            if let Some(i) = memchr::memchr2(b'\r', b'\n', chunk) {
                input.buf.extend_from_slice(&chunk[i..]);
            }
        } else {
            input.buf.extend_from_slice(chunk);
        }
    }

    /// The next frame from the bytes fed so far, or `None` when more bytes are needed.
    ///
    /// # Errors
    ///
    /// A [`ParseError`] when the stream breaks a [`Limits`] cap; the parser has recovered and
    /// the following calls go on with the rest of the stream.
    #[allow(clippy::should_implement_trait)] // Not an iterator: `None` means "not yet".
    pub fn next(&mut self) -> Option<Result<Frame, ParseError>> {
        loop {
            let input = &mut self.input;
            if !input.bom_checked {
                let avail = &input.buf[input.pos..];
                if avail.len() < BOM.len() && BOM.starts_with(avail) {
                    return None;
                }
                if avail.starts_with(BOM) {
                    input.pos += BOM.len();
                }
                input.bom_checked = true;
            }
            if input.skip_lf {
                if *input.buf.get(input.pos)? == b'\n' {
                    input.pos += 1;
                }
                input.skip_lf = false;
            }
            let from = input.pos.max(input.scanned);
            let Some(offset) = memchr::memchr2(b'\r', b'\n', &input.buf[from..]) else {
                input.scanned = input.buf.len();
                return self.partial_line();
            };
            let end = from + offset;
            let start = input.pos;
            input.skip_lf = input.buf[end] == b'\r';
            input.pos = end + 1;
            input.scanned = input.pos;
            if std::mem::take(&mut input.skipping_line) {
                continue;
            }
            let line = &input.buf[start..end];
            let frame = if line.len() > self.state.limits.max_line_bytes {
                // The same verdict as for a partial line, so chunking never changes the result.
                self.state.overlong_line(line)
            } else {
                self.state.line(line)
            };
            if frame.is_some() {
                return frame;
            }
        }
    }

    /// Checks the unterminated line at the end of the input against the line limit.
    fn partial_line(&mut self) -> Option<Result<Frame, ParseError>> {
        let input = &mut self.input;
        let line = &input.buf[input.pos..];
        let limit = self.state.limits.max_line_bytes;
        // Without a colon the field name is the whole line so far; while it is short it may
        // still become a known name, so wait for the line to decide.
        if line.len() <= limit || (line.len() <= 5 && !line.contains(&b':')) {
            return None;
        }
        let error = self.state.overlong_line(line);
        input.pos = input.buf.len();
        input.scanned = input.pos;
        input.skipping_line = true;
        error
    }

    /// Ends the current response body: drops its incomplete line and undispatched event (the
    /// standard never dispatches them) and prepares for the next body, which may start with
    /// its own BOM. The last event id and reconnection time carry over.
    ///
    /// Call it once [`next`](Parser::next) has returned `None`; complete lines still buffered
    /// are dropped too.
    pub fn end_body(&mut self) {
        self.input = Input {
            buf: std::mem::take(&mut self.input.buf),
            ..Input::default()
        };
        self.input.buf.clear();
        let state = &mut self.state;
        state.data.clear();
        state.event_type.clear();
        state.event_dropped = false;
        state.id_buffer.clone_from(&state.last_event_id);
    }
}

impl State {
    /// Processes one complete line (§9.2.6 "interpret a stream", per line).
    fn line(&mut self, line: &[u8]) -> Option<Result<Frame, ParseError>> {
        if line.is_empty() {
            return self.dispatch().map(|event| Ok(Frame::Event(event)));
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(0) => {
                return self
                    .comments
                    .then(|| Ok(Frame::Comment(decode(&line[1..]).into_owned())));
            }
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => return self.data(value).err().map(Err),
            b"event" => {
                self.event_type.clear();
                self.event_type.extend_from_slice(value);
            }
            // An id containing NUL is ignored whole (the previous id stays).
            b"id" if !value.contains(&0) => {
                self.id_buffer.clear();
                self.id_buffer.push_str(&decode(value));
            }
            b"retry" => {
                if let Some(ms) = parse_retry(value) {
                    self.retry_ms = Some(ms);
                }
            }
            _ => {}
        }
        None
    }

    /// Handles a line over the length limit: an error that drops the event when the line
    /// carried something the event needs (`data`, `event`, `id`); ignored otherwise (a
    /// comment, an unknown field, or a `retry` so long it could only be ignored).
    fn overlong_line(&mut self, line: &[u8]) -> Option<Result<Frame, ParseError>> {
        let name = match memchr::memchr(b':', line) {
            Some(colon) => &line[..colon],
            None => line,
        };
        match name {
            b"data" | b"event" | b"id" => {
                self.drop_event();
                Some(Err(ParseError::LineTooLong {
                    limit: self.limits.max_line_bytes,
                }))
            }
            _ => None,
        }
    }

    fn data(&mut self, value: &[u8]) -> Result<(), ParseError> {
        if self.event_dropped {
            return Ok(());
        }
        let limit = self.limits.max_data_bytes;
        if self
            .data
            .len()
            .saturating_add(value.len())
            .saturating_add(1)
            > limit
        {
            self.drop_event();
            return Err(ParseError::DataTooLarge { limit });
        }
        // One allocation for the value and its LF: the buffer is often empty (its previous
        // allocation left with the last event), and growing it twice cost a fifth of the time
        // on small events.
        self.data.reserve(value.len() + 1);
        self.data.extend_from_slice(value);
        self.data.push(b'\n');
        Ok(())
    }

    fn drop_event(&mut self) {
        self.event_dropped = true;
        self.data = Vec::new();
    }

    /// Dispatches the pending event (§9.2.6 "dispatch the event", browser steps).
    fn dispatch(&mut self) -> Option<MessageEvent> {
        if self.last_event_id != self.id_buffer {
            self.last_event_id.clone_from(&self.id_buffer);
        }
        if std::mem::take(&mut self.event_dropped) || self.data.is_empty() {
            self.data.clear();
            self.event_type.clear();
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.last() == Some(&b'\n') {
            data.pop();
        }
        let event_type = if self.event_type.is_empty() {
            String::from("message")
        } else {
            decode(&self.event_type).into_owned()
        };
        self.event_type.clear();
        Some(MessageEvent {
            event_type,
            data: String::from_utf8(data)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            last_event_id: self.last_event_id.clone(),
        })
    }
}

/// UTF-8 decode with U+FFFD replacement (maximal subparts, as WHATWG does).
fn decode(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// A `retry` value: one or more ASCII digits, base 10. Anything else, or a value too large for
/// a `u64`, is ignored.
fn parse_retry(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |ms, &b| {
        if b.is_ascii_digit() {
            ms.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(parser: &mut Parser) -> Vec<Result<Frame, ParseError>> {
        std::iter::from_fn(|| parser.next()).collect()
    }

    fn data_of(frames: &[Result<Frame, ParseError>]) -> Vec<String> {
        frames
            .iter()
            .filter_map(|f| match f {
                Ok(Frame::Event(e)) => Some(e.data.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn retry_forms() {
        assert_eq!(parse_retry(b"03000"), Some(3000));
        assert_eq!(parse_retry(b""), None);
        assert_eq!(parse_retry(b"+1"), None);
        assert_eq!(parse_retry(b"1 "), None);
        assert_eq!(parse_retry(b"99999999999999999999999"), None);
        assert_eq!(parse_retry(b"18446744073709551615"), Some(u64::MAX));
    }

    #[test]
    fn cr_at_chunk_end_dispatches_at_once() {
        let mut p = Parser::new();
        p.feed(b"data: a\r\r");
        assert_eq!(data_of(&events(&mut p)), ["a"]);
        p.feed(b"\ndata: b\r\n\r\n");
        assert_eq!(data_of(&events(&mut p)), ["b"]);
    }

    #[test]
    fn overlong_data_line_is_an_error_then_recovers() {
        let mut p = Parser::with_limits(Limits {
            max_line_bytes: 16,
            max_data_bytes: 1024,
        });
        p.feed(b"id: 1\ndata: 0123456789abcdef");
        assert_eq!(events(&mut p), [Err(ParseError::LineTooLong { limit: 16 })]);
        p.feed(b"more bytes of the same line");
        p.feed(b"\n\ndata: ok\n\n");
        let frames = events(&mut p);
        assert_eq!(data_of(&frames), ["ok"]);
        assert_eq!(
            p.last_event_id(),
            "1",
            "the dropped event's id still counts"
        );
        // The skipped line was never buffered whole.
        assert!(p.input.buf.capacity() < 256);
    }

    #[test]
    fn overlong_comment_is_skipped_silently() {
        let mut p = Parser::with_limits(Limits {
            max_line_bytes: 8,
            max_data_bytes: 8,
        });
        p.feed(b": a very long comment line\ndata: x\n\n");
        assert_eq!(data_of(&events(&mut p)), ["x"]);
    }

    #[test]
    fn data_limit_drops_only_that_event() {
        let mut p = Parser::with_limits(Limits {
            max_line_bytes: 64,
            max_data_bytes: 8,
        });
        p.feed(b"data: 1234\ndata: 5678\ndata: 9\n\ndata: next\n\n");
        let frames = events(&mut p);
        assert_eq!(frames[0], Err(ParseError::DataTooLarge { limit: 8 }));
        assert_eq!(data_of(&frames), ["next"]);
    }

    #[test]
    fn end_body_discards_partial_event_but_keeps_id_and_retry() {
        let mut p = Parser::new();
        p.feed(b"retry: 5\nid: 1\ndata: a\n\nid: 2\ndata: partial");
        assert_eq!(data_of(&events(&mut p)), ["a"]);
        p.end_body();
        assert_eq!(p.last_event_id(), "1");
        assert_eq!(p.reconnection_time_ms(), Some(5));
        p.feed(b"\xEF\xBB\xBFdata: b\n\n");
        let frames = events(&mut p);
        assert_eq!(
            frames,
            [Ok(Frame::Event(MessageEvent {
                event_type: "message".into(),
                data: "b".into(),
                last_event_id: "1".into()
            }))]
        );
    }

    #[test]
    fn comments_on_request() {
        let mut p = Parser::new().with_comments(true);
        p.feed(b": hi\n:\ndata\n\n");
        let frames = events(&mut p);
        assert_eq!(frames[0], Ok(Frame::Comment(" hi".into())));
        assert_eq!(frames[1], Ok(Frame::Comment(String::new())));
        assert_eq!(data_of(&frames), [""]);
    }
}
