//! The load generator behind `ssehub bench`: scenarios that any SSE user can point at any
//! hub, ssehub or not.
//!
//! The `ssehub` binary parses its command line (with [`BenchArgs`], from this crate) and calls
//! [`run`]; nothing else here is public. Each scenario publishes over plain HTTP (reqwest),
//! subscribes with a small HTTP/1.1 reader of its own (`http1.rs`: a general client costs
//! more per stream than the hub it measures) and parses the streams with
//! [`ssehub_wire::Parser`]. It runs all its connections as tasks on one tokio runtime, bounds
//! every loop in count and time, and retries nothing: a failed request is counted and
//! reported.
//!
//! # Layout
//!
//! - `args.rs` — the clap flags of every scenario (the `ssehub bench …` command line).
//! - `fanout.rs` — `ssehub bench fanout`: N subscribers, M events at R/s.
//! - `topics.rs` — `ssehub bench topics`: N topics with one subscriber each, one event to each.
//! - `conns.rs` — `ssehub bench conns`: N idle connections, the hub's memory per connection
//!   (`conns_h2.rs`: the same streams over HTTP/2, `--http2 K` per connection).
//!   Several processes re-run the current executable as `bench conns --worker`, so it must be
//!   a binary that has this command (`ssehub`).
//! - `publish_bench.rs` — `ssehub bench publish`: P publishers, batches of B, acknowledged
//!   events/s.
//! - `snapshot.rs` — `ssehub bench snapshot`: a topic with K keys, then a late joiner's
//!   snapshot: time to its first event and to its end.
//! - `storm.rs` — `ssehub bench storm`: N clients, the hub restarted, every client back with
//!   its `Last-Event-ID`: time to resume, the hub's peak CPU and memory, losses.
//!
//! What the scenarios share, one place each:
//!
//! - `plan.rs` — `--hub` and the run flags as values (timeouts, the run's bound, headers).
//! - `subscribers.rs` — all the subscriber streams of a run: open together, stop together.
//! - `stream.rs` — one subscriber stream (open, read, end).
//! - `http1.rs` — the subscribers' streaming HTTP/1.1 `GET` on a plain socket.
//! - `deliveries.rs` — what each subscriber received, checked, and its sum over the run.
//! - `publishers.rs` — the publishers: lanes on a thread of their own, pacing, payloads, and
//!   what the hub acknowledged.
//! - `histogram.rs` — the lock-free latency histogram.
//! - `probe.rs` — the hub's CPU time and memory from `/proc`, and the open-file limit.
//! - `table.rs` — the text form of a report.
//! - this file — [`run`], and small helpers (time, flags, run ids, printing).

mod args;
mod conns;
mod conns_h2;
mod deliveries;
mod fanout;
mod histogram;
mod http1;
mod plan;
mod probe;
mod publish_bench;
mod publishers;
mod snapshot;
mod storm;
mod stream;
mod subscribers;
mod table;
mod topics;

pub use args::{
    BenchArgs, BenchScenario, ConnsArgs, FanoutArgs, PublishBenchArgs, ReadyOn, RunArgs,
    SnapshotArgs, StopSignal, StormArgs, TopicsArgs,
};

use std::time::Duration;

use anyhow::Context as _;

/// Runs one scenario on a runtime of its own and prints its report. An error means the flags
/// were wrong or the run could not be carried out (a subscription or connection that did not
/// open); events the hub lost or reordered are counted in the report instead.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = match &args.scenario {
        BenchScenario::Fanout(args) => runtime.block_on(fanout::run(args)),
        BenchScenario::Publish(args) => runtime.block_on(publish_bench::run(args)),
        BenchScenario::Conns(args) => runtime.block_on(conns::run(args)),
        BenchScenario::Topics(args) => runtime.block_on(topics::run(args)),
        BenchScenario::Storm(args) => runtime.block_on(storm::run(args)),
        BenchScenario::Snapshot(args) => runtime.block_on(snapshot::run(args)),
    };
    // Connections still open (after an error) are dropped here, not waited for.
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

/// `Name: value` flags as a header map.
fn parse_headers(headers: &[String]) -> anyhow::Result<reqwest::header::HeaderMap> {
    let mut map = reqwest::header::HeaderMap::new();
    for header in headers {
        let (name, value) = header
            .split_once(':')
            .with_context(|| format!("--header {header:?}: expected `Name: value`"))?;
        let name = reqwest::header::HeaderName::from_bytes(name.trim().as_bytes())
            .with_context(|| format!("--header {header:?}: invalid name"))?;
        let value = reqwest::header::HeaderValue::from_str(value.trim())
            .with_context(|| format!("--header {header:?}: invalid value"))?;
        map.append(name, value);
    }
    Ok(map)
}

/// Microseconds since the Unix epoch, by the wall clock (so that a publisher and a subscriber
/// in different processes on one machine agree).
fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, micros)
}

/// A duration in whole microseconds (saturating).
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A run id that another run (of this or another process) will not pick: 16 hex digits.
fn run_id() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(now_micros());
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// A positive number of seconds from a flag.
fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        value.is_finite() && value > 0.0 && value < 1e9,
        "{flag} must be a positive number of seconds, not {value}"
    );
    Ok(Duration::from_secs_f64(value))
}

/// The hub's base URL from `--hub`: plain `http://` (the bench's subscribers speak HTTP/1.1
/// on a plain socket), without a trailing `/`.
fn hub_base(hub: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        hub.starts_with("http://"),
        "--hub must be an http:// URL, not {hub:?}"
    );
    Ok(hub.trim_end_matches('/').to_string())
}

/// Prints a report as one JSON object, or as its table.
fn print_report<R: serde::Serialize>(
    report: &R,
    json: bool,
    table: impl FnOnce(&R) -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        print!("{}", table(report));
    }
    Ok(())
}
