//! Each parser under test, driven two ways:
//!
//! - a *tally* driver for the benchmarks: parse a body delivered as chunks, count the
//!   dispatched events and their data bytes (so a benchmark can check the parser did the work),
//!   and drop each event as a consumer would;
//! - a *conformance* driver for the 181 vectors: the same parse, mapped onto the browser's
//!   `MessageEvent` (type, data, last event id) and the stream's reconnection time.
//!
//! # How the peers are adapted
//!
//! Each peer is used through its own public API, the way its documentation shows, and given the
//! benefit of the doubt where it leaves the EventSource layer to its caller:
//!
//! - **ssehub-wire**: [`ssehub_wire::Parser`], `feed_iter` over each chunk (complete lines
//!   read straight from the chunk), then `end_body`. The benchmarks also measure its other
//!   entry point, `feed` then `next` until `None` (which copies each chunk into the parser
//!   first), as **ssehub-wire feed+next** ([`OURS_FEED_NEXT`]).
//! - **eventsource-stream**: `EventStream` over a `futures::stream::iter` of the chunks, driven
//!   with `futures::executor::block_on`. Its events already carry type `message` by default and
//!   the last event id; `set_last_event_id` is its way to resume. Retry is only visible on
//!   dispatched events (the crate has no other way to report it).
//! - **sse-stream**: `SseByteStream` over the same stream. It returns raw blocks and says the
//!   EventSource state machine is the caller's job, so the adapter does it: a block's `id`
//!   sets the last event id, `retry` sets the reconnection time, a block with `data` is
//!   dispatched with type `message` when its `event` is missing or empty.
//! - **sse-core**: its synchronous `SseDecoder::next(&mut impl Buf)` over each chunk (its
//!   `SseStream` is a thin wrapper around it), `reconnect_with_id` to resume.
//! - **sse-codec**: `SSECodec` as a `futures_codec::Decoder` over a `BytesMut` the chunks are
//!   appended to, which is what its `FramedRead` does. It has no way to seed a last event id,
//!   so a message with no id (`None`) reports the id the connection resumed with.
//! - **async-sse** (only with the `async-sse` feature, it pulls in `http-types`): its `decode`
//!   over `futures::TryStreamExt::into_async_read` of the chunks. Same resume rule as sse-codec.
//!
//! A peer's error ends the body (every vector is a valid stream, so any error is a failure).

use std::convert::Infallible;

use futures::StreamExt;
use ssehub_conformance::{ExpectedEvent, Outcome};
use ssehub_wire::{Frame, Parser};

/// What a benchmark checks after each parse: events dispatched, their data bytes, errors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Dispatched events.
    pub events: usize,
    /// The sum of their data lengths.
    pub data_bytes: usize,
    /// Errors the parser returned.
    pub errors: usize,
}

impl Tally {
    fn add(&mut self, data: &str) {
        self.events += 1;
        self.data_bytes += data.len();
    }
}

/// A parser under test.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The crate's name, as in reports.
    pub name: &'static str,
    /// Parses one body and counts what it dispatched.
    pub tally: fn(&[&[u8]]) -> Tally,
    /// Parses one body after a connection that resumed with the given last event id.
    pub conformance: fn(&[&[u8]], &str) -> Outcome,
    /// Whether the conformance outcome's reconnection time means anything.
    pub exposes_retry: bool,
}

/// Every parser, ours first.
pub fn all() -> Vec<Peer> {
    #[cfg_attr(not(feature = "async-sse"), allow(unused_mut))]
    let mut peers = vec![
        Peer {
            name: "ssehub-wire",
            tally: ours::tally,
            conformance: ours::conformance,
            exposes_retry: true,
        },
        Peer {
            name: "eventsource-stream",
            tally: eventsource_stream::tally,
            conformance: eventsource_stream::conformance,
            exposes_retry: true,
        },
        Peer {
            name: "sse-stream",
            tally: sse_stream::tally,
            conformance: sse_stream::conformance,
            exposes_retry: true,
        },
        Peer {
            name: "sse-core",
            tally: sse_core::tally,
            conformance: sse_core::conformance,
            exposes_retry: true,
        },
        Peer {
            name: "sse-codec",
            tally: sse_codec::tally,
            conformance: sse_codec::conformance,
            exposes_retry: true,
        },
    ];
    #[cfg(feature = "async-sse")]
    peers.push(Peer {
        name: "async-sse",
        tally: async_sse::tally,
        conformance: async_sse::conformance,
        exposes_retry: true,
    });
    peers
}

