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
//! - `conns.rs` — `ssehub bench conns`: N idle connections, the hub's memory per connection.
//!   Several processes re-run the current executable as `bench conns --worker`, so it must be
//!   a binary that has this command (`ssehub`).
//! - `publish.rs` — `ssehub bench publish`: P publishers, batches of B, acknowledged events/s.
//! - `stream.rs` — one subscriber stream (open, read, end), the same for every scenario.
//! - `http1.rs` — the subscribers' streaming HTTP/1.1 `GET` on a plain socket.
//! - `histogram.rs` — the shared lock-free latency histogram.
//! - `table.rs` — the text form of a report.
//! - this file — what the scenarios share: flags to values, publishing, pacing, payloads.

mod args;
mod conns;
mod fanout;
mod histogram;
mod http1;
mod publish;
mod stream;
mod table;
mod topics;

pub use args::{
    BenchArgs, BenchScenario, ConnsArgs, FanoutArgs, PublishBenchArgs, ReadyOn, RunArgs, TopicsArgs,
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
        BenchScenario::Publish(args) => runtime.block_on(publish::run(args)),
        BenchScenario::Conns(args) => runtime.block_on(conns::run(args)),
        BenchScenario::Topics(args) => runtime.block_on(topics::run(args)),
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
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A positive number of seconds from a flag.
fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        value.is_finite() && value > 0.0 && value < 1e9,
        "{flag} must be a positive number of seconds, not {value}"
    );
    Ok(Duration::from_secs_f64(value))
}

/// POSTs a JSON body and reads the answer whole (so that the connection is reused); an error
/// names the status and the start of the answer when it is not a success.
async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: String,
) -> Result<bytes::Bytes, String> {
    use reqwest::header::{CONTENT_TYPE, HeaderValue};
    let response = client
        .post(url)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(body)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let status = response.status();
    let answer = response.bytes().await.map_err(|e| describe(&e))?;
    if status.is_success() {
        Ok(answer)
    } else {
        let answer = String::from_utf8_lossy(&answer[..answer.len().min(200)]).into_owned();
        Err(format!("publish: status {status}: {answer}"))
    }
}

/// An error with its causes (reqwest's own message rarely says what went wrong).
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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

/// Runs the future `make` gives on a thread and runtime of their own, and waits for it until
/// `until`. Publishers run so: on the subscribers' runtime their task would queue behind the
/// thousands of tasks each event wakes, and their pace, timestamps and ack latencies would
/// measure the bench instead of the hub.
async fn on_own_thread<F>(
    make: impl FnOnce() -> F + Send + 'static,
    until: tokio::time::Instant,
) -> anyhow::Result<F::Output>
where
    F: std::future::Future,
    F::Output: Send + 'static,
{
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-publisher".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the publisher's runtime");
            let _ = done_tx.send(runtime.map(|runtime| runtime.block_on(make())));
        })
        .context("cannot start the publisher thread")?;
    tokio::time::timeout_at(until, done_rx)
        .await
        .context("the publisher did not stop in time")?
        .context("the publisher thread failed")?
}

/// Waits until event `index` is due at `rate` per second from `start`; false (at once) when
/// that is at or past `deadline`.
async fn due(
    start: tokio::time::Instant,
    index: u32,
    rate: u32,
    deadline: tokio::time::Instant,
) -> bool {
    let due = start + Duration::from_secs_f64(f64::from(index) / f64::from(rate));
    if due >= deadline {
        return false;
    }
    tokio::time::sleep_until(due).await;
    true
}

/// An event's data for the bench: `{"run":…,"<key>":…,"ts_us":…,"pad":"xx…"}`, `size` bytes
/// when that is enough for the fields. `key` names what the scenario checks (an event's
/// sequence number, a topic's index).
fn payload(run_id: &str, (key, value): (&str, u32), ts_us: u64, size: usize) -> String {
    let mut body = format!(r#"{{"run":"{run_id}","{key}":{value},"ts_us":{ts_us},"pad":""#);
    let pad = size.saturating_sub(body.len() + 2);
    body.extend(std::iter::repeat_n('x', pad));
    body.push_str("\"}");
    body
}
