//! `ssehub bench fanout`: N subscribers on one topic, M events published at R/s.
//!
//! 1. Open N subscriptions (`GET`, by default `{hub}/topics/{topic}`), at most
//!    `--connect-concurrency` at a time, each within `--timeout`. A subscription is open at
//!    status 200 plus its first bytes (or the headers alone with `--ready-on headers`). If any
//!    fails, the run stops there with the errors: nothing is retried.
//! 2. Publish M events (`POST`), the i-th not before `start + i/R`, from `--publishers` K
//!    connections: publisher p sends events p, p+K, … one at a time, so their order is the
//!    hub's order and each subscriber checks it per publisher (globally with the default K=1).
//!    The publishers run on a thread and runtime of their own. Each body is JSON:
//!    `{"run","seq","ts_us","pad"}`, with the run id, the sequence number, the publish time in
//!    microseconds since the Unix epoch and padding up to `--payload-bytes`.
//! 3. Wait until every subscriber has every event, or `--drain` seconds after the last
//!    publish, then stop the subscribers and report.
//!
//! Subscribers are [`super::stream`]s: a plain socket with a small HTTP/1.1 reader, so that the
//! generator costs the machine less than the hub it measures. Per subscriber the state is a
//! parser, a bitset of M bits (which sequence numbers arrived:
//! duplicates and losses are exact) and a few counters; latencies go into one shared
//! [`Histogram`]. Events that are not this run's (another run id, not our JSON) are counted as
//! foreign and otherwise ignored. A stream the hub ends is not reopened: it counts as ended
//! early, and its missing events as lost.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use ssehub_wire::{Frame, Parser};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::histogram::{Histogram, PercentilesMs as Percentiles};
use super::http1::Target;
use super::stream::{self, End, Opening, Tally};
use super::table::Table;
use super::{
    due, hub_base, now_micros, on_own_thread, parse_headers, post_json, print_report, seconds,
};
use crate::args::{FanoutArgs, ReadyOn};

/// The run, as decided from the flags.
struct Plan {
    hub: String,
    topic: String,
    subscribe_url: String,
    publish_url: String,
    headers: reqwest::header::HeaderMap,
    subscribers: usize,
    rate: u32,
    payload_bytes: usize,
    connect_concurrency: usize,
    timeout: Duration,
    drain: Duration,
    max_duration: Duration,
    ready_on: ReadyOn,
    shared: Arc<Shared>,
}

/// What every subscriber task reads or records into.
struct Shared {
    run_id: String,
    events: u32,
    publishers: u32,
    /// End-to-end latency, in microseconds.
    latency: Histogram,
}

pub(crate) async fn run(args: &FanoutArgs) -> anyhow::Result<()> {
    let plan = Plan::new(args)?;
    let report = execute(plan).await?;
    print_report(&report, args.json, Report::table)
}

impl Plan {
    fn new(args: &FanoutArgs) -> anyhow::Result<Plan> {
        let hub = hub_base(&args.hub)?;
        let run_id = run_id();
        let topic = args
            .topic
            .clone()
            .unwrap_or_else(|| format!("bench/fanout/{run_id}"));
        let url = |template: &str| template.replace("{hub}", &hub).replace("{topic}", &topic);
        let timeout = seconds(args.run.timeout, "--timeout")?;
        let drain = seconds(args.run.drain, "--drain")?;
        let (subscribers, events, rate) = (args.subscribers, args.events, args.rate);
        let max_duration = match args.run.max_duration {
            Some(secs) => seconds(secs, "--max-duration")?,
            None => {
                let open_rounds = subscribers.div_ceil(args.run.connect_concurrency);
                timeout * open_rounds
                    + Duration::from_secs_f64(2.0 * f64::from(events) / f64::from(rate))
                    + drain
                    + Duration::from_secs(10)
            }
        };
        Ok(Plan {
            subscribe_url: url(&args.subscribe_url_template),
            publish_url: url(&args.publish_url_template),
            hub,
            topic,
            headers: parse_headers(&args.run.headers)?,
            subscribers: subscribers as usize,
            rate,
            payload_bytes: args.payload_bytes,
            connect_concurrency: args.run.connect_concurrency as usize,
            timeout,
            drain,
            max_duration,
            ready_on: args.run.ready_on,
            shared: Arc::new(Shared {
                run_id,
                events,
                publishers: args.publishers,
                latency: Histogram::new(),
            }),
        })
    }
}