/// The benchmark name of ssehub-wire driven through `feed` and `next` instead of `feed_iter`.
pub const OURS_FEED_NEXT: &str = "ssehub-wire feed+next";

/// Every parser the benchmarks measure: [`all`], plus ssehub-wire's `feed` + `next` entry
/// point right after ssehub-wire.
pub fn benchmarked() -> Vec<Peer> {
    let mut peers = all();
    peers.insert(
        1,
        Peer {
            name: OURS_FEED_NEXT,
            tally: ours::tally_feed_next,
            conformance: ours::conformance_feed_next,
            exposes_retry: true,
        },
    );
    peers
}

/// The peer called `name`.
pub fn by_name(name: &str) -> Option<Peer> {
    all().into_iter().find(|p| p.name == name)
}

fn event(
    event_type: impl Into<String>,
    data: impl Into<String>,
    id: impl Into<String>,
) -> ExpectedEvent {
    ExpectedEvent {
        event_type: event_type.into(),
        data: data.into(),
        last_event_id: id.into(),
    }
}

/// The chunks as the `Result` stream the async peers consume.
fn byte_stream<'a>(
    chunks: &'a [&'a [u8]],
) -> impl futures::Stream<Item = Result<&'a [u8], Infallible>> + Unpin + 'a {
    futures::stream::iter(chunks.iter().map(|c| Ok::<&[u8], Infallible>(c)))
}

mod ours {
    use super::*;

    use ssehub_wire::ParseError;

    fn count(tally: &mut Tally, frame: Result<Frame, ParseError>) {
        match frame {
            Ok(Frame::Event(e)) => tally.add(&e.data),
            Ok(Frame::Comment(_)) => {}
            Err(_) => tally.errors += 1,
        }
    }

    pub(super) fn tally(chunks: &[&[u8]]) -> Tally {
        let mut parser = Parser::new();
        let mut tally = Tally::default();
        for chunk in chunks {
            for frame in parser.feed_iter(chunk) {
                count(&mut tally, frame);
            }
        }
        parser.end_body();
        tally
    }

    pub(super) fn tally_feed_next(chunks: &[&[u8]]) -> Tally {
        let mut parser = Parser::new();
        let mut tally = Tally::default();
        for chunk in chunks {
            parser.feed(chunk);
            while let Some(frame) = parser.next() {
                count(&mut tally, frame);
            }
        }
        parser.end_body();
        tally
    }

    fn record(out: &mut Outcome, frame: Result<Frame, ParseError>) {
        match frame {
            Ok(Frame::Event(e)) => {
                out.events
                    .push(event(e.event_type, e.data, e.last_event_id));
            }
            Ok(Frame::Comment(c)) => out.comments.get_or_insert_with(Vec::new).push(c),
            Err(e) => out.error = Some(e.to_string()),
        }
    }

    fn conformance_with(chunks: &[&[u8]], initial_last_event_id: &str, feed_iter: bool) -> Outcome {
        let mut parser = Parser::new().with_comments(true);
        parser.set_last_event_id(initial_last_event_id);
        let mut out = Outcome {
            comments: Some(Vec::new()),
            ..Outcome::default()
        };
        for chunk in chunks {
            if feed_iter {
                for frame in parser.feed_iter(chunk) {
                    record(&mut out, frame);
                }
            } else {
                parser.feed(chunk);
                while let Some(frame) = parser.next() {
                    record(&mut out, frame);
                }
            }
        }
        parser.end_body();
        out.retry = parser.reconnection_time_ms();
        out.final_last_event_id = Some(parser.last_event_id().to_string());
        out
    }

    pub(super) fn conformance(chunks: &[&[u8]], initial_last_event_id: &str) -> Outcome {
        conformance_with(chunks, initial_last_event_id, true)
    }

    pub(super) fn conformance_feed_next(chunks: &[&[u8]], initial_last_event_id: &str) -> Outcome {
        conformance_with(chunks, initial_last_event_id, false)
    }
}

mod eventsource_stream {
    use super::*;
    use ::eventsource_stream::EventStream;

    pub(super) fn tally(chunks: &[&[u8]]) -> Tally {
        let mut tally = Tally::default();
        let mut stream = EventStream::new(byte_stream(chunks));
        futures::executor::block_on(async {
            while let Some(item) = stream.next().await {
                match item {
                    Ok(e) => tally.add(&e.data),
                    Err(_) => {
                        tally.errors += 1;
                        break;
                    }
                }
            }
        });
        tally
    }

