//! `GET /console/stats`: the hub's own figures, as an SSE stream the console draws its charts
//! from.
//!
//! # One task, one encoding
//!
//! One task for the whole hub makes a snapshot every second, encodes it once as an SSE event
//! (`event: stats`) and hands the same `Bytes` to every watcher through a `watch` channel: a
//! watcher costs a clone of a reference, never a computation, and a slow watcher only ever
//! holds the newest snapshot (a `watch` keeps one value), so it cannot make the hub buffer. The
//! first watcher starts the task and it stops after a tick with none, so a hub nobody watches
//! does no work for the console.
//!
//! A snapshot holds the hub-wide figures (connections, subscriptions, events in and out per
//! second, slow-consumer cuts, the retained range of the store and the retention settings)
//! with the last [`SERIES`] seconds of each, so a page opened now draws full charts at once;
//! and the most active topics, at most `console.max_topics`, each with its rate and its last
//! event. Per-topic figures come from reading the events of the last second back from the
//! store (from its tail cache, on the disk store), at most `console.scan_events` of them: a
//! busier second is counted from its newest events only and marked `"sampled": true`. The
//! task remembers at most [`TRACKED_PER_SHOWN`] times `max_topics` topics, dropping the least
//! active, so a flood of distinct topic names cannot grow it.
//!
//! # Who may watch
//!
//! Topic names and the last event of each topic are as sensitive as the events. Private
//! events are never listed (only counted, as `private_events`). When the hub has subscriber
//! keys, the stream needs a subscriber token whose `mercure.subscribe` holds `*` (every
//! topic): without a token (or one granting nothing) it gets 401, with a lesser one 403, since the names of the topics it may not read are
//! not its business. Without subscriber keys, any client that may subscribe may watch: it
//! could subscribe to `**` and see the same public events anyway.
//!
//! # Shutdown
//!
//! The task holds a subscription of the hub (on a topic nothing publishes to) only to learn
//! when the hub shuts down: the hub ends it, the task drops its channel, and every stats
//! stream ends with the others. It shows as one subscription in `/metrics` while the console
//! is watched.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use prometheus_client::metrics::gauge::Gauge;
use serde::Serialize;
use ssehub_core::{Hub, Pattern, Resume, Selector, StoredEvent};
use tokio::sync::watch;

use crate::AppState;
use crate::auth::Role;
use crate::error::{ApiError, Reason};
use crate::query::Query;

/// Seconds of history of each hub-wide figure in a snapshot.
pub(crate) const SERIES: usize = 60;
/// The most topics the task remembers, as a multiple of the most it shows.
pub(crate) const TRACKED_PER_SHOWN: usize = 8;
/// Seconds over which a topic's rate is averaged.
const RATE_WINDOW: usize = 10;
/// The most bytes of data shown for a topic's last event.
const PREVIEW_CHARS: usize = 120;
/// The most bytes one read of the store may return for the per-topic counts.
const SCAN_BYTES: usize = 8 << 20;
/// The topic the task subscribes to, only to learn when the hub shuts down.
const SHUTDOWN_PROBE: &str = "ssehub-console/shutdown-probe";

/// The stats feed of one hub: the channel watchers read, and whether its task runs.
#[derive(Debug)]
pub(crate) struct StatsFeed {
    /// The task's channel; `None` while no task runs.
    running: Mutex<Option<watch::Sender<Bytes>>>,
    /// Open stats streams (`ssehub_console_watchers`).
    pub(crate) watchers: Gauge,
}

impl StatsFeed {
    pub(crate) fn new(watchers: Gauge) -> Self {
        StatsFeed {
            running: Mutex::new(None),
            watchers,
        }
    }