impl Plan {
    /// An HTTP client with the extra headers; `whole` bounds each request from start to end.
    fn client(&self, whole: Option<Duration>) -> anyhow::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .default_headers(self.headers.clone())
            .connect_timeout(self.timeout)
            .tcp_nodelay(true);
        if let Some(limit) = whole {
            builder = builder.timeout(limit);
        }
        builder.build().context("cannot build the HTTP client")
    }
}

/// A run id that another run (of this or another process) will not pick: 16 hex digits.
pub(super) fn run_id() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(now_micros());
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

async fn execute(plan: Plan) -> anyhow::Result<Report> {
    let started = Instant::now();
    let deadline = started + plan.max_duration;
    let shared = plan.shared.clone();
    let events = shared.events;

    // 1. Open every subscription.
    eprintln!(
        "ssehub bench fanout: opening {} subscriptions to {}",
        plan.subscribers, plan.subscribe_url
    );
    let target =
        Arc::new(Target::new(&plan.subscribe_url, &plan.headers).map_err(anyhow::Error::msg)?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (open_tx, mut open_rx) = mpsc::unbounded_channel();
    let permits = Arc::new(Semaphore::new(plan.connect_concurrency));
    let mut tasks = JoinSet::new();
    for _ in 0..plan.subscribers {
        let opening = Opening {
            target: target.clone(),
            ready_on: plan.ready_on,
            timeout: plan.timeout,
            permits: permits.clone(),
            opened: open_tx.clone(),
            stop: stop_rx.clone(),
            deadline,
        };
        tasks.spawn(subscriber(opening, shared.clone()));
    }
    drop(open_tx);
    let opened = stream::wait_open(&mut open_rx, plan.subscribers, deadline, started).await;
    let connect_secs = started.elapsed().as_secs_f64();
    if let Err(error) = opened {
        let _ = stop_tx.send(true);
        tasks.abort_all();
        return Err(error);
    }
    let open = plan.subscribers;
    eprintln!(
        "ssehub bench fanout: {open} subscriptions open in {connect_secs:.2} s; publishing {events} events at up to {}/s to {}",
        plan.rate, plan.publish_url
    );

    // 2. Publish, paced, from a thread of its own.
    let job = PublishJob {
        client: plan.client(Some(plan.timeout))?,
        url: plan.publish_url.clone(),
        shared: shared.clone(),
        rate: plan.rate,
        payload_bytes: plan.payload_bytes,
        deadline,
    };
    // The publishers stop by themselves at the deadline; a last request may take `timeout`.
    let publisher = on_own_thread(
        move || job.publish_all(),
        deadline + plan.timeout + Duration::from_secs(1),
    )
    .await?;
    let Published {
        acked,
        ack_latency,
        errors: publish_errors,
        first_error: first_publish_error,
        secs: publish_secs,
        mut deadline_reached,
    } = publisher;
    let published = acked.count();

    // 3. Drain: until every subscriber has everything, or the drain time is over.
    eprintln!(
        "ssehub bench fanout: published {published} in {publish_secs:.2} s; waiting up to {:.1} s for deliveries",
        plan.drain.as_secs_f64()
    );
    let drain_until = (Instant::now() + plan.drain).min(deadline);
    let mut totals = Totals::default();
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(outcome) => totals.add(outcome?, &acked),
                None => break,
            },
            () = tokio::time::sleep_until(drain_until) => {
                deadline_reached |= drain_until == deadline;
                break;
            }
        }
    }
    let _ = stop_tx.send(true);
    // Stopped subscribers end at once; this wait is bounded all the same.
    while let Ok(Some(outcome)) =
        tokio::time::timeout(Duration::from_secs(5), tasks.join_next()).await
    {
        totals.add(outcome?, &acked);
    }
    anyhow::ensure!(
        tasks.is_empty(),
        "{} subscriber tasks did not stop",
        tasks.len()
    );

    let expected = plan.subscribers as u64 * published;
    let window_secs = match (totals.first_us, totals.last_us) {
        (Some(first), Some(last)) if last > first => (last - first) as f64 / 1e6,
        _ => 0.0,
    };
    Ok(Report {
        scenario: "fanout",
        hub: plan.hub,
        topic: plan.topic,
        subscribers: plan.subscribers as u64,
        events_requested: u64::from(events),
        rate: plan.rate,
        publishers: shared.publishers,
        payload_bytes: plan.payload_bytes as u64,
        connect_secs,
        events_published: published,
        publish_errors,
        publish_secs,
        publish_rate: published as f64 / publish_secs.max(1e-9),
        deliveries_expected: expected,
        delivered: totals.delivered,
        lost: expected - totals.delivered,
        duplicates: totals.duplicates,
        out_of_order: totals.out_of_order,
        unacknowledged_deliveries: totals.unacknowledged,
        foreign_events: totals.foreign,
        parse_errors: totals.parse_errors,
        streams_ended_early: totals.ended_early,
        receive_window_secs: window_secs,
        deliveries_per_sec: if window_secs > 0.0 {
            totals.delivered as f64 / window_secs
        } else {
            0.0
        },
        latency_ms: Percentiles::of(&shared.latency),
        publish_ack_ms: Percentiles::of(&ack_latency),
        deadline_reached,
        first_publish_error,
        first_stream_error: totals.first_stream_error,
    })
}

