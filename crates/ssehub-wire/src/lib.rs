//! The Server-Sent Events format, exactly as the WHATWG HTML standard (§9.2) defines it.
//!
//! This crate is the bottom layer of ssehub and has no I/O, no async runtime and no HTTP in it,
//! so any server, client or tool can use it:
//!
//! - [`Event`] is an outgoing event. Its constructors refuse values that would inject fields
//!   (CR or LF in `id` and `event`, NUL in `id`) with a typed [`FieldError`]; they never panic
//!   on untrusted input.
//! - [`Event::encode`] turns an event into [`bytes::Bytes`] once, so a hub hands the same bytes
//!   to every subscriber. [`KEEP_ALIVE`] is the heartbeat frame.
//! - [`Parser`] is an incremental, byte-level parser that follows the standard to the letter:
//!   BOM stripped once per body even when split, CR/LF/CRLF line ends across chunk
//!   boundaries, invalid UTF-8 as U+FFFD, the last event id carried across bodies, `retry` with
//!   ASCII digits only, incomplete final events discarded, and [`Limits`] that turn oversized
//!   input into a typed [`ParseError`] instead of unbounded memory. [`Parser::feed_iter`]
//!   reads complete lines straight from each chunk (one copy of each byte); `feed` + `next`
//!   give the same frames when the chunk is gone by the time they are pulled.
//!
//! It passes all 181 cases of the conformance vectors (web-platform-tests, LaunchDarkly's
//! sse-contract-tests, eventsource-parser and the standard itself) whole, one byte at a time and
//! split in two at every offset.
//!
//! # Layout
//!
//! - `event.rs` — [`Event`], validation, [`FieldError`].
//! - `encode.rs` — encoding to bytes, [`KEEP_ALIVE`], [`retry_frame`], [`comment_frame`].
//! - `parse.rs` — [`Parser`], [`FeedIter`], [`Frame`], [`MessageEvent`], [`Limits`],
//!   [`ParseError`].
//!
//! # Example
//!
//! ```
//! use ssehub_wire::{Event, Frame, Parser};
//!
//! let bytes = Event::new("line one\nline two").with_id("7")?.encode();
//! let mut parser = Parser::new();
//! parser.feed(&bytes);
//! let Some(Ok(Frame::Event(event))) = parser.next() else { unreachable!() };
//! assert_eq!(event.data, "line one\nline two");
//! assert_eq!(event.last_event_id, "7");
//! # Ok::<(), ssehub_wire::FieldError>(())
//! ```

mod encode;
mod event;
mod parse;

pub use encode::{KEEP_ALIVE, KEEP_ALIVE_BYTES, comment_frame, data_encoded_len, retry_frame};
pub use event::{Event, Field, FieldError, check_line};
pub use parse::{FeedIter, Frame, Limits, MessageEvent, ParseError, Parser};
