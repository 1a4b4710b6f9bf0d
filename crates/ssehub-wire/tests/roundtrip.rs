//! Properties: what the encoder writes, the parser reads back, however the bytes are cut.

use std::time::Duration;

use proptest::prelude::*;
use ssehub_wire::{Event, Limits, Parser};

use crate::util::{Api, parse_chunks, parse_chunks_with};

/// Any valid event: data of any text (line breaks of every kind included), an id without CR,
/// LF or NUL, a type without CR or LF, an optional retry and comment.
fn any_event() -> impl Strategy<Value = Event> {
    let line = "[^\r\n]{0,12}";
    (
        "(?s).{0,40}",
        proptest::option::of("[^\r\n\0]{0,12}"),
        proptest::option::of(line),
        proptest::option::of(any::<u32>()),
        proptest::option::of(line),
    )
        .prop_map(|(data, id, event, retry, comment)| {
            let mut e = Event::new(data);
            if let Some(id) = id {
                e = e.with_id(id).unwrap();
            }
            if let Some(t) = event {
                e = e.with_event(t).unwrap();
            }
            if let Some(ms) = retry {
                e = e.with_retry(Duration::from_millis(ms.into()));
            }
            if let Some(c) = comment {
                e = e.with_comment(c).unwrap();
            }
            e
        })
}

/// The standard turns every line break into LF.
fn normalize(data: &str) -> String {
    data.replace("\r\n", "\n").replace('\r', "\n")
}

/// Cuts `bytes` at the given offsets (taken modulo the length, sorted).
fn cut<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut pieces = Vec::new();
    let mut from = 0;
    for to in at.into_iter().chain([bytes.len()]) {
        pieces.push(&bytes[from..to]);
        from = to;
    }
    pieces
}

/// Byte soup biased towards what the parser cares about: field names, colons, spaces, every
/// line end, BOM bytes, NUL, and invalid UTF-8.
fn stream_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(&b"data:"[..]),
        Just(&b"data"[..]),
        Just(&b"id:"[..]),
        Just(&b"id"[..]),
        Just(&b"event:"[..]),
        Just(&b"retry:"[..]),
        Just(&b"12"[..]),
        Just(&b":"[..]),
        Just(&b" "[..]),
        Just(&b"\r"[..]),
        Just(&b"\n"[..]),
        Just(&b"\r\n"[..]),
        Just(&b"\xEF\xBB\xBF"[..]),
        Just(&b"\xEF"[..]),
        Just(&b"\0"[..]),
        Just(&b"\xFF"[..]),
        Just(&b"payload"[..]),
    ];
    proptest::collection::vec(
        prop_oneof![
            token.prop_map(<[u8]>::to_vec),
            any::<u8>().prop_map(|b| vec![b])
        ],
        0..60,
    )
    .prop_map(|tokens| tokens.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// parse(encode(e)) == e, for any valid event and any chunking, through every API.
    #[test]
    fn parse_inverts_encode(events in proptest::collection::vec(any_event(), 1..4),
                            cuts in proptest::collection::vec(any::<usize>(), 0..6),
                            api in proptest::sample::select(&Api::ALL[..])) {
        let mut bytes = Vec::new();
        for e in &events {
            e.encode_into(&mut bytes);
        }
        let outcome = parse_chunks_with(&mut Parser::new(), &cut(&bytes, &cuts), api);
        prop_assert_eq!(outcome.error, None);
        prop_assert_eq!(outcome.events.len(), events.len());
        let mut last_id = String::new();
        for (got, sent) in outcome.events.iter().zip(&events) {
            if let Some(id) = sent.id() {
                last_id = id.to_string();
            }
            prop_assert_eq!(&got.data, &normalize(sent.data()));
            let want_type = sent.event().filter(|t| !t.is_empty()).unwrap_or("message");
            prop_assert_eq!(&got.event_type, want_type);
            prop_assert_eq!(&got.last_event_id, &last_id);
        }
        let last_retry = events.iter().filter_map(Event::retry_ms).next_back();
        prop_assert_eq!(outcome.retry, last_retry);
    }

    /// Any bytes at all, cut anywhere, through any API: no panic, and the same result as in
    /// one piece through `feed` and `next`. Under tight limits the same holds, errors included.
    #[test]
    fn chunking_never_changes_the_result(bytes in stream_bytes(),
                                         cuts in proptest::collection::vec(any::<usize>(), 0..8),
                                         tight in any::<bool>()) {
        let limits = if tight {
            Limits { max_line_bytes: 8, max_data_bytes: 12 }
        } else {
            Limits::default()
        };
        let whole = parse_chunks(&mut Parser::with_limits(limits), &[&bytes]);
        if !tight {
            prop_assert_eq!(&whole.error, &None);
        }
        for api in Api::ALL {
            let pieces =
                parse_chunks_with(&mut Parser::with_limits(limits), &cut(&bytes, &cuts), api);
            prop_assert_eq!(&whole, &pieces, "{:?}", api);
        }
    }
}
