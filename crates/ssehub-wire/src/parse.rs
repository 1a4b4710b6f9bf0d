//! The incremental, byte-level event-stream parser (WHATWG HTML §9.2.6, exactly).
//!
//! # Model
//!
//! The caller owns the I/O. For each chunk of bytes that arrived it iterates over
//! [`feed_iter`](Parser::feed_iter)`(chunk)`, the frames the chunk completes; or it
//! [`feed`](Parser::feed)s the chunk and pulls [`Frame`]s with [`next`](Parser::next) until
//! it returns `None` ("need more bytes" is the normal outcome, as in mini-redis's
//! `Frame::check`). Both give the same frames, however the stream is cut. It calls
//! [`end_body`](Parser::end_body) when a response body ends. One `Parser` lives as long as an
//! `EventSource` does: the last event id and the reconnection time persist across bodies,
//! everything else (BOM, partial line, pending event) is per body.
//!
//! # Copies
//!
//! `feed_iter` reads complete lines straight from the caller's chunk and keeps only the start
//! of an unterminated last line. A `data` line's value is copied once, into the event's data
//! buffer, which becomes the event's `data` string without another copy: even a value split
//! across chunks goes there piece by piece rather than waiting, whole, in a line buffer (its
//! first `data:` and one more byte excepted). `feed` copies the chunk into the parser first,
//! since `next` runs after it has returned: one more copy of every byte.
//!
//! # Why byte-level
//!
//! Lines are split on raw bytes and each value is decoded with `String::from_utf8_lossy` only
//! when it is used. CR and LF can never occur inside a multi-byte UTF-8 sequence, so this is
//! exactly the standard's "decode the whole stream, then split lines", without decoding (or
//! allocating for) the lines nobody reads, and with no way for a chunk boundary inside a
//! character to matter. The rules are the WHATWG HTML standard's ("Interpreting an event
//! stream", §9.2.6); `conformance/README.md` lists the suites whose cases hold us to them.
//!
//! # Chunk boundaries
//!
//! - The BOM (EF BB BF) is stripped once per body, and the parser waits for up to three bytes to
//!   decide, so a BOM split across chunks is still stripped.
//! - A CR ends its line at once (events are never held back waiting for the next chunk); the
//!   parser only remembers to swallow an LF that starts the next chunk, since it is the second
//!   half of a CRLF.
//! - A partial line is scanned once: bytes fed later are searched from where the last search
//!   stopped (a `data` value is not kept at all), so a 5 MiB line fed one byte at a time costs
//!   linear time, not quadratic.
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

/// The start of a `data` line.
const DATA_PREFIX: &[u8] = b"data:";

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
/// Two ways to give it bytes, which produce exactly the same frames:
///
/// - [`feed_iter`](Parser::feed_iter) takes a chunk and returns an iterator over the frames it
///   completes. Complete lines are read straight from the chunk and only an unterminated last
///   line is kept, so each byte is copied once: use it wherever the chunk is at hand while the
///   frames are consumed (a read loop, a body stream).
/// - [`feed`](Parser::feed) copies a chunk into the parser, and [`next`](Parser::next) pulls
///   frames later, after `feed` has returned.
///
/// # Examples
///
/// ```
/// use ssehub_wire::{Frame, Parser};
///
/// let mut parser = Parser::new();
/// assert_eq!(parser.feed_iter(b"id: 1\ndata: hel").count(), 0); // need more bytes
/// let frames: Vec<_> = parser.feed_iter(b"lo\n\n").collect();
/// let [Ok(Frame::Event(event))] = &frames[..] else { panic!() };
/// assert_eq!((event.data.as_str(), event.last_event_id.as_str()), ("hello", "1"));
///
/// // The same with `feed` and `next`.
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

/// The bytes not yet turned into lines, and where the next byte received stands.
#[derive(Debug, Clone, Default)]
struct Input {
    /// Bytes given to [`Parser::feed`] and not read yet, or the start of an unterminated line
    /// kept from a chunk given to [`Parser::feed_iter`].
    buf: Vec<u8>,
    /// Start of the first byte not yet consumed.
    pos: usize,
    /// `buf[pos..scanned]` is known to hold no CR or LF.
    scanned: usize,
    cursor: Cursor,
}