    /// A receiver of the snapshots, starting the task if none runs.
    fn watch(&self, app: &AppState) -> watch::Receiver<Bytes> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = running.as_ref()
            && !sender.is_closed()
        {
            return sender.subscribe();
        }
        let (sender, receiver) = watch::channel(Bytes::new());
        *running = Some(sender.clone());
        tokio::spawn(run(app.clone(), sender));
        receiver
    }

    /// Whether the task should stop: no one watches. Decided under the lock [`watch`]
    /// subscribes under, so a watcher arriving now either is counted or starts a new task.
    fn stop_if_unwatched(&self, sender: &watch::Sender<Bytes>) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if sender.receiver_count() > 0 {
            return false;
        }
        if running.as_ref().is_some_and(|s| s.same_channel(sender)) {
            *running = None;
        }
        true
    }
}

/// `GET /console/stats`.
pub(crate) async fn stats(
    State(app): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let result = open(&app, raw.as_deref(), &headers);
    app.respond(result)
}

fn open(app: &AppState, raw: Option<&str>, headers: &HeaderMap) -> Result<Response, ApiError> {
    let query = Query::parse(raw, &["authorization"])?;
    let grant = app.auth.check(Role::Subscribe, headers, &query)?;
    if app.auth.subscriber.is_some() {
        match &grant.subscribe {
            None => {
                return Err(ApiError::new(
                    Reason::Unauthorized,
                    "the hub's stats name every topic: send a subscriber token granting `*`",
                ));
            }
            Some(rights) if !rights.patterns().iter().any(|p| p.as_str() == "*") => {
                return Err(ApiError::new(
                    Reason::Forbidden,
                    "the hub's stats name every topic: they need a subscriber token granting `*`",
                ));
            }
            Some(_) => {}
        }
    }
    let feed = &app.console_stats;
    let max = app.config.console.max_watchers;
    // Counted before the check, so that two watchers arriving together cannot both pass.
    if feed.watchers.inc() >= i64::try_from(max).unwrap_or(i64::MAX) {
        feed.watchers.dec();
        return Err(ApiError::new(
            Reason::OverConnectionLimit,
            format!(
                "the hub's stats are watched by as many streams as console.max_watchers ({max}) allows; retry later"
            ),
        ));
    }
    let watching = Watching(feed.watchers.clone());
    let mut receiver = feed.watch(app);
    // The newest snapshot at once, if there is one.
    receiver.mark_changed();
    let retry = ssehub_wire::retry_frame(app.config.retry_ms);
    let snapshots = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.changed().await.ok()?;
        let snapshot = receiver.borrow_and_update().clone();
        Some((snapshot, receiver))
    })
    .filter(|snapshot| std::future::ready(!snapshot.is_empty()));
    let body = futures_util::stream::once(async move { retry })
        .chain(snapshots)
        .map(move |chunk| {
            let _ = &watching;
            Ok::<_, std::convert::Infallible>(chunk)
        });
    let response = crate::subscribe::sse_response(axum::body::Body::from_stream(body));
    Ok(response)
}

/// One open stats stream, counted in `ssehub_console_watchers` while it lives.
struct Watching(Gauge);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// One snapshot, as the console reads it.
#[derive(Debug, Serialize)]
struct Snapshot<'a> {
    /// Milliseconds since the Unix epoch.
    time_ms: u64,
    /// Open SSE streams now.
    connections: u64,
    /// Open TCP connections of any kind now.
    open_connections: i64,
    /// Open subscriptions now.
    subscriptions: u64,
    /// Events published (stored) since the hub started.
    published: u64,
    /// Events sent to subscribers, live and from history, since the hub started.
    delivered: u64,
    /// Subscribers cut as too slow since the hub started.
    slow_cuts: u64,
    /// The last [`SERIES`] seconds, oldest first.
    series: &'a Series,
    /// The store: the retained range of ids and the retention settings.
    store: StoreFigures<'a>,
    /// The most active topics, most active first.
    topics: Vec<TopicFigures<'a>>,
    /// Private events seen (never listed by topic).
    private_events: u64,
    /// Some second held more than `console.scan_events` events: per-topic figures of that
    /// second come from its newest events only.
    sampled: bool,
}

#[derive(Debug, Default, Serialize)]
struct Series {
    events_in: Vec<u64>,
    events_out: Vec<u64>,
    connections: Vec<u64>,
    subscriptions: Vec<u64>,
    slow_cuts: Vec<u64>,
}

