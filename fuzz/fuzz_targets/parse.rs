//! Feeds arbitrary bytes to `Parser` whole, in arbitrary pieces and one byte at a time, through
//! `feed` + `next` and through `feed_iter`, and checks that neither chunking nor the entry point
//! ever changes what comes out.
//!
//! Input layout (so seeds and regressions can be written by hand):
//!
//! | bytes       | meaning                                                              |
//! | ----------- | -------------------------------------------------------------------- |
//! | 0           | `max_line_bytes` of the small limits                                 |
//! | 1           | `max_data_bytes` of the small limits                                 |
//! | 2           | `n`, the number of piece lengths that follow                         |
//! | 3 .. 3 + n  | piece lengths (0 feeds an empty chunk); the rest is one last piece   |
//! | 3 + n ..    | the stream itself                                                    |
//!
//! Missing header bytes count as 0. For each of three limits (the defaults, the small ones
//! from the header and `Limits::UNBOUNDED`) the stream is parsed as two bodies (the same bytes
//! twice, with `end_body` after each, and `set_last_event_id` before the second, as a
//! reconnecting client does) with comments on, and:
//!
//! - whole, in the pieces and byte by byte give the same frames and errors, the same
//!   `last_event_id()` and the same `reconnection_time_ms()`, whichever way the bytes are
//!   given: `feed` then `next` until `None`; `feed_iter` drained; or `feed_iter` dropped after
//!   one frame (the rest of the chunk stays in the parser, and the next `feed_iter`, or one of
//!   an empty chunk at the end, reads it);
//! - with the default limits no error comes out, and the result equals the unbounded one (the
//!   input is far below 16 MiB);
//! - with comments off the frames are the same minus the comments;
//! - every frame is well formed (no line break in any string, no NUL in an id, a non-empty
//!   event type).

#![no_main]

use libfuzzer_sys::fuzz_target;
use ssehub_wire::{Frame, Limits, ParseError, Parser};

/// Everything a run observes.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// The frames of each body, in order.
    bodies: Vec<Vec<Result<Frame, ParseError>>>,
    /// `last_event_id()` after each body.
    last_event_ids: Vec<String>,
    /// `reconnection_time_ms()` after each body.
    retries: Vec<Option<u64>>,
}

/// How the bytes are given to the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    /// `feed`, then `next` until `None`.
    FeedNext,
    /// `feed_iter`, drained.
    FeedIter,
    /// `feed_iter`, dropped after at most one frame; `feed_iter(&[])` reads what is left.
    FeedIterOneFrame,
}

/// Parses `stream` as two bodies, feeding each as `pieces` (which cover the whole stream).
fn run(limits: Limits, comments: bool, pieces: &[&[u8]], api: Api) -> Outcome {
    let mut parser = Parser::with_limits(limits).with_comments(comments);
    let mut outcome = Outcome {
        bodies: Vec::new(),
        last_event_ids: Vec::new(),
        retries: Vec::new(),
    };
    for body in 0..2 {
        if body == 1 {
            // A reconnecting client may hold an id of its own: events without `id:` report it.
            let resumed = format!("{}+", parser.last_event_id());
            parser.set_last_event_id(resumed.as_str());
            assert_eq!(parser.last_event_id(), resumed);
        }
        let mut frames = Vec::new();
        let mut push = |frame| {
            frames.push(frame);
            assert!(
                frames.len() <= 1 << 20,
                "the parser keeps returning frames without new input"
            );
        };
        for piece in pieces {
            match api {
                Api::FeedNext => {
                    parser.feed(piece);
                    while let Some(frame) = parser.next() {
                        push(frame);
                    }
                }
                Api::FeedIter => parser.feed_iter(piece).for_each(&mut push),
                Api::FeedIterOneFrame => parser.feed_iter(piece).take(1).for_each(&mut push),
            }
        }
        if api == Api::FeedIterOneFrame {
            parser.feed_iter(&[]).for_each(&mut push);
        }
        assert_eq!(parser.next(), None, "{api:?} left a frame behind");
        parser.end_body();
        // After `end_body` nothing is buffered: `next` has nothing to say.
        assert_eq!(parser.next(), None, "a frame after end_body");
        outcome.bodies.push(frames);
        outcome
            .last_event_ids
            .push(parser.last_event_id().to_owned());
        outcome.retries.push(parser.reconnection_time_ms());
    }
    outcome
}

