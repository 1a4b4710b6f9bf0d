//! `ssehub bench topics`: N topics with one subscriber each, and one event published to each.
//!
//! 1. Open N subscriptions, subscription i to its own topic `bench/topics/<run id>/<i>` (one
//!    connection each, at most `--connect-concurrency` opening at a time, each within
//!    `--timeout`). If any fails, the run stops there with the errors: nothing is retried.
//! 2. Publish one event to each topic, in topic order, in batches of `--batch` events
//!    (`POST {hub}/publish`, a JSON array), at up to `--rate` events per second, from
//!    `--publishers` connections (publisher p sends batches p, p+K, …, each waiting for its
//!    answer), on a thread and runtime of their own. Each event's data is JSON:
//!    `{"run","topic","ts_us","pad"}` — the run id, the topic's index, the batch's publish time
//!    in microseconds since the Unix epoch, and padding up to `--payload-bytes`.
//! 3. Wait until every acknowledged event has arrived, or `--drain` seconds after the last
//!    publish, then stop the subscribers and report.
//!
//! Every subscriber keeps reading until the end, so an event that reaches the wrong topic's
//! subscriber, or reaches the right one twice, is counted (when it arrives before the stop).
//!
//! # Parts: is the last event as cheap as the first?
//!
//! The events are cut into `--parts` equal parts in publish order, and each part reports its
//! own publish→receive latency, its publish acknowledgement time and — with `--hub-pid` — the
//! hub's CPU time per event (its threads' time on a CPU, from `/proc/PID/task/*/schedstat`,
//! read when each part's first batch is sent and once everything has arrived). A hub whose cost per event grows with the
//! number of topics published to, or with the history it holds, shows it as a last part
//! dearer than the first. (With several publishers, parts overlap by up to K batches.)
//!
//! With `--hub-pid` the hub's resident memory is also read before the subscriptions, once
//! they are open, and at the end: the hub's memory per topic with its subscriber.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::args::TopicsArgs;
use crate::deliveries::{Bitset, Check, Counts, Subscriber, Totals};
use crate::histogram::{Histogram, PercentilesMs as Percentiles};
use crate::http1::Target;
use crate::plan::RunPlan;
use crate::probe::{HubProbe, RESERVED_FDS, raise_fd_limit};
use crate::publishers::{Published, due, lock, on_own_thread, post_json, run_lanes, take};
use crate::subscribers::Subscribers;
use crate::table::Table;
use crate::{micros, now_micros, print_report, run_id};

/// The run, as decided from the flags.
struct Plan {
    run: RunPlan,
    /// `bench/topics/<run id>`; topic i is `<prefix>/<i>`.
    prefix: String,
    batch: u32,
    rate: u32,
    payload_bytes: usize,
    hub_pid: Option<u32>,
    shared: Arc<Shared>,
}

/// What every subscriber task reads or records into.
struct Shared {
    run_id: String,
    topics: u32,
    publishers: u32,
    parts: u32,
    /// Publish → receive, in microseconds, for every event.
    latency: Histogram,
    /// The same, per part.
    part_latency: Vec<Histogram>,
    /// Events received (first copies at the right subscriber), for the drain's progress.
    delivered: AtomicU64,
}

impl Shared {
    /// The part topic `i`'s event belongs to.
    fn part(&self, i: u32) -> usize {
        (u64::from(i) * u64::from(self.parts) / u64::from(self.topics)) as usize
    }

    /// The first topic of part `k` (`topics` for `k == parts`).
    fn part_start(&self, k: u32) -> u32 {
        u32::try_from((u64::from(k) * u64::from(self.topics)).div_ceil(u64::from(self.parts)))
            .unwrap_or(u32::MAX)
    }
}

pub(crate) async fn run(args: &TopicsArgs) -> anyhow::Result<()> {
    let plan = Plan::new(args)?;
    let report = execute(plan).await?;
    print_report(&report, args.json, Report::table)
}