/// The publisher's inputs.
struct PublishJob {
    client: reqwest::Client,
    url: String,
    shared: Arc<Shared>,
    rate: u32,
    payload_bytes: usize,
    deadline: Instant,
}

/// What the publishers did.
struct Published {
    acked: Bitset,
    /// Microseconds from sending a POST to its answer.
    ack_latency: Arc<Histogram>,
    errors: u64,
    first_error: Option<String>,
    secs: f64,
    deadline_reached: bool,
}

impl PublishJob {
    /// Publishes every event, from `publishers` lanes; run it with [`super::on_own_thread`].
    async fn publish_all(self) -> Published {
        let job = Arc::new(self);
        let ack_latency = Arc::new(Histogram::new());
        let start = Instant::now();
        let mut lanes = JoinSet::new();
        for lane in 0..job.shared.publishers {
            lanes.spawn(job.clone().lane(lane, start, ack_latency.clone()));
        }
        let mut done = Published {
            acked: Bitset::new(job.shared.events),
            ack_latency,
            errors: 0,
            first_error: None,
            secs: 0.0,
            deadline_reached: false,
        };
        while let Some(lane) = lanes.join_next().await {
            // A lane cannot panic short of a bug; count its events as not acknowledged then.
            let Ok(lane) = lane else { continue };
            done.acked.or(&lane.acked);
            done.errors += lane.errors;
            if done.first_error.is_none() {
                done.first_error = lane.first_error;
            }
            done.deadline_reached |= lane.deadline_reached;
        }
        done.secs = start.elapsed().as_secs_f64();
        done
    }

    /// One publisher: events `lane`, `lane + K`, …, one at a time, each not before its time.
    async fn lane(self: Arc<Self>, lane: u32, start: Instant, ack_latency: Arc<Histogram>) -> Lane {
        let mut out = Lane {
            acked: Bitset::new(self.shared.events),
            errors: 0,
            first_error: None,
            deadline_reached: false,
        };
        let step = self.shared.publishers as usize;
        for seq in (lane..self.shared.events).step_by(step) {
            if !due(start, seq, self.rate, self.deadline).await {
                out.deadline_reached = true;
                break;
            }
            let body = payload(&self.shared.run_id, seq, now_micros(), self.payload_bytes);
            let sent = Instant::now();
            match publish(&self.client, &self.url, body).await {
                Ok(()) => {
                    out.acked.set(seq);
                    ack_latency.record(micros(sent.elapsed()));
                }
                Err(error) => {
                    out.errors += 1;
                    out.first_error.get_or_insert(error);
                }
            }
        }
        out
    }
}

/// What one publisher did.
struct Lane {
    acked: Bitset,
    errors: u64,
    first_error: Option<String>,
    deadline_reached: bool,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// One event's data: `{"run":…,"seq":…,"ts_us":…,"pad":"xx…"}`, `size` bytes when that is
/// enough for the fields.
fn payload(run_id: &str, seq: u32, ts_us: u64, size: usize) -> String {
    super::payload(run_id, ("seq", seq), ts_us, size)
}

/// The fields of [`payload`] that subscribers read (`pad` is skipped).
#[derive(Deserialize)]
struct Payload<'a> {
    run: &'a str,
    seq: u32,
    ts_us: u64,
}