fn check_well_formed(outcome: &Outcome) {
    let one_line = |s: &str| !s.contains(['\r', '\n']);
    for frame in outcome.bodies.iter().flatten() {
        match frame {
            Ok(Frame::Event(event)) => {
                assert!(!event.data.contains('\r'), "CR in data: {event:?}");
                assert!(
                    !event.event_type.is_empty() && one_line(&event.event_type),
                    "bad event type: {event:?}"
                );
                assert!(
                    one_line(&event.last_event_id) && !event.last_event_id.contains('\0'),
                    "bad id: {event:?}"
                );
            }
            Ok(Frame::Comment(text)) => assert!(one_line(text), "bad comment: {text:?}"),
            Err(_) => {}
        }
    }
    for id in &outcome.last_event_ids {
        assert!(
            one_line(id) && !id.contains('\0'),
            "bad last event id: {id:?}"
        );
    }
}

fn without_comments(outcome: &Outcome) -> Vec<Vec<Result<Frame, ParseError>>> {
    outcome
        .bodies
        .iter()
        .map(|frames| {
            frames
                .iter()
                .filter(|f| !matches!(f, Ok(Frame::Comment(_))))
                .cloned()
                .collect()
        })
        .collect()
}

/// Splits `data` into the small limits, the piece lengths and the stream.
fn split_input(data: &[u8]) -> (Limits, Vec<&[u8]>, &[u8]) {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let limits = Limits {
        max_line_bytes: usize::from(byte(0)),
        max_data_bytes: usize::from(byte(1)),
    };
    let header = data.len().min(3);
    let n = usize::from(byte(2)).min(data.len() - header);
    let (lengths, mut stream) = data[header..].split_at(n);
    let whole = stream;
    let mut pieces = Vec::with_capacity(lengths.len() + 1);
    for &len in lengths {
        let (piece, rest) = stream.split_at(usize::from(len).min(stream.len()));
        pieces.push(piece);
        stream = rest;
    }
    pieces.push(stream);
    (limits, pieces, whole)
}

fuzz_target!(|data: &[u8]| {
    let (small, pieces, stream) = split_input(data);
    let bytewise: Vec<&[u8]> = stream.chunks(1).collect();

    let mut wholes = Vec::new();
    for limits in [Limits::default(), small, Limits::UNBOUNDED] {
        let whole = run(limits, true, &[stream], Api::FeedNext);
        check_well_formed(&whole);
        assert_eq!(
            run(limits, true, &[stream], Api::FeedIter),
            whole,
            "feed_iter differs from feed + next, whole, limits {limits:?}"
        );
        for api in [Api::FeedNext, Api::FeedIter, Api::FeedIterOneFrame] {
            assert_eq!(
                run(limits, true, &pieces, api),
                whole,
                "pieces {pieces:?} through {api:?} differ from whole, limits {limits:?}"
            );
        }
        for api in [Api::FeedNext, Api::FeedIter] {
            assert_eq!(
                run(limits, true, &bytewise, api),
                whole,
                "byte by byte through {api:?} differs from whole, limits {limits:?}"
            );
        }
        let silent = run(limits, false, &[stream], Api::FeedIter);
        assert_eq!(
            silent.bodies,
            without_comments(&whole),
            "comments change events"
        );
        assert_eq!(silent.last_event_ids, whole.last_event_ids);
        assert_eq!(silent.retries, whole.retries);
        wholes.push(whole);
    }

    let (default, unbounded) = (&wholes[0], &wholes[2]);
    assert!(
        default.bodies.iter().flatten().all(Result::is_ok),
        "an error with the default limits: {default:?}"
    );
    assert_eq!(
        default, unbounded,
        "the default limits change a small stream"
    );
});