impl Plan {
    fn new(args: &TopicsArgs) -> anyhow::Result<Plan> {
        let run = RunPlan::new(&args.hub, &args.run, args.topics, args.topics, args.rate)?;
        let fd_limit = raise_fd_limit();
        anyhow::ensure!(
            u64::from(args.topics) + RESERVED_FDS <= fd_limit,
            "--topics {} needs one connection each, but this process may open only {fd_limit} \
             files (ulimit -n)",
            args.topics
        );
        let run_id = run_id();
        let parts = args.parts.min(args.topics);
        Ok(Plan {
            run,
            prefix: format!("bench/topics/{run_id}"),
            batch: args.batch,
            rate: args.rate,
            payload_bytes: args.payload_bytes,
            hub_pid: args.hub_pid,
            shared: Arc::new(Shared {
                run_id,
                topics: args.topics,
                publishers: args.publishers,
                parts,
                latency: Histogram::new(),
                part_latency: (0..parts).map(|_| Histogram::new()).collect(),
                delivered: AtomicU64::new(0),
            }),
        })
    }

    fn topic(&self, i: u32) -> String {
        format!("{}/{i}", self.prefix)
    }
}

async fn execute(plan: Plan) -> anyhow::Result<Report> {
    let started = Instant::now();
    let deadline = started + plan.run.max_duration;
    let shared = plan.shared.clone();
    let topics = shared.topics;
    let probe = HubProbe::new(plan.hub_pid)?;
    let rss_start = probe.map(|p| p.rss_kib()).transpose()?;

    // 1. Open every subscription, each to its own topic.
    eprintln!(
        "ssehub bench topics: opening {topics} subscriptions to {}/topics/{}/<0..{topics}>",
        plan.run.hub, plan.prefix
    );
    let streams = (0..topics)
        .map(|index| {
            let url = format!("{}/topics/{}", plan.run.hub, plan.topic(index));
            let target = Target::new(&url, &plan.run.headers).map_err(anyhow::Error::msg)?;
            let check = TopicCheck::new(index, shared.clone());
            Ok((Arc::new(target), Subscriber::new(check)))
        })
        .collect::<anyhow::Result<_>>()?;
    let subscribers = Subscribers::open(&plan.run, streams, started, deadline).await?;
    let connect_secs = started.elapsed().as_secs_f64();
    let open = topics as usize;
    let rss_open = probe.map(|p| p.rss_kib()).transpose()?;
    eprintln!(
        "ssehub bench topics: {open} subscriptions open in {connect_secs:.2} s; publishing one \
         event to each, in batches of {} at up to {}/s, to {}/publish",
        plan.batch, plan.rate, plan.run.hub
    );

    // 2. Publish, paced, from a thread of its own.
    let job = PublishJob {
        client: plan.run.client()?,
        url: format!("{}/publish", plan.run.hub),
        prefix: plan.prefix.clone(),
        shared: shared.clone(),
        batch: plan.batch,
        rate: plan.rate,
        payload_bytes: plan.payload_bytes,
        deadline,
        probe,
    };
    // The publishers stop by themselves at the deadline; a last request may take `timeout`.
    let publisher = on_own_thread(
        move || job.publish_all(),
        deadline + plan.run.timeout + Duration::from_secs(1),
    )
    .await?;
    let published = &publisher.all;
    let events_published = published.acked.count();

    // 3. Drain: until every acknowledged event arrived, or the drain time is over.
    eprintln!(
        "ssehub bench topics: published {events_published} in {:.2} s; waiting up to {:.1} s for deliveries",
        published.secs,
        plan.run.drain.as_secs_f64()
    );
    let drain_until = (Instant::now() + plan.run.drain).min(deadline);
    let mut deadline_reached = published.deadline_reached;
    let mut ticks = tokio::time::interval(Duration::from_millis(2));
    loop {
        ticks.tick().await;
        if shared.delivered.load(Ordering::Relaxed) >= events_published {
            break;
        }
        if Instant::now() >= drain_until {
            deadline_reached |= drain_until == deadline;
            break;
        }
    }
    let drained_secs = started.elapsed().as_secs_f64();
    let cpu_end = probe.map(|p| p.cpu_us()).transpose()?;
    let rss_end = probe.map(|p| p.rss_kib()).transpose()?;
    let mut totals = Totals::default();
    let mut wrong_topic = 0;
    subscribers
        .stop(|outcome| {
            wrong_topic += outcome.tally.check.wrong_topic;
            totals.add(&outcome.tally, outcome.end, &published.acked);
        })
        .await?;

    // Per part: its hub CPU runs from its own first batch to the next part's (the last part's
    // to the end of the drain).
    let cpu_marks = &publisher.cpu_marks;
    let parts = (0..shared.parts)
        .map(|k| {
            let (first, next) = (shared.part_start(k), shared.part_start(k + 1));
            let events = u64::from(next - first);
            let end = if k + 1 == shared.parts {
                cpu_end
            } else {
                cpu_marks[k as usize + 1]
            };
            let hub_cpu_us_per_event = match (cpu_marks[k as usize], end) {
                (Some(a), Some(b)) if events > 0 => {
                    Some(b.saturating_sub(a) as f64 / events as f64)
                }
                _ => None,
            };
            Part {
                part: k + 1,
                first_topic: first,
                events,
                hub_cpu_us_per_event,
                latency_ms: Percentiles::of(&shared.part_latency[k as usize]),
                publish_ack_ms: Percentiles::of(&publisher.part_ack[k as usize]),
            }
        })
        .collect();
    let hub_cpu_secs = match (cpu_marks.first().copied().flatten(), cpu_end) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1e6),
        _ => None,
    };
    let per_topic = |after: Option<u64>| match (rss_start, after) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 * 1024.0 / f64::from(topics)),
        _ => None,
    };
    Ok(Report {
        scenario: "topics",
        hub: plan.run.hub,
        topic_prefix: plan.prefix,
        topics: u64::from(topics),
        batch: plan.batch,
        rate: plan.rate,
        publishers: shared.publishers,
        payload_bytes: plan.payload_bytes as u64,
        connect_secs,
        events_published,
        publish_errors: published.failures.count,
        publish_secs: published.secs,
        publish_rate: events_published as f64 / published.secs.max(1e-9),
        delivered: totals.delivered,
        lost: events_published - totals.delivered,
        duplicates: totals.duplicates,
        wrong_topic,
        unacknowledged_deliveries: totals.unacknowledged,
        foreign_events: totals.foreign,
        parse_errors: totals.parse_errors,
        streams_ended_early: totals.ended_early,
        run_secs: drained_secs,
        latency_ms: Percentiles::of(&shared.latency),
        publish_ack_ms: Percentiles::of(&published.ack),
        hub_cpu_secs,
        hub_cpu_us_per_event: hub_cpu_secs.map(|s| s * 1e6 / events_published.max(1) as f64),
        hub_rss_kib: rss_start.map(|start| HubRss {
            start,
            open: rss_open.unwrap_or(0),
            end: rss_end.unwrap_or(0),
        }),
        hub_rss_bytes_per_topic_open: per_topic(rss_open),
        hub_rss_bytes_per_topic_end: per_topic(rss_end),
        parts,
        deadline_reached,
        first_publish_error: published.failures.first.clone(),
        first_stream_error: totals.first_stream_error,
    })
}