impl<'a> Payload<'a> {
    /// Reads an event's data: the exact layout [`payload`] writes is read by hand (a tenth
    /// of a JSON parser's time, which matters at a million events a second on the machine
    /// that runs the hub); anything else goes through the JSON parser.
    fn read(data: &'a str) -> Option<Payload<'a>> {
        fn fast(data: &str) -> Option<Payload<'_>> {
            let rest = data.strip_prefix(r#"{"run":""#)?;
            let (run, rest) = rest.split_once('"')?;
            let rest = rest.strip_prefix(r#","seq":"#)?;
            let (seq, rest) = rest.split_once(',')?;
            let rest = rest.strip_prefix(r#""ts_us":"#)?;
            let (ts_us, rest) = rest.split_once(',')?;
            rest.starts_with(r#""pad":""#).then_some(())?;
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            (digits(seq) && digits(ts_us)).then_some(())?;
            Some(Payload {
                run,
                seq: seq.parse().ok()?,
                ts_us: ts_us.parse().ok()?,
            })
        }
        fast(data).or_else(|| serde_json::from_str(data).ok())
    }
}

async fn publish(client: &reqwest::Client, url: &str, body: String) -> Result<(), String> {
    post_json(client, url, body).await.map(drop)
}

/// What one subscriber saw.
struct Outcome {
    received: Received,
    end: End,
}

async fn subscriber(opening: Opening, shared: Arc<Shared>) -> Outcome {
    let mut received = Received::new(shared);
    let end = stream::follow(opening, &mut received).await;
    Outcome { received, end }
}

/// One subscriber's tally.
struct Received {
    shared: Arc<Shared>,
    parser: Parser,
    seen: Bitset,
    delivered: u32,
    /// Per publisher, the highest sequence number received.
    highest: Box<[Option<u32>]>,
    duplicates: u64,
    out_of_order: u64,
    foreign: u64,
    parse_errors: u64,
    first_us: Option<u64>,
    last_us: Option<u64>,
}

impl Received {
    fn new(shared: Arc<Shared>) -> Self {
        Received {
            parser: Parser::new(),
            seen: Bitset::new(shared.events),
            delivered: 0,
            highest: vec![None; shared.publishers as usize].into_boxed_slice(),
            shared,
            duplicates: 0,
            out_of_order: 0,
            foreign: 0,
            parse_errors: 0,
            first_us: None,
            last_us: None,
        }
    }

    fn event(&mut self, data: &str, now: u64) {
        let shared = &*self.shared;
        let payload = match Payload::read(data) {
            Some(p) if p.run == shared.run_id && p.seq < shared.events => p,
            _ => {
                self.foreign += 1;
                return;
            }
        };
        let seq = payload.seq;
        if self.seen.get(seq) {
            self.duplicates += 1;
            return;
        }
        self.seen.set(seq);
        self.delivered += 1;
        let highest = &mut self.highest[(seq % shared.publishers) as usize];
        match *highest {
            Some(h) if seq < h => self.out_of_order += 1,
            _ => *highest = Some(seq),
        }
        shared.latency.record(now.saturating_sub(payload.ts_us));
        self.first_us.get_or_insert(now);
        self.last_us = Some(now);
    }
}

impl Tally for Received {
    fn feed(&mut self, bytes: &[u8], now: u64) {
        let mut events = Vec::new();
        for frame in self.parser.feed_iter(bytes) {
            match frame {
                Ok(Frame::Event(event)) => events.push(event.data),
                Ok(Frame::Comment(_)) => {}
                Err(_) => self.parse_errors += 1,
            }
        }
        for data in events {
            self.event(&data, now);
        }
    }

    fn complete(&self) -> bool {
        self.delivered == self.shared.events
    }
}

/// The sum over subscribers.
#[derive(Default)]
struct Totals {
    delivered: u64,
    unacknowledged: u64,
    duplicates: u64,
    out_of_order: u64,
    foreign: u64,
    parse_errors: u64,
    ended_early: u64,
    first_stream_error: Option<String>,
    first_us: Option<u64>,
    last_us: Option<u64>,
}

impl Totals {
    fn add(&mut self, outcome: Outcome, acked: &Bitset) {
        let r = outcome.received;
        let delivered = r.seen.count_and(acked);
        self.delivered += delivered;
        self.unacknowledged += r.seen.count() - delivered;
        self.duplicates += r.duplicates;
        self.out_of_order += r.out_of_order;
        self.foreign += r.foreign;
        self.parse_errors += r.parse_errors;
        if let End::Broken(error) = outcome.end {
            self.ended_early += 1;
            self.first_stream_error.get_or_insert(error);
        }
        self.first_us = match (self.first_us, r.first_us) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_us = self.last_us.max(r.last_us);
    }
}

/// Which of the M sequence numbers were seen.
pub(super) struct Bitset(Box<[u64]>);

impl Bitset {
    pub(super) fn new(bits: u32) -> Self {
        Bitset(vec![0; (bits as usize).div_ceil(64)].into_boxed_slice())
    }

    pub(super) fn get(&self, i: u32) -> bool {
        self.0[i as usize / 64] & (1 << (i % 64)) != 0
    }

    pub(super) fn set(&mut self, i: u32) {
        self.0[i as usize / 64] |= 1 << (i % 64);
    }

    fn or(&mut self, other: &Bitset) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a |= b;
        }
    }

    pub(super) fn count(&self) -> u64 {
        self.0.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    pub(super) fn count_and(&self, other: &Bitset) -> u64 {
        let both = self.0.iter().zip(other.0.iter());
        both.map(|(a, b)| u64::from((a & b).count_ones())).sum()
    }
}

/// The report: `--json` prints it as is; field names are part of the command's interface.
#[derive(Serialize)]
struct Report {
    scenario: &'static str,
    hub: String,
    topic: String,
    subscribers: u64,
    events_requested: u64,
    rate: u32,
    publishers: u32,
    payload_bytes: u64,
    /// From start until every subscription was open.
    connect_secs: f64,
    /// Events the hub acknowledged (2xx).
    events_published: u64,
    publish_errors: u64,
    publish_secs: f64,
    /// Acknowledged events per second over `publish_secs`.
    publish_rate: f64,
    /// subscribers × events_published.
    deliveries_expected: u64,
    /// Distinct acknowledged events received, summed over subscribers.
    delivered: u64,
    lost: u64,
    duplicates: u64,
    /// Events received after one with a higher sequence number from the same publisher.
    out_of_order: u64,
    /// Events received whose publish had failed (e.g. a timeout after the hub stored it).
    unacknowledged_deliveries: u64,
    /// Events that were not this run's.
    foreign_events: u64,
    parse_errors: u64,
    /// Streams the hub ended, or that broke, before the bench stopped them.
    streams_ended_early: u64,
    /// From the first delivery to the last, over all subscribers.
    receive_window_secs: f64,
    deliveries_per_sec: f64,
    /// Publish timestamp (taken just before the POST) → event parsed at the subscriber.
    latency_ms: Option<Percentiles>,
    /// POST sent → its answer received.
    publish_ack_ms: Option<Percentiles>,
    /// The run hit --max-duration before it was done.
    deadline_reached: bool,
    first_publish_error: Option<String>,
    first_stream_error: Option<String>,
}

impl Report {
    fn table(&self) -> String {
        let mut t = Table::default();
        t.row(
            "subscribers",
            format!(
                "{:>10}  (open in {:.2} s)",
                self.subscribers, self.connect_secs
            ),
        );
        t.row(
            "events published",
            format!(
                "{:>10}  of {}, {:.0}/s over {:.2} s",
                self.events_published, self.events_requested, self.publish_rate, self.publish_secs
            ),
        );
        t.row("publish errors", format!("{:>10}", self.publish_errors));
        t.row(
            "deliveries expected",
            format!("{:>10}", self.deliveries_expected),
        );
        t.row("delivered", format!("{:>10}", self.delivered));
        t.row("lost", format!("{:>10}", self.lost));
        t.row("duplicates", format!("{:>10}", self.duplicates));
        t.row("out of order", format!("{:>10}", self.out_of_order));
        t.row(
            "streams ended early",
            format!("{:>10}", self.streams_ended_early),
        );
        t.row(
            "deliveries/s",
            format!(
                "{:>10.0}  over a {:.2} s receive window",
                self.deliveries_per_sec, self.receive_window_secs
            ),
        );
        t.percentiles("latency ms", self.latency_ms.as_ref());
        t.percentiles("publish ack ms", self.publish_ack_ms.as_ref());
        t.nonzero(&[
            ("unacknowledged", self.unacknowledged_deliveries),
            ("foreign events", self.foreign_events),
            ("parse errors", self.parse_errors),
        ]);
        t.trouble(
            self.first_publish_error.as_deref(),
            self.first_stream_error.as_deref(),
            self.deadline_reached,
        );
        format!(
            "ssehub bench fanout: {} topic {} ({} B events at up to {}/s, {} publisher{})\n{}",
            self.hub,
            self.topic,
            self.payload_bytes,
            self.rate,
            self.publishers,
            if self.publishers == 1 { "" } else { "s" },
            t.into_string()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_the_requested_size_and_parses_back() {
        let least = payload("0123456789abcdef", 42, 1_700_000_000_000_000, 0).len();
        for size in [0, 10, least, least + 1, 128, 4096] {
            let body = payload("0123456789abcdef", 42, 1_700_000_000_000_000, size);
            assert_eq!(body.len(), size.max(least));
            let p: Payload<'_> = serde_json::from_str(&body).unwrap();
            assert_eq!(
                (p.run, p.seq, p.ts_us),
                ("0123456789abcdef", 42, 1_700_000_000_000_000)
            );
            let fast = Payload::read(&body).unwrap();
            assert_eq!((fast.run, fast.seq, fast.ts_us), (p.run, p.seq, p.ts_us));
        }
    }

    #[test]
    fn payloads_read_by_hand_or_as_json() {
        // Another field order (a hub that re-encodes JSON, say) still reads, through JSON.
        let json = r#"{"seq":7,"ts_us":5,"run":"r","pad":""}"#;
        let p = Payload::read(json).unwrap();
        assert_eq!((p.run, p.seq, p.ts_us), ("r", 7, 5));
        for bad in [
            r#"{"run":"r","seq":-1,"ts_us":5,"pad":""}"#,
            r#"{"run":"r","seq":1x,"ts_us":5,"pad":""}"#,
            r#"{"run":"r","seq":99999999999,"ts_us":5,"pad":""}"#,
            r#"{"run":"r","seq":1,"ts_us":5"#,
            "not json",
        ] {
            assert!(Payload::read(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn order_is_checked_per_publisher() {
        let shared = Shared {
            run_id: "r".into(),
            events: 6,
            publishers: 2,
            latency: Histogram::new(),
        };
        let shared = Arc::new(shared);
        let mut r = Received::new(shared.clone());
        let mut stream = String::new();
        // Publisher 0 sends 0, 2, 4 and publisher 1 sends 1, 3, 5: interleaving them any way
        // is in order; only 2 after 4 is not.
        for seq in [1, 0, 3, 5, 4, 2] {
            stream += &format!("data: {}\n\n", payload("r", seq, 0, 0));
        }
        r.feed(stream.as_bytes(), 0);
        assert_eq!((r.delivered, r.out_of_order, r.duplicates), (6, 1, 0));
    }

    #[test]
    fn tally_counts_duplicates_order_and_foreign_events() {
        let shared = Shared {
            run_id: "r".into(),
            events: 4,
            publishers: 1,
            latency: Histogram::new(),
        };
        let shared = Arc::new(shared);
        let mut r = Received::new(shared.clone());
        let mut stream = String::from("retry: 10\n\n");
        for seq in [0, 2, 1, 2, 9] {
            stream += &format!("data: {}\n\n", payload("r", seq, 0, 0));
        }
        stream += "data: not json\n\n";
        stream += &format!("data: {}\n\n", payload("other", 3, 0, 0));
        r.feed(stream.as_bytes(), 0);
        assert_eq!(r.delivered, 3);
        assert_eq!((r.duplicates, r.out_of_order, r.foreign), (1, 1, 3));
        assert_eq!(shared.latency.count(), 3);

        let mut acked = Bitset::new(4);
        for seq in [0, 1, 3] {
            acked.set(seq);
        }
        let mut totals = Totals::default();
        totals.add(
            Outcome {
                received: r,
                end: End::Broken("x".into()),
            },
            &acked,
        );
        // Seq 2 arrived though its publish failed; seq 3 was acknowledged and never came.
        assert_eq!((totals.delivered, totals.unacknowledged), (2, 1));
        assert_eq!(totals.ended_early, 1);
    }
}
