//! Parse and encode throughput of ssehub-wire against other Rust SSE crates.
//!
//! Parse: every parser gets the same bytes (`ssehub_wire_bench::workload`), in 16 KiB chunks
//! (how a response body arrives) and in one chunk, and must dispatch every event (checked once
//! before measuring). Encode: every encoder writes the same events. Throughput is in events and
//! in bytes of the stream as ssehub-wire encodes it.
//!
//! ```text
//! cargo bench -p ssehub-wire-bench -- --warm-up-time 1 --measurement-time 3
//! cargo run -p ssehub-wire-bench --bin bench-table
//! ```
//!
//! # Clock
//!
//! The time measured is the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall
//! time: the code measured is single-threaded and never blocks, so on an idle machine the two
//! are the same, and on a shared one (a 2-core CI or developer box with builds running beside)
//! CPU time leaves out the time the thread waited for a core. `SSEHUB_BENCH_CLOCK=wall`
//! measures wall time instead.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use ssehub_wire_bench::table::{
    CHUNKED, OURS_ENCODE, OURS_ENCODE_INTO, SSE_CODEC_ENCODE, SSE_STREAM_ENCODE, WHOLE,
};
use ssehub_wire_bench::{encoders, peers, workload};

/// Thread CPU time, or wall time with `SSEHUB_BENCH_CLOCK=wall`; see the crate docs.
struct Clock {
    wall: bool,
    formatter: WallTime,
}

enum Start {
    Wall(Instant),
    Cpu(cpu_time::ThreadTime),
}

impl Clock {
    fn from_env() -> Self {
        let wall = std::env::var("SSEHUB_BENCH_CLOCK").is_ok_and(|v| v == "wall");
        eprintln!(
            "measuring {}",
            if wall {
                "wall time (SSEHUB_BENCH_CLOCK=wall)"
            } else {
                "thread CPU time (SSEHUB_BENCH_CLOCK=wall for wall time)"
            }
        );
        Clock {
            wall,
            formatter: WallTime,
        }
    }
}

impl Measurement for Clock {
    type Intermediate = Start;
    type Value = Duration;

    fn start(&self) -> Start {
        if self.wall {
            Start::Wall(Instant::now())
        } else {
            Start::Cpu(cpu_time::ThreadTime::now())
        }
    }

    fn end(&self, start: Start) -> Duration {
        match start {
            Start::Wall(t) => t.elapsed(),
            Start::Cpu(t) => t.elapsed(),
        }
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        // Values are nanoseconds either way, so criterion's own formatting applies.
        self.formatter.formatter()
    }
}

/// Events and bytes per iteration of `w`.
fn throughput(w: &workload::Workload) -> Throughput {
    Throughput::ElementsAndBytes {
        elements: w.event_count() as u64,
        bytes: w.bytes.len() as u64,
    }
}

fn parse(c: &mut Criterion<Clock>) {
    for w in workload::all() {
        for (label, size) in [(CHUNKED, Some(workload::CHUNK)), (WHOLE, None)] {
            let chunks = w.chunks(size);
            let mut group = c.benchmark_group(format!("parse/{}/{label}", w.name));
            group.throughput(throughput(&w));
            // Flat sampling: some peers take milliseconds per iteration, and linear sampling
            // would need thousands of iterations of them.
            group.sampling_mode(SamplingMode::Flat);
            group.sample_size(20);
            for peer in peers::benchmarked() {
                let tally = (peer.tally)(&chunks);
                assert_eq!(
                    (tally.events, tally.data_bytes, tally.errors),
                    (w.event_count(), w.data_bytes(), 0),
                    "{} does not parse {} ({label}) right",
                    peer.name,
                    w.name
                );
                group.bench_function(peer.name, |b| {
                    b.iter(|| (peer.tally)(black_box(&chunks)));
                });
            }
            group.finish();
        }
    }
}

fn encode(c: &mut Criterion<Clock>) {
    for w in workload::all() {
        let mut group = c.benchmark_group(format!("encode/{}", w.name));
        group.throughput(throughput(&w));
        group.sample_size(20);
        // Each encoder's input is cloned outside the measurement and consumed inside it (two of
        // the peers' encoders take their events by value); outputs are dropped outside it, and
        // the one-buffer encoders append to a buffer reused across iterations.
        let ours = encoders::ours_events(&w.events);
        group.bench_function(OURS_ENCODE, |b| {
            b.iter_batched(
                || ours.clone(),
                encoders::ours_encode,
                BatchSize::LargeInput,
            );
        });
        let mut buffer = Vec::new();
        group.bench_function(OURS_ENCODE_INTO, |b| {
            b.iter_batched(
                || ours.clone(),
                |events| {
                    buffer.clear();
                    encoders::ours_encode_into(events, &mut buffer);
                },
                BatchSize::LargeInput,
            );
        });
        let sse_stream = encoders::sse_stream_events(&w.events);
        group.bench_function(SSE_STREAM_ENCODE, |b| {
            b.iter_batched(
                || sse_stream.clone(),
                encoders::sse_stream_encode,
                BatchSize::LargeInput,
            );
        });
        let sse_codec = encoders::sse_codec_events(&w.events);
        let mut buffer = futures_codec::BytesMut::new();
        group.bench_function(SSE_CODEC_ENCODE, |b| {
            b.iter_batched(
                || sse_codec.clone(),
                |events| {
                    buffer.clear();
                    encoders::sse_codec_encode(events, &mut buffer);
                },
                BatchSize::LargeInput,
            );
        });
        #[cfg(feature = "async-sse")]
        group.bench_function(ssehub_wire_bench::table::ASYNC_SSE_ENCODE, |b| {
            b.iter(|| encoders::async_sse_encode(black_box(&w.events)));
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(Clock::from_env());
    targets = parse, encode
}
criterion_main!(benches);
