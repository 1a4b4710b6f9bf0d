//! [`LinePublisher`]: a stream of lines published to one topic of a hub, the engine of
//! `ssehub tail` and `ssehub exec`.
//!
//! Lines (each with an event type) are pushed in order into a bounded buffer; one background
//! task publishes them through a [`Publish`] (a [`HubClient`] outside tests). Each request carries every line waiting,
//! up to [`BATCH_LINES`] lines or [`BATCH_BYTES`] of JSON, so under load lines go out in
//! batches. Lines are never reordered: one request is in flight at a time, and a batch that
//! failed is retried before anything after it.
//!
//! When the hub is unreachable or answers 503/429 the task retries with capped exponential
//! backoff, keeping lines buffered up to a bound ([`LineOptions`]: `--max-buffered-lines`,
//! `--max-buffered-bytes`). What happens at the bound is the caller's choice: [`push`] drops
//! the newest line (counted, and reported on stderr at most once per [`WARN_INTERVAL`], never
//! silently) — what `exec` needs, since a command must never wait for the hub — and
//! [`push_wait`] waits for room — what `tail` needs, since the file itself is a buffer. A
//! refusal that retrying cannot fix (400: a bad topic, …) stops the publisher; the command
//! learns it from [`failed`] and exits non-zero. Two refusals are handled instead: a batch
//! that is too large (413, or 400 `too_many_events` from a hub configured with smaller limits)
//! is split, and a single line larger than the hub accepts is dropped with a warning.
//!
//! [`finish`] publishes what is left, bounded by `--flush-timeout`, and reports on stderr
//! anything it could not deliver.
//!
//! Warnings go to stderr, each prefixed with the name given to [`LinePublisher::start`]: the
//! publisher runs under a command-line tool whose user must see lost lines, not in a server.
//!
//! [`push`]: LinePublisher::push
//! [`push_wait`]: LinePublisher::push_wait
//! [`failed`]: LinePublisher::failed
//! [`finish`]: LinePublisher::finish

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use crate::hub::{HubClient, PublishError, PublishEvent};

/// The most lines in one request (the hub takes up to 1000 by default).
const BATCH_LINES: usize = 500;
/// The most bytes of JSON in one request (the hub's default body limit is 1 MiB).
const BATCH_BYTES: usize = 1_000_000;
/// The first wait before a retry; it doubles after each failure, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Repeated warnings (dropped lines, a hub still unreachable) are printed at most this often.
const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Where a [`LinePublisher`] sends its batches: [`HubClient`], or a fake in tests.
pub trait Publish: Send + Sync + 'static {
    /// Publishes `events` in one request, in order; returns their ids.
    fn publish(
        &self,
        events: &[PublishEvent],
    ) -> impl Future<Output = Result<Vec<String>, PublishError>> + Send;
}

impl Publish for HubClient {
    fn publish(
        &self,
        events: &[PublishEvent],
    ) -> impl Future<Output = Result<Vec<String>, PublishError>> + Send {
        HubClient::publish(self, events)
    }
}

/// The bounds of a publisher's buffer and of its final flush.
#[derive(Debug, Clone, Copy)]
pub struct LineOptions {
    /// The most lines buffered (at least one line is always taken).
    pub max_lines: usize,
    /// The most bytes buffered (data and event type of each line).
    pub max_bytes: usize,
    /// How long [`LinePublisher::finish`] keeps publishing what is left.
    pub flush_timeout: Duration,
}

/// One buffered line.
#[derive(Debug)]
struct Line {
    event: &'static str,
    data: String,
    /// Its size in a `POST /publish` body (an estimate, on the high side).
    json_len: usize,
}

impl Line {
    /// The buffer's byte bound counts data and type, what the line holds in memory.
    fn size(&self) -> usize {
        self.data.len() + self.event.len()
    }

    fn to_publish(&self, topic: &str) -> PublishEvent {
        PublishEvent {
            key: None,
            delete: false,
            id: None,
            topic: topic.to_string(),
            data: self.data.clone(),
            // `message` is the default type: no need to send it.
            event: (self.event != "message").then(|| self.event.to_string()),
            binary: None,
        }
    }
}