    pub(super) fn conformance(chunks: &[&[u8]], initial_last_event_id: &str) -> Outcome {
        let mut out = Outcome::default();
        let mut stream = EventStream::new(byte_stream(chunks));
        stream.set_last_event_id(initial_last_event_id);
        futures::executor::block_on(async {
            while let Some(item) = stream.next().await {
                match item {
                    Ok(e) => {
                        if let Some(retry) = e.retry {
                            out.retry = Some(u64::try_from(retry.as_millis()).unwrap_or(u64::MAX));
                        }
                        out.events.push(event(e.event, e.data, e.id));
                    }
                    Err(e) => {
                        out.error = Some(e.to_string());
                        break;
                    }
                }
            }
        });
        out.final_last_event_id = Some(stream.last_event_id().to_string());
        out
    }
}

mod sse_stream {
    use super::*;
    use ::sse_stream::SseByteStream;

    pub(super) fn tally(chunks: &[&[u8]]) -> Tally {
        let mut tally = Tally::default();
        let mut stream = SseByteStream::new(byte_stream(chunks));
        futures::executor::block_on(async {
            while let Some(item) = stream.next().await {
                match item {
                    Ok(block) => {
                        if let Some(data) = &block.data {
                            tally.add(data);
                        }
                    }
                    Err(_) => {
                        tally.errors += 1;
                        break;
                    }
                }
            }
        });
        tally
    }

    pub(super) fn conformance(chunks: &[&[u8]], initial_last_event_id: &str) -> Outcome {
        let mut out = Outcome::default();
        let mut last_event_id = initial_last_event_id.to_string();
        let mut stream = SseByteStream::new(byte_stream(chunks));
        futures::executor::block_on(async {
            while let Some(item) = stream.next().await {
                match item {
                    Ok(block) => {
                        if let Some(id) = block.id {
                            last_event_id = id;
                        }
                        if let Some(retry) = block.retry {
                            out.retry = Some(retry);
                        }
                        if let Some(data) = block.data {
                            let event_type = block
                                .event
                                .filter(|t| !t.is_empty())
                                .unwrap_or_else(|| "message".to_string());
                            out.events
                                .push(event(event_type, data, last_event_id.clone()));
                        }
                    }
                    Err(e) => {
                        out.error = Some(e.to_string());
                        break;
                    }
                }
            }
        });
        out.final_last_event_id = Some(last_event_id);
        out
    }
}

mod sse_core {
    use std::sync::Arc;

    use super::*;
    use ::sse_core::{SseDecoder, SseEvent};

    pub(super) fn tally(chunks: &[&[u8]]) -> Tally {
        let mut tally = Tally::default();
        let mut decoder = SseDecoder::new();
        for chunk in chunks {
            let mut buf: &[u8] = chunk;
            while let Some(item) = decoder.next(&mut buf) {
                match item {
                    Ok(SseEvent::Message(m)) => tally.add(&m.data),
                    Ok(SseEvent::Retry(_)) => {}
                    Err(_) => tally.errors += 1,
                }
            }
        }
        tally
    }

    pub(super) fn conformance(chunks: &[&[u8]], initial_last_event_id: &str) -> Outcome {
        let mut out = Outcome::default();
        let mut decoder = SseDecoder::new();
        if !initial_last_event_id.is_empty() {
            decoder.reconnect_with_id(Some(Arc::from(initial_last_event_id)));
        }
        'body: for chunk in chunks {
            let mut buf: &[u8] = chunk;
            while let Some(item) = decoder.next(&mut buf) {
                match item {
                    Ok(SseEvent::Message(m)) => out.events.push(event(
                        m.event.into_owned(),
                        m.data,
                        m.last_event_id.as_deref().unwrap_or(""),
                    )),
                    Ok(SseEvent::Retry(ms)) => out.retry = Some(u64::from(ms)),
                    Err(e) => {
                        out.error = Some(e.to_string());
                        break 'body;
                    }
                }
            }
        }
        out.final_last_event_id = Some(
            decoder
                .last_event_id()
                .map_or_else(String::new, |id| id.to_string()),
        );
        out
    }
}

mod sse_codec {
    use super::*;
    use ::sse_codec::{Event, SSECodec};
    use futures_codec::{BytesMut, Decoder};