/// The publishers' inputs.
struct PublishJob {
    client: reqwest::Client,
    url: String,
    prefix: String,
    shared: Arc<Shared>,
    batch: u32,
    rate: u32,
    payload_bytes: usize,
    deadline: Instant,
    probe: Option<HubProbe>,
}

/// What the publishers did: the shared record, and per part.
struct TopicsPublished {
    all: Published,
    /// POST sent → its answer, in microseconds, per part (of the batch's first event).
    part_ack: Vec<Histogram>,
    /// The hub's CPU time (µs) when each part's first batch was sent (with --hub-pid).
    cpu_marks: Vec<Option<u64>>,
}

impl TopicsPublished {
    fn new(topics: u32, parts: usize) -> Self {
        TopicsPublished {
            all: Published::new(topics),
            part_ack: (0..parts).map(|_| Histogram::new()).collect(),
            cpu_marks: vec![None; parts],
        }
    }
}

impl PublishJob {
    /// Publishes every event, from `publishers` lanes; run it with [`on_own_thread`].
    async fn publish_all(self) -> TopicsPublished {
        let job = Arc::new(self);
        let (topics, parts) = (job.shared.topics, job.shared.parts as usize);
        let out = Arc::new(Mutex::new(TopicsPublished::new(topics, parts)));
        let (secs, deadline_reached) = run_lanes(job.shared.publishers, |lane, start| {
            job.clone().lane(lane, start, out.clone())
        })
        .await;
        let mut done = take(out, TopicsPublished::new(0, 0));
        done.all.secs = secs;
        done.all.deadline_reached = deadline_reached;
        done
    }