/// Where the next byte of the body falls; reset with each body.
#[derive(Debug, Clone, Copy, Default)]
struct Cursor {
    /// The body's first bytes have been checked for a BOM.
    bom_checked: bool,
    /// The last line ended with CR: an LF right after it is the rest of a CRLF.
    skip_lf: bool,
    /// The line the next byte belongs to.
    line: Line,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Line {
    /// At the start of a line, or in a line whose first bytes are kept in [`Input::buf`].
    #[default]
    Start,
    /// In a line over the length limit, skipped (not kept) up to its end.
    Skip,
    /// In a `data` line whose value so far went straight to the data buffer: a data line split
    /// across chunks is copied once, however many chunks it spans. `len` is the length of the
    /// line so far (field name, colon and value), for the line limit.
    Data { len: usize },
}

/// Where [`Cursor::read`] stopped: a frame to return, told by a small value so that the frame
/// itself is built only once, where it is returned ([`State::frame`]).
enum Found {
    /// A blank line that dispatches an event: [`State::take_event`] builds it.
    Event,
    /// A comment line to return: its text (after the colon) is `src[start..end]`.
    Comment { start: usize, end: usize },
    /// A limit was broken.
    Error(ParseError),
}

/// The standard's buffers, plus what persists across bodies.
#[derive(Debug, Clone, Default)]
struct State {
    /// The data buffer: each `data:` value followed by LF, then the value so far of a `data`
    /// line not finished yet ([`Line::Data`]).
    data: Vec<u8>,
    /// The data buffer's size when the last event was dispatched: what an event's data buffer
    /// is first reserved for, so a large event's value split across chunks does not grow its
    /// buffer step by step (streams tend to send events of similar sizes).
    data_hint: usize,
    event_type: String,
    /// The standard's id buffer is `pending_id` when `id_set`, else `last_event_id`: it only
    /// differs from the last event id between an `id` line and the end of its block.
    pending_id: String,
    /// An `id` line set `pending_id` since the last dispatch.
    id_set: bool,
    last_event_id: String,
    retry_ms: Option<u64>,
    /// The pending event broke a limit: drop its data and do not dispatch it.
    event_dropped: bool,
    comments: bool,
    limits: Limits,
    line_ends: LineEnds,
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

    /// Makes [`next`](Parser::next) and [`feed_iter`](Parser::feed_iter) also return comment
    /// lines as [`Frame::Comment`].
    pub fn with_comments(mut self, comments: bool) -> Self {
        self.state.comments = comments;
        self
    }

