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
//! With several `--hub`s (the nodes of one cluster), subscriber i opens on hub i mod H and
//! publisher p publishes to hub p mod H ([`round_robin`]); everything is counted over all
//! subscribers together, as with one hub.
//!
//! Subscribers are [`crate::stream`]s: a plain socket with a small HTTP/1.1 reader, so that
//! the generator costs the machine less than the hub it measures. Per subscriber the state is
//! a parser, a bitset of M bits (which sequence numbers arrived: duplicates and losses are
//! exact) and a few counters ([`SeqCheck`], summed by [`crate::deliveries`]); latencies go
//! into one shared [`Histogram`]. Events that are not this run's (another run id, not our
//! JSON) are counted as foreign and otherwise ignored. A stream the hub ends is not reopened:
//! it counts as ended early, and its missing events as lost.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::args::FanoutArgs;
use crate::deliveries::{Bitset, Check, Counts, Subscriber, Totals};
use crate::histogram::{Histogram, PercentilesMs as Percentiles};
use crate::http1::Target;
use crate::plan::RunPlan;
use crate::publishers::{Published, due, lock, on_own_thread, post_json, run_lanes, take};
use crate::subscribers::{Outcome, Subscribers};
use crate::table::Table;
use crate::{hub_base, print_report, run_id};
use crate::{micros, now_micros};

/// The run, as decided from the flags.
struct Plan {
    run: RunPlan,
    /// Every `--hub`, without a trailing `/` (the first is `run.hub`).
    hubs: Vec<String>,
    topic: String,
    /// Per hub, in `hubs` order.
    subscribe_urls: Vec<String>,
    /// Per hub, in `hubs` order.
    publish_urls: Vec<String>,
    subscribers: usize,
    rate: u32,
    payload_bytes: usize,
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
        let (subscribers, events, rate) = (args.subscribers, args.events, args.rate);
        let first = args.hub.first().context("--hub: no hub given")?;
        let run = RunPlan::new(first, &args.run, subscribers, events, rate)?;
        let hubs = args
            .hub
            .iter()
            .map(|hub| hub_base(hub))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let run_id = run_id();
        let topic = args
            .topic
            .clone()
            .unwrap_or_else(|| format!("bench/fanout/{run_id}"));
        let urls = |template: &str| {
            hubs.iter()
                .map(|hub| template.replace("{hub}", hub).replace("{topic}", &topic))
                .collect::<Vec<_>>()
        };
        Ok(Plan {
            subscribe_urls: urls(&args.subscribe_url_template),
            publish_urls: urls(&args.publish_url_template),
            run,
            hubs,
            topic,
            subscribers: subscribers as usize,
            rate,
            payload_bytes: args.payload_bytes,
            shared: Arc::new(Shared {
                run_id,
                events,
                publishers: args.publishers,
                latency: Histogram::new(),
            }),
        })
    }
}