    /// One publisher: batches `lane`, `lane + K`, …, one at a time, each not before its time.
    /// Returns whether it stopped at the deadline.
    async fn lane(
        self: Arc<Self>,
        lane: u32,
        start: Instant,
        out: Arc<Mutex<TopicsPublished>>,
    ) -> bool {
        let shared = &self.shared;
        let batches = shared.topics.div_ceil(self.batch);
        let step = shared.publishers as usize;
        for b in (lane..batches).step_by(step) {
            let first = b * self.batch;
            let end = (first + self.batch).min(shared.topics);
            if !due(start, first, self.rate, self.deadline).await {
                return true;
            }
            // The hub's CPU time at the start of every part that begins in this batch.
            if let Some(probe) = self.probe {
                let starts: Vec<u32> = (0..shared.parts)
                    .filter(|&k| (first..end).contains(&shared.part_start(k)))
                    .collect();
                if !starts.is_empty() {
                    let cpu = probe.cpu_us().ok();
                    let mut out = lock(&out);
                    for k in starts {
                        out.cpu_marks[k as usize] = cpu;
                    }
                }
            }
            let body = self.body(first..end, now_micros());
            let sent = Instant::now();
            let result = publish(&self.client, &self.url, body, end - first).await;
            let ack_us = micros(sent.elapsed());
            let mut out = lock(&out);
            if let Some(us) = out.all.record(result, first..end, ack_us) {
                out.part_ack[shared.part(first)].record(us);
            }
        }
        false
    }

    /// The `POST /publish` body for topics `range`: `[{"topic","data"}, …]`.
    fn body(&self, range: std::ops::Range<u32>, ts_us: u64) -> String {
        #[derive(Serialize)]
        struct Item {
            topic: String,
            data: String,
        }
        let items: Vec<Item> = range
            .map(|i| Item {
                topic: format!("{}/{i}", self.prefix),
                data: payload(&self.shared.run_id, i, ts_us, self.payload_bytes),
            })
            .collect();
        serde_json::to_string(&items).unwrap_or_default()
    }
}

/// One event's data: `{"run":…,"topic":…,"ts_us":…,"pad":"xx…"}`, `size` bytes when that is
/// enough for the fields.
fn payload(run_id: &str, topic: u32, ts_us: u64, size: usize) -> String {
    crate::publishers::payload(run_id, ("topic", topic), ts_us, size)
}

/// The fields of [`payload`] that subscribers read (`pad` is skipped).
#[derive(Deserialize)]
struct Payload<'a> {
    run: &'a str,
    topic: u32,
    ts_us: u64,
}

/// Sends one batch and checks that the answer holds one id per event.
async fn publish(
    client: &reqwest::Client,
    url: &str,
    body: String,
    events: u32,
) -> Result<(), String> {
    let answer = post_json(client, url, body).await?;
    #[derive(Deserialize)]
    struct Ids {
        ids: Vec<serde_json::Value>,
    }
    match serde_json::from_slice::<Ids>(&answer) {
        Ok(ids) if ids.ids.len() == events as usize => Ok(()),
        Ok(ids) => Err(format!(
            "publish: {} ids for a batch of {events}",
            ids.ids.len()
        )),
        // Not ssehub's answer: a 2xx is all the bench can check.
        Err(_) => Ok(()),
    }
}

/// What one subscriber checks: its own topic's event, once, and nothing of other topics.
struct TopicCheck {
    index: u32,
    shared: Arc<Shared>,
    /// Its own event arrived.
    got: bool,
    /// This run's events for another topic.
    wrong_topic: u64,
}

impl TopicCheck {
    fn new(index: u32, shared: Arc<Shared>) -> Self {
        TopicCheck {
            index,
            shared,
            got: false,
            wrong_topic: 0,
        }
    }
}