    /// Sets the last event id string, as when an `EventSource` reconnects with a
    /// `Last-Event-ID` it already holds: events without an `id:` field report it.
    pub fn set_last_event_id(&mut self, id: impl Into<String>) {
        self.state.last_event_id = id.into();
        self.state.id_set = false;
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

    /// Parses `chunk`, the next bytes received from the stream, and iterates over the frames
    /// it completes: the same frames, in the same order, as [`feed`](Parser::feed) followed
    /// by [`next`](Parser::next) until `None`, with the same [`ParseError`]s.
    ///
    /// Complete lines are read straight from `chunk` rather than copied into the parser first;
    /// only an unterminated last line is kept for the next chunk (and a `data` line's value not
    /// even that: it goes straight to the event's data). Bytes the parser still held from an
    /// earlier [`feed`](Parser::feed) come first.
    ///
    /// Dropping the iterator before it returns `None` keeps the rest of `chunk` in the parser,
    /// as `feed` would: [`next`](Parser::next) or the next `feed_iter` goes on from there.
    /// Once it has returned `None`, the whole chunk is consumed.
    ///
    /// # Examples
    ///
    /// ```
    /// use ssehub_wire::{Frame, Parser};
    ///
    /// let mut parser = Parser::new();
    /// let mut data = Vec::new();
    /// for chunk in [&b"data: a\n\ndata: b"[..], b"\n\n"] {
    ///     for frame in parser.feed_iter(chunk) {
    ///         if let Ok(Frame::Event(event)) = frame {
    ///             data.push(event.data);
    ///         }
    ///     }
    /// }
    /// parser.end_body();
    /// assert_eq!(data, ["a", "b"]);
    /// ```
    pub fn feed_iter<'p>(&'p mut self, chunk: &'p [u8]) -> FeedIter<'p> {
        FeedIter {
            parser: self,
            chunk,
        }
    }

    /// Appends bytes received from the stream. Call [`next`](Parser::next) until it returns
    /// `None` before the next `feed`, or the buffered bytes accumulate.
    ///
    /// [`feed_iter`](Parser::feed_iter) does the same without copying complete lines.
    pub fn feed(&mut self, chunk: &[u8]) {
        let input = &mut self.input;
        if input.pos == input.buf.len() {
            input.buf.clear();
        } else if input.pos > 0 {
            input.buf.drain(..input.pos);
        }
        input.scanned -= input.pos.min(input.scanned);
        input.pos = 0;
        if input.buf.is_empty() && input.cursor.line == Line::Skip {
            // The line being skipped is not kept, so neither are its new bytes: only look for
            // its end.
            if let Some(i) = self.state.line_ends.find(chunk) {
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
        let input = &mut self.input;
        let found = input
            .cursor
            .read(&mut self.state, &input.buf, &mut input.pos, input.scanned);
        input.scanned = if found.is_some() {
            input.pos
        } else {
            input.buf.len()
        };
        self.state.frame(found?, &input.buf)
    }

    /// Ends the current response body: drops its incomplete line and undispatched event (the
    /// standard never dispatches them) and prepares for the next body, which may start with
    /// its own BOM. The last event id and reconnection time carry over.
    ///
    /// Call it once [`next`](Parser::next) has returned `None` (or the iterator of
    /// [`feed_iter`](Parser::feed_iter) has ended); complete lines still buffered are dropped
    /// too.
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
        state.id_set = false;
    }
}

/// The frames one chunk completes: the iterator [`Parser::feed_iter`] returns.
///
/// Dropping it early keeps the rest of the chunk in the parser (see
/// [`feed_iter`](Parser::feed_iter)).
#[derive(Debug)]
#[must_use = "the chunk is parsed as the iterator is consumed"]
pub struct FeedIter<'p> {
    parser: &'p mut Parser,
    /// The part of the chunk not read yet.
    chunk: &'p [u8],
}

impl Iterator for FeedIter<'_> {
    type Item = Result<Frame, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let input = &self.parser.input;
            if input.pos < input.buf.len() {
                // Bytes held from before this chunk come first: complete lines fed earlier, or
                // the start of a line that this chunk continues.
                let frame = self.parser.next();
                if frame.is_some() {
                    return frame;
                }
                let input = &mut self.parser.input;
                let kept = input.buf.len() - input.pos;
                if kept > 0 {
                    if self.chunk.is_empty() {
                        return None;
                    }
                    // Complete the kept line with this chunk's bytes, up to its end at most.
                    // A kept start shorter than `data: ` takes a few bytes at a time, so that a
                    // data line is recognised and its value goes straight to the data buffer;
                    // a longer one takes at most one byte past the line limit.
                    let want = if kept < DATA_PREFIX.len() + 1 {
                        DATA_PREFIX.len() + 1 - kept
                    } else {
                        let limit = self.parser.state.limits.max_line_bytes;
                        limit.saturating_sub(kept).saturating_add(1)
                    };
                    let window = &self.chunk[..want.min(self.chunk.len())];
                    let line_ends = &self.parser.state.line_ends;
                    let take = line_ends.find(window).map_or(window.len(), |i| i + 1);
                    input.buf.extend_from_slice(&window[..take]);
                    self.chunk = &self.chunk[take..];
                    continue;
                }
            }
            if self.chunk.is_empty() {
                return None;
            }
            // Nothing held: read straight from the chunk.
            let Parser { input, state } = &mut *self.parser;
            let mut pos = 0;
            let chunk = self.chunk;
            let Some(found) = input.cursor.read(state, chunk, &mut pos, 0) else {
                // Keep the start of an unterminated line.
                input.buf.clear();
                input.buf.extend_from_slice(&chunk[pos..]);
                input.pos = 0;
                input.scanned = input.buf.len();
                self.chunk = &[];
                return None;
            };
            self.chunk = &chunk[pos..];
            return state.frame(found, chunk);
        }
    }
}