impl Series {
    fn push(&mut self, point: [u64; 5]) {
        let columns = [
            &mut self.events_in,
            &mut self.events_out,
            &mut self.connections,
            &mut self.subscriptions,
            &mut self.slow_cuts,
        ];
        for (column, value) in columns.into_iter().zip(point) {
            if column.len() == SERIES {
                column.remove(0);
            }
            column.push(value);
        }
    }
}

#[derive(Debug, Serialize)]
struct StoreFigures<'a> {
    /// The oldest retained id, if any.
    oldest: Option<String>,
    /// The newest id given, if any.
    newest: Option<String>,
    /// Sequence numbers in the retained range (events retained, before per-topic rules).
    retained: u64,
    retention: &'a serde_json::Value,
}

#[derive(Debug, Serialize)]
struct TopicFigures<'a> {
    topic: &'a str,
    /// Events per second over the last [`RATE_WINDOW`] seconds.
    rate: f64,
    /// Events seen since the task started (including those it read back at start).
    events: u64,
    last: &'a LastEvent,
}

#[derive(Debug, Clone, Serialize)]
struct LastEvent {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    data: String,
    /// The data was longer than shown.
    cut: bool,
}

/// What the task remembers of one topic.
#[derive(Debug)]
struct Tracked {
    /// Events per second, one slot per second of the rate window.
    recent: [u32; RATE_WINDOW],
    events: u64,
    last: LastEvent,
    /// The tick it was last seen at.
    seen: u64,
}

impl Tracked {
    fn rate(&self) -> f64 {
        f64::from(self.recent.iter().sum::<u32>()) / RATE_WINDOW as f64
    }
}

/// The per-topic counts.
#[derive(Debug, Default)]
struct Topics {
    tracked: HashMap<String, Tracked>,
    private_events: u64,
    sampled: bool,
}

impl Topics {
    /// Counts `events`, read at tick `tick`; `live` events count in the rates (the ones read
    /// back at start do not: they are not of this second).
    fn count(&mut self, events: &[Arc<StoredEvent>], tick: u64, live: bool, max_tracked: usize) {
        let slot = (tick % RATE_WINDOW as u64) as usize;
        for tracked in self.tracked.values_mut() {
            tracked.recent[slot] = 0;
        }
        for stored in events {
            let event = &stored.event;
            if event.private {
                self.private_events += 1;
                continue;
            }
            let last = last_event(stored);
            for topic in &event.topics {
                let tracked = self
                    .tracked
                    .entry(topic.as_str().to_string())
                    .or_insert_with(|| Tracked {
                        recent: [0; RATE_WINDOW],
                        events: 0,
                        last: last.clone(),
                        seen: tick,
                    });
                if live {
                    tracked.recent[slot] = tracked.recent[slot].saturating_add(1);
                }
                tracked.events += 1;
                tracked.last = last.clone();
                tracked.seen = tick;
            }
        }
        if self.tracked.len() > max_tracked {
            // Keep the most active, then the most recently seen.
            let mut order: Vec<(f64, u64, String)> = self
                .tracked
                .iter()
                .map(|(name, t)| (t.rate(), t.seen, name.clone()))
                .collect();
            order.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
            for (_, _, name) in order.into_iter().skip(max_tracked) {
                self.tracked.remove(&name);
            }
        }
    }

    /// The `max` most active topics, then the most recently seen.
    fn top(&self, max: usize) -> Vec<TopicFigures<'_>> {
        let mut all: Vec<(&String, &Tracked)> = self.tracked.iter().collect();
        all.sort_by(|a, b| {
            b.1.rate()
                .total_cmp(&a.1.rate())
                .then(b.1.seen.cmp(&a.1.seen))
                .then(a.0.cmp(b.0))
        });
        all.into_iter()
            .take(max)
            .map(|(name, t)| TopicFigures {
                topic: name,
                rate: t.rate(),
                events: t.events,
                last: &t.last,
            })
            .collect()
    }
}

