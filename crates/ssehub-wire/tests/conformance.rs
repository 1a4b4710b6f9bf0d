//! All 181 conformance vectors, in every split, through every way of feeding the parser, on
//! every test run.

use ssehub_conformance::{Mode, Outcome, Subject, run_all, vectors};
use ssehub_wire::Parser;

use crate::util::{Api, parse_chunks, parse_chunks_with};

/// Our parser, given its bytes through `Api`.
struct Ours(Api);

impl Subject for Ours {
    fn name(&self) -> &str {
        "ssehub-wire"
    }

    fn parse(&mut self, chunks: &[&[u8]], initial_last_event_id: &str) -> Outcome {
        let mut parser = Parser::new().with_comments(true);
        parser.set_last_event_id(initial_last_event_id);
        parse_chunks_with(&mut parser, chunks, self.0)
    }
}

#[test]
fn every_vector_in_every_split_through_every_api() {
    let vectors = vectors();
    assert_eq!(
        vectors.len(),
        181,
        "the conformance file lost or gained cases"
    );
    for api in Api::ALL {
        let report = run_all(&mut Ours(api), &vectors);
        println!("{api:?}: {}", report.summary());
        for failure in &report.failures {
            eprintln!(
                "FAIL {api:?} {} [{}] chunks {:?}: {}",
                failure.vector,
                failure.mode.label(),
                failure.chunk_lens,
                failure.reason
            );
        }
        assert!(report.failures.is_empty(), "{api:?}: {}", report.summary());
        assert_eq!(report.passed_all, 181, "{api:?}");
        let two_way = report
            .per_mode
            .iter()
            .find(|m| m.0 == Mode::TwoWay)
            .unwrap();
        assert!(two_way.3 > 1000, "two-way splits must cover every offset");
    }
}

/// The vectors are a copy of `../shared/conformance/`; when the shared copy is there, they
/// must not have drifted apart.
#[test]
fn vectors_match_the_shared_copy() {
    let ours = ssehub_conformance::vectors_path();
    let shared = ours.join("../../../shared/conformance/sse-vectors.json");
    if let Ok(shared) = std::fs::read(&shared) {
        assert_eq!(
            std::fs::read(&ours).unwrap(),
            shared,
            "conformance/ is out of date"
        );
    }
}

/// LaunchDarkly's contract tests send 5 MB single-line events, whole and split in two; the
/// vectors leave generating them to the harness.
#[test]
fn five_mebibyte_event_whole_and_split() {
    let payload: String = (0..5 * 1024 * 1024 / 4 * 3)
        .map(|i| {
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i % 64] as char
        })
        .collect();
    let body = format!("data: {payload}\n\n");
    let sixteen_kib: Vec<&[u8]> = body.as_bytes().chunks(16 * 1024).collect();
    for chunks in [
        vec![body.as_bytes()],
        vec![
            &body.as_bytes()[..body.len() / 2],
            &body.as_bytes()[body.len() / 2..],
        ],
        sixteen_kib,
    ] {
        for api in Api::ALL {
            let outcome = parse_chunks_with(&mut Parser::new(), &chunks, api);
            assert_eq!(outcome.error, None);
            assert_eq!(outcome.events.len(), 1);
            assert_eq!(outcome.events[0].data, payload);
        }
    }
}

/// 100 events in one chunk arrive in order (LaunchDarkly).
#[test]
fn hundred_events_in_one_chunk() {
    let body: String = (0..100)
        .map(|i| format!("id: {i}\ndata: {i}\n\n"))
        .collect();
    let outcome = parse_chunks(&mut Parser::new(), &[body.as_bytes()]);
    let data: Vec<String> = outcome.events.iter().map(|e| e.data.clone()).collect();
    let want: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    assert_eq!(data, want);
    assert_eq!(outcome.final_last_event_id.as_deref(), Some("99"));
}
