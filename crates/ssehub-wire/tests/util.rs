//! Running our parser over chunks, shared by the test modules.

use ssehub_conformance::{ExpectedEvent, Outcome};
use ssehub_wire::{Frame, Parser};

/// Parses one body delivered as `chunks`, the way a client would: feed, drain, end the body.
pub(crate) fn parse_chunks(parser: &mut Parser, chunks: &[&[u8]]) -> Outcome {
    let mut outcome = Outcome {
        comments: Some(Vec::new()),
        ..Outcome::default()
    };
    for chunk in chunks {
        parser.feed(chunk);
        while let Some(frame) = parser.next() {
            match frame {
                Ok(Frame::Event(e)) => outcome.events.push(ExpectedEvent {
                    event_type: e.event_type,
                    data: e.data,
                    last_event_id: e.last_event_id,
                }),
                Ok(Frame::Comment(c)) => outcome.comments.as_mut().unwrap().push(c),
                Err(e) => outcome.error = Some(e.to_string()),
            }
        }
    }
    parser.end_body();
    outcome.retry = parser.reconnection_time_ms();
    outcome.final_last_event_id = Some(parser.last_event_id().to_string());
    outcome
}