impl std::iter::FusedIterator for FeedIter<'_> {}

impl Drop for FeedIter<'_> {
    fn drop(&mut self) {
        if !self.chunk.is_empty() {
            self.parser.feed(self.chunk);
        }
    }
}

impl Cursor {
    /// Reads lines from `src[*pos..]` up to the next frame, leaving `*pos` after it. `None`
    /// when more bytes are needed: every byte before `*pos` has been consumed, and the bytes
    /// from `*pos` on are the start of a line (or of a possible BOM) to keep. `src[*pos..scanned]`
    /// is known to hold no line end.
    fn read(
        &mut self,
        state: &mut State,
        src: &[u8],
        pos: &mut usize,
        scanned: usize,
    ) -> Option<Found> {
        loop {
            if !self.bom_checked {
                let avail = &src[*pos..];
                if avail.len() < BOM.len() && BOM.starts_with(avail) {
                    return None;
                }
                if avail.starts_with(BOM) {
                    *pos += BOM.len();
                }
                self.bom_checked = true;
            }
            let &first = src.get(*pos)?;
            if std::mem::take(&mut self.skip_lf) && first == b'\n' {
                *pos += 1;
                continue;
            }
            match self.line {
                Line::Start => {
                    let from = (*pos).max(scanned);
                    let Some(offset) = state.line_ends.find(&src[from..]) else {
                        return self.partial_line(state, src, pos);
                    };
                    let start = *pos;
                    let end = from + offset;
                    let line = &src[start..end];
                    self.skip_lf = src[end] == b'\r';
                    *pos = end + 1;
                    let found = if line.len() > state.limits.max_line_bytes {
                        // The same verdict as for a partial line, so chunking never changes the
                        // result.
                        state.overlong_line(line)
                    } else if line.first() == Some(&b':') {
                        state.comments.then_some(Found::Comment {
                            start: start + 1,
                            end,
                        })
                    } else {
                        state.line(line)
                    };
                    if found.is_some() {
                        return found;
                    }
                }
                Line::Skip => {
                    let Some(offset) = state.line_ends.find(&src[*pos..]) else {
                        *pos = src.len();
                        return None;
                    };
                    self.end_line(src, pos, *pos + offset);
                }
                Line::Data { len } => {
                    let rest = &src[*pos..];
                    let end = state.line_ends.find(rest);
                    let piece = &rest[..end.unwrap_or(rest.len())];
                    let len = len.saturating_add(piece.len());
                    let overlong = len > state.limits.max_line_bytes;
                    if !overlong {
                        state.data_piece(piece);
                    }
                    match end {
                        Some(offset) => self.end_line(src, pos, *pos + offset),
                        None => {
                            *pos = src.len();
                            self.line = if overlong {
                                Line::Skip
                            } else {
                                Line::Data { len }
                            };
                        }
                    }
                    if overlong {
                        return Some(Found::Error(state.overlong_data_line()));
                    }
                    end?;
                    if let Err(error) = state.end_data_line() {
                        return Some(Found::Error(error));
                    }
                }
            }
        }
    }

    /// Moves past the line end at `src[end]`, to the start of the next line.
    fn end_line(&mut self, src: &[u8], pos: &mut usize, end: usize) {
        self.skip_lf = src[end] == b'\r';
        self.line = Line::Start;
        *pos = end + 1;
    }

