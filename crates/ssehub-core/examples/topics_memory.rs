//! The hub's memory per topic with one live subscription, in-process (no HTTP, no sockets).
//!
//! ```text
//! cargo run --release -p ssehub-core --example topics_memory -- 100000
//! ```
//!
//! Builds a hub over a [`MemoryStore`] whose history keeps nothing (retention of one event, so
//! only the index and the subscribers are counted), subscribes once to each of N topics
//! (`bench/topics/<i>`), then publishes one event to each and receives it. Prints this
//! process's resident memory (`VmRSS`, Linux) per topic: with the subscriptions open, and
//! after every subscriber got its event (a subscriber's queue allocates on its first event
//! and keeps that buffer). Run one process per N: a freed heap is not given back to the OS.

use std::sync::Arc;

use futures_util::StreamExt;
use ssehub_core::{
    Hub, HubConfig, MemoryStore, NewEvent, Pattern, Resume, Retention, Selector, Topic,
};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |a| a.parse().expect("N: a number of topics"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let topics: Vec<Topic> = (0..n)
            .map(|i| Topic::new(&format!("bench/topics/{i}")).unwrap())
            .collect();
        let retention = Retention {
            max_events: 1,
            ..Retention::default()
        };
        let config = HubConfig {
            heartbeat: None,
            ..HubConfig::default()
        };
        let hub = Hub::new(Arc::new(MemoryStore::new(retention)), config);
        let before = rss_bytes();
        let mut subs: Vec<_> = topics
            .iter()
            .map(|topic| {
                let selector = Selector::new(vec![Pattern::new(topic.as_str()).unwrap()]).unwrap();
                hub.subscribe(selector, &Resume::Live).unwrap()
            })
            .collect();
        let subscribed = rss_bytes();
        for (topic, sub) in topics.iter().zip(&mut subs) {
            hub.publish(vec![NewEvent::new(topic.clone(), "x")])
                .await
                .unwrap();
            assert!(!sub.next().await.unwrap().is_empty());
        }
        let received = rss_bytes();
        let per = |after: u64| (after - before) as f64 / n as f64;
        println!(
            "{n} topics: {:.0} B per topic with its subscription; {:.0} B after one event each \
             (process RSS {:.1} MiB)",
            per(subscribed),
            per(received),
            received as f64 / f64::from(1 << 20)
        );
        drop(subs);
    });
}

/// This process's resident memory, in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux: /proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}