fn last_event(stored: &StoredEvent) -> LastEvent {
    // A binary event is previewed by its size, not as bytes that may not be text.
    let binary = stored
        .event
        .binary
        .as_ref()
        .map(|b| format!("(binary, {} bytes)", b.len()));
    let data = binary.as_deref().unwrap_or(&stored.event.data);
    let cut = data.chars().count() > PREVIEW_CHARS;
    LastEvent {
        id: stored.id.to_string(),
        event_type: stored.event.wire_type().unwrap_or_default().into_owned(),
        data: data.chars().take(PREVIEW_CHARS).collect(),
        cut,
    }
}

/// While the task runs: when it ends, for whatever reason, the feed forgets its channel, so
/// that the channel closes and every stats stream ends (and the next watcher starts a task).
struct Running {
    feed: Arc<StatsFeed>,
    sender: watch::Sender<Bytes>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = self.feed.running.lock().unwrap_or_else(|e| e.into_inner());
        if running
            .as_ref()
            .is_some_and(|s| s.same_channel(&self.sender))
        {
            *running = None;
        }
    }
}

/// The task: a snapshot every second while anyone watches.
async fn run(app: AppState, sender: watch::Sender<Bytes>) {
    let _running = Running {
        feed: app.console_stats.clone(),
        sender: sender.clone(),
    };
    let hub = app.hub.clone();
    // Ends when the hub shuts down (see the module doc).
    let probe = Pattern::new(SHUTDOWN_PROBE)
        .ok()
        .and_then(|p| Selector::new(vec![p]).ok())
        .and_then(|s| hub.subscribe(s, &Resume::Live).ok());
    let Some(mut probe) = probe else {
        return;
    };
    let console = &app.config.console;
    let max_tracked = console.max_topics.saturating_mul(TRACKED_PER_SHOWN).max(1);
    let mut topics = Topics::default();
    let mut series = Series::default();
    let all = Arc::new(
        Selector::new(vec![Pattern::mercure("*").expect("`*` is a selector")])
            .expect("one pattern is a selector"),
    );
    // Read back the newest events first, so the topics list has their last events at once.
    let mut scanned = hub
        .store()
        .bounds()
        .last
        .saturating_sub(console.scan_events as u64);
    let mut before = Counters::read(&hub);
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for tick in 0u64.. {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = probe.next() => return,
        }
        let last = hub.store().bounds().last;
        let from = scanned.max(last.saturating_sub(console.scan_events as u64));
        if from > scanned && tick > 0 {
            topics.sampled = true;
        }
        let events = if from < last {
            match hub
                .store()
                .read(
                    from,
                    last,
                    all.clone(),
                    console.scan_events.max(1),
                    SCAN_BYTES,
                )
                .await
            {
                Ok(page) => {
                    if page.scanned_to < last && tick > 0 {
                        topics.sampled = true;
                    }
                    page.events
                }
                Err(error) => {
                    tracing::debug!(%error, "the console cannot read history; topics not counted this second");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        scanned = last;
        topics.count(&events, tick, tick > 0, max_tracked);
        let now = Counters::read(&hub);
        series.push([
            now.published.saturating_sub(before.published),
            now.delivered.saturating_sub(before.delivered),
            now.connections(&app),
            now.subscriptions,
            now.slow_cuts.saturating_sub(before.slow_cuts),
        ]);
        before = now;
        let snapshot = snapshot(&app, &hub, &series, &topics, &before);
        sender.send_replace(snapshot);
        if app.console_stats.stop_if_unwatched(&sender) {
            return;
        }
    }
}

/// The hub's counters at one moment.
#[derive(Debug, Clone, Copy)]
struct Counters {
    published: u64,
    delivered: u64,
    slow_cuts: u64,
    subscriptions: u64,
}

impl Counters {
    fn read(hub: &Hub) -> Self {
        let s = hub.stats();
        Counters {
            published: s.published.load(Ordering::Relaxed),
            delivered: s.delivered.load(Ordering::Relaxed)
                + s.replayed_events.load(Ordering::Relaxed),
            slow_cuts: s.slow_disconnects.load(Ordering::Relaxed),
            subscriptions: s.subscriptions.load(Ordering::Relaxed),
        }
    }

    fn connections(&self, app: &AppState) -> u64 {
        app.metrics.connections.load(Ordering::Relaxed)
    }
}

/// The snapshot, encoded once as an SSE event.
fn snapshot(
    app: &AppState,
    hub: &Hub,
    series: &Series,
    topics: &Topics,
    counters: &Counters,
) -> Bytes {
    let bounds = hub.store().bounds();
    let log = hub.store().log_id();
    let id = |seq| ssehub_core::EventId { log, seq }.to_string();
    let retained = (bounds.last + 1).saturating_sub(bounds.first);
    let snapshot = Snapshot {
        time_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        connections: counters.connections(app),
        open_connections: app.metrics.connection_metrics().open(),
        subscriptions: counters.subscriptions,
        published: counters.published,
        delivered: counters.delivered,
        slow_cuts: counters.slow_cuts,
        series,
        store: StoreFigures {
            oldest: (retained > 0).then(|| id(bounds.first)),
            newest: (bounds.last > 0).then(|| id(bounds.last)),
            retained,
            retention: &app.config.console.retention,
        },
        topics: topics.top(app.config.console.max_topics),
        private_events: topics.private_events,
        sampled: topics.sampled,
    };
    let json = serde_json::to_string(&snapshot).unwrap_or_else(|_| "{}".into());
    ssehub_wire::Event::new(json.as_str())
        .with_event("stats")
        .map(|e| e.encode())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use ssehub_core::{EventId, LogId, NewEvent, Topic};

    use super::*;

    fn event(seq: u64, topic: &str, private: bool) -> Arc<StoredEvent> {
        let mut event = NewEvent::new(Topic::new(topic).unwrap(), format!("data {seq}"));
        event.private = private;
        StoredEvent::new(LogId(7), seq, event)
    }

    /// A flood of distinct topic names: the task remembers at most `max_tracked`, keeping the
    /// active ones, and lists at most `max`.
    #[test]
    fn distinct_topics_are_bounded_and_the_active_kept() {
        let mut topics = Topics::default();
        let busy: Vec<_> = (1..=5).map(|seq| event(seq, "busy/one", false)).collect();
        topics.count(&busy, 1, true, 24);
        for tick in 2..12 {
            let flood: Vec<_> = (0..1000)
                .map(|i| event(tick * 1000 + i, &format!("flood/{tick}/{i}"), false))
                .collect();
            topics.count(&flood, tick, true, 24);
            assert!(topics.tracked.len() <= 24, "{}", topics.tracked.len());
        }
        // Past the rate window, the busy topic's second is forgotten; the newest are kept.
        let top = topics.top(3);
        assert_eq!(top.len(), 3);
        assert!(top.iter().all(|t| t.topic.starts_with("flood/11/")));
    }

    #[test]
    fn private_events_are_counted_never_listed() {
        let mut topics = Topics::default();
        topics.count(
            &[event(1, "secret/plans", true), event(2, "news", false)],
            1,
            true,
            8,
        );
        assert_eq!(topics.private_events, 1);
        let top = topics.top(8);
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].topic, "news");
        assert_eq!(
            top[0].last.id,
            EventId {
                log: LogId(7),
                seq: 2
            }
            .to_string()
        );
        assert!((top[0].rate - 0.1).abs() < 1e-9);
    }

    #[test]
    fn a_long_event_is_shown_cut() {
        let long = "é".repeat(PREVIEW_CHARS + 5);
        let stored = StoredEvent::new(LogId(1), 1, NewEvent::new(Topic::new("t").unwrap(), long));
        let last = last_event(&stored);
        assert!(last.cut);
        assert_eq!(last.data.chars().count(), PREVIEW_CHARS);
    }

    #[test]
    fn a_binary_event_is_shown_by_its_size() {
        let event = NewEvent::binary(Topic::new("t").unwrap(), vec![0xff; 300]);
        let last = last_event(&StoredEvent::new(LogId(1), 1, event));
        assert_eq!(
            (last.event_type.as_str(), last.data.as_str(), last.cut),
            ("message.b64", "(binary, 300 bytes)", false)
        );
    }
}
