//! The SSE parser conformance vectors, as data, and a harness that runs them against any parser.
//!
//! The vectors (`conformance/sse-vectors.json` at the workspace root, described in
//! `conformance/README.md`) come from web-platform-tests, LaunchDarkly's sse-contract-tests,
//! the `eventsource-parser` npm package and the standard itself. A parser is plugged in through
//! [`Subject`]; [`run_all`] feeds every vector in every way the conformance README asks for —
//! the given chunks (or whole), one byte at a time, split in two at every offset, and the
//! upstream fixed chunk sizes — and counts what passes. Our own parser, the `ssehub decode`
//! binary and the peer crates in the benchmarks all go through this one harness, so their pass
//! counts are comparable.
//!
//! # Layout
//!
//! Everything is in this file: [`Vector`] (one case), [`Outcome`] (what a parser produced),
//! [`Subject`], the split modes ([`Mode`]) and the tally ([`Report`]).

use std::path::PathBuf;

use serde::Deserialize;

/// One dispatched event, as the vectors spell it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ExpectedEvent {
    /// The event type (`message` by default).
    #[serde(rename = "type")]
    pub event_type: String,
    /// The event data.
    pub data: String,
    /// The event's `lastEventId`.
    pub last_event_id: String,
}

/// One conformance case; see `conformance/README.md` for the meaning of each field.
#[derive(Debug, Clone, Deserialize)]
pub struct Vector {
    /// A unique name, prefixed by its source (`wpt-`, `ld-`, `rx-`, `spec-`, `sd-`).
    pub name: String,
    /// Where the case comes from.
    pub source: String,
    /// The exact bytes of the stream, in hex.
    pub input_hex: String,
    /// The chunks the upstream test delivers, in hex, when it matters.
    #[serde(default)]
    pub chunks_hex: Option<Vec<String>>,
    /// Fixed chunk sizes the upstream test also uses.
    #[serde(default)]
    pub chunk_sizes: Option<Vec<usize>>,
    /// The last event id string before this body (a reconnect).
    #[serde(default)]
    pub initial_last_event_id: Option<String>,
    /// Every event the standard dispatches, in order.
    pub expected: Vec<ExpectedEvent>,
    /// The reconnection time the stream leaves set, if any.
    pub retry: Option<u64>,
    /// The last event id string after the body.
    pub final_last_event_id: String,
    /// Comment texts, for parsers that surface comments.
    #[serde(default)]
    pub expected_comments: Option<Vec<String>>,
}

impl Vector {
    /// The stream's bytes.
    pub fn input(&self) -> Vec<u8> {
        hex::decode(&self.input_hex).expect("vector input_hex is valid hex")
    }
}

/// What a parser produced from one vector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The dispatched events.
    pub events: Vec<ExpectedEvent>,
    /// Comments, or `None` if the parser does not surface them.
    pub comments: Option<Vec<String>>,
    /// The reconnection time, or `None` if unset (or not exposed; see [`Subject::exposes_retry`]).
    pub retry: Option<u64>,
    /// The last event id string at the end, or `None` if the parser does not expose it.
    pub final_last_event_id: Option<String>,
    /// An error or a panic, which always fails the case: every vector is a valid stream.
    pub error: Option<String>,
}

/// A parser under test.
pub trait Subject {
    /// The subject's name in reports.
    fn name(&self) -> &str;
    /// Parses one body delivered as `chunks`, after a connection whose last event id was
    /// `initial_last_event_id`.
    fn parse(&mut self, chunks: &[&[u8]], initial_last_event_id: &str) -> Outcome;
    /// Whether [`Outcome::retry`] is meaningful for this subject.
    fn exposes_retry(&self) -> bool {
        true
    }
}

/// A way of cutting a vector's bytes into chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The upstream chunks if the vector has them, else the whole body in one chunk.
    Given,
    /// One byte per chunk.
    ByteByByte,
    /// Two chunks, at every split offset from 1 to len − 1 (each offset is one run).
    TwoWay,
    /// The vector's `chunk_sizes` (fixed-size chunks), when it has them.
    FixedSizes,
}

impl Mode {
    /// Every mode, in report order.
    pub const ALL: [Mode; 4] = [
        Mode::Given,
        Mode::ByteByByte,
        Mode::TwoWay,
        Mode::FixedSizes,
    ];

    /// A short label for reports.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Given => "whole/given chunks",
            Mode::ByteByByte => "byte by byte",
            Mode::TwoWay => "two-way splits",
            Mode::FixedSizes => "upstream chunk sizes",
        }
    }

    /// The chunkings of `vector` this mode runs (several for [`Mode::TwoWay`]).
    pub fn chunkings(self, vector: &Vector) -> Vec<Vec<Vec<u8>>> {
        let input = vector.input();
        match self {
            Mode::Given => vec![match &vector.chunks_hex {
                Some(chunks) => chunks
                    .iter()
                    .map(|c| hex::decode(c).expect("vector chunks_hex is valid hex"))
                    .collect(),
                None => vec![input],
            }],
            Mode::ByteByByte => vec![input.iter().map(|&b| vec![b]).collect()],
            Mode::TwoWay => (1..input.len())
                .map(|at| vec![input[..at].to_vec(), input[at..].to_vec()])
                .collect(),
            Mode::FixedSizes => vector
                .chunk_sizes
                .iter()
                .flatten()
                .map(|&size| input.chunks(size).map(<[u8]>::to_vec).collect())
                .collect(),
        }
    }
}

