//! Many topics: the cost of one event as the number of topics grows.
//!
//! For N = 1,000, 10,000 and 100,000 topics, each with exactly one live [`Subscription`], one
//! iteration publishes one event to the next topic ([`Hub::publish`], over a [`MemoryStore`])
//! and polls that topic's subscription until it yields the event's bytes. The target is a flat
//! line: no slowdown per event as N grows.
//!
//! Two series: `topics/all/N` visits all N topics; `topics/hot1000/N` publishes to 1,000 of the
//! N topics only, on the same hub. A hub whose work per event grew with its size would be
//! slower in both; what `all` costs beyond `hot1000` is the price of touching more distinct
//! topics (their state falls out of the CPU caches), which any design pays. A third series,
//! `topics/wildcard/N`, subscribes each subscriber to a pattern of its own
//! (`bench/topics/<i>/*`, events to `bench/topics/<i>/e`) instead of a topic.
//!
//! ```text
//! cargo bench -p ssehub-core --bench topics
//! ```
//!
//! Topics are visited round-robin, each once per round, in a scrambled order (a stride prime
//! to N), so that consecutive events do not touch neighbouring allocations and the caches see
//! what a real hub sees. Before measuring, each N's setup publishes one event to every topic
//! and checks that exactly its subscriber got it, and prints the time per subscribe and per
//! event of that first round to stderr. Memory per topic is measured by
//! `examples/topics_memory.rs` (one process per N, as a freed heap is not given back).
//!
//! # Clock
//!
//! Everything runs on one current-thread tokio runtime — the publisher, the hub's commit task
//! and the subscriber — so the time measured is the benchmark thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`), which leaves out the time the thread waited for a core on a
//! shared machine. `SSEHUB_BENCH_CLOCK=wall` measures wall time instead.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use ssehub_core::{
    Hub, HubConfig, MemoryStore, NewEvent, Pattern, Resume, Retention, Selector, Subscription,
    Topic,
};

/// The topic counts measured.
const COUNTS: [usize; 3] = [1_000, 10_000, 100_000];

/// The `hot` series publishes to this many of the N topics only.
const HOT: usize = 1_000;

/// Each event's data (the same for every N).
const DATA: &str =
    "{\"user\":\"someone\",\"text\":\"a small notification of about a hundred bytes, padded...\"}";

/// Visits 0..N in a scrambled order: a prime that divides none of the counts.
const STRIDE: usize = 7_919;

/// A hub with `n` topics, one subscription each.
struct Setup {
    hub: Hub,
    topics: Vec<Topic>,
    subs: Vec<Subscription>,
    /// Events published so far.
    next: usize,
}

impl Setup {
    /// Builds the hub and its subscriptions, checks one event per topic, and reports the cost.
    /// With `wildcard`, subscription i is to the pattern `bench/topics/<i>/*` and its events
    /// go to `bench/topics/<i>/e`.
    async fn new(n: usize, wildcard: bool) -> Setup {
        let hub = Hub::new(
            Arc::new(MemoryStore::new(Retention::default())),
            HubConfig {
                // No heartbeat task waking up in the middle of a measurement.
                heartbeat: None,
                ..HubConfig::default()
            },
        );
        let topics: Vec<Topic> = (0..n)
            .map(|i| {
                let name = if wildcard {
                    format!("bench/topics/{i}/e")
                } else {
                    format!("bench/topics/{i}")
                };
                Topic::new(&name).unwrap()
            })
            .collect();
        let started = Instant::now();
        let subs: Vec<Subscription> = topics
            .iter()
            .map(|topic| {
                let pattern = if wildcard {
                    Pattern::new(&topic.as_str().replace("/e", "/*")).unwrap()
                } else {
                    Pattern::new(topic.as_str()).unwrap()
                };
                let selector = Selector::new(vec![pattern]).unwrap();
                hub.subscribe(selector, &Resume::Live).unwrap()
            })
            .collect();
        let subscribe = started.elapsed();
        assert_eq!(hub.active_topics(), n);
        let mut setup = Setup {
            hub,
            topics,
            subs,
            next: 0,
        };
        // One event to every topic: each subscriber gets its own, and nothing else.
        let started = Instant::now();
        for _ in 0..n {
            let (i, bytes) = setup.publish_and_receive(n).await;
            let topic = setup.topics[i].as_str();
            assert!(!bytes.is_empty(), "{topic}: no bytes");
        }
        let first_round = started.elapsed();
        for (i, sub) in setup.subs.iter_mut().enumerate() {
            let more = futures_util::FutureExt::now_or_never(sub.next());
            assert!(more.is_none(), "topic {i} got more than its one event");
        }
        eprintln!(
            "{}/{n}: subscribe {:.2} µs each; first round (one event to each topic) {:.2} µs per event",
            if wildcard { "wildcard" } else { "topics" },
            subscribe.as_secs_f64() * 1e6 / n as f64,
            first_round.as_secs_f64() * 1e6 / n as f64,
        );
        setup
    }

