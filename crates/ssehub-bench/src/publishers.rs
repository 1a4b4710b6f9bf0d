//! The publishing side of `fanout` and `topics`: K publishers ("lanes") on a thread and
//! runtime of their own, each sending its share of the events one request at a time, not
//! before its time, and one record of what the hub acknowledged.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::deliveries::Bitset;
use crate::histogram::Histogram;

/// The first of a run's failed requests, and how many there were.
#[derive(Debug, Default)]
pub(crate) struct Failures {
    pub(crate) count: u64,
    pub(crate) first: Option<String>,
}

impl Failures {
    pub(crate) fn add(&mut self, error: String) {
        self.count += 1;
        self.first.get_or_insert(error);
    }
}

/// What the publishers of a run did.
pub(crate) struct Published {
    /// The events the hub acknowledged.
    pub(crate) acked: Bitset,
    /// Request sent → its answer, in microseconds, per request.
    pub(crate) ack: Histogram,
    pub(crate) failures: Failures,
    /// From the first lane's start to the last lane's end.
    pub(crate) secs: f64,
    /// A lane stopped at the run's deadline.
    pub(crate) deadline_reached: bool,
}

impl Published {
    pub(crate) fn new(events: u32) -> Self {
        Published {
            acked: Bitset::new(events),
            ack: Histogram::new(),
            failures: Failures::default(),
            secs: 0.0,
            deadline_reached: false,
        }
    }

    /// Records one request for `events`: acknowledged after `ack_us` microseconds (returned
    /// back), or failed.
    pub(crate) fn record(
        &mut self,
        result: Result<(), String>,
        events: std::ops::Range<u32>,
        ack_us: u64,
    ) -> Option<u64> {
        match result {
            Ok(()) => {
                self.ack.record(ack_us);
                for i in events {
                    self.acked.set(i);
                }
                Some(ack_us)
            }
            Err(error) => {
                self.failures.add(error);
                None
            }
        }
    }
}

/// Runs `publishers` lanes, lane `k` being `lane(k, start)`, which returns whether it stopped
/// at the deadline; returns the seconds they took and whether any stopped so. A lane cannot
/// panic short of a bug; its events then count as not acknowledged.
pub(crate) async fn run_lanes<F, L>(publishers: u32, lane: L) -> (f64, bool)
where
    L: Fn(u32, Instant) -> F,
    F: Future<Output = bool> + Send + 'static,
{
    let start = Instant::now();
    let mut lanes = JoinSet::new();
    for k in 0..publishers {
        lanes.spawn(lane(k, start));
    }
    let mut deadline_reached = false;
    while let Some(stopped) = lanes.join_next().await {
        deadline_reached |= stopped.unwrap_or(false);
    }
    (start.elapsed().as_secs_f64(), deadline_reached)
}

/// Locks what the lanes record into (a lane that panicked leaves it usable).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes what the lanes recorded, once they are done.
pub(crate) fn take<T>(shared: Arc<Mutex<T>>, empty: T) -> T {
    std::mem::replace(&mut *lock(&shared), empty)
}

/// Runs the future `make` gives on a thread and runtime of their own, and waits for it until
/// `until`. Publishers run so: on the subscribers' runtime their task would queue behind the
/// thousands of tasks each event wakes, and their pace, timestamps and ack latencies would
/// measure the bench instead of the hub.
pub(crate) async fn on_own_thread<F>(
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
pub(crate) async fn due(
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
pub(crate) fn payload(run_id: &str, (key, value): (&str, u32), ts_us: u64, size: usize) -> String {
    let mut body = format!(r#"{{"run":"{run_id}","{key}":{value},"ts_us":{ts_us},"pad":""#);
    let pad = size.saturating_sub(body.len() + 2);
    body.extend(std::iter::repeat_n('x', pad));
    body.push_str("\"}");
    body
}

/// POSTs a JSON body and reads the answer whole (so that the connection is reused); an error
/// names the status and the start of the answer when it is not a success.
pub(crate) async fn post_json(
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
