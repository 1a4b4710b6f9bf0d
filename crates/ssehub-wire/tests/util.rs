//! Running our parser over chunks, shared by the test modules.

use ssehub_conformance::{ExpectedEvent, Outcome};
use ssehub_wire::{Frame, ParseError, Parser};

/// The ways of giving the parser its bytes, which must all give the same result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `feed`, then `next` until `None`.
    FeedNext,
    /// `feed_iter`, drained.
    FeedIter,
    /// `feed_iter`, dropped after at most one frame, so the rest of each chunk stays in the
    /// parser and the next chunk's `feed_iter` reads it first; an empty chunk drains the last.
    FeedIterOneFrame,
    /// `feed_iter` and `feed` + `next` in turn, chunk by chunk.
    Alternating,
}

impl Api {
    /// Every way.
    pub(crate) const ALL: [Api; 4] = [
        Api::FeedNext,
        Api::FeedIter,
        Api::FeedIterOneFrame,
        Api::Alternating,
    ];
}

/// Parses one body delivered as `chunks`, the way a client would: feed, drain, end the body.
pub(crate) fn parse_chunks(parser: &mut Parser, chunks: &[&[u8]]) -> Outcome {
    parse_chunks_with(parser, chunks, Api::FeedNext)
}

/// [`parse_chunks`] through the given API.
pub(crate) fn parse_chunks_with(parser: &mut Parser, chunks: &[&[u8]], api: Api) -> Outcome {
    let mut outcome = Outcome {
        comments: Some(Vec::new()),
        ..Outcome::default()
    };
    let mut record = |frame: Result<Frame, ParseError>| match frame {
        Ok(Frame::Event(e)) => outcome.events.push(ExpectedEvent {
            event_type: e.event_type,
            data: e.data,
            last_event_id: e.last_event_id,
        }),
        Ok(Frame::Comment(c)) => outcome.comments.as_mut().unwrap().push(c),
        Err(e) => outcome.error = Some(e.to_string()),
    };
    for (i, chunk) in chunks.iter().enumerate() {
        match api {
            Api::FeedIter => parser.feed_iter(chunk).for_each(&mut record),
            Api::FeedIterOneFrame => parser.feed_iter(chunk).take(1).for_each(&mut record),
            Api::Alternating if i % 2 == 0 => parser.feed_iter(chunk).for_each(&mut record),
            Api::FeedNext | Api::Alternating => {
                parser.feed(chunk);
                while let Some(frame) = parser.next() {
                    record(frame);
                }
            }
        }
    }
    if api == Api::FeedIterOneFrame {
        parser.feed_iter(&[]).for_each(&mut record);
    }
    assert_eq!(parser.next(), None, "{api:?} left a frame behind");
    parser.end_body();
    outcome.retry = parser.reconnection_time_ms();
    outcome.final_last_event_id = Some(parser.last_event_id().to_string());
    outcome
}