    pub(super) fn tally(chunks: &[&[u8]]) -> Tally {
        let mut tally = Tally::default();
        let mut codec = SSECodec::default();
        let mut buf = BytesMut::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(Event::Message { data, .. })) => tally.add(&data),
                    Ok(Some(Event::Retry { .. })) => {}
                    Ok(None) => break,
                    Err(_) => tally.errors += 1,
                }
            }
        }
        tally
    }

    pub(super) fn conformance(chunks: &[&[u8]], initial_last_event_id: &str) -> Outcome {
        let mut out = Outcome::default();
        let mut codec = SSECodec::default();
        let mut buf = BytesMut::new();
        'body: for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(Event::Message { id, event: t, data })) => out.events.push(event(
                        t,
                        data,
                        id.unwrap_or_else(|| initial_last_event_id.to_string()),
                    )),
                    Ok(Some(Event::Retry { retry })) => out.retry = Some(retry),
                    Ok(None) => break,
                    Err(e) => {
                        out.error = Some(e.to_string());
                        break 'body;
                    }
                }
            }
        }
        let eof = codec.decode_eof(&mut buf);
        if let (None, Err(e)) = (&out.error, eof) {
            out.error = Some(e.to_string());
        }
        // The codec does not expose the last event id string.
        out
    }
}

#[cfg(feature = "async-sse")]
mod async_sse {
    use super::*;
    use ::async_sse::{Event, decode};
    use futures::TryStreamExt;

    fn reader<'a>(chunks: &'a [&'a [u8]]) -> impl futures::AsyncBufRead + Unpin + 'a {
        futures::stream::iter(chunks.iter().map(|c| Ok::<&[u8], std::io::Error>(c)))
            .into_async_read()
    }

    pub(super) fn tally(chunks: &[&[u8]]) -> Tally {
        let mut tally = Tally::default();
        let mut decoder = decode(reader(chunks));
        futures::executor::block_on(async {
            while let Some(item) = decoder.next().await {
                match item {
                    Ok(Event::Message(m)) => {
                        tally.events += 1;
                        tally.data_bytes += m.data().len();
                    }
                    Ok(Event::Retry(_)) => {}
                    Err(_) => {
                        tally.errors += 1;
                        break;
                    }
                }
            }
        });
        tally
    }

    pub(super) fn conformance(chunks: &[&[u8]], initial_last_event_id: &str) -> Outcome {
        let mut out = Outcome::default();
        let mut decoder = decode(reader(chunks));
        futures::executor::block_on(async {
            while let Some(item) = decoder.next().await {
                match item {
                    Ok(Event::Message(m)) => out.events.push(event(
                        m.name().clone(),
                        String::from_utf8_lossy(m.data()).into_owned(),
                        m.id()
                            .clone()
                            .unwrap_or_else(|| initial_last_event_id.to_string()),
                    )),
                    // The crate documents the value as a `Duration`; report it in milliseconds.
                    Ok(Event::Retry(d)) => {
                        out.retry = Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                    }
                    Err(e) => {
                        out.error = Some(e.to_string());
                        break;
                    }
                }
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload;

    /// Every parser dispatches every event of every workload, whole and in chunks, so the
    /// benchmarks compare the same work.
    #[test]
    fn every_parser_does_the_whole_workload() {
        for w in workload::all() {
            for size in [Some(workload::CHUNK), None] {
                for peer in benchmarked() {
                    let tally = (peer.tally)(&w.chunks(size));
                    assert_eq!(
                        tally,
                        Tally {
                            events: w.event_count(),
                            data_bytes: w.data_bytes(),
                            errors: 0
                        },
                        "{} on {} ({size:?})",
                        peer.name,
                        w.name
                    );
                }
            }
        }
    }

    /// Our adapters (both entry points) pass every vector (the peers' results are reported, not
    /// asserted: they may change with new releases).
    #[test]
    fn ours_passes_all_181_through_this_adapter() {
        struct Subject(Peer);
        impl ssehub_conformance::Subject for Subject {
            fn name(&self) -> &str {
                self.0.name
            }
            fn parse(&mut self, chunks: &[&[u8]], initial: &str) -> Outcome {
                (self.0.conformance)(chunks, initial)
            }
        }
        let vectors = ssehub_conformance::vectors();
        let ours = benchmarked()
            .into_iter()
            .filter(|p| p.name.starts_with("ssehub-wire"));
        for peer in ours {
            let report = ssehub_conformance::run_all(&mut Subject(peer), &vectors);
            assert_eq!(
                report.passed_all,
                181,
                "{}: {}",
                peer.name,
                report.summary()
            );
        }
    }
}