impl Check for TopicCheck {
    fn event(&mut self, data: &str, now: u64, counts: &mut Counts) {
        let shared = &*self.shared;
        let payload = match serde_json::from_str::<Payload<'_>>(data) {
            Ok(p) if p.run == shared.run_id && p.topic < shared.topics => p,
            _ => {
                counts.foreign += 1;
                return;
            }
        };
        if payload.topic != self.index {
            self.wrong_topic += 1;
        } else if self.got {
            counts.duplicates += 1;
        } else {
            self.got = true;
            let us = now.saturating_sub(payload.ts_us);
            shared.latency.record(us);
            shared.part_latency[shared.part(self.index)].record(us);
            shared.delivered.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Never: a subscriber keeps reading until the run stops, to count duplicates and
    /// events for other topics.
    fn complete(&self) -> bool {
        false
    }

    fn delivered(&self, acked: &Bitset) -> (u64, u64) {
        match (self.got, acked.get(self.index)) {
            (false, _) => (0, 0),
            (true, true) => (1, 0),
            (true, false) => (0, 1),
        }
    }
}

/// One part of the run (events in publish order).
#[derive(Serialize)]
struct Part {
    /// 1-based.
    part: u32,
    first_topic: u32,
    events: u64,
    /// The hub's CPU time over the part, per event (with --hub-pid).
    hub_cpu_us_per_event: Option<f64>,
    latency_ms: Option<Percentiles>,
    /// Per batch.
    publish_ack_ms: Option<Percentiles>,
}

#[derive(Serialize)]
struct HubRss {
    start: u64,
    open: u64,
    end: u64,
}

/// The report: `--json` prints it as is; field names are part of the command's interface.
#[derive(Serialize)]
struct Report {
    scenario: &'static str,
    hub: String,
    /// Topic i is `<topic_prefix>/<i>`.
    topic_prefix: String,
    topics: u64,
    batch: u32,
    rate: u32,
    publishers: u32,
    payload_bytes: u64,
    /// From start until every subscription was open.
    connect_secs: f64,
    /// Events the hub acknowledged (one per topic at most).
    events_published: u64,
    /// Batches that failed.
    publish_errors: u64,
    publish_secs: f64,
    publish_rate: f64,
    /// Acknowledged events that reached their topic's subscriber.
    delivered: u64,
    lost: u64,
    duplicates: u64,
    /// Events that reached a subscriber of another topic.
    wrong_topic: u64,
    /// Events received whose publish had failed (e.g. a timeout after the hub stored it).
    unacknowledged_deliveries: u64,
    /// Events that were not this run's.
    foreign_events: u64,
    parse_errors: u64,
    streams_ended_early: u64,
    /// From start to the end of the drain.
    run_secs: f64,
    /// Publish timestamp (taken just before the batch's POST) → event parsed at its subscriber.
    latency_ms: Option<Percentiles>,
    /// Per batch: POST sent → its answer received.
    publish_ack_ms: Option<Percentiles>,
    /// The hub's CPU time from the first batch to the end of the drain (with --hub-pid).
    hub_cpu_secs: Option<f64>,
    hub_cpu_us_per_event: Option<f64>,
    /// The hub's VmRSS before the subscriptions, with them open, at the end (with --hub-pid).
    hub_rss_kib: Option<HubRss>,
    hub_rss_bytes_per_topic_open: Option<f64>,
    hub_rss_bytes_per_topic_end: Option<f64>,
    parts: Vec<Part>,
    deadline_reached: bool,
    first_publish_error: Option<String>,
    first_stream_error: Option<String>,
}

impl Report {
    fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut t = Table::default();
        t.row(
            "topics",
            format!(
                "{:>10}  (subscriptions open in {:.2} s)",
                self.topics, self.connect_secs
            ),
        );
        t.row(
            "events published",
            format!(
                "{:>10}  {:.0}/s over {:.2} s",
                self.events_published, self.publish_rate, self.publish_secs
            ),
        );
        t.row("publish errors", format!("{:>10}", self.publish_errors));
        t.row("delivered", format!("{:>10}", self.delivered));
        t.row("lost", format!("{:>10}", self.lost));
        t.row("duplicates", format!("{:>10}", self.duplicates));
        t.row("wrong topic", format!("{:>10}", self.wrong_topic));
        t.row(
            "streams ended early",
            format!("{:>10}", self.streams_ended_early),
        );
        t.percentiles("latency ms", self.latency_ms.as_ref());
        t.percentiles("publish ack ms", self.publish_ack_ms.as_ref());
        if let (Some(secs), Some(per)) = (self.hub_cpu_secs, self.hub_cpu_us_per_event) {
            t.row(
                "hub CPU",
                format!("{secs:>10.2} s  ({per:.1} µs per event)"),
            );
        }
        if let (Some(rss), Some(open), Some(end)) = (
            &self.hub_rss_kib,
            self.hub_rss_bytes_per_topic_open,
            self.hub_rss_bytes_per_topic_end,
        ) {
            t.row(
                "hub RSS KiB",
                format!(
                    "{:>10}  → {} open → {} at the end ({open:.0} / {end:.0} B per topic)",
                    rss.start, rss.open, rss.end
                ),
            );
        }
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
        let _ = writeln!(
            t.text(),
            "  per part, in publish order:\n  {:>4} {:>8} {:>7} {:>14} {:>22} {:>14}",
            "part",
            "topics",
            "events",
            "hub µs/event",
            "latency ms p50 / p99",
            "ack ms p50"
        );
        for p in &self.parts {
            let cpu = p
                .hub_cpu_us_per_event
                .map_or_else(|| "-".into(), |v| format!("{v:.1}"));
            let latency = p
                .latency_ms
                .as_ref()
                .map_or_else(|| "-".into(), |l| format!("{:.2} / {:.2}", l.p50, l.p99));
            let ack = p
                .publish_ack_ms
                .as_ref()
                .map_or_else(|| "-".into(), |a| format!("{:.2}", a.p50));
            let _ = writeln!(
                t.text(),
                "  {:>4} {:>8} {:>7} {cpu:>14} {latency:>22} {ack:>14}",
                p.part,
                p.first_topic,
                p.events
            );
        }
        format!(
            "ssehub bench topics: {} topics {}/<i> ({} B events, batches of {} at up to {}/s, \
             {} publisher{})\n{}",
            self.hub,
            self.topic_prefix,
            self.payload_bytes,
            self.batch,
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
    use crate::stream::{End, Tally as _};

    fn shared(topics: u32, parts: u32) -> Shared {
        Shared {
            run_id: "r".into(),
            topics,
            publishers: 1,
            parts,
            latency: Histogram::new(),
            part_latency: (0..parts).map(|_| Histogram::new()).collect(),
            delivered: AtomicU64::new(0),
        }
    }

    #[test]
    fn parts_cover_every_topic_once() {
        for (topics, parts) in [(10, 10), (1000, 10), (9000, 10), (7, 3), (1, 1)] {
            let s = shared(topics, parts);
            assert_eq!(s.part_start(0), 0);
            assert_eq!(s.part_start(parts), topics);
            for k in 0..parts {
                for i in s.part_start(k)..s.part_start(k + 1) {
                    assert_eq!(s.part(i), k as usize, "{topics}/{parts}: topic {i}");
                }
            }
        }
    }

    #[test]
    fn tally_counts_wrong_topics_duplicates_and_foreign_events() {
        let s = Arc::new(shared(4, 2));
        let mut r = Subscriber::new(TopicCheck::new(2, s.clone()));
        let mut stream = String::from("retry: 10\n\n");
        for topic in [1, 2, 2, 3, 9] {
            stream += &format!("data: {}\n\n", payload("r", topic, 0, 0));
        }
        stream += "data: not json\n\n";
        stream += &format!("data: {}\n\n", payload("other", 2, 0, 0));
        r.feed(stream.as_bytes(), now_micros());
        assert!(r.check.got);
        let (check, counts) = (&r.check, &r.counts);
        assert_eq!(
            (check.wrong_topic, counts.duplicates, counts.foreign),
            (2, 1, 3)
        );
        assert_eq!(s.delivered.load(Ordering::Relaxed), 1);
        assert_eq!(s.part_latency[1].count(), 1);

        let mut acked = Bitset::new(4);
        acked.set(2);
        let mut totals = Totals::default();
        totals.add(&r, End::Stopped, &acked);
        assert_eq!((totals.delivered, totals.unacknowledged), (1, 0));
        assert_eq!(totals.ended_early, 0);
    }

    #[test]
    fn payload_parses_back() {
        for size in [0, 200] {
            let body = payload("0123456789abcdef", 42, 1_700_000_000_000_000, size);
            assert!(body.len() >= size);
            let p: Payload<'_> = serde_json::from_str(&body).unwrap();
            assert_eq!(
                (p.run, p.topic, p.ts_us),
                ("0123456789abcdef", 42, 1_700_000_000_000_000)
            );
        }
    }
}