    /// Handles the unterminated line `src[*pos..]` at the end of the input: checks it against
    /// the line limit, and sends a data line's value so far to the data buffer.
    fn partial_line(&mut self, state: &mut State, src: &[u8], pos: &mut usize) -> Option<Found> {
        let line = &src[*pos..];
        // Without a colon the field name is the whole line so far; while it is short it may
        // still become a known name, so wait for the line to decide.
        if line.len() > state.limits.max_line_bytes && (line.len() > 5 || line.contains(&b':')) {
            *pos = src.len();
            self.line = Line::Skip;
            return state.overlong_line(line);
        }
        // `data:` and one more byte, which says whether there is a space to strip.
        if line.len() > DATA_PREFIX.len() && line.starts_with(DATA_PREFIX) {
            let value = &line[DATA_PREFIX.len()..];
            state.data_piece(value.strip_prefix(b" ").unwrap_or(value));
            self.line = Line::Data { len: line.len() };
            *pos = src.len();
        }
        None
    }
}

impl State {
    /// The frame `found` in `src` stands for (always `Some`: the type is the one returned to
    /// the caller, so that the frame is built where it is returned).
    #[inline]
    fn frame(&mut self, found: Found, src: &[u8]) -> Option<Result<Frame, ParseError>> {
        Some(match found {
            Found::Event => Ok(Frame::Event(self.take_event())),
            Found::Comment { start, end } => {
                Ok(Frame::Comment(decode(&src[start..end]).into_owned()))
            }
            Found::Error(error) => Err(error),
        })
    }

    /// Processes one complete line that is not a comment (§9.2.6 "interpret a stream", per
    /// line).
    fn line(&mut self, line: &[u8]) -> Option<Found> {
        if line.is_empty() {
            return self.dispatch().then_some(Found::Event);
        }
        let (name, value) = match find_colon(line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => return self.data(value).err().map(Found::Error),
            b"event" => {
                self.event_type.clear();
                push_decoded(&mut self.event_type, value);
            }
            // An id containing NUL is ignored whole (the previous id stays).
            b"id" if !value.contains(&0) => {
                self.pending_id.clear();
                push_decoded(&mut self.pending_id, value);
                self.id_set = true;
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
    fn overlong_line(&mut self, line: &[u8]) -> Option<Found> {
        let name = match find_colon(line) {
            Some(colon) => &line[..colon],
            None => line,
        };
        match name {
            b"data" | b"event" | b"id" => Some(Found::Error(self.overlong_data_line())),
            _ => None,
        }
    }

    /// Drops the event for a `data`, `event` or `id` line over the length limit.
    fn overlong_data_line(&mut self) -> ParseError {
        self.drop_event();
        ParseError::LineTooLong {
            limit: self.limits.max_line_bytes,
        }
    }

    /// A complete `data` line's value.
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
        self.reserve_data(value.len() + 1);
        self.data.extend_from_slice(value);
        self.data.push(b'\n');
        Ok(())
    }

    /// Part of the value of a `data` line that is not complete yet. The data limit is checked
    /// when the line ends ([`State::end_data_line`]), as for a complete line; until then the
    /// line limit bounds what this adds.
    fn data_piece(&mut self, piece: &[u8]) {
        if !self.event_dropped {
            self.reserve_data(piece.len() + 1);
            self.data.extend_from_slice(piece);
        }
    }

    /// Ends a `data` line whose value went to the data buffer piece by piece.
    fn end_data_line(&mut self) -> Result<(), ParseError> {
        if self.event_dropped {
            return Ok(());
        }
        let limit = self.limits.max_data_bytes;
        if self.data.len().saturating_add(1) > limit {
            self.drop_event();
            return Err(ParseError::DataTooLarge { limit });
        }
        self.data.push(b'\n');
        Ok(())
    }

    /// Makes room for `additional` more bytes of data; an empty buffer (a new event) gets room
    /// for as much as the last event's data at once.
    fn reserve_data(&mut self, additional: usize) {
        if self.data.is_empty() {
            self.data.reserve(additional.max(self.data_hint));
        } else {
            self.data.reserve(additional);
        }
    }

    fn drop_event(&mut self) {
        self.event_dropped = true;
        self.data = Vec::new();
    }

    /// Dispatches the pending event (§9.2.6 "dispatch the event", browser steps): true when
    /// there is an event, which [`State::take_event`] then builds.
    fn dispatch(&mut self) -> bool {
        if std::mem::take(&mut self.id_set) {
            std::mem::swap(&mut self.last_event_id, &mut self.pending_id);
        }
        if std::mem::take(&mut self.event_dropped) || self.data.is_empty() {
            self.data.clear();
            self.event_type.clear();
            return false;
        }
        true
    }

    /// The event [`State::dispatch`] found, out of the buffers.
    #[inline]
    fn take_event(&mut self) -> MessageEvent {
        let mut data = std::mem::take(&mut self.data);
        self.data_hint = data.len();
        if data.last() == Some(&b'\n') {
            data.pop();
        }
        // Room reserved for a larger event than this one is given back, so an event's string
        // is never far larger than its data.
        if data.capacity() > 2 * data.len().max(1024) {
            data.shrink_to_fit();
        }
        let event_type = if self.event_type.is_empty() {
            String::from("message")
        } else {
            std::mem::take(&mut self.event_type)
        };
        MessageEvent {
            event_type,
            data: String::from_utf8(data)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            last_event_id: self.last_event_id.clone(),
        }
    }
}

/// Finds the first CR or LF. Most lines are short, so the first 16 bytes are looked at a word
/// at a time before handing the rest to `memchr2`, whose set-up costs more than a short line;
/// on x86-64 its AVX2 searcher is built once, here, rather than at each call (that set-up was
/// 7 % of the time on 64-byte lines).
#[derive(Clone, Copy)]
struct LineEnds {
    #[cfg(target_arch = "x86_64")]
    avx2: Option<memchr::arch::x86_64::avx2::memchr::Two>,
}

impl std::fmt::Debug for LineEnds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LineEnds")
    }
}