/// The length of `s` as a JSON string, quotes included (what serde_json writes).
fn json_str_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Line>,
    /// The sum of `Line::size` over `queue`.
    bytes: usize,
    /// `finish` was called: publish what is left, then stop.
    closing: bool,
    /// Lines dropped in all (buffer full, or too large for the hub).
    dropped: u64,
    /// Lines dropped because the buffer was full, not yet reported on stderr.
    unreported_drops: u64,
    last_drop_warning: Option<Instant>,
    /// The latest publish error, for the final report.
    last_error: Option<String>,
}

#[derive(Debug)]
struct Shared {
    /// `ssehub tail`, `ssehub exec`: the prefix of every message.
    name: &'static str,
    /// The JSON size of one batch item besides its data and type (the topic, field names).
    item_overhead: usize,
    options: LineOptions,
    state: Mutex<State>,
    /// Lines arrived, or `finish` was called (a permit is kept: no wake-up is lost).
    work: Notify,
    /// Room was made in the buffer, or the publisher stopped.
    room: Notify,
    /// Set once when the hub refused lines for good: the hub's error.
    fatal: watch::Sender<Option<String>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn has_room(&self, state: &State, line: &Line) -> bool {
        state.queue.is_empty()
            || (state.queue.len() < self.options.max_lines
                && state.bytes + line.size() <= self.options.max_bytes)
    }

    fn fatal(&self) -> Option<String> {
        self.fatal.borrow().clone()
    }

    /// Reports lines dropped since the last report, if `WARN_INTERVAL` has passed (or `now`).
    fn report_drops(&self, state: &mut State, now: bool) {
        if state.unreported_drops == 0 {
            return;
        }
        let due = state
            .last_drop_warning
            .is_none_or(|t| t.elapsed() >= WARN_INTERVAL);
        if !(due || now) {
            return;
        }
        eprintln!(
            "{}: warning: the buffer is full ({} lines or {} bytes waiting for the hub); \
             dropped the newest {} line(s), {} in all",
            self.name,
            self.options.max_lines,
            self.options.max_bytes,
            state.unreported_drops,
            state.dropped
        );
        state.unreported_drops = 0;
        state.last_drop_warning = Some(Instant::now());
    }
}

/// What became of the lines, once [`LinePublisher::finish`] returns.
#[derive(Debug)]
pub struct LineReport {
    /// Dropped: the buffer was full, or a line was larger than the hub accepts.
    pub dropped: u64,
    /// Still buffered when the flush timed out or the publisher stopped.
    pub undelivered: u64,
    /// The hub's refusal, if it stopped the publisher.
    pub fatal: Option<String>,
}

impl LineReport {
    /// Whether every line pushed reached the hub.
    pub fn complete(&self) -> bool {
        self.dropped == 0 && self.undelivered == 0 && self.fatal.is_none()
    }
}

/// Publishes lines to one topic, in order, in batches, from a background task.
#[derive(Debug)]
pub struct LinePublisher {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl LinePublisher {
    /// Starts the background task (on the current Tokio runtime). `name` prefixes messages.
    pub fn start(
        client: impl Publish,
        topic: String,
        name: &'static str,
        options: LineOptions,
    ) -> LinePublisher {
        let shared = Arc::new(Shared {
            name,
            item_overhead: json_str_len(&topic) + 32,
            options,
            state: Mutex::new(State::default()),
            work: Notify::new(),
            room: Notify::new(),
            fatal: watch::channel(None).0,
        });
        let task = tokio::spawn(send_lines(shared.clone(), client, topic));
        LinePublisher { shared, task }
    }

    fn line(&self, event: &'static str, data: String) -> Line {
        Line {
            json_len: json_str_len(&data) + json_str_len(event) + self.shared.item_overhead,
            event,
            data,
        }
    }

    fn enqueue(&self, state: &mut State, line: Line) {
        state.bytes += line.size();
        state.queue.push_back(line);
        self.shared.work.notify_one();
    }

    /// Queues a line; when the buffer is full, drops it (counted and reported). Returns whether
    /// it was queued. Never waits.
    pub fn push(&self, event: &'static str, data: String) -> bool {
        let line = self.line(event, data);
        let mut state = self.shared.lock();
        if self.shared.has_room(&state, &line) && self.shared.fatal().is_none() {
            self.enqueue(&mut state, line);
            return true;
        }
        if self.shared.fatal().is_none() {
            state.dropped += 1;
            state.unreported_drops += 1;
            self.shared.report_drops(&mut state, false);
        }
        false
    }