/// The vectors shipped with the workspace.
///
/// # Panics
///
/// If the file is missing or malformed: the test suite cannot run without it.
pub fn vectors() -> Vec<Vector> {
    let path = vectors_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad {}: {e}", path.display()))
}

/// Where the vectors live: `conformance/sse-vectors.json` at the workspace root.
pub fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance/sse-vectors.json")
}

/// Why one run of one vector failed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The vector's name.
    pub vector: String,
    /// The mode.
    pub mode: Mode,
    /// The chunk lengths of the failing run.
    pub chunk_lens: Vec<usize>,
    /// What went wrong.
    pub reason: String,
}

/// How a subject did on every vector and mode.
#[derive(Debug, Clone)]
pub struct Report {
    /// The subject's name.
    pub subject: String,
    /// The number of vectors.
    pub vectors: usize,
    /// Per mode: vectors with every run of the mode passing, vectors the mode applies to, runs.
    pub per_mode: Vec<(Mode, usize, usize, usize)>,
    /// Vectors that passed in every mode.
    pub passed_all: usize,
    /// The failing runs (the first failure of each vector and mode).
    pub failures: Vec<Failure>,
}

impl Report {
    /// One line per mode, plus the total: `name: 181/181 all modes; …`.
    pub fn summary(&self) -> String {
        let modes: Vec<String> = self
            .per_mode
            .iter()
            .map(|(mode, pass, total, runs)| {
                format!("{pass}/{total} {} ({runs} runs)", mode.label())
            })
            .collect();
        format!(
            "{}: {}/{} vectors pass in every mode; {}",
            self.subject,
            self.passed_all,
            self.vectors,
            modes.join(", ")
        )
    }
}

/// Runs every vector in every mode against `subject`. A panic inside the subject counts as a
/// failure of that run, not of the harness.
pub fn run_all(subject: &mut dyn Subject, vectors: &[Vector]) -> Report {
    let mut per_mode = Vec::new();
    let mut failures = Vec::new();
    let mut failed_vectors = std::collections::BTreeSet::new();
    for mode in Mode::ALL {
        let (mut pass, mut total, mut runs) = (0, 0, 0);
        for vector in vectors {
            let chunkings = mode.chunkings(vector);
            if chunkings.is_empty() {
                continue;
            }
            total += 1;
            runs += chunkings.len();
            let failure = chunkings.iter().find_map(|chunks| {
                check(subject, vector, chunks).err().map(|reason| Failure {
                    vector: vector.name.clone(),
                    mode,
                    chunk_lens: chunks.iter().map(Vec::len).collect(),
                    reason,
                })
            });
            match failure {
                None => pass += 1,
                Some(f) => {
                    failed_vectors.insert(vector.name.clone());
                    failures.push(f);
                }
            }
        }
        per_mode.push((mode, pass, total, runs));
    }
    Report {
        subject: subject.name().to_string(),
        vectors: vectors.len(),
        per_mode,
        passed_all: vectors.len() - failed_vectors.len(),
        failures,
    }
}

/// Runs one chunking of one vector and compares the outcome with the expectation.
///
/// # Errors
///
/// A description of the first difference.
pub fn check(subject: &mut dyn Subject, vector: &Vector, chunks: &[Vec<u8>]) -> Result<(), String> {
    let slices: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
    let initial = vector.initial_last_event_id.as_deref().unwrap_or("");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        subject.parse(&slices, initial)
    }))
    .map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        format!("panicked: {message}")
    })?;
    if let Some(error) = outcome.error {
        return Err(format!("error: {error}"));
    }
    if outcome.events != vector.expected {
        return Err(format!(
            "events {:?}, expected {:?}",
            outcome.events, vector.expected
        ));
    }
    if subject.exposes_retry() && outcome.retry != vector.retry {
        return Err(format!(
            "retry {:?}, expected {:?}",
            outcome.retry, vector.retry
        ));
    }
    if let Some(id) = outcome.final_last_event_id
        && id != vector.final_last_event_id
    {
        return Err(format!(
            "final last event id {id:?}, expected {:?}",
            vector.final_last_event_id
        ));
    }
    if let (Some(got), Some(want)) = (outcome.comments, &vector.expected_comments)
        && &got != want
    {
        return Err(format!("comments {got:?}, expected {want:?}"));
    }
    Ok(())
}