impl Default for LineEnds {
    fn default() -> Self {
        LineEnds {
            #[cfg(target_arch = "x86_64")]
            avx2: memchr::arch::x86_64::avx2::memchr::Two::new(b'\n', b'\r'),
        }
    }
}

impl LineEnds {
    /// The first CR or LF in `bytes`.
    #[inline]
    fn find(&self, bytes: &[u8]) -> Option<usize> {
        const HEAD: usize = 16;
        let mut at = 0;
        while at < HEAD {
            let Some(word) = bytes.get(at..at + 8) else {
                return bytes[at..]
                    .iter()
                    .position(|&b| b == b'\n' || b == b'\r')
                    .map(|i| at + i);
            };
            let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
            let found = bytes_equal(word, b'\n') | bytes_equal(word, b'\r');
            if found != 0 {
                return Some(at + (found.trailing_zeros() / 8) as usize);
            }
            at += 8;
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(two) = &self.avx2 {
            return two.find(&bytes[HEAD..]).map(|i| i + HEAD);
        }
        memchr::memchr2(b'\n', b'\r', &bytes[HEAD..]).map(|i| i + HEAD)
    }
}

/// The first colon in `line`: field names are short, so the first 8 bytes are looked at as a
/// word before handing the rest to `memchr`.
#[inline]
fn find_colon(line: &[u8]) -> Option<usize> {
    let Some(word) = line.get(..8) else {
        return line.iter().position(|&b| b == b':');
    };
    let found = bytes_equal(
        u64::from_le_bytes(word.try_into().unwrap_or_default()),
        b':',
    );
    if found != 0 {
        return Some((found.trailing_zeros() / 8) as usize);
    }
    memchr::memchr(b':', &line[8..]).map(|i| i + 8)
}

/// The high bit of each byte of the little-endian `word` that equals `byte` is set, except that
/// bytes above the first match may be flagged too: only the lowest set bit is to be trusted.
#[inline]
fn bytes_equal(word: u64, byte: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & (ONES << 7)
}

/// Appends `bytes` to `out`, decoded like [`decode`]. Ids and event types are short and
/// nearly always ASCII, which is pushed byte by byte: cheaper than the lossy walk and a copy
/// for a handful of bytes.
#[inline]
fn push_decoded(out: &mut String, bytes: &[u8]) {
    if bytes.len() <= 16 && bytes.is_ascii() {
        out.extend(bytes.iter().map(|&b| char::from(b)));
    } else {
        out.push_str(&decode(bytes));
    }
}

/// UTF-8 decode with U+FFFD replacement (maximal subparts, as WHATWG does). Only short
/// values (ids, event types, comments) go through here, and for those the lossy walk is
/// faster than `str::from_utf8` first (measured: 5–8 % of the small-event time).
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
    fn feed_iter_dropped_early_keeps_the_rest_of_the_chunk() {
        let mut p = Parser::new();
        let first: Vec<_> = p
            .feed_iter(b"data: a\n\ndata: b\n\ndata: c")
            .take(1)
            .collect();
        assert_eq!(data_of(&first), ["a"]);
        // What the iterator left is in the parser: `next` reads it...
        assert_eq!(data_of(&p.next().into_iter().collect::<Vec<_>>()), ["b"]);
        assert_eq!(p.next(), None);
        // ...and so does the next `feed_iter`, before its own chunk.
        let rest: Vec<_> = p.feed_iter(b"\n\ndata: d\n\n").collect();
        assert_eq!(data_of(&rest), ["c", "d"]);
    }