    /// Publishes one event to the next topic of a round over the first `span` topics and
    /// receives it from that topic's subscription.
    async fn publish_and_receive(&mut self, span: usize) -> (usize, Bytes) {
        let i = (self.next % span) * STRIDE % span;
        self.next = self.next.wrapping_add(1);
        let event = NewEvent::new(self.topics[i].clone(), DATA);
        self.hub.publish(vec![event]).await.unwrap();
        // Fan-out is done before the publish is answered: the bytes are ready.
        let bytes = self.subs[i].next().await.unwrap();
        (i, bytes)
    }
}

/// Thread CPU time, or wall time with `SSEHUB_BENCH_CLOCK=wall`.
enum Clock {
    Wall(Instant),
    Cpu(cpu_time::ThreadTime),
}

impl Clock {
    fn start(wall: bool) -> Clock {
        if wall {
            Clock::Wall(Instant::now())
        } else {
            Clock::Cpu(cpu_time::ThreadTime::now())
        }
    }

    fn elapsed(&self) -> Duration {
        match self {
            Clock::Wall(t) => t.elapsed(),
            Clock::Cpu(t) => t.elapsed(),
        }
    }
}

fn topics(c: &mut Criterion) {
    let wall = std::env::var("SSEHUB_BENCH_CLOCK").is_ok_and(|v| v == "wall");
    eprintln!(
        "measuring {}",
        if wall {
            "wall time (SSEHUB_BENCH_CLOCK=wall)"
        } else {
            "thread CPU time (SSEHUB_BENCH_CLOCK=wall for wall time)"
        }
    );
    let mut group = c.benchmark_group("topics");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    for n in COUNTS {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // Built on first use, so that a filtered-out N costs nothing.
        let mut setup = None;
        // `all`: every topic in turn. `hot1000`: the same hub, events to 1,000 of its topics
        // only — what the hub's size costs, apart from touching more distinct topics.
        for (name, span) in [("all", n), ("hot1000", HOT)] {
            if name == "hot1000" && span >= n {
                continue;
            }
            group.bench_function(BenchmarkId::new(name, n), |b| {
                let setup = setup.get_or_insert_with(|| runtime.block_on(Setup::new(n, false)));
                b.iter_custom(|iters| {
                    runtime.block_on(async {
                        let clock = Clock::start(wall);
                        for _ in 0..iters {
                            black_box(setup.publish_and_receive(span).await);
                        }
                        clock.elapsed()
                    })
                });
            });
        }
        // Unsubscribes every topic, inside the runtime the hub's tasks run on.
        runtime.block_on(async move { drop(setup) });
    }
    // One wildcard pattern per subscriber instead of a topic: fan-out finds an event's patterns
    // by their literal prefix (registry.rs) instead of trying each of the N.
    for n in COUNTS {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut setup = None;
        group.bench_function(BenchmarkId::new("wildcard", n), |b| {
            let setup = setup.get_or_insert_with(|| runtime.block_on(Setup::new(n, true)));
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let clock = Clock::start(wall);
                    for _ in 0..iters {
                        black_box(setup.publish_and_receive(n).await);
                    }
                    clock.elapsed()
                })
            });
        });
        runtime.block_on(async move { drop(setup) });
    }
    group.finish();
}

criterion_group!(benches, topics);
criterion_main!(benches);