async fn execute(plan: Plan) -> anyhow::Result<Report> {
    let started = Instant::now();
    let deadline = started + plan.run.max_duration;
    let shared = plan.shared.clone();
    let events = shared.events;

    // 1. Open every subscription.
    eprintln!(
        "ssehub bench fanout: opening {} subscriptions to {}",
        plan.subscribers,
        plan.subscribe_urls.join(", ")
    );
    let targets = plan
        .subscribe_urls
        .iter()
        .map(|url| Target::new(url, &plan.run.headers).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let streams = (0..plan.subscribers)
        .map(|i| {
            (
                round_robin(&targets, i).clone(),
                Subscriber::new(SeqCheck::new(shared.clone())),
            )
        })
        .collect();
    let mut subscribers = Subscribers::open(&plan.run, streams, started, deadline).await?;
    let connect_secs = started.elapsed().as_secs_f64();
    let open = plan.subscribers;
    eprintln!(
        "ssehub bench fanout: {open} subscriptions open in {connect_secs:.2} s; publishing {events} events at up to {}/s to {}",
        plan.rate,
        plan.publish_urls.join(", ")
    );

    // 2. Publish, paced, from a thread of its own.
    let job = PublishJob {
        client: plan.run.client()?,
        urls: plan.publish_urls.clone(),
        shared: shared.clone(),
        rate: plan.rate,
        payload_bytes: plan.payload_bytes,
        deadline,
    };
    // The publishers stop by themselves at the deadline; a last request may take `timeout`.
    let published = on_own_thread(
        move || job.publish_all(),
        deadline + plan.run.timeout + Duration::from_secs(1),
    )
    .await?;
    let acked = &published.acked;
    let mut deadline_reached = published.deadline_reached;
    let events_published = acked.count();

    // 3. Drain: until every subscriber has everything, or the drain time is over.
    eprintln!(
        "ssehub bench fanout: published {events_published} in {:.2} s; waiting up to {:.1} s for deliveries",
        published.secs,
        plan.run.drain.as_secs_f64()
    );
    let drain_until = (Instant::now() + plan.run.drain).min(deadline);
    let mut totals = FanoutTotals::default();
    loop {
        tokio::select! {
            ended = subscribers.next_ended() => match ended {
                Some(outcome) => totals.add(outcome?, acked),
                None => break,
            },
            () = tokio::time::sleep_until(drain_until) => {
                deadline_reached |= drain_until == deadline;
                break;
            }
        }
    }
    subscribers
        .stop(|outcome| totals.add(outcome, acked))
        .await?;

    let FanoutTotals {
        all,
        out_of_order,
        first_us,
        last_us,
    } = totals;
    let expected = plan.subscribers as u64 * events_published;
    let window_secs = match (first_us, last_us) {
        (Some(first), Some(last)) if last > first => (last - first) as f64 / 1e6,
        _ => 0.0,
    };
    Ok(Report {
        scenario: "fanout",
        hub: plan.hubs.join(","),
        topic: plan.topic,
        subscribers: plan.subscribers as u64,
        events_requested: u64::from(events),
        rate: plan.rate,
        publishers: shared.publishers,
        payload_bytes: plan.payload_bytes as u64,
        connect_secs,
        events_published,
        publish_errors: published.failures.count,
        publish_secs: published.secs,
        publish_rate: events_published as f64 / published.secs.max(1e-9),
        deliveries_expected: expected,
        delivered: all.delivered,
        lost: expected - all.delivered,
        duplicates: all.duplicates,
        out_of_order,
        unacknowledged_deliveries: all.unacknowledged,
        foreign_events: all.foreign,
        parse_errors: all.parse_errors,
        streams_ended_early: all.ended_early,
        receive_window_secs: window_secs,
        deliveries_per_sec: if window_secs > 0.0 {
            all.delivered as f64 / window_secs
        } else {
            0.0
        },
        latency_ms: Percentiles::of(&shared.latency),
        publish_ack_ms: Percentiles::of(&published.ack),
        deadline_reached,
        first_publish_error: published.failures.first,
        first_stream_error: all.first_stream_error,
    })
}

/// The publishers' inputs.
struct PublishJob {
    client: reqwest::Client,
    /// Per hub; lane p publishes to hub p mod H.
    urls: Vec<String>,
    shared: Arc<Shared>,
    rate: u32,
    payload_bytes: usize,
    deadline: Instant,
}

impl PublishJob {
    /// Publishes every event, from `publishers` lanes; run it with [`on_own_thread`].
    async fn publish_all(self) -> Published {
        let job = Arc::new(self);
        let events = job.shared.events;
        let out = Arc::new(Mutex::new(Published::new(events)));
        let (secs, deadline_reached) = run_lanes(job.shared.publishers, |lane, start| {
            job.clone().lane(lane, start, out.clone())
        })
        .await;
        let mut done = take(out, Published::new(0));
        done.secs = secs;
        done.deadline_reached = deadline_reached;
        done
    }

    /// One publisher: events `lane`, `lane + K`, …, one at a time, each not before its time.
    /// Returns whether it stopped at the deadline.
    async fn lane(self: Arc<Self>, lane: u32, start: Instant, out: Arc<Mutex<Published>>) -> bool {
        let step = self.shared.publishers as usize;
        let url = round_robin(&self.urls, lane as usize);
        for seq in (lane..self.shared.events).step_by(step) {
            if !due(start, seq, self.rate, self.deadline).await {
                return true;
            }
            let body = payload(&self.shared.run_id, seq, now_micros(), self.payload_bytes);
            let sent = Instant::now();
            let result = post_json(&self.client, url, body).await.map(drop);
            let ack_us = micros(sent.elapsed());
            lock(&out).record(result, seq..seq + 1, ack_us);
        }
        false
    }
}

/// Item `i` of a run spread round-robin over `over` (one entry per hub): `over[i mod H]`.
fn round_robin<T>(over: &[T], i: usize) -> &T {
    &over[i % over.len()]
}

/// One event's data: `{"run":…,"seq":…,"ts_us":…,"pad":"xx…"}`, `size` bytes when that is
/// enough for the fields.
fn payload(run_id: &str, seq: u32, ts_us: u64, size: usize) -> String {
    crate::publishers::payload(run_id, ("seq", seq), ts_us, size)
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

/// What one subscriber checks: every sequence number once, in order per publisher.
struct SeqCheck {
    shared: Arc<Shared>,
    seen: Bitset,
    delivered: u32,
    /// Per publisher, the highest sequence number received.
    highest: Box<[Option<u32>]>,
    out_of_order: u64,
    first_us: Option<u64>,
    last_us: Option<u64>,
}

impl SeqCheck {
    fn new(shared: Arc<Shared>) -> Self {
        SeqCheck {
            seen: Bitset::new(shared.events),
            delivered: 0,
            highest: vec![None; shared.publishers as usize].into_boxed_slice(),
            shared,
            out_of_order: 0,
            first_us: None,
            last_us: None,
        }
    }
}

impl Check for SeqCheck {
    fn event(&mut self, data: &str, now: u64, counts: &mut Counts) {
        let shared = &*self.shared;
        let payload = match Payload::read(data) {
            Some(p) if p.run == shared.run_id && p.seq < shared.events => p,
            _ => {
                counts.foreign += 1;
                return;
            }
        };
        let seq = payload.seq;
        if self.seen.get(seq) {
            counts.duplicates += 1;
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

    fn complete(&self) -> bool {
        self.delivered == self.shared.events
    }

    fn delivered(&self, acked: &Bitset) -> (u64, u64) {
        let delivered = self.seen.count_and(acked);
        (delivered, self.seen.count() - delivered)
    }
}

/// The sum over subscribers: the shared [`Totals`], plus order and the receive window.
#[derive(Default)]
struct FanoutTotals {
    all: Totals,
    out_of_order: u64,
    first_us: Option<u64>,
    last_us: Option<u64>,
}

impl FanoutTotals {
    fn add(&mut self, outcome: Outcome<Subscriber<SeqCheck>>, acked: &Bitset) {
        let check = &outcome.tally.check;
        self.out_of_order += check.out_of_order;
        self.first_us = match (self.first_us, check.first_us) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_us = self.last_us.max(check.last_us);
        self.all.add(&outcome.tally, outcome.end, acked);
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
    use crate::stream::{End, Tally as _};

    /// `ssehub bench fanout`'s flags alone.
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        fanout: FanoutArgs,
    }

    fn plan(args: &[&str]) -> Plan {
        use clap::Parser as _;
        let cli = Cli::try_parse_from(std::iter::once("fanout").chain(args.iter().copied()));
        Plan::new(&cli.unwrap().fanout).unwrap()
    }

    #[test]
    fn one_hub_by_default_or_several_spread_round_robin() {
        let one = plan(&["--topic", "t"]);
        assert_eq!(one.hubs, ["http://127.0.0.1:8080"]);
        assert_eq!(one.subscribe_urls, ["http://127.0.0.1:8080/topics/t"]);
        assert_eq!(
            *round_robin(&one.publish_urls, 3),
            "http://127.0.0.1:8080/topics/t"
        );

        // Repeated, comma-separated, or both; trailing slashes go.
        let three = plan(&[
            "--hub",
            "http://a:1,http://b:2/",
            "--hub",
            "http://c:3",
            "--topic",
            "t",
        ]);
        assert_eq!(three.hubs, ["http://a:1", "http://b:2", "http://c:3"]);
        assert_eq!(three.run.hub, "http://a:1");
        let subscribers: Vec<_> = (0..7)
            .map(|i| round_robin(&three.subscribe_urls, i).as_str())
            .collect();
        assert_eq!(
            subscribers,
            [
                "http://a:1/topics/t",
                "http://b:2/topics/t",
                "http://c:3/topics/t",
                "http://a:1/topics/t",
                "http://b:2/topics/t",
                "http://c:3/topics/t",
                "http://a:1/topics/t"
            ]
        );
        assert_eq!(*round_robin(&three.publish_urls, 4), "http://b:2/topics/t");
        assert!(
            Plan::new(&{
                use clap::Parser as _;
                Cli::try_parse_from(["fanout", "--hub", "http://a:1,https://b:2"])
                    .unwrap()
                    .fanout
            })
            .is_err()
        );
    }

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

    fn subscriber(events: u32, publishers: u32) -> (Arc<Shared>, Subscriber<SeqCheck>) {
        let shared = Arc::new(Shared {
            run_id: "r".into(),
            events,
            publishers,
            latency: Histogram::new(),
        });
        (shared.clone(), Subscriber::new(SeqCheck::new(shared)))
    }

    #[test]
    fn order_is_checked_per_publisher() {
        let (_, mut r) = subscriber(6, 2);
        let mut stream = String::new();
        // Publisher 0 sends 0, 2, 4 and publisher 1 sends 1, 3, 5: interleaving them any way
        // is in order; only 2 after 4 is not.
        for seq in [1, 0, 3, 5, 4, 2] {
            stream += &format!("data: {}\n\n", payload("r", seq, 0, 0));
        }
        r.feed(stream.as_bytes(), 0);
        let c = &r.check;
        assert_eq!(
            (c.delivered, c.out_of_order, r.counts.duplicates),
            (6, 1, 0)
        );
    }

    #[test]
    fn tally_counts_duplicates_order_and_foreign_events() {
        let (shared, mut r) = subscriber(4, 1);
        let mut stream = String::from("retry: 10\n\n");
        for seq in [0, 2, 1, 2, 9] {
            stream += &format!("data: {}\n\n", payload("r", seq, 0, 0));
        }
        stream += "data: not json\n\n";
        stream += &format!("data: {}\n\n", payload("other", 3, 0, 0));
        r.feed(stream.as_bytes(), 0);
        assert_eq!(r.check.delivered, 3);
        let (counts, check) = (&r.counts, &r.check);
        assert_eq!(
            (counts.duplicates, check.out_of_order, counts.foreign),
            (1, 1, 3)
        );
        assert_eq!(shared.latency.count(), 3);

        let mut acked = Bitset::new(4);
        for seq in [0, 1, 3] {
            acked.set(seq);
        }
        let mut totals = FanoutTotals::default();
        totals.add(
            Outcome {
                tally: r,
                end: End::Broken("x".into()),
            },
            &acked,
        );
        // Seq 2 arrived though its publish failed; seq 3 was acknowledged and never came.
        assert_eq!((totals.all.delivered, totals.all.unacknowledged), (2, 1));
        assert_eq!((totals.all.ended_early, totals.out_of_order), (1, 1));
    }
}