    #[test]
    fn feed_iter_reads_what_feed_left() {
        let mut p = Parser::new();
        p.feed(b"data: a\n\nda");
        let frames: Vec<_> = p.feed_iter(b"ta: b\n\n").collect();
        assert_eq!(data_of(&frames), ["a", "b"]);
        p.feed(b"data: c\n\n");
        let frames: Vec<_> = p.feed_iter(b"").collect();
        assert_eq!(data_of(&frames), ["c"]);
    }

    #[test]
    fn a_data_value_split_across_chunks_is_not_kept_in_the_line_buffer() {
        let value = "x".repeat(100_000);
        let body = format!("id: 7\ndata: {value}\ndata: {value}\n\n");
        let mut p = Parser::new();
        let mut frames = Vec::new();
        for chunk in body.as_bytes().chunks(1000) {
            frames.extend(p.feed_iter(chunk));
            assert!(p.input.buf.len() < 1000, "a data line was kept whole");
        }
        assert_eq!(data_of(&frames), [format!("{value}\n{value}")]);
        // Split anywhere in `data: `, even in the BOM before it.
        for at in 0..12 {
            let body = b"\xEF\xBB\xBFdata: 12345\n\n";
            let mut p = Parser::new();
            let mut frames: Vec<_> = p.feed_iter(&body[..at]).collect();
            frames.extend(p.feed_iter(&body[at..]));
            assert_eq!(data_of(&frames), ["12345"], "split at {at}");
        }
    }

    #[test]
    fn a_split_data_line_over_the_limit_is_an_error_once() {
        let mut p = Parser::with_limits(Limits {
            max_line_bytes: 16,
            max_data_bytes: 1024,
        });
        let mut frames: Vec<_> = p.feed_iter(b"id: 1\ndata: 0123456").collect();
        assert_eq!(frames, []);
        frames.extend(p.feed_iter(b"789abcdef"));
        assert_eq!(frames, [Err(ParseError::LineTooLong { limit: 16 })]);
        frames.extend(p.feed_iter(b"still the same line\n\ndata: ok\n\n"));
        assert_eq!(data_of(&frames), ["ok"]);
        assert_eq!(frames.len(), 2);
        assert_eq!(p.last_event_id(), "1");
    }

    /// Two `feed`s without `next` in between, while a line over the limit is skipped: only the
    /// bytes up to that line's end are dropped, not those of the second chunk.
    #[test]
    fn feeding_twice_while_skipping_keeps_the_second_chunk() {
        let mut p = Parser::with_limits(Limits {
            max_line_bytes: 8,
            max_data_bytes: 64,
        });
        p.feed(b"data: 0123456789");
        assert_eq!(events(&mut p), [Err(ParseError::LineTooLong { limit: 8 })]);
        p.feed(b"tail\n\ndata: o");
        p.feed(b"k\n\n");
        assert_eq!(data_of(&events(&mut p)), ["ok"]);
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