    /// Queues a line even when the buffer is full: for the few lines that must not be lost to
    /// a burst before them (`exec`'s `exit` event). Does nothing once the publisher stopped.
    pub fn push_past_bound(&self, event: &'static str, data: String) {
        let line = self.line(event, data);
        let mut state = self.shared.lock();
        if self.shared.fatal().is_none() {
            self.enqueue(&mut state, line);
        }
    }

    /// Moves lines from the front of `lines` into the buffer, waiting for room, until `lines`
    /// is empty. Cancel-safe: a line leaves `lines` only once it is queued. Returns early (with
    /// lines left) when the publisher has stopped.
    pub async fn push_wait(&self, event: &'static str, lines: &mut VecDeque<String>) {
        while !lines.is_empty() {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let mut state = self.shared.lock();
                if self.shared.fatal().is_some() {
                    return;
                }
                while let Some(data) = lines.pop_front() {
                    let line = self.line(event, data);
                    if !self.shared.has_room(&state, &line) {
                        lines.push_front(line.data);
                        break;
                    }
                    self.enqueue(&mut state, line);
                }
            }
            if !lines.is_empty() {
                room.await;
            }
        }
    }

    /// Resolves with the hub's error once it has refused lines for good (never otherwise).
    pub async fn failed(&self) -> String {
        let mut fatal = self.shared.fatal.subscribe();
        match fatal.wait_for(Option::is_some).await {
            Ok(error) => error.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }

    /// Publishes what is buffered (for at most the flush timeout), stops the background task,
    /// and reports on stderr whatever could not be delivered.
    pub async fn finish(mut self) -> LineReport {
        self.shared.lock().closing = true;
        self.shared.work.notify_one();
        let timeout = self.shared.options.flush_timeout;
        let flushed = tokio::time::timeout(timeout, &mut self.task).await.is_ok();
        if !flushed {
            self.task.abort();
        }
        let name = self.shared.name;
        let fatal = self.shared.fatal();
        let mut state = self.shared.lock();
        self.shared.report_drops(&mut state, true);
        let undelivered = state.queue.len() as u64;
        if undelivered > 0 && fatal.is_none() {
            let why = state.last_error.as_deref().unwrap_or("no answer yet");
            eprintln!(
                "{name}: warning: {undelivered} line(s) were not delivered: the hub did not \
                 take them within {timeout:?} (--flush-timeout); last error: {why}"
            );
        }
        if state.dropped > 0 {
            eprintln!(
                "{name}: warning: {} line(s) in all were dropped and never published",
                state.dropped
            );
        }
        LineReport {
            dropped: state.dropped,
            undelivered,
            fatal,
        }
    }
}

/// The background task: one request at a time, oldest lines first.
async fn send_lines(shared: Arc<Shared>, client: impl Publish, topic: String) {
    let mut batch_lines = BATCH_LINES;
    let mut batch_bytes = BATCH_BYTES;
    let mut backoff = FIRST_BACKOFF;
    // Since when publishing fails, and when that was last reported.
    let mut failing: Option<Instant> = None;
    let mut last_failure_warning = Instant::now();
    loop {
        let batch: Vec<PublishEvent> = {
            let mut state = shared.lock();
            shared.report_drops(&mut state, false);
            if state.queue.is_empty() && state.closing {
                return;
            }
            let mut size = 0;
            state
                .queue
                .iter()
                .take(batch_lines)
                .take_while(|line| {
                    size += line.json_len;
                    size == line.json_len || size <= batch_bytes
                })
                .map(|line| line.to_publish(&topic))
                .collect()
        };
        if batch.is_empty() {
            shared.work.notified().await;
            continue;
        }
        match client.publish(&batch).await {
            Ok(_ids) => {
                let mut state = shared.lock();
                for _ in 0..batch.len() {
                    if let Some(line) = state.queue.pop_front() {
                        state.bytes -= line.size();
                    }
                }
                drop(state);
                shared.room.notify_waiters();
                backoff = FIRST_BACKOFF;
                if failing.take().is_some() {
                    eprintln!(
                        "{}: the hub takes events again; publishing resumed",
                        shared.name
                    );
                }
            }
            // A hub configured with smaller limits: split the batch, and keep the smaller size.
            Err(PublishError::Refused { status: 413, .. }) if batch.len() > 1 => {
                batch_bytes = (batch_bytes / 2).max(1);
            }
            Err(PublishError::Refused { code, .. })
                if code == "too_many_events" && batch.len() > 1 =>
            {
                batch_lines = (batch.len() / 2).max(1);
            }
            // One line larger than the hub takes: dropped, never silently.
            Err(error @ PublishError::Refused { status: 413, .. }) => {
                let mut state = shared.lock();
                if let Some(line) = state.queue.pop_front() {
                    state.bytes -= line.size();
                    eprintln!(
                        "{}: warning: dropped a line of {} bytes: {error}",
                        shared.name,
                        line.data.len()
                    );
                }
                state.dropped += 1;
                drop(state);
                shared.room.notify_waiters();
            }
            Err(error) if error.is_retryable() => {
                let message = error.to_string();
                shared.lock().last_error = Some(message.clone());
                match failing {
                    None => {
                        failing = Some(Instant::now());
                        last_failure_warning = Instant::now();
                        eprintln!(
                            "{}: warning: {message}; retrying, keeping up to {} lines or {} \
                             bytes buffered",
                            shared.name, shared.options.max_lines, shared.options.max_bytes
                        );
                    }
                    Some(since) if last_failure_warning.elapsed() >= WARN_INTERVAL => {
                        last_failure_warning = Instant::now();
                        let waiting = shared.lock().queue.len();
                        eprintln!(
                            "{}: warning: still failing after {}s: {message}; {waiting} \
                             line(s) waiting",
                            shared.name,
                            since.elapsed().as_secs()
                        );
                    }
                    Some(_) => {}
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(error) => {
                shared.lock().last_error = Some(error.to_string());
                shared.fatal.send_replace(Some(error.to_string()));
                shared.room.notify_waiters();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::sync::watch;

    use super::*;

    /// A hub in memory: records every request's lines, refuses requests as scripted, and takes
    /// none until it is opened.
    #[derive(Clone)]
    struct FakeHub {
        requests: Arc<Mutex<Vec<Vec<String>>>>,
        /// The answers of the next requests, (status, code) each; then success.
        refusals: Arc<Mutex<VecDeque<(u16, &'static str)>>>,
        open: watch::Receiver<bool>,
    }

    impl FakeHub {
        fn new(open: bool, refusals: &[(u16, &'static str)]) -> (FakeHub, watch::Sender<bool>) {
            let (open_tx, open) = watch::channel(open);
            let hub = FakeHub {
                requests: Arc::default(),
                refusals: Arc::new(Mutex::new(refusals.iter().copied().collect())),
                open,
            };
            (hub, open_tx)
        }

        fn requests(&self) -> Vec<Vec<String>> {
            self.requests.lock().unwrap().clone()
        }
    }

    impl Publish for FakeHub {
        async fn publish(&self, events: &[PublishEvent]) -> Result<Vec<String>, PublishError> {
            let mut open = self.open.clone();
            let _ = open.wait_for(|open| *open).await;
            let lines = events.iter().map(|e| e.data.clone()).collect::<Vec<_>>();
            self.requests.lock().unwrap().push(lines);
            if let Some((status, code)) = self.refusals.lock().unwrap().pop_front() {
                return Err(PublishError::Refused {
                    status,
                    code: code.into(),
                    message: "scripted".into(),
                });
            }
            Ok((0..events.len()).map(|i| i.to_string()).collect())
        }
    }

    fn options(max_lines: usize) -> LineOptions {
        LineOptions {
            max_lines,
            max_bytes: 1 << 20,
            flush_timeout: Duration::from_secs(10),
        }
    }

    fn start(hub: &FakeHub, max_lines: usize) -> LinePublisher {
        LinePublisher::start(hub.clone(), "t".into(), "test", options(max_lines))
    }

    fn strings(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    // The tests run on a current-thread runtime: the background task takes a batch only when
    // the test awaits, so what is pushed before that goes out in one request.

    #[tokio::test]
    async fn lines_waiting_go_out_in_one_request_in_order() {
        let (hub, _open) = FakeHub::new(true, &[]);
        let publisher = start(&hub, 100);
        for line in ["a", "b", "c"] {
            assert!(publisher.push("message", line.into()));
        }
        let report = publisher.finish().await;
        assert!(report.complete(), "{report:?}");
        assert_eq!(hub.requests(), [strings(&["a", "b", "c"])]);
    }

    #[tokio::test]
    async fn a_full_buffer_drops_the_newest_line_and_counts_it() {
        let (hub, open) = FakeHub::new(false, &[]);
        let publisher = start(&hub, 2);
        assert!(publisher.push("message", "a".into()));
        assert!(publisher.push("message", "b".into()));
        assert!(!publisher.push("message", "c".into()));
        // Past the bound on purpose: `exec`'s exit event.
        publisher.push_past_bound("exit", "d".into());
        open.send_replace(true);
        let report = publisher.finish().await;
        assert_eq!((report.dropped, report.undelivered), (1, 0));
        assert!(!report.complete());
        assert_eq!(hub.requests(), [strings(&["a", "b", "d"])]);
    }

    #[tokio::test]
    async fn push_wait_waits_for_room_and_keeps_the_order() {
        let (hub, _open) = FakeHub::new(true, &[]);
        let publisher = start(&hub, 1);
        let mut lines: VecDeque<String> = strings(&["a", "b", "c"]).into();
        publisher.push_wait("message", &mut lines).await;
        assert!(lines.is_empty());
        let report = publisher.finish().await;
        assert!(report.complete(), "{report:?}");
        assert_eq!(hub.requests().concat(), strings(&["a", "b", "c"]));
    }

    #[tokio::test]
    async fn a_failed_batch_is_retried_before_anything_after_it() {
        let (hub, _open) = FakeHub::new(true, &[(503, "unavailable"), (429, "slow_down")]);
        let publisher = start(&hub, 100);
        publisher.push("message", "a".into());
        publisher.push("message", "b".into());
        let report = publisher.finish().await;
        assert!(report.complete(), "{report:?}");
        let ab = strings(&["a", "b"]);
        assert_eq!(hub.requests(), [ab.clone(), ab.clone(), ab]);
    }

    #[tokio::test]
    async fn a_batch_the_hub_finds_too_large_is_split() {
        let (hub, _open) = FakeHub::new(true, &[(400, "too_many_events")]);
        let publisher = start(&hub, 100);
        for line in ["a", "b", "c", "d"] {
            publisher.push("message", line.into());
        }
        let report = publisher.finish().await;
        assert!(report.complete(), "{report:?}");
        assert_eq!(
            hub.requests(),
            [
                strings(&["a", "b", "c", "d"]),
                strings(&["a", "b"]),
                strings(&["c", "d"])
            ]
        );
    }

    #[tokio::test]
    async fn a_line_larger_than_the_hub_takes_is_dropped_and_the_rest_goes_on() {
        let (hub, _open) = FakeHub::new(true, &[(413, "too_large")]);
        let publisher = start(&hub, 100);
        publisher.push("message", "huge".into());
        tokio::task::yield_now().await;
        publisher.push("message", "next".into());
        let report = publisher.finish().await;
        assert_eq!((report.dropped, report.undelivered), (1, 0));
        assert_eq!(hub.requests().concat(), strings(&["huge", "next"]));
    }

    #[tokio::test]
    async fn a_refusal_retrying_cannot_fix_stops_the_publisher() {
        let (hub, _open) = FakeHub::new(true, &[(400, "bad_topic")]);
        let publisher = start(&hub, 100);
        publisher.push("message", "a".into());
        let error = publisher.failed().await;
        assert!(error.contains("bad_topic"), "{error}");
        assert!(!publisher.push("message", "b".into()));
        let report = publisher.finish().await;
        assert!(report.fatal.is_some());
        assert_eq!(report.undelivered, 1);
    }

    #[tokio::test]
    async fn finish_gives_up_after_the_flush_timeout() {
        let (hub, _open) = FakeHub::new(false, &[]);
        let publisher = LinePublisher::start(
            hub.clone(),
            "t".into(),
            "test",
            LineOptions {
                flush_timeout: Duration::from_millis(20),
                ..options(100)
            },
        );
        publisher.push("message", "a".into());
        let report = publisher.finish().await;
        assert_eq!((report.dropped, report.undelivered), (0, 1));
        assert!(hub.requests().is_empty());
    }

    #[test]
    fn json_length_matches_serde() {
        for s in [
            "",
            "plain",
            "quote\" back\\ nl\n tab\t",
            "\u{1}\u{1f}",
            "é ü 🎉",
        ] {
            assert_eq!(
                json_str_len(s),
                serde_json::to_string(s).unwrap().len(),
                "{s:?}"
            );
        }
    }
}
