//! Every encoder, from the same [`EventSpec`]s.
//!
//! Each crate's event type is built outside the measurement (`*_events`); the encode functions
//! take the events by value because sse-stream's `Sse::encode` and sse-codec's
//! `Encoder::encode` consume theirs, so every encoder pays for dropping its input the same way.
//! Encoders that append to one buffer get a reused one (cleared by the caller), as a
//! connection's write buffer is: a fresh megabyte per run would measure page faults.
//!
//! Peers without an encoder: eventsource-stream and sse-core only parse. axum's
//! `axum::response::sse::Event` encodes only inside its `Sse` response body (its `finalize` is
//! private), so it cannot be measured standalone.

use bytes::Bytes;

use crate::workload::{EventSpec, to_wire};

/// ssehub-wire events.
pub fn ours_events(specs: &[EventSpec]) -> Vec<ssehub_wire::Event> {
    specs.iter().map(to_wire).collect()
}

/// ssehub-wire: each event into its own [`Bytes`] (what a hub does: encode once, share).
pub fn ours_encode(events: Vec<ssehub_wire::Event>) -> Vec<Bytes> {
    events.into_iter().map(|e| e.encode()).collect()
}

/// ssehub-wire: every event appended to `out` (a reused write buffer) with `encode_into`.
pub fn ours_encode_into(events: Vec<ssehub_wire::Event>, out: &mut Vec<u8>) {
    for event in events {
        event.encode_into(out);
    }
}

/// sse-stream events.
pub fn sse_stream_events(specs: &[EventSpec]) -> Vec<sse_stream::Sse> {
    specs
        .iter()
        .map(|s| {
            sse_stream::Sse::default()
                .id(s.id.clone())
                .event(s.event.clone())
                .data(s.data.clone())
        })
        .collect()
}

/// sse-stream: `Sse::encode` (consumes the event, validates id and type) into [`Bytes`].
///
/// # Panics
///
/// If the crate refuses an event, which the workloads never give it reason to.
pub fn sse_stream_encode(events: Vec<sse_stream::Sse>) -> Vec<Bytes> {
    events
        .into_iter()
        .map(|e| e.encode().expect("valid event"))
        .collect()
}

/// sse-codec events.
pub fn sse_codec_events(specs: &[EventSpec]) -> Vec<sse_codec::Event> {
    specs
        .iter()
        .map(|s| sse_codec::Event::message(&s.event, &s.data, s.id.as_str()))
        .collect()
}

/// sse-codec: its `futures_codec::Encoder` (a `writeln!` of the event's `Display`) appending
/// every event to `out` (a reused write buffer), as its `FramedWrite` does.
///
/// # Panics
///
/// If formatting fails, which writing to memory does not.
pub fn sse_codec_encode(events: Vec<sse_codec::Event>, out: &mut futures_codec::BytesMut) {
    use futures_codec::Encoder;
    let mut codec = sse_codec::SSECodec::default();
    for event in events {
        codec.encode(event, out).expect("fmt to memory");
    }
}

/// async-sse: its `Sender::send` (one channel message per line, through a bounded channel of
/// one) with its `Encoder` (an `AsyncRead`) read to the end concurrently, which is the only
/// way the crate encodes.
///
/// # Panics
///
/// If the in-memory channel fails, which it does not while both ends live.
#[cfg(feature = "async-sse")]
pub fn async_sse_encode(specs: &[EventSpec]) -> Vec<u8> {
    use futures::AsyncReadExt;
    let (sender, mut encoder) = async_sse::encode();
    let send = async move {
        for s in specs {
            sender
                .send(s.event.as_str(), &s.data, Some(s.id.as_str()))
                .await
                .expect("in-memory channel");
        }
        drop(sender);
    };
    let read = async move {
        let mut out = Vec::new();
        encoder
            .read_to_end(&mut out)
            .await
            .expect("in-memory channel");
        out
    };
    futures::executor::block_on(futures::future::join(send, read)).1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload;
    use ssehub_wire::{Frame, Parser};

    /// Parses `bytes` with ssehub-wire and checks it holds exactly the workload's events.
    fn assert_round_trip(name: &str, w: &workload::Workload, bytes: &[u8]) {
        let mut parser = Parser::new();
        parser.feed(bytes);
        let mut got = Vec::new();
        while let Some(frame) = parser.next() {
            if let Ok(Frame::Event(e)) = frame {
                got.push(EventSpec {
                    id: e.last_event_id,
                    event: e.event_type,
                    data: e.data,
                });
            }
        }
        assert!(got == w.events, "{name} on {}: events differ", w.name);
    }

    /// Every encoder writes the same events, so the benchmarks compare the same work.
    #[test]
    fn every_encoder_round_trips_every_workload() {
        for w in workload::all() {
            let ours = ours_encode(ours_events(&w.events)).concat();
            assert_eq!(ours, w.bytes);
            let mut out = Vec::new();
            ours_encode_into(ours_events(&w.events), &mut out);
            assert_eq!(out, w.bytes);
            let peer = sse_stream_encode(sse_stream_events(&w.events)).concat();
            assert_round_trip("sse-stream", &w, &peer);
            let mut peer = futures_codec::BytesMut::new();
            sse_codec_encode(sse_codec_events(&w.events), &mut peer);
            assert_round_trip("sse-codec", &w, &peer);
            #[cfg(feature = "async-sse")]
            assert_round_trip("async-sse", &w, &async_sse_encode(&w.events));
        }
    }
}
