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

/// The vectors file says the same as the README that describes it, and its redundant forms
/// agree with its canonical bytes.
///
/// The file is the repo's own copy (its cases carry their upstream `source`); there is no
/// other copy in the repo to compare it with, so what can drift apart is what the repo says
/// about it: the count and the per-source table of `conformance/README.md`, and, inside each
/// vector, `input` and `chunks`/`chunks_hex` against `input_hex` (the canonical bytes). Any
/// file that is missing or unreadable fails the test: it never passes without comparing.
#[test]
fn vectors_match_their_readme() {
    let path = ssehub_conformance::vectors_path();
    let dir = path.parent().unwrap();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let readme_path = dir.join("README.md");
    let readme = std::fs::read_to_string(&readme_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", readme_path.display()));
    let raw: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();

    // The README's headline count and its table, one row per source (a name prefix each).
    let headline = format!("{} vectors,", raw.len());
    assert!(
        readme.contains(&headline),
        "README does not say {headline:?}"
    );
    let sources = [
        ("web-platform-tests/wpt", "wpt-"),
        ("spec", "spec-"),
        ("spec-derived", "sd-"),
        ("launchdarkly/sse-contract-tests", "ld-"),
        ("rexxars/eventsource-parser", "rx-"),
    ];
    let mut documented = 0;
    for (source, prefix) in sources {
        let row = readme
            .lines()
            .find(|line| {
                let cell = line.strip_prefix("| `").unwrap_or("");
                let cell = cell.split('`').next().unwrap_or("");
                cell.split(':').next() == Some(source)
            })
            .unwrap_or_else(|| panic!("README has no table row for {source}"));
        let count: usize = row.split('|').nth(2).unwrap().trim().parse().unwrap();
        let actual = raw
            .iter()
            .filter(|v| v["name"].as_str().unwrap().starts_with(prefix))
            .count();
        assert_eq!(
            actual, count,
            "{source}: README says {count}, file has {actual}"
        );
        documented += count;
    }
    assert_eq!(
        documented,
        raw.len(),
        "a vector's name has no documented source"
    );

    let mut names = std::collections::HashSet::new();
    for vector in &raw {
        let name = vector["name"].as_str().unwrap();
        assert!(names.insert(name), "{name}: name used twice");
        let input = hex::decode(vector["input_hex"].as_str().unwrap()).unwrap();
        if let Some(text) = vector["input"].as_str() {
            assert_eq!(text.as_bytes(), input, "{name}: input ≠ input_hex");
        }
        if let Some(chunks_hex) = vector["chunks_hex"].as_array() {
            let chunks: Vec<Vec<u8>> = chunks_hex
                .iter()
                .map(|c| hex::decode(c.as_str().unwrap()).unwrap())
                .collect();
            assert_eq!(chunks.concat(), input, "{name}: chunks_hex ≠ input_hex");
            if let Some(texts) = vector["chunks"].as_array() {
                let texts: Vec<&[u8]> = texts
                    .iter()
                    .map(|t| t.as_str().unwrap().as_bytes())
                    .collect();
                assert_eq!(texts, chunks, "{name}: chunks ≠ chunks_hex");
            }
        }
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
