//! Builds an `Event` from arbitrary fields, encodes it, parses it back and checks that every
//! field survives.
//!
//! - A field the fallible constructors refuse is left out, and the refusal must be justified:
//!   `with_id` refuses exactly the values with CR, LF or NUL, `with_event` and `with_comment`
//!   exactly those with CR or LF.
//! - Parsed back (comments on, default limits; `feed` + `next` and `feed_iter` must agree) the
//!   bytes give the comment (with the leading space the encoder writes), then exactly one event
//!   whose data is the original with CRLF and CR turned into LF, whose type is the original or
//!   `message` when none or empty, and whose id is the original (or empty when none); the
//!   reconnection time is the retry. Then nothing.
//! - `encode_into` appends the same bytes as `encode`.
//! - `comment_frame` and `retry_frame` of the same values parse back to their comment lines and
//!   their reconnection time, and dispatch nothing.

#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ssehub_wire::{
    Event, Field, FieldError, Frame, MessageEvent, Parser, comment_frame, retry_frame,
};

#[derive(Debug, Arbitrary)]
struct Fields {
    data: String,
    id: Option<String>,
    event: Option<String>,
    retry_ms: Option<u64>,
    comment: Option<String>,
}

fn has_line_break(s: &str) -> bool {
    s.contains(['\r', '\n'])
}

/// CRLF and CR to LF, as a receiver sees the lines.
fn normalise(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

/// Parses `bytes` as one whole body, with comments on, through `feed` + `next` and through
/// `feed_iter`, which must agree.
fn parse(bytes: &[u8]) -> (Vec<Frame>, Parser) {
    let mut parser = Parser::new().with_comments(true);
    parser.feed(bytes);
    let frames: Vec<Frame> = std::iter::from_fn(|| parser.next())
        .map(|frame| frame.expect("an error with the default limits"))
        .collect();
    assert_eq!(parser.next(), None);
    let mut iterated = Parser::new().with_comments(true);
    let same: Vec<Frame> = iterated
        .feed_iter(bytes)
        .map(|frame| frame.expect("an error with the default limits"))
        .collect();
    assert_eq!(same, frames, "feed_iter differs from feed + next");
    assert_eq!(iterated.last_event_id(), parser.last_event_id());
    assert_eq!(
        iterated.reconnection_time_ms(),
        parser.reconnection_time_ms()
    );
    (frames, parser)
}

fuzz_target!(|fields: Fields| {
    let mut event = Event::new(fields.data.clone());
    let mut id = None;
    if let Some(value) = &fields.id {
        match event.clone().with_id(value.clone()) {
            Ok(with) => {
                event = with;
                id = Some(value.clone());
            }
            Err(FieldError::LineBreak(Field::Id)) => assert!(has_line_break(value)),
            Err(FieldError::Nul) => assert!(!has_line_break(value) && value.contains('\0')),
            Err(other) => panic!("with_id({value:?}) refused with {other:?}"),
        }
        assert_eq!(
            id.is_some(),
            !has_line_break(value) && !value.contains('\0')
        );
    }
    let mut event_type = None;
    if let Some(value) = &fields.event {
        match event.clone().with_event(value.clone()) {
            Ok(with) => {
                event = with;
                event_type = Some(value.clone());
            }
            Err(error) => assert_eq!(error, FieldError::LineBreak(Field::Event)),
        }
        assert_eq!(event_type.is_some(), !has_line_break(value));
    }
    let mut comment = None;
    if let Some(value) = &fields.comment {
        match event.clone().with_comment(value.clone()) {
            Ok(with) => {
                event = with;
                comment = Some(value.clone());
            }
            Err(error) => assert_eq!(error, FieldError::LineBreak(Field::Comment)),
        }
        assert_eq!(comment.is_some(), !has_line_break(value));
    }
    if let Some(ms) = fields.retry_ms {
        event = event.with_retry(Duration::from_millis(ms));
    }

    // The getters give back what was set.
    assert_eq!(event.data(), fields.data);
    assert_eq!(event.id(), id.as_deref());
    assert_eq!(event.event(), event_type.as_deref());
    assert_eq!(event.comment(), comment.as_deref());
    assert_eq!(event.retry_ms(), fields.retry_ms);

    let bytes = event.encode();
    let mut appended = b"prefix".to_vec();
    event.encode_into(&mut appended);
    assert_eq!(
        &appended[6..],
        &bytes[..],
        "encode_into differs from encode"
    );

    let (frames, parser) = parse(&bytes);
    let mut expected = Vec::new();
    if let Some(comment) = &comment {
        expected.push(Frame::Comment(format!(" {comment}")));
    }
    expected.push(Frame::Event(MessageEvent {
        event_type: match event_type.as_deref() {
            None | Some("") => "message".to_owned(),
            Some(t) => t.to_owned(),
        },
        data: normalise(&fields.data),
        last_event_id: id.clone().unwrap_or_default(),
    }));
    assert_eq!(
        frames,
        expected,
        "bytes: {:?}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(parser.last_event_id(), id.as_deref().unwrap_or(""));
    assert_eq!(parser.reconnection_time_ms(), fields.retry_ms);

    // The stream-level frames, built from the same values.
    let text = fields.comment.as_deref().unwrap_or(&fields.data);
    let (frames, parser) = parse(&comment_frame(text));
    let lines: Vec<Frame> = normalise(text)
        .split('\n')
        .map(|line| Frame::Comment(line.to_owned()))
        .collect();
    assert_eq!(frames, lines, "comment_frame({text:?})");
    assert_eq!(parser.reconnection_time_ms(), None);

    let ms = fields.retry_ms.unwrap_or(u64::MAX);
    let (frames, parser) = parse(&retry_frame(ms));
    assert_eq!(frames, []);
    assert_eq!(parser.reconnection_time_ms(), Some(ms));
});
